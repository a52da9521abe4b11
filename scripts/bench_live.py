#!/usr/bin/env python3
"""Live ingest benchmark: N RTSP cameras (720p25 H.264, looped) through the agent, against a floor
and a naive baseline measured in the same run.

    .venv/bin/python scripts/bench_live.py                      # N = 1, 4, 8, 16; about 4 minutes
    .venv/bin/python scripts/bench_live.py --cameras 4 --seconds 10

- ours: `LiveAgent` (one decode thread per camera, motion gate, one batching detector thread),
  detect fps 5, a mix of quiet cameras (a still scene with sensor noise) and busy ones (a person
  walking through a rail zone; about one camera in four).
- floor: demux + decode only (no BGR conversion) CPU per camera-second over the same RTSP
  streams, plus the model's CPU per analysed frame; floor(N) = decode + inference for the frames
  ours analysed.
- baseline: one process per camera that decodes and converts every frame and runs the detector
  on every 5th (5 fps), no batching and no gating.
CPU is process CPU time (user + system) from the kernel; the RTSP server's own CPU is reported
apart (it stands for the cameras, not for the edge box).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

W, H, FPS, DETECT_FPS = 1280, 720, 25, 5.0
ZONE = {"name": "track", "kind": "rail", "polygon": [[0.3, 0.4], [0.7, 0.4], [0.7, 1.0], [0.3, 1.0]],
        "labels": ["person"], "dwell_s": 1.0, "cooldown_s": 5.0}


# --- footage ---------------------------------------------------------------------------------

def render_clips(folder: Path, seconds: float = 12.0) -> tuple[Path, Path]:
    """quiet.mp4 (a still rail scene with sensor noise) and busy.mp4 (a person walks through)."""
    import av
    import cv2

    from tests.data.scenes import background, compose, cutout

    folder.mkdir(parents=True, exist_ok=True)
    quiet, busy = folder / "quiet.mp4", folder / "busy.mp4"
    if quiet.exists() and busy.exists():
        return quiet, busy
    bg = background("train-tracks1")
    bg = cv2.resize(bg[22:338], (W, H), interpolation=cv2.INTER_CUBIC)  # 16:9 crop of the 4:3 photo
    cut = cutout("dan1")
    rng = np.random.default_rng(0)
    noise = [rng.integers(-3, 4, (H, W, 3), dtype=np.int16) for _ in range(7)]  # sensor noise, cycled
    for path, walker in ((quiet, False), (busy, True)):
        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
            stream.options = {"preset": "veryfast", "crf": "23", "bf": "0", "g": str(FPS), "sc_threshold": "0"}
            for i in range(int(seconds * FPS)):
                img = bg
                t = i / FPS
                if walker and t < seconds - 2:
                    x = int(40 + (W - 260) * t / (seconds - 2))
                    img, _ = compose(bg, cut, x, 690, 320)
                noisy = np.clip(img.astype(np.int16) + noise[i % len(noise)], 0, 255).astype(np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(noisy, format="bgr24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    return quiet, busy


# --- the RTSP server and CPU accounting --------------------------------------------------------

def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Server:
    def __init__(self, mounts: dict[str, Path]) -> None:
        cmd = ["/usr/bin/python3", str(ROOT / "scripts" / "rtsp_server.py"), "--port", "0", "--loop"]
        cmd += [f"{name}={path}" for name, path in mounts.items()]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            raise SystemExit(f"rtsp server did not start ({line!r}); is GStreamer installed (scripts/setup.sh)?")
        self.port = int(line.split()[1])

    def url(self, name: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    def cpu(self) -> float:
        return proc_cpu(self.proc.pid)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


CONF = {"busy_every": 4, "max_batch": 4}  # one camera in busy_every is busy; the detector's max batch


def mix(n: int, busy_every: int | None = None) -> dict[str, str]:
    """Camera name -> clip kind: about one in `busy_every` busy (at least one), the rest quiet."""
    busy = max(1, n // (busy_every or CONF["busy_every"]))
    return {f"cam{i:02d}": ("busy" if i < busy else "quiet") for i in range(n)}


# --- ours ------------------------------------------------------------------------------------

class NullSink:
    """Accepts events (media are built, then dropped): the benchmark measures the edge work."""

    def emit(self, event, media):
        return event

    def close(self) -> None:
        return None


def run_ours(n: int, clips: dict[str, Path], detector, seconds: float, busy_every: int | None = None,
             tiles: str = "auto") -> dict[str, Any]:
    from edge_agent.app import LiveAgent
    from edge_agent.config.models import AgentConfig, Camera, Device, Site, Zone, ZoneFile

    cams = mix(n, busy_every)
    server = Server({c: clips[kind] for c, kind in cams.items()})
    cfg = AgentConfig(site=Site(id="bench"), device=Device(id="edge"), mqtt={"enabled": False},
                      detector={"max_batch": CONF["max_batch"], "tiles": tiles},
                      cameras=[Camera(id=c, url=server.url(c), detect_fps=DETECT_FPS) for c in cams])
    zones = {c: ZoneFile(zones=[Zone(**ZONE)]) for c in cams}
    agent = LiveAgent(cfg, zones, detector, NullSink())
    agent.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(agent.health.state(c) != "online" for c in cams):
            agent.supervise()
            time.sleep(0.2)
        time.sleep(1.0)  # settle: first keyframes, first batches
        before = _counters(agent, cams)
        tiles0 = _tiles(agent, cams)
        lat0 = len(agent.delivery.recent_latencies())  # a bench run raises far fewer than it keeps
        cpu0, srv0, t0 = self_cpu(), server.cpu(), time.monotonic()
        end = t0 + seconds
        while time.monotonic() < end:
            agent.supervise()
            time.sleep(0.25)
        cpu1, srv1, t1 = self_cpu(), server.cpu(), time.monotonic()
        after = _counters(agent, cams)
        tiles1 = _tiles(agent, cams)
        lat = agent.delivery.recent_latencies()[lat0:]
    finally:
        agent.stop()
        server.close()
    wall = t1 - t0
    d = {k: after[k] - before[k] for k in after}
    return {
        "n": n, "busy": sum(1 for k in cams.values() if k == "busy"), "wall": wall, "cpu": cpu1 - cpu0,
        "server_cpu": srv1 - srv0, "analysed": d["frames_analysed"], "gated": d["frames_gated"],
        "dropped": d["frames_dropped"], "frames_in": d["frames_in"], "reconnects": d["reconnects"],
        "latencies": lat, "detector": agent.health.snapshot()["detector"], "tiles_setting": tiles,
        "tiles": {kind: sum(tiles1[c] - tiles0[c] for c, k in cams.items() if k == kind) for kind in ("busy", "quiet")},
    }


def _tiles(agent, cams) -> dict[str, int]:
    """Tiles detected so far per camera."""
    return {c: agent.tiling.cameras[c].detected for c in cams}


def _counters(agent, cams) -> dict[str, int]:
    keys = ("frames_analysed", "frames_gated", "frames_dropped", "frames_in", "reconnects")
    out = dict.fromkeys(keys, 0)
    for c in cams:
        cnt = agent.health.counters(c)
        for k in keys:
            out[k] += cnt.get(k, 0)
    return out


# --- floor -----------------------------------------------------------------------------------

def run_floor_decode(clips: dict[str, Path], seconds: float, n: int = 4) -> float:
    """Decode-only CPU seconds per camera-second over RTSP (threads, no BGR conversion)."""
    import av

    cams = mix(n)
    server = Server({c: clips[kind] for c, kind in cams.items()})
    stop = threading.Event()
    started = threading.Barrier(n + 1)

    def decode(url: str) -> None:
        c = av.open(url, options={"rtsp_transport": "tcp"}, timeout=(10, 5))
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        started.wait()
        for packet in c.demux(s):
            for _ in packet.decode():
                pass
            if stop.is_set():
                break
        c.close()

    threads = [threading.Thread(target=decode, args=(server.url(c),), daemon=True) for c in cams]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(1.0)
    cpu0, t0 = self_cpu(), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = self_cpu(), time.monotonic()
    stop.set()
    for t in threads:
        t.join(5)
    server.close()
    return (cpu1 - cpu0) / (n * (t1 - t0))


def inference_cost(detector, image: np.ndarray, reps: int = 12) -> tuple[float, float]:
    """(CPU s per frame alone, CPU s per frame in batches of 4)."""
    detector.detect([image])
    c0 = time.process_time()
    for _ in range(reps):
        detector.detect([image])
    single = (time.process_time() - c0) / reps
    c0 = time.process_time()
    for _ in range(reps // 4 or 1):
        detector.detect([image] * 4)
    batched = (time.process_time() - c0) / (4 * (reps // 4 or 1))
    return single, batched


# --- naive baseline ----------------------------------------------------------------------------

def baseline_worker(url: str, seconds: float) -> None:
    """One camera, one process: decode + BGR every frame, detect every 5th, no batching, no gating."""
    import av

    from edge_agent.detect.common import DetectorOptions
    from edge_agent.detect.registry import load_detector

    detector = load_detector("yolov3-tiny", DetectorOptions())
    c = av.open(url, options={"rtsp_transport": "tcp"}, timeout=(10, 5))
    s = c.streams.video[0]
    every = round(FPS / DETECT_FPS)
    frames = analysed = 0
    t0, cpu0, error = time.monotonic(), self_cpu(), None
    try:
        for packet in c.demux(s):
            for frame in packet.decode():
                image = frame.to_ndarray(format="bgr24")
                frames += 1
                if frames == 1:
                    t0, cpu0 = time.monotonic(), self_cpu()
                if frames % every == 0:
                    detector.detect([image])
                    analysed += 1
            if frames and time.monotonic() - t0 >= seconds:
                break
    except av.error.FFmpegError as exc:  # a starved worker times out: report what it did
        error = type(exc).__name__
    print(json.dumps({"cpu": self_cpu() - cpu0, "wall": time.monotonic() - t0, "analysed": analysed,
                      "frames": frames, "error": error}), flush=True)


def run_baseline(n: int, clips: dict[str, Path], seconds: float) -> dict[str, Any]:
    cams = mix(n)
    server = Server({c: clips[kind] for c, kind in cams.items()})
    srv0 = server.cpu()
    procs = [subprocess.Popen([sys.executable, __file__, "--baseline-worker", server.url(c), "--seconds",
                               str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for c in cams]
    results = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=seconds + 60)
            results.append(json.loads(out.strip().splitlines()[-1]))
        except (subprocess.TimeoutExpired, ValueError, IndexError):
            p.kill()
    server_cpu = server.cpu() - srv0
    server.close()
    if not results:
        return {"n": n, "cpu_per_cam_s": float("nan"), "analysed_fps": 0.0}
    failed = sum(1 for r in results if r.get("error") or r["wall"] < seconds / 2) + n - len(results)
    results = [r for r in results if r["wall"] > 0]
    if failed:
        print(f"  baseline N={n}: {failed} worker(s) timed out or ended early (starved)", flush=True)
    cam_seconds = sum(r["wall"] for r in results) or float("nan")
    return {
        "n": n, "ok": n - failed, "cpu_per_cam_s": sum(r["cpu"] for r in results) / cam_seconds,
        "analysed_fps": sum(r["analysed"] / r["wall"] for r in results),
        "decoded_fps": sum(r["frames"] / r["wall"] for r in results), "server_cpu": server_cpu,
    }


# --- report ------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def report(rows: list[dict[str, Any]], floor_decode: float, infer: tuple[float, float]) -> None:
    print()
    print(f"floor: decode only {floor_decode:.4f} CPU s per camera-second "
          f"({100 * floor_decode:.1f}% of a core per 720p25 camera); "
          f"inference {1000 * infer[0]:.1f} ms CPU per frame alone, {1000 * infer[1]:.1f} ms in batches of 4")
    head = (f"{'N':>3} {'busy':>4} {'cpu/cam-s':>9} {'floor':>7} {'x floor':>7} {'base':>7} {'x base':>6} "
            f"{'asked':>6} {'sampled':>7} {'analysed':>8} {'base an.':>8} {'dropped':>7} "
            f"{'p50 ms':>7} {'p95 ms':>7} {'server':>6}")
    print(head)
    print("-" * len(head))
    for r in rows:
        o, b = r["ours"], r.get("base") or {"cpu_per_cam_s": float("nan"), "analysed_fps": float("nan")}
        cam_s = o["n"] * o["wall"]
        ours = o["cpu"] / cam_s
        floor = floor_decode + infer[1] * o["analysed"] / cam_s
        asked = o["n"] * DETECT_FPS
        sampled = (o["analysed"] + o["gated"] + o["dropped"]) / o["wall"]
        share = o["server_cpu"] / (o["server_cpu"] + o["cpu"]) if o["cpu"] else float("nan")
        print(f"{o['n']:>3} {o['busy']:>4} {ours:>9.4f} {floor:>7.4f} {ours / floor:>7.2f} "
              f"{b['cpu_per_cam_s']:>7.4f} {ours / b['cpu_per_cam_s']:>6.2f} {asked:>6.1f} {sampled:>7.1f} "
              f"{o['analysed'] / o['wall']:>8.1f} {b['analysed_fps']:>8.1f} {o['dropped']:>7d} "
              f"{1000 * pct(o['latencies'], 50):>7.0f} {1000 * pct(o['latencies'], 95):>7.0f} {100 * share:>5.0f}%")
    print()
    print("cpu/cam-s: CPU seconds per camera-second of video; floor: decode-only + inference of the frames we analysed;")
    print("sampled: frames at detect fps seen by the motion gate; analysed: frames the detector ran on (fps);")
    print("base an.: analysed fps the naive baseline reached (asked = N x 5); p50/p95: frame to alarm delivered;")
    print("server: the RTSP server's share of all CPU (it stands in for the cameras).")
    for r in rows:
        o = r["ours"]
        if o["n"] != 16:
            continue
        p95 = pct(o["latencies"], 95)
        ok = o["dropped"] == 0 and (p95 < 1.0 or not o["latencies"])
        print(f"target (16 cameras, no analysed-frame loss, p95 < 1 s) with {o['busy']} busy: dropped "
              f"{o['dropped']} of {o['analysed'] + o['dropped']}, p95 {1000 * p95:.0f} ms -> {'MET' if ok else 'NOT MET'}")


def report_tiles(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """What tiles cost: each N run with tiles off and with the shipped `auto`, in the same run."""
    print()
    head = (f"{'N':>3} {'busy':>4} {'cpu/cam-s off':>13} {'auto':>7} {'x off':>6} {'tiles/s busy cam':>16} "
            f"{'tiles/s quiet cam':>17} {'dropped off/auto':>16} {'p95 ms off/auto':>15}")
    print(head)
    print("-" * len(head))
    for off, auto in pairs:
        per = [o["cpu"] / (o["n"] * o["wall"]) for o in (off, auto)]
        busy, quiet = auto["busy"], auto["n"] - auto["busy"]
        rate = {k: auto["tiles"][k] / (count * auto["wall"]) if count else float("nan")
                for k, count in (("busy", busy), ("quiet", quiet))}
        print(f"{auto['n']:>3} {busy:>4} {per[0]:>13.4f} {per[1]:>7.4f} {per[1] / per[0]:>6.2f} {rate['busy']:>16.2f} "
              f"{rate['quiet']:>17.2f} {off['dropped']:>7d}/{auto['dropped']:<8d} "
              f"{1000 * pct(off['latencies'], 95):>7.0f}/{1000 * pct(auto['latencies'], 95):<7.0f}")
    print("tiles/s: tiles detected per camera-second beside the analysed frames (busy: a person walks through the "
          "zone; quiet: a still scene with sensor noise, tiles only on the sweep)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cameras", type=int, nargs="*", default=[1, 4, 8, 16])
    p.add_argument("--seconds", type=float, default=15.0, help="measured seconds per run")
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "edge-agent-bench"))
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--busy-every", type=int, default=CONF["busy_every"], help="one camera in this many is busy")
    p.add_argument("--max-batch", type=int, default=CONF["max_batch"])
    p.add_argument("--ort-threads", type=int, default=0, help="detector intra-op threads (0: the default)")
    p.add_argument("--tiles-cost", action="store_true", help="only ours, each N with detector.tiles off and auto: "
                   "what tiles cost on busy and quiet cameras")
    p.add_argument("--baseline-worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.baseline_worker:
        baseline_worker(args.baseline_worker, args.seconds)
        return 0
    logging.basicConfig(level=logging.ERROR)
    CONF.update(busy_every=args.busy_every, max_batch=args.max_batch)
    from edge_agent.detect.common import DetectorOptions
    from edge_agent.detect.registry import load_detector

    began = time.monotonic()
    quiet, busy = render_clips(Path(args.work))
    clips = {"quiet": quiet, "busy": busy}
    detector = load_detector("yolov3-tiny", DetectorOptions(threads=args.ort_threads))
    import av

    with av.open(str(busy)) as c:
        image = next(c.decode(video=0)).to_ndarray(format="bgr24")
    infer = inference_cost(detector, image)
    floor_decode = run_floor_decode(clips, min(args.seconds, 10.0))
    print(f"clips ready, floor measured ({time.monotonic() - began:.0f} s)", flush=True)
    if args.tiles_cost:
        report_tiles([(run_ours(n, clips, detector, args.seconds, tiles="off"),
                       run_ours(n, clips, detector, args.seconds, tiles="auto")) for n in args.cameras])
        print(f"load average (1, 5, 15 min) {os.getloadavg()}: other work on the box inflates every number")
        return 0
    rows = []
    for n in args.cameras:
        ours = run_ours(n, clips, detector, args.seconds)
        base = {"cpu_per_cam_s": float("nan"), "analysed_fps": float("nan")} if args.no_baseline else \
            run_baseline(n, clips, args.seconds)
        rows.append({"ours": ours, "base": base})
        print(f"N={n}: ours {ours['cpu'] / (n * ours['wall']):.4f} CPU s/cam-s, analysed {ours['analysed']}, "
              f"dropped {ours['dropped']}, alarms {len(ours['latencies'])}, detector {ours['detector']}; baseline "
              f"{base['cpu_per_cam_s']:.4f} ({time.monotonic() - began:.0f} s)", flush=True)
    if 16 in args.cameras and CONF["busy_every"] < 8:
        # the target's "quiet mix": one camera in eight busy (no baseline: it was run above)
        quiet_mix = run_ours(16, clips, detector, args.seconds, busy_every=8)
        rows.append({"ours": quiet_mix})
    report(rows, floor_decode, infer)
    print(f"load average (1, 5, 15 min) {os.getloadavg()}: other work on the box inflates every number")
    print(f"total run time {time.monotonic() - began:.0f} s on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
