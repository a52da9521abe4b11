"""INT8 variants of converted models: ONNX Runtime static quantisation (QDQ), calibrated on the
project's own pictures.

A manifest entry with `quantize: {from: <fp32 model>, calibration: {...}}` is made from the fp32
model's converted file: the backend, names and input size stay those of the fp32 model, only the
weights and activations become 8-bit. Calibration pictures are the committed stills (empty rail
and water scenes, `calibration.stills`) with the committed cut-outs (`calibration.cutouts`: people
and boats) pasted at seeded random places and sizes: the project's footage, and not a frame of the
evaluation cases (tests/footage). They go through the fp32 backend's own letterbox and
pre-processing, so the ranges are measured on exactly what the model sees at run time.
`op_types` limits what is quantised: the converted graphs end in box decoding (sigmoid, exp,
scaling to pixels), which in 8 bits would round box edges by pixels; the convolutions, where the
time goes, are enough.

The file is not byte-pinned in the manifest: calibration runs the fp32 model on this CPU, and float
sums may round differently on another one. `edge-agent eval` on the evaluation cases is the check.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from ..errors import ModelError
from .common import DetectorOptions, letterbox

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]


def calibration_pictures(stills: Path, cutouts: Path, count: int, seed: int) -> Iterator[np.ndarray]:
    """`count` BGR pictures: a still with one to three cut-outs pasted, feet on the lower half."""
    backgrounds = [cv2.imread(str(p)) for p in sorted(stills.glob("*.jpg"))]
    sprites = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(cutouts.glob("*.gif"))]
    sprites = [s for s in sprites if s is not None and s.ndim == 3 and s.shape[2] == 4]
    if not backgrounds or not sprites:
        raise ModelError(f"calibration needs *.jpg stills in {stills} and transparent *.gif cut-outs in {cutouts}")
    rng = np.random.default_rng(seed)
    for i in range(count):
        img = backgrounds[i % len(backgrounds)].copy()
        h, w = img.shape[:2]
        for _ in range(int(rng.integers(1, 4))):
            sprite = sprites[int(rng.integers(len(sprites)))]
            height = int(rng.uniform(0.12, 0.6) * h)
            width = max(1, round(sprite.shape[1] * height / sprite.shape[0]))
            if width >= w:
                continue
            small = cv2.resize(sprite, (width, height), interpolation=cv2.INTER_AREA)
            x = int(rng.integers(0, w - width))
            y = int(rng.integers(max(0, h // 2 - height), h - height + 1))
            alpha = (small[:, :, 3:4] > 127).astype(np.float32)
            roi = img[y: y + height, x: x + width]
            roi[:] = (roi * (1 - alpha) + small[:, :, :3] * alpha).astype(np.uint8)
        yield img


def quantize_entry(sources: dict[str, Path], out: Path, entry: dict[str, Any]) -> None:
    """Converter for `quantize` entries: `sources["onnx"]` is the fp32 model's file."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    from .registry import BACKENDS, import_ref

    spec = entry["quantize"]
    cal = spec.get("calibration") or {}
    fp32 = import_ref(BACKENDS[str(entry["format"])])(sources["onnx"], DetectorOptions(), entry)
    pictures = calibration_pictures(ROOT / cal.get("stills", "tests/data/backgrounds"),
                                    ROOT / cal.get("cutouts", "tests/data/cutouts"),
                                    int(cal.get("pictures", 48)), int(cal.get("seed", 0)))

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            img = next(pictures, None)
            if img is None:
                return None
            return {fp32.input_name: fp32.preprocess(letterbox(img, fp32.input_size)[0])[None]}

    tmp = out.with_suffix(".part.onnx")
    log.info("quantising %s to INT8 (calibration: %s pictures)", sources["onnx"].name, cal.get("pictures", 48))
    quantize_static(str(sources["onnx"]), str(tmp), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                    calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=spec.get("op_types"))
    tmp.replace(out)
