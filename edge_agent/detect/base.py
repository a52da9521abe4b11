"""The detector interface: a batch of BGR frames in, one `Detections` per frame out."""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from ..errors import ModelError
from ..frames import Detections


__all__ = ["Detector", "ModelError"]


class Detector(Protocol):
    names: list[str]  # class names, index = class id
    provider: str  # the execution provider actually running ("CPUExecutionProvider", ...)

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detect objects in BGR uint8 images (any sizes). Boxes are in each image's pixels."""
        ...
