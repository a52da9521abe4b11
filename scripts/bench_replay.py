#!/usr/bin/env python3
"""How much faster than real time does replay run? Every committed test clip at 5 detect fps.

Prints, per clip, media seconds, wall seconds and their ratio (> 1: faster than real time),
and the floor measured in the same run: decode-only (PyAV, BGR for the sampled frames) and
detector-only (the same frames through the model), so the ratio of the whole pipeline to what
it cannot avoid is visible.

    .venv/bin/python scripts/bench_replay.py [--fps 5] [--model yolov3-tiny]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from edge_agent.config.models import AgentConfig, Device, Site  # noqa: E402
from edge_agent.detect.common import DetectorOptions  # noqa: E402
from edge_agent.detect.registry import load_detector  # noqa: E402
from edge_agent.replay import run_replay  # noqa: E402
from edge_agent.sources.file import FileSource  # noqa: E402
from edge_agent.sources.gate import sampled_frames  # noqa: E402

FOOTAGE = ROOT / "tests" / "footage"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--model", default="yolov3-tiny")
    args = ap.parse_args()
    detector = load_detector(args.model, DetectorOptions())
    config = AgentConfig(site=Site(id="bench"), device=Device(id="bench"))
    config.detector.model = args.model
    import numpy as np

    for _ in range(3):  # the first runs allocate and tune; measure the steady state
        detector.detect([np.zeros((360, 640, 3), np.uint8)])
    rows = []
    for case in sorted(FOOTAGE.glob("*.expected.yaml")):
        spec = yaml.safe_load(case.read_text())
        if "zones" not in spec or spec["clip"] in {r[0] for r in rows}:
            continue
        clip = FOOTAGE / spec["clip"]
        t0 = time.perf_counter()
        frames = [f.image for f in sampled_frames(FileSource("bench", clip), "bench", args.fps)]
        decode = time.perf_counter() - t0
        t0 = time.perf_counter()
        for image in frames:
            detector.detect([image])
        infer = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as out:
            result = run_replay(clip, FOOTAGE / spec["zones"], out, config=config, fps=args.fps, start=0.0)
        rows.append((spec["clip"], result.media_seconds, result.wall_seconds, decode, infer, len(frames)))

    print(f"replay at {args.fps:g} detect fps, model {args.model}\n")
    print("| clip | media s | replay wall s | x real time | floor: decode s | floor: detect s | replay / floor |")
    print("|---|---|---|---|---|---|---|")
    tot = [0.0, 0.0, 0.0, 0.0]
    for name, media, wall, decode, infer, _ in rows:
        floor = decode + infer
        print(f"| {name} | {media:.1f} | {wall:.2f} | {media / wall:.1f}x | {decode:.2f} | {infer:.2f} | {wall / floor:.2f} |")
        for i, v in enumerate((media, wall, decode, infer)):
            tot[i] += v
    print(f"| **all** | {tot[0]:.1f} | {tot[1]:.2f} | **{tot[0] / tot[1]:.1f}x** | {tot[2]:.2f} | {tot[3]:.2f} | "
          f"{tot[1] / (tot[2] + tot[3]):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
