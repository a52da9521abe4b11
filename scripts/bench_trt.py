#!/usr/bin/env python3
"""TensorRT in fp16 and INT8 against the CPU, on the same models and footage (issue 15): prepared for a
box with an NVIDIA GPU and onnxruntime-gpu; not run yet (no GPU in the session that wrote it).

    .venv/bin/python scripts/bench_trt.py [--repeat 50] [--work /tmp/edge-agent-bench]

Rows: yolov3-tiny on the CPU (the reference), yolov3-tiny on TensorRT fp16, yolov3-tiny-int8 (QDQ: TensorRT
runs its explicit INT8) on TensorRT. Each: median ms per frame at batch 1 and 4 over frames of the
benchmark's busy clip (scripts/footage/bench.py), the ratio to the CPU row, and how many people it
finds in those frames (the same frames for every row). The first run builds TensorRT engines into
models/cache (minutes); they are reused after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from footage.bench import render_clips  # noqa: E402

ROWS = [("yolov3-tiny", ["cpu"], False), ("yolov3-tiny", ["tensorrt"], True), ("yolov3-tiny-int8", ["tensorrt"], True)]


def frames(clip: Path, count: int = 16) -> list:
    import av

    with av.open(str(clip)) as c:
        out = [f.to_ndarray(format="bgr24") for i, f in zip(range(count * 15), c.decode(video=0)) if i % 15 == 0]
    return out


def timed(det, images: list, batch: int, repeat: int) -> float:
    det.detect(images[:batch])  # engine build / warm-up
    times = []
    for r in range(repeat):
        chunk = [images[(r * batch + k) % len(images)] for k in range(batch)]
        t0 = time.perf_counter()
        det.detect(chunk)
        times.append((time.perf_counter() - t0) / batch)
    return 1000 * statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument("--work", default="/tmp/edge-agent-bench")
    args = p.parse_args()
    import onnxruntime as ort

    from edge_agent.detect.common import DetectorOptions
    from edge_agent.detect.registry import load_detector

    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        print(f"no TensorRT provider in this onnxruntime ({ort.get_available_providers()}): install "
              "onnxruntime-gpu with TensorRT on a GPU box", file=sys.stderr)
        return 2
    images = frames(render_clips(Path(args.work), ("busy",))["busy"])
    print("| model | provider | batch 1 ms | batch 4 ms | vs CPU | people found |")
    print("|---|---|---|---|---|---|")
    reference = None
    for model, providers, fp16 in ROWS:
        det = load_detector(model, DetectorOptions(providers=providers, trt_fp16=fp16,
                                                   trt_cache_dir=str(ROOT / "models" / "cache")))
        b1, b4 = timed(det, images, 1, args.repeat), timed(det, images, 4, args.repeat)
        reference = reference or b1
        people = sum(int((d.class_name == "person").sum()) for d in det.detect(images))
        print(f"| {model} | {det.provider}{' fp16' if fp16 else ''} | {b1:.2f} | {b4:.2f} | "
              f"{reference / b1:.1f}x | {people} in {len(images)} frames |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
