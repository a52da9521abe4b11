"""The one source of time.

Every stage asks a `Clock` rather than `time.time()`: live it is the system clock, in replay it
is the media time of the frame being processed plus the replay's `--start`, and in tests a
`FakeClock` the test moves by hand. Durations (dwell, overdue, backoff) use `monotonic()`;
calendar questions (schedules, event timestamps) use `now()`.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall time, epoch seconds UTC."""

    def monotonic(self) -> float:
        """Seconds on a clock that never steps backwards."""

    def sleep(self, seconds: float) -> None:
        """Wait; a fake clock advances instead."""


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


class ShiftedClock(SystemClock):
    """The system clock with its wall time moved by `offset` seconds; monotonic time runs as is.
    `eval --rtsp` runs the live agent in real time at a case's own date and hour (schedules)."""

    def __init__(self, offset: float) -> None:
        self.offset = float(offset)

    def now(self) -> float:
        return time.time() + self.offset


class FakeClock:
    """A clock tests move by hand. `step_wall` changes wall time without moving monotonic."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._wall = float(start)
        self._mono = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._wall += seconds
            self._mono += seconds

    def step_wall(self, seconds: float) -> None:
        with self._lock:
            self._wall += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))


class MediaClock:
    """Replay time: wall time is `start` plus the media time of the latest frame seen."""

    def __init__(self, start: float) -> None:
        self.start = float(start)
        self.media_time = 0.0

    def set_media_time(self, media_time: float) -> None:
        self.media_time = max(self.media_time, float(media_time))

    def now(self) -> float:
        return self.start + self.media_time

    def monotonic(self) -> float:
        return self.media_time

    def sleep(self, seconds: float) -> None:  # replay never waits
        return None


def iso_utc(epoch: float) -> str:
    """ISO 8601 UTC with milliseconds and a Z, the format every event uses."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    """Parse ISO 8601 (a naive time is taken as UTC) into epoch seconds."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def site_time(epoch: float, tz_name: str) -> str:
    """`2026-06-01 21:37:05 +02:00`: what a person reads (captions, console lines), in the site's
    time zone with its offset, so a technician on site and central command read the same clock."""
    from zoneinfo import ZoneInfo

    local = datetime.fromtimestamp(epoch, ZoneInfo(tz_name))
    return local.strftime("%Y-%m-%d %H:%M:%S ") + local.isoformat(timespec="seconds")[-6:]  # offset as +02:00


def log_in_site_time(tz_name: str) -> None:
    """Stamp every log line with site time and offset: the agent's log is what a technician reads
    on site, and a box's system clock may be set to UTC."""
    import logging

    def format_time(record: logging.LogRecord, datefmt: str | None = None) -> str:
        return site_time(record.created, tz_name)

    for handler in logging.getLogger().handlers:
        if handler.formatter is not None:
            handler.formatter.formatTime = format_time  # type: ignore[method-assign]
