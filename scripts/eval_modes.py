#!/usr/bin/env python3
"""The evaluation harness in replay and over RTSP (the live agent), in one run, side by side.

    .venv/bin/python scripts/eval_modes.py tests/footage                       # the default model, about 5 minutes
    .venv/bin/python scripts/eval_modes.py tests/footage --models yolov3-tiny yolov3-tiny-int8 --concurrent 4

Replay (`edge-agent eval`) decodes every frame of each file and has no overload policy; RTSP
(`edge-agent eval --rtsp`) serves the clips from the GStreamer RTSP server to the live agent with
the shipped defaults (keyframe-only decode of quiet cameras, overload policy, tiles), `--concurrent`
cases at once. Prints, per model and mode: passed, required failing, known misses, recall by size
per visit and per frame, false alarms; then every case whose verdict differs between the modes,
with the reasons, and the RTSP run's decode modes, frames replaced and the policy's highest level.
The README's table comes from it. State the load average beside the figures (`uptime`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.config.models import Detector  # noqa: E402
from edge_agent.evaluate import evaluate, load_cases  # noqa: E402
from edge_agent.evaluate.report import CaseResult, evaluate_rtsp, live_lines, pct, summary  # noqa: E402
from edge_agent.evaluate.score import BUCKETS  # noqa: E402


def table(sums: list[dict[str, Any]]) -> list[list[str]]:
    """One row per figure: its label, then its value in each summary."""
    out = [["passed", *(f"{s['passed']}/{s['cases']}" for s in sums)],
           ["required failing", *(str(len(s["failed_required"])) for s in sums)],
           ["known misses failing", *(str(len(s["known_miss_failing"])) for s in sums)]]
    for key, label in (("recall_visits", "visit"), ("recall_frames", "frame")):
        out += [[f"recall per {label} {b} px", *(pct(*s[key].get(b, [0, 0])) for s in sums)]
                for b in BUCKETS if any(b in s[key] for s in sums)]
    out.append(["false alarms (empty cases)", *(f"{s['false_alarms']} in {s['empty_hours'] * 60:.1f} cam-min"
                                                for s in sums)])
    out.append(["detector images / cam-s", *(str(s["detector_images_per_camera_second"]) for s in sums)])
    return out


def differences(a: list[CaseResult], b: list[CaseResult], names: tuple[str, str]) -> list[str]:
    lines = []
    for ra, rb in zip(a, b):
        if ra.status != rb.status or ra.alarms != rb.alarms:
            lines.append(f"  {ra.name}: {names[0]} {ra.status} ({ra.alarms} alarms), {names[1]} {rb.status} "
                         f"({rb.alarms} alarms)")
            lines += [f"      {names[1]}: {why}" for why in rb.reasons]
            lines += [f"      {names[0]}: {why}" for why in ra.reasons]
    return lines or ["  none"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", help="case files or folders (e.g. tests/footage)")
    p.add_argument("--models", nargs="+", default=[Detector().model], help="default: the shipped default")
    p.add_argument("--concurrent", type=int, default=4, help="RTSP: cases at once (default: %(default)s)")
    p.add_argument("--json", help="also write every summary here")
    args = p.parse_args(argv)
    cases = load_cases(args.paths)
    print(f"{len(cases)} cases; load average at start {os.getloadavg()[0]:.1f}", flush=True)
    figures: dict[str, Any] = {}
    for model in args.models:
        replay = evaluate(cases, None, model)
        print(f"replay done ({model}); load average {os.getloadavg()[0]:.1f}", flush=True)
        rtsp = evaluate_rtsp(cases, None, model, args.concurrent)
        print(f"rtsp done ({model}); load average {os.getloadavg()[0]:.1f}", flush=True)
        sums = {"replay": summary(replay), "rtsp": summary(rtsp)}
        figures[model] = sums
        print(f"\n== {model}: replay vs rtsp ({args.concurrent} cameras at once)")
        print(f"{'':<30}{'replay':>22}{'rtsp':>22}")
        for label, a, b in table([sums["replay"], sums["rtsp"]]):
            print(f"{label:<30}{a:>22}{b:>22}")
        print("cases that differ:")
        print("\n".join(differences(replay, rtsp, ("replay", "rtsp"))))
        print("\n".join(live_lines(rtsp)))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
