"""Soak: the live agent on 8 looping RTSP cameras through broker restarts, a killed RTSP server, a
camera changing resolution and a message over the broker's limit (issue 14, "Figures to prove
it"). Loopback only, bounded in time.

    .venv/bin/python scripts/soak.py --duration 1800 --json soak.json      # the 30-minute run
    .venv/bin/python scripts/soak.py --duration 75                         # the short one (tests)
    .venv/bin/python scripts/soak.py --duration 600 --trace-memory DIR     # where RSS goes (memtrace.py)

What runs: a Debian `mosquitto` (MQTT 5, persistence, `message_size_limit` below the agent's
64 KiB chunk: the first clip chunk is over the limit), three GStreamer RTSP servers looping
tests/footage/rail_intrusion.mp4 with 8 s of the empty scene after it (a person walks into the
track-bed zone 2.4 s into each 24 s loop; see make_clip; the zone without cooldown, see
write_config): the last camera on a server of its own (the spare), the one before it on another
(the resized one), the others on the first; `edge-agent run` on all of them, and an independent
subscriber (plain paho, persistent session) that de-duplicates by (event_id, phase).
The broker is restarted every `--broker-every` s; the spare RTSP server is killed at a third of
the run and restarted on the same port 10 s later; at two thirds the resized camera's server is
restarted on the same port and path with the clip at 640x480 instead of 640x360 (a camera
reconfigured to another resolution; the zones are relative, so the entries stay where they were).

Ground truth comes from the RTSP servers, not the agent: each server prints when a client's
stream starts and each time the file loops (`--print-loops`). Every loop played through holds one
entry; a loop cut short (server killed, end of run) holds one when it ran long enough for the
dwell (>= CERTAIN_S), maybe one when it reached the entry (>= ENTRY_S), else none. The run passes
when every camera's de-duplicated intrusion alarms fall within [certain, certain + maybe] and the
agent never exited. RSS, open files, threads and outbox bytes are sampled every 10 s; their
slope (per hour, least squares, first 20 % skipped as warm-up) is reported, not judged.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ROOT = Path(__file__).resolve().parents[1]
FOOTAGE = ROOT / "tests" / "footage" / "rail_intrusion.mp4"
EMPTY_S = 8.0  # the scene without the walker appended to each loop (see make_clip)
LOOP_S = 24.0  # one loop of the clip: the 16 s footage and EMPTY_S (make_clip checks it)
ZONES = ROOT / "tests" / "footage" / "zones" / "rail_intrusion.yaml"
ENTRY_S = 2.4  # the person crosses into track-bed this far into each loop (the footage's truth file)
CERTAIN_S = 10.0  # entry + 3 s dwell + detection and start-up slack: an alarm is due
LIMIT = 60_000  # mosquitto message_size_limit: under the agent's default 64 KiB chunk


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, folder: Path) -> None:
        self.folder, self.port, self.proc = folder, free_port(), None
        (folder / "data").mkdir(parents=True)
        (folder / "mosquitto.conf").write_text("\n".join([
            f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence true",
            f"persistence_location {folder / 'data'}/", "autosave_interval 1", "max_queued_messages 0",
            f"message_size_limit {LIMIT}", f"log_dest file {folder / 'mosquitto.log'}", "user root", ""]))

    def start(self) -> None:
        self.proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                                      str(self.folder / "mosquitto.conf")], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def make_clip(folder: Path, size: tuple[int, int] | None = None) -> Path:
    """The footage followed by EMPTY_S s of its own first frame (the scene before the walker
    appears), re-encoded as one H.264 stream. In the footage the walker stays in the zone to the
    last frame, so at the loop point he would leave and re-enter within 2.4 s; a loaded detector
    that drops those few frames sees one long visit, and the count from the loops would not hold.
    With the pause he is gone long enough for every visit to be seen as one. `size`: the picture
    scaled to (width, height), as a camera set to another resolution sends it."""
    import av

    out_path = folder / (f"soak_clip_{size[0]}x{size[1]}.mp4" if size else "soak_clip.mp4")
    with av.open(str(FOOTAGE)) as src:
        stream = src.streams.video[0]
        fps = int(stream.average_rate)
        scale = {"width": size[0], "height": size[1]} if size else {}
        frames = [f.reformat(**scale).to_ndarray(format="bgr24") for f in src.decode(stream)]
    frames += [frames[0]] * int(EMPTY_S * fps)
    if abs(len(frames) / fps - LOOP_S) > 0.5:
        raise SystemExit(f"soak: the clip loops every {len(frames) / fps:.1f} s, LOOP_S says {LOOP_S}")
    with av.open(str(out_path), "w") as out:
        enc = out.add_stream("libx264", rate=fps)
        enc.width, enc.height, enc.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        enc.options = {"crf": "23", "preset": "veryfast", "g": str(fps), "bf": "0", "sc_threshold": "0"}
        for img in frames:
            out.mux(enc.encode(av.VideoFrame.from_ndarray(img, format="bgr24")))
        out.mux(enc.encode())
    return out_path


class Rtsp:
    """One looping RTSP server; records (what, camera, time) for every stream start and loop."""

    def __init__(self, cameras: list[str], log: list[tuple[str, str, float]], clip: Path) -> None:
        self.cameras, self.log, self.clip, self.port, self.proc = cameras, log, clip, 0, None

    def start(self) -> None:
        cmd = ["/usr/bin/python3", str(ROOT / "scripts" / "rtsp_server.py"), "--port", str(self.port), "--loop",
               "--print-loops", *[f"{c}={self.clip}" for c in self.cameras]]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError(f"rtsp server did not start: {line!r}")
        self.port = int(line.split()[1])
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            parts = line.split()
            if len(parts) == 3 and parts[0] in ("play", "loop"):
                self.log.append((parts[0], parts[1], float(parts[2])))

    def kill(self) -> float:
        """SIGKILL, as a crash would; returns when."""
        self.proc.kill()
        self.proc.wait()
        return time.time()

    def restart(self, clip: Path) -> float:
        """Killed and started at once on the same port with `clip` (a camera rebooted with new
        settings); returns when it went down."""
        down = self.kill()
        self.clip = clip
        deadline = time.monotonic() + 10
        while True:
            try:
                self.start()
                return down
            except RuntimeError:
                if time.monotonic() > deadline:  # the port may linger a moment
                    raise
                time.sleep(0.2)


class Subscriber:
    """Independent of the product: plain paho, MQTT 5 persistent session, de-duplication by (event_id, phase)."""

    def __init__(self, port: int, cameras: list[str]) -> None:
        self.cameras = cameras
        self.seen: set[tuple[str, str]] = set()
        self.starts: dict[str, set[str]] = {}
        self.times: dict[str, str] = {}  # event_id -> start, for the record
        self.raw = 0
        self.lock = threading.Lock()
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="soak-subscriber", protocol=paho.MQTTv5)
        self.c.on_connect = lambda c, u, f, r, p: c.subscribe("edge/+/+/alarms", qos=1)
        self.c.on_message = self._on_message
        self.c.reconnect_delay_set(1, 2)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.c.connect_async("127.0.0.1", port, clean_start=False, properties=props)
        self.c.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        ev = json.loads(msg.payload)
        with self.lock:
            self.raw += 1
            self.seen.add((ev["event_id"], ev["phase"]))
            if ev["type"] == "intrusion" and ev["phase"] == "start":
                self.starts.setdefault(ev["camera"], set()).add(ev["event_id"])
                self.times[ev["event_id"]] = ev["start"]

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {cam: len(self.starts.get(cam, ())) for cam in self.cameras}

    def stop(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def expected(cameras: list[str], log: list[tuple[str, str, float]], ends: dict[str, list[float]],
             end: float) -> dict[str, list[int]]:
    """camera -> [entries certain, entries that may or may not have raised an alarm yet]."""
    out = {cam: [0, 0] for cam in cameras}
    for cam in cameras:
        events = sorted((t, what) for what, c, t in log if c == cam)
        cuts = sorted(ends.get(cam, []) + [end])
        starts = [t for t, what in events if what == "play"]
        for i, s in enumerate(starts):
            stop = min([c for c in cuts if c > s] + ([starts[i + 1]] if i + 1 < len(starts) else []))
            loops = with_unprinted([t for t, what in events if what == "loop" and s < t <= stop], s, stop)
            out[cam][0] += len(loops)
            tail = stop - (loops[-1] if loops else s)
            if tail >= CERTAIN_S:
                out[cam][0] += 1
            elif tail >= ENTRY_S:
                out[cam][1] += 1
    return out


def with_unprinted(loops: list[float], start: float, stop: float) -> list[float]:
    """The loop times a server printed, with any it did not print filled in: the server plays in
    real time, so a gap of two or more loop lengths between prints (or since the stream started)
    held that many loops, and so does the time from the last print to `stop` (a full loop's
    length past it, with a second's slack for the server's pace). In one 30-minute run two of six
    streams on one server printed 58 of their 75 loops, while the other four printed all 75 and
    every camera raised 75 alarms."""
    out, last = [], start
    for t in loops:
        missing = round((t - last) / LOOP_S) - 1
        out += [last + LOOP_S * (k + 1) for k in range(max(0, missing))] + [t]
        last = t
    while stop - last >= LOOP_S + 1.0:
        last += LOOP_S
        out.append(last)
    return out


def sample(pid: int, outbox: Path) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    field = {line.split(":")[0]: line.split(":")[1].split() for line in status.splitlines()}
    size = sum(p.stat().st_size for p in outbox.parent.glob(outbox.name + "*"))
    return {"t": time.time(), "rss_mb": int(field["VmRSS"][0]) / 1024, "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": int(field["Threads"][0]), "outbox_mb": size / 1e6}


def slopes(samples: list[dict[str, float]]) -> dict[str, float]:
    """Least-squares growth per hour of each series, after the first 20 % (warm-up)."""
    keep = samples[len(samples) // 5:]
    if len(keep) < 3:
        return {}
    t = np.array([s["t"] for s in keep]) / 3600.0
    return {k: round(float(np.polyfit(t, [s[k] for s in keep], 1)[0]), 3)
            for k in ("rss_mb", "fds", "threads", "outbox_mb")}


def write_config(folder: Path, broker: Broker, servers: dict[str, Rtsp], detect_fps: float) -> Path:
    # The footage's zone with no cooldown: the tracker keeps the walker's track id across the loop
    # point, and the default 30 s cooldown would (rightly) hold back a re-entry 1 s after leaving.
    # With none, every entry is one alarm, which is what the count from the loops assumes.
    zones = folder / "zones.yaml"
    zones.write_text(ZONES.read_text().replace("  dwell_s: 3.0\n", "  dwell_s: 3.0\n  cooldown_s: 0\n"))
    assert "cooldown_s: 0" in zones.read_text(), "the footage's zone file changed"
    cams = "".join(f"  - {{id: {c}, url: 'rtsp://127.0.0.1:{servers[c].port}/{c}', zones: {zones},"
                   f" detect_fps: {detect_fps}}}\n" for c in servers)
    conf = folder / "cameras.yaml"
    conf.write_text(
        "site: {id: soak}\ndevice: {id: box}\n"
        f"alarms: {{store_dir: {folder / 'store'}}}\n"
        f"mqtt:\n  port: {broker.port}\n  reconnect_min_s: 1\n  reconnect_max_s: 2\n  health_interval_s: 10\n"
        f"  outbox: {{path: {folder / 'outbox.sqlite'}}}\n"
        f"http: {{enabled: false}}\ncameras:\n{cams}")
    return conf


class Faults:
    """The broker restarted every `broker_every` s; the spare RTSP server killed at a third of the
    run and started again on its port 10 s later; the resized camera's server restarted at two
    thirds with `tall` (the clip at 640x480)."""

    def __init__(self, broker: Broker, spare: Rtsp, began: float, duration: float, broker_every: float,
                 resized: Rtsp | None = None, tall: Callable[[], Path] | None = None) -> None:
        self.broker, self.spare, self.began, self.duration = broker, spare, began, duration
        self.every, self.next_restart = broker_every, began + broker_every
        self.restarts, self.killed_at, self.resized_at = 0, None, None
        self.resized, self.tall = resized, tall
        self.cuts: dict[str, list[float]] = {}  # camera -> when its server was killed

    def step(self, now: float) -> None:
        if now >= self.next_restart:
            self.broker.stop()
            time.sleep(2)
            self.broker.start()
            self.restarts += 1
            self.next_restart += self.every
        if self.killed_at is None and now - self.began >= self.duration / 3:
            self.killed_at = self.spare.kill()
            for cam in self.spare.cameras:
                self.cuts.setdefault(cam, []).append(self.killed_at)
        if self.killed_at is not None and self.spare.proc.poll() is not None and now - self.killed_at >= 10:
            self.spare.start()  # same port: the agent's camera reconnects by itself
        if self.resized is not None and self.resized_at is None and now - self.began >= 2 * self.duration / 3:
            self.resized_at = self.resized.restart(self.tall())
            for cam in self.resized.cameras:
                self.cuts.setdefault(cam, []).append(self.resized_at)


def later(work: Callable[[], Path]) -> Callable[[], Path]:
    """`work` started on a thread now; the returned call waits for its result."""
    out: list[Path] = []
    thread = threading.Thread(target=lambda: out.append(work()), daemon=True)
    thread.start()
    return lambda: (thread.join(), out[0])[1]


def run(duration: float, broker_every: float, folder: Path, n_cameras: int, detect_fps: float,
        trace_memory: Path | None = None) -> dict:
    cameras = [f"cam{i}" for i in range(1, n_cameras + 1)]
    log: list[tuple[str, str, float]] = []
    broker = Broker(folder / "broker")
    broker.start()
    clip = make_clip(folder)
    tall = later(lambda: make_clip(folder, (640, 480))) if n_cameras >= 3 else None  # while the agent starts
    main, spare = Rtsp(cameras[:-2 if tall else -1], log, clip), Rtsp(cameras[-1:], log, clip)
    resized = Rtsp(cameras[-2:-1], log, clip) if tall else None
    servers = [s for s in (main, resized, spare) if s is not None]
    for server in servers:
        server.start()
    conf = write_config(folder, broker, {c: s for s in servers for c in s.cameras}, detect_fps)
    sub = Subscriber(broker.port, cameras)
    memtrace = ([str(ROOT / "scripts" / "memtrace.py"), "--out", str(trace_memory), "--every", "60"]
                if trace_memory else [])
    agent = subprocess.Popen([sys.executable, *memtrace, "-m", "edge_agent.cli", "run", "--config", str(conf),
                              "--health-file", str(folder / "health.json")], cwd=ROOT,
                             stdout=open(folder / "agent.log", "wb"), stderr=subprocess.STDOUT)
    began = time.time()
    faults = Faults(broker, spare, began, duration, broker_every, resized, tall)
    samples: list[dict[str, float]] = []
    next_sample = began
    try:
        while time.time() - began < duration and agent.poll() is None:
            if (folder / "health.json").is_file() and time.time() >= next_sample:  # once running, every 10 s
                samples.append(sample(agent.pid, folder / "outbox.sqlite"))
                next_sample = time.time() + 10
            faults.step(time.time())
            time.sleep(0.2)
        end = time.time()
        for server in servers:  # no more entries from here on; what was entered before must still arrive
            if server.proc.poll() is None:
                server.kill()
        truth = expected(cameras, log, faults.cuts, end)
        deadline = time.time() + 60
        while time.time() < deadline and any(sub.counts()[c] < truth[c][0] for c in cameras):
            time.sleep(1)
        time.sleep(5)  # late duplicates, if any, would show now
        alive = agent.poll() is None
    finally:
        if agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            agent.wait(60)
        sub.stop()
        broker.stop()
        for server in servers:
            if server.proc and server.proc.poll() is None:
                server.kill()
    (folder / "record.json").write_text(json.dumps({"rtsp": log, "cuts": faults.cuts, "end": end, "alarms": {
        c: sorted(sub.times[e] for e in sub.starts.get(c, ())) for c in cameras}}))
    return report(folder, truth, sub, faults, samples, alive, end - began)


def report(folder: Path, truth: dict[str, list[int]], sub: Subscriber, faults: Faults,
           samples: list[dict[str, float]], alive: bool, seconds: float) -> dict:
    got = sub.counts()
    health = json.loads((folder / "health.json").read_text()) if (folder / "health.json").is_file() else {}
    mqtt, cams = health.get("mqtt", {}), health.get("cameras", {})
    # the camera whose picture changed size: analysed at the new size, without frame errors
    resized = {c: {"width": cams.get(c, {}).get("width"), "height": cams.get(c, {}).get("height"),
                   "frame_errors": cams.get(c, {}).get("counters", {}).get("frame_errors")}
               for c in (faults.resized.cameras if faults.resized_at is not None else [])}
    return {
        "duration_s": round(seconds), "broker_restarts": faults.restarts,
        "rtsp_server_killed": faults.killed_at is not None, "agent_alive_at_end": alive,
        "resized": resized,
        "cameras": {c: {"entries": truth[c][0], "maybe": truth[c][1], "alarms": got[c]} for c in truth},
        "entries": sum(t[0] for t in truth.values()), "alarms": sum(got.values()),
        "detector_ms_per_frame": health.get("detector", {}).get("ms_per_frame"),
        "frames_dropped": sum(c["counters"]["frames_dropped"] for c in health.get("cameras", {}).values()),
        "raw_alarm_messages": sub.raw, "distinct_phases": len(sub.seen),
        "mqtt": {k: mqtt.get(k) for k in ("poison", "rechunked", "chunk_cap", "connects", "rejected", "problems")},
        "samples": len(samples), "slope_per_hour": slopes(samples),
        "rss_mb_series": [[round(x["t"] - samples[0]["t"]), round(x["rss_mb"], 1)] for x in samples],
        "first_sample": samples[0] if samples else None, "last_sample": samples[-1] if samples else None,
        "passed": alive and all(truth[c][0] <= got[c] <= truth[c][0] + truth[c][1] for c in truth)
        and all(r["height"] == 480 for r in resized.values()),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=1800.0, help="seconds of cameras running (default 30 min)")
    p.add_argument("--broker-every", type=float, default=None,
                   help="seconds between broker restarts (default: 180, or half the run when shorter)")
    p.add_argument("--cameras", type=int, default=8, help="looping RTSP cameras (the last on its own server)")
    p.add_argument("--detect-fps", type=float, default=2.0, help="frames analysed per second per camera")
    p.add_argument("--json", help="write the result here too")
    p.add_argument("--keep", help="work in this folder and keep it (agent.log, broker log, outbox)")
    p.add_argument("--trace-memory", help="run the agent under scripts/memtrace.py, its samples in this folder")
    args = p.parse_args()
    every = args.broker_every or min(180.0, args.duration / 2)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="soak-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        result = run(args.duration, every, folder, args.cameras, args.detect_fps,
                     Path(args.trace_memory) if args.trace_memory else None)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
