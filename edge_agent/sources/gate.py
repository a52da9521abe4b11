"""The one way frames enter analysis, the same for an RTSP camera, a paced demo file and replay.

Every decoded frame is `offer`ed to the camera's `FrameGate` with its presentation time. The gate
samples at the camera's detect fps by presentation time (`Sampler`), measures motion and watches
for tampering on a small grey copy of the luma plane (`SceneWatch`), converts to BGR only the
frames worth analysing and hands them on. Because replay goes through the same gate, a replay in
CI analyses the frames the live agent would have analysed, gated the same way.

Extension points for later stages: `reset` on a change of picture size (the motion reference and
tamper background follow the new size), the last decision's motion value (`Frame.motion`).
"""

from __future__ import annotations

import logging
import zlib
from typing import Callable, Iterable, Iterator

import av

from ..detect.motion import GateDecision, SceneWatch, small_grey
from ..detect.overload import OverloadPolicy
from ..frames import Frame
from ..health import Health

log = logging.getLogger(__name__)
FrameCallback = Callable[[Frame], None]
# A frame this close before a grid time counts as on it: RTP's 90 kHz clock rounds 1/7 s, and
# replay and live must still pick the same frames.
SAMPLE_TOLERANCE_S = 1e-3
TamperCallback = Callable[[str, "str | None", Frame], None]
# Frames in a row that could not be decoded or analysed before the source reports its camera
# offline with the error (an RTSP source also reconnects): a stream that decodes into nothing
# usable (a changed codec, garbage after a valid handshake, a bug on every frame) is a camera
# down, not an `online` camera that is silently blind. About two seconds at common frame rates.
MAX_BAD_FRAMES = 50


class Sampler:
    """Pick frames at `fps` by presentation time; the rest are decoded (the codec needs them) but
    never converted. On time it keeps a fixed grid (exactly `fps` frames a second from a 7 fps or a
    25 fps source alike); after a gap, or at the start, it re-anchors on the first frame."""

    def __init__(self, fps: float) -> None:
        self.interval = 1.0 / float(fps)
        self.next_t = float("-inf")

    def take(self, t: float) -> bool:
        if t + SAMPLE_TOLERANCE_S < self.next_t:
            return False
        late = t - self.next_t >= self.interval
        self.next_t = t + self.interval if late else self.next_t + self.interval
        return True

    def restart(self) -> None:
        self.next_t = float("-inf")


def sampled_grey(path: str, fps: float) -> list[tuple[float, object]]:
    """(media time, motion-gate grey copy) of the frames a gate at `fps` samples from one pass of
    a clip file: what the gate sees, for the gate's tests and `scripts/bench_gate.py`."""
    sampler, out = Sampler(fps), []
    with av.open(path) as c:
        stream = c.streams.video[0]
        for frame in c.decode(stream):
            t = float(frame.pts * stream.time_base)
            if sampler.take(t):
                out.append((t, small_grey(frame)))
    return out


def idle_phase(camera: str) -> float:
    """Where in its idle interval a quiet camera is re-checked, as a fraction: fixed per camera
    (so replay and live agree) yet spread across cameras (so they do not all re-check at once)."""
    return (zlib.crc32(camera.encode()) % 1000) / 1000.0


class FrameGate:
    """Sampling, motion gate, tamper watch and hand-off for one camera; called from the thread
    that decodes the camera, which owns the gate."""

    def __init__(self, camera: str, detect_fps: float, health: Health, on_frame: FrameCallback,
                 watch: SceneWatch | None = None, on_tamper: TamperCallback | None = None,
                 policy: OverloadPolicy | None = None) -> None:
        self.camera = camera
        self.detect_fps = float(detect_fps)
        self.sampler = Sampler(detect_fps)
        self.policy = policy  # an overloaded live agent lowers the fps; replay has none
        self.last_urgent = float("-inf")  # media time of the last frame with motion or a track
        self.health = health
        self.on_frame = on_frame
        self.watch = watch
        self.on_tamper = on_tamper
        self.size: tuple[int, int] | None = None
        self.steady: float | None = None  # the share last put in health
        self.tamper: str | None = None
        self.seq = 0  # frames converted and passed on (analysed, or shown to the tamper alarm)
        self.sampled = 0
        self.analysed = 0

    def restart(self) -> None:
        """A new connection: the next frame is sampled and the grid starts from it."""
        self.sampler.restart()

    def reset(self, size: tuple[int, int]) -> None:
        """The picture changed size (camera reconfigured or replaced): motion and tamper
        references follow the new size instead of failing on every frame."""
        if self.size is not None:
            log.warning("camera %s: picture size changed from %dx%d to %dx%d", self.camera, *self.size, *size)
        self.size = size
        if self.watch is not None:
            self.watch.resize()

    def offer(self, frame: av.VideoFrame, t: float, wall: Callable[[float], float]) -> Frame | None:
        """One decoded frame at presentation time `t` (seconds); `wall(t)` dates it. Returns the
        frame handed on for analysis, if any."""
        self.health.frame_seen(self.camera, frame.width, frame.height)
        if self.policy is not None:
            self.sampler.interval = 1.0 / self.policy.effective_fps(self.detect_fps)
        if not self.sampler.take(t):
            return None
        self.sampled += 1
        if (frame.width, frame.height) != self.size:
            self.reset((frame.width, frame.height))
        decision = self.watch.observe(small_grey(frame), t) if self.watch else GateDecision(True, 0.0, None)
        if round(decision.steady, 2) != self.steady:
            self.steady = round(decision.steady, 2)
            self.health.set_info(self.camera, steady_motion=self.steady)
        if not decision.analyse and decision.tamper == self.tamper:
            self.health.count(self.camera, "frames_gated")
            return None
        if decision.urgent:
            self.last_urgent = t
        out = Frame(self.camera, self.seq, t, wall(t), frame.to_ndarray(format="bgr24"), decision.motion,
                    urgent=decision.urgent, changes=decision.changes,
                    since=decision.since, following=decision.following, object_motion=decision.object_motion)
        self.seq += 1
        if decision.tamper != self.tamper:
            self.tamper = decision.tamper
            if self.on_tamper is not None:
                self.on_tamper(self.camera, decision.tamper, out)
        if not decision.analyse:
            self.health.count(self.camera, "frames_gated")
            return None
        self.analysed += 1
        self.on_frame(out)
        return out


def sampled_frames(frames: Iterable[tuple[float, av.VideoFrame]], camera: str, fps: float,
                   start_wall: float = 0.0, health: Health | None = None) -> Iterator[Frame]:
    """The frames a camera's gate samples from `(media_time, decoded)` pairs, without a motion
    gate: every sampled frame, converted (benchmarks, tests and tools that want them all)."""
    out: list[Frame] = []
    gate = FrameGate(camera, fps, health or Health(), out.append)
    for t, decoded in frames:
        gate.offer(decoded, t, lambda m: start_wall + m)
        yield from out
        out.clear()
