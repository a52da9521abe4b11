#!/usr/bin/env python3
"""What detection on a camera's substream loses against its main stream with tiles.

Every hard case (tests/footage/hard/) wider than a substream is evaluated twice in one run, as
`edge-agent eval` runs it (replay, the shipped detector and `detector.tiles: auto`):
- main: the case's own clip (720p-1080p), tiled where its zones call for it;
- sub: the same clip scaled to 640x360 at a substream's bitrate, the same zones and truth
  (normalised, so they hold at any size); at this size `auto` tiles nothing.
Per case: pass/fail, objects found per analysed frame, expected visits alarmed, detector seconds.

    .venv/bin/python scripts/bench_substream.py                 # about 5 minutes on 2 cores
    .venv/bin/python scripts/bench_substream.py --cases far_person_36 haze_rail
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.evaluate import Case, evaluate_case, load_cases  # noqa: E402
from edge_agent.evaluate.score import Tally  # noqa: E402

HARD = ROOT / "tests" / "footage" / "hard"
SUB_SIZE = (640, 360)
SUB_KBPS = 768  # what cameras' substreams commonly send at 640x360


def scale_clip(src: Path, dst: Path, size: tuple[int, int], kbps: int) -> None:
    """Re-encode `src` at `size` (H.264, the source's fps, a 1 s GOP), as a camera's substream."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        rate = vin.average_rate or 10
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.bit_rate = kbps * 1000
        stream.options = {"preset": "veryfast", "bf": "0", "g": str(round(float(rate)))}
        for n, frame in enumerate(inp.decode(vin)):
            small = frame.reformat(width=size[0], height=size[1], format="yuv420p", interpolation="AREA")
            small.pts, small.time_base = n, Fraction(1) / Fraction(rate)
            out.mux(stream.encode(small))
        out.mux(stream.encode(None))


def substream_case(case: Case, folder: Path) -> Case:
    """A copy of `case` whose clip is its substream: same zones, same truth, the smaller size."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = dict(case.spec)
    spec["video"] = {**spec["video"], "width": SUB_SIZE[0], "height": SUB_SIZE[1], "bitrate_kbps": SUB_KBPS}
    scale_clip(case.folder / spec["clip"], folder / spec["clip"], SUB_SIZE, SUB_KBPS)
    zones = folder / spec["zones"]
    zones.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(case.folder / spec["zones"], zones)
    path = folder / f"{case.name}.expected.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return load_cases([path])[0]


def found(t: Tally) -> tuple[int, int]:
    """(found, total) over every size bucket."""
    return sum(t.found.values()), sum(t.total.values())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="*", help="only these hard cases (default: every one wider than 640 px)")
    args = p.parse_args()
    cases = [c for c in load_cases([HARD]) if c.frame_size[0] > SUB_SIZE[0]
             and (not args.cases or c.name in args.cases)]
    began = time.monotonic()
    head = (f"{'case':<22} {'main':>9} {'sub':>9} {'frames main':>11} {'frames sub':>10} {'visits main':>11} "
            f"{'visits sub':>10} {'detect s main/sub':>17} {'tiles main':>10}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="edge-agent-substream-") as tmp:
        for case in cases:
            main_r = evaluate_case(case, Path(tmp) / "main" / case.name)
            sub_r = evaluate_case(substream_case(case, Path(tmp) / "sub" / case.name), Path(tmp) / "out" / case.name)
            rows.append((case, main_r, sub_r))
            print(f"{case.name} ({case.frame_size[0]}x{case.frame_size[1]}) done "
                  f"({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)
    print(head)
    print("-" * len(head))
    totals = {k: [0, 0] for k in ("fm", "fs", "vm", "vs")}
    for case, m, s in rows:
        cells = {"fm": found(m.per_frame), "fs": found(s.per_frame), "vm": found(m.visits), "vs": found(s.visits)}
        for k, (hit, total) in cells.items():
            totals[k][0] += hit
            totals[k][1] += total
        fmt = {k: f"{f}/{t}" for k, (f, t) in cells.items()}
        print(f"{case.name:<22} {m.status:>9.9} {s.status:>9.9} {fmt['fm']:>11} {fmt['fs']:>10} {fmt['vm']:>11} "
              f"{fmt['vs']:>10} {m.detect_s:>8.1f}/{s.detect_s:<8.1f} {m.tiles:>10}")
    fmt = {k: f"{f}/{t}" for k, (f, t) in totals.items()}
    print(f"{'total':<22} {sum(m.passed for _, m, _ in rows):>9} {sum(s.passed for _, _, s in rows):>9} "
          f"{fmt['fm']:>11} {fmt['fs']:>10} {fmt['vm']:>11} {fmt['vs']:>10} "
          f"{sum(m.detect_s for _, m, _ in rows):>8.1f}/{sum(s.detect_s for _, _, s in rows):<8.1f}")
    print("main: the case's clip with detector.tiles auto; sub: scaled to "
          f"{SUB_SIZE[0]}x{SUB_SIZE[1]} at {SUB_KBPS} kb/s (no tiles at that size). frames: objects found in "
          "analysed frames; visits: expected zone visits alarmed; status truncated (KNOWN MIS = known miss)")
    print(f"load average (1, 5, 15 min) {os.getloadavg()}: read the detect seconds as a ratio within this run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
