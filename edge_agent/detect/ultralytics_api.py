"""Ultralytics `.pt` and TensorRT `.engine` models run through the Ultralytics API.

Ultralytics (and PyTorch) are optional and heavy, so they are imported only when such a model is
loaded; install them with `scripts/setup_ultralytics.sh` (a separate venv, `.venv-ultra`). For the
default CPU/ONNX Runtime path export the model instead: `yolo export model=best.pt format=onnx`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ModelError
from ..frames import Detections
from .common import DetectorOptions, check_model_file, class_names_from

__all__ = ["UltralyticsDetector"]

log = logging.getLogger(__name__)

INSTALL_HINT = ("install it with `scripts/setup_ultralytics.sh` and run edge-agent from "
                "`.venv-ultra/bin/python`, or export the model to ONNX (`yolo export model=... format=onnx`)")
DEFAULT_IMGSZ = 640  # Ultralytics' own default when the checkpoint names none


def _import_yolo() -> Any:
    # An edge box must never phone home or pip-install at run time.
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    try:
        from ultralytics import YOLO
    except ImportError as exc:
        raise ModelError(f"the ultralytics package is needed for .pt/.engine models ({exc}); "
                         f"{INSTALL_HINT}") from exc
    return YOLO


class UltralyticsDetector:
    """A `Detector` over `ultralytics.YOLO`: Ultralytics' own letterbox, NMS and box scaling."""

    max_det = 300

    def __init__(self, path: Path, options: DetectorOptions, entry: dict | None = None) -> None:
        self.path = Path(path)
        self.options = options
        self.entry = dict(entry or {})
        check_model_file(self.path)
        if self.path.suffix.lower() not in (".pt", ".engine"):
            raise ModelError(f"model file {self.path}: the Ultralytics API backend takes .pt or .engine")
        yolo_cls = _import_yolo()
        try:
            self.model = yolo_cls(str(self.path), task="detect")
        except Exception as exc:  # torch/pickle/TensorRT errors of every kind
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ModelError(f"model file {self.path} cannot be loaded by Ultralytics ({first})") from exc
        task = getattr(self.model, "task", "detect")
        if task != "detect":
            raise ModelError(f"model file {self.path} is an Ultralytics '{task}' model; only 'detect' "
                             "models are supported")
        self.device, self.provider = self._device()
        self.imgsz = self._imgsz()
        self.names: list[str] = class_names_from(self.entry.get("names") or self.model.names, f"model {self.path}")
        log.info("detector %s runs through Ultralytics on %s at imgsz %s", self.path.name, self.device,
                 self.imgsz)

    def _device(self) -> tuple[str, str]:
        """CUDA when asked for and present (a .engine needs it), else the CPU."""
        import torch

        wanted = {p.lower() for p in self.options.providers}
        gpu = torch.cuda.is_available()
        if self.path.suffix.lower() == ".engine":
            if not gpu:
                raise ModelError(f"model file {self.path} is a TensorRT engine and needs a CUDA GPU; none "
                                 "is visible to PyTorch")
            return "cuda:0", "TensorrtExecutionProvider"
        if gpu and wanted & {"cuda", "tensorrt"}:
            return "cuda:0", "CUDAExecutionProvider"
        if wanted & {"cuda", "tensorrt"}:
            log.info("detector %s: CUDA requested but not available to PyTorch; running on the CPU",
                     self.path.name)
        return "cpu", "CPUExecutionProvider"

    def _imgsz(self) -> int | list[int]:
        """Input size: the models.yaml entry, else what the model was trained/exported at."""
        size = self.entry.get("input_size")
        if size:
            return [int(size[1]), int(size[0])] if isinstance(size, (list, tuple)) else int(size)
        overrides = getattr(self.model, "overrides", {}) or {}
        value = overrides.get("imgsz")
        if value is None:
            args = (getattr(self.model, "ckpt", None) or {}).get("train_args", {}) or {}
            value = args.get("imgsz")
        if isinstance(value, (list, tuple)):
            return [int(v) for v in value]
        return int(value) if value else DEFAULT_IMGSZ

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """BGR uint8 images (any sizes) → one `Detections` per image, boxes in its pixels."""
        if not images:
            return []
        results = self.model.predict(
            list(images), conf=self.options.min_score, iou=self.options.iou, imgsz=self.imgsz,
            device=self.device, half=self.options.trt_fp16 and self.device != "cpu",
            max_det=self.max_det, verbose=False,
        )
        return [self._to_detections(r) for r in results]

    def _to_detections(self, result: Any) -> Detections:
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return Detections.empty()
        class_id = boxes.cls.cpu().numpy().astype(np.int32)
        label = np.array([self.names[c] if 0 <= c < len(self.names) else str(c) for c in class_id],
                         dtype=object)
        return Detections(
            xyxy=boxes.xyxy.cpu().numpy().astype(np.float32),
            confidence=boxes.conf.cpu().numpy().astype(np.float32),
            class_id=class_id,
            data={"class_name": label},
        )
