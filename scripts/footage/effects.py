"""Field conditions as frame effects for the hard test clips (float BGR 0..1 in and out).

Each effect is built once per scene and called per frame with the media time and the scene's
effect generator (deterministic per seed). Sensor noise and shake are the Camera's, not here.
"""

from __future__ import annotations

import math
from typing import Callable

import cv2
import numpy as np

Effect = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


def haze(contrast: float, veil: float = 0.78) -> Effect:
    """Contrast cut to `contrast` of the original toward a bright grey veil (fog, haze)."""

    def apply(frame: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
        return frame * contrast + np.float32(veil * (1 - contrast))

    return apply


def dusk(mean: float) -> Effect:
    """The whole picture scaled to a mean brightness of `mean` (0..1), a bluish cast."""

    def apply(frame: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
        out = frame * np.float32(mean / max(float(frame.mean()), 1e-3))
        return out * np.float32([1.1, 1.0, 0.9])

    return apply


def rain(streaks: int, length_px: float) -> Effect:
    """Slanted bright streaks at random places every frame (rain lit by the camera's light)."""

    def apply(frame: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
        h, w = frame.shape[:2]
        layer = np.zeros((h, w), np.float32)
        n = streaks * w * h // (1280 * 720)
        xs, ys = rng.uniform(0, w, n), rng.uniform(0, h, n)
        length = length_px * w / 1280
        for x, y in zip(xs, ys):
            cv2.line(layer, (int(x), int(y)), (int(x + 0.25 * length), int(y + length)), 1.0, 1, cv2.LINE_AA)
        return frame * (1 - 0.35 * layer[:, :, None]) + 0.35 * layer[:, :, None] * np.float32(0.85)

    return apply


def water(region: list[list[float]], amplitude: float, glitter: int = 0, sun_x: float = 0.5) -> Effect:
    """Moving waves inside `region` (a polygon in frame fractions), denser toward its top (the
    horizon); with `glitter`, that many sun sparkles a frame (1080p-equivalent) there, most near
    the sun's column `sun_x`."""
    masks: dict[tuple[int, int], np.ndarray] = {}

    def mask_for(w: int, h: int) -> np.ndarray:
        if (w, h) not in masks:
            m = np.zeros((h, w), np.float32)
            cv2.fillPoly(m, [(np.asarray(region) * (w, h)).round().astype(np.int32)], 1.0)
            masks[(w, h)] = m
        return masks[(w, h)]

    def apply(frame: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
        h, w = frame.shape[:2]
        mask = mask_for(w, h)
        y0 = int(min(p[1] for p in region) * h)
        ys = np.arange(h, dtype=np.float32)[:, None]
        xs = np.arange(w, dtype=np.float32)[None, :]
        depth = np.clip(ys - y0, 0, None) / h + 0.05  # small at the horizon: far waves are shorter
        phase = 2 * math.pi * (xs / (0.09 * w * depth + 4) * 0.35 + ys / (0.03 * h * depth + 2) - 0.8 * t)
        ripple = amplitude * np.sin(phase) * np.sin(0.7 * phase + 1.3)
        out = frame * (1 + mask * ripple)[:, :, None].astype(np.float32)
        if glitter:
            n = glitter * w * h // (1920 * 1080)
            gx = np.clip(rng.normal(sun_x * w, 0.18 * w, n), 0, w - 2).astype(int)
            gy = rng.uniform(y0, h - 2, n).astype(int)
            keep = mask[gy, gx] > 0
            size = max(1, w // 640)
            for x, y in zip(gx[keep], gy[keep]):
                out[y: y + size, x: x + 2 * size] = 1.0
        return np.clip(out, 0, 1)

    return apply


def chain(*effects: Effect) -> Effect:
    def apply(frame: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
        for e in effects:
            frame = e(frame, t, rng)
        return frame

    return apply
