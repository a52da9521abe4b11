"""Backend for CenterNet (MobileNetV3) converted from TFJS by `convert_tfjs`, cut before its decode.

Input: NHWC RGB 0..255 letterboxed (the graph normalises itself). Outputs: `keypoints`
(N, H/4, W/4, C), class heatmaps already through sigmoid, and `wh` (N, H/4, W/4, 4), the
distances from a cell to the box's left, top, right and bottom sides in input pixels. The TFJS
graph's own decode (TopK over the flattened heatmap, gathers) is done here in numpy instead: a
cell is an object when it is the maximum of its 3x3 neighbourhood in its class (CenterNet's
max-pool peak test) and its score passes the floor; its box is (4x - l, 4y - t, 4x + r, 4y + b).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ModelError
from .common import Candidates, OnnxDetector

STRIDE = 4
MAX_PEAKS = 100  # the TFJS graph's own TopK


class CenterNetDetector(OnnxDetector):
    """CenterNet: (heatmap, wh) outputs told apart by their channel count."""

    def __init__(self, path, options, entry: dict | None = None) -> None:
        super().__init__(path, options, entry)
        shapes = [o.shape for o in self.session.get_outputs()]
        try:
            self._heat = next(i for i, s in enumerate(shapes) if s[-1] == len(self.names))
            self._wh = next(i for i, s in enumerate(shapes) if s[-1] == 4)
        except StopIteration:
            raise ModelError(f"model file {self.path}: expected a heatmap with {len(self.names)} "
                             f"channels and a 4-channel wh output, got {shapes}") from None

    def _input_size(self, shape: list[Any]) -> tuple[int, int]:
        """NHWC input: height and width are dims 1 and 2."""
        h, w = shape[1], shape[2]
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            return int(w), int(h)
        return super()._input_size([shape[0], shape[3], h, w])

    def preprocess(self, padded_bgr: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(padded_bgr[:, :, ::-1], dtype=np.float32)

    def decode(self, outputs: list[np.ndarray], size: tuple[int, int]) -> list[Candidates]:
        floor = np.float32(self.options.min_score)
        return [self._peaks(heat, wh, floor) for heat, wh in zip(outputs[self._heat], outputs[self._wh])]

    @staticmethod
    def _peaks(heat: np.ndarray, wh: np.ndarray, floor: np.float32) -> Candidates:
        ys, xs, cs = np.nonzero(heat >= floor)
        if len(ys):
            padded = np.pad(heat, ((1, 1), (1, 1), (0, 0)))
            around = np.max([padded[ys + 1 + dy, xs + 1 + dx, cs] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
            peak = heat[ys, xs, cs] >= around
            ys, xs, cs = ys[peak], xs[peak], cs[peak]
        scores = heat[ys, xs, cs]
        order = np.argsort(-scores, kind="stable")[:MAX_PEAKS]
        ys, xs, cs, scores = ys[order], xs[order], cs[order], scores[order]
        d = wh[ys, xs]
        cx, cy = xs.astype(np.float32) * STRIDE, ys.astype(np.float32) * STRIDE
        xyxy = np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], axis=1)
        return xyxy.astype(np.float32).reshape(-1, 4), scores.astype(np.float32), cs.astype(np.int32)
