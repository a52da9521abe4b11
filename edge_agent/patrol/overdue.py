"""Overdue patrol points: no check-in within a point's interval, inside its window.

Durations run on the monotonic clock, so a wall-clock step (NTP, a technician setting the time)
neither raises a false overdue nor hides a real one; windows ("06:00-22:00") are local wall
times. When a window opens the interval starts afresh: a point is not overdue at 06:00 for a
night nobody had to patrol. State lives in a `PatrolStore` on disk, so a restart keeps every due
time: the monotonic reference is rebased from the stored wall times at start.

`check()` is called by the supervisor (about once a second); it raises one `patrol_overdue`
(alarms topic) per overdue interval and ends it on the next check-in (or when the window
closes). Each point's status is published retained on `<base>/patrol/status/<point>` whenever
it changes; a point whose camera is down says so there and in its alarm (reason `camera_down`),
so central does not blame the patrol for what the camera could not see.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

from ..alarms.event import Event, EventContext
from ..clock import Clock, iso_utc, parse_iso
from ..rules.schedule import in_schedule, parse_window, site_zone
from .points import PatrolFile, Point
from .store import PatrolStore

log = logging.getLogger(__name__)
StatusPublisher = Callable[[str, dict[str, Any]], None]  # (point id, payload)


@dataclass
class _Live:
    ref_mono: float  # monotonic time the current interval began
    in_window: bool | None = None  # None: not checked yet
    status: dict[str, Any] | None = None  # last published (to publish only changes)


class OverdueWatch:
    """Due times of the points this box watches; emits overdue alarms and publishes status."""

    def __init__(self, ctx: EventContext, patrol: PatrolFile, points: list[Point], clock: Clock,
                 store: PatrolStore, publish: StatusPublisher | None = None,
                 camera_up: Callable[[str], bool] = lambda camera: True) -> None:
        self.ctx = ctx  # site, device, timezone (camera comes from each point)
        self.patrol = patrol
        self.points = {p.id: p for p in points}
        self.clock = clock
        self.store = store
        self.publish = publish
        self.camera_up = camera_up
        self._lock = threading.Lock()
        self._pending: dict[str, Event] = {}  # open alarms raised by this process, to end alike
        now_w, now_m = clock.now(), clock.monotonic()
        self.live: dict[str, _Live] = {}
        for pid in self.points:
            st = store.get(pid)
            if st.ref_wall is None:
                st.ref_wall = now_w  # first watched now: the interval starts here
            # Rebase onto this process's monotonic clock from the stored wall time.
            self.live[pid] = _Live(now_m - max(0.0, now_w - st.ref_wall))
        store.save()

    # -- inputs ------------------------------------------------------------------------------
    def on_checkin(self, point_id: str, member: str, badge: int, wall: float | None = None) -> list[Event]:
        """A valid check-in: restart the interval, clear an open overdue alarm, publish status."""
        with self._lock:
            if point_id not in self.points:
                return []
            now_w, now_m = self.clock.now(), self.clock.monotonic()
            st = self.store.get(point_id)
            st.ref_wall = st.last_checkin = wall if wall is not None else now_w
            st.member, st.badge = member, badge
            self.live[point_id].ref_mono = now_m - max(0.0, now_w - st.ref_wall)
            events = self._end(point_id, "checked_in", {"member": member, "badge": badge})
            self.store.save()
            self._publish(point_id, now_w, now_m)
            return events

    def check(self, now: float | None = None) -> list[Event]:
        """Raise and end overdue alarms as due; `now` is ignored (the clock is the one source)."""
        with self._lock:
            now_w, now_m = self.clock.now(), self.clock.monotonic()
            events: list[Event] = []
            changed = False
            for pid, point in self.points.items():
                ev, ch = self._check_point(point, now_w, now_m)
                events += ev
                changed |= ch
                self._publish(pid, now_w, now_m)
            if changed:
                self.store.save()
            return events

    def status(self, point_id: str) -> dict[str, Any]:
        """What `patrol/status/<point>` carries now."""
        with self._lock:
            return self._status(point_id, self.clock.now(), self.clock.monotonic())

    # -- the rules ---------------------------------------------------------------------------
    def _check_point(self, point: Point, now_w: float, now_m: float) -> tuple[list[Event], bool]:
        live, st = self.live[point.id], self.store.get(point.id)
        due = self.patrol.due(point)
        in_win = in_schedule([due.window] if due.window else None, now_w, self.ctx.timezone)
        changed = False
        if in_win and live.in_window is not True and due.window:
            opened = window_open(now_w, due.window, self.ctx.timezone)
            opened_mono = now_m - max(0.0, now_w - opened)
            if opened_mono > live.ref_mono:  # nothing since the window opened: count from the opening
                live.ref_mono, st.ref_wall, changed = opened_mono, opened, True
        live.in_window = in_win
        if not in_win:
            return self._end(point.id, "window_closed", {}), changed or st.overdue_id is not None
        if st.overdue_id is None and now_m - live.ref_mono >= due.interval_s:
            return self._start(point, now_w, now_m), True
        return [], changed

    def _start(self, point: Point, now_w: float, now_m: float) -> list[Event]:
        st = self.store.get(point.id)
        status = self._status(point.id, now_w, now_m)
        up = status["camera_up"]
        # No run_id, and no camera in the id: the id is stored, and the `end` after a restart
        # must carry the same one.
        event = self.ctx.start(
            "patrol_overdue", now_w, key=(point.id, "patrol_overdue", round(st.ref_wall or 0)), per_run=False,
            since=parse_iso(status["due"]), camera=point.camera, zone=point.id, zone_kind="patrol",
            location=point.location.model_dump() if point.location else None,
            details={
                "point": point.id, "point_name": point.name, "team": point.team,
                "reason": "not_visited" if up else "camera_down",
                "camera_up": up, "interval_s": self.patrol.due(point).interval_s,
                "last_checkin": status["last_checkin"], "last_member": st.member,
            },
        )
        st.overdue_id, st.overdue_since = event.event_id, now_w
        self._pending[point.id] = event
        log.warning("patrol point %s (%s) overdue: %s", point.id, point.camera, event.details["reason"])
        return [event]

    def _end(self, point_id: str, why: str, extra: dict[str, Any]) -> list[Event]:
        st = self.store.get(point_id)
        if st.overdue_id is None:
            return []
        start = self._pending.pop(point_id, None)
        point = self.points[point_id]
        if start is None:  # raised before a restart: rebuild the parts central needs
            start = self.ctx.restore(st.overdue_id, "patrol_overdue", st.overdue_since or self.clock.now(),
                                     camera=point.camera, zone=point_id, zone_kind="patrol",
                                     details={"point": point_id, "team": point.team})
        st.overdue_id = st.overdue_since = None
        return [EventContext.end(start, self.clock.now(), why, extra)]

    # -- status ------------------------------------------------------------------------------
    def _status(self, point_id: str, now_w: float, now_m: float) -> dict[str, Any]:
        point, live, st = self.points[point_id], self.live[point_id], self.store.get(point_id)
        due = self.patrol.due(point)
        remaining = due.interval_s - (now_m - live.ref_mono)
        next_due = now_w + remaining
        in_win = in_schedule([due.window] if due.window else None, now_w, self.ctx.timezone)
        if not in_win and due.window:
            next_due = window_open(now_w, due.window, self.ctx.timezone, upcoming=True) + due.interval_s
        up = bool(self.camera_up(point.camera))
        return {
            "point": point.id, "name": point.name, "camera": point.camera, "team": point.team,
            "camera_up": up, "in_window": in_win,
            "state": "overdue" if st.overdue_id else ("camera_down" if not up else "ok"),
            "last_checkin": iso_utc(st.last_checkin) if st.last_checkin else None,
            "last_member": st.member, "due": iso_utc(next_due), "interval_s": due.interval_s,
        }

    def _publish(self, point_id: str, now_w: float, now_m: float) -> None:
        if self.publish is None:
            return
        status = self._status(point_id, now_w, now_m)
        live = self.live[point_id]
        # Publish on change only; `due` moves with wall-clock steps, so compare without it
        # unless a check-in or window changed it (those change other fields or ref_mono too).
        key = {k: v for k, v in status.items() if k != "due"}
        key["ref"] = round(live.ref_mono, 1)
        if key == live.status:
            return
        live.status = key
        try:
            self.publish(point_id, {**status, "time": iso_utc(now_w)})
        except Exception:
            log.exception("patrol point %s: status not published", point_id)


def window_open(now_w: float, window: str, tz: str, upcoming: bool = False) -> float:
    """Epoch of the opening of the window occurrence in progress (or the next one, `upcoming`)."""
    start, end = parse_window(window)
    zone = site_zone(tz)
    local = dt.datetime.fromtimestamp(now_w, zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    sec = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    day = dt.timedelta(days=1)
    opening = midnight + dt.timedelta(seconds=start)
    if upcoming:
        if sec >= start:
            opening += day
    elif start > end and sec < start:  # crosses midnight, and we are in its morning part
        opening -= day
    # Wall arithmetic on the local date, then back to epoch: DST days keep "06:00" at 06:00.
    naive = opening.replace(tzinfo=None)
    return naive.replace(tzinfo=zone).timestamp()
