"""Backend for NanoDet (GFL head) models, e.g. NanoDet-g-416 converted from TFJS by `convert_tfjs`.

Input: BGR letterboxed, normalised per channel with NanoDet's mean and std. Outputs: per stride
one score tensor (N, H*W, C) already through sigmoid and one box tensor (N, H*W, 4 * bins) of
distance distributions (left, top, right, bottom). The decode is done here in numpy: each side's
distance is the softmax-weighted mean of its bin indices times the stride, measured from the
cell centre ((x + 0.5) * stride, (y + 0.5) * stride). The grids follow the input's size, so
full frames can run rectangular (rect.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError
from .common import Candidates, DetectorOptions, OnnxDetector

MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)
SIDES = 4


class NanoDetDetector(OnnxDetector):
    """NanoDet: three (scores, boxes) output pairs matched by shape, strides from the grid size."""

    def __init__(self, path: Path, options: DetectorOptions, entry: dict | None = None) -> None:
        super().__init__(path, options, entry)
        self._scale = (1.0 / STD_BGR).reshape(3, 1, 1)
        self._mean = MEAN_BGR.reshape(3, 1, 1)
        self.heads = self._match_heads()
        self._grids: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._enable_rect(max(stride for _, _, stride in self.heads))

    def _match_heads(self) -> list[tuple[int, int, int]]:
        """[(score output index, box output index, stride)] from the outputs' static shapes.

        A score output has as many columns as there are classes; its box twin has the same
        number of rows and a multiple of 4 columns. The stride follows from the row count.
        """
        w, h = self.input_size
        shapes = [o.shape for o in self.session.get_outputs()]
        n_cls = len(self.names)
        scores = {s[1]: i for i, s in enumerate(shapes) if len(s) == 3 and s[2] == n_cls}
        boxes = {s[1]: i for i, s in enumerate(shapes)
                 if len(s) == 3 and s[2] != n_cls and isinstance(s[2], int) and s[2] % SIDES == 0}
        heads = []
        for rows in sorted(scores, reverse=True):
            if rows not in boxes or not isinstance(rows, int):
                raise ModelError(f"model file {self.path}: no box output pairs the score output of {rows} rows")
            stride = int(round((w * h / rows) ** 0.5))
            if (w // stride) * (h // stride) != rows:
                raise ModelError(f"model file {self.path}: {rows} rows fit no stride for input {w}x{h}")
            heads.append((scores[rows], boxes[rows], stride))
        if not heads:
            raise ModelError(f"model file {self.path}: no NanoDet score outputs with {n_cls} columns")
        return heads

    def preprocess(self, padded_bgr: np.ndarray) -> np.ndarray:
        chw = padded_bgr.transpose(2, 0, 1).astype(np.float32)
        return (chw - self._mean) * self._scale

    def _centres(self, stride: int, size: tuple[int, int], rows: int) -> tuple[np.ndarray, np.ndarray]:
        w, h = size
        key = (stride, w, h)
        if key not in self._grids:
            if (h // stride) * (w // stride) != rows:
                raise ModelError(f"model file {self.path}: {rows} rows at stride {stride} do not fit input {w}x{h}")
            ys, xs = np.mgrid[0 : h // stride, 0 : w // stride].astype(np.float32)
            self._grids[key] = ((xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride)
        return self._grids[key]

    def decode(self, outputs: list[np.ndarray], size: tuple[int, int]) -> list[Candidates]:
        result: list[Candidates] = []
        floor = np.float32(self.options.min_score)
        for n in range(len(outputs[0])):
            parts = [self._decode_head(outputs[si][n], outputs[bi][n], stride, size, floor)
                     for si, bi, stride in self.heads]
            result.append(tuple(np.concatenate(p) for p in zip(*parts)))  # type: ignore[arg-type]
        return result

    def _decode_head(self, scores: np.ndarray, dist: np.ndarray, stride: int, size: tuple[int, int],
                     floor: np.float32) -> Candidates:
        """One image, one stride: keep cells whose best class passes `floor`, decode their boxes."""
        centres = self._centres(stride, size, len(scores))
        cls = scores.argmax(axis=1)
        best = scores[np.arange(len(scores)), cls]
        keep = np.flatnonzero(best >= floor)
        if keep.size == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32)
        bins = dist[keep].reshape(len(keep), SIDES, -1)  # decode only the survivors
        e = np.exp(bins - bins.max(axis=2, keepdims=True))
        d = (e * np.arange(bins.shape[2], dtype=np.float32)).sum(axis=2) / e.sum(axis=2) * stride
        cx, cy = (g[keep] for g in centres)
        xyxy = np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], axis=1)
        return xyxy.astype(np.float32), best[keep].astype(np.float32), cls[keep].astype(np.int32)
