#!/usr/bin/env python3
"""Alarms/s through the durable outbox to a local mosquitto, and the outbox's write cost per alarm.

Baseline in the same run: a bare paho client publishing the same alarm JSON at QoS 1 and waiting
for every PUBACK (no disk). Then `MqttSink` with the outbox at synchronous=full and =normal, alarm
JSON only and with a 70 KB snapshot. `emit ms` is what the alarm pipeline pays per alarm (the
outbox write: it never waits for the network); `alarms/s` is emit-to-last-PUBACK throughput.

    .venv/bin/python scripts/bench_mqtt.py [--n 500]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from edge_agent.alarms.event import Event  # noqa: E402
from edge_agent.clock import iso_utc  # noqa: E402
from edge_agent.config.models import Mqtt, Outbox  # noqa: E402
from edge_agent.publish.publisher import MqttSink  # noqa: E402


def start_broker(folder: Path) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n")
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.01)
    raise SystemExit("mosquitto did not start")


def event(i: int) -> Event:
    t = 1_767_225_600.0 + i
    return Event(event_id=Event.make_id("bench", i), phase="start", type="intrusion", site="s", device="d",
                 camera="cam1", zone="track-1", zone_kind="rail", label="person", score=0.9, track_id=i,
                 start=iso_utc(t), time=iso_utc(t), bbox=[0.1, 0.2, 0.3, 0.6])


def bare_paho(port: int, n: int) -> tuple[float, float]:
    done = threading.Event()
    acked = [0]

    def on_publish(c, u, mid, rc, props):  # type: ignore[no-untyped-def]
        acked[0] += 1
        if acked[0] == n:
            done.set()

    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=paho.MQTTv5)
    c.on_publish = on_publish
    c.connect("127.0.0.1", port)
    c.loop_start()
    payloads = [event(i).to_json().encode() for i in range(n)]
    t0 = time.perf_counter()
    for p in payloads:
        c.publish("bench/s/d/alarms", p, qos=1)
    t_call = time.perf_counter() - t0
    done.wait(60)
    total = time.perf_counter() - t0
    c.loop_stop()
    c.disconnect()
    return n / total, t_call / n * 1000


def outbox_run(port: int, n: int, folder: Path, sync: str, media: dict[str, bytes]) -> tuple[float, float]:
    cfg = Mqtt(port=port, topic_prefix="bench", outbox=Outbox(path=str(folder / f"o-{sync}-{len(media)}.sqlite"),
                                                             synchronous=sync, media_quota_mb=4096))
    sink = MqttSink(cfg, "s", "d").start()
    assert sink.link.connected.wait(10)
    events = [event(i) for i in range(n)]
    t0 = time.perf_counter()
    emit = 0.0
    for ev in events:
        e0 = time.perf_counter()
        sink.emit(ev, media)
        emit += time.perf_counter() - e0
    sink.wait_drained(120)
    total = time.perf_counter() - t0
    sink.close(1)
    return n / total, emit / n * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--dir", help="where the outbox lives (default: a temporary folder); fsync cost is the disk's")
    a = ap.parse_args()
    snapshot = (Path(__file__).resolve().parents[1] / "tests" / "data" / "bench_snapshot.jpg")
    snap = snapshot.read_bytes() if snapshot.is_file() else bytes(range(256)) * 280  # ~70 KB
    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        folder = Path(tmp)
        proc, port = start_broker(folder)
        try:
            base_rate, base_ms = bare_paho(port, a.n)
            print(f"{a.n} alarms per run; outbox in {folder}")
            print(f"{'run':34s} {'alarms/s':>9s} {'ms/alarm (caller)':>18s} {'vs bare paho':>13s}")
            print(f"{'bare paho publish, QoS 1 (base)':34s} {base_rate:9.0f} {base_ms:18.3f} {'1.00x':>13s}")
            for sync in ("full", "normal"):
                for label, media in (("JSON", {}), ("JSON + 70 KB JPEG", {"snapshot": snap})):
                    rate, ms = outbox_run(port, a.n, folder, sync, media)
                    name = f"outbox sync={sync}, {label}"
                    print(f"{name:34s} {rate:9.0f} {ms:18.3f} {ms / base_ms:12.1f}x")
        finally:
            proc.terminate()
            proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
