"""What every live video source shares, and the paced demo file camera.

A live source runs its own decode thread, offers every decoded frame to its camera's `FrameGate`
(sources/gate.py: the one way frames enter analysis) and feeds every encoded packet into a
`PacketRing`. Replay reads a `FileSource` (sources/file.py) through the same gate.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from ..clock import Clock, SystemClock
from ..health import Health, SourceState
from .file import FileSource
from .gate import MAX_BAD_FRAMES, FrameGate
from .packets import PacketRing

log = logging.getLogger(__name__)


class LiveSource(Protocol):
    camera: str

    def start(self) -> None:
        """Start the decode thread; returns at once."""

    def request_stop(self) -> None:
        """Ask the thread to end; returns at once."""

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the thread to end and wait up to `timeout`; True when it ended."""

    def check_watchdog(self) -> None:
        """Called by the supervisor about twice a second: notice a stream that went silent."""

    @property
    def state(self) -> SourceState: ...


class PacedFileSource:
    """A video file played as a live camera in real time (demo cameras, machines without RTSP).

    Wraps the replay `FileSource` (which decodes as fast as it can) in a thread that waits until
    each frame's media time has come, then offers it to the camera's `FrameGate` like a camera.
    """

    def __init__(self, camera: str, path: str, gate: FrameGate, health: Health, ring: PacketRing | None = None,
                 clock: Clock | None = None, loop: bool = True) -> None:
        self.camera = camera
        self.gate = gate
        self.health = health
        self.clock = clock or SystemClock()
        self._file = FileSource(camera, path, ring, loop=loop)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"file-{camera}", daemon=True)
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

    def check_watchdog(self) -> None:
        """A local file does not stall."""

    @property
    def state(self) -> SourceState:
        return SourceState(self.health.state(self.camera))

    def _run(self) -> None:
        self.health.set_state(self.camera, SourceState.CONNECTING)
        began = self.clock.monotonic()
        wall0 = self.clock.now()
        bad = 0  # frames in a row that failed: past MAX_BAD_FRAMES the camera is reported offline
        try:
            for t, frame in self._file:
                wait = began + t - self.clock.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
                try:
                    self.gate.offer(frame, t, lambda m: wall0 + m)
                except Exception as exc:  # a bug downstream costs this frame, not the camera
                    self.health.count(self.camera, "frame_errors")
                    bad += 1
                    if bad == 1:
                        log.exception("camera %s: frame handling failed (frame dropped)", self.camera)
                    if bad == MAX_BAD_FRAMES:
                        self.health.set_state(self.camera, SourceState.OFFLINE,
                                              f"frame errors: {bad} frames in a row failed ({type(exc).__name__}: {exc})")
                    continue
                bad = 0
                if self.state != SourceState.ONLINE:
                    self.health.set_state(self.camera, SourceState.ONLINE)
        except Exception as exc:  # a broken file is this camera's problem, not the agent's
            self.health.set_state(self.camera, SourceState.OFFLINE, str(exc))
            return
        if not self._stop.is_set():
            self.health.set_state(self.camera, SourceState.OFFLINE, "end of file")
