"""Alarm rules as a pure function: (state, tracked detections, time) -> (new state, events).

`evaluate` never mutates the state it is given, so replay and tests are deterministic and a
caller can keep or compare states. `RuleEngine` is the thin stateful wrapper the pipeline uses.

Semantics, per (zone, track), in the words a field technician would use:
- A track counts for a zone in a frame when it passes the zone's box filters (label,
  `min_score`, `min_size`/`max_size`, `aspect`), is not masked (filters.py),
  and its anchor point is inside the polygon and outside every `exclude` polygon. A detection
  that fails a filter counts as "not seen" (a weak frame), not as "left".
- The median-score rule (`track_score`) and the background rule (filters.py) hold the alarm, not
  the presence: the dwell runs from the entry, and the alarm starts at the first frame the dwell
  is done, the track's recent scores pass and it is not background. A background object (a rock
  called "person") is present but waits for ever and keeps no motion gate open.
- Presence: a track is "in" the zone from the first frame it counts as inside. It stays in while
  it is missing from the detections for up to `absent_grace_s` (the tracker's grace: a flickering
  boat keeps its timer) or seen outside for up to `leave_grace_s` (jitter at the edge). Past
  that, it has left (or, when not seen at all, is lost); its dwell starts again on re-entry.
- intrusion: in the zone for `dwell_s` (>=, so exactly at the threshold alarms) -> `start`;
  leaving or being lost -> `end` with the same `event_id`. One alarm per track per visit.
- cooldown: after an alarm ends, the same track may raise a new alarm in that zone only once
  `cooldown_s` has passed since the end. A re-entry inside the cooldown does not alarm; if the
  track is still in the zone when the cooldown is over (and has dwelt), it alarms then, so a
  person cannot silence the zone by stepping out and back.
- stationary: a zone with `stationary_s` raises `stationary` *instead of* `intrusion` (the zone
  is for things that stop, e.g. boats at a quay; passers-by are not alarms). The track must stay
  within `stationary_radius` (fraction of frame width) of where it settled for `stationary_s`.
  Moving away (beyond the radius for more than `leave_grace_s`), leaving or being lost -> `end`;
  the track then settles anew.
- schedule and enabled: a zone outside its schedule windows, or disabled, is disarmed: nothing
  starts, open events end at once (details.end_reason "schedule" / "disabled") and the zone forgets
  its tracks, so when it re-arms every object present starts its dwell from the arming time.
- Lines (lines.py) raise `line_crossed` with an immediate `end`, after every zone's events.
- Events come out in zone order, then track id; an `end` before a `start` for the same pair.
- Time: every duration (dwell, graces, cooldown, stationary) is measured in media time, which
  never steps; wall time `t` serves only schedules and the ISO stamps. A live box whose clock is
  set by NTP after boot (no RTC battery) would otherwise alarm at once on a forward step (dwell
  "done") and hold every open alarm, and its cooldown, until the clock caught up on a step back.
- event_id = EventContext.event_id(zone, type, track_id, media time of the entry (intrusion) or
  of settling (stationary)), which adds site, device, camera and run_id.
  Media time (not wall time) keeps replay ids the same whatever `--start` is; a live agent sets
  `EventContext.run_id` (e.g. its start time) so ids from two runs never collide.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import hypot
from typing import Mapping, Sequence

import numpy as np
from shapely.geometry import Polygon

from ..alarms.event import Event, EventContext
from ..clock import iso_utc
from ..config.models import Background, Zone, ZoneFile
from ..frames import Detections
from .filters import Places, TrackMemo, held, masked, may_alarm, update_tracks
from .lines import Crossing, LineGeometry, step_line
from .schedule import check_timezone, in_schedule
from .zones import ZoneGeometry, compile_masks, compile_zones, unique_names

_EPS = 1e-6  # float media times (0.2 * 5) must not miss a threshold by a hair


@dataclass(frozen=True)
class Obs:
    """One track's detection in this frame, as one zone sees it."""

    inside: bool
    point: tuple[float, float]  # anchor in pixels / frame width, so distances are width fractions
    score: float
    label: str
    bbox: list[float]  # normalized xyxy


@dataclass(frozen=True)
class Presence:
    """One (zone, track) pair's memory."""

    track_id: int
    present: bool = False
    entered_t: float = 0.0  # wall, for the `entered` stamp; durations use the *_media fields
    entered_media: float = 0.0
    last_inside_t: float = 0.0
    last_inside_media: float = 0.0
    best_score: float = 0.0
    label: str = ""
    bbox: list[float] = field(default_factory=list)
    open: Event | None = None
    ended_media: float | None = None  # end of the last alarm, for the cooldown
    settle: tuple[float, float] | None = None
    settle_t: float = 0.0
    settle_media: float = 0.0
    away_since: float | None = None  # media time it was first seen away from its settling point


@dataclass(frozen=True)
class EngineState:
    zones: tuple[ZoneGeometry, ...]
    records: Mapping[tuple[str, int], Presence] = field(default_factory=dict)
    enabled: Mapping[str, bool] = field(default_factory=dict)  # overrides of Zone/Line.enabled
    leave_grace_s: float = 1.0
    absent_grace_s: float = 2.0
    lines: tuple[LineGeometry, ...] = ()
    crossings: Mapping[tuple[str, int], Crossing] = field(default_factory=dict)
    masks: tuple[Polygon, ...] = ()  # prepared, normalised
    background: Background = field(default_factory=Background)
    tracks: Mapping[int, TrackMemo] = field(default_factory=dict)
    places: Places = field(default_factory=lambda: Places({}))
    started_media: float | None = None  # the first analysed frame: background is learned from it

    @classmethod
    def create(cls, rules: ZoneFile | Sequence[Zone], leave_grace_s: float = 1.0,
               absent_grace_s: float = 2.0) -> EngineState:
        """From a zone file (zones, lines, masks, background), or zones alone with the file's defaults."""
        zf = rules if isinstance(rules, ZoneFile) else ZoneFile(zones=list(rules))
        unique_names([z.name for z in zf.zones] + [ln.name for ln in zf.lines])
        return cls(tuple(compile_zones(zf.zones)), {}, {}, leave_grace_s, absent_grace_s,
                   lines=tuple(LineGeometry(ln) for ln in zf.lines), masks=compile_masks(zf.masks),
                   background=zf.background)

    def zone_enabled(self, geo: ZoneGeometry | LineGeometry) -> bool:
        default = geo.zone.enabled if isinstance(geo, ZoneGeometry) else geo.line.enabled
        return self.enabled.get(geo.name, default)

    @property
    def score_window(self) -> int:
        return max([g.zone.track_score.window for g in self.zones] + [g.line.track_score.window for g in self.lines]
                   + [1])


def _observations(geo: ZoneGeometry, dets: Detections, size: tuple[int, int],
                  counted: np.ndarray) -> dict[int, Obs]:
    """Eligible tracked rows of this frame for one zone, by track id (best score wins a clash)."""
    w, h = size
    keep = geo.eligible(dets, h) & counted
    if not keep.any():
        return {}
    inside = geo.inside(dets, w, h)
    anchors = dets.anchors(geo.zone.anchor) / float(w)
    scale = np.array([w, h, w, h], np.float64)
    out: dict[int, Obs] = {}
    for i in np.nonzero(keep)[0]:
        tid, score = int(dets.tracker_id[i]), float(dets.confidence[i])
        if tid in out and out[tid].score >= score:
            continue
        bbox = [round(float(v), 4) for v in np.clip(dets.xyxy[i] / scale, 0.0, 1.0)]
        out[tid] = Obs(bool(inside[i]), (float(anchors[i, 0]), float(anchors[i, 1])), score,
                       str(dets.class_name[i]), bbox)
    return out


def _event(geo: ZoneGeometry, rec: Presence, kind: str, t: float, media_time: float,
           ctx: EventContext) -> Event:
    # A stationary alarm is identified by where the object settled, an intrusion by its entry.
    if kind == "stationary":
        since_t, since_media = rec.settle_t, rec.settle_media
    else:
        since_t, since_media = rec.entered_t, rec.entered_media
    details = {"entered": iso_utc(rec.entered_t), "entered_media_time": round(rec.entered_media, 3)}
    if kind == "stationary":
        details.update(settled=iso_utc(since_t), settled_media_time=round(since_media, 3))
    return ctx.start(
        kind, t, key=(geo.name, kind, rec.track_id, f"{since_media:.3f}"), media_time=media_time,
        zone=geo.name, zone_kind=geo.zone.kind, label=rec.label, score=round(rec.best_score, 4),
        track_id=rec.track_id, bbox=rec.bbox, details=details,
    )


def _end(rec: Presence, reason: str, t: float, media_time: float) -> tuple[Presence, Event]:
    assert rec.open is not None
    ev = EventContext.end(rec.open, t, reason, {"last_inside": iso_utc(rec.last_inside_t)},
                          media_time=round(media_time, 3), bbox=rec.bbox or rec.open.bbox)
    return replace(rec, open=None, ended_media=media_time), ev


def _settle(geo: ZoneGeometry, rec: Presence, obs: Obs, t: float, media_time: float,
            grace: float) -> tuple[Presence, list[Event]]:
    """Track where a present object settled; end a stationary alarm when it moved away."""
    if rec.settle is None:
        return replace(rec, settle=obs.point, settle_t=t, settle_media=media_time, away_since=None), []
    dist = hypot(obs.point[0] - rec.settle[0], obs.point[1] - rec.settle[1])
    if dist <= geo.zone.stationary_radius:
        return replace(rec, away_since=None), []
    if rec.away_since is None:
        return replace(rec, away_since=media_time), []
    if media_time - rec.away_since <= grace:
        return rec, []
    events = []
    if rec.open is not None:
        rec, ev = _end(rec, "moved", t, media_time)
        events.append(ev)
    return replace(rec, settle=obs.point, settle_t=t, settle_media=media_time, away_since=None), events


def _observe(geo: ZoneGeometry, rec: Presence | None, obs: Obs | None, t: float, media_time: float,
             state: EngineState) -> tuple[Presence | None, list[Event]]:
    """Update presence from this frame's observation (or its absence); end alarms on leave/loss."""
    events: list[Event] = []
    # Only a frame without the track inside is evidence that it left: after a stretch with no
    # analysed frames at all (motion gating, low fps) a track seen inside again simply stays.
    if rec is not None and rec.present and not (obs is not None and obs.inside):
        seen_outside = obs is not None
        grace = state.leave_grace_s if seen_outside else state.absent_grace_s
        if media_time - rec.last_inside_media > grace + _EPS:
            if rec.open is not None:
                rec, ev = _end(rec, "left" if seen_outside else "lost", t, media_time)
                events.append(ev)
            rec = replace(rec, present=False, settle=None, away_since=None)
    if obs is None or not obs.inside:
        return rec, events
    base = rec or Presence(track_id=-1)
    if not base.present:  # a new visit
        base = replace(base, present=True, entered_t=t, entered_media=media_time, best_score=0.0,
                       settle=None, away_since=None)
    rec = replace(base, last_inside_t=t, last_inside_media=media_time,
                  best_score=max(base.best_score, obs.score), label=obs.label, bbox=obs.bbox)
    if geo.zone.stationary_s is not None:
        rec, moved = _settle(geo, rec, obs, t, media_time, state.leave_grace_s)
        events += moved
    return rec, events


def _maybe_start(geo: ZoneGeometry, rec: Presence, t: float, media_time: float, ctx: EventContext,
                 memo: TrackMemo | None) -> tuple[Presence, list[Event]]:
    if not rec.present or rec.open is not None or rec.last_inside_media != media_time:
        return rec, []
    if not may_alarm(memo, geo.zone, still=geo.zone.stationary_s is not None):
        return rec, []
    if rec.ended_media is not None and media_time - rec.ended_media < geo.zone.cooldown_s - _EPS:
        return rec, []
    zone = geo.zone
    if zone.stationary_s is not None:
        if (rec.settle is None or rec.away_since is not None
                or media_time - rec.settle_media < zone.stationary_s - _EPS):
            return rec, []
        kind = "stationary"
    else:
        if media_time - rec.entered_media < zone.dwell_s - _EPS:
            return rec, []
        kind = "intrusion"
    ev = _event(geo, rec, kind, t, media_time, ctx)
    return replace(rec, open=ev), [ev]


def _keep(rec: Presence, geo: ZoneGeometry, media_time: float) -> bool:
    """Forget a pair once it is gone and its cooldown (if any) is over: bounded memory."""
    if rec.present or rec.open is not None:
        return True
    return rec.ended_media is not None and media_time - rec.ended_media < geo.zone.cooldown_s


def _disarm(state: EngineState, geo: ZoneGeometry, reason: str, t: float, media_time: float) -> list[Event]:
    pairs = sorted((k[1], r) for k, r in state.records.items() if k[0] == geo.name and r.open is not None)
    return [_end(rec, reason, t, media_time)[1] for _, rec in pairs]


def evaluate(state: EngineState, dets: Detections, frame_size: tuple[int, int], t: float,
             media_time: float, ctx: EventContext) -> tuple[EngineState, list[Event]]:
    """One frame: tracked `dets` of a `frame_size` (w, h) picture taken at epoch `t`, `media_time`
    seconds into its source (the clock of every duration; see the module docstring)."""
    if dets.tracker_id is None:
        raise ValueError("rules need tracked detections: run Tracker.update before evaluate")
    if len(dets) and (frame_size[0] <= 0 or frame_size[1] <= 0):
        raise ValueError(f"frame_size {frame_size} must be the (width, height) of the analysed picture")
    started = media_time if state.started_media is None else state.started_media
    ignore = masked(state.masks, dets, *frame_size)
    counted = (dets.tracker_id >= 0) & ~ignore
    tracks, places = update_tracks(state.tracks, state.places, started, dets, frame_size, media_time,
                                   state.background, ignore, state.score_window)
    state = replace(state, tracks=tracks, places=places, started_media=started)
    records: dict[tuple[str, int], Presence] = {}
    events: list[Event] = []
    for geo in state.zones:
        if not armed(state, geo, t, ctx.timezone):
            events += _disarm(state, geo, "disabled" if not state.zone_enabled(geo) else "schedule", t, media_time)
            continue
        seen = _observations(geo, dets, frame_size, counted)
        ids = sorted({tid for (name, tid) in state.records if name == geo.name} | set(seen))
        for tid in ids:
            rec = state.records.get((geo.name, tid))
            obs = seen.get(tid)
            rec, ended = _observe(geo, rec, obs, t, media_time, state)
            if rec is None:
                continue
            rec = replace(rec, track_id=tid)
            rec, opened = _maybe_start(geo, rec, t, media_time, ctx, tracks.get(tid))
            events += ended + opened
            if _keep(rec, geo, media_time):
                records[(geo.name, tid)] = rec
    crossings, crossed = _lines(state, dets, counted, frame_size, t, media_time, ctx)
    return replace(state, records=records, crossings=crossings), events + crossed


def armed(state: EngineState, geo: ZoneGeometry | LineGeometry, t: float, timezone: str) -> bool:
    """Enabled and inside its schedule at `t` (the zone editor's "test" asks the same)."""
    return state.zone_enabled(geo) and in_schedule(geo.windows, t, timezone)


def _lines(state: EngineState, dets: Detections, counted: np.ndarray, size: tuple[int, int], t: float,
           media_time: float, ctx: EventContext) -> tuple[dict[tuple[str, int], Crossing], list[Event]]:
    """Every armed line's crossings; a disarmed line forgets its tracks, as a disarmed zone does."""
    crossings: dict[tuple[str, int], Crossing] = {}
    events: list[Event] = []
    for geo in state.lines:
        if not armed(state, geo, t, ctx.timezone):
            continue
        mine = {tid: rec for (name, tid), rec in state.crossings.items() if name == geo.name}
        recs, crossed = step_line(geo, mine, dets, counted, state.tracks, size, t, media_time, ctx)
        crossings.update({(geo.name, tid): rec for tid, rec in recs.items()})
        events += crossed
    return crossings, events


def close(state: EngineState, t: float, media_time: float,
          reason: str = "shutdown") -> tuple[EngineState, list[Event]]:
    """End every open event (end of a replay, shutdown, new rules); the state comes back empty."""
    events = []
    for geo in state.zones:
        events += _disarm(state, geo, reason, t, media_time)
    return replace(state, records={}, crossings={}), events


class RuleEngine:
    """Holds an `EngineState` for one camera and steps it frame by frame."""

    def __init__(self, rules: ZoneFile | Sequence[Zone], ctx: EventContext, leave_grace_s: float = 1.0,
                 absent_grace_s: float = 2.0) -> None:
        check_timezone(ctx.timezone)
        self.ctx = ctx
        self.state = EngineState.create(rules, leave_grace_s, absent_grace_s)

    def step(self, dets: Detections, frame_size: tuple[int, int], t: float, media_time: float) -> list[Event]:
        self.state, events = evaluate(self.state, dets, frame_size, t, media_time, self.ctx)
        return events

    def set_zone_enabled(self, name: str, enabled: bool) -> bool:
        """Arm or disarm a zone or line by name (central's `zone` command); False when no such one.

        Open events of a disabled zone end at the next `step`, which has the time to stamp them.
        """
        if not any(geo.name == name for geo in (*self.state.zones, *self.state.lines)):
            return False
        self.state = replace(self.state, enabled={**self.state.enabled, name: bool(enabled)})
        return True

    def active_tracks(self) -> set[int]:
        """Tracks currently in any armed zone (including ones waiting out their dwell), but not
        background: a rock called "person" must not keep the camera analysed at full rate."""
        tracks = self.state.tracks
        still = {geo.name for geo in self.state.zones if geo.zone.stationary_s is not None}
        return {tid for (name, tid), rec in self.state.records.items()
                if rec.present and not (tid in tracks and held(tracks[tid], name in still))}

    def following(self) -> bool:
        """Whether the last analysed frame showed a track of a class the zones or lines judge that
        is not background: something approaches or is inside (rain and waves have no track)."""
        labels = {label for geo in self.state.zones for label in geo.zone.labels} | \
            {label for geo in self.state.lines for label in geo.line.labels}
        return any(not m.missed and not m.background and m.label in labels for m in self.state.tracks.values())

    def close(self, t: float, media_time: float, reason: str = "shutdown") -> list[Event]:
        self.state, events = close(self.state, t, media_time, reason)
        return events

    def replace_rules(self, rules: ZoneFile | Sequence[Zone], t: float, media_time: float) -> list[Event]:
        """New zones, lines and masks for this camera (its zone file was edited): open alarms end
        (end_reason `reloaded`); what the camera learned of its tracks and background is kept, so
        a person standing still at that moment is not taken for background."""
        old, events = close(self.state, t, media_time, "reloaded")
        fresh = EngineState.create(rules, old.leave_grace_s, old.absent_grace_s)
        self.state = replace(fresh, tracks=old.tracks, places=old.places, started_media=old.started_media)
        return events
