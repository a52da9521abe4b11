"""A live RTSP camera: one decode thread, reconnect with backoff, a watchdog for frozen streams.

Facts this design rests on (shared/notes/infrastructure.md): PyAV ends the demux iterator
quietly when the server goes away, so end of iteration is a disconnect; a frozen server hangs
a read for ever unless `timeout=(open, read)` is given, which then raises; decoding releases
the GIL, so one thread per camera scales; BGR conversion costs twice the decode, so only the
frames sampled at detect fps that the motion gate lets through are converted.
"""

from __future__ import annotations

import logging
import os
import random
import threading

import av

from ..clock import Clock, SystemClock
from ..health import Health, SourceState
from ..redact import redact_text, redact_url, url_secrets
from .decode import KeyframeDecode, open_options, software_fallback
from .gate import MAX_BAD_FRAMES, FrameGate
from .packets import PacketRing

log = logging.getLogger(__name__)

ERROR_LOG_EVERY_S = 60.0
# FFmpeg reads up to 5 s of a stream to learn its parameters before open returns, then hands
# those packets over at once: a burst of seconds of video at every connect that the detector
# cannot keep up with (frames replaced in their slots). A fifth of a second is enough for an
# RTSP camera, whose codec parameters come in the SDP and again with each keyframe.
PROBE_OPTIONS = {"analyzeduration": "200000", "probesize": "65536"}


def describe_error(exc: BaseException) -> str:
    """A short, actionable reason for a failed open or read (no URL: the caller adds a redacted one)."""
    kinds = [
        (av.error.HTTPUnauthorizedError, "unauthorized (401): check the camera user and password"),
        (av.error.HTTPForbiddenError, "forbidden (403)"),
        (av.error.HTTPNotFoundError, "stream not found (404): check the path"),
        (av.error.ConnectionRefusedError, "connection refused: nothing listens on that host and port"),
        (av.error.TimeoutError, "timed out"),
        (av.error.ExitError, "timed out (no data)"),
        (av.error.InvalidDataError, "invalid data: not an RTSP/H.264 stream, or the server does not answer"),
        (av.error.HTTPServerError, "server error (5XX)"),
    ]
    for cls, text in kinds:
        if isinstance(exc, cls):
            return text
    return f"{type(exc).__name__}: {exc}"  # the caller redacts it: the message may quote the URL


# What an open against a frozen server ends with: the connection is taken, nothing comes back.
NO_ANSWER = (av.error.TimeoutError, av.error.ExitError, av.error.InvalidDataError)


class Backoff:
    """Capped exponential backoff with jitter; `reset` after a connection that delivered frames."""

    def __init__(self, initial: float = 0.25, cap: float = 2.0, rng: random.Random | None = None) -> None:
        self.initial, self.cap = initial, cap
        self.attempt = 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.initial * (2 ** self.attempt))
        self.attempt += 1
        return delay * self.rng.uniform(0.75, 1.0)  # jitter: cameras that fell together do not retry together

    def reset(self) -> None:
        self.attempt = 0


class RtspSource:
    """One camera. Decoded frames go to its `FrameGate`; packets to `ring`.

    With `substream_url` the substream is decoded for detection and the main stream only feeds
    the packet ring (clips keep the full resolution, detection decodes the small picture).
    """

    def __init__(
        self,
        camera: str,
        url: str,
        gate: FrameGate,
        health: Health,
        ring: PacketRing | None = None,
        clock: Clock | None = None,
        substream_url: str | None = None,
        stall_timeout_s: float = 10.0,
        open_timeout_s: float = 10.0,
        backoff_cap_s: float = 2.0,
        keyframe_decode_max_gop_s: float = 0.0,
        keyframe_decode_overload_max_gop_s: float = 0.0,
        hwaccel: str = "off",
    ) -> None:
        self.camera = camera
        self.url = url
        self.substream_url = substream_url
        self.gate = gate
        self.health = health
        self.ring = ring
        self.clock = clock or SystemClock()
        self.stall_timeout_s = stall_timeout_s
        # A silent server is noticed after about two read timeouts (FFmpeg lets one more packet
        # through after the first), so half the stall timeout makes the restart land on time.
        self.read_timeout_s = max(0.5, min(5.0, stall_timeout_s / 2))
        self.open_timeout_s = open_timeout_s
        self.backoff_cap_s = backoff_cap_s
        self.keyframes = KeyframeDecode(camera, gate, health, keyframe_decode_max_gop_s,
                                        overload_max_gop_s=keyframe_decode_overload_max_gop_s)
        self.hwaccel = hwaccel
        self._secrets = url_secrets(url, substream_url)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._t0 = self.clock.monotonic()
        self._media_end = 0.0  # latest media time delivered, so time never goes backwards on reconnect
        self._last_frame = self._t0
        self._last_frame_error = float("-inf")
        self._bad_frames = 0  # frames in a row that failed (decode or analysis); decode thread's
        health.register(camera)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        decode_url = self.substream_url or self.url
        self._threads = [threading.Thread(target=self._run, args=(decode_url, True), name=f"rtsp-{self.camera}",
                                          daemon=True)]
        if self.substream_url and self.ring is not None:
            self._threads.append(threading.Thread(target=self._run, args=(self.url, False),
                                                  name=f"rtsp-main-{self.camera}", daemon=True))
        for t in self._threads:
            t.start()

    def request_stop(self) -> None:
        """Ask the threads to end without waiting (stop many cameras in parallel, then join)."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> bool:
        self._stop.set()
        deadline = self.clock.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - self.clock.monotonic()))
        alive = any(t.is_alive() for t in self._threads)
        self.health.set_state(self.camera, SourceState.STOPPED)
        return not alive

    @property
    def state(self) -> SourceState:
        return SourceState(self.health.state(self.camera))

    @property
    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def check_watchdog(self) -> None:
        """Report `stalled` while the decode thread waits on a silent server (its read timeout restarts it)."""
        if self.state == SourceState.ONLINE and self.clock.monotonic() - self._last_frame > self.stall_timeout_s:
            self.health.set_state(self.camera, SourceState.STALLED, "no frame for %.0f s" % self.stall_timeout_s)

    # --- the decode thread -----------------------------------------------------------------
    def _safe(self, text: str) -> str:
        return redact_text(text, self._secrets)

    def _run(self, url: str, decode: bool) -> None:
        lower_priority()
        backoff = Backoff(cap=self.backoff_cap_s)
        last_error = None
        first = True
        while not self._stop.is_set():
            if decode and self.state != SourceState.STALLED:  # a stall is reported until it is over
                self.health.set_state(self.camera, SourceState.CONNECTING)
            if not first and decode:
                self.health.count(self.camera, "reconnects")
            first = False
            try:
                container = self._open(url, decode)
            except Exception as exc:  # FFmpeg, the OS or anything else: retry, never end the camera's thread
                last_error = self._open_failed(exc, url, last_error, decode)
                self._stop.wait(backoff.next())
                continue
            try:
                outcome, delivered = self._pump(container, decode)
            except Exception as exc:  # our bug, not the camera's: reconnect rather than end the thread
                log.exception("camera %s: unexpected error in the decode loop", self.camera)
                outcome, delivered = f"internal error ({type(exc).__name__})", False
            finally:
                container.close()
            if delivered:
                backoff.reset()
                last_error = None
            if self._stop.is_set():
                break
            log.warning("camera %s: %s; reconnecting", self.camera, outcome)
            if decode:
                state = SourceState.STALLED if outcome.startswith("stalled") else SourceState.OFFLINE
                if state == SourceState.STALLED:
                    self.health.count(self.camera, "stalls")
                self.health.set_state(self.camera, state, outcome)
            self._stop.wait(backoff.next())

    def _open(self, url: str, decode: bool):
        options = {"rtsp_transport": "tcp", "timeout": str(int(self.read_timeout_s * 1e6)), **PROBE_OPTIONS}
        timeout = (self.open_timeout_s, self.read_timeout_s)
        if decode and self.hwaccel != "off":
            try:
                container = av.open(url, options=options, timeout=timeout, **open_options(self.hwaccel))
                self.health.set_info(self.camera, hw_decode=self.hwaccel)
                return container
            except Exception as exc:  # FFmpeg's errors, and PyAV's RuntimeError for "no compatible stream"
                # Software decoding opens the stream: the device was at fault, not the camera (whose
                # own faults raise here as they would without a hardware decoder).
                container = av.open(url, options=options, timeout=timeout)
                software_fallback(self.camera, self.hwaccel, self.health, self._safe(describe_error(exc)))
                self.hwaccel = "off"
                return container
        return av.open(url, options=options, timeout=timeout)

    def _open_failed(self, exc: BaseException, url: str, last_error: str | None, decode: bool) -> str:
        """Log a changed reason and report it; returns it. A stalled server that still takes
        connections but answers none is frozen: it stays `stalled` (not `offline` with "invalid
        data"), so health says what happened to the camera."""
        error = self._safe(describe_error(exc))
        if error != last_error:  # log a change, not every retry of a camera that stays down
            log.warning("camera %s: cannot open %s: %s", self.camera, self._safe(redact_url(url)), error)
        if decode:
            if self.state == SourceState.STALLED and isinstance(exc, NO_ANSWER):
                self.health.set_state(self.camera, SourceState.STALLED,
                                      f"stalled: the server takes connections but does not answer ({error})")
            else:
                self.health.set_state(self.camera, SourceState.OFFLINE, error)
        return error

    def _pump(self, container, decode: bool) -> tuple[str, bool]:
        """Read one connection until it ends; returns (why it ended, whether frames came)."""
        if not container.streams.video:
            return "no video stream", False
        stream = self._stream = container.streams.video[0]
        # Slice threads, not frame threads: frame threading holds back one frame per thread, which
        # is latency on every alarm and a burst at every disconnect (the held frames come at once).
        stream.thread_type = "SLICE"
        tb = float(stream.time_base)
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        if self.ring is not None and (not decode or not self.substream_url):
            self.ring.set_template(stream)
        conn = _Connection(self, tb, rate)
        if decode:
            self.gate.restart()
            self.keyframes.attach(stream)
        ring = self.ring if (not decode or not self.substream_url) else None
        self._last_frame = self.clock.monotonic()  # the stall clock starts with the connection
        delivered = False
        held: av.Packet | None = None
        try:
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return "stopped", delivered
                if packet.pts is None:
                    if conn.first_pts is None and held is None and packet.size:
                        # The first RTSP packet has no pts yet is the first keyframe: keep it
                        # until the next packet tells its time, rather than lose a whole GOP.
                        held = packet
                    continue
                batch = [packet]
                if held is not None:
                    held.pts = packet.pts - round(conn.ticks)
                    held.dts = (packet.dts if packet.dts is not None else packet.pts) - round(conn.ticks)
                    batch, held = [held, packet], None
                for pkt in batch:
                    t = conn.media_time(pkt.pts)
                    if ring is not None:
                        ring.push(pkt, t)
                    delivered = delivered or not decode
                    if decode:
                        self.keyframes.before(pkt, t)
                        for frame in self._decode(pkt):
                            delivered = True
                            self._hand_on(conn, frame)
                if decode and self.clock.monotonic() - self._last_frame > self.stall_timeout_s:
                    return f"stalled: no frame for {self.stall_timeout_s:.0f} s", delivered
        except _Blind as blind:
            return str(blind), delivered
        except (av.error.TimeoutError, av.error.ExitError):
            return f"stalled: no data for {self.stall_timeout_s:.0f} s", delivered
        except (av.error.FFmpegError, OSError) as exc:
            return f"read error: {self._safe(describe_error(exc))}", delivered
        if decode:  # the decoder still holds the last frames (threaded decoding delays them)
            try:
                for frame in self._decode(None):
                    self._hand_on(conn, frame)
            except _Blind as blind:
                return str(blind), delivered
        return "stream ended (disconnected)", delivered

    def _decode(self, packet: av.Packet | None) -> list[av.VideoFrame]:
        try:
            return list(packet.decode() if packet is not None else self._stream.decode(None))
        except av.error.FFmpegError as exc:
            self.health.count(self.camera, "decode_errors")
            self._failed(f"cannot decode: {self._safe(describe_error(exc))}")
            return []

    def _failed(self, reason: str) -> None:
        """One more frame in a row that failed; past MAX_BAD_FRAMES the connection ends (`_Blind`)."""
        self._bad_frames += 1
        if self._bad_frames >= MAX_BAD_FRAMES:
            self._bad_frames = 0
            raise _Blind(f"frame errors: {MAX_BAD_FRAMES} frames in a row failed ({reason})")

    def _hand_on(self, conn: "_Connection", frame: av.VideoFrame) -> None:
        """`_on_decoded`, but a failure downstream (submit, tamper alarm) costs this frame only."""
        try:
            self._on_decoded(conn, frame)
        except Exception as exc:
            self.health.count(self.camera, "frame_errors")
            now = self.clock.monotonic()
            if now - self._last_frame_error >= ERROR_LOG_EVERY_S:  # a bug on every frame must not flood the log
                self._last_frame_error = now
                log.exception("camera %s: frame handling failed (frame dropped)", self.camera)
            self._failed(self._safe(f"frame handling failed: {type(exc).__name__}: {exc}"))

    def _on_decoded(self, conn: "_Connection", frame: av.VideoFrame) -> None:
        t = conn.frame_time(frame.pts)
        self._media_end = max(self._media_end, t)
        if self.gate.policy is not None:
            self.gate.policy.decoded_late(conn.late(t))
        self.gate.offer(frame, t, conn.wall_time)
        # Online, and not stalled, only once a frame went through: a camera whose every frame
        # fails is down, whatever its decoder says.
        self._bad_frames = 0
        self._last_frame = self.clock.monotonic()
        if self.state != SourceState.ONLINE:
            self.health.set_state(self.camera, SourceState.ONLINE)
            log.info("camera %s: online (%dx%d)", self.camera, frame.width, frame.height)


class _Blind(Exception):
    """Too many frames in a row failed: the connection ends and the camera reports why."""


class _Connection:
    """Time for one connection: pts deltas give spacing, the source's clock gives the anchor.

    Media time starts at 0 on the first connection (so a served file's times match its replay)
    and continues from the wall-clock elapsed time on later ones, never going backwards.
    """

    def __init__(self, source: RtspSource, time_base: float, rate: float) -> None:
        self.source = source
        self.tb = time_base
        self.ticks = 1.0 / (rate * time_base)  # pts units per frame
        self.first_pts: int | None = None
        self.last_frame_t: float | None = None
        elapsed = source.clock.monotonic() - source._t0
        self.offset = 0.0 if source._media_end == 0.0 else max(source._media_end + 0.04, elapsed)
        self.wall0: float | None = None  # set at the first frame: opening takes a second or more

    def media_time(self, pts: int) -> float:
        if self.first_pts is None:
            self.first_pts = pts
        return self.offset + (pts - self.first_pts) * self.tb

    def frame_time(self, pts: int | None) -> float:
        if pts is None:  # a decoder that lost the pts: one frame after the previous one
            t = self.offset if self.last_frame_t is None else self.last_frame_t + self.ticks * self.tb
        else:
            t = self.media_time(pts)
        self.last_frame_t = t
        return t

    def late(self, media_time: float) -> float:
        """Seconds a frame of `media_time` is decoded later than real time allows (0 until one is dated)."""
        return 0.0 if self.wall0 is None else self.source.clock.now() - (self.wall0 + media_time)

    def wall_time(self, media_time: float) -> float:
        now = self.source.clock.now()
        wall = now if self.wall0 is None else self.wall0 + media_time
        # A frame earlier than its pts says (a burst after connecting) moves the anchor back, so a
        # frame is never stamped in the future; one far later (a loop, a clock step) re-anchors.
        if self.wall0 is None or wall > now or now - wall > 2.0:  # a slow start, a loop or a clock step: re-anchor to now
            self.wall0 = now - media_time
            wall = now
        return wall


DECODE_NICE = 10  # how much lower than the agent's other threads a camera's reading and decoding runs


def lower_priority() -> None:
    """Run the calling thread (and the decoder threads FFmpeg starts from it) at a lower priority.

    When the box cannot keep up, dozens of decode threads would share the CPU evenly with the one
    detector thread and starve it: every camera decoded, none analysed, no alarm (measured: 48
    cameras, 0.9 frames/s analysed). Lower, they yield to the detector and analytics threads, so
    the frames already decoded are analysed first; with spare CPU nothing changes."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + DECODE_NICE)
    except (OSError, AttributeError):  # not Linux, or not allowed: the default priority works too
        pass
