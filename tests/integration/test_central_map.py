"""The map, the health board and the patrol board in Debian's chromium, fed through real mosquitto
into the console (real PostgreSQL): a county of 214 cameras on 27 edge boxes and the 209 patrol
points of configs/patrol_points.yaml. Inventories are built by the agent's own builder
(ops/inventory.py) from a real `Health`; box-00 publishes through the agent's real `MqttSink`
(alarm and check-in with their snapshots, retained patrol point states from the agent's real
`OverdueWatch` on a fake clock). What is expected comes from the fleet the test builds: its ids,
locations and the points it leaves without a check-in.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import av
import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
import yaml

from edge_agent.alarms.event import EventContext
from edge_agent.alarms.snapshot import encode_jpeg
from edge_agent.clock import FakeClock
from edge_agent.config.central import CentralConfig
from edge_agent.config.loader import load_zones
from edge_agent.config.models import AgentConfig
from edge_agent.health import Health, SourceState
from edge_agent.ops.inventory import InventoryWatch
from edge_agent.patrol.overdue import OverdueWatch
from edge_agent.patrol.points import PatrolFile
from edge_agent.patrol.store import PatrolStore
from edge_agent.publish.mqtt import status_payload
from edge_agent.publish.publisher import MqttSink
from edge_agent.web.auth import hash_password
from tests.fixtures.console import central_config
from tests.fixtures.mosquitto import mqtt_settings
from tests.integration.test_central_console import _screenshot, log_in, wait_js

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
FOOTAGE = ROOT / "tests/footage"
PATROL = PatrolFile.model_validate(yaml.safe_load((ROOT / "configs/patrol_points.yaml").read_text()))
SITE, PREFIX, TZ = "coast", "city", "Europe/Amsterdam"
# rail-01..rail-10 and dyke-01..dyke-14 carry the example's patrol points; 190 more cameras
CAMERAS = [f"rail-{i:02d}" for i in range(1, 11)] + [f"dyke-{i:02d}" for i in range(1, 15)] + \
          [f"cam-{i:03d}" for i in range(25, 215)]
PER_BOX = 8
OFFLINE_CAMERA, SILENT_BOX = "cam-100", "box-20"
RED = "rgb(248, 81, 73)"


def box_config(n: int) -> AgentConfig:
    cams = CAMERAS[n * PER_BOX:(n + 1) * PER_BOX]
    return AgentConfig.model_validate({
        "site": {"id": SITE, "timezone": TZ}, "device": {"id": f"box-{n:02d}"},
        "cameras": [{"id": c, "name": f"Camera {c}", "url": f"/media/{c}.mp4",
                     "location": {"lat": round(52.05 + 0.0021 * i, 5), "lon": round(4.20 + 0.0019 * i, 5)}}
                    for i, c in enumerate(cams, start=n * PER_BOX)]})


class Box:
    """One simulated edge box: its config, a real Health and the real inventory builder."""

    def __init__(self, n: int, publish) -> None:
        self.cfg = box_config(n)
        self.health = Health(FakeClock())
        for cam in self.cfg.cameras:
            self.health.frame_seen(cam.id, 1280, 720)
            self.health.set_state(cam.id, SourceState.ONLINE)
        self.points = PATROL.for_cameras([c.id for c in self.cfg.cameras])
        self.zones = {"rail-01": load_zones(FOOTAGE / "zones/rail_intrusion.yaml")} if n == 0 else {}
        self.watch = InventoryWatch(publish, FakeClock())

    @property
    def base(self) -> str:
        return f"{PREFIX}/{SITE}/{self.cfg.device.id}"

    def publish_inventory(self) -> None:
        """What InventoryWatch reads of a running LiveAgent: no camera tampered, the box's points."""
        untampered = SimpleNamespace(pipeline=SimpleNamespace(tamper=SimpleNamespace(open=None)))
        agent = SimpleNamespace(cfg=self.cfg, health=self.health, cameras={c.id: untampered for c in self.cfg.cameras},
                                patrol=SimpleNamespace(watch=SimpleNamespace(points={p.id: p for p in self.points})))
        assert self.watch.step(agent, self.zones)


def first_frame() -> bytes:
    with av.open(str(FOOTAGE / "rail_intrusion.mp4")) as c:
        return encode_jpeg(next(c.decode(video=0)).to_ndarray(format="bgr24"))


def test_map_health_and_patrol_boards_show_the_county(mosquitto, postgres, console_factory, browser, tmp_path):
    cfg = central_config(mosquitto, postgres.fresh_db(), tmp_path)
    console = console_factory(cfg, client_id="console-map")
    console.centre.store.put_user("olga", "operator", hash_password("olga-pw"), time.time())
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="county-boxes")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()

    def sender(base: str):
        return lambda body: client.publish(f"{base}/inventory", json.dumps(body), qos=1, retain=True)

    n_boxes = -(-len(CAMERAS) // PER_BOX)
    boxes = [Box(n, None) for n in range(n_boxes)]
    clock = FakeClock(time.time() - 6 * 3600 - 60)  # rail points are due every 6 h, day and night
    sink = MqttSink(mqtt_settings(mosquitto, tmp_path / "outbox.sqlite", topic_prefix=PREFIX), SITE, "box-00",
                    clock).start()
    boxes[0].watch.publish = lambda body: sink.state.publish_retained("inventory", body)
    for box in boxes[1:]:
        box.watch.publish = sender(box.base)
        client.publish(f"{box.base}/status", status_payload("online", box.cfg.device.id), qos=1, retain=True)
    lwt = subprocess.Popen(["mosquitto_sub", "-p", str(mosquitto.port), "-t", "nothing", "-i", "box-20-agent",
                            "--will-topic", f"{PREFIX}/{SITE}/{SILENT_BOX}/status", "--will-retain", "--will-qos", "1",
                            "--will-payload", status_payload("offline", "box-20-agent").decode()])
    contexts = []
    try:
        for box in boxes:
            box.publish_inventory()
            client.publish(f"{box.base}/health", json.dumps({"cameras": box.health.snapshot()["cameras"],
                                                             "detector": {"ms_per_frame": 21.5},
                                                             "mqtt": {"outbox_depth": 3, "outbox_oldest_s": 1.5}}))
        overdue_point = patrol_day(boxes[0], sink, clock, tmp_path)
        alarm_with_snapshot(sink, clock)
        assert sum(len(b.cfg.cameras) for b in boxes) == 214 and sum(len(b.points) for b in boxes) == 209

        ctx, page = log_in(browser, console.url, "olga", "olga-pw")
        contexts.append(ctx)
        missed_on = next(p.camera for p in boxes[0].points if p.id == overdue_point)
        check_map(page, console.url, boxes, ["intrusion"] + (["patrol_overdue"] if missed_on == "rail-01" else []))
        # a camera goes offline: the box republishes its inventory, the map turns it red
        box = next(b for b in boxes if any(c.id == OFFLINE_CAMERA for c in b.cfg.cameras))
        box.health.set_state(OFFLINE_CAMERA, SourceState.OFFLINE, "connection refused")
        box.publish_inventory()
        key = f"cam:{SITE}/{box.cfg.device.id}/{OFFLINE_CAMERA}"
        show(page, key)
        wait_js(page, f"document.querySelector('[data-key=\"{key}\"]').dataset.state === 'offline'", 10)
        assert page.eval_on_selector(f"[data-key='{key}']", "e => getComputedStyle(e).backgroundColor") == RED
        # ... and box-20 loses its connection: the broker publishes its last will
        lwt.kill()
        lwt.wait()
        check_health(page, console.url, box.cfg.device.id)
        check_patrol(page, console.url, overdue_point, boxes[0])
    finally:
        for c in contexts:
            c.close()
        if lwt.poll() is None:
            lwt.kill()
        sink.close(2.0)
        client.loop_stop()
        client.disconnect()


def patrol_day(box: Box, sink: MqttSink, clock: FakeClock, tmp_path: Path) -> str:
    """The agent's overdue logic on box-00's points: all but one checked in just before they were
    due; that one is overdue 6 h after the watch started. One check-in comes with its snapshot."""
    ctx = EventContext(SITE, "box-00", "", TZ)
    watch = OverdueWatch(ctx, PATROL, box.points, clock, PatrolStore.open(tmp_path / "patrol.json"),
                         lambda point, body: sink.state.publish_retained(f"patrol/status/{point}", body))
    watch.check()
    clock.advance(6 * 3600 - 60)
    missed, visited = box.points[3].id, [p for p in box.points if p.id != box.points[3].id]
    for p in visited:
        for ev in watch.on_checkin(p.id, "A. Jansen", 1001, clock.now()):
            sink.emit(ev, {})
    p = visited[0]
    cam = EventContext(SITE, "box-00", p.camera, TZ)
    checkin = cam.start("patrol_checkin", clock.now(), key=(p.id, "checkin"), zone=p.id, zone_kind="patrol",
                        label="person", details={"point": p.id, "team": p.team, "member": "A. Jansen", "badge": 1001})
    sink.emit(checkin, {"snapshot": first_frame()})
    clock.advance(90)
    raised = watch.check()
    assert [e.details["point"] for e in raised] == [missed]
    for ev in raised:
        sink.emit(ev, {})
    return missed


def alarm_with_snapshot(sink: MqttSink, clock: FakeClock) -> None:
    cam = EventContext(SITE, "box-00", "rail-01", TZ)
    ev = cam.start("intrusion", clock.now(), key=("track-bed", 1), zone="track-bed", zone_kind="rail",
                   label="person", score=0.8)
    sink.emit(ev, {"snapshot": first_frame()})


def show(page, key: str) -> None:
    """Zoom until the marker is out of its cluster (markercluster's own call), so it is in the page."""
    page.evaluate("""(key) => new Promise((done) => centreMap.clusters.zoomToShowLayer(centreMap.markers.get(key), done))""",
                  key)
    page.wait_for_selector(f"[data-key='{key}']", timeout=10_000)


def check_map(page, url: str, boxes: list[Box], rail01_alarms: list[str]) -> None:
    page.goto(f"{url}/map")
    expected = {f"cam:{SITE}/{b.cfg.device.id}/{c.id}" for b in boxes for c in b.cfg.cameras}
    expected |= {f"pt:{SITE}/{b.cfg.device.id}/{p.id}" for b in boxes for p in b.points}
    wait_js(page, "document.getElementById('map').dataset.markers === '423'", 30)
    keys = page.evaluate("() => centreMap.clusters.getLayers().map((m) => [...centreMap.markers].find(([k, v]) => v === m)[0])")
    assert set(keys) == expected and len(keys) == 423
    # zoomed out, the county is clusters: fewer things on screen than markers
    on_screen = page.evaluate("() => document.querySelectorAll('#map .mk, #map .cl').length")
    assert 0 < on_screen < 423
    _screenshot(page, "console-map-overview.png")
    # every marker where its inventory put it
    where = dict(page.evaluate("() => [...centreMap.markers].map(([k, m]) => [k, [m.getLatLng().lat, m.getLatLng().lng]])"))
    cam = boxes[3].cfg.cameras[2]
    assert where[f"cam:{SITE}/box-03/{cam.id}"] == [cam.location.lat, cam.location.lon]
    point = boxes[0].points[0]
    assert where[f"pt:{SITE}/box-00/{point.id}"] == [point.location.lat, point.location.lon]
    # a click on rail-01 opens its panel: the alarm, its snapshot, the zones of its zone file drawn over
    key = f"cam:{SITE}/box-00/rail-01"
    wait_js(page, f"centreMap.markers.get('{key}').options.state === 'alarm'", 20)
    show(page, key)
    page.click(f"[data-key='{key}']")
    page.wait_for_selector("#panel:not([hidden])", timeout=10_000)
    assert "rail-01" in page.inner_text("#panel-title")
    wait_js(page, "document.getElementById('panel-snapshot').naturalWidth > 0", 15)
    zone_file = yaml.safe_load((FOOTAGE / "zones/rail_intrusion.yaml").read_text())
    assert page.evaluate("() => document.querySelectorAll('#panel-zones polygon').length") == len(zone_file["zones"])
    types = page.evaluate("() => [...document.querySelectorAll('#panel-alarms tbody tr')].map((r) => r.cells[1].innerText)")
    assert sorted(types) == sorted(rail01_alarms)
    _screenshot(page, "console-map.png")


def check_health(page, url: str, offline_box: str) -> None:
    page.goto(f"{url}/health")
    cam_row = f"tr[data-key='{SITE}/{offline_box}/{OFFLINE_CAMERA}']"
    page.wait_for_selector(f"{cam_row}.s-offline", timeout=10_000)
    silent = f"tr.dev[data-key='{SITE}/{SILENT_BOX}']"
    page.wait_for_selector(f"{silent}.s-offline", timeout=10_000)
    # the boxes with a problem come first, and stand out
    first = page.evaluate("() => [...document.querySelectorAll('#health tr.dev')].slice(0, 2).map((r) => r.dataset.key)")
    assert set(first) == {f"{SITE}/{SILENT_BOX}", f"{SITE}/{offline_box}"}
    for sel in (cam_row, silent):
        assert page.eval_on_selector(sel, "e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    _screenshot(page, "console-health.png")
    cells = page.eval_on_selector(f"tr.dev[data-key='{SITE}/box-02']", "r => [...r.cells].map((c) => c.innerText)")
    assert cells[1] == "online" and cells[4] == "21.5" and cells[5] == "3"


def check_patrol(page, url: str, overdue: str, box: Box) -> None:
    page.goto(f"{url}/patrol")
    page.wait_for_selector("table.team tbody tr", timeout=10_000)
    wait_js(page, f"document.querySelector('table.team tbody tr').dataset.key === '{SITE}/box-00/{overdue}'", 15)
    first = page.eval_on_selector("table.team tbody tr", "r => [...r.cells].map((c) => c.innerText)")
    assert first[0] == overdue and first[3] == "overdue"
    team = next(p.team for p in box.points if p.id == overdue)
    caption = page.inner_text(f"table.team[data-team='{team}'] caption")
    visited = sum(p.team == team for p in box.points) - 1  # only box-00's points were visited, all but one
    total = sum(p.team == team for p in PATROL.points)
    assert caption == f"{team}: {visited} of {total} points checked in today, 1 overdue"
    wait_js(page, "document.querySelector('img.thumb') && document.querySelector('img.thumb').naturalWidth > 0", 15)
    _screenshot(page, "console-patrol.png")


def test_map_places_cameras_on_an_operator_picture_by_its_two_reference_points(mosquitto, console_factory, browser,
                                                                               tmp_path):
    """A 400x300 north-up picture whose pixel (40, 30) is at 52.12 N 4.25 E and (360, 270) at 52.08 N
    4.33 E: a camera at 52.10 N 4.29 E must sit over pixel (200, 150), its middle."""
    cv2.imwrite(str(tmp_path / "plan.png"), np.full((300, 400, 3), 60, np.uint8))
    base = central_config(mosquitto, f"sqlite:///{tmp_path / 'c.sqlite'}", tmp_path)
    cfg = CentralConfig.model_validate({**base.model_dump(), "map": {"image": {
        "file": str(tmp_path / "plan.png"), "ref": [{"x": 40, "y": 30, "lat": 52.12, "lon": 4.25},
                                                    {"x": 360, "y": 270, "lat": 52.08, "lon": 4.33}]}}})
    console = console_factory(cfg, client_id="console-plan")
    console.centre.store.put_user("olga", "operator", hash_password("olga-pw"), time.time())
    inv = {"schema": 1, "site": SITE, "device": "box-00", "patrol_points": [],
           "cameras": [{"id": "mid", "name": "Mid", "lat": 52.10, "lon": 4.29, "state": "online"}]}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="plan-box")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    client.publish(f"{PREFIX}/{SITE}/box-00/inventory", json.dumps(inv), qos=1, retain=True).wait_for_publish(5)
    ctx, page = log_in(browser, console.url, "olga", "olga-pw")
    try:
        page.goto(f"{console.url}/map")
        page.wait_for_selector(".leaflet-image-layer", timeout=15_000)
        wait_js(page, "document.querySelector('.leaflet-image-layer').naturalWidth > 0", 10)
        page.wait_for_selector("[data-key='cam:coast/box-00/mid']", timeout=10_000)
        img = page.eval_on_selector(".leaflet-image-layer", "e => e.getBoundingClientRect().toJSON()")
        mk = page.eval_on_selector("[data-key='cam:coast/box-00/mid']", "e => e.getBoundingClientRect().toJSON()")
        x = (mk["x"] + mk["width"] / 2 - img["x"]) * 400 / img["width"]
        y = (mk["y"] + mk["height"] / 2 - img["y"]) * 300 / img["height"]
        assert abs(x - 200) < 3 and abs(y - 150) < 3, (x, y)
    finally:
        ctx.close()
        client.loop_stop()
        client.disconnect()
