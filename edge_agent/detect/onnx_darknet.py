"""Backend for Darknet YOLO models converted by `convert_darknet` (decode lives in the graph)."""

from __future__ import annotations


import numpy as np

from .common import Candidates, OnnxDetector


class DarknetDetector(OnnxDetector):
    """Input RGB/255 letterboxed; outputs `boxes` (N, A, 4) xyxy and `scores` (N, A, C)."""

    def decode(self, outputs: list[np.ndarray], size: tuple[int, int]) -> list[Candidates]:
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
