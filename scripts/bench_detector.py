#!/usr/bin/env python3
"""Detector speed and accuracy on this machine, for every model in models/models.yaml that is present.

Speed: ms per frame at batch 1 and batch 4 (letterbox + inference + decode + NMS, 2 threads),
with the per-frame cost of letterbox alone as the baseline measured in the same run.
Accuracy on the project's composites (tests/data/scenes.py): recall of people on the rail track
and boardwalk and of boats on the lake and river (a hit = right class, score >= threshold, IoU >=
0.4 with the pasted cut-out), and false person/boat detections on the empty backgrounds.
Prints markdown tables.   Usage: .venv/bin/python scripts/bench_detector.py [--threads 2] [--repeat 20]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import statistics
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.detect.common import DetectorOptions, letterbox  # noqa: E402
from edge_agent.detect.registry import Registry, load_detector  # noqa: E402
from edge_agent.errors import EdgeAgentError  # noqa: E402


def load_scenes():
    spec = importlib.util.spec_from_file_location("detector_scenes", ROOT / "tests" / "data" / "scenes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["detector_scenes"] = module
    spec.loader.exec_module(module)
    return module


def time_per_frame(fn, images: list, repeat: int) -> float:
    """Median ms per frame of fn(images) over `repeat` runs, after one warm-up."""
    fn(images)
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(images)
        runs.append((time.perf_counter() - start) * 1000 / len(images))
    return statistics.median(runs)


def speed(det, frames: list, repeat: int) -> dict[str, float]:
    size = det.input_size
    return {
        "letterbox": time_per_frame(lambda ims: [letterbox(i, size) for i in ims], frames[:4], repeat),
        "b1": time_per_frame(det.detect, frames[:1], repeat),
        "b4": time_per_frame(det.detect, frames[:4], repeat),
    }


def accuracy(det, scenes, threshold: float) -> dict[str, object]:
    hits: dict[str, list[int]] = {"person": [0, 0], "boat": [0, 0]}
    ious: dict[str, list[float]] = {"person": [], "boat": []}
    misses: list[str] = []
    for scene in scenes.bench_scenes():
        image, truth = scenes.render(scene)
        dets = det.detect([image])[0]
        overlap, score = scenes.best_match(dets, scene.label, truth)
        hit = score >= threshold and overlap >= 0.4
        hits[scene.label][0] += hit
        hits[scene.label][1] += 1
        if hit:
            ious[scene.label].append(overlap)
        else:
            misses.append(scene.name)
    empties = [scenes.background(n) for n in scenes.EMPTY_BACKGROUNDS]
    false = sum(int(sum(n in ("person", "boat") for n in d.class_name)) for d in det.detect(empties))
    return {"hits": hits, "ious": ious, "false": false, "empties": len(empties), "misses": misses}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--threshold", type=float, default=0.25, help="min_score (the config default)")
    ap.add_argument("--models", nargs="*", help="default: every model present")
    ap.add_argument("--show-misses", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    scenes = load_scenes()
    reg = Registry()
    names = args.models or [n for n in reg.names if reg.path_of(n).exists()]
    if not names:
        print("no models present: run `edge-agent models fetch --all`", file=sys.stderr)
        return 1
    photo = cv2.imread(str(scenes.PERSON_PHOTO))
    track, _ = scenes.compose(scenes.background("train-tracks1"), scenes.cutout("nathan"), 200, 330, 120)
    frames = [photo, track, scenes.background("lake"), cv2.resize(photo, (1280, 720))]
    rows_speed, rows_acc, notes = [], [], []
    for name in names:
        options = DetectorOptions(min_score=args.threshold, threads=args.threads)
        try:
            det = load_detector(name, options)
        except EdgeAgentError as exc:
            print(f"{name}: skipped ({exc})", file=sys.stderr)
            continue
        s = speed(det, frames, args.repeat)
        rows_speed.append(f"| {name} | {det.input_size[0]}x{det.input_size[1]} | {s['b1']:.1f} | "
                          f"{s['b4']:.1f} | {s['b1'] / s['b4']:.2f}x | {s['letterbox']:.2f} | {det.provider} |")
        a = accuracy(det, scenes, args.threshold)
        cells = []
        for label in ("person", "boat"):
            got, total = a["hits"][label]
            mean_iou = statistics.mean(a["ious"][label]) if a["ious"][label] else 0.0
            cells.append(f"{got}/{total} ({100 * got / total:.0f}%) | {mean_iou:.2f}")
        rows_acc.append(f"| {name} | {args.threshold} | {' | '.join(cells)} | {a['false']} on {a['empties']} |")
        if args.show_misses:
            notes.append(f"{name} misses: {', '.join(a['misses'])}")
    print(f"### Detector speed ({args.threads} threads, median of {args.repeat}, ms per frame)\n")
    print("| model | input | batch 1 | batch 4 | batch-4 gain | letterbox only (baseline) | provider |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows_speed))
    print("\n### Accuracy on composites (hit: right class, score >= threshold, IoU >= 0.4)\n")
    print("| model | threshold | person recall | person IoU | boat recall | boat IoU | false person/boat |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows_acc))
    for note in notes:
        print("\n" + note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
