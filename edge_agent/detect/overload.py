"""What the agent sheds when the detector or the decoders cannot keep up, and in which order.

The detector thread reports every batch (its inference time) and every frame replaced in its slot
before it was analysed; decode threads report frames decoded later than real time allows (the
decoders cannot keep up: with decode threads below the detector, the detector may be idle while
they fall behind). Once per window the policy judges the window: overloaded when a frame of a
camera with motion or an open track was replaced, a decoder fell behind, or the detector was busy
nearly all the time; relaxed when it was idle a good part of it and none of that happened. Each
overloaded window sheds one more step, each relaxed one gives one back, in this order (issue 15):

1. `tiles`: slow-schedule tiles (sliced inference reads `shedding("tiles")`);
2. `idle`: quiet cameras' idle checks come `IDLE_STRETCH` times less often;
3. `decode`: quiet cameras (no motion, no open track) decode keyframes only whatever their GOP, up
   to a bound (sources/decode.py). Decode, not the detector, is most of an overloaded box (48
   720p25 cameras decode about twice what 2 cores do), and decode threads run below the detector,
   so without this step the cameras that do move are decoded late. It comes after `idle` because it
   costs a camera that starts moving up to one GOP before its motion is seen, which is more than
   `idle` costs; before `fps` because `fps` costs the cameras already moving, and those matter most;
4. `fps`: every camera's detect fps is lowered evenly, a step at a time, never below the fps
   that keeps a moving camera's gap under `max_motion_gap_s`.

Frames of cameras with motion or an open track go first in every batch whatever the level
(detect/batcher.py), so the busy cameras are the last to feel it. One log line when overload
starts and one when it ends.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

SHED_ORDER = ("tiles", "idle", "decode", "fps")
IDLE_STRETCH = 4.0
FPS_STEP = 0.8  # each overloaded window past `idle` multiplies the detect fps by this
WINDOW_S = 2.0
BUSY_HIGH = 0.92  # detector busy this share of a window: overloaded
BUSY_LOW = 0.6  # and this little, with no urgent frame lost: relaxed
DECODE_BEHIND_S = 1.0  # a frame decoded this much later than its media time allows: decode is behind
SAMPLES_PER_GAP = 2.0  # the lowest fps samples a moving camera this many times per max_motion_gap_s


class OverloadPolicy:
    """Shared by the detector thread (reports), the decode threads (read the level) and the main
    thread (`tick`, health); the level changes under a lock, reads are of plain numbers."""

    def __init__(self, max_motion_gap_s: float = 1.0, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_motion_gap_s = float(max_motion_gap_s)
        self.window_s = float(window_s)
        self.clock = clock
        self.level = 0  # steps of SHED_ORDER in force; past len-1, more fps steps
        self.fps_scale = 1.0
        self.min_fps_scale = FPS_STEP ** 8  # a sixth of the configured fps; effective_fps also floors it
        self._lock = threading.Lock()
        self._window_start = clock()
        self._busy_s = 0.0
        self._urgent_lost = 0
        self._behind = 0  # frames decoded late in this window
        self.decode_behind = False  # whether the last window judged had frames decoded late
        self.overloaded_windows = 0

    # --- reports from the detector thread and the decode threads ------------------------------
    def batch_done(self, seconds: float) -> None:
        with self._lock:
            self._busy_s += seconds
        self.tick()

    def frame_lost(self, urgent: bool) -> None:
        if urgent:
            with self._lock:
                self._urgent_lost += 1

    def decoded_late(self, late_s: float) -> None:
        """A decode thread handed on a frame `late_s` seconds after real time allowed."""
        if late_s > DECODE_BEHIND_S:
            with self._lock:
                self._behind += 1

    # --- judging ----------------------------------------------------------------------------
    def tick(self) -> None:
        """Judge the window if it is over; call after each batch and from supervision."""
        now = self.clock()
        with self._lock:
            span = now - self._window_start
            if span < self.window_s:
                return
            busy, lost, behind = self._busy_s / span, self._urgent_lost, self._behind
            self._window_start, self._busy_s, self._urgent_lost, self._behind = now, 0.0, 0, 0
            self.decode_behind = behind > 0
            before = self.level
            if lost or behind or busy >= BUSY_HIGH:
                self.overloaded_windows += 1
                self._shed_more()
            elif busy <= BUSY_LOW:
                self._shed_less()
            after = self.level
        if before == 0 and after > 0:
            log.warning("overload: the detector or the decoders cannot keep up (detector busy %.0f%%, %d urgent "
                        "frames replaced, %d frames decoded late); shedding in order %s", 100 * busy, lost, behind,
                        ", ".join(SHED_ORDER))
        elif before > 0 and after == 0:
            log.warning("overload over: every camera analysed at its configured fps again")

    def _shed_more(self) -> None:
        if self.level < len(SHED_ORDER):
            self.level += 1
        if self.level >= len(SHED_ORDER):
            self.fps_scale = max(self.min_fps_scale, self.fps_scale * FPS_STEP)

    def _shed_less(self) -> None:
        if self.fps_scale < 1.0:
            self.fps_scale = min(1.0, self.fps_scale / FPS_STEP)
            if self.fps_scale < 1.0:
                return
        self.level = max(0, self.level - 1)

    # --- what the stages read -----------------------------------------------------------------
    def shedding(self, what: str) -> bool:
        """Whether `what` (one of SHED_ORDER) is shed now."""
        return self.level > SHED_ORDER.index(what)

    def idle_stretch(self) -> float:
        return IDLE_STRETCH if self.shedding("idle") else 1.0

    def saturated(self) -> bool:
        """Past keeping up: the fps is lowered, or the decoders fell behind real time in the last
        window (the CPU is full; the detector thread works in whole batches then)."""
        return self.shedding("fps") or self.decode_behind

    def effective_fps(self, detect_fps: float) -> float:
        """The detect fps a camera configured for `detect_fps` runs at now."""
        if not self.shedding("fps"):
            return detect_fps
        floor = min(detect_fps, SAMPLES_PER_GAP / self.max_motion_gap_s)
        return max(floor, detect_fps * self.fps_scale)

    def state(self) -> dict[str, object]:
        return {"overloaded": self.level > 0, "level": self.level,
                "shed": [s for s in SHED_ORDER if self.shedding(s)], "fps_scale": round(self.fps_scale, 3),
                "overloaded_windows": self.overloaded_windows}
