#!/usr/bin/env python3
"""Cut an evaluation case to its first seconds: the clip (packets copied, no re-encode) and its
ground truth (rows, visits and visibility after the cut dropped), for tests that must be short.

    .venv/bin/python scripts/cut_case.py tests/footage/rail_intrusion.expected.yaml 9 tests/data/eval_rtsp

The expectations are kept as they are; the cut is refused when one of them could not be met in
the shorter clip (a first alarm expected after it, or a visit it would cut short of its dwell).
The zone file is copied beside the new case under the same relative path.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import av
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.evaluate.cases import SUFFIX  # noqa: E402


def cut_clip(src: Path, dst: Path, seconds: float) -> int:
    """Copy the packets shown before `seconds`; returns the frames kept."""
    frames = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.pts is None or packet.pts * float(stream.time_base) >= seconds - 1e-6:
                continue
            packet.stream = copy
            out.mux(packet)
            frames += 1
    return frames


def cut_truth(objects: dict[str, Any], seconds: float) -> dict[str, Any]:
    kept = {}
    for name, obj in objects.items():
        visible = obj.get("visible")
        if visible and visible[0] >= seconds:
            continue
        obj = dict(obj)
        if visible:
            obj["visible"] = [visible[0], min(visible[1], round(seconds - 0.1, 3))]
        for key in ("path", "boxes"):
            if key in obj:
                obj[key] = [row for row in obj[key] if row[0] < seconds]
        for zone in (obj.get("zones") or {}).values():
            zone["visits"] = [{**v, "left_at": v["left_at"] if v["left_at"] is not None and v["left_at"] < seconds
                               else None} for v in zone.get("visits") or [] if v["entered_at"] < seconds]
        kept[name] = obj
    return kept


def check_expectations(spec: dict[str, Any], seconds: float) -> list[str]:
    problems = []
    for exp in spec["expect"]:
        within = exp.get("first_alarm_within")
        if exp["count"][0] > 0 and within and within[1] > seconds - 0.5:
            problems.append(f"{exp['type']} in {exp['zone']} may come up to {within[1]} s, too close to the cut")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("case", type=Path, help=f"a *{SUFFIX} file")
    p.add_argument("seconds", type=float, help="keep the clip's first this many seconds")
    p.add_argument("out", type=Path, help="folder for the cut case, its clip and zone file")
    p.add_argument("--name", help="the new case's name (default: <name>_<seconds>s)")
    args = p.parse_args(argv)
    spec = yaml.safe_load(args.case.read_text())
    problems = check_expectations(spec, args.seconds)
    if problems:
        print("cut_case: " + "; ".join(problems), file=sys.stderr)
        return 2
    name = args.name or f"{args.case.name.removesuffix(SUFFIX)}_{args.seconds:g}s"
    args.out.mkdir(parents=True, exist_ok=True)
    frames = cut_clip(args.case.parent / spec["clip"], args.out / f"{name}.mp4", args.seconds)
    zones = args.out / spec["zones"]
    zones.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.case.parent / spec["zones"], zones)
    spec["clip"] = f"{name}.mp4"
    spec["video"] = {**spec["video"], "frames": frames}
    if spec.get("truth", {}).get("objects"):
        spec["truth"]["objects"] = cut_truth(spec["truth"]["objects"], args.seconds)
    text = yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=110)
    (args.out / f"{name}{SUFFIX}").write_text(
        f"# {args.case.name} cut to its first {args.seconds:g} s by scripts/cut_case.py (truth from the original)\n"
        + text)
    print(f"{name}: {frames} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
