"""The one event type: every alarm, camera and patrol event is an `Event`.

An event has phases that share one `event_id`: `start` (the alarm), `update` (its clip is ready,
media was dropped, ...) and `end` (the object left or was lost). The JSON form is versioned by
`schema` and documented in docs/events.md; `edge-agent schema events` prints its JSON Schema.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field

from ..clock import iso_utc

SCHEMA = "edge-agent/event/1"

Phase = Literal["start", "update", "end"]
EventType = Literal[
    "intrusion",
    "stationary",
    "line_crossed",
    "camera_offline",
    "camera_tampered",
    "patrol_checkin",
    "patrol_presence",
    "patrol_badge_rejected",
    "patrol_overdue",
    "analysis_degraded",
]
PATROL_TYPES = {"patrol_checkin", "patrol_presence", "patrol_badge_rejected"}


class MediaRef(BaseModel):
    """Where an event's snapshot or clip can be had: a path in replay output, a topic over MQTT."""

    model_config = ConfigDict(extra="forbid")
    content_type: str
    size: int
    sha256: str
    path: str | None = None  # relative to the replay output folder
    topic: str | None = None  # MQTT manifest topic; chunks follow at <topic>/<index>
    start: str | None = None  # clips: ISO time of the first frame
    duration_s: float | None = None

    @classmethod
    def for_bytes(cls, data: bytes, content_type: str, **kw: Any) -> MediaRef:
        return cls(content_type=content_type, size=len(data), sha256=hashlib.sha256(data).hexdigest(), **kw)


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float
    lon: float


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: str = Field(default=SCHEMA, alias="schema")
    event_id: str
    phase: Phase
    type: EventType
    site: str
    device: str
    camera: str
    zone: str | None = None
    zone_kind: str | None = None
    label: str | None = None
    score: float | None = None
    track_id: int | None = None
    start: str  # ISO 8601 UTC, when the condition began to hold (the alarm time for `start`)
    end: str | None = None  # ISO 8601 UTC, set on `end`
    time: str | None = None  # ISO 8601 UTC, when this phase was emitted
    media_time: float | None = None  # seconds into the source of the frame behind this phase
    bbox: list[float] | None = None  # normalized xyxy of the object
    location: Location | None = None
    snapshot: MediaRef | None = None
    clip: MediaRef | None = None
    details: dict[str, Any] = Field(default_factory=dict)  # type-specific: patrol member, drops, ...

    @staticmethod
    def make_id(*parts: Any) -> str:
        """A stable id from what identifies the alarm, so a replay gives the same ids every run."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(str(p) for p in parts)))

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        return cls.model_validate_json(text)

    def next_phase(self, phase: Phase, **changes: Any) -> Event:
        """The same event in a later phase (keeps event_id, type, zone, track)."""
        return self.model_copy(update={"phase": phase, **changes})


@dataclass(frozen=True)
class EventContext:
    """Who raises events, and the one place they are made.

    Every producer (rules, patrol, overdue, camera health, tamper) builds its events here, so ids,
    `run_id`, site, device, camera, location and times are filled the same way everywhere, and an
    `end` always says why in `details.end_reason`.
    """

    site: str
    device: str
    camera: str
    timezone: str = "UTC"
    location: Location | Mapping[str, float] | None = None  # {"lat": .., "lon": ..} is fine too
    run_id: str = ""  # a live agent sets it (its start time) so ids from two runs never collide

    def event_id(self, *key: Any, per_run: bool = True, camera: bool = True) -> str:
        """A stable id: site, device, camera (unless `camera=False`), `key`, and the run.

        `per_run=False` is for events that outlive a restart on purpose (patrol_overdue: its id
        is stored, and the `end` after a restart must carry the same one)."""
        parts: list[Any] = [self.site, self.device]
        if camera:
            parts.append(self.camera)
        parts += key
        if per_run:
            parts.append(self.run_id)
        return Event.make_id(*parts)

    def start(self, type: str, wall: float, *, key: tuple[Any, ...], media_time: float | None = None,
              since: float | None = None, per_run: bool = True, **fields: Any) -> Event:
        """The `start` of a new event; `since` is when the condition began (default: `wall`)."""
        fields.setdefault("camera", self.camera)
        fields.setdefault("location", self.location)
        return Event(
            event_id=self.event_id(*key, per_run=per_run, camera=bool(self.camera)),
            phase="start", type=type, site=self.site, device=self.device,
            start=iso_utc(wall if since is None else since), time=iso_utc(wall),
            media_time=None if media_time is None else round(media_time, 3), **fields,
        )

    def restore(self, event_id: str, type: str, since: float, **fields: Any) -> Event:
        """The `start` of an event raised before a restart, rebuilt from its stored id, so that
        its `end` can be made."""
        fields.setdefault("camera", self.camera)
        return Event(event_id=event_id, phase="start", type=type, site=self.site, device=self.device,
                     start=iso_utc(since), **fields)

    @staticmethod
    def update(event: Event, wall: float, **changes: Any) -> Event:
        """A later `update` of `event` (its media attached, media dropped, ...)."""
        return event.next_phase("update", time=iso_utc(wall), **changes)

    @staticmethod
    def media_dropped(event: Event, wall: float, kinds: list[str]) -> Event:
        """The `update` that tells central an event's media was dropped (disk quota, refused by
        the broker): the one builder for it, whatever the sink."""
        return EventContext.update(EventContext.without_media(event, kinds), wall)

    @staticmethod
    def without_media(event: Event, kinds: list[str]) -> Event:
        """The same phase with `kinds` of its media gone and `details.dropped` saying so (media
        dropped before the event was written: held in memory on a full disk)."""
        return event.model_copy(update={"details": {**event.details, "dropped": sorted(kinds)},
                                        **{k: None for k in kinds}})

    @staticmethod
    def trimmed(event: Event, limit: int) -> Event | None:
        """`event` cut to at most `limit` bytes of JSON for a broker that takes no more: the largest
        `details` entries go first (never `end_reason`), and `details.trimmed` says how big the
        event was and which keys it lost. Every other field stays. None when even that is too big."""
        details = {k: v for k, v in event.details.items() if k != "trimmed"}
        flag = dict(event.details.get("trimmed") or {"bytes": len(event.to_json().encode()), "dropped": []})
        by_size = sorted((k for k in details if k != "end_reason"), key=lambda k: -len(json.dumps(details[k], default=str)))
        for n in range(len(by_size) + 1):
            flag["dropped"] = sorted({*flag["dropped"], *by_size[:n]})
            kept = {k: v for k, v in details.items() if k not in by_size[:n]}
            candidate = event.model_copy(update={"details": {**kept, "trimmed": dict(flag)}})
            if len(candidate.to_json().encode()) <= limit:
                return candidate
        return None

    @staticmethod
    def end(event: Event, wall: float, reason: str, details: Mapping[str, Any] | None = None,
            **changes: Any) -> Event:
        """The `end` of `event` at `wall`, with `details.end_reason` (one key for every type)."""
        merged = {**event.details, **(details or {}), "end_reason": reason}
        return event.next_phase("end", end=iso_utc(wall), time=iso_utc(wall), details=merged, **changes)


def event_json_schema() -> dict[str, Any]:
    return Event.model_json_schema(by_alias=True)
