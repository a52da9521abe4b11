"""Overdue patrol points with a FakeClock: one alarm, cleared by a check-in, restart- and step-proof."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.clock import FakeClock, parse_iso
from edge_agent.patrol.overdue import OverdueWatch, window_open
from edge_agent.patrol.points import PatrolFile
from edge_agent.patrol.store import PatrolStore
from edge_agent.alarms.event import EventContext

HOUR = 3600.0
CTX = EventContext(site="site-a", device="box-1", camera="", timezone="UTC")


def patrol(window: str | None = None) -> PatrolFile:
    due = {"interval": "4h", **({"window": window} if window else {})}
    return PatrolFile.model_validate({
        "defaults": {"due": due},
        "points": [
            {"id": "PP001", "camera": "cam-1", "team": "T01", "area": [[0, 0], [1, 0], [1, 1]]},
            {"id": "PP002", "camera": "cam-2", "team": "T02", "area": [[0, 0], [1, 0], [1, 1]],
             "due": {"interval": "8h"}},
        ],
    })


class Recorder:
    def __init__(self) -> None:
        self.status: dict[str, list[dict]] = {}

    def __call__(self, point: str, body: dict) -> None:
        json.dumps(body)  # must be JSON-ready for publish_retained
        self.status.setdefault(point, []).append(body)


def make(tmp_path: Path, clock: FakeClock, window: str | None = None, up=lambda cam: True,
         rec: Recorder | None = None) -> OverdueWatch:
    p = patrol(window)
    return OverdueWatch(CTX, p, p.points, clock, PatrolStore.open(tmp_path / "patrol.json"), rec, up)


def run(watch: OverdueWatch, clock: FakeClock, seconds: float, step: float = 60.0) -> list:
    events = []
    for _ in range(int(seconds / step)):
        clock.advance(step)
        events += watch.check()
    return events


def test_one_overdue_then_a_checkin_clears_it(tmp_path):
    clock = FakeClock()
    watch = make(tmp_path, clock)
    assert run(watch, clock, 4 * HOUR - 120) == []
    events = run(watch, clock, 2 * HOUR)
    pp1 = [e for e in events if e.zone == "PP001"]
    assert [(e.type, e.phase) for e in pp1] == [("patrol_overdue", "start")]
    start = pp1[0]
    assert start.details["reason"] == "not_visited" and start.camera == "cam-1" and start.details["team"] == "T01"
    assert start.start == "2026-01-01T04:00:00.000Z"  # when it became due
    assert watch.status("PP001")["state"] == "overdue"
    ends = watch.on_checkin("PP001", "A. Jansen", 1010)
    assert [(e.event_id, e.phase, e.details["end_reason"]) for e in ends] == [(start.event_id, "end", "checked_in")]
    assert watch.status("PP001")["state"] == "ok"
    assert watch.status("PP001")["last_member"] == "A. Jansen"
    assert [e for e in run(watch, clock, 4 * HOUR - 120) if e.zone == "PP001"] == []
    later = [e for e in run(watch, clock, 240) if e.zone == "PP001"]
    assert [(e.type, e.phase) for e in later] == [("patrol_overdue", "start")]
    assert later[0].event_id != start.event_id


def test_restart_keeps_due_times_and_open_alarms(tmp_path):
    clock = FakeClock()
    watch = make(tmp_path, clock)
    run(watch, clock, HOUR)
    watch.on_checkin("PP001", "A. Jansen", 1010)
    run(watch, clock, HOUR)
    due_before = {pid: watch.status(pid)["due"] for pid in ("PP001", "PP002")}
    # Restart: a new process, its monotonic clock starts again at zero; wall time goes on.
    clock2 = FakeClock(clock.now())
    watch2 = make(tmp_path, clock2)
    assert {pid: watch2.status(pid)["due"] for pid in ("PP001", "PP002")} == due_before
    assert watch2.status("PP001")["last_member"] == "A. Jansen"
    events = run(watch2, clock2, 3 * HOUR - 120)
    assert [e.zone for e in events] == []
    events = run(watch2, clock2, 240)
    assert [(e.zone, e.phase) for e in events] == [("PP001", "start")]
    assert events[0].start == due_before["PP001"]
    # Another restart while it is open: not raised again, and a check-in ends the same alarm.
    clock3 = FakeClock(clock2.now())
    watch3 = make(tmp_path, clock3)
    assert [e for e in run(watch3, clock3, 600) if e.zone == "PP001"] == []
    ends = watch3.on_checkin("PP001", "B. Bakker", 1011)
    assert [(e.event_id, e.phase) for e in ends] == [(events[0].event_id, "end")]


@pytest.mark.parametrize("step", [5 * HOUR, -5 * HOUR])
def test_wall_clock_step_causes_no_false_overdue(tmp_path, step):
    clock = FakeClock()
    watch = make(tmp_path, clock)
    watch.on_checkin("PP001", "A. Jansen", 1010)
    watch.on_checkin("PP002", "A. Jansen", 1010)
    run(watch, clock, HOUR)
    clock.step_wall(step)  # NTP or a technician sets the clock
    assert run(watch, clock, 2 * HOUR) == []
    assert watch.status("PP001")["state"] == "ok"
    # ... and the real interval still counts: 4 h of monotonic time after the check-in.
    events = run(watch, clock, HOUR + 120)
    assert [e.zone for e in events] == ["PP001"]


def test_camera_down_says_so_instead_of_blaming_the_patrol(tmp_path):
    clock = FakeClock()
    rec = Recorder()
    down = {"cam-1"}
    watch = make(tmp_path, clock, up=lambda cam: cam not in down, rec=rec)
    watch.check()
    assert rec.status["PP001"][-1]["camera_up"] is False and rec.status["PP001"][-1]["state"] == "camera_down"
    assert rec.status["PP002"][-1]["camera_up"] is True
    events = run(watch, clock, 4 * HOUR + 60)
    (ev,) = [e for e in events if e.zone == "PP001"]
    assert ev.details["reason"] == "camera_down" and ev.details["camera_up"] is False
    down.clear()
    watch.check()
    assert rec.status["PP001"][-1]["camera_up"] is True and rec.status["PP001"][-1]["state"] == "overdue"


def test_status_is_published_on_change_only(tmp_path):
    clock = FakeClock()
    rec = Recorder()
    watch = make(tmp_path, clock, rec=rec)
    run(watch, clock, 600)
    assert len(rec.status["PP001"]) == 1  # ten checks, nothing changed
    first = rec.status["PP001"][0]
    assert first["point"] == "PP001" and first["due"] == "2026-01-01T04:00:00.000Z" and first["last_checkin"] is None
    watch.on_checkin("PP001", "A. Jansen", 1010)
    assert rec.status["PP001"][-1]["last_checkin"] == "2026-01-01T00:10:00.000Z"
    assert rec.status["PP001"][-1]["due"] == "2026-01-01T04:10:00.000Z"


def test_window_counts_only_inside_and_restarts_at_opening(tmp_path):
    clock = FakeClock(parse_iso("2026-01-01T00:00:00Z"))  # outside 06:00-22:00 (UTC site)
    watch = make(tmp_path, clock, window="06:00-22:00")
    pp1 = lambda evs: [(e.phase, e.start) for e in evs if e.zone == "PP001"]  # noqa: E731
    assert pp1(run(watch, clock, 9 * HOUR)) == []  # 00:00-09:00: the interval began at 06:00
    assert pp1(run(watch, clock, HOUR + 60)) == [("start", "2026-01-01T10:00:00.000Z")]
    watch.on_checkin("PP001", "A. Jansen", 1010)  # 10:01
    assert pp1(run(watch, clock, 4 * HOUR - 180)) == []
    assert [p for p, _ in pp1(run(watch, clock, 10 * HOUR))] == ["start", "end"]  # due 14:01, closed at 22:00
    assert watch.status("PP001")["in_window"] is False
    assert watch.status("PP001")["due"] == "2026-01-02T10:00:00.000Z"  # next opening + 4 h
    assert pp1(run(watch, clock, 6 * HOUR)) == []  # the night is not counted


def test_window_open_crossing_midnight_and_dst():
    t = parse_iso("2026-03-29T03:30:00Z")  # Amsterdam switches to summer time at 01:00Z that day
    assert window_open(t, "22:00-06:00", "Europe/Amsterdam") == parse_iso("2026-03-28T21:00:00Z")
    assert window_open(t, "06:00-22:00", "Europe/Amsterdam", upcoming=True) == parse_iso("2026-03-29T04:00:00Z")


def test_corrupt_store_starts_fresh(tmp_path):
    (tmp_path / "patrol.json").write_text("{not json")
    clock = FakeClock()
    watch = make(tmp_path, clock)
    assert watch.status("PP001")["last_checkin"] is None
    assert json.loads((tmp_path / "patrol.json").read_text())["version"] == 1


def test_an_unwritable_state_file_does_not_stop_overdue_checking(tmp_path):
    """save() raised OSError out of check() and on_checkin(): in the live agent that is the
    supervisor loop, so a full or read-only disk ended the whole agent."""
    (tmp_path / "blocker").write_text("a file where the state folder should be")
    clock = FakeClock()
    p = patrol()
    watch = OverdueWatch(CTX, p, p.points, clock, PatrolStore.open(tmp_path / "blocker" / "patrol.json"))
    events = run(watch, clock, 4 * HOUR + 120)
    assert [(e.zone, e.phase) for e in events] == [("PP001", "start")]
    assert [e.phase for e in watch.on_checkin("PP001", "A. Jansen", 1011)] == ["end"]
    assert watch.store.save_errors >= 2  # the overdue start and the check-in were not saved
