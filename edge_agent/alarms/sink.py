"""Where finished events go: a folder (replay), the MQTT outbox (live), or both."""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Mapping, Protocol

from ..clock import Clock, SystemClock
from .event import Event, EventContext, MediaRef

log = logging.getLogger(__name__)
CONTENT_TYPES = {"snapshot": "image/jpeg", "clip": "video/mp4"}
SUFFIX = {"snapshot": ".jpg", "clip": ".mp4"}


class EventSink(Protocol):
    def emit(self, event: Event, media: Mapping[str, bytes]) -> Event:
        """Deliver one event phase and its media ("snapshot"/"clip" -> bytes).

        The event arrives with a `MediaRef` (content type, size, sha256) for each media item;
        the sink adds where it put it (`path` or `topic`) and returns the event as delivered.
        Must not block on the network: a sink that publishes writes to a durable outbox.
        """
        ...

    def close(self) -> None: ...


class FolderSink:
    """A folder of events: `events.jsonl` (one event per line, all phases), `snapshots/`, `clips/`.

    Replay writes its output here, and so does the live agent when MQTT is off (its local store).
    The live store appends across restarts and is bounded by `quota_bytes`: when full, the oldest
    clips go first, then the oldest snapshots, each drop written as an `update` of its event with
    `details.dropped`; event lines themselves are never dropped. A replay passes `append=False` so a
    second run into the same folder does not mix its events with the first run's.
    """

    def __init__(self, out_dir: str | Path, append: bool = True, quota_bytes: int | None = None,
                 clock: Clock | None = None) -> None:
        self.out = Path(out_dir)
        self.data_dir = self.out  # where the disk reserve goes (alarms/reserve.py)
        self.clock = clock or SystemClock()
        for sub in ("snapshots", "clips"):
            (self.out / sub).mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        self._fd = os.open(self.out / "events.jsonl", flags, 0o644)
        self._lock = threading.Lock()
        self.quota_bytes = quota_bytes
        self.dropped = {"snapshot": 0, "clip": 0}
        # media written, oldest first: relative path -> (kind, size, event as delivered)
        self._media: OrderedDict[str, tuple[str, int, Event | None]] = OrderedDict(self._existing_media())

    def _existing_media(self) -> list[tuple[str, tuple[str, int, Event | None]]]:
        """Media left by an earlier run counts against the quota, oldest first."""
        found = []
        for kind in ("snapshot", "clip"):
            for path in (self.out / f"{kind}s").glob(f"*{SUFFIX[kind]}"):
                stat = path.stat()
                found.append((stat.st_mtime, f"{kind}s/{path.name}", (kind, stat.st_size, None)))
        return [(rel, info) for _, rel, info in sorted(found)]

    def emit(self, event: Event, media: Mapping[str, bytes]) -> Event:
        """Media first, then the event's line. On a full disk the oldest media make room (clips
        first, announced); when none is left the error reaches delivery, which keeps the event,
        media and all, in memory until space returns."""
        refs = {}
        with self._lock:
            for kind, data in media.items():
                rel = f"{kind}s/{event.event_id}-{event.phase}{SUFFIX[kind]}"
                self._write_media(rel, data)
                ref = getattr(event, kind) or MediaRef.for_bytes(data, CONTENT_TYPES[kind])
                refs[kind] = ref.model_copy(update={"path": rel})
            event = event.model_copy(update=refs)
            self._write(event)
            for kind, data in media.items():
                self._media[refs[kind].path or ""] = (kind, len(data), event)
            self._enforce_quota()
        return event

    def _write_media(self, rel: str, data: bytes) -> None:
        """Write one media file, dropping the oldest media while the disk is full."""
        while True:
            try:
                (self.out / rel).write_bytes(data)
                return
            except OSError as exc:
                (self.out / rel).unlink(missing_ok=True)
                if exc.errno != errno.ENOSPC or self._drop_oldest() is None:
                    raise

    def _write(self, event: Event) -> None:
        """One whole line or nothing: a line torn by a full disk would be followed by its retry."""
        line = (event.to_json() + "\n").encode()
        at = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            os.ftruncate(self._fd, at)
            raise

    def _enforce_quota(self) -> None:
        if self.quota_bytes is None:
            return
        total = sum(size for _, size, _ in self._media.values())
        while total > self.quota_bytes:
            freed = self._drop_oldest("over its quota")
            if freed is None:
                return
            total -= freed

    def _drop_oldest(self, why: str = "on a full disk") -> int | None:
        """Drop the oldest clip, else the oldest snapshot (clips are the big ones and the least
        urgent), with an `update` of its event; its size, None when no media is left."""
        for kind in ("clip", "snapshot"):
            rel = next((r for r, (k, _, _) in self._media.items() if k == kind), None)
            if rel is None:
                continue
            _, size, owner = self._media.pop(rel)
            (self.out / rel).unlink(missing_ok=True)
            self.dropped[kind] += 1
            log.warning("local media store %s: dropped %s %s", why, kind, rel)
            if owner is not None:
                self._write(EventContext.media_dropped(owner, self.clock.now(), [kind]))
            return size
        return None

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)


class TeeSink:
    """Send every event to several sinks (replay --mqtt: the folder and the broker)."""

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = sinks

    def emit(self, event: Event, media: Mapping[str, bytes]) -> Event:
        delivered = event
        for sink in self.sinks:
            delivered = sink.emit(event, media)
        return delivered

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
