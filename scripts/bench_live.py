#!/usr/bin/env python3
"""Live ingest benchmark: N RTSP cameras (720p25 H.264, looped) through the agent, against a floor
and a naive baseline measured in the same run; the cameras sustained at the target; an overload row.

    .venv/bin/python scripts/bench_live.py                      # N = 1, 4, 8, 16; about 4 minutes
    .venv/bin/python scripts/bench_live.py --cameras 4 --seconds 10
    .venv/bin/python scripts/bench_live.py --cameras --no-baseline --sustained 8 16 24 32 --overload 48:6
    .venv/bin/python scripts/bench_live.py ... --max-gop-s 0   # full decode
    .venv/bin/python scripts/bench_live.py --cameras --no-baseline --overload 48:6 --overload-compare

- ours: `LiveAgent` (one decode thread per camera, motion gate learning steady motion (given
  `--learn-s` before each measured run), keyframe-only decode of quiet
  cameras, overload policy, one batching detector thread), detect fps 5, busy cameras (a person
  walking through a rail zone; about one camera in four) and a real quiet mix
  (scripts/footage/bench.py: a still scene with sensor noise, moving water, rain, a 4 s GOP).
- sustained: the most cameras, one in eight busy, with no analysed-frame loss on busy cameras,
  alarm p95 under 1 s and the detect fps never lowered by the overload policy.
- overload: e.g. 48 cameras, 6 busy: each busy camera's first alarm after the person's drawn entry;
  with --overload-compare first without the policy's decode step (quiet cameras whose GOP is past
  keyframe_decode_max_gop_s keep full decode), then with it.
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

sys.path.insert(0, str(ROOT / "scripts"))
from footage.bench import BUSY_ENTRY_S, FPS, QUIET_KINDS, SECONDS, ZONE, render_clips  # noqa: E402
from live_report import DETECT_FPS, pct, report, report_overload, report_tiles, sustained  # noqa: E402

from edge_agent.config.models import Camera, Detector  # noqa: E402


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


# one camera in busy_every is busy; the detector's max batch; keyframe-only decode bound (0: off); model;
# the overload decode bound; cameras[].motion_learning and the seconds the gate is given to learn the
# quiet mix before measuring; cameras[].idle_unchanged_max_s
CONF: dict[str, Any] = {"busy_every": 4, "max_batch": 4, "max_gop_s": 2.0, "model": Detector().model,
                        "overload_gop_s": Camera.model_fields["keyframe_decode_overload_max_gop_s"].default,
                        "motion_learning": True, "learn_s": 40.0,
                        "unchanged_s": Camera.model_fields["idle_unchanged_max_s"].default}


def mix(n: int, busy_every: int | None = None, busy: int | None = None) -> dict[str, str]:
    """Camera name -> clip kind: `busy` cameras (default about one in `busy_every`, at least one)
    with a person walking through, the rest quiet, taking the quiet kinds in turn."""
    busy = busy if busy is not None else max(1, n // (busy_every or CONF["busy_every"]))
    return {f"cam{i:02d}": ("busy" if i < busy else QUIET_KINDS[(i - busy) % len(QUIET_KINDS)]) for i in range(n)}


# --- ours ------------------------------------------------------------------------------------

class NullSink:
    """Keeps the alarms' starts (media are built, then dropped): the benchmark measures the edge work."""

    def __init__(self) -> None:
        self.starts: list[Any] = []

    def emit(self, event, media):
        if event.phase == "start":
            self.starts.append(event)
        return event

    def close(self) -> None:
        return None


def run_ours(cams: dict[str, str], clips: dict[str, Path], detector, seconds: float,
             tiles: str = "auto") -> dict[str, Any]:
    """The live agent on `cams` (name -> clip kind) for `seconds` after every camera is online."""
    from edge_agent.app import LiveAgent
    from edge_agent.config.models import AgentConfig, Camera, Device, Site, Zone, ZoneFile

    server = Server({c: clips[kind] for c, kind in cams.items()})
    cfg = AgentConfig(site=Site(id="bench"), device=Device(id="edge"), mqtt={"enabled": False},
                      detector={"max_batch": CONF["max_batch"], "tiles": tiles},
                      cameras=[Camera(id=c, url=server.url(c), detect_fps=DETECT_FPS,
                                      keyframe_decode_max_gop_s=CONF["max_gop_s"],
                                      keyframe_decode_overload_max_gop_s=CONF["overload_gop_s"],
                                      motion_learning=CONF["motion_learning"],
                                      idle_unchanged_max_s=CONF["unchanged_s"]) for c in cams])
    zones = {c: ZoneFile(zones=[Zone(**ZONE)]) for c in cams}
    sink = NullSink()
    agent = LiveAgent(cfg, zones, detector, sink)
    agent.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(agent.health.state(c) != "online" for c in cams):
            agent.supervise()
            time.sleep(0.2)
        # settle: first keyframes, first batches; a learning gate learns the water and the rain
        settle_until = time.monotonic() + (CONF["learn_s"] if CONF["motion_learning"] else 1.0)
        while time.monotonic() < settle_until:
            agent.supervise()
            time.sleep(0.25)
        before = {c: agent.health.counters(c) for c in cams}
        tiles0 = _tiles(agent, cams)
        lat0 = len(agent.delivery.recent_latencies())  # a bench run raises far fewer than it keeps
        cpu0, srv0, t0 = self_cpu(), server.cpu(), time.monotonic()
        level = 0
        while time.monotonic() < t0 + seconds:
            agent.supervise()
            level = max(level, agent.policy.level)
            time.sleep(0.25)
        cpu1, srv1, t1 = self_cpu(), server.cpu(), time.monotonic()
        after = {c: agent.health.counters(c) for c in cams}
        tiles1 = _tiles(agent, cams)
        lat = agent.delivery.recent_latencies()[lat0:]
        health = agent.health.snapshot()
    finally:
        agent.stop()
        server.close()
    d = {c: {k: after[c].get(k, 0) - before[c].get(k, 0) for k in after[c]} for c in cams}
    total = {k: sum(x[k] for x in d.values()) for k in ("frames_analysed", "frames_gated", "frames_dropped",
                                                        "frames_in", "reconnects")}
    busy = [c for c, kind in cams.items() if kind == "busy"]
    return {
        "n": len(cams), "busy": len(busy), "wall": t1 - t0, "cpu": cpu1 - cpu0,
        "server_cpu": srv1 - srv0, "analysed": total["frames_analysed"], "gated": total["frames_gated"],
        "dropped": total["frames_dropped"], "frames_in": total["frames_in"], "reconnects": total["reconnects"],
        "busy_dropped": sum(d[c]["frames_dropped"] for c in busy), "latencies": lat, "max_level": level,
        "detector": health["detector"], "first_alarm": first_alarms(sink.starts, busy),
        "entries": entry_alarms(sink.starts, busy),
        "degraded": sum(1 for e in sink.starts if e.type == "analysis_degraded"),
        # nothing walks on a quiet camera: any intrusion there, settling included, is false
        "false_alarms": sum(1 for e in sink.starts if e.type == "intrusion" and e.camera not in busy),
        "keyframes_only": sum(1 for c in cams if health["cameras"][c].get("decode") == "keyframes"),
        "keyframes_why": {why: sum(1 for c in cams if health["cameras"][c].get("decode_reason") == why)
                          for why in ("gop", "overload")},
        "overload_gop_s": CONF["overload_gop_s"],
        "decode": {c: (kind, health["cameras"][c].get("decode"), health["cameras"][c].get("steady_motion"))
                   for c, kind in cams.items()},
        "tiles_setting": tiles,
        "tiles": {kind: sum(tiles1[c] - tiles0[c] for c, k in cams.items() if k == kind) for kind in ("busy", "quiet")},
    }


def _tiles(agent, cams) -> dict[str, int]:
    """Tiles detected so far per camera."""
    return {c: agent.tiling.cameras[c].detected for c in cams}


def first_alarms(starts: list[Any], busy: list[str]) -> dict[str, float | None]:
    """Per busy camera, its first intrusion's delay after the person's feet entered the zone (the
    clip loops every SECONDS and each client starts it at 0, so the entry is known in media time)."""
    out: dict[str, float | None] = dict.fromkeys(busy)
    for ev in starts:
        if ev.type == "intrusion" and ev.camera in out and out[ev.camera] is None:
            out[ev.camera] = round((ev.media_time - BUSY_ENTRY_S) % SECONDS, 2)
    return out


def entry_alarms(starts: list[Any], busy: list[str]) -> dict[str, list[tuple[int, float]]]:
    """Per busy camera, (loop, delay after that loop's entry) of each intrusion in order: one per
    walk through the zone (the cooldown is shorter than a loop), from the start-up to the end."""
    out: dict[str, list[tuple[int, float]]] = {c: [] for c in busy}
    for ev in starts:
        if ev.type == "intrusion" and ev.camera in out:
            loop, delay = divmod(ev.media_time - BUSY_ENTRY_S, SECONDS)
            out[ev.camera].append((int(loop), round(delay, 2)))
    return out


# --- floor -----------------------------------------------------------------------------------

def run_floor_decode(clips: dict[str, Path], seconds: float, n: int = 4, kind: str | None = None) -> float:
    """Decode-only CPU seconds per camera-second over RTSP (threads, no BGR conversion), of the mix,
    or of `n` cameras of one `kind` decoding keyframes only (what a quiet camera costs)."""
    import av

    cams = {f"cam{i:02d}": kind for i in range(n)} if kind else mix(n)
    server = Server({c: clips[kind] for c, kind in cams.items()})
    stop = threading.Event()
    started = threading.Barrier(n + 1)

    def decode(url: str) -> None:
        c = av.open(url, options={"rtsp_transport": "tcp"}, timeout=(10, 5))
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        if kind:
            s.codec_context.skip_frame = "NONKEY"
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

    detector = load_detector(Detector().model, DetectorOptions())
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


def find_sustained(clips, detector, seconds: float, ladder: list[int]) -> tuple[int, list[dict[str, Any]]]:
    """The most cameras (one in eight busy) that meet the target, climbing `ladder` until one fails."""
    best, rows = 0, []
    for n in ladder:
        o = run_ours(mix(n, busy=max(1, n // 8)), clips, detector, seconds)
        rows.append({"ours": o})
        print(f"  sustained? N={n} ({o['busy']} busy): busy dropped {o['busy_dropped']}, shed level "
              f"{o['max_level']}, p95 {1000 * pct(o['latencies'], 95):.0f} ms -> "
              f"{'met' if sustained(o) else 'not met'}", flush=True)
        if not sustained(o):
            break
        best = n
    return best, rows


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cameras", type=int, nargs="*", default=[1, 4, 8, 16])
    p.add_argument("--seconds", type=float, default=15.0, help="measured seconds per run")
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "edge-agent-bench"))
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--busy-every", type=int, default=CONF["busy_every"], help="one camera in this many is busy")
    p.add_argument("--max-batch", type=int, default=CONF["max_batch"])
    p.add_argument("--ort-threads", type=int, default=0, help="detector intra-op threads (0: the default)")
    p.add_argument("--model", default=CONF["model"], help="a model of models/models.yaml (e.g. yolov3-tiny-int8)")
    p.add_argument("--max-gop-s", type=float, default=CONF["max_gop_s"],
                   help="keyframe_decode_max_gop_s of every camera (0: full decode, the old behaviour)")
    p.add_argument("--sustained", type=int, nargs="*", default=[],
                   help="climb these camera counts (one in eight busy) to find the most sustained at the target")
    p.add_argument("--overload", default="", help="N:BUSY, e.g. 48:6: the overload row")
    p.add_argument("--overload-compare", action="store_true",
                   help="the overload row twice: first with keyframe_decode_overload_max_gop_s 0 (overload does "
                        "not shed decode), then with the default")
    p.add_argument("--compare", action="store_true",
                   help="first climb the --sustained ladder as the product was before issue 15 (the same fp32 model "
                   "on its square input, full decode, no overload decode step, motion learning off, every idle "
                   "check), in this run")
    p.add_argument("--learn-s", type=float, default=CONF["learn_s"],
                   help="seconds the motion gate learns steady motion before each measured run (learning on)")
    p.add_argument("--tiles-cost", action="store_true", help="only ours, each N with detector.tiles off and auto: "
                   "what tiles cost on busy and quiet cameras")
    p.add_argument("--baseline-worker", help=argparse.SUPPRESS)
    return p.parse_args()


def main() -> int:
    args = parse_args()
    if args.baseline_worker:
        baseline_worker(args.baseline_worker, args.seconds)
        return 0
    logging.basicConfig(level=logging.ERROR)
    CONF.update(busy_every=args.busy_every, max_batch=args.max_batch, max_gop_s=args.max_gop_s, model=args.model,
                learn_s=args.learn_s)
    from edge_agent.detect.common import DetectorOptions
    from edge_agent.detect.registry import load_detector

    began = time.monotonic()
    clips = render_clips(Path(args.work))
    detector = load_detector(args.model, DetectorOptions(threads=args.ort_threads))
    import av

    with av.open(str(clips["busy"])) as c:
        image = next(c.decode(video=0)).to_ndarray(format="bgr24")
    infer = inference_cost(detector, image)
    floor_decode = run_floor_decode(clips, min(args.seconds, 10.0))
    keyframes = run_floor_decode(clips, min(args.seconds, 10.0), kind="still")
    print(f"decode only: {100 * floor_decode:.2f}% of a core per camera of the mix, every frame; "
          f"{100 * keyframes:.2f}% for a 1 s GOP camera decoding keyframes only ({floor_decode / keyframes:.1f}x less)")
    if args.overload:
        long_gop = run_floor_decode(clips, min(args.seconds, 10.0), kind="gop4")
        print(f"decode only: {100 * long_gop:.2f}% for a 4 s GOP camera decoding keyframes only, as overload sheds "
              f"decode ({floor_decode / long_gop:.1f}x less than the mix decoding every frame)")
    print(f"model {args.model}, keyframe_decode_max_gop_s {args.max_gop_s}: clips ready, floor measured "
          f"({time.monotonic() - began:.0f} s)", flush=True)
    if args.tiles_cost:
        report_tiles([(run_ours(mix(n), clips, detector, args.seconds, tiles="off"),
                       run_ours(mix(n), clips, detector, args.seconds, tiles="auto")) for n in args.cameras])
        print(f"load average (1, 5, 15 min) {os.getloadavg()}: other work on the box inflates every number")
        return 0
    rows = []
    for n in args.cameras:
        ours = run_ours(mix(n), clips, detector, args.seconds)
        base = {"cpu_per_cam_s": float("nan"), "analysed_fps": float("nan")} if args.no_baseline else \
            run_baseline(n, clips, args.seconds)
        rows.append({"ours": ours, "base": base})
        print(f"N={n}: ours {ours['cpu'] / (n * ours['wall']):.4f} CPU s/cam-s, analysed {ours['analysed']}, "
              f"dropped {ours['dropped']}, alarms {len(ours['latencies'])}, detector {ours['detector']}; baseline "
              f"{base['cpu_per_cam_s']:.4f} ({time.monotonic() - began:.0f} s)", flush=True)
    reference = None
    if args.compare and args.sustained:
        saved = dict(CONF)
        CONF.update(max_gop_s=0.0, motion_learning=False, overload_gop_s=0.0, unchanged_s=0.0)  # before issue 15
        fp32 = args.model.removesuffix("-int8")
        ref_detector = load_detector(fp32, DetectorOptions(threads=args.ort_threads, rect=False))
        ref_infer = inference_cost(ref_detector, image)
        print(f"reference detector ({fp32}, its square input): {1000 * ref_infer[0]:.1f} ms CPU per frame alone "
              f"against {1000 * infer[0]:.1f} for ours ({ref_infer[0] / infer[0]:.2f}x)", flush=True)
        reference, more = find_sustained(clips, ref_detector, args.seconds, args.sustained)
        rows += more
        CONF.update(saved)
    best, more = find_sustained(clips, detector, args.seconds, args.sustained) if args.sustained else (None, [])
    rows += more
    overloads: list[dict[str, Any]] = []
    if args.overload:
        n, busy = (int(x) for x in args.overload.split(":"))
        overloads = []
        for gop_s in ([0.0] if args.overload_compare else []) + [CONF["overload_gop_s"]]:
            CONF.update(overload_gop_s=gop_s)
            overloads.append(run_ours(mix(n, busy=busy), clips, detector, args.seconds))
            rows.append({"ours": overloads[-1]})
    report(rows, floor_decode, infer)
    if reference is not None:
        print(f"reference ({args.model.removesuffix('-int8')} fp32 on its square input, full decode, no overload "
              f"decode step, motion learning off, every idle check): {reference} cameras sustained at the target")
    if best is not None:
        print(f"cameras sustained at the target (one in eight busy; {args.model}, keyframe_decode_max_gop_s "
              f"{args.max_gop_s}, motion learning on, {args.learn_s:.0f} s to learn): {best} of the ladder "
              f"{args.sustained}")
    for overload in overloads:
        report_overload(overload, Detector().max_motion_gap_s)
    print(f"load average (1, 5, 15 min) {os.getloadavg()}: other work on the box inflates every number")
    print(f"total run time {time.monotonic() - began:.0f} s on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
