"""What each part of a camera's picture usually changes (water, glitter, rain), learned by the motion
gate so that only change unusual for its place opens it (detect/motion.py)."""

from __future__ import annotations

import numpy as np

MIN_CHANGED_PIXELS = 3  # changed pixels inside the zones' regions that open the gate
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


def cell_sums(picture: np.ndarray, cell: int = CELL) -> np.ndarray:
    """Sums over `cell` x `cell` squares (the last row and column may be partial)."""
    h, w = picture.shape
    padded = np.zeros((-(-h // cell) * cell, -(-w // cell) * cell), np.float32)
    padded[:h, :w] = picture
    return padded.reshape(padded.shape[0] // cell, cell, padded.shape[1] // cell, cell).sum(axis=(1, 3))


def cell_pixels(cells: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A per-cell map (of `cell_sums`) spread back over a picture of `shape`."""
    return np.repeat(np.repeat(cells, CELL, axis=0), CELL, axis=1)[: shape[0], : shape[1]]


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
        return changes & ~cell_pixels(self.usual, changes.shape)

    def reset(self) -> None:
        self.level = self.duty = self._weights = self.usual = None
        self.last_t = None

    def unusual(self, changes: np.ndarray, region: np.ndarray | None, t: float) -> int:
        """Changed pixels of `changes` (a bool `change_map`) inside `region` beyond what their
        cells usually change; learns from them."""
        counts = self._counts(changes, region)
        if self.level is None or self.duty is None or self.level.shape != counts.shape:
            self.level, self.duty = np.zeros_like(counts), np.zeros_like(counts)
            weights = np.ones(changes.shape, np.float32) if region is None else region.astype(np.float32)
            self._weights = cell_sums(weights)
        excess = self._excess(counts)
        self.usual = excess <= 0
        dt = 0.0 if self.last_t is None else min(max(t - self.last_t, 0.0), MAX_LEARN_STEP_S)
        self.last_t = t
        self.duty += (1.0 - np.exp(-dt / STEADY_DUTY_S)) * ((counts > 0) - self.duty)
        step = CELL * CELL * LEARN_RATE * dt
        self.level += np.where(counts > self.level, STEADY_QUANTILE * step, -(1 - STEADY_QUANTILE) * step)
        np.maximum(self.level, 0.0, out=self.level)
        return int(np.clip(excess, 0, None).sum())

    def unusual_cells(self, changes: np.ndarray, region: np.ndarray | None) -> np.ndarray | None:
        """Per cell, the changed pixels beyond the cell's usual (as `unusual`, learning nothing):
        for a change against an older picture. None before anything is learned."""
        counts = self._counts(changes, region)
        if self.level is None or self.level.shape != counts.shape:
            return None
        return np.clip(self._excess(counts), 0, None)

    def restless(self) -> np.ndarray | None:
        """Per cell: it changes now and then or steadily (water, rain), so its change is judged
        against its usual; None before anything is learned."""
        return None if self.duty is None else self.duty >= SOMETIMES_DUTY

    @staticmethod
    def _counts(changes: np.ndarray, region: np.ndarray | None) -> np.ndarray:
        return cell_sums((changes if region is None else changes & region).astype(np.float32))

    def _excess(self, counts: np.ndarray) -> np.ndarray:
        assert self.level is not None and self.duty is not None
        excess = counts - np.where(self._steady(), STEADY_GAIN * self.level + STEADY_FLOOR, 0.0)
        # a cell that now and then changes a pixel or two (sparse rain): such specks count only
        # where a cell holds MIN_CHANGED_PIXELS of them, as any object's change does
        excess[(self.duty >= SOMETIMES_DUTY) & (counts < MIN_CHANGED_PIXELS)] = 0.0
        return excess

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
