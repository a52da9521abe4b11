"""Cheap per-camera scene watching on small grey pictures: motion gating and tamper detection.

Most cameras are quiet most of the time, so a quiet camera is sent to the detector only every
`idle_interval_s`, unless something moved where its zones are or an object is inside a zone (a
stationary boat is re-checked every frame because the rules need to see it stay).

Motion is measured on a MOTION_WIDTH-wide grey copy of the luma plane (a fraction of a
millisecond), inside the zones' regions, and counted in changed pixels, not as a share of the
frame: a person 28 px tall far down a 720p track bed is 7 px tall there and changes a dozen
pixels between samples, where a 64-px-wide picture and a 0.2 % threshold saw one pixel and kept
the gate shut. The area averaging of the downscale (16 camera pixels to one) keeps sensor noise
well under the change threshold. Water, sun glitter and rain change some pixels on every frame:
`SteadyMotion` learns, per cell, how much each cell usually changes, and only change unusual for
its cell opens the gate, so a restless bay is checked every idle interval like a still one while
a boat crossing it still opens the gate. A TAMPER_WIDTH-wide copy of the same picture tells when a
camera is covered, blinded or turned away: `camera_tampered`.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

MOTION_WIDTH = 320  # 4x down from 1280: a 28 px person in 720p is several cells tall
TAMPER_WIDTH = 64  # the whole view's look, for covered / blinded / turned away
CHANGE_LEVEL = 12.0  # a pixel changed when its brightness moved by more than this (of 255)
MIN_CHANGED_PIXELS = 3  # changed pixels inside the zones' regions that open the gate
REGION_MARGIN = 0.1  # zones' regions grow by this fraction of the frame: what approaches counts
# Steady motion (water, glitter, rain) is learned per CELL x CELL square of the grey copy (10
# across): large enough that rain's random streaks average into a steady count per cell, small
# enough that a boat or a person fills a good part of one.
CELL = 32
STEADY_QUANTILE = 0.95  # a cell's usual change: the count it stays under on 95 % of samples
# A cell moves steadily when it changed on at least STEADY_DUTY of its samples (a running share
# with a STEADY_DUTY_S time constant: learned in about half a minute) and its usual change is at
# least STEADY_MIN pixels: water and rain do (sparse rain changes a cell on 10-30 % of samples),
# a person crossing a cell does not (the slowest far walker stays about 6 s in one: 0.14).
STEADY_DUTY, STEADY_DUTY_S, STEADY_MIN = 0.15, 40.0, 2.0
SOMETIMES_DUTY = 0.02  # below STEADY_DUTY: a cell that changes now and then (sparse rain)
STEADY_GAIN, STEADY_FLOOR = 1.5, 6.0  # change counts in such a cell only above gain x usual + floor
# The usual level climbs by 0.95 x this share of a cell's area per second while the cell changes
# more (a full 32 px cell: about 1.6 px/s, so a bay is learned in tens of seconds and a person
# crossing a cell in a few seconds raises it little) and falls by 0.05 x it otherwise (a calmed
# cell forgets in minutes).
LEARN_RATE = 1 / 600
MAX_LEARN_STEP_S = 2.0  # a gap (reconnect, keyframe-only decode) learns like this long at most


def small_grey(frame) -> np.ndarray:
    """A MOTION_WIDTH-wide float32 grey picture from a PyAV frame's luma plane (no colour conversion)."""
    if frame.format.name in ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "gray"):
        plane = frame.planes[0]
        y = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
    else:
        y = frame.to_ndarray(format="gray")
    return small_from_grey(y)


def small_from_grey(grey: np.ndarray, width: int = MOTION_WIDTH) -> np.ndarray:
    h, w = grey.shape[:2]
    size = (min(width, w), max(1, round(min(width, w) * h / w)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)


def small_from_bgr(image: np.ndarray) -> np.ndarray:
    return small_from_grey(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))


def motion_fraction(prev: np.ndarray, cur: np.ndarray, threshold: float = CHANGE_LEVEL) -> float:
    """Fraction of pixels whose brightness changed by more than `threshold` (of 255)."""
    return float(np.count_nonzero(np.abs(cur - prev) > threshold)) / cur.size


def relit(picture: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`picture` brought to `reference`'s light: divided by the median brightness ratio between
    them, which light changing over the whole view (dusk, clouds, the day/night IR switch) moves
    and an object covering less than half of the view does not."""
    gain = float(np.median((picture + 1.0) / (reference + 1.0)))
    return picture / max(gain, 1e-3)


def change_map(prev: np.ndarray, cur: np.ndarray, threshold: float = CHANGE_LEVEL) -> np.ndarray:
    """Where brightness changed by more than `threshold` (of 255): a bool picture."""
    return np.abs(cur - prev) > threshold


def changed_pixels(changes: np.ndarray, region: np.ndarray | None = None) -> int:
    """Changed pixels of a `change_map` inside `region` (a bool mask; None: anywhere)."""
    return int(np.count_nonzero(changes & region if region is not None else changes))


Box = tuple[float, float, float, float]  # normalised x1, y1, x2, y2


def zone_regions(polygons: Sequence[Sequence[Sequence[float]]], margin: float = REGION_MARGIN) -> list[Box]:
    """Where motion matters: each zone's (or line's) bounding box grown by `margin`, normalised."""
    out = []
    for points in polygons:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        out.append((max(0.0, min(xs) - margin), max(0.0, min(ys) - margin),
                    min(1.0, max(xs) + margin), min(1.0, max(ys) + margin)))
    return out


def region_mask(regions: Sequence[Box] | None, shape: tuple[int, int]) -> np.ndarray | None:
    """A bool mask of `shape` (h, w) covering `regions`; None (the whole picture) without any."""
    if not regions:
        return None
    h, w = shape
    mask = np.zeros((h, w), dtype=bool)
    for x1, y1, x2, y2 in regions:
        mask[int(y1 * h): max(int(y1 * h) + 1, int(np.ceil(y2 * h))),
             int(x1 * w): max(int(x1 * w) + 1, int(np.ceil(x2 * w)))] = True
    return mask


def cell_sums(picture: np.ndarray, cell: int = CELL) -> np.ndarray:
    """Sums over `cell` x `cell` squares (the last row and column may be partial)."""
    h, w = picture.shape
    padded = np.zeros((-(-h // cell) * cell, -(-w // cell) * cell), np.float32)
    padded[:h, :w] = picture
    return padded.reshape(padded.shape[0] // cell, cell, padded.shape[1] // cell, cell).sum(axis=(1, 3))


class SteadyMotion:
    """What each cell of a camera's zones' region usually changes between samples, learned as a
    running 95th percentile of its changed-pixel count (a percentile, not a mean, so rain's bursty
    streaks and a rare passer-by do not decide it), and the change that is unusual for it."""

    def __init__(self) -> None:
        self.level: np.ndarray | None = None  # per cell: changed pixels seen on 95 % of samples
        self.duty: np.ndarray | None = None  # per cell: running share of samples with any change
        self.last_t: float | None = None
        self._weights: np.ndarray | None = None  # region pixels per cell, for `steady_share`
        self.usual: np.ndarray | None = None  # per cell, last call: no change beyond its usual

    def objects_only(self, changes: np.ndarray) -> np.ndarray:
        """`changes` less the cells whose change was their usual (water, rain) on the last call:
        where an object may have moved, for the tiles to look at."""
        if self.usual is None:
            return changes
        cells = np.repeat(np.repeat(self.usual, CELL, axis=0), CELL, axis=1)[: changes.shape[0], : changes.shape[1]]
        return changes & ~cells

    def reset(self) -> None:
        self.level = self.duty = self._weights = self.usual = None
        self.last_t = None

    def unusual(self, changes: np.ndarray, region: np.ndarray | None, t: float) -> int:
        """Changed pixels of `changes` (a bool `change_map`) inside `region` beyond what their
        cells usually change; learns from them."""
        inside = changes if region is None else changes & region
        counts = cell_sums(inside.astype(np.float32))
        if self.level is None or self.duty is None or self.level.shape != counts.shape:
            self.level, self.duty = np.zeros_like(counts), np.zeros_like(counts)
            weights = np.ones(changes.shape, np.float32) if region is None else region.astype(np.float32)
            self._weights = cell_sums(weights)
        excess = counts - np.where(self._steady(), STEADY_GAIN * self.level + STEADY_FLOOR, 0.0)
        # a cell that now and then changes a pixel or two (sparse rain): such specks count only
        # where a cell holds MIN_CHANGED_PIXELS of them, as any object's change does
        excess[(self.duty >= SOMETIMES_DUTY) & (counts < MIN_CHANGED_PIXELS)] = 0.0
        self.usual = excess <= 0
        dt = 0.0 if self.last_t is None else min(max(t - self.last_t, 0.0), MAX_LEARN_STEP_S)
        self.last_t = t
        self.duty += (1.0 - np.exp(-dt / STEADY_DUTY_S)) * ((counts > 0) - self.duty)
        step = CELL * CELL * LEARN_RATE * dt
        self.level += np.where(counts > self.level, STEADY_QUANTILE * step, -(1 - STEADY_QUANTILE) * step)
        np.maximum(self.level, 0.0, out=self.level)
        return int(np.clip(excess, 0, None).sum())

    def _steady(self) -> np.ndarray:
        assert self.level is not None and self.duty is not None
        return (self.level >= STEADY_MIN) & (self.duty >= STEADY_DUTY)

    def steady_share(self) -> float:
        """Share of the region's pixels in cells learned as moving steadily (health: why a camera
        whose picture moves is gated)."""
        if self.level is None or self._weights is None:
            return 0.0
        total = float(self._weights.sum())
        return float(self._weights[self._steady()].sum()) / total if total else 0.0


@dataclass
class GateDecision:
    analyse: bool
    motion: float
    tamper: str | None  # reason while the picture looks tampered, else None
    urgent: bool = True  # motion, an open track or a forced frame; False for an idle check only
    changes: np.ndarray | None = None  # where the picture changed (bool, grey-copy size): tiles look here
    steady: float = 0.0  # share of the zones' region learned as moving steadily (water, rain)


class SceneWatch:
    """One camera's motion gate and tamper detector; call `observe` once per sampled frame.

    Tamper reasons: "uniform" (black, white or covered: almost no contrast) and "changed" (most of
    the picture differs from the long-term background, e.g. the camera was turned). The picture
    is compared at the background's light (`relit`), so dusk, clouds or the IR switch from
    colour to a brighter or darker grey is not "changed". Both must hold for `tamper_hold_s` so
    a passing train or a light flash does not alarm.
    """

    def __init__(
        self,
        idle_interval_s: float,
        active: Callable[[], bool] = lambda: False,
        regions: Sequence[Box] | None = None,
        min_changed: int = MIN_CHANGED_PIXELS,
        uniform_std: float = 4.0,
        changed_fraction: float = 0.6,
        tamper_hold_s: float = 3.0,
        background_rate: float = 0.02,
        phase: float | None = None,
        idle_stretch: Callable[[], float] = lambda: 1.0,
        learn: bool = True,
    ) -> None:
        self.idle_interval_s = float(idle_interval_s)
        self.idle_stretch = idle_stretch  # > 1 while an overloaded agent sheds idle checks
        self.active = active  # True while the camera has a tracked object inside a zone
        self.regions = list(regions) if regions else None  # where motion opens the gate (None: anywhere)
        self.min_changed = min_changed
        self.steady = SteadyMotion() if learn else None  # None: every change counts (before issue 15)
        self._mask: np.ndarray | None = None
        self.uniform_std = uniform_std
        self.changed_fraction = changed_fraction
        self.tamper_hold_s = tamper_hold_s
        self.background_rate = background_rate
        self.prev: np.ndarray | None = None
        self.background: np.ndarray | None = None
        self.last_analysed = float("-inf")
        self._suspect_since: float | None = None
        self._suspect_reason: str | None = None
        self.tampered: str | None = None
        self._force = threading.Event()
        self._accept = threading.Event()
        self.phase = random.random() if phase is None else phase  # fraction of an idle interval

    def set_regions(self, regions: Sequence[Box] | None) -> None:
        """New zones (a zone file applied on the analytics thread): the decode thread rebuilds its
        mask from them at its next frame; one frame judged on the old regions does no harm."""
        self.regions = list(regions) if regions else None
        self._mask = None

    def resize(self) -> None:
        """The picture changed size: start motion afresh; the tamper background is rescaled at the
        next frame (not forgotten: a camera turned away while unplugged must still be noticed)."""
        self.prev = None
        if self.steady is not None:
            self.steady.reset()

    def accept_view(self) -> None:
        """A technician moved the camera on purpose: the next picture becomes the usual view
        (the background and the steady motion are learned afresh from it). Called from another
        thread: only sets an Event the decode thread reads."""
        self._accept.set()

    def force_next(self) -> None:
        """Let the next sampled frame through the gate (a `snapshot` command wants a fresh picture).
        Called from another thread: only sets an Event the decode thread reads."""
        self._force.set()

    def observe(self, picture: np.ndarray, t: float) -> GateDecision:
        """`picture` is the frame's grey copy (small_grey); `t` seconds on any steady clock (media
        time works)."""
        if self.prev is not None and self.prev.shape != picture.shape:
            self.prev = None
        if self._mask is None or self._mask.shape != picture.shape:
            self._mask = region_mask(self.regions, picture.shape[:2])
        if self._accept.is_set() and self.steady is not None:  # _tamper clears the Event
            self.steady.reset()
        first = self.prev is None
        changes = None if first else change_map(self.prev, picture)
        changed = 0 if changes is None else changed_pixels(changes, self._mask)
        unusual = changed
        if changes is not None and self.steady is not None:
            unusual = self.steady.unusual(changes, self._mask, t)
            changes = self.steady.objects_only(changes)  # tiles open where objects move, not water
        area = int(self._mask.sum()) if self._mask is not None else picture.size
        motion = 1.0 if first else changed / max(1, area)
        self.prev = picture
        tamper = self._tamper(small_from_grey(picture, TAMPER_WIDTH), t)
        urgent = first or unusual >= self.min_changed or self._force.is_set() or self.active()
        analyse = urgent or t - self.last_analysed >= self.idle_interval_s * self.idle_stretch()
        if analyse:
            self.last_analysed = t
            self._force.clear()
        if first:
            # Cameras started together would re-check together, a burst every idle interval that
            # makes busy cameras drop frames: start each one's idle clock at a random phase.
            self.last_analysed = t - self.phase * self.idle_interval_s
        steady = self.steady.steady_share() if self.steady is not None else 0.0
        return GateDecision(analyse, motion, tamper, urgent, changes, steady)

    def _tamper(self, small: np.ndarray, t: float) -> str | None:
        if self._accept.is_set():
            self._accept.clear()
            self.background, self.tampered = None, None
            self._suspect_since = self._suspect_reason = None
        if self.background is not None and self.background.shape != small.shape:
            self.background = cv2.resize(self.background, (small.shape[1], small.shape[0]),
                                         interpolation=cv2.INTER_AREA)
        reason = None
        if float(small.std()) < self.uniform_std:
            reason = "uniform"
        elif self.background is not None:
            if motion_fraction(self.background, relit(small, self.background), threshold=40.0) >= self.changed_fraction:
                reason = "changed"
        if reason is None:
            self._suspect_since = self._suspect_reason = None
            self.tampered = None
            # learn the usual view only from healthy pictures
            if self.background is None:
                self.background = small.copy()
            else:
                cv2.accumulateWeighted(small, self.background, self.background_rate)
            return None
        if self._suspect_reason != reason:
            self._suspect_since, self._suspect_reason = t, reason
        if self._suspect_since is not None and t - self._suspect_since >= self.tamper_hold_s:
            self.tampered = reason
        return self.tampered
