"""One camera's analytics after detection: track -> rules -> alarms (and patrol, tamper).

The same object serves a live camera and a replayed file; only where frames and detections come
from differs (a batcher across cameras live, a direct detector call in replay). It makes events
and returns them; it delivers nothing (alarms/delivery.py does). One thread owns it: the live
agent's analytics thread, or replay's. Other threads read only `busy` (a threading.Event) and
wait for the next analysed frame with `next_frame` (a condition), never by polling.
"""

from __future__ import annotations

import threading
from typing import Sequence

from .alarms.builder import AlarmBuilder
from .alarms.camera import TamperAlarm
from .alarms.delivery import Item
from .alarms.event import EventContext
from .config.models import Alarms, Zone, ZoneFile
from .detect.motion import Box, zone_regions
from .frames import Detections, Frame
from .patrol.checkin import PatrolMonitor
from .rules.engine import RuleEngine
from .sources.packets import PacketRing
from .track import Tracker


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
        ring: PacketRing | None = None,
        patrol: PatrolMonitor | None = None,
    ) -> None:
        self.ctx = ctx
        self.rules = rules if isinstance(rules, ZoneFile) else ZoneFile(zones=list(rules))
        self.zones = self.rules.zones
        self.tracker = tracker_for(self.rules)
        self.engine = RuleEngine(self.rules, ctx)
        self.alarms = AlarmBuilder(self.zones, alarms, ring, ctx.timezone, lines=self.rules.lines)
        self.tamper = TamperAlarm(ctx, alarms.snapshot_quality)
        self.patrol = patrol  # check-ins at this camera's patrol points, if it has any
        # Set while something here needs every analysed frame (a track in a zone, a patrol
        # visit): the decode thread's motion gate reads it.
        self.busy = threading.Event()
        # Set while a watched object is followed anywhere in the picture: the camera's frames go
        # before frames urgent for motion alone (detect/batcher.py)
        self.following = threading.Event()
        self._last: tuple[Frame, Detections] | None = None
        self._analysed = threading.Condition()  # guards _last for `next_frame` on other threads

    def process(self, frame: Frame, dets: Detections) -> list[Item]:
        """Track, judge and make events for one analysed frame."""
        # Track and judge on media time, which never steps; wall time only dates the events.
        tracked = self.tracker.update(dets, frame.media_time)
        events = self.engine.step(tracked, (frame.width, frame.height), frame.wall_time, frame.media_time)
        self.alarms.observe(frame, tracked)
        out = self.alarms.handle(events, frame.media_time, frame.wall_time)
        if self.patrol is not None:
            out += self.patrol.process(frame, tracked)
        busy = bool(self.engine.active_tracks()) or (self.patrol is not None and self.patrol.active())
        for event, on in ((self.busy, busy), (self.following, busy or self.engine.following())):
            event.set() if on else event.clear()
        with self._analysed:
            self._last = (frame, tracked)
            self._analysed.notify_all()
        return out

    def motion_regions(self) -> list[Box]:
        """Where motion should open this camera's gate: around its zones and lines."""
        return zone_regions([z.polygon for z in self.rules.zones] + [ln.points for ln in self.rules.lines])

    def last(self) -> tuple[Frame, Detections] | None:
        with self._analysed:
            return self._last

    def next_frame(self, after: tuple[Frame, Detections] | None, timeout: float) -> tuple[Frame, Detections] | None:
        """Wait up to `timeout` for a frame analysed after `after`; the latest one either way."""
        with self._analysed:
            self._analysed.wait_for(lambda: self._last is not after, timeout)
            return self._last

    def tamper_changed(self, reason: str | None, frame: Frame) -> list[Item]:
        return list(self.tamper.changed(reason, frame))

    def tick(self, now_media: float) -> list[Item]:
        """Clips that became due without a new analysed frame (a gated, quiet camera)."""
        return self.alarms.poll(now_media)

    def replace_rules(self, rules: ZoneFile, now_wall: float, now_media: float) -> list[Item]:
        """This camera's zone file changed: its open alarms end (`reloaded`) and the new zones,
        lines and masks judge the next frame; the stream, the tracks and pending clips go on."""
        out = self.alarms.handle(self.engine.replace_rules(rules, now_wall, now_media), now_media)
        self.rules, self.zones = rules, rules.zones
        self.alarms.set_rules(rules.zones, rules.lines)
        tracker = tracker_for(rules)
        if (tracker.high_score, tracker.low_score) != (self.tracker.high_score, self.tracker.low_score):
            self.tracker = tracker  # the lowest score a zone counts changed: tracks start anew
        return out

    def set_zone_enabled(self, zone: str, enabled: bool) -> bool:
        return self.engine.set_zone_enabled(zone, enabled)

    def camera_lost(self) -> list[Item]:
        """The camera stopped sending and is not back within post-roll: its open alarms end at its
        last analysed frame (end_reason `camera_offline`) and every pending clip is cut from what
        the ring recorded, so a camera that stays down still delivers them. Tracks start afresh
        when it returns."""
        last = self.last()
        if last is None:
            return []
        frame = last[0]
        out = self.alarms.handle(self.engine.close(frame.wall_time, frame.media_time, "camera_offline"),
                                 frame.media_time)
        out += self.alarms.flush(frame.media_time)
        self.tracker = tracker_for(self.rules)
        self.busy.clear()
        return out

    def close(self, now_wall: float, now_media: float) -> list[Item]:
        """End everything open and cut every pending clip (end of replay, shutdown)."""
        out = self.alarms.handle(self.engine.close(now_wall, now_media), now_media)
        out += self.tamper.close(now_wall)
        out += self.alarms.flush(now_media)
        return out
