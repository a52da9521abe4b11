"""`edge-agent run` with a real RTSP camera and a real mosquitto: alarms, health and commands over MQTT."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import av
import paho.mqtt.client as mqtt
import pytest
import yaml

from edge_agent.publish.topics import Topics
from tests.integration.test_live_agent import ZONE, render_walk, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


class Listener:
    """A plain paho client standing in for central command."""

    def __init__(self, port: int, topics: Topics) -> None:
        self.topics = topics
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
        self.client.on_message = lambda c, u, m: self._got(m.topic, m.payload)
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{topics.base}/#", qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def _got(self, topic: str, payload: bytes) -> None:
        with self.lock:
            self.messages.append((topic, payload))

    def on(self, topic: str) -> list[dict]:
        with self.lock:
            return [json.loads(p) for t, p in self.messages if t == topic]

    def command(self, name: str, **args) -> dict:
        rid = uuid.uuid4().hex
        body = {"request_id": rid, "issued_at": time.time(), "ttl": 60, "args": args}
        self.client.publish(self.topics.cmd(name), json.dumps(body), qos=1)
        assert wait_for(lambda: any(r.get("request_id") == rid for r in self.on(self.topics.cmd_reply)), 15), name
        return next(r for r in self.on(self.topics.cmd_reply) if r.get("request_id") == rid)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_live_agent_over_mqtt(rtsp_server, mosquitto, tmp_path):
    clip = render_walk(tmp_path / "walk.mp4")
    srv = rtsp_server({"walk": clip}, loop=True)
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "walk.yaml").write_text(yaml.safe_dump({"zones": [ZONE]}))
    config = {
        "site": {"id": "s1"}, "device": {"id": "d1"},
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "health_interval_s": 1,
                 "outbox": {"path": str(tmp_path / "outbox.sqlite")}},
        "cameras": [{"id": "walk", "url": srv.url("walk")}],
    }
    cfg_path = tmp_path / "cameras.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    central = Listener(mosquitto.port, Topics("edge", "s1", "d1"))
    health_file = tmp_path / "health.json"
    proc = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "run", "--config", str(cfg_path),
                             "--health-file", str(health_file)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        t = central.topics
        assert wait_for(lambda: any(h["cameras"]["walk"]["state"] == "online" for h in central.on(t.health)), 20)
        assert wait_for(lambda: any(e["type"] == "intrusion" and e["phase"] == "start" for e in central.on(t.alarms)),
                        20)
        alarm = next(e for e in central.on(t.alarms) if e["type"] == "intrusion")
        assert alarm["zone"] == "track" and alarm["label"] == "person" and alarm["camera"] == "walk"
        # the retained inventory for central's map: the camera online, its frame size, its zone
        with av.open(str(clip)) as probe:
            size = {"width": probe.streams.video[0].width, "height": probe.streams.video[0].height}
        assert wait_for(lambda: any(i["cameras"][0]["state"] == "online" and i["cameras"][0].get("frame") == size
                                    for i in central.on(t.inventory)), 10), central.on(t.inventory)
        assert [(z["name"], z["kind"], z["polygon"]) for z in central.on(t.inventory)[-1]["cameras"][0]["zones"]] \
            == [(ZONE["name"], ZONE["kind"], ZONE["polygon"])]
        assert wait_for(lambda: any(h["cameras"]["walk"]["fps_in"] > 0 and h["disk"]["outbox_bytes"] > 0
                                    for h in central.on(t.health)), 10), central.on(t.health)[-1]
        # the health file carries the same MQTT / outbox section as the health topic (issue 14 fault 5)
        on_file = json.loads(health_file.read_text())["mqtt"]
        assert set(on_file) == set(central.on(t.health)[-1]["mqtt"]) and on_file["connected"] is True
        assert {"outbox_depth", "outbox_oldest_s", "delivered", "problems"} <= set(on_file)
        assert central.command("ping")["ok"]
        snap = central.command("snapshot", camera="walk")
        assert snap["ok"] and snap["result"]["size"] > 1000, snap
        manifest_topic = snap["result"]["topic"]
        assert manifest_topic == f"{t.snapshots}/{snap['result']['snapshot_id']}/snapshot"
        assert wait_for(lambda: central.on(manifest_topic), 10)
        manifest = central.on(manifest_topic)[0]
        assert manifest["size"] == snap["result"]["size"] and manifest["content_type"] == "image/jpeg"
        assert not central.command("snapshot", camera="nope")["ok"]
        assert central.command("zone", camera="walk", zone="track", enabled=False)["ok"]
        assert not central.command("zone", camera="walk", zone="nope", enabled=False)["ok"]
        assert central.command("ack", event_id=alarm["event_id"])["ok"]
        assert central.command("reload")["result"]["reloading"]
        count = len(central.on(t.health))
        assert wait_for(lambda: len(central.on(t.health)) > count + 1
                        and central.on(t.health)[-1]["cameras"]["walk"]["state"] == "online", 20)
        # cameras.yaml validates but its patrol file does not: the reload used to be accepted, then the
        # agent died building the patrol stage; now it is refused before the reply and the agent runs on
        (tmp_path / "patrol.yaml").write_text("points: [{id: PP1, camera: walk, area: [[0, 0], [1, 0], [1, 1]]}]\n")
        cfg_path.write_text(yaml.safe_dump({**config, "patrol": "patrol.yaml"}))
        broken = central.command("reload")
        assert not broken["ok"] and "patrol.yaml:1: points[0].team" in broken["error"], broken
        count = len(central.on(t.health))
        assert wait_for(lambda: len(central.on(t.health)) > count + 1
                        and central.on(t.health)[-1]["cameras"]["walk"]["state"] == "online", 20)
        assert proc.poll() is None
        cfg_path.write_text("site: {id: s1}\ndevice: {id: d1}\ncameras: [{id: walk, url: 3}]\n")
        bad = central.command("reload")
        assert not bad["ok"] and "cameras.yaml" in bad["error"]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out.decode()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        central.close()
