"""Composites with known truth for detector tests and scripts/bench_detector.py.

A cut-out (transparent GIF) is scaled to a height and pasted with its bottom edge at a known row,
so the true box is the pasted mask's bounding box. Import with `load_scenes()` helpers below.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DATA = Path(__file__).resolve().parent
PERSON_PHOTO = DATA / "person.jpg"
PERSON_PHOTO_TRUTH = (191.0, 100.0, 273.0, 375.0)  # hand-marked box of the person in person.jpg
EMPTY_BACKGROUNDS = ["train-tracks1", "lake", "city-with-water", "beach-malibu", "boardwalk",
                     "water-and-rocks"]
PEOPLE = ["dan1", "dan3", "sam", "paul1", "nathan", "anjuli-1", "referee1"]
BOATS = ["yacht", "sail-boat"]
WATERLINE = {"lake": 350, "city-with-water": 300}  # a row inside each background's water


@dataclass(frozen=True)
class Scene:
    background: str
    cutout: str
    label: str  # COCO class name the cut-out shows
    x: int  # left edge of the pasted cut-out
    bottom: int  # row of its lowest pixel
    height: int  # pasted height in pixels

    @property
    def name(self) -> str:
        return f"{self.cutout}@{self.background}:{self.x},{self.bottom},h{self.height}"


def background(name: str) -> np.ndarray:
    image = cv2.imread(str(DATA / "backgrounds" / f"{name}.jpg"), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(DATA / "backgrounds" / f"{name}.jpg")
    return image


def cutout(name: str) -> np.ndarray:
    image = cv2.imread(str(DATA / "cutouts" / f"{name}.gif"), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        raise FileNotFoundError(f"{DATA / 'cutouts' / name}.gif (expected a transparent GIF)")
    return image


def compose(bg: np.ndarray, cut: np.ndarray, x: int, bottom: int, height: int) -> tuple[np.ndarray, tuple]:
    """Paste `cut` (BGRA) scaled to `height`; returns (image, true xyxy of the pasted pixels)."""
    scale = height / cut.shape[0]
    width = max(1, round(cut.shape[1] * scale))
    small = cv2.resize(cut, (width, height), interpolation=cv2.INTER_AREA)
    top = bottom - height + 1
    h, w = bg.shape[:2]
    if x < 0 or top < 0 or x + width > w or bottom >= h:
        raise ValueError(f"cut-out {width}x{height} at ({x}, {top}) does not fit a {w}x{h} image")
    alpha = (small[:, :, 3:4] > 127).astype(np.float32)
    out = bg.copy()
    roi = out[top : bottom + 1, x : x + width]
    roi[:] = (roi * (1 - alpha) + small[:, :, :3] * alpha).astype(np.uint8)
    ys, xs = np.nonzero(alpha[:, :, 0])
    return out, (float(x + xs.min()), float(top + ys.min()), float(x + xs.max() + 1), float(top + ys.max() + 1))


def render(scene: Scene) -> tuple[np.ndarray, tuple]:
    return compose(background(scene.background), cutout(scene.cutout), scene.x, scene.bottom, scene.height)


def bench_scenes() -> list[Scene]:
    """People on the rail track and the boardwalk, boats on the lake and the city river."""
    scenes: list[Scene] = []
    for bg, bottom in (("train-tracks1", 330), ("boardwalk", 340)):
        for person in PEOPLE:
            for height in (160, 100, 60):
                for x in (40, 200, 340):
                    scenes.append(Scene(bg, person, "person", x, bottom, height))
    for bg, bottom in WATERLINE.items():
        for boat in BOATS:
            for height in (90, 70, 50):
                for x in (20, 120, 220):
                    scene = Scene(bg, boat, "boat", x, bottom, height)
                    cut = cutout(boat)
                    if x + cut.shape[1] * height / cut.shape[0] < 478:
                        scenes.append(scene)
    return scenes


def iou(a: tuple | np.ndarray, b: tuple | np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def best_match(dets, label: str, truth: tuple) -> tuple[float, float]:
    """(IoU, score) of the detection of `label` that overlaps `truth` most; (0, 0) if none."""
    best = (0.0, 0.0)
    for box, score, name in zip(dets.xyxy, dets.confidence, dets.class_name):
        if name == label:
            best = max(best, (iou(box, truth), float(score)))
    return best
