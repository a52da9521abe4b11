"""Backend for Darknet YOLO models converted by `convert_darknet` (decode lives in the graph)."""

from __future__ import annotations

import json

import numpy as np

from ..errors import ModelError
from .common import Candidates, OnnxDetector


class DarknetDetector(OnnxDetector):
    """Input RGB/255 letterboxed; outputs `boxes` (N, A, 4) xyxy and `scores` (N, A, C)."""

    def names_from_metadata(self) -> list[str]:
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            return list(json.loads(meta["edge_agent.names"]))
        except (KeyError, ValueError):
            raise ModelError(f"model file {self.path} carries no class names (edge_agent.names)") from None

    def decode(self, outputs: list[np.ndarray]) -> list[Candidates]:
        boxes, scores = outputs[0], outputs[1]
        result: list[Candidates] = []
        floor = np.float32(self.options.min_score)
        for b, s in zip(boxes, scores):
            # One class per anchor (its best); most anchors drop out here before NMS.
            cls = s.argmax(axis=1)
            best = s[np.arange(len(s)), cls]
            ok = best >= floor
            result.append((b[ok], best[ok], cls[ok].astype(np.int32)))
        return result
