"""From rule events to deliverable alarms: a snapshot from the best frame, a clip after post-roll.

The builder sees every analysed frame of one camera. For each track it keeps the frames that
could still be the best (highest score) of the dwell window, so the snapshot of an alarm shows
the object at its clearest without holding seconds of decoded video in memory. A clip is cut
from the camera's packet ring once the event has ended and its post-roll has passed, or once
it reaches `max_clip_s` (a vessel moored for hours gets a clip of its arrival).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Sequence

from ..clock import iso_utc, parse_iso, site_time
from ..config.models import Alarms, Line, Zone, ZoneFile
from ..frames import Detections, Frame
from ..sources.packets import PacketRing, cut_clip
from .delivery import Item, Outgoing
from .event import Event, EventContext, MediaRef
from .sink import CONTENT_TYPES
from .snapshot import annotate, encode_jpeg

log = logging.getLogger(__name__)

# Snapshot candidates kept per track. The sliding-window maximum holds every frame whose score
# the later ones never beat: an object fading for a whole long dwell (dwell_s: 120 at 5 fps)
# would pin hundreds of full-size frames. Past this many, the oldest runner-up goes; the best
# stays, and so do the newest, which take over when the best leaves the window.
MAX_CANDIDATES = 8


@dataclass
class _Seen:
    media_time: float
    score: float
    frame: Frame
    dets: Detections


@dataclass
class _PendingClip:
    event: Event  # the latest phase made, so the update carries its fields
    t0: float  # media seconds
    t1: float  # cut when the ring has reached this time
    ended: float | None = None  # wall time of the event's end, once it has ended


@dataclass(frozen=True)
class ClipJob:
    """A clip that is due: cut (remuxed, sometimes re-encoded) on the delivery thread, so the
    analysis of the next frames never waits for it; becomes the event's `update` with the clip."""

    event: Event
    ring: PacketRing
    t0: float
    t1: float
    not_before: float | None = None  # the end's time: an update sent after the end never predates it

    def build(self) -> Outgoing | None:
        cut = cut_clip(self.ring, self.t0, self.t1)
        if cut is None:
            log.warning("camera %s: no video in the ring for the clip of %s", self.event.camera, self.event.event_id)
            return None
        data, first, last = cut
        # media time -> wall time, anchored at the event's own frame
        offset = parse_iso(self.event.start) - (self.event.media_time or 0.0)
        latest = self.ring.latest_time
        ref = MediaRef.for_bytes(data, CONTENT_TYPES["clip"], duration_s=round(last - first, 3),
                                 start=iso_utc(offset + first))
        when = max(offset + (latest if latest is not None else last), self.not_before or float("-inf"))
        update = EventContext.update(
            self.event, when, clip=ref, snapshot=None,
            media_time=first, details={**self.event.details, "clip_media_start": round(first, 3)},
        )
        return Outgoing(update, {"clip": data})


class AlarmBuilder:
    """Turns one camera's rule events into outgoing events with media; it delivers nothing."""

    def __init__(self, zones: Sequence[Zone], settings: Alarms, ring: PacketRing | None = None,
                 timezone: str = "UTC", lines: Sequence[Line] = ()) -> None:
        self.timezone = timezone  # captions are read by people: site time with its offset
        self.settings = settings
        self.ring = ring
        self.set_rules(zones, lines)
        self._best: dict[int, deque[_Seen]] = {}
        self._last: tuple[Frame, Detections] | None = None
        self._clips: dict[str, _PendingClip] = {}

    def set_rules(self, zones: Sequence[Zone], lines: Sequence[Line] = ()) -> None:
        """The zones and lines snapshots draw; replaced in place on a zone-file change, so clips
        still pending keep their place."""
        self.zones = {z.name: z for z in zones}
        self.lines = {ln.name: ln for ln in lines}
        self.window_s = max([z.dwell_s for z in zones] + [0.0]) + 1.0

    def observe(self, frame: Frame, tracked: Detections) -> None:
        """Remember this frame as a snapshot candidate for each of its tracks."""
        self._last = (frame, tracked)
        horizon = frame.media_time - self.window_s
        ids = tracked.tracker_id if tracked.tracker_id is not None else []
        for tid, score in zip(ids, tracked.confidence):
            if tid < 0:
                continue
            q = self._best.setdefault(int(tid), deque())
            while q and q[-1].score <= score:  # sliding-window maximum: drop what can never win
                q.pop()
            q.append(_Seen(frame.media_time, float(score), frame, tracked))
            if len(q) > MAX_CANDIDATES:
                del q[1]
        for tid in list(self._best):
            q = self._best[tid]
            while q and q[0].media_time < horizon:
                q.popleft()
            if not q:
                del self._best[tid]

    def handle(self, events: Sequence[Event], now_media: float, frame_wall: float | None = None) -> list[Item]:
        """Rule events made deliverable (a start gets its snapshot), then any clips now due."""
        out: list[Item] = []
        for event in events:
            if event.phase == "start":
                out.append(self._start(event, frame_wall))
            else:
                if event.phase == "end":
                    self._end(event)
                out.append(Outgoing(event))
        out.extend(self.poll(now_media))
        return out

    def _start(self, event: Event, frame_wall: float | None) -> Outgoing:
        media = {}
        shot = self._snapshot(event)
        if shot is not None:
            media["snapshot"] = shot
            event = event.model_copy(update={"snapshot": MediaRef.for_bytes(shot, CONTENT_TYPES["snapshot"])})
        if self.ring is not None and event.media_time is not None:
            t0 = event.media_time - self.settings.pre_roll_s
            # pre-roll before the alarm; cut at max length unless the event ends sooner
            self._clips[event.event_id] = _PendingClip(event, t0, t0 + self.settings.max_clip_s)
        return Outgoing(event, media, frame_wall)

    def _end(self, event: Event) -> None:
        pending = self._clips.get(event.event_id)
        if pending is not None and event.end is not None:
            pending.ended = parse_iso(event.end)
        if pending is not None and event.media_time is not None:
            pending.t1 = min(pending.t1, event.media_time + self.settings.post_roll_s)
            pending.t1 = max(pending.t1, pending.t0 + self.settings.pre_roll_s + self.settings.post_roll_s)

    def _snapshot(self, event: Event) -> bytes | None:
        best = self._best_frame(event)
        if best is None:
            return None
        frame, dets = best
        zone, line = self.zones.get(event.zone or ""), self.lines.get(event.zone or "")
        shown = ZoneFile(zones=[zone] if zone else [], lines=[line] if line else [])
        caption = f"{event.type} {event.zone or ''} {event.label or ''} {site_time(frame.wall_time, self.timezone)}"
        image = annotate(frame.image, dets, shown, event.track_id, caption)
        return encode_jpeg(image, self.settings.snapshot_quality)

    def _best_frame(self, event: Event) -> tuple[Frame, Detections] | None:
        q = self._best.get(event.track_id) if event.track_id is not None else None
        if q:
            seen = q[0]
            return seen.frame, seen.dets
        if self._last is not None and self._last[0].image is not None:
            return self._last
        return None

    def poll(self, now_media: float, final: bool = False) -> list[Item]:
        """The clips whose post-roll has passed (all of them when `final`), as jobs to cut."""
        if self.ring is None:
            return []
        latest = self.ring.latest_time
        out: list[Item] = []
        for event_id, pending in list(self._clips.items()):
            if not final and (latest is None or latest < pending.t1):
                continue
            del self._clips[event_id]
            out.append(ClipJob(pending.event, self.ring, pending.t0, pending.t1, pending.ended))
        return out

    def flush(self, now_media: float) -> list[Item]:
        """At the end of a replay or on shutdown: cut every pending clip with what the ring has."""
        return self.poll(now_media, final=True)
