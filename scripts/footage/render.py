"""Compositing and encoding for the synthetic test clips.

A scene is a background plus actors; an actor says, for a media time, which cut-out it shows,
where its anchor (the bottom centre of the visible cut-out) is and how tall it is, all in
fractions of the frame. Rendering records the box every actor was actually drawn at (after
rounding, camera jitter and clipping to the frame), and the ground truth is computed from those
boxes, never from what a pipeline later reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av
import cv2
import numpy as np


@dataclass(frozen=True)
class Pose:
    """Where an actor is at one instant: anchor (bottom centre) and height as frame fractions."""

    sprite: str
    x: float
    y: float
    h: float
    flip: bool = False


@dataclass
class Actor:
    """A labelled object whose pose is a function of media time (None: not in the picture)."""

    name: str
    label: str
    pose: Callable[[float], Pose | None]
    gain: float = 1.0  # brightness of the cut-out itself (< 1: a backlit silhouette)


@dataclass
class Drawn:
    """One actor in one frame as rendered: normalized xyxy of its visible cut-out."""

    actor: str
    label: str
    box: tuple[float, float, float, float]

    @property
    def anchor(self) -> tuple[float, float]:
        """Bottom centre, the zone rules' default anchor."""
        x0, _, x1, y1 = self.box
        return ((x0 + x1) / 2, y1)


@dataclass
class FrameTruth:
    t: float
    objects: list[Drawn] = field(default_factory=list)


class Sprites:
    """Transparent palette GIFs as premultiplied RGBA float arrays, cropped to their visible pixels."""

    def __init__(self, media: Path) -> None:
        self.media = media
        self._cache: dict[str, np.ndarray] = {}

    def get(self, name: str) -> np.ndarray:
        if name not in self._cache:
            path = self.media / name
            img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if img is None or img.ndim != 3 or img.shape[2] != 4:
                raise SystemExit(f"{path}: not a transparent image")
            ys, xs = np.nonzero(img[:, :, 3] > 0)
            img = img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32) / 255.0
            img[:, :, :3] *= img[:, :, 3:]  # premultiplied: resizing then keeps edges clean
            self._cache[name] = img
        return self._cache[name]

    def scaled(self, name: str, height_px: int, flip: bool) -> np.ndarray:
        img = self.get(name)
        h, w = img.shape[:2]
        width_px = max(1, round(w * height_px / h))
        interp = cv2.INTER_AREA if height_px < h else cv2.INTER_LINEAR
        out = cv2.resize(img, (width_px, height_px), interpolation=interp)
        return out[:, ::-1] if flip else out


def load_background(path: Path, width: int, height: int, crop_y: float) -> np.ndarray:
    """Scale a 4:3 photo to `width` and cut a `height` band; crop_y 0 = top, 1 = bottom."""
    img = cv2.imread(str(path))
    if img is None:
        raise SystemExit(f"{path}: cannot read image")
    scaled_h = round(img.shape[0] * width / img.shape[1])
    if scaled_h < height:
        raise SystemExit(f"{path}: too short for {width}x{height}")
    img = cv2.resize(img, (width, scaled_h), interpolation=cv2.INTER_CUBIC)
    # A slight blur: upscaled JPEG grain costs the 1 s keyframes most of their bytes.
    img = cv2.GaussianBlur(img, (0, 0), 0.8 * width / 640)
    y0 = round((scaled_h - height) * crop_y)
    return img[y0 : y0 + height].astype(np.float32) / 255.0


def composite(frame: np.ndarray, sprite: np.ndarray, left: int, top: int, gain: float) -> None:
    """Alpha-blend a premultiplied sprite into `frame` in place (parts outside are dropped)."""
    H, W = frame.shape[:2]
    h, w = sprite.shape[:2]
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + w, W), min(top + h, H)
    if x0 >= x1 or y0 >= y1:
        return
    part = sprite[y0 - top : y1 - top, x0 - left : x1 - left]
    alpha = part[:, :, 3:]
    region = frame[y0:y1, x0:x1]
    region *= 1.0 - alpha
    region += part[:, :, :3] * gain


class Camera:
    """Deterministic sensor noise and a slow global jitter (a camera on a pole in the wind)."""

    def __init__(self, seed: int, width: int, noise: float, jitter_px: float) -> None:
        self.rng = np.random.default_rng(seed)
        self.noise = noise / 255.0
        self.amp = jitter_px * width / 640.0  # jitter is the same fraction of the frame at any size
        self.offset = np.zeros(2)
        self.velocity = np.zeros(2)

    def next_offset(self) -> tuple[float, float]:
        # A damped random walk: smooth, bounded, never a jump a tracker would have to explain.
        self.velocity = 0.7 * self.velocity + self.rng.normal(0.0, 0.25 * self.amp, 2)
        self.offset = np.clip(0.85 * self.offset + self.velocity, -self.amp, self.amp)
        return float(self.offset[0]), float(self.offset[1])

    def expose(self, img: np.ndarray, dx: float, dy: float) -> np.ndarray:
        H, W = img.shape[:2]
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        moved = cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        noisy = moved + self.rng.normal(0.0, self.noise, moved.shape).astype(np.float32)
        return np.clip(noisy * 255.0 + 0.5, 0, 255).astype(np.uint8)


@dataclass
class SceneRender:
    """Everything needed to draw one synthetic scene at any size and frame rate."""

    background: Path
    crop_y: float
    duration: float
    actors: list[Actor]
    seed: int
    gain: Callable[[float], float] = lambda t: 1.0
    noise: float = 1.5
    jitter_px: float = 1.0
    # Applied to the composited frame (float BGR 0..1) before the sensor: haze, dusk, rain, glitter.
    effect: Callable[[np.ndarray, float, np.random.Generator], np.ndarray] | None = None
    # Opaque foreground rectangles (frame fractions x0, y0, x1, y1) in front of every actor, e.g.
    # a parapet; truth boxes cover only the part of a cut-out left visible.
    foreground: list[tuple[float, float, float, float]] = field(default_factory=list)
    foreground_bgr: tuple[float, float, float] = (0.45, 0.47, 0.5)


def render_frames(
    scene: SceneRender, sprites: Sprites, width: int, height: int, fps: int
) -> Iterator[tuple[np.ndarray, FrameTruth]]:
    """Yield (BGR uint8 frame, what was drawn where) for every frame of the scene."""
    bg = load_background(scene.background, width, height, scene.crop_y)
    cam = Camera(scene.seed, width, scene.noise, scene.jitter_px)
    fx_rng = np.random.default_rng(scene.seed + 1)
    walls = [(round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height))
             for x0, y0, x1, y1 in scene.foreground]
    for i in range(round(scene.duration * fps)):
        t = i / fps
        g = scene.gain(t)
        frame = bg * g
        dx, dy = cam.next_offset()
        truth = FrameTruth(t=round(t, 4))
        for actor in scene.actors:
            pose = actor.pose(t)
            if pose is None:
                continue
            hpx = max(2, round(pose.h * height))
            spr = sprites.scaled(pose.sprite, hpx, pose.flip)
            left = round(pose.x * width - spr.shape[1] / 2)
            top = round(pose.y * height) - hpx
            composite(frame, spr, left, top, g * actor.gain)
            box = _unhidden_box(spr, left, top, walls, dx, dy, width, height)
            if box is not None:
                truth.objects.append(Drawn(actor.name, actor.label, box))
        for x0, y0, x1, y1 in walls:
            frame[y0:y1, x0:x1] = np.float32(scene.foreground_bgr) * g
        if scene.effect is not None:
            frame = scene.effect(frame, t, fx_rng)
        yield cam.expose(frame, dx, dy), truth


def _unhidden_box(spr: np.ndarray, left: int, top: int, walls: list[tuple[int, int, int, int]],
                  dx: float, dy: float, W: int, H: int) -> tuple[float, ...] | None:
    """The visible cut-out's box: its opaque pixels minus the foreground, clipped to the frame."""
    h, w = spr.shape[:2]
    if not walls:
        return _visible_box(left + dx, top + dy, w, h, W, H)
    mask = spr[:, :, 3] > 0.5
    for x0, y0, x1, y1 in walls:
        mask[max(0, y0 - top): max(0, y1 - top), max(0, x0 - left): max(0, x1 - left)] = False
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return None
    return _visible_box(left + xs.min() + dx, top + ys.min() + dy, int(xs.max() - xs.min() + 1),
                        int(ys.max() - ys.min() + 1), W, H)


def _visible_box(left: float, top: float, w: int, h: int, W: int, H: int) -> tuple[float, ...] | None:
    x0, y0 = max(left, 0.0), max(top, 0.0)
    x1, y1 = min(left + w, float(W)), min(top + h, float(H))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return (round(x0 / W, 4), round(y0 / H, 4), round(x1 / W, 4), round(y1 / H, 4))


class Encoder:
    """Camera-like H.264: one keyframe a second, no B-frames, no scene-cut keyframes, yuv420p.

    Quality by `crf`, or, with `bitrate_kbps`, at a camera's constant bit rate (VBV-capped).
    """

    def __init__(self, path: Path, width: int, height: int, fps: int, crf: int,
                 bitrate_kbps: int | None = None, preset: str = "medium") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), "w", format="mp4")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps))
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.gop_size = fps
        self.stream.codec_context.max_b_frames = 0
        # threads=1: x264's output depends on the thread count; one thread makes the bytes reproducible.
        params = f"keyint={fps}:min-keyint={fps}:scenecut=0:bframes=0:ipratio=1.0"
        rate = {"crf": str(crf)}
        if bitrate_kbps:
            params += f":bitrate={bitrate_kbps}:vbv-maxrate={bitrate_kbps}:vbv-bufsize={bitrate_kbps}"
            rate = {}
        self.stream.options = {**rate, "preset": preset, "threads": "1", "x264-params": params}
        self.fps = fps
        self.count = 0

    def write(self, bgr: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format="yuv420p")
        frame.pts = self.count
        frame.time_base = Fraction(1, self.fps)
        self.container.mux(self.stream.encode(frame))
        self.count += 1

    def close(self) -> None:
        self.container.mux(self.stream.encode(None))
        self.container.close()
