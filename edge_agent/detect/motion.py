"""Cheap per-camera scene watching on a tiny grey picture: motion gating and tamper detection.

Most cameras are quiet most of the time. Measuring motion on a 64-pixel-wide grey copy of the
luma plane costs microseconds, so a quiet camera is sent to the detector only every
`idle_interval_s`, unless it moved or has an object inside a zone (a stationary boat is
re-checked every frame because the rules need to see it stay). The same tiny picture tells
when a camera is covered, blinded or turned away: `camera_tampered`.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

SMALL_WIDTH = 64


def small_grey(frame) -> np.ndarray:
    """A SMALL_WIDTH-wide float32 grey picture from a PyAV frame's luma plane (no colour conversion)."""
    if frame.format.name in ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "gray"):
        plane = frame.planes[0]
        y = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
    else:
        y = frame.to_ndarray(format="gray")
    return small_from_grey(y)


def small_from_grey(grey: np.ndarray) -> np.ndarray:
    h, w = grey.shape[:2]
    size = (SMALL_WIDTH, max(1, round(SMALL_WIDTH * h / w)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)


def small_from_bgr(image: np.ndarray) -> np.ndarray:
    return small_from_grey(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))


def motion_fraction(prev: np.ndarray, cur: np.ndarray, threshold: float = 12.0) -> float:
    """Fraction of tiny-picture pixels whose brightness changed by more than `threshold` (of 255)."""
    return float(np.count_nonzero(np.abs(cur - prev) > threshold)) / cur.size


@dataclass
class GateDecision:
    analyse: bool
    motion: float
    tamper: str | None  # reason while the picture looks tampered, else None


class SceneWatch:
    """One camera's motion gate and tamper detector; call `observe` once per sampled frame.

    Tamper reasons: "uniform" (black, white or covered: almost no contrast) and "changed" (most of
    the picture differs from the long-term background, e.g. the camera was turned). Both must
    hold for `tamper_hold_s` so a passing train or a light flash does not alarm.
    """

    def __init__(
        self,
        idle_interval_s: float,
        active: Callable[[], bool] = lambda: False,
        motion_threshold: float = 0.002,
        uniform_std: float = 4.0,
        changed_fraction: float = 0.6,
        tamper_hold_s: float = 3.0,
        background_rate: float = 0.02,
        phase: float | None = None,
    ) -> None:
        self.idle_interval_s = float(idle_interval_s)
        self.active = active  # True while the camera has a tracked object inside a zone
        self.motion_threshold = motion_threshold
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
        self.phase = random.random() if phase is None else phase  # fraction of an idle interval

    def resize(self) -> None:
        """The picture changed size: start motion afresh; the tamper background is rescaled at the
        next frame (not forgotten: a camera turned away while unplugged must still be noticed)."""
        self.prev = None

    def force_next(self) -> None:
        """Let the next sampled frame through the gate (a `snapshot` command wants a fresh picture).
        Called from another thread: only sets an Event the decode thread reads."""
        self._force.set()

    def observe(self, small: np.ndarray, t: float) -> GateDecision:
        """`t` is seconds on any steady clock (media time works)."""
        if self.prev is not None and self.prev.shape != small.shape:
            self.prev = None
        if self.background is not None and self.background.shape != small.shape:
            self.background = cv2.resize(self.background, (small.shape[1], small.shape[0]),
                                         interpolation=cv2.INTER_AREA)
        first = self.prev is None
        motion = 1.0 if first else motion_fraction(self.prev, small)
        self.prev = small
        tamper = self._tamper(small, t)
        analyse = (
            motion >= self.motion_threshold
            or t - self.last_analysed >= self.idle_interval_s
            or self._force.is_set()
            or self.active()
        )
        if analyse:
            self.last_analysed = t
            self._force.clear()
        if first:
            # Cameras started together would re-check together, a burst every idle interval that
            # makes busy cameras drop frames: start each one's idle clock at a random phase.
            self.last_analysed = t - self.phase * self.idle_interval_s
        return GateDecision(analyse, motion, tamper)

    def _tamper(self, small: np.ndarray, t: float) -> str | None:
        reason = None
        if float(small.std()) < self.uniform_std:
            reason = "uniform"
        elif self.background is not None:
            if motion_fraction(self.background, small, threshold=40.0) >= self.changed_fraction:
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
