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

from ..clock import iso_utc, parse_iso
from ..config.models import Alarms, Line, Zone, ZoneFile
from ..frames import Detections, Frame
from ..sources.packets import PacketRing, cut_clip
from .event import Event, MediaRef
from .sink import CONTENT_TYPES, EventSink
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
    event: Event  # the latest phase delivered, so the update carries its fields
    t0: float  # media seconds
    t1: float  # cut when the ring has reached this time


class AlarmBuilder:
    """Turns one camera's rule events into delivered events with media."""

    def __init__(
        self,
        zones: Sequence[Zone],
        settings: Alarms,
        sink: EventSink,
        ring: PacketRing | None = None,
        lines: Sequence[Line] = (),
    ) -> None:
        self.zones = {z.name: z for z in zones}
        self.lines = {ln.name: ln for ln in lines}
        self.settings = settings
        self.sink = sink
        self.ring = ring
        self.window_s = max([z.dwell_s for z in zones] + [0.0]) + 1.0
        self._best: dict[int, deque[_Seen]] = {}
        self._last: tuple[Frame, Detections] | None = None
        self._clips: dict[str, _PendingClip] = {}
        self.delivered: list[Event] = []  # replay reads this; live keeps only a count
        self.keep_delivered = True

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

    def handle(self, events: Sequence[Event], now_media: float) -> list[Event]:
        """Deliver rule events (start with snapshot, end) and any clips now due."""
        out = []
        for event in events:
            if event.phase == "start":
                out.append(self._start(event))
            elif event.phase == "end":
                out.append(self._end(event))
            else:
                out.append(self._emit(event, {}))
        out.extend(self.poll(now_media))
        return out

    def _start(self, event: Event) -> Event:
        media = {}
        shot = self._snapshot(event)
        if shot is not None:
            media["snapshot"] = shot
        delivered = self._emit(event, media)
        if self.ring is not None and event.media_time is not None:
            t0 = event.media_time - self.settings.pre_roll_s
            # pre-roll before the alarm; cut at max length unless the event ends sooner
            self._clips[event.event_id] = _PendingClip(delivered, t0, t0 + self.settings.max_clip_s)
        return delivered

    def _end(self, event: Event) -> Event:
        pending = self._clips.get(event.event_id)
        if pending is not None and event.media_time is not None:
            pending.t1 = min(pending.t1, event.media_time + self.settings.post_roll_s)
            pending.t1 = max(pending.t1, pending.t0 + self.settings.pre_roll_s + self.settings.post_roll_s)
        return self._emit(event, {})

    def _snapshot(self, event: Event) -> bytes | None:
        best = self._best_frame(event)
        if best is None:
            return None
        frame, dets = best
        zone, line = self.zones.get(event.zone or ""), self.lines.get(event.zone or "")
        shown = ZoneFile(zones=[zone] if zone else [], lines=[line] if line else [])
        caption = f"{event.type} {event.zone or ''} {event.label or ''} {iso_utc(frame.wall_time)}"
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

    def poll(self, now_media: float, final: bool = False) -> list[Event]:
        """Cut the clips whose post-roll has passed (all of them when `final`)."""
        if self.ring is None:
            return []
        latest = self.ring.latest_time
        out = []
        for event_id, pending in list(self._clips.items()):
            if not final and (latest is None or latest < pending.t1):
                continue
            del self._clips[event_id]
            cut = cut_clip(self.ring, pending.t0, pending.t1)
            if cut is None:
                log.warning("camera %s: no video in the ring for the clip of %s", pending.event.camera, event_id)
                continue
            data, first, last = cut
            # media time -> wall time, anchored at the event's own frame
            offset = parse_iso(pending.event.start) - (pending.event.media_time or 0.0)
            ref = MediaRef.for_bytes(
                data, CONTENT_TYPES["clip"], duration_s=round(last - first, 3), start=iso_utc(offset + first)
            )
            update = pending.event.next_phase(
                "update",
                clip=ref,
                snapshot=None,
                media_time=first,
                time=iso_utc(offset + (latest if latest is not None else last)),
                details={**pending.event.details, "clip_media_start": round(first, 3)},
            )
            out.append(self._emit(update, {"clip": data}))
        return out

    def flush(self, now_media: float) -> list[Event]:
        """At the end of a replay or on shutdown: cut every pending clip with what the ring has."""
        return self.poll(now_media, final=True)

    def _emit(self, event: Event, media: dict[str, bytes]) -> Event:
        for kind, data in media.items():
            if getattr(event, kind) is None:
                event = event.model_copy(update={kind: MediaRef.for_bytes(data, CONTENT_TYPES[kind])})
        delivered = self.sink.emit(event, media)
        if self.keep_delivered:
            self.delivered.append(delivered)
        return delivered
