"""The boxes' status, health, inventory and patrol messages into the console's store (SQLite), and
what the map and the boards make of them: one colour rule for cameras, overdue points first."""

from __future__ import annotations

import json
import logging

from edge_agent.alarms.event import EventContext
from edge_agent.central import boards
from edge_agent.central.ingest import Ingest
from edge_agent.clock import iso_utc
from edge_agent.publish.mqtt import status_payload
from tests.unit.test_central_ingest import make
from tests.unit.test_central_store import T0, event, raw

B = "edge/site1/dev1"


def inventory(*cams: tuple[str, str, bool], points: list[dict] | None = None) -> bytes:
    return json.dumps({"schema": 1, "site": "site1", "device": "dev1", "cameras": [
        {"id": c, "name": c, "lat": 52.1, "lon": 4.3, "state": st, "tampered": t} for c, st, t in cams],
        "patrol_points": points or []}).encode()


def states(ingest: Ingest) -> dict[str, str]:
    data = boards.map_data(ingest.store.engine, T0 + 10, 90)
    return {c["id"]: c["state"] for c in data["cameras"]} | {p["id"]: p["state"] for p in data["points"]}


def test_camera_colour_follows_box_status_camera_state_tamper_and_open_alarms(tmp_path):
    ingest = make(tmp_path)
    ingest.clock.now = lambda: T0  # type: ignore[method-assign]
    ingest.handle(f"{B}/status", status_payload("online", "dev1"))
    ingest.handle(f"{B}/inventory", inventory(("cam1", "online", False), ("cam2", "offline", False),
                                              ("cam3", "online", True), ("cam4", "connecting", False)))
    ingest.handle(f"{B}/alarms", raw(event(1, T0, camera="cam1")))
    assert states(ingest) == {"cam1": "alarm", "cam2": "offline", "cam3": "tampered", "cam4": "connecting"}
    # its last will: every camera of the box is offline, whatever they said before
    ingest.handle(f"{B}/status", status_payload("offline", "dev1"))
    assert set(states(ingest).values()) == {"offline"}
    assert boards.health_board(ingest.store.engine, T0 + 10, 90, "UTC")[0]["state"] == "offline"
    # back, and a box that then says nothing for longer than stale_after_s is silent
    ingest.handle(f"{B}/status", status_payload("online", "dev1"))
    assert boards.health_board(ingest.store.engine, T0 + 91, 90, "UTC")[0]["state"] == "silent"


def test_health_reports_tell_the_pages_only_when_a_camera_state_changed(tmp_path):
    ingest = make(tmp_path)
    report = {"cameras": {"cam1": {"state": "online", "fps_analysed": 5.0}}, "mqtt": {"outbox_depth": 0}}
    ingest.handle(f"{B}/health", json.dumps(report).encode())
    seen = ingest.changes.version
    report["cameras"]["cam1"]["fps_analysed"] = 4.0
    ingest.handle(f"{B}/health", json.dumps(report).encode())
    assert ingest.changes.version == seen
    report["cameras"]["cam1"]["state"] = "stalled"
    ingest.handle(f"{B}/health", json.dumps(report).encode())
    assert ingest.changes.version == seen + 1


def test_bad_fleet_messages_are_dropped_naming_the_topic(tmp_path, caplog):
    ingest = make(tmp_path)
    with caplog.at_level(logging.ERROR, "edge_agent.central.fleet"):
        ingest.handle(f"{B}/inventory", b"[1, 2]")
        ingest.handle(f"{B}/inventory", json.dumps({"site": "site1", "device": "dev1",
                                                     "cameras": [{"id": "c", "name": "c", "lat": 99, "state": "x"}]}).encode())
        ingest.handle(f"{B}/status", b'{"state": "sleepy"}')
        ingest.handle(f"{B}/inventory", inventory(("cam1", "online", False)))
    assert [c["id"] for c in boards.map_data(ingest.store.engine, T0, 90)["cameras"]] == ["cam1"]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == f"{B}/inventory dropped: not a JSON object"
    assert messages[1].startswith(f"{B}/inventory dropped: not a valid inventory (cameras.0.lat:")
    assert messages[2] == f"{B}/status dropped: state must be online or offline"


def test_patrol_board_lists_overdue_first_with_last_checkins_and_the_days_coverage(tmp_path):
    ingest = make(tmp_path)
    points = [{"id": f"P{i}", "name": f"Point {i}", "team": "T1", "camera": "cam1", "lat": 52.0, "lon": 4.0}
              for i in range(4)]
    ingest.handle(f"{B}/inventory", inventory(("cam1", "online", False), points=points))
    for pid, state in (("P0", "ok"), ("P1", "camera_down"), ("P2", "overdue"), ("P3", "ok")):
        body = {"point": pid, "team": "T1", "state": state, "due": iso_utc(T0 + 3600), "last_checkin": None}
        ingest.handle(f"{B}/patrol/status/{pid}", json.dumps(body).encode())
    checkin = EventContext("site1", "dev1", "cam1").start(
        "patrol_checkin", T0 + 60, key=("P3", 1), zone="P3", zone_kind="patrol",
        details={"point": "P3", "team": "T1", "member": "A. Jansen", "badge": 1001})
    ingest.handle(f"{B}/patrol", checkin.to_json().encode())
    ingest.handle(f"{B}/patrol", checkin.to_json().encode())  # a redelivery counts once
    [team] = boards.patrol_board(ingest.store.engine, T0 + 120, 90, "UTC")
    assert [p["id"] for p in team["points"]] == ["P2", "P1", "P0", "P3"]
    assert (team["visited"], team["total"], team["overdue"]) == (1, 4, 1)
    last = team["points"][3]["last"]
    assert (last["member"], last["badge"], last["event_id"]) == ("A. Jansen", 1001, None)  # no snapshot yet
    assert states(ingest)["P2"] == "overdue"
