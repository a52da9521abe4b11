"""One paho-mqtt 2.x connection: persistent session, TLS, credentials, LWT, clear failure logs.

`MqttLink` never raises on network trouble: it connects in the background (`connect_async` +
`loop_start`, paho retries with `reconnect_delay_set`) and logs one clear line per distinct
problem (a refused login with the broker's reason code, a TLS failure, a broker that is absent, a
dropped connection) at most every REPEAT_LOG_S; `problems` counts how often each was seen and logged.
The password is read from the config, an environment variable or a file and never logged.
It keeps the broker's MQTT 5 Maximum Packet Size from CONNACK (`max_packet_size`), and `renew`
replaces the paho client, whose memory re-sends every unacknowledged message on each reconnect.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .. import __version__
from ..config.models import Mqtt
from ..config.secrets import read_secret
from ..errors import EdgeAgentError

log = logging.getLogger("edge_agent.publish.mqtt")

REPEAT_LOG_S = 300.0  # the same failure is logged again at WARNING at most this often


def resolve_password(cfg: Mqtt) -> str | None:
    """The password from `password`, `password_env` or `password_file` (first set wins)."""
    return cfg.password or read_secret("mqtt", cfg.password_env, cfg.password_file)


def status_payload(state: str, client_id: str) -> bytes:
    return json.dumps(
        {"state": state, "version": __version__, "client_id": client_id, "time": round(time.time(), 3)},
        separators=(",", ":"),
    ).encode()


def describe_connect_error(exc: BaseException | None, where: str) -> str:
    """One line that says what went wrong and what to check; never includes credentials."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason
        return f"TLS failure with {where}: certificate verify failed ({why}); check mqtt.tls.ca_file and the host name"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failure with {where}: {exc.reason or exc}; check mqtt.tls settings and that the port speaks TLS"
    if isinstance(exc, ConnectionRefusedError):
        return f"broker absent at {where}: connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve broker host {where}: {exc.strerror}"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"broker at {where} did not answer (timeout)"
    if isinstance(exc, OSError):
        return f"cannot reach broker at {where}: {exc.strerror or exc}"
    return f"cannot connect to broker at {where}"


@dataclass
class Callbacks:
    """What the owner of a link wants to hear; each runs on paho's network thread."""

    connected: Callable[[bool], None] = lambda session_present: None
    disconnected: Callable[[], None] = lambda: None  # a connection that was up went down
    published: Callable[[int, bool, str], None] = lambda mid, ok, reason: None
    message: Callable[[str, bytes, Any], None] = lambda topic, payload, props: None
    # With LinkOptions.manual_ack: (topic, payload, mid, qos); the owner calls MqttLink.ack(mid, qos)
    # once the message is safely stored, and only then does the broker forget it.
    unacked_message: Callable[[str, bytes, int, int], None] = lambda topic, payload, mid, qos: None


@dataclass
class LinkOptions:
    client_id: str
    status_topic: str | None = None  # LWT `offline` and `online` on connect, both retained
    subscriptions: list[str] = field(default_factory=list)
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    max_inflight: int = 20
    manual_ack: bool = False  # PUBACK only when the owner says so (see Callbacks.unacked_message)
    while_away: str = "messages stay queued in the outbox"  # what the retry log line tells the reader
    receive_maximum: int | None = None  # MQTT 5: at most this many unacknowledged messages sent to us


class MqttLink:
    """A paho client with a persistent session that reconnects by itself and explains failures."""

    def __init__(self, cfg: Mqtt, opts: LinkOptions, callbacks: Callbacks | None = None) -> None:
        self.cfg = cfg
        self.opts = opts
        self.cb = callbacks or Callbacks()
        self.where = f"{cfg.host}:{cfg.port}"
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # every subscription of this connection acknowledged
        self._sub_mids: set[int] = set()
        self.last_error: str | None = None
        self.connects = 0
        self._logged: dict[str, float] = {}
        self.problems: dict[str, dict[str, int]] = {}  # each distinct problem -> times seen and logged
        self.max_packet_size: int | None = None  # MQTT 5 CONNACK Maximum Packet Size; None: not announced
        self._stopping = False
        self._v5 = cfg.protocol == "5"
        self._password = resolve_password(cfg)
        self.client = self._build(self._password)

    def _build(self, password: str | None) -> paho.Client:
        kw: dict[str, Any] = {"callback_api_version": CallbackAPIVersion.VERSION2, "client_id": self.opts.client_id,
                              "manual_ack": self.opts.manual_ack}
        if self._v5:
            kw["protocol"] = paho.MQTTv5
        else:
            kw.update(protocol=paho.MQTTv311, clean_session=False)
        client = paho.Client(**kw)
        if self.cfg.username is not None or password is not None:
            client.username_pw_set(self.cfg.username or "", password)
        if self.cfg.tls is not None:
            self._tls(client)
        if self.opts.status_topic:
            client.will_set(self.opts.status_topic, status_payload("offline", self.opts.client_id), qos=1, retain=True)
        client.reconnect_delay_set(self.opts.reconnect_min_s, self.opts.reconnect_max_s)
        client.max_inflight_messages_set(self.opts.max_inflight)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _tls(self, client: paho.Client) -> None:
        tls = self.cfg.tls
        assert tls is not None
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(tls, key)
            if path and not Path(path).is_file():
                raise EdgeAgentError(f"mqtt.tls.{key}: {path} does not exist")
        try:
            client.tls_set(ca_certs=tls.ca_file, certfile=tls.cert_file, keyfile=tls.key_file)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise EdgeAgentError(f"mqtt.tls: cannot load the CA or client certificate ({exc})") from exc
        client.tls_insecure_set(tls.insecure)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, clean_start: bool = False) -> None:
        """Connect in the background; `clean_start` (MQTT 5) discards the broker's session on the
        first connect only, later reconnects resume the new one."""
        props = None
        kw: dict[str, Any] = {}
        if self._v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = int(self.opts.session_expiry_s)
            if self.opts.receive_maximum:
                props.ReceiveMaximum = int(self.opts.receive_maximum)
            kw = {"clean_start": paho.MQTT_CLEAN_START_FIRST_ONLY if clean_start else False, "properties": props}
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s, **kw)
        self.client.loop_start()

    def renew(self) -> None:
        """A fresh paho client and one connect with clean_start: the old client's unacknowledged
        messages (a poison message among them) are forgotten instead of re-sent on every reconnect.
        The caller re-sends what it still wants from its own store. Not from a paho callback."""
        old = self.client
        old.on_disconnect = None  # the owner knows; this is not a new drop
        old.disconnect()
        old.loop_stop()
        self.connected.clear()
        self.client = self._build(self._password)
        self.start(clean_start=True)

    def stop(self, graceful: bool = True) -> None:
        """Disconnect; when graceful and connected, first say `offline` on the status topic."""
        self._stopping = True
        try:
            if graceful and self.connected.is_set() and self.opts.status_topic:
                info = self.client.publish(
                    self.opts.status_topic, status_payload("offline", self.opts.client_id), qos=1, retain=True
                )
                deadline = time.monotonic() + 1.0
                while not info.is_published() and time.monotonic() < deadline and self.connected.is_set():
                    time.sleep(0.01)
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> tuple[int, int]:
        """Hand one message to paho; returns (rc, mid). rc 4 = not connected (paho keeps QoS>0)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        return int(info.rc), int(info.mid)

    # -- paho callbacks (network thread) ---------------------------------------------------
    def _warn(self, text: str) -> None:
        self.last_error = text
        if self._first_in_a_while(text):
            log.warning("mqtt %s: %s; retrying, %s", self.opts.client_id, text, self.opts.while_away)

    def _first_in_a_while(self, problem: str) -> bool:
        """Count the problem; True when it is new or was last logged REPEAT_LOG_S ago."""
        now = time.monotonic()
        counts = self.problems.setdefault(problem, {"seen": 0, "logged": 0})
        counts["seen"] += 1
        if now - self._logged.get(problem, -1e9) >= REPEAT_LOG_S:
            self._logged[problem] = now
            counts["logged"] += 1
            return True
        log.debug("mqtt %s: %s (again)", self.opts.client_id, problem)
        return False

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        # paho calls this inside its `except OSError`, so the exception is still current.
        self._warn(describe_connect_error(sys.exc_info()[1], self.where))

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            value = getattr(reason, "value", reason)
            self._warn(f"login refused by broker {self.where}: {reason} (reason code {value})"
                       + ("; check mqtt.username and the password" if value in (134, 135, 4, 5) else ""))
            return
        self.connects += 1
        self.last_error = None
        self.max_packet_size = getattr(props, "MaximumPacketSize", None) if self._v5 and props else None
        if self.connects == 1 or self._first_in_a_while("reconnected"):
            log.info("mqtt %s: connected to %s (session present: %s)",
                     self.opts.client_id, self.where, getattr(flags, "session_present", False))
        if self.opts.status_topic:
            client.publish(self.opts.status_topic, status_payload("online", self.opts.client_id), qos=1, retain=True)
        self.subscribed.clear()
        self._sub_mids = {client.subscribe(topic, qos=1)[1] for topic in self.opts.subscriptions}
        if not self._sub_mids:
            self.subscribed.set()
        self.connected.set()
        self.cb.connected(bool(getattr(flags, "session_present", False)))

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        self.subscribed.clear()
        if was:
            failed = getattr(reason, "is_failure", True)
            self.last_error = f"disconnected from {self.where} ({reason})" if failed else self.last_error
            if self._first_in_a_while(f"disconnected ({reason})"):
                log.log(logging.WARNING if failed else logging.INFO, "mqtt %s: disconnected from %s (%s)",
                        self.opts.client_id, self.where, reason)
            self.cb.disconnected()
        elif not self._stopping and (self.last_error is None or "login refused" not in self.last_error):
            # Dropped before CONNACK: with TLS 1.3 a refused client certificate shows only as this.
            hint = "; check mqtt.tls.cert_file and key_file" if self.cfg.tls is not None else ""
            self._warn(f"broker {self.where} closed the connection before accepting the login ({reason}){hint}")

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        bad = [str(r) for r in reasons if getattr(r, "is_failure", False)]
        if bad:
            log.warning("mqtt %s: subscription refused by %s: %s", self.opts.client_id, self.where, ", ".join(bad))
        self._sub_mids.discard(mid)
        if not self._sub_mids:
            self.subscribed.set()

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self.cb.published(mid, not reason.is_failure, str(reason))

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a message received with manual_ack (a no-op for QoS 0)."""
        self.client.ack(mid, qos)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if self.opts.manual_ack:
            self.cb.unacked_message(msg.topic, bytes(msg.payload), msg.mid, msg.qos)
        else:
            self.cb.message(msg.topic, bytes(msg.payload), getattr(msg, "properties", None))
