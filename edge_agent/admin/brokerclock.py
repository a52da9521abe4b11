"""The box's clock against the broker's, for `edge-agent doctor`.

MQTT carries no time of its own. Some brokers publish their wall clock under $SYS (EMQX:
`$SYS/brokers/<node>/datetime`; others `$SYS/broker/time`); mosquitto publishes only its uptime
and version there. So the doctor subscribes to those topics and to an echo topic of its own for a
short while: with a broker time it reports the offset (good to about the round trip plus the
broker's $SYS interval, since a retained time may be up to one interval old); without one it says
so, naming the broker's version, and reports the round trip.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

from ..clock import Clock, SystemClock, parse_iso
from ..config.models import Mqtt
from ..errors import EdgeAgentError

TIME_TOPICS = ("$SYS/brokers/+/datetime", "$SYS/broker/time", "$SYS/broker/datetime")
VERSION_TOPIC = "$SYS/broker/version"
LISTEN_S = 3.0  # retained $SYS values arrive at once; a periodic one may take up to its interval


@dataclass
class BrokerClock:
    connected: bool = False
    version: str | None = None
    broker_time: float | None = None  # the broker's wall clock, epoch seconds
    received_at: float | None = None  # ours when it arrived
    topic: str | None = None
    rtt_s: float | None = None
    error: str | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def offset_s(self) -> float | None:
        """Broker minus box, seconds: positive when our clock is behind."""
        if self.broker_time is None or self.received_at is None:
            return None
        return self.broker_time - (self.received_at - (self.rtt_s or 0.0) / 2)


def parse_broker_time(payload: bytes) -> float | None:
    """A $SYS time: ISO 8601 (naive: UTC), `YYYY-MM-DD HH:MM:SS`, or epoch seconds; None otherwise."""
    text = payload.decode("utf-8", "replace").strip()
    try:
        value = float(text)
        return value if 1e9 < value < 1e11 else None
    except ValueError:
        pass
    try:
        return parse_iso(text.replace(" ", "T", 1))
    except ValueError:
        return None


def read_broker_clock(mqtt: Mqtt, client_id: str, clock: Clock | None = None,
                      listen_s: float = LISTEN_S) -> BrokerClock:
    """Connect, listen to the $SYS time and version topics, time an echo; never raises."""
    from ..publish.mqtt import Callbacks, LinkOptions, MqttLink

    clock = clock or SystemClock()
    out = BrokerClock()
    echo = f"edge-agent/doctor/{client_id}/{uuid.uuid4().hex}"
    sent: dict[str, float] = {}

    def message(topic: str, payload: bytes, props: object) -> None:
        now = clock.now()
        if topic == echo and "t" in sent:
            out.rtt_s = clock.monotonic() - sent["t"]
        elif topic == VERSION_TOPIC:
            out.version = payload.decode("utf-8", "replace").strip()
        elif out.broker_time is None and (t := parse_broker_time(payload)) is not None:
            out.broker_time, out.received_at, out.topic = t, now, topic

    try:
        link = MqttLink(mqtt, LinkOptions(client_id=f"{client_id}-clock", session_expiry_s=0,
                                          subscriptions=[*TIME_TOPICS, VERSION_TOPIC, echo]),
                        Callbacks(message=message))
    except EdgeAgentError as exc:
        out.error = str(exc)
        return out
    link.start()
    try:
        out.connected = link.connected.wait(listen_s)
        if out.connected:
            clock.sleep(0.3)  # let the subscriptions settle before the echo
            sent["t"] = clock.monotonic()
            link.publish(echo, b"ping", qos=0)
            deadline = clock.monotonic() + listen_s
            while clock.monotonic() < deadline and (out.rtt_s is None or out.broker_time is None):
                clock.sleep(0.05)
        else:
            out.error = link.last_error or f"no answer within {listen_s:.0f} s"
    finally:
        link.stop(graceful=False)
    return out
