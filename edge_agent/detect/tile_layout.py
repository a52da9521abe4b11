"""Where a camera's tiles lie: the model's input size, over the zones and lines grown by the
overlap, never the sky (detect/tiles.py decides which of them run on a frame)."""

from __future__ import annotations

import math
from typing import Callable

import cv2
import numpy as np

from ..config.models import AgentConfig, TileGrid, Tiles, ZoneFile

Tile = tuple[int, int, int, int]  # x1, y1, x2, y2 in stream pixels

AUTO_MIN_SHRINK = 2.0  # auto tiles a stream the full frame shrinks at least this much into the model input
AUTO_OVERLAP = 0.25
MAP_SCALE = 8  # the map of where zones are is this many times smaller than the frame


def _spans(lo: float, hi: float, size: int, overlap: float, limit: int) -> list[tuple[int, int]]:
    """[start, end) of tiles of `size` covering lo..hi inside 0..limit, spread evenly, neighbours
    sharing at least `overlap` of a tile."""
    size = min(size, limit)
    if hi - lo <= size:
        start = min(max(0, round((lo + hi - size) / 2)), limit - size)
        return [(start, start + size)]
    step = size * (1.0 - overlap)
    n = math.ceil((hi - lo - size) / step - 1e-9) + 1
    starts = [min(max(0, round(lo + i * (hi - lo - size) / (n - 1))), limit - size) for i in range(n)]
    return [(s, s + size) for s in starts]


def near_zones(rules: ZoneFile, frame: tuple[int, int], grow_px: float) -> np.ndarray:
    """Where objects that tiles are for can be: the zones and lines grown by `grow_px` (a small
    person's head above the track bed), as a bool map at 1/MAP_SCALE of the frame."""
    w, h = max(1, frame[0] // MAP_SCALE), max(1, frame[1] // MAP_SCALE)
    near = np.zeros((h, w), np.uint8)
    for zone in rules.zones:
        cv2.fillPoly(near, [np.rint(np.asarray(zone.polygon) * (w - 1, h - 1)).astype(np.int32)], 1)
    for line in rules.lines:
        a, b = (tuple(int(v) for v in np.rint(np.asarray(p) * (w - 1, h - 1))) for p in line.points)
        cv2.line(near, a, b, 1, 1)
    grow = 2 * round(grow_px / MAP_SCALE) + 1
    return cv2.dilate(near, np.ones((grow, grow), np.uint8)) > 0


def layout(near: np.ndarray, frame: tuple[int, int], tile: tuple[int, int], overlap: float) -> list[Tile]:
    """Tiles of `tile` (w, h) pixels over the bounding box of `near` (a bool map of the frame at
    any scale) on a `frame` (w, h) picture; tiles over none of it (the sky above a rail's far
    end, the gap between two far-apart zones) are left out."""
    ys, xs = np.nonzero(near)
    if not len(xs):
        return []
    w, h = frame
    sx, sy = near.shape[1] / w, near.shape[0] / h
    cols = _spans(xs.min() / sx, (xs.max() + 1) / sx, tile[0], overlap, w)
    rows = _spans(ys.min() / sy, (ys.max() + 1) / sy, tile[1], overlap, h)
    out = []
    for y1, y2 in rows:
        for x1, x2 in cols:
            cell = near[int(y1 * sy): math.ceil(y2 * sy), int(x1 * sx): math.ceil(x2 * sx)]
            if cell.any() and (x1, y1, x2, y2) not in out:
                out.append((x1, y1, x2, y2))
    return out


def plan(setting: Tiles, rules: ZoneFile, frame: tuple[int, int], input_size: tuple[int, int] | None) -> list[Tile]:
    """The tiles a camera's setting gives on a frame of this size (none: full frame only)."""
    if setting == "off":
        return []
    if isinstance(setting, TileGrid):
        tile, overlap = (setting.size, setting.size), setting.overlap
    elif input_size is None or max(frame[0] / input_size[0], frame[1] / input_size[1]) < AUTO_MIN_SHRINK:
        return []  # the full frame already shows small objects at half their size or more
    else:
        tile, overlap = input_size, AUTO_OVERLAP
    # Tiles are for objects no bigger than the overlap (larger ones are the full frame's): a zone
    # grown by that much holds every box such an object standing in it can have.
    return layout(near_zones(rules, frame, overlap * max(tile)), frame, tile, overlap)


def camera_setting(cfg: AgentConfig, camera: str) -> Tiles:
    """A camera's tiles setting: its own `tiles`, else `detector.tiles`."""
    cam = next((c for c in cfg.cameras if c.id == camera), None)
    return (cam.tiles if cam else None) or cfg.detector.tiles


def planner(setting: Tiles, model: str) -> Callable[[ZoneFile, tuple[int, int]], list[Tile]]:
    """`plan` for one setting and model, as `edge-agent zones render` draws the tiles and the zone
    editor shows them: the model's input size from its manifest entry (else its loaded file)."""
    from .registry import input_size

    size = input_size(model)
    return lambda rules, frame: plan(setting, rules, frame, size)
