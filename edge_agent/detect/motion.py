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
its cell opens the gate, so a restless bay is checked like a still one while a boat crossing it
still opens the gate. An idle check runs only when the picture changed since the detector last
saw it (finer than motion, in blobs; water and rain beyond their usual), or `unchanged_max_s`
after the last analysis: the same picture would give the same answer, and a still camera costs a
fifth of the checks. A TAMPER_WIDTH-wide copy of the same picture tells when a camera is covered,
blinded or turned away: `camera_tampered`.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from .steady import MIN_CHANGED_PIXELS, SteadyMotion, cell_pixels

MOTION_WIDTH = 320  # 4x down from 1280: a 28 px person in 720p is several cells tall
TAMPER_WIDTH = 64  # the whole view's look, for covered / blinded / turned away
CHANGE_LEVEL = 12.0  # a pixel changed when its brightness moved by more than this (of 255)
# An idle check re-detects a picture only where it changed since the detector last saw it, by more
# than this: finer than CHANGE_LEVEL, since a slow or faint arrival (haze, dusk) builds its change
# up over many samples, and an arrival the detector could find must not go unchecked. Sensor
# noise is about 1 level on the area-averaged grey copy.
IDLE_CHANGE_LEVEL = 6.0
OBJECT_SHARE = 0.5  # of the change in one region: one object's, not rain's or noise's scatter
REGION_MARGIN = 0.1  # zones' regions grow by this fraction of the frame: what approaches counts


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


def blobs(changes: np.ndarray) -> np.ndarray:
    """Changed pixels with changed neighbours (a 2x2 erosion): an object's change is a blob, sensor
    noise at the idle check's fine level is scattered single pixels."""
    return cv2.erode(changes.astype(np.uint8), np.ones((2, 2), np.uint8)).astype(bool)


def object_motion(changes: np.ndarray) -> bool:
    """Whether the change is an object's: its largest region (changed pixels a pixel apart joined)
    holds OBJECT_SHARE of it. Measured on sampled frames: walkers of 28 px to half the picture
    0.94-1.0, the benchmark's rain 0.06-0.17, denser streaks 0.18-0.39; a person in heavy rain is
    lost in the scatter and waits like any motion."""
    n = int(np.count_nonzero(changes))
    if n < MIN_CHANGED_PIXELS:
        return False
    count, labels = cv2.connectedComponents(cv2.dilate(changes.astype(np.uint8), np.ones((3, 3), np.uint8)))
    return int(np.bincount(labels[changes], minlength=count)[1:].max()) >= OBJECT_SHARE * n


def _blobs(changes: np.ndarray) -> int:
    return int(np.count_nonzero(blobs(changes)))



@dataclass
class GateDecision:
    analyse: bool
    motion: float
    tamper: str | None  # reason while the picture looks tampered, else None
    urgent: bool = True  # motion, an open track or a forced frame; False for an idle check only
    changes: np.ndarray | None = None  # where the picture changed (bool, grey-copy size): tiles look here
    steady: float = 0.0  # share of the zones' region learned as moving steadily (water, rain)
    since: np.ndarray | None = None  # an idle check: where the picture changed since the last analysis (bool)
    following: bool = False  # a watched object was followed: served before motion alone
    object_motion: bool = False  # object-sized change (a blob) near the zones, not rain's or noise's scatter


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
        following: Callable[[], bool] = lambda: False,
        regions: Sequence[Box] | None = None,
        min_changed: int = MIN_CHANGED_PIXELS,
        uniform_std: float = 4.0,
        changed_fraction: float = 0.6,
        tamper_hold_s: float = 3.0,
        background_rate: float = 0.02,
        phase: float | None = None,
        idle_stretch: Callable[[], float] = lambda: 1.0,
        learn: bool = True,
        unchanged_max_s: float = 0.0,
    ) -> None:
        self.idle_interval_s = float(idle_interval_s)
        # an idle check of a picture unchanged since the last analysis is skipped until this old
        # (0: never skipped)
        self.unchanged_max_s = float(unchanged_max_s)
        self.analysed: np.ndarray | None = None  # the picture the detector was last given
        self.idle_stretch = idle_stretch  # > 1 while an overloaded agent sheds idle checks
        self.active = active  # True while the camera has a tracked object inside a zone
        self.following = following  # True while it follows a watched object anywhere (or active)
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
        active = self.active()
        urgent = first or unusual >= self.min_changed or self._force.is_set() or active
        idle, since = (False, None) if urgent else self._idle_check(picture, t)
        analyse = urgent or idle
        if analyse:
            self.last_analysed, self.analysed = t, picture
            self._force.clear()
        if first:
            # Cameras started together would re-check together, a burst every idle interval that
            # makes busy cameras drop frames: start each one's idle clock at a random phase.
            self.last_analysed = t - self.phase * self.idle_interval_s
        steady = self.steady.steady_share() if self.steady is not None else 0.0
        # an idle check's tiles look where the picture changed since it was last analysed
        looked = since if since is not None and _blobs(since) else changes
        objects = changes is not None and object_motion(changes & self._mask if self._mask is not None else changes)
        return GateDecision(analyse, motion, tamper, urgent, looked, steady, since if idle else None,
                            active or self.following(), objects)

    def _idle_check(self, picture: np.ndarray, t: float) -> tuple[bool, np.ndarray | None]:
        """Whether a quiet camera's idle check runs now, and where its picture changed since the
        picture the detector last saw (None: cannot be told). It runs when due and that picture
        changed, or `unchanged_max_s` after the last analysis: on the same picture the detector
        would find what it found."""
        age = t - self.last_analysed
        if age < self.idle_interval_s * self.idle_stretch():
            return False, None
        ref = self.analysed
        if self.idle_interval_s <= 0 or self.unchanged_max_s <= 0 or ref is None or ref.shape != picture.shape:
            return True, None
        since, n = self._changed_since(picture, ref)
        return n >= self.min_changed or age >= self.unchanged_max_s, since

    def _changed_since(self, picture: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, float]:
        """Where `picture` differs from `ref` inside the zones' region, and how much: calm cells at
        IDLE_CHANGE_LEVEL in blobs; water and rain only beyond what their cell usually does, at the
        gate's own level."""
        diff = np.abs(picture - ref)
        fine = diff > IDLE_CHANGE_LEVEL
        if self._mask is not None:
            fine &= self._mask
        restless = self.steady.restless() if self.steady is not None else None
        excess = None if self.steady is None else self.steady.unusual_cells(diff > CHANGE_LEVEL, self._mask)
        if restless is None or excess is None:
            return fine, _blobs(fine)
        calm = fine & ~cell_pixels(restless, fine.shape)
        return calm | (fine & cell_pixels(excess > 0, fine.shape)), _blobs(calm) + float(excess.sum())

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
