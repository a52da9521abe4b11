"""Commands from central command: validated, time-limited, optionally signed, never replayed.

A command arrives on `<base>/cmd/<name>` as JSON `{"request_id", "issued_at", "expires_at" | "ttl",
"args"}`; the reply goes to `<base>/cmd/reply` and echoes `request_id`. Signing (HMAC-SHA256 with
the shared `command_secret`) covers the topic and the exact command bytes, carried either way:

- envelope (MQTT 3.1.1 and 5): payload `{"body": "<the command JSON as a string>", "sig": "<hex>"}`;
- MQTT 5 user property `sig=<hex>` on a payload that is the command JSON itself.

sig = hex(HMAC-SHA256(secret, topic_utf8 + b"\\n" + body_bytes)). A request_id is remembered until
its command expires, so a replay is refused; expiry may be at most `max_ttl_s` away. With a
`NonceStore` (the outbox's SQLite file in the agent) the memory survives a restart, so a captured
command cannot be replayed to a box that was just rebooted either.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .. import __version__
from ..clock import Clock, SystemClock, iso_utc, parse_iso
from ..redact import redact_text
from .topics import REPLY

log = logging.getLogger("edge_agent.publish.commands")

NAMES = ("snapshot", "ack", "zone", "reload", "ping", "accept_view")
MAX_SKEW_S = 300.0  # issued_at may be this far ahead of our clock
MAX_NONCES = 10_000
MAX_EPOCH = 32_503_680_000.0  # the year 3000
# A handler refuses bad arguments with ValueError naming the field (a refusal, no traceback);
# any other exception is a bug, logged with its traceback and answered as "failed".
Handler = Callable[[dict[str, Any]], "dict[str, Any] | MediaReply"]


class NonceStore(Protocol):
    def remember_nonce(self, request_id: str, until: float, now: float) -> bool:
        """Record request_id until `until`; False when it is already there (a replay)."""


class Refused(Exception):
    """A command not executed; the message goes into the error reply."""


# Seconds since 1970: a number, never true/false (which pydantic would read as 1/0) nor NaN or infinity
# (which compare false with everything, so no expiry check would ever refuse them).
Epoch = Annotated[float, Field(strict=True, allow_inf_nan=False)] | Annotated[int, Field(strict=True)]


class CommandRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(min_length=1, max_length=128)
    issued_at: Epoch | str
    expires_at: Epoch | str | None = None
    ttl: float | None = Field(None, gt=0, allow_inf_nan=False)
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_expiry(self) -> CommandRequest:
        if self.expires_at is None and self.ttl is None:
            raise ValueError("needs expires_at or ttl")
        return self


def _epoch(value: float | str, key: str) -> float:
    if isinstance(value, (int, float)):
        if not 0 <= value <= MAX_EPOCH:  # no date can be written for it, and no clock is there
            raise Refused(f"malformed: {key} {value:g} is not a time in seconds since 1970")
        return float(value)
    try:
        return parse_iso(value)
    except ValueError as err:
        raise Refused(f"malformed: {key} is not an ISO 8601 time or epoch seconds") from err


def sign(secret: str, topic: str, body: bytes) -> str:
    """The signature central command puts on a command (see the module docstring)."""
    return hmac.new(secret.encode(), topic.encode() + b"\n" + body, hashlib.sha256).hexdigest()


def envelope(secret: str, topic: str, command: dict[str, Any]) -> bytes:
    """A signed command in the envelope form, ready to publish on `topic`."""
    body = json.dumps(command, separators=(",", ":"))
    return json.dumps({"body": body, "sig": sign(secret, topic, body.encode())}).encode()


def _user_sig(props: Any) -> str | None:
    for key, value in getattr(props, "UserProperty", None) or []:
        if key == "sig":
            return str(value)
    return None


def _guess_request_id(payload: bytes) -> str | None:
    """Best effort, for the error reply of a command refused before validation."""
    try:
        data = json.loads(payload)
        if isinstance(data, dict) and isinstance(data.get("body"), str):
            data = json.loads(data["body"])
        rid = data.get("request_id") if isinstance(data, dict) else None
        return rid[:128] if isinstance(rid, str) else None
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None


@dataclass(frozen=True)
class MediaReply:
    """What a handler returns when its answer carries a picture (`snapshot`): the reply's fields
    and the JPEG. The dispatcher leaves it as the reply's `result`; whoever sends the reply
    (command_worker.py) publishes the JPEG chunked (a whole JPEG can exceed a broker's message
    limit) and names it in the reply as `snapshot_id` and `topic`."""

    result: dict[str, Any]
    jpeg: bytes


MediaPublisher = Callable[[str, bytes], str]  # (media id, bytes) -> its manifest topic


class CommandDispatcher:
    """Turns (topic, payload) into a reply dict; never raises on bad input."""

    def __init__(
        self,
        handlers: dict[str, Handler] | None = None,
        secret: str | None = None,
        require_signed: bool = False,
        clock: Clock | None = None,
        max_ttl_s: float = 3600.0,
        nonces: NonceStore | None = None,
    ) -> None:
        self.handlers: dict[str, Handler] = {"ping": self._ping, **(handlers or {})}
        self.secret = secret or None
        self.require_signed = require_signed
        self.clock = clock or SystemClock()
        self.max_ttl_s = max_ttl_s
        self.nonces = nonces  # durable memory of request ids; None: this process only
        self._nonces: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self.counts = {"executed": 0, "refused": 0}

    def _ping(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"pong": True, "time": iso_utc(self.clock.now()), "version": __version__}

    def handle(self, topic: str, payload: bytes, props: Any = None) -> dict[str, Any] | None:
        """The reply for one command message; None for our own reply topic."""
        name = topic.rsplit("/", 1)[-1]
        if name == REPLY:
            return None
        reply: dict[str, Any] = {"request_id": None, "command": name}
        try:
            body = self._verified_body(topic, payload, props)
            req = self._parse(body, reply)
            self._check(name, req)
            handler = self.handlers[name]
            try:
                result = handler(dict(req.args))
            except ValueError as exc:  # how handlers refuse bad arguments: the message names the field
                raise Refused(f"refused: {exc}") from None
            except Exception as exc:  # a handler bug must not kill the dispatcher
                log.exception("command %s (%s) failed", name, req.request_id)
                # from None on purpose: the cause's own text may carry a password; this message is redacted
                raise Refused(f"failed: {type(exc).__name__}: {exc}") from None
            reply.update(ok=True, result=result or {})
            self.counts["executed"] += 1
        except Refused as why:
            reply["request_id"] = reply["request_id"] or _guess_request_id(payload)
            # a handler's message may quote a camera URL or config text: no credentials in replies or logs
            why = redact_text(str(why), [self.secret] if self.secret else [])
            reply.update(ok=False, error=why)
            self.counts["refused"] += 1
            log.warning("command %s (request_id %s) refused: %s", name, reply["request_id"], why)
        reply["time"] = iso_utc(self.clock.now())
        return reply

    def _verified_body(self, topic: str, payload: bytes, props: Any) -> bytes:
        """The command's bytes after the signature check (or the plain payload when unsigned)."""
        try:
            outer = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as err:
            raise Refused("malformed: payload is not JSON") from err
        sig: str | None = None
        body = payload
        if isinstance(outer, dict) and set(outer) == {"body", "sig"}:
            if not isinstance(outer["body"], str) or not isinstance(outer["sig"], str):
                raise Refused("malformed: envelope body and sig must be strings")
            body, sig = outer["body"].encode(), outer["sig"]
        else:
            sig = _user_sig(props)
        if sig is None:
            if self.require_signed:
                raise Refused("unsigned: this device requires signed commands")
            return body
        if not self.secret:
            raise Refused("signed command but no command secret is configured on this device")
        if not hmac.compare_digest(sign(self.secret, topic, body), sig.lower()):
            raise Refused("bad signature")
        return body

    def _parse(self, body: bytes, reply: dict[str, Any]) -> CommandRequest:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            raise Refused("malformed: command body is not JSON") from err
        if isinstance(data, dict) and isinstance(data.get("request_id"), str):
            reply["request_id"] = data["request_id"][:128]
        try:
            return CommandRequest.model_validate(data)
        except ValidationError as exc:
            raise Refused("malformed: " + "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'command'}: {e['msg']}" for e in exc.errors()[:5])) from exc

    def _check(self, name: str, req: CommandRequest) -> None:
        if name not in self.handlers:
            known = ", ".join(sorted(self.handlers))
            why = "is not available on this device" if name in NAMES else "is unknown"
            raise Refused(f"command {name!r} {why} (available: {known})")
        now = self.clock.now()
        issued = _epoch(req.issued_at, "issued_at")
        expires = _epoch(req.expires_at, "expires_at") if req.expires_at is not None else issued + float(req.ttl or 0)
        expiry = "expires_at" if req.expires_at is not None else "issued_at + ttl"
        if issued > now + MAX_SKEW_S:
            raise Refused("issued_at is in the future (check the clocks)")
        if expires <= now:
            raise Refused(f"expired at {iso_utc(expires)} ({expiry})")
        if expires - now > self.max_ttl_s:
            raise Refused(f"expiry ({expiry}) more than {self.max_ttl_s:g} s away")
        if not self._remember(req.request_id, expires, now):
            raise Refused(f"replayed: request_id {req.request_id} was already seen")

    def _remember(self, request_id: str, until: float, now: float) -> bool:
        if self.nonces is not None:
            return self.nonces.remember_nonce(request_id, until, now)
        with self._lock:
            for rid, expiry in list(self._nonces.items()):
                if expiry <= now:
                    del self._nonces[rid]
            if request_id in self._nonces:
                return False
            self._nonces[request_id] = until
            while len(self._nonces) > MAX_NONCES:
                self._nonces.popitem(last=False)
            return True
