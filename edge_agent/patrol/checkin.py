"""Check-ins at one camera's patrol points: a tracked person in a point's area showing a badge.

`PatrolMonitor.process(frame, tracked)` runs after the tracker. It reads badges only inside the
boxes of people whose feet are in a check-in area and who have not checked in yet on this visit,
so a camera with nobody at a point costs one point-in-polygon test per person. A visit is one
track's stay in one area (ended when the track is gone from it for `VISIT_GAP_S`); each visit
gives at most one `patrol_checkin`, one `patrol_presence` and one `patrol_badge_rejected` per
badge shown, never one per frame. Dwell, visit gaps and the rearm time are measured on the
frames' media time, which only moves forward, so a wall-clock step neither ends a visit early nor
fakes a long dwell; wall time only stamps the events and decides the schedule window.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..alarms.delivery import Outgoing
from ..alarms.event import EventContext
from ..alarms.snapshot import annotate, encode_jpeg
from ..clock import Clock
from ..config.models import AgentConfig
from ..frames import Detections, Frame
from ..rules.schedule import in_schedule, site_zone
from ..rules.zones import compile_polygon, points_inside
from .badge import BadgeReader, Reading, verify
from .overdue import OverdueWatch, StatusPublisher
from .points import PatrolFile, Point, badge_secret, load_patrol
from .store import PatrolStore

log = logging.getLogger(__name__)
VISIT_GAP_S = 3.0  # a track out of the area (or unseen) this long has ended its visit
CROP_MARGIN = 0.15  # around the person's box: a badge held out at arm's length


@dataclass
class Visit:
    track: int
    first_wall: float
    first_media: float
    last_media: float
    checked_in: bool = False
    presence_sent: bool = False
    rejected: set[tuple[int, ...]] = field(default_factory=set)


@dataclass
class PatrolStats:
    frames: int = 0
    reads: int = 0  # crops searched for badges
    badges_seen: int = 0


class PatrolMonitor:
    """Patrol check-ins, presence and rejected badges for the points of one camera."""

    def __init__(self, ctx: EventContext, patrol: PatrolFile, secret: bytes,
                 watch: OverdueWatch | None = None, snapshot_quality: int = 85,
                 reader: BadgeReader | None = None) -> None:
        self.ctx = ctx
        self.patrol = patrol
        self.points: list[Point] = patrol.for_cameras([ctx.camera])
        self.secret = secret
        self.watch = watch
        self.quality = snapshot_quality
        self.reader = reader or BadgeReader()
        self.visits: dict[tuple[str, int], Visit] = {}
        self.last_badge: dict[tuple[str, int], float] = {}  # (point, badge) -> media time of its check-in
        self.stats = PatrolStats()
        self._areas = {p.id: compile_polygon(p.area, f"patrol point {p.id} area") for p in self.points}

    def process(self, frame: Frame, tracked: Detections) -> list[Outgoing]:
        """Judge one analysed frame; returns the events it raised."""
        if not self.points or frame.image is None:
            return []
        self.stats.frames += 1
        persons = _persons(tracked)
        anchors = persons.anchors("bottom_center") / np.array([frame.width, frame.height], np.float32)
        readings: dict[int, list[Reading]] = {}  # track -> badges read this frame (read at most once)
        events: list[Outgoing] = []
        for point in self.points:
            inside = points_inside(self._areas[point.id], anchors)
            for row, det in enumerate(persons):
                if not inside[row]:
                    continue
                track = int(det.tracker_id[0])
                visit = self.visits.get((point.id, track))
                if visit is None:
                    visit = self.visits[(point.id, track)] = Visit(track, frame.wall_time, frame.media_time,
                                                                   frame.media_time)
                visit.last_media = frame.media_time
                if visit.checked_in:
                    continue
                if track not in readings:
                    readings[track] = self._read(frame, det)
                for reading in readings[track]:
                    events += self._judge(point, visit, det, reading, frame)
                events += self._presence(point, visit, det, frame)
        self._expire(frame.media_time)
        return events

    def active(self) -> bool:
        """Someone is on a visit: the motion gate should keep analysing (a patroller stands still)."""
        return bool(self.visits)

    # -- reading and judging ---------------------------------------------------------------
    def _read(self, frame: Frame, det: Detections) -> list[Reading]:
        x1, y1, x2, y2 = det.xyxy[0]
        mx, my = (x2 - x1) * CROP_MARGIN, (y2 - y1) * CROP_MARGIN
        left, top = int(max(0, x1 - mx)), int(max(0, y1 - my))
        right, bottom = int(min(frame.width, x2 + mx)), int(min(frame.height, y2 + my))
        if right - left < 8 or bottom - top < 8:
            return []
        self.stats.reads += 1
        found = self.reader.read(frame.image[top:bottom, left:right], offset=(left, top))
        self.stats.badges_seen += len(found)
        return found

    def _judge(self, point: Point, visit: Visit, det: Detections, reading: Reading, frame: Frame) -> list[Outgoing]:
        number, signed = verify(self.secret, self.ctx.site, reading.ids)
        member = self.patrol.badge(number) if signed else None
        reason = None
        if not signed:
            reason = "bad_signature"  # another site's badge, a forgery or a misread
        elif member is None:
            reason = "unknown_badge"
        elif member.valid_until is not None and self._local_date(frame.wall_time) > member.valid_until:
            reason = "expired"
        if reason is not None:
            if reading.ids in visit.rejected:
                return []
            visit.rejected.add(reading.ids)
            details = {"reason": reason, "badge": number if signed else None, "badge_claimed": number,
                       "badge_px": round(reading.width_px, 1)}
            if member is not None:
                details.update(member=member.member, member_team=member.team)
            return self._emit("patrol_badge_rejected", point, visit, det, frame, details, reading)
        assert member is not None
        visit.checked_in = True
        key = (point.id, member.badge)
        last = self.last_badge.get(key)
        self.last_badge[key] = frame.media_time
        if last is not None and frame.media_time - last < self.patrol.defaults.rearm_s:
            return []  # the same patroller again (a new track id after an occlusion): one check-in
        details = {"member": member.member, "badge": member.badge, "member_team": member.team,
                   "team_matches": member.team == point.team, "badge_px": round(reading.width_px, 1)}
        events = self._emit("patrol_checkin", point, visit, det, frame, details, reading)
        if self.watch is not None:
            events += [Outgoing(e) for e in self.watch.on_checkin(point.id, member.member, member.badge, frame.wall_time)]
        return events

    def _presence(self, point: Point, visit: Visit, det: Detections, frame: Frame) -> list[Outgoing]:
        if visit.presence_sent or visit.checked_in or visit.rejected:
            return []
        if frame.media_time - visit.first_media < self.patrol.presence_s(point):
            return []
        due = self.patrol.due(point)
        if not in_schedule([due.window] if due.window else None, frame.wall_time, self.ctx.timezone):
            return []
        visit.presence_sent = True
        details = {"dwell_s": round(frame.media_time - visit.first_media, 1), "reason": "no_readable_badge"}
        return self._emit("patrol_presence", point, visit, det, frame, details, None)

    def _local_date(self, wall: float) -> dt.date:
        return dt.datetime.fromtimestamp(wall, site_zone(self.ctx.timezone)).date()

    def _expire(self, now_media: float) -> None:
        for key in [k for k, v in self.visits.items() if now_media - v.last_media > VISIT_GAP_S]:
            del self.visits[key]

    # -- events ----------------------------------------------------------------------------
    def _emit(self, etype: str, point: Point, visit: Visit, det: Detections, frame: Frame,
              details: dict, reading: Reading | None) -> list[Outgoing]:
        w, h = frame.width, frame.height
        box = det.xyxy[0]
        event = self.ctx.start(
            etype, frame.wall_time, key=(point.id, etype, visit.track, f"{visit.first_media:.3f}"),
            since=visit.first_wall, media_time=frame.media_time,
            zone=point.id, zone_kind="patrol", label="person", score=round(float(det.confidence[0]), 3),
            track_id=visit.track, bbox=[round(float(v), 4) for v in (box[0] / w, box[1] / h, box[2] / w, box[3] / h)],
            location=point.location.model_dump() if point.location else self.ctx.location,
            details={"point": point.id, "point_name": point.name, "team": point.team, **details},
        )
        media = {"snapshot": encode_jpeg(self._annotate(frame, point, det, reading, etype), self.quality)}
        log.info("camera %s: %s at %s (%s)", self.ctx.camera, etype, point.id,
                 details.get("member") or details.get("reason", ""))
        return [Outgoing(event, media, frame.wall_time)]

    def _annotate(self, frame: Frame, point: Point, det: Detections, reading: Reading | None,
                  etype: str) -> np.ndarray:
        """The alarm snapshot's drawing (the person's box, the caption) plus the check-in area and,
        when one was read, the badge."""
        img = annotate(frame.image, det, highlight_track=int(det.tracker_id[0]),  # type: ignore[arg-type]
                       caption=f"{etype} {point.id} {point.name}")
        poly = (np.asarray(point.area) * [frame.width, frame.height]).round().astype(np.int32)
        cv2.polylines(img, [poly], True, (255, 200, 0), 2)
        if reading is not None:
            cx, cy = (int(round(v)) for v in reading.center)
            r = max(6, int(reading.width_px * 0.6))
            colour = (0, 200, 0) if etype == "patrol_checkin" else (0, 0, 255)
            cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), colour, 2)
        return img


def _persons(tracked: Detections) -> Detections:
    """Tracked people only: a visit needs a track id to be counted once."""
    if tracked.tracker_id is None:
        return tracked[np.zeros(0, dtype=np.int64)]
    keep = (tracked.class_name == "person") & (tracked.tracker_id >= 0)
    return tracked[np.flatnonzero(keep)]


class PatrolStage:
    """Everything patrol on one box: a PatrolMonitor per camera with points, one OverdueWatch.

    Wiring (the live agent): `stage = PatrolStage.from_config(cfg, clock, sink,
    camera_up, ctx_for)`; after the tracker `events += stage.process(frame, tracked)`; in the
    supervisor `stage.check()`. Both deliver to the sink themselves and return what they sent.
    """

    def __init__(self, monitors: dict[str, PatrolMonitor], watch: OverdueWatch) -> None:
        self.monitors = monitors
        self.watch = watch

    @classmethod
    def from_config(cls, cfg: AgentConfig, clock: Clock, publish_status: StatusPublisher | None,
                    camera_up: Callable[[str], bool], ctx_for: Callable[[str], EventContext],
                    state_path: str | Path | None = None) -> PatrolStage | None:
        """None when the config has no `patrol:` file; EdgeAgentError when it is wrong.

        `cfg` comes from the config loader, which has made `patrol` an absolute path.
        `publish_status(point, body)` publishes a point's retained status (MQTT only).
        """
        if not cfg.patrol:
            return None
        path = Path(cfg.patrol)
        patrol = load_patrol(path, cfg)
        secret = badge_secret(patrol, path)
        cameras = [c.id for c in cfg.cameras if c.enabled]
        points = patrol.for_cameras(cameras)
        state = Path(state_path) if state_path else Path(cfg.mqtt.outbox.path).parent / "patrol_state.json"
        box = EventContext(cfg.site.id, cfg.device.id, "", cfg.site.timezone)
        watch = OverdueWatch(box, patrol, points, clock, PatrolStore.open(state), publish_status, camera_up)
        monitors = {cam: PatrolMonitor(ctx_for(cam), patrol, secret, watch, cfg.alarms.snapshot_quality)
                    for cam in cameras if patrol.for_cameras([cam])}
        log.info("patrol: %d point(s) on %d camera(s) of this box", len(points), len(monitors))
        return cls(monitors, watch)

    @classmethod
    def for_camera(cls, patrol_path: str | Path, cfg: AgentConfig, ctx: EventContext, clock: Clock,
                   state_path: str | Path | None = None) -> PatrolStage:
        """Replay: the points of one camera (`ctx.camera`), due times kept in memory by default."""
        patrol = load_patrol(patrol_path, cfg)
        if not patrol.for_cameras([ctx.camera]):
            log.warning("patrol: no enabled point is on camera %s (pass --camera to name it)", ctx.camera)
        box = EventContext(ctx.site, ctx.device, "", ctx.timezone)
        watch = OverdueWatch(box, patrol, patrol.for_cameras([ctx.camera]), clock, PatrolStore.open(state_path))
        monitor = PatrolMonitor(ctx, patrol, badge_secret(patrol, Path(patrol_path)), watch,
                                cfg.alarms.snapshot_quality)
        return cls({ctx.camera: monitor}, watch)

    def check(self) -> list[Outgoing]:
        return [Outgoing(e) for e in self.watch.check()]
