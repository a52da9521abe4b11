"""A video file as a camera: replay (deterministic, faster than real time) and demo cameras.

Time comes from the file: a frame's media time is its pts in seconds, and its wall time is the
replay's start plus media time, so schedules and timestamps in a replay are what a live camera
would have produced at that hour. Every decoded frame goes to the camera's `FrameGate`, which
samples and gates it exactly as it would a live camera's.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Iterator

import av

from ..errors import SourceError
from .packets import PacketRing

log = logging.getLogger(__name__)


class FileSource:
    """Decode every frame of a file, yielding `(media_time, frame)`; packets feed the ring."""

    def __init__(self, camera: str, path: str | Path, ring: PacketRing | None = None, loop: bool = False) -> None:
        self.camera = camera
        self.path = Path(path)
        self.ring = ring
        self.loop = loop
        self.frames_in = 0
        self.duration: float | None = None
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _open(self) -> av.container.InputContainer:
        if not self.path.is_file():
            raise SourceError(f"camera {self.camera}: video file not found: {self.path}")
        try:
            container = av.open(str(self.path))
        except av.error.FFmpegError as exc:
            raise SourceError(f"camera {self.camera}: cannot read video {self.path}: {exc}") from exc
        if not container.streams.video:
            container.close()
            raise SourceError(f"camera {self.camera}: {self.path} has no video stream")
        return container

    def __iter__(self) -> Iterator[tuple[float, av.VideoFrame]]:
        offset = 0.0  # media seconds added per loop, so time never goes backwards
        while not self._stop.is_set():
            container = self._open()
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            tb = float(stream.time_base)
            first_pts = stream.start_time or 0
            if self.ring is not None:
                self.ring.set_template(stream)
            last_t = offset
            try:
                for packet in container.demux(stream):
                    if self._stop.is_set():
                        break
                    if packet.pts is not None and self.ring is not None:
                        self.ring.push(packet, offset + (packet.pts - first_pts) * tb)
                    for frame in self._decode(packet):
                        self.frames_in += 1
                        t = offset + ((frame.pts if frame.pts is not None else 0) - first_pts) * tb
                        last_t = max(last_t, t)
                        yield t, frame
            finally:
                container.close()
            # The last frame lasts one frame time (not one detect interval): replay's speed ratio
            # and end-of-replay time are taken from this.
            frame_s = 1.0 / float(stream.average_rate or 25)
            self.duration = last_t - offset + frame_s
            if not self.loop:
                return
            offset = last_t + frame_s

    def _decode(self, packet: av.Packet) -> list[av.VideoFrame]:
        try:
            return list(packet.decode())
        except av.error.InvalidDataError as exc:
            log.warning("camera %s: skipping undecodable packet: %s", self.camera, exc)
            return []
