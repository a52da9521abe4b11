"""`edge-agent run` serving /metrics, /health and /snapshot/<camera>.jpg while a clip plays live over
RTSP and alarms go to a real mosquitto: scraped the way Prometheus and a technician would. It logs
with `--log-format json`, read the way a log shipper would."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.mosquitto import free_port
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
FOOTAGE = ROOT / "tests" / "footage"
TRUTH = yaml.safe_load((FOOTAGE / "rail_intrusion.expected.yaml").read_text())


def get(port: int, path: str, host: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host or f"127.0.0.1:{port}"})
        res = conn.getresponse()
        return res.status, res.read()
    except OSError:
        return 0, b""
    finally:
        conn.close()


def samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = get(port, "/metrics")
    if status != 200:
        return {}
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}


def test_metrics_health_and_snapshot_while_a_clip_plays(rtsp_server, mosquitto, tmp_path):
    srv = rtsp_server({"rail": FOOTAGE / "rail_intrusion.mp4"}, loop=True)
    port = free_port()
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "rail.yaml").write_text((FOOTAGE / "zones" / "rail_intrusion.yaml").read_text())
    cfg = tmp_path / "cameras.yaml"
    cfg.write_text(yaml.safe_dump({
        "site": {"id": "s1"}, "device": {"id": "d1"},
        "http": {"listen": f"127.0.0.1:{port}"},
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "outbox": {"path": str(tmp_path / "outbox.sqlite")}},
        "cameras": [{"id": "rail", "url": srv.url("rail"), "detect_fps": 5}],
    }))
    proc = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "--log-format", "json", "run", "--config", str(cfg)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    alarm = ("edge_agent_alarms_total", (("camera", "rail"), ("type", TRUTH["expect"][0]["type"])))
    try:
        assert wait_for(lambda: samples(port).get(alarm, 0) >= 1, 60, step=0.5), samples(port)
        m = samples(port)
        # the clip is 10 fps (its ground truth); the camera is sampled at 5 for detection
        video_fps = TRUTH["video"]["fps"]
        assert 0.6 * video_fps <= m[("edge_agent_camera_fps", (("camera", "rail"), ("stage", "decoded")))] <= 1.4 * video_fps
        assert 0 < m[("edge_agent_camera_fps", (("camera", "rail"), ("stage", "analysed")))] <= 5 * 1.2
        assert m[("edge_agent_camera_up", (("camera", "rail"),))] == 1
        assert m[("edge_agent_frames_total", (("camera", "rail"), ("stage", "decoded")))] > \
            m[("edge_agent_frames_total", (("camera", "rail"), ("stage", "analysed")))] > 0
        assert m[("edge_agent_detector_seconds_count", ())] > 0 and m[("edge_agent_detector_seconds_sum", ())] > 0
        assert m[("edge_agent_mqtt_connected", ())] == 1
        assert ("edge_agent_outbox_messages", ()) in m and ("edge_agent_outbox_oldest_seconds", ()) in m
        assert m[("edge_agent_disk_free_bytes", (("store", "outbox"),))] > 0

        status, body = get(port, "/health")
        health = json.loads(body)
        assert status == 200 and health["cameras"]["rail"]["state"] == "online" and health["progress"]["ok"]
        assert health["cameras"]["rail"]["alarms"][TRUTH["expect"][0]["type"]] >= 1

        status, jpeg = get(port, "/snapshot/rail.jpg")
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert status == 200 and image.shape[:2] == (TRUTH["video"]["height"], TRUTH["video"]["width"])
        assert get(port, "/snapshot/nope.jpg")[0] == 404
        # a page on another origin resolving its name to 127.0.0.1 (DNS rebinding) gets nothing
        assert get(port, "/metrics", host="attacker.example:9108")[0] == 403
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode(errors="replace")
    assert proc.returncode == 0, out[-3000:]
    lines = [json.loads(line) for line in out.splitlines()]  # every line is one JSON object
    started = [r for r in lines if r.get("camera") == "rail" and f"{TRUTH['expect'][0]['type']} start" in r["message"]]
    assert started and all(len(r["event_id"]) == 36 and r["event_id"] in r["message"] for r in started)
