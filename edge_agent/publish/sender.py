"""`edge-agent cmd ACTION [--camera ID] [key=value ...]`: sign a command, send it, print the reply.

What central command does to a box, from the box's own shell: the command is signed with the
config's command secret exactly as `commands.envelope` specifies (the agent checks it the same
way), published on `<prefix>/<site>/<device>/cmd/<action>`, and the reply that echoes its
request_id is printed as JSON. A refused command (bad signature, unknown camera, malformed
arguments) comes back as `ok: false` with the reason, so the technician sees it here rather than
only in the agent's log. `snapshot --out DIR` also receives the chunked JPEG and writes it there.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ..clock import SystemClock, iso_utc
from ..config.models import Mqtt
from ..config.secrets import command_secret
from ..errors import EdgeAgentError
from .central import Central
from .commands import envelope
from .mqtt import Callbacks, LinkOptions, MqttLink
from .topics import Topics

log = logging.getLogger("edge_agent.publish.sender")
TTL_S = 60.0  # a command not delivered within a minute is stale: the agent refuses it


def parse_args(pairs: list[str], camera: str | None) -> dict[str, Any]:
    """`zone=track enabled=false` -> {"zone": "track", "enabled": False}; values are JSON when they parse."""
    args: dict[str, Any] = {"camera": camera} if camera else {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise EdgeAgentError(f"argument {pair!r}: write key=value, e.g. zone=track enabled=false")
        try:
            args[key] = json.loads(value)
        except ValueError:
            args[key] = value
    return args


class _Exchange:
    """The reply to one request, and the snapshot it may announce."""

    def __init__(self, request_id: str, reply_topic: str, central: Central | None) -> None:
        self.request_id, self.reply_topic, self.central = request_id, reply_topic, central
        self.reply: dict[str, Any] | None = None
        self.got = threading.Event()

    def on_message(self, topic: str, payload: bytes, props: Any) -> None:
        if topic != self.reply_topic:
            if self.central is not None:
                self.central.handle(topic, payload)
            return
        try:
            reply = json.loads(payload)
        except ValueError:
            return
        if isinstance(reply, dict) and reply.get("request_id") == self.request_id:
            self.reply = reply
            self.got.set()

    def snapshot_file(self) -> Path | None:
        result = (self.reply or {}).get("result") or {}
        sid = result.get("snapshot_id") if isinstance(result, dict) else None
        path = self.central.out / "media" / str(sid) / "snapshot.jpg" if self.central and sid else None
        return path if path is not None and path.is_file() else None


def send_command(mqtt: Mqtt, site: str, device: str, action: str, args: dict[str, Any],
                 timeout: float = 15.0, out: str | None = None) -> tuple[dict[str, Any], Path | None]:
    """(reply, snapshot file or None); raises EdgeAgentError when no reply comes within `timeout`."""
    topics = Topics(mqtt.topic_prefix, site, device)
    topic = topics.cmd(action)
    now = SystemClock().now()
    command = {"request_id": f"cmd-{uuid.uuid4().hex}", "issued_at": iso_utc(now), "ttl": TTL_S, "args": args}
    secret = command_secret(mqtt)
    payload = envelope(secret, topic, command) if secret else json.dumps(command).encode()
    central = Central(out, mqtt.topic_prefix, echo=lambda line: None) if out else None
    ex = _Exchange(command["request_id"], topics.cmd_reply, central)
    subs = [topics.cmd_reply] + ([f"{topics.snapshots}/+/+", f"{topics.snapshots}/+/+/+"] if out else [])
    cid = f"edge-cmd-{socket.gethostname()}-{os.getpid()}"
    link = MqttLink(mqtt, LinkOptions(client_id=cid, subscriptions=subs, session_expiry_s=0),
                    Callbacks(message=ex.on_message))
    link.start()
    deadline = time.monotonic() + timeout
    try:
        while not link.subscribed.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not link.subscribed.is_set():
            raise EdgeAgentError(f"cannot reach the broker at {mqtt.host}:{mqtt.port}: "
                                 f"{link.last_error or 'no answer'}")
        link.publish(topic, payload, qos=1)
        if not ex.got.wait(max(0.0, deadline - time.monotonic())):
            raise EdgeAgentError(f"no reply to {action} within {timeout:g} s on {topics.cmd_reply}: is the agent "
                                 f"of site {site}, device {device} running and connected?")
        while out and ex.reply.get("ok") and ex.snapshot_file() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return ex.reply, ex.snapshot_file()
    finally:
        link.stop(graceful=False)
        if central is not None:
            central.close()


def cli_cmd(args: Any) -> int:
    """Print the reply as JSON; exit 0 when the agent did it, 1 when it refused."""
    from ..config.loader import load_config
    from .central import client_settings

    cfg = load_config(args.config)
    mqtt = client_settings(cfg.mqtt, args)
    reply, snapshot = send_command(mqtt, cfg.site.id, cfg.device.id, args.action,
                                   parse_args(args.args, args.camera), args.timeout, getattr(args, "out", None))
    print(json.dumps(reply, indent=1))
    if snapshot is not None:
        print(f"snapshot written to {snapshot}")
    return 0 if reply.get("ok") else 1
