"""The one event type: every alarm, camera and patrol event is an `Event`.

An event has phases that share one `event_id`: `start` (the alarm), `update` (its clip is ready,
media was dropped, ...) and `end` (the object left or was lost). The JSON form is versioned by
`schema` and documented in docs/events.md; `edge-agent schema events` prints its JSON Schema.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


def event_json_schema() -> dict[str, Any]:
    return Event.model_json_schema(by_alias=True)
