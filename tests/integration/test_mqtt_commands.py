"""Commands over a real broker: valid ones run, malformed/expired/replayed/unsigned get error replies."""

from __future__ import annotations

import json
import queue
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.clock import SystemClock, iso_utc
from edge_agent.publish.commands import envelope, sign
from edge_agent.publish.publisher import MqttSink, command_dispatcher
from tests.fixtures.mosquitto import mqtt_settings

BASE = "edge/site1/dev1"
SECRET = "topsecret"


def operator(port: int) -> tuple[paho.Client, "queue.Queue[dict]"]:
    replies: queue.Queue[dict] = queue.Queue()
    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="operator", protocol=paho.MQTTv5)
    subscribed = threading.Event()
    c.on_message = lambda cl, u, msg: replies.put(json.loads(msg.payload))
    c.on_subscribe = lambda cl, u, mid, codes, props: subscribed.set()
    c.connect("127.0.0.1", port)
    c.subscribe(f"{BASE}/cmd/reply", qos=1)
    c.loop_start()
    assert subscribed.wait(10)
    return c, replies


def reply_for(replies: "queue.Queue[dict]", rid: str | None, timeout: float = 5) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = replies.get(timeout=0.2)
        except queue.Empty:
            continue
        if r.get("request_id") == rid:
            return r
    raise AssertionError(f"no reply for {rid}")


def body(rid: str, ttl: float = 30, issued: float | None = None) -> dict:
    return {"request_id": rid, "issued_at": iso_utc(issued or time.time()), "ttl": ttl, "args": {"camera": "cam1"}}


def test_commands_over_the_broker(mosquitto, tmp_path):
    cfg = mqtt_settings(mosquitto, tmp_path / "outbox.sqlite", command_secret=SECRET, require_signed_commands=True)
    acks: list[dict] = []
    sink = MqttSink(cfg, "site1", "dev1", dispatcher=command_dispatcher(
        cfg, {"ack": lambda args: acks.append(args) or {"acked": True}}, SystemClock()))
    sink.start()
    assert sink.link.connected.wait(10)
    op, replies = operator(mosquitto.port)
    try:
        ping, ack = f"{BASE}/cmd/ping", f"{BASE}/cmd/ack"
        op.publish(ping, envelope(SECRET, ping, body("p1")), qos=1)
        assert reply_for(replies, "p1")["result"]["pong"] is True

        props = Properties(PacketTypes.PUBLISH)
        raw = json.dumps(body("a1")).encode()
        props.UserProperty = ("sig", sign(SECRET, ack, raw))
        op.publish(ack, raw, qos=1, properties=props)
        assert reply_for(replies, "a1")["result"] == {"acked": True}
        assert acks == [{"camera": "cam1"}]

        op.publish(ack, raw, qos=1, properties=props)  # the same bytes again
        assert "replayed" in reply_for(replies, "a1")["error"]
        op.publish(ping, json.dumps(body("u1")), qos=1)
        assert "unsigned" in reply_for(replies, "u1")["error"]
        op.publish(ping, envelope(SECRET, ping, body("x1", ttl=5, issued=time.time() - 60)), qos=1)
        assert reply_for(replies, "x1")["error"].startswith("expired")
        op.publish(ping, b"{not json", qos=1)
        assert "not JSON" in reply_for(replies, None)["error"]
        op.publish(ping, envelope(SECRET, ping, {"request_id": "m1", "issued_at": "now", "ttl": 5}), qos=1)
        assert "malformed" in reply_for(replies, "m1")["error"]
        assert acks == [{"camera": "cam1"}]  # nothing refused ran
        assert sink.link.connected.is_set()  # and nothing crashed the agent
    finally:
        op.loop_stop()
        op.disconnect()
        sink.close(1)
