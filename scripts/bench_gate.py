#!/usr/bin/env python3
"""The motion gate on the live benchmark's cameras (scripts/footage/bench.py), with and without
learning steady motion: the share of sampled frames the gate lets through as urgent (motion), per
kind of camera, after a learning period. No detector: an open track (`active`) is not simulated.

    .venv/bin/python scripts/bench_gate.py                  # about a minute once the clips exist
    .venv/bin/python scripts/bench_gate.py --learn-s 60 --measure-s 60 --fps 5 1

Each clip (12 s, looped as the RTSP server loops it) is sampled at the detect fps, learned for
`--learn-s` seconds, then measured for `--measure-s`; `--fps 1` is what a camera decoding only
the keyframes of a 1 s GOP feeds its gate. The busy camera's person walks through the zone for
part of each loop, so its share is bounded by that part (the share with learning off).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from footage.bench import QUIET_KINDS, SECONDS, ZONE, render_clips  # noqa: E402

from edge_agent.detect.motion import SceneWatch, zone_regions  # noqa: E402
from edge_agent.sources.gate import sampled_grey  # noqa: E402


def urgent_share(pictures, learn: bool, learn_s: float, measure_s: float) -> float:
    """Share of the samples after `learn_s` seconds that the gate found urgent."""
    watch = SceneWatch(idle_interval_s=2.0, regions=zone_regions([ZONE["polygon"]]), phase=0.0, learn=learn)
    urgent = total = 0
    loop = 0
    while True:
        for t, picture in pictures:
            now = loop * SECONDS + t
            if now >= learn_s + measure_s:
                return urgent / max(1, total)
            decision = watch.observe(picture, now)
            if now >= learn_s:
                total += 1
                urgent += decision.urgent
        loop += 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "edge-agent-bench"))
    p.add_argument("--learn-s", type=float, default=60.0, help="seconds of footage before measuring")
    p.add_argument("--measure-s", type=float, default=60.0)
    p.add_argument("--fps", type=float, nargs="*", default=[5.0, 1.0], help="sampling rates to measure")
    args = p.parse_args()
    began = time.monotonic()
    clips = render_clips(Path(args.work))
    print(f"urgent share of sampled frames after {args.learn_s:.0f} s of learning, over {args.measure_s:.0f} s "
          "(learning off = the gate before issue 15)")
    print(f"{'camera':8s} {'fps':>4s} {'off':>6s} {'on':>6s}")
    for kind in (*QUIET_KINDS, "busy"):
        for fps in args.fps:
            pictures = sampled_grey(str(clips[kind]), fps)
            off = urgent_share(pictures, False, args.learn_s, args.measure_s)
            on = urgent_share(pictures, True, args.learn_s, args.measure_s)
            print(f"{kind:8s} {fps:4.0f} {100 * off:5.1f}% {100 * on:5.1f}%", flush=True)
    print(f"load average (1, 5, 15 min) {os.getloadavg()}; {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
