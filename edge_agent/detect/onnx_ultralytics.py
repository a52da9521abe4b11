"""Ultralytics YOLOv8 / YOLO11 detection models exported to ONNX (`yolo export format=onnx`).

Output `1 x (4 + nc) x N`: per anchor cx, cy, w, h in input pixels, then nc class scores already
passed through a sigmoid (no objectness). Class names and input size come from the ONNX metadata
Ultralytics writes (`names` is a Python dict literal, `imgsz` a list literal), so a user's own
export runs with no manifest entry. Pre- and post-processing follow Ultralytics' predictor:
centred letterbox on grey 114 (bilinear resize), RGB / 255, best class per box, per-class NMS,
at most 300 boxes per image.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from ..errors import ModelError
from ..frames import Detections
from .common import Candidates, DetectorOptions, OnnxDetector, parse_names

__all__ = ["UltralyticsOnnxDetector"]

MAX_CANDIDATES = 30000  # Ultralytics' max_nms: cap what goes into NMS on a near-blank score map


class UltralyticsOnnxDetector(OnnxDetector):
    """YOLOv8/YOLO11 detect exports; names and input size from the model's own metadata."""

    max_det = 300  # Ultralytics' default cap per image, applied after NMS

    def __init__(self, path: Path, options: DetectorOptions, entry: dict | None = None) -> None:
        self.metadata: dict[str, str] = {}
        super().__init__(path, options, entry)
        task = self.metadata.get("task", "detect")
        if task != "detect":
            raise ModelError(f"model file {self.path} is an Ultralytics '{task}' model; only 'detect' "
                             "models are supported")
        out = self.session.get_outputs()[0].shape
        channels = out[1] if len(out) == 3 else None
        if isinstance(channels, int) and channels != 4 + len(self.names):
            raise ModelError(f"model file {self.path}: output {out} does not fit 4 box values + "
                             f"{len(self.names)} class scores (an end-to-end/NMS export is not supported)")

    def _input_size(self, shape: list[Any]) -> tuple[int, int]:
        """Called by the base once the session exists: prefer the metadata's imgsz."""
        self._read_metadata()
        if not self.entry.get("input_size") and "imgsz" in self.metadata:
            return _imgsz(self.metadata["imgsz"], self.path)
        return super()._input_size(shape)

    def _read_metadata(self) -> None:
        if not self.metadata:
            self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def names_from_metadata(self) -> list[str]:
        self._read_metadata()
        if "names" not in self.metadata:
            raise ModelError(f"model file {self.path} has no Ultralytics 'names' metadata; name its "
                             "classes in models.yaml")
        return parse_names(self.metadata["names"], f"model file {self.path}")

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """As the base, but resized the way Ultralytics' LetterBox does (bilinear, also when
        shrinking; the base's area filter changes scores measurably) and capped at max_det."""
        w, h = self.input_size
        resized: list[np.ndarray] = []
        gains: list[tuple[float, float]] = []
        for img in images:
            ih, iw = img.shape[:2]
            s = min(w / iw, h / ih)
            nw, nh = max(1, round(iw * s)), max(1, round(ih * s))
            if (nw, nh) != (iw, ih):  # then the base letterbox only pads (its scale is exactly 1)
                img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
            resized.append(img)
            gains.append((iw / nw, ih / nh))  # per axis, as Ultralytics' scale_boxes
        results = super().detect(resized)
        for i, (det, (gx, gy)) in enumerate(zip(results, gains)):
            if len(det) > self.max_det:
                det = results[i] = det[: self.max_det]  # NMS returns best first
            if (gx, gy) != (1.0, 1.0):
                det.xyxy *= np.array([gx, gy, gx, gy], dtype=np.float32)
        return results

    def decode(self, outputs: list[np.ndarray], size: tuple[int, int]) -> list[Candidates]:
        """(B, 4+nc, N) → per image the best class per anchor, boxes as xyxy in input pixels."""
        raw = outputs[0]
        if raw.ndim != 3:
            raise ModelError(f"model file {self.path}: expected a (batch, 4+nc, N) output, got {raw.shape}")
        result: list[Candidates] = []
        floor = self.options.min_score
        for pred in raw:
            scores_all = pred[4:]  # (nc, N)
            class_ids = scores_all.argmax(axis=0)
            scores = np.take_along_axis(scores_all, class_ids[None], axis=0)[0]
            # Ultralytics keeps scores strictly above conf; the base class keeps >= min_score.
            idx = np.nonzero(scores > floor)[0]
            if len(idx) > MAX_CANDIDATES:
                idx = idx[np.argsort(-scores[idx], kind="stable")[:MAX_CANDIDATES]]
            cx, cy, bw, bh = pred[:4, idx]
            xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
            result.append((xyxy.astype(np.float32), scores[idx].astype(np.float32),
                           class_ids[idx].astype(np.int32)))
        return result


def _imgsz(text: str, path: Path) -> tuple[int, int]:
    """Metadata imgsz is [h, w] (or one int); returns (w, h) as OnnxDetector wants."""
    try:
        value = ast.literal_eval(text)
        if isinstance(value, int):
            return value, value
        h, w = (int(v) for v in value)
    except (ValueError, SyntaxError, TypeError) as err:
        raise ModelError(f"model file {path}: metadata 'imgsz' is not [h, w]: {text[:40]!r}") from err
    return w, h
