"""Where does a long-running process's memory go? Runs a Python module under tracemalloc and, every
`--every` s, writes what Python holds (tracemalloc, grouped by line), the count of live objects
by type (gc) and the RSS; `--compare DIR` then prints what grew between the first sample after
warm-up and the last, and the slope of each part per hour (issue 14: RSS growth in the soak).

    python scripts/memtrace.py --out DIR --every 60 -m edge_agent.cli run --config ...   # record
    python scripts/memtrace.py --compare DIR                                             # read

RSS growing while the Python heap and object counts stay flat is native memory (the allocator's
arenas, ONNX Runtime, FFmpeg), not a Python container that grows without bound.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import pickle
import runpy
import sys
import threading
import time
import tracemalloc
from pathlib import Path

FRAMES = 4  # enough to tell whose list it is without making every allocation slow


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def record(out: Path, every: float) -> None:
    n = 0
    while True:
        time.sleep(every)
        snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        types = collections.Counter(type(o).__name__ for o in gc.get_objects())
        with open(out / f"snap-{n:04d}.pickle", "wb") as f:
            pickle.dump({"t": time.time(), "rss_mb": rss_mb(), "traced_mb": tracemalloc.get_traced_memory()[0] / 1e6,
                         "types": dict(types.most_common(200)), "snapshot": snap}, f)
        n += 1


def compare(folder: Path, warmup: float, top: int) -> dict:
    files = sorted(folder.glob("snap-*.pickle"))
    if len(files) < 2:
        return {"error": f"{len(files)} samples in {folder}: need two"}
    samples = [pickle.loads(f.read_bytes()) for f in files]
    keep = samples[int(len(samples) * warmup):] if len(samples) >= 4 else samples
    first, last = keep[0], keep[-1]
    hours = (last["t"] - first["t"]) / 3600 or 1e-9
    lines = last["snapshot"].compare_to(first["snapshot"], "lineno")
    grown_types = sorted(((n - first["types"].get(k, 0), k, n) for k, n in last["types"].items()), reverse=True)
    return {
        "samples": len(samples), "minutes": round((last["t"] - first["t"]) / 60, 1),
        "rss_mb": [round(first["rss_mb"], 1), round(last["rss_mb"], 1)],
        "rss_mb_per_hour": round((last["rss_mb"] - first["rss_mb"]) / hours, 1),
        "python_heap_mb": [round(first["traced_mb"], 1), round(last["traced_mb"], 1)],
        "python_heap_mb_per_hour": round((last["traced_mb"] - first["traced_mb"]) / hours, 1),
        "top_lines": [f"{s.size_diff / 1e3:+.0f} kB ({s.count_diff:+d} blocks) {s.traceback.format()[0].strip()}"
                      for s in lines[:top]],
        "top_types": [f"{d:+d} {k} (now {n})" for d, k, n in grown_types[:top]],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="record: write samples here")
    p.add_argument("--every", type=float, default=60.0, help="seconds between samples")
    p.add_argument("--compare", help="read: the folder of samples")
    p.add_argument("--warmup", type=float, default=0.2, help="share of the samples skipped as warm-up")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("-m", dest="module", help="record: the module to run; everything after it is its own")
    argv = sys.argv[1:]
    cut = argv.index("-m") + 2 if "-m" in argv else len(argv)
    args, rest = p.parse_args(argv[:cut]), argv[cut:]
    if args.compare:
        print(json.dumps(compare(Path(args.compare), args.warmup, args.top), indent=1))
        return 0
    if not (args.out and args.module):
        p.error("give --out and -m MODULE, or --compare DIR")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tracemalloc.start(FRAMES)
    threading.Thread(target=record, args=(out, args.every), name="memtrace", daemon=True).start()
    sys.argv = [args.module, *rest]
    sys.path.insert(0, os.getcwd())  # as `python -m` does: the checkout's package, not an installed one
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
