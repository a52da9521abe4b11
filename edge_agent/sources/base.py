"""What every live video source shares: its states and the callback that receives frames.

A source runs its own decode thread, yields `Frame`s through `on_frame` (with `image` filled only
for frames sampled at detect fps) and feeds every encoded packet into a `PacketRing`. File
sources used by replay are plain iterators (sources/file.py); live ones (RTSP, looping demo
files) implement `LiveSource`.
"""

from __future__ import annotations

from enum import Enum
from typing import Callable, Protocol

from ..frames import Frame

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
