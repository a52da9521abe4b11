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
import numpy as np

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


def _ms_per_frame(fn, images: list) -> float:
    start = time.perf_counter()
    fn(images)
    return (time.perf_counter() - start) * 1000 / len(images)


def speed(dets: dict, frames: list, repeat: int) -> dict[str, dict[str, float]]:
    """Median ms per frame per model at batch 1 and 4, plus letterbox alone (the baseline).

    Models take turns within each round, so a burst of load on the shared box hits all of
    them alike and the ratios between them stay meaningful.
    """
    cases = {
        "letterbox": lambda det: (lambda ims: [letterbox(i, det.input_size) for i in ims], frames[:4]),
        "b1": lambda det: (det.detect, frames[:1]),
        "b4": lambda det: (det.detect, frames[:4]),
    }
    runs: dict[str, dict[str, list[float]]] = {n: {c: [] for c in cases} for n in dets}
    for name, det in dets.items():  # warm-up
        det.detect(frames[:4])
    for _ in range(repeat):
        for name, det in dets.items():
            for case, make in cases.items():
                runs[name][case].append(_ms_per_frame(*make(det)))
    return {n: {c: statistics.median(v) for c, v in r.items()} for n, r in runs.items()}


def accuracy(det, scenes, thresholds: list[float]) -> dict[float, dict]:
    """Per threshold: hits per label, IoUs of hits, false person/boat on empties, missed scenes.

    Detects once at the lowest threshold and filters: greedy NMS only lets a box suppress
    lower-scored ones, so filtering after NMS equals running at the higher threshold.
    """
    results = [(scene, *scenes.render(scene)) for scene in scenes.bench_scenes()]
    found = [det.detect([image])[0] for _, image, _ in results]
    empties = det.detect([scenes.background(n) for n in scenes.EMPTY_BACKGROUNDS])
    out: dict[float, dict] = {}
    for thr in thresholds:
        hits = {"person": [0, 0], "boat": [0, 0]}
        ious: dict[str, list[float]] = {"person": [], "boat": []}
        misses: list[str] = []
        for (scene, _, truth), dets in zip(results, found):
            overlap, _ = scenes.best_match(dets[dets.confidence >= thr], scene.label, truth)
            hit = overlap >= 0.4
            hits[scene.label][0] += hit
            hits[scene.label][1] += 1
            (ious[scene.label].append(overlap) if hit else misses.append(scene.name))
        false = sum(int(((d.confidence >= thr) & np.isin(d.class_name, ["person", "boat"])).sum())
                    for d in empties)
        out[thr] = {"hits": hits, "ious": ious, "false": false, "empties": len(empties), "misses": misses}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.25, 0.35],
                    help="min_score values to score (0.25 is the config default)")
    ap.add_argument("--models", nargs="*", help="default: every model present")
    ap.add_argument("--show-misses", action="store_true")
    ap.add_argument("--square-too", action="store_true",
                    help="also run each model on its square input (detector.rect_input: false), as '<model> square'")
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
    dets = {}
    for name in names:
        for rect in (True, False) if args.square_too else (True,):
            options = DetectorOptions(min_score=min(args.thresholds), threads=args.threads, rect=rect)
            try:
                dets[name if rect else f"{name} square"] = load_detector(name, options)
            except EdgeAgentError as exc:
                print(f"{name}: skipped ({exc})", file=sys.stderr)
    timing = speed(dets, frames, args.repeat)
    rows_speed, rows_acc, notes = [], [], []
    base_b1 = next(iter(timing.values()))["b1"]  # the first model (manifest order) is the reference
    for name, det in dets.items():
        s = timing[name]
        shape = f"{det.input_size[0]}x{det.input_size[1]}" + (" rect" if det.rect_multiple else "")
        rows_speed.append(f"| {name} | {shape} | {s['b1']:.1f} | "
                          f"{s['b4']:.1f} | {s['b1'] / s['b4']:.2f}x | {s['b1'] / base_b1:.2f}x | "
                          f"{s['letterbox']:.2f} | {det.provider} |")
        for thr, a in accuracy(det, scenes, args.thresholds).items():
            cells = []
            for label in ("person", "boat"):
                got, total = a["hits"][label]
                mean_iou = statistics.mean(a["ious"][label]) if a["ious"][label] else 0.0
                cells.append(f"{got}/{total} ({100 * got / total:.0f}%) | {mean_iou:.2f}")
            rows_acc.append(f"| {name} | {thr} | {' | '.join(cells)} | {a['false']} on {a['empties']} |")
            if args.show_misses:
                notes.append(f"{name} @ {thr} misses: {', '.join(a['misses'])}")
    print(f"### Detector speed ({args.threads} threads, median of {args.repeat}, ms per frame)\n")
    print("| model | input | batch 1 | batch 4 | batch-4 gain | batch 1 vs first model | "
          "letterbox only (baseline) | provider |")
    print("|---|---|---|---|---|---|---|---|")
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
