"""One camera's analytics after detection: track -> rules -> alarms -> sink.

The same object serves a live camera and a replayed file; only where frames and detections
come from differs (a batcher across cameras live, a direct detector call in replay).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

from .alarms.builder import AlarmBuilder
from .alarms.event import Event
from .alarms.sink import EventSink
from .config.models import Alarms, Zone, ZoneFile
from .frames import Detections, Frame
from .patrol.checkin import PatrolMonitor
from .rules.engine import EventContext, RuleEngine
from .sources.packets import PacketRing
from .track import Tracker


@dataclass
class PipelineStats:
    frames: int = 0
    detections: int = 0
    events: int = 0


def tracker_for(rules: ZoneFile) -> Tracker:
    """A tracker that starts tracks at the lowest `min_score` any zone or line counts.

    Only a detection at or above the tracker's `high_score` starts a track, and rules see only
    tracked rows: with the default 0.4, a boat scored 0.35 throughout never alarmed in a zone
    that says `min_score: 0.3`. Zones that ask no less than the default keep it. Disabled zones
    count too: central command may arm them while the tracker runs.
    """
    default = Tracker()
    floor = min((f.min_score for f in (*rules.zones, *rules.lines)), default=default.high_score)
    if floor >= default.high_score:
        return default
    return Tracker(high_score=floor, low_score=min(default.low_score, floor))


class CameraPipeline:
    """Stateful per-camera analytics; `process` is called once per analysed frame, in order."""

    def __init__(
        self,
        ctx: EventContext,
        rules: ZoneFile | Sequence[Zone],
        alarms: Alarms,
        sink: EventSink,
        ring: PacketRing | None = None,
        tracker: Tracker | None = None,
        patrol: PatrolMonitor | None = None,
    ) -> None:
        self.ctx = ctx
        self.rules = rules if isinstance(rules, ZoneFile) else ZoneFile(zones=list(rules))
        self.zones = self.rules.zones
        self.tracker = tracker or tracker_for(self.rules)
        self.engine = RuleEngine(self.rules, ctx)
        self.alarms = AlarmBuilder(self.zones, alarms, sink, ring, lines=self.rules.lines)
        self.patrol = patrol  # check-ins at this camera's patrol points, if it has any
        self.stats = PipelineStats()
        self.last: tuple[Frame, Detections] | None = None
        self._lock = threading.Lock()  # commands (zone on/off, snapshot) arrive from other threads

    def process(self, frame: Frame, dets: Detections) -> list[Event]:
        """Track, judge and deliver; returns the events delivered for this frame."""
        with self._lock:
            # Track and judge on media time, which never steps; wall time only dates the events.
            tracked = self.tracker.update(dets, frame.media_time)
            size = (frame.width, frame.height)
            events = self.engine.step(tracked, size, frame.wall_time, frame.media_time)
            self.alarms.observe(frame, tracked)
            delivered = self.alarms.handle(events, frame.media_time)
            if self.patrol is not None:
                delivered += self.patrol.process(frame, tracked)
            self.last = (frame, tracked)
            self.stats.frames += 1
            self.stats.detections += len(tracked)
            self.stats.events += len(delivered)
            return delivered

    def tick(self, now_media: float) -> list[Event]:
        """Cut clips that became due without a new analysed frame (a gated, quiet camera)."""
        with self._lock:
            return self.alarms.poll(now_media)

    def active_tracks(self) -> set[int]:
        """Tracks inside a zone: the motion gate keeps analysing a camera that has any."""
        return self.engine.active_tracks()

    def busy(self) -> bool:
        """Something here needs every analysed frame: a track in a zone or a patrol visit."""
        return bool(self.engine.active_tracks()) or (self.patrol is not None and self.patrol.active())

    def set_zone_enabled(self, zone: str, enabled: bool) -> bool:
        with self._lock:
            return self.engine.set_zone_enabled(zone, enabled)

    def close(self, now_wall: float, now_media: float) -> list[Event]:
        """End everything open and cut every pending clip (end of replay, shutdown)."""
        with self._lock:
            ends = self.engine.close(now_wall, now_media)
            delivered = self.alarms.handle(ends, now_media)
            delivered += self.alarms.flush(now_media)
            return delivered
