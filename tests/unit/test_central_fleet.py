"""The boxes' status, health, inventory and patrol messages into the console's store (SQLite), and
what the map and the boards make of them: one colour rule for cameras, overdue points first."""

from __future__ import annotations

import json
import logging
import re

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from edge_agent.alarms.event import EventContext
from edge_agent.central import boards
from edge_agent.central.ingest import Ingest
from edge_agent.central.serve import build
from edge_agent.clock import iso_utc
from edge_agent.config.central import load_central
from edge_agent.errors import ConfigError
from edge_agent.publish.mqtt import status_payload
from edge_agent.web.auth import hash_password
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
    # its last will: every camera of the box is offline, whatever they said before; the box was
    # last seen when it last spoke, not when the broker announced its will
    ingest.clock.now = lambda: T0 + 5  # type: ignore[method-assign]
    ingest.handle(f"{B}/status", status_payload("offline", "dev1"))
    assert set(states(ingest).values()) == {"offline"}
    [box] = boards.health_board(ingest.store.engine, T0 + 10, 90, "UTC")
    assert (box["state"], box["age_s"]) == ("offline", 10.0)
    # back, and a box that then says nothing for longer than stale_after_s is silent
    ingest.handle(f"{B}/status", status_payload("online", "dev1"))
    assert boards.health_board(ingest.store.engine, T0 + 96, 90, "UTC")[0]["state"] == "silent"


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


def login(app) -> TestClient:
    client = TestClient(app, base_url="http://127.0.0.1")
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)[1]
    client.post("/login", data={"user": "op", "password": "pw", "csrf": token})
    return client


def test_map_backgrounds_come_from_the_config_folder_and_need_no_tile_server(tmp_path):
    tile = cv2.imencode(".png", np.full((256, 256, 3), 90, np.uint8))[1].tobytes()
    (tmp_path / "tiles/12/2095").mkdir(parents=True)
    (tmp_path / "tiles/12/2095/1350.png").write_bytes(tile)
    (tmp_path / "plan.png").write_bytes(tile)
    ref = "[{x: 0, y: 0, lat: 52.11, lon: 4.26}, {x: 256, y: 256, lat: 52.08, lon: 4.31}]"
    conf = tmp_path / "central.yaml"
    conf.write_text(f"database: {{url: 'sqlite:///c.sqlite'}}\nmap:\n  tiles: tiles\n  image: {{file: plan.png, ref: {ref}}}\n")
    centre = build(load_central(conf))
    centre.store.put_user("op", "viewer", hash_password("pw"), T0)
    client = login(centre.web.app)
    assert client.get("/map/tiles/12/2095/1350.png").content == tile
    assert client.get("/map/tiles/12/2095/1351.png").status_code == 404
    assert client.get("/map/tiles/12/..%2F..%2Fc.sqlite/1.png").status_code in (404, 422)
    assert client.get("/map/image").content == tile
    page = client.get("/map").text
    assert "&#34;mode&#34;: &#34;tiles&#34;" in page  # tiles win over the picture when both are set
    centre.store.close()
    conf.write_text("map:\n  image: {file: plan.png, ref: [{x: 5, y: 5, lat: 52.1, lon: 4.2}, {x: 5, y: 9, lat: 52.0, lon: 4.3}]}\n")
    with pytest.raises(ConfigError) as err:
        load_central(conf)
    assert f"{conf}:2: map.image.ref:" in str(err.value) and "must differ in x, y, lat and lon" in str(err.value)
