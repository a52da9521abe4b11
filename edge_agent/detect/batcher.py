"""One detector thread for every camera: latest-frame slots, and a detector that is never held
long by work that can wait.

Each camera has a slot holding only its newest frame: a camera the detector cannot keep up with
loses its older frames (counted as dropped) instead of queueing them, so latency stays bounded
and memory never grows. A camera following a watched object keeps one frame more, behind the
waiting one, while the box is not saturated (`_keeps_two`). A frame leaves its slot when the
detector begins it, as work: its full frame, then the tiles sliced inference picked for it
(detect/tiles.py).

The detector runs the work a few pictures at a time, as many as fit in `call_budget_s` by the
measured cost per picture (one on a small CPU, a full `max_batch` on a GPU), and chooses anew
before every call: urgent frames (motion or an open track) before a quiet camera's idle check,
never both in one call; frames begun before first, then new ones: a camera following a watched
object first, then the longest waiting first (`_first`). So
an urgent frame waits for one call, not for an idle check's eight sweep tiles (whole batches of
200-600 ms, an idle check's tiles among them, replaced 6 of a busy camera's 57 frames in 15 s
while the detector was idle 40 % of the time). Putting new full frames before older frames'
tiles starved a camera's tiles, and its next frame, while other cameras kept moving. A camera's
next frame waits in its slot until its frame and all its tiles are done (cutting the tiles short
for it, tried, lost the far boat of boats_far_rough over RTSP: found on 5 of 59 frames against
13 of 13). Once the box is saturated (the policy's `saturated`: fps lowered or decoders behind)
throughput matters more than the wait of one call, and calls go back to whole batches: up to
`max_batch` frames with all their tiles. Like DeepStream's `batched-push-timeout`, a call with
room for more waits up to `max_wait_ms` for more cameras to fill it.

The overload policy (detect/overload.py) hears of every call and every frame replaced; how long
urgent frames waited in their slots is kept per camera for `analysis_degraded`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import numpy as np

from ..frames import Detections, Frame
from ..health import Health
from .overload import OverloadPolicy
from .tile_layout import Tile
from .tiles import Tiling, crop

log = logging.getLogger(__name__)

ResultCallback = Callable[[Frame, Detections], None]
WARM_UP_SIZE = (640, 360)  # width, height of the blank warm-up picture
CALL_BUDGET_S = 0.1  # half a frame interval at 5 fps: a frame waits at most this for the detector
COST_WEIGHT = 0.2  # of the newest call in the running cost per picture


class _Work:
    """One frame in analysis: its pictures (the full frame, then its tiles) and their results."""

    __slots__ = ("frame", "tiles", "since", "results")

    def __init__(self, frame: Frame, tiles: list[Tile], since: float) -> None:
        self.frame, self.tiles, self.since = frame, tiles, since
        self.results: list[Detections] = []

    def pending(self) -> int:
        return 1 + len(self.tiles) - len(self.results)

    def image(self, i: int) -> np.ndarray:
        return self.frame.image if i == 0 else crop(self.frame.image, self.tiles[i - 1])


class DetectorBatcher:
    """`submit(frame)` from any camera thread; results go to `on_result(frame, detections)`."""

    def __init__(
        self,
        detector,
        on_result: ResultCallback,
        health: Health | None = None,
        max_batch: int = 4,
        max_wait_ms: float = 20.0,
        policy: OverloadPolicy | None = None,
        tiling: Tiling | None = None,
        call_budget_s: float = CALL_BUDGET_S,
    ) -> None:
        self.detector = detector
        self.tiling = tiling or Tiling()  # the cameras' tiles ride the same calls
        self.on_result = on_result
        self.health = health
        self.max_batch = max(1, int(max_batch))
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000.0
        self.call_budget_s = float(call_budget_s)
        self.policy = policy or OverloadPolicy()
        self._slots: dict[str, tuple[Frame, float]] = {}  # camera -> (frame, submitted at)
        self._next: dict[str, tuple[Frame, float]] = {}  # camera -> a following camera's frame behind its slot's
        self._urgent_wait: dict[str, float] = {}  # camera -> longest wait of an urgent frame since last asked
        self._order: list[str] = []  # cameras in the order first seen (ties in line)
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._work: list[_Work] = []  # frames in analysis, oldest first; the detector thread's own
        self.cost_s: float | None = None  # running detector seconds per picture
        self.batches = 0  # detector calls
        self.images = 0  # pictures detected: frames and tiles
        self.frames = 0
        self.dropped = 0
        self.infer_s = 0.0
        self.errors = 0

    # --- producer side ---------------------------------------------------------------------
    def submit(self, frame: Frame) -> None:
        """Put a camera's newest frame in its slot; a frame still waiting there is dropped, except
        that a camera following a watched object keeps one frame behind the waiting one while the
        box keeps up (`_keeps_two`)."""
        with self._cond:
            if frame.camera not in self._order:
                self._order.append(frame.camera)
            since = time.monotonic()
            if frame.camera in self._next or (frame.camera in self._slots and self._keeps_two(frame)):
                if frame.camera in self._next:
                    self._lose(self._next[frame.camera][0])
                self._next[frame.camera] = (frame, since)
            else:
                if frame.camera in self._slots:
                    old, since = self._slots[frame.camera]  # keep its place in line
                    self._lose(old)
                self._slots[frame.camera] = (frame, since)
            self._cond.notify()

    def _keeps_two(self, frame: Frame) -> bool:
        """Whether a frame arriving behind a waiting one of its camera waits too: the camera
        follows a watched object, so each frame counts for the track and the dwell (at 16
        cameras, two of them busy in step, a frame and its entry tiles now and then outlasted
        the frame interval and the next frame replaced a busy frame), and the box is not
        saturated (then throughput matters, and a frame behind would only add latency). One
        frame behind at most, so memory and latency stay bounded."""
        return frame.following and self._slots[frame.camera][0].following and not self.policy.saturated()

    def _lose(self, frame: Frame) -> None:
        self.dropped += 1
        if self.health is not None:
            self.health.count(frame.camera, "frames_dropped")
        self.policy.frame_lost(frame.urgent)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="detector", daemon=True)
        self._thread.start()

    def warm_up(self) -> None:
        """Two inferences on a blank picture before the first frame: ONNX Runtime allocates its
        buffers on the first run, which takes several frame times (the cameras' first frames
        would be replaced in their slots while it does); the second gives the cost per picture
        that sizes the first calls."""
        blank = np.zeros((WARM_UP_SIZE[1], WARM_UP_SIZE[0], 3), np.uint8)
        try:
            self.detector.detect([blank])
            began = time.perf_counter()
            self.detector.detect([blank])
            self.cost_s = time.perf_counter() - began
        except Exception:  # a detector that fails here fails on real frames too, and says so there
            log.exception("detector warm-up failed")

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def waiting(self) -> int:
        """Frames waiting in their slots or in analysis (never blocks on a detector stuck in a
        call: it holds no lock)."""
        with self._cond:
            return len(self._slots) + len(self._next) + len(self._work)

    def urgent_waits(self) -> dict[str, float]:
        """Per camera, the longest an urgent frame waited before its analysis began (begun, or
        still waiting) since the last call: what `analysis_degraded` compares with
        `max_motion_gap_s`."""
        with self._cond:
            now = time.monotonic()
            out, self._urgent_wait = self._urgent_wait, {}
            for frame, since in self._slots.values():
                if frame.urgent:
                    out[frame.camera] = max(out.get(frame.camera, 0.0), now - since)
            return out

    # --- the detector thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            if not self.step(timeout=0.5):
                with self._cond:
                    if self._stop and not self._slots and not self._work:
                        return

    def step(self, timeout: float | None = None) -> int:
        """One detector call: choose the pictures (taking frames from their slots only now, so a
        frame waits where a newer one can replace it), detect, hand on the frames finished.
        Returns the pictures detected (0: nothing came in `timeout`). The slots' lock is taken
        once per call: with dozens of decode threads submitting, every extra round trip costs
        the interpreter lock back (overload row: half a second between calls with five)."""
        whole = self.policy.saturated()
        with self._cond:
            if not self._work:
                self._wait(timeout, whole)
            taken, begun = self._take(whole)
        chosen = self._choose(taken, begun, whole)
        if not chosen:
            return 0
        self._detect(chosen)
        return len(chosen)

    def room(self) -> int:
        """Pictures per call: as many as the budget holds at the measured cost, one to `max_batch`."""
        if self.cost_s is None or self.cost_s <= 0:
            return 1
        return max(1, min(self.max_batch, int(self.call_budget_s / self.cost_s)))

    def _wait(self, timeout: float | None, whole: bool) -> None:
        """With nothing in analysis, wait up to `timeout` for a frame, then up to `max_wait` for
        company when a call has room for more (the lock held)."""
        if not self._cond.wait_for(lambda: self._slots or self._stop, timeout):
            return
        deadline = time.monotonic() + self.max_wait
        want = min(self.max_batch if whole else self.room(), len(self._order))
        while not self._stop and len(self._slots) < want:
            left = deadline - time.monotonic()
            if left <= 0 or not self._cond.wait(left):
                break

    def _take(self, whole: bool) -> tuple[list[tuple[Frame, float]], list[_Work]]:
        """The frames whose analysis begins with the next call, and the frames in analysis it
        continues (the lock held): urgent before idle checks, never both in one call; frames
        begun before first (none waits behind newer ones for ever), then new ones, the longest
        waiting first, while the call has room; cameras with a frame in analysis left to wait."""
        rank = {cam: i for i, cam in enumerate(self._order)}
        busy = {w.frame.camera for w in self._work}
        now = time.monotonic()
        free = sorted((cam for cam in self._slots if cam not in busy),
                      key=lambda cam: (not self._slots[cam][0].urgent, not self._first(*self._slots[cam], now),
                                       not self._slots[cam][0].object_motion, self._slots[cam][1], rank[cam]))
        # an idle check whose camera has an urgent frame waiting behind it is urgent work: else
        # another camera's motion would hold it, and that frame, back for as long as it lasts
        promoted = {cam for cam in busy if cam in self._slots and self._slots[cam][0].urgent}
        urgent = any(w.frame.urgent or w.frame.camera in promoted for w in self._work) \
            or any(self._slots[c][0].urgent for c in free)
        begun = [w for w in self._work if (w.frame.urgent or w.frame.camera in promoted) == urgent]
        room = self.max_batch - len(begun) if whole else self.room() - sum(w.pending() for w in begun)
        free = [cam for cam in free if self._slots[cam][0].urgent == urgent]
        if whole and urgent:
            free = self._share(free, room)
        taken = [self._slots.pop(cam) for cam in free[: max(0, room)]]
        for frame, since in taken:
            if frame.camera in self._next:
                self._slots[frame.camera] = self._next.pop(frame.camera)
            if frame.urgent:
                self._urgent_wait[frame.camera] = max(self._urgent_wait.get(frame.camera, 0.0), now - since)
        return taken, begun

    def _first(self, frame: Frame, since: float, now: float) -> bool:
        """Whether an urgent frame goes before other urgent frames: its camera follows a watched
        object (approaching or in a zone: the alarm is decided on its frames), or it has waited half of
        `max_motion_gap_s` (motion alone: rain and waves move all day, and at 12 cameras with
        three in rain the busy camera's frame waited behind their frames and tiles and was
        replaced; waiting longer than that would starve them). Among frames ranked alike,
        object-sized motion (a new intruder before it is followed) goes before the rest (a first
        look, rain, waves): 48 cameras starting together, every frame waited past the gap, and
        by their wait alone a walker's first two analyses came 5 s apart."""
        return frame.following or now - since >= self.policy.max_motion_gap_s / 2

    def _share(self, free: list[str], room: int) -> list[str]:
        """Saturated, every urgent frame has waited past half the gap, so `_first` no longer tells
        them apart: cameras following a watched object take all but one place of the call, the
        camera with motion alone that waited longest the last (48 cameras, 6 busy: in turn by
        wait, ten rain and water cameras took half the frames and the busy cameras were analysed
        at 0.5 fps, first alarms up to 3.2 s after the entry). Motion alone is not starved: a new
        intruder shows as motion before it is followed; with one place a call they all go by
        their wait, as before."""
        if room <= 1:
            return free
        following = [cam for cam in free if self._slots[cam][0].following]
        alone = [cam for cam in free if not self._slots[cam][0].following]
        ahead = following[: room - 1] if alone else following
        return ahead + alone + following[len(ahead):]

    def _choose(self, taken: list[tuple[Frame, float]], begun: list[_Work], whole: bool) -> list[tuple[_Work, int]]:
        """The next call's pictures, (work, picture index), in the order of `_take`: up to `room`,
        or, past keeping up (the policy's `saturated`: fps lowered or decoders behind), every
        picture of up to `max_batch` frames in one call, as before calls were cut to the budget:
        at 48 cameras, 6 busy, versions that went a picture at a time analysed 1.2-2.9 frames/s
        against 2.9-4.3 in whole batches, and the busy cameras' first alarms came late (the
        interpreter lock, contended by 48 decode threads, is taken back once per call)."""
        shed = self.policy.shedding("tiles")
        # tiles are chosen on this thread, which owns the tiling; saturated, a following camera's
        # moving tiles wait (busy cameras' moving tiles were half the pictures of a call at 48
        # cameras, and a busy camera's first alarm came a sample late), its held tiles still run
        new = [_Work(frame, self.tiling.select(frame, shed, whole and frame.following), since)
               for frame, since in taken]
        room = 1_000_000 if whole else self.room()
        chosen: list[tuple[_Work, int]] = []
        for work in begun + new:
            first = len(work.results)
            chosen += [(work, i) for i in range(first, first + min(work.pending(), room - len(chosen)))]
        self._work += new
        return chosen

    def _detect(self, chosen: list[tuple[_Work, int]]) -> None:
        """Detect `chosen` in one call; a detector error drops the frames it held, counted."""
        began = time.perf_counter()
        try:
            results = self.detector.detect([work.image(i) for work, i in chosen])
        except Exception:  # one bad call must not kill every camera's analysis
            self.errors += 1
            log.exception("detector failed on %d pictures", len(chosen))
            failed = {id(w) for w, _ in chosen}
            self._work = [w for w in self._work if id(w) not in failed]
            return
        spent = time.perf_counter() - began
        per = spent / len(chosen)
        self.cost_s = per if self.cost_s is None else (1 - COST_WEIGHT) * self.cost_s + COST_WEIGHT * per
        self.policy.batch_done(spent)
        if self.health is not None:
            self.health.observe_detector(spent)
        self.batches += 1
        self.images += len(chosen)
        self.infer_s += spent
        for (work, _), dets in zip(chosen, results):
            work.results.append(dets)
        done = [w for w in self._work if w.pending() == 0]
        self._work = [w for w in self._work if w.pending() > 0]
        for work in done:
            self._finish(work)

    def _finish(self, work: _Work) -> None:
        frame = work.frame
        dets = self.tiling.merge_frame(frame, work.tiles, work.results)
        self.frames += 1
        if self.health is not None:
            self.health.count(frame.camera, "frames_analysed")
            self.health.set_detector(
                batches=self.batches, frames=self.frames, dropped=self.dropped, errors=self.errors,
                mean_batch=round(self.images / self.batches, 2),
                ms_per_frame=round(1000 * self.infer_s / self.frames, 1), tiles=self.tiling.tiles,
            )
        try:
            self.on_result(frame, dets)
        except Exception:
            log.exception("camera %s: analysis of frame %d failed", frame.camera, frame.seq)
