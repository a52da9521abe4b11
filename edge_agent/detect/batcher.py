"""One detector thread for every camera: latest-frame slots, batches across cameras, round-robin.

Each camera has a slot holding only its newest frame: a camera the detector cannot keep up with
loses its older frames (counted as dropped) instead of queueing them, so latency stays bounded
and memory never grows. A batch takes at most one frame per camera, the slots that have waited
longest first; a slot keeps its place in line when a newer frame replaces the one in it, so a
busy camera neither jumps the queue nor loses its turn (round-robin in the order slots filled,
which serves the camera about to lose a frame first). Like DeepStream's `batch-size` and
`batched-push-timeout`, a batch waits up to `max_wait_ms` for more cameras to fill it.

Urgent frames (motion or an open track) are taken before a quiet camera's idle check, and never
in the same batch: idle checks wait for a batch of their own. The overload policy
(detect/overload.py) hears of every batch and every frame replaced; how long
urgent frames waited is kept per camera for the `analysis_degraded` alarm.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Sequence

import numpy as np


from ..frames import Detections, Frame
from ..health import Health
from .overload import OverloadPolicy
from .tiles import Tiling

log = logging.getLogger(__name__)

ResultCallback = Callable[[Frame, Detections], None]
WARM_UP_SIZE = (640, 360)  # width, height of the blank warm-up picture


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
    ) -> None:
        self.detector = detector
        self.tiling = tiling or Tiling()  # the cameras' tiles ride the same batches
        self.on_result = on_result
        self.health = health
        self.max_batch = max(1, int(max_batch))
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000.0
        self.policy = policy or OverloadPolicy()
        self._slots: dict[str, tuple[Frame, float]] = {}  # camera -> (frame, submitted at)
        self._urgent_wait: dict[str, float] = {}  # camera -> longest wait of an urgent frame since last asked
        self._order: list[str] = []  # cameras in the order first seen (ties in line)
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.frames = 0
        self.dropped = 0
        self.infer_s = 0.0
        self.errors = 0

    # --- producer side ---------------------------------------------------------------------
    def submit(self, frame: Frame) -> None:
        """Put a camera's newest frame in its slot; a frame still waiting there is dropped."""
        with self._cond:
            if frame.camera not in self._order:
                self._order.append(frame.camera)
            since = time.monotonic()
            if frame.camera in self._slots:
                self.dropped += 1
                if self.health is not None:
                    self.health.count(frame.camera, "frames_dropped")
                old, since = self._slots[frame.camera]  # keep its place in line
                self.policy.frame_lost(old.urgent)
            self._slots[frame.camera] = (frame, since)
            self._cond.notify()

    # --- consumer side ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="detector", daemon=True)
        self._thread.start()

    def warm_up(self) -> None:
        """One inference on a blank picture before the first frame: ONNX Runtime allocates its
        buffers on the first run, which takes several frame times, and the cameras' first frames
        would otherwise be replaced in their slots while it does."""
        try:
            self.detector.detect([np.zeros((WARM_UP_SIZE[1], WARM_UP_SIZE[0], 3), np.uint8)])
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
        """Frames waiting in their slots (never blocks on a detector stuck in a batch: it holds no lock)."""
        with self._cond:
            return len(self._slots)

    def take_batch(self, timeout: float | None = None) -> list[Frame]:
        """Wait for frames, then up to `max_wait` for a fuller batch; one frame per camera, fairly."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._slots or self._stop, timeout):
                return []
            deadline = time.monotonic() + self.max_wait
            while not self._stop and len(self._slots) < min(self.max_batch, len(self._order)):
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    break
            return self._pick()

    def _pick(self) -> list[Frame]:
        rank = {cam: i for i, cam in enumerate(self._order)}
        waiting = sorted(self._slots, key=lambda cam: (not self._slots[cam][0].urgent, self._slots[cam][1], rank[cam]))
        if waiting and self._slots[waiting[0]][0].urgent:
            # Idle checks wait for a batch of their own: three of them (with their sweep tiles)
            # beside a busy camera's frame held it for half a second, and its next two frames
            # were replaced in the slot.
            waiting = [cam for cam in waiting if self._slots[cam][0].urgent]
        now = time.monotonic()
        picked = []
        for cam in waiting[: self.max_batch]:
            frame, since = self._slots.pop(cam)
            if frame.urgent:
                self._urgent_wait[cam] = max(self._urgent_wait.get(cam, 0.0), now - since)
            picked.append(frame)
        return picked

    def urgent_waits(self) -> dict[str, float]:
        """Per camera, the longest an urgent frame waited (taken, or still waiting) since the last
        call: what `analysis_degraded` compares with `max_motion_gap_s`."""
        with self._cond:
            now = time.monotonic()
            out, self._urgent_wait = self._urgent_wait, {}
            for cam, (frame, since) in self._slots.items():
                if frame.urgent:
                    out[cam] = max(out.get(cam, 0.0), now - since)
            return out

    def _run(self) -> None:
        while True:
            batch = self.take_batch(timeout=0.5)
            if not batch:
                with self._cond:
                    if self._stop and not self._slots:
                        return
                continue
            self.process(batch)

    def process(self, batch: Sequence[Frame]) -> None:
        """Detect on one batch and hand each result on; a detector error skips the batch, counted."""
        began = time.perf_counter()
        try:
            results = self.tiling.detect(self.detector, batch)
        except Exception:  # one bad batch must not kill every camera's analysis
            self.errors += 1
            log.exception("detector failed on a batch of %d frames", len(batch))
            return
        spent = time.perf_counter() - began
        self.policy.batch_done(spent)
        self.batches += 1
        self.frames += len(batch)
        self.infer_s += spent
        if self.health is not None:
            self.health.observe_detector(spent)
            for f in batch:
                self.health.count(f.camera, "frames_analysed")
            self.health.set_detector(
                batches=self.batches, frames=self.frames, dropped=self.dropped, errors=self.errors,
                mean_batch=round(self.frames / self.batches, 2),
                ms_per_frame=round(1000 * self.infer_s / self.frames, 1), tiles=self.tiling.tiles,
            )
        for frame, dets in zip(batch, results):
            try:
                self.on_result(frame, dets)
            except Exception:
                log.exception("camera %s: analysis of frame %d failed", frame.camera, frame.seq)
