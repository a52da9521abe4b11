"""Where finished events go: a folder (replay), the MQTT outbox (live), or both."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Mapping, Protocol

from .event import Event, MediaRef

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
    """Replay output: `events.jsonl` (one event per line, all phases), `snapshots/`, `clips/`.

    The live agent's local store appends across restarts; a replay passes `append=False` so a
    second run into the same folder does not mix its events with the first run's.
    """

    def __init__(self, out_dir: str | Path, append: bool = True) -> None:
        self.out = Path(out_dir)
        for sub in ("snapshots", "clips"):
            (self.out / sub).mkdir(parents=True, exist_ok=True)
        self._events = open(self.out / "events.jsonl", "a" if append else "w", encoding="utf-8")
        self._lock = threading.Lock()

    def emit(self, event: Event, media: Mapping[str, bytes]) -> Event:
        refs = {}
        for kind, data in media.items():
            rel = f"{kind}s/{event.event_id}-{event.phase}{SUFFIX[kind]}"
            (self.out / rel).write_bytes(data)
            ref = getattr(event, kind) or MediaRef.for_bytes(data, CONTENT_TYPES[kind])
            refs[kind] = ref.model_copy(update={"path": rel})
        event = event.model_copy(update=refs)
        with self._lock:
            self._events.write(event.to_json() + "\n")
            self._events.flush()
        return event

    def close(self) -> None:
        with self._lock:
            self._events.close()


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
