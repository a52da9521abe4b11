"""Counters and states of every camera and of the detector, in one thread-safe place.

Sources, the batcher and the app write here; `snapshot()` is what the MQTT health topic
publishes and what `--health-file` writes. Besides cameras and the detector it holds named
sections other parts report into (`delivery`: events delivered, emit errors, pending).
"""

from __future__ import annotations

import shutil
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from .clock import Clock, SystemClock, iso_utc
from .redact import redact_text

class SourceState(str, Enum):
    """A camera's connection state as health reports it."""

    CONNECTING = "connecting"  # opening the stream (first time or after a failure)
    ONLINE = "online"  # frames are arriving
    STALLED = "stalled"  # connected but no frame for `stall_timeout_s`; being restarted
    OFFLINE = "offline"  # the last attempt failed; waiting for the next one (backoff)
    STOPPED = "stopped"  # stopped on purpose


RATE_WINDOW_S = 10.0  # fps in health are averages over about this long
DETECTOR_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)  # seconds per batch
COUNTERS = (
    "reconnects", "stalls", "decode_errors", "frames_in", "frames_analysed", "frames_dropped",
    "frames_gated", "frame_errors", "decode_switches",
)


@dataclass
class CameraHealth:
    state: str = SourceState.CONNECTING.value
    since: float = 0.0  # monotonic time of the last state change
    down_since: float | None = 0.0  # monotonic time it stopped being online (None while online)
    last_error: str | None = None
    last_frame: float | None = None  # monotonic
    width: int = 0
    height: int = 0
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    alarms: dict[str, int] = field(default_factory=dict)  # alarm type -> alarms started
    # what the stages say of how they treat the camera: gop_s, decode (full | keyframes),
    # decode_reason (gop | overload: why keyframes only), hw_decode, effective_fps (detect fps
    # after the overload policy), steady_motion (share of the zones' region the motion gate learned
    # as moving steadily: water, rain)
    info: dict[str, Any] = field(default_factory=dict)


class Health:
    """Thread-safe store of camera states and counters, plus free-form detector stats."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self._cams: dict[str, CameraHealth] = {}
        self._detector: dict[str, Any] = {}
        self._sections: dict[str, dict[str, Any]] = {}
        self._progress: dict[str, Any] = {"ok": False, "problems": ["not started"]}
        self._detector_hist = [0] * (len(DETECTOR_BUCKETS_S) + 1)  # per bucket, the last one +Inf
        self._detector_sum = 0.0
        self._lock = threading.Lock()
        self._started = self.clock.monotonic()
        # camera -> (monotonic, frames_in, frames_analysed) samples for the fps in health
        self._samples: dict[str, deque[tuple[float, int, int]]] = {}

    def _cam(self, camera: str) -> CameraHealth:
        cam = self._cams.get(camera)
        if cam is None:
            now = self.clock.monotonic()
            cam = self._cams[camera] = CameraHealth(since=now, down_since=now)
            self._samples[camera] = deque([(now, 0, 0)])
        return cam

    def _rates(self, camera: str, cam: CameraHealth, now: float) -> tuple[float, float]:
        """(fps in, fps analysed) over the last RATE_WINDOW_S or so; caller holds the lock."""
        samples = self._samples[camera]
        c = cam.counters
        if now - samples[-1][0] >= 1.0:
            samples.append((now, c["frames_in"], c["frames_analysed"]))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW_S:
            samples.popleft()  # keep one sample at least a window old
        t0, in0, an0 = samples[0]
        span = now - t0
        if span <= 0:
            return 0.0, 0.0
        return round((c["frames_in"] - in0) / span, 2), round((c["frames_analysed"] - an0) / span, 2)

    def register(self, camera: str) -> None:
        with self._lock:
            self._cam(camera)

    def set_state(self, camera: str, state: SourceState, error: str | None = None) -> None:
        """Record a state change; `error` is redacted (no URL credentials ever stored)."""
        with self._lock:
            cam = self._cam(camera)
            now = self.clock.monotonic()
            if cam.state != state.value:
                cam.state, cam.since = state.value, now
            if state == SourceState.ONLINE:
                cam.down_since = None
                cam.last_error = None
            elif cam.down_since is None and state != SourceState.CONNECTING:
                cam.down_since = now
            if error is not None:
                cam.last_error = redact_text(error)

    def count(self, camera: str, counter: str, n: int = 1) -> None:
        with self._lock:
            counters = self._cam(camera).counters
            counters[counter] = counters.get(counter, 0) + n

    def set_info(self, camera: str, **info: Any) -> None:
        with self._lock:
            self._cam(camera).info.update(info)

    def frame_seen(self, camera: str, width: int = 0, height: int = 0) -> None:
        with self._lock:
            cam = self._cam(camera)
            cam.counters["frames_in"] += 1
            cam.last_frame = self.clock.monotonic()
            if width:
                cam.width, cam.height = width, height

    def set_detector(self, **stats: Any) -> None:
        with self._lock:
            self._detector.update(stats)

    def set_section(self, name: str, stats: dict[str, Any]) -> None:
        """Replace one named section of the snapshot (e.g. `delivery`)."""
        with self._lock:
            self._sections[name] = dict(stats)
    def observe_detector(self, seconds: float) -> None:
        """One batch's inference time, for the histogram /metrics exports."""
        with self._lock:
            self._detector_hist[sum(1 for b in DETECTOR_BUCKETS_S if seconds > b)] += 1
            self._detector_sum += seconds

    def detector_histogram(self) -> tuple[list[tuple[float, int]], float]:
        """Cumulative (upper bound, count) pairs ending with +Inf, and the sum of seconds."""
        with self._lock:
            counts, total = list(self._detector_hist), self._detector_sum
        running, out = 0, []
        for bound, n in zip((*DETECTOR_BUCKETS_S, float("inf")), counts):
            running += n
            out.append((bound, running))
        return out, total

    def alarm(self, camera: str, type_: str) -> None:
        with self._lock:
            alarms = self._cam(camera).alarms
            alarms[type_] = alarms.get(type_, 0) + 1

    def set_progress(self, problems: list[str]) -> None:
        """The watchdog's verdict (ops/progress.py): what the health check and systemd act on."""
        with self._lock:
            self._progress = {"ok": not problems, "problems": list(problems)}

    def state(self, camera: str) -> str:
        with self._lock:
            return self._cam(camera).state

    def counters(self, camera: str) -> dict[str, int]:
        with self._lock:
            return dict(self._cam(camera).counters)

    def down_for(self, camera: str) -> float:
        """Seconds the camera has not been online (0 while online)."""
        with self._lock:
            cam = self._cam(camera)
            return 0.0 if cam.down_since is None else self.clock.monotonic() - cam.down_since

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy for the health topic."""
        with self._lock:
            now = self.clock.monotonic()
            cams = {}
            for cid, cam in self._cams.items():
                d = asdict(cam)
                d["state_for_s"] = round(now - cam.since, 1)
                d["last_frame_age_s"] = None if cam.last_frame is None else round(now - cam.last_frame, 2)
                d["down_for_s"] = 0.0 if cam.down_since is None else round(now - cam.down_since, 1)
                d["fps_in"], d["fps_analysed"] = self._rates(cid, cam, now)
                d.update(d.pop("info"))
                for key in ("since", "down_since", "last_frame"):
                    d.pop(key)
                cams[cid] = d
            return {
                "time": iso_utc(self.clock.now()),
                "uptime_s": round(now - self._started, 1),
                "cameras": cams,
                "detector": dict(self._detector),
                "progress": dict(self._progress),
                **{name: dict(stats) for name, stats in self._sections.items()},
            }


def disk_use(outbox_path: str | Path | None, store_dir: str | Path | None) -> dict[str, Any]:
    """Bytes the outbox file takes (with its WAL) and the free space where outbox and media live."""
    out: dict[str, Any] = {}
    if outbox_path:
        db = Path(outbox_path)
        out["outbox_bytes"] = sum(p.stat().st_size for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())
    for name, where in (("outbox", outbox_path), ("store", store_dir)):
        if not where:
            continue
        folder = Path(where) if name == "store" else Path(where).parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent  # not created yet: the file system it will be on
        usage = shutil.disk_usage(folder)
        out[f"{name}_free_bytes"], out[f"{name}_total_bytes"] = usage.free, usage.total
    return out
