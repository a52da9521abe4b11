"""What every live video source shares: its states and the callback that receives frames.

A source runs its own decode thread, yields `Frame`s through `on_frame` (with `image` filled only
for frames sampled at detect fps) and feeds every encoded packet into a `PacketRing`. File
sources used by replay are plain iterators (sources/file.py); live ones (RTSP, looping demo
files) implement `LiveSource`.
"""

from __future__ import annotations

import logging
import threading
from enum import Enum
from typing import Callable, Protocol

from ..frames import Frame

log = logging.getLogger(__name__)
FrameCallback = Callable[[Frame], None]


class SourceState(str, Enum):
    """A camera's connection state as health reports it."""

    CONNECTING = "connecting"  # opening the stream (first time or after a failure)
    ONLINE = "online"  # frames are arriving
    STALLED = "stalled"  # connected but no frame for `stall_timeout_s`; being restarted
    OFFLINE = "offline"  # the last attempt failed; waiting for the next one (backoff)
    STOPPED = "stopped"  # stopped on purpose


class LiveSource(Protocol):
    camera: str

    def start(self) -> None:
        """Start the decode thread; returns at once."""

    def request_stop(self) -> None:
        """Ask the thread to end; returns at once."""

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the thread to end and wait up to `timeout`; True when it ended."""

    @property
    def state(self) -> SourceState: ...


class Sampler:
    """Pick frames at `fps` by media time; the rest are decoded (the codec needs them) but not converted."""

    def __init__(self, fps: float) -> None:
        self.interval = 1.0 / float(fps)
        self.next_t = float("-inf")

    def take(self, t: float) -> bool:
        if t + 1e-6 < self.next_t:
            return False
        # keep the grid when on time; after a gap (or at the start) re-anchor on this frame
        late = t - self.next_t >= self.interval
        self.next_t = t + self.interval if late else self.next_t + self.interval
        return True


class PacedFileSource:
    """A video file played as a live camera in real time (demo cameras, machines without RTSP).

    Wraps the replay `FileSource` (which decodes as fast as it can) in a thread that waits until
    each sampled frame's media time has come, then hands it on like a camera would.
    """

    def __init__(self, camera: str, path: str, detect_fps: float, on_frame: FrameCallback, health,
                 ring=None, clock=None, loop: bool = True, watch=None, on_tamper=None) -> None:
        from ..clock import SystemClock
        from .file import FileSource

        self.camera = camera
        self.on_frame = on_frame
        self.health = health
        self.clock = clock or SystemClock()
        self.watch = watch
        self.on_tamper = on_tamper
        self._file = FileSource(camera, path, detect_fps, self.clock.now(), ring, loop=loop)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"file-{camera}", daemon=True)
        self._tamper: str | None = None
        health.register(camera)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()
        self._file.stop()

    def stop(self, timeout: float = 10.0) -> bool:
        self.request_stop()
        self._thread.join(timeout)
        self.health.set_state(self.camera, SourceState.STOPPED)
        return not self._thread.is_alive()

    @property
    def state(self) -> SourceState:
        return SourceState(self.health.state(self.camera))

    def _run(self) -> None:
        self.health.set_state(self.camera, SourceState.CONNECTING)
        began = self.clock.monotonic()
        wall0 = self.clock.now()
        try:
            for frame in self._file:
                wait = began + frame.media_time - self.clock.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
                if self.state != SourceState.ONLINE:
                    self.health.set_state(self.camera, SourceState.ONLINE)
                frame.wall_time = wall0 + frame.media_time
                self.health.frame_seen(self.camera, frame.width, frame.height)
                try:
                    self._hand_on(frame)
                except Exception:  # a bug downstream costs this frame, not the camera
                    self.health.count(self.camera, "frame_errors")
                    log.exception("camera %s: frame handling failed (frame dropped)", self.camera)
        except Exception as exc:  # a broken file is this camera's problem, not the agent's
            self.health.set_state(self.camera, SourceState.OFFLINE, str(exc))
            return
        if not self._stop.is_set():
            self.health.set_state(self.camera, SourceState.OFFLINE, "end of file")

    def _hand_on(self, frame: Frame) -> None:
        """Motion gate and tamper watch, then `on_frame` for frames worth analysing."""
        from ..detect.motion import small_from_bgr

        if self.watch is not None and frame.image is not None:
            decision = self.watch.observe(small_from_bgr(frame.image), frame.media_time)
            frame.motion = decision.motion
            if decision.tamper != self._tamper:
                self._tamper = decision.tamper
                if self.on_tamper is not None:
                    self.on_tamper(self.camera, decision.tamper, frame)
            if not decision.analyse:
                self.health.count(self.camera, "frames_gated")
                return
        self.on_frame(frame)
