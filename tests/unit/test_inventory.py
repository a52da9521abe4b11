"""The retained inventory message: what it says about cameras, zones and patrol points, and when
it is sent again. Expectations come from the config files themselves (locations, zone kinds)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import yaml

from edge_agent.clock import FakeClock
from edge_agent.config.loader import load_all
from edge_agent.health import Health, SourceState
from edge_agent.ops.inventory import InventoryWatch, inventory
from edge_agent.patrol.points import PatrolFile

ROOT = Path(__file__).parents[2]
SCHEMA = json.loads((ROOT / "docs/schemas/inventory.schema.json").read_text())
PATROL = PatrolFile.model_validate(yaml.safe_load((ROOT / "configs/patrol_points.yaml").read_text()))


def _agent(cfg, health: Health, tampered: set[str] = frozenset()) -> SimpleNamespace:
    """What InventoryWatch reads of a running LiveAgent (cameras' tamper state, patrol points)."""
    cams = {c.id: SimpleNamespace(pipeline=SimpleNamespace(tamper=SimpleNamespace(open="ev" if c.id in tampered else None)))
            for c in cfg.cameras if c.enabled}
    return SimpleNamespace(cfg=cfg, health=health, cameras=cams, patrol=None)


def test_inventory_of_the_demo_config_has_every_camera_where_the_config_puts_it() -> None:
    cfg, zones = load_all(ROOT / "configs/cameras.yaml")
    written = yaml.safe_load((ROOT / "configs/cameras.yaml").read_text())["cameras"]
    health = Health(FakeClock())
    health.frame_seen("rail-east", 1280, 720)
    health.set_state("river-mouth", SourceState.OFFLINE, "refused")
    body = inventory(cfg, zones, health.snapshot()["cameras"], {"promenade"}, PATROL.points[:3])
    jsonschema.validate(body, SCHEMA)
    assert (body["site"], body["device"]) == ("demo-shore", "demo-box")
    cams = {c["id"]: c for c in body["cameras"]}
    assert [(c["lat"], c["lon"]) for c in cams.values()] == [(w["location"]["lat"], w["location"]["lon"]) for w in written]
    assert cams["rail-east"]["frame"] == {"width": 1280, "height": 720} and "frame" not in cams["promenade"]
    assert cams["river-mouth"]["state"] == "offline" and cams["promenade"]["tampered"] is True
    rail_zones = yaml.safe_load((ROOT / "configs/zones/rail-east.yaml").read_text())
    expected = [(z["name"], z["kind"]) for z in rail_zones.get("zones", [])]
    expected += [(ln["name"], "line") for ln in rail_zones.get("lines", [])]
    assert [(z["name"], z["kind"]) for z in cams["rail-east"]["zones"]] == expected
    assert cams["rail-east"]["zones"][0]["polygon"] == [list(p) for p in rail_zones["zones"][0]["polygon"]]
    assert [p["id"] for p in body["patrol_points"]] == ["PP001", "PP002", "PP003"]
    assert body["patrol_points"][0] == {"id": "PP001", "name": "Dyke km 0.4", "team": "T01", "camera": "dyke-01",
                                        "lat": PATROL.points[0].location.lat, "lon": PATROL.points[0].location.lon}


def test_inventory_goes_out_at_start_and_again_only_when_something_changed() -> None:
    cfg, zones = load_all(ROOT / "configs/cameras.yaml")
    clock = FakeClock()
    health = Health(clock)
    sent: list[dict] = []
    watch = InventoryWatch(sent.append, clock)
    assert watch.step(_agent(cfg, health), zones) is True  # start
    clock.advance(5)
    assert watch.step(_agent(cfg, health), zones) is False  # only the time moved: nothing new
    health.set_state("harbour-quay", SourceState.OFFLINE, "gone")
    assert watch.step(_agent(cfg, health), zones) is True
    assert watch.step(_agent(cfg, health, {"rail-east"}), zones) is True  # tampered
    fewer = {**zones, "rail-east": zones["rail-east"].model_copy(update={"zones": zones["rail-east"].zones[:0]})}
    assert watch.step(_agent(cfg, health, {"rail-east"}), fewer) is True  # a reload changed the zones
    assert len(sent) == 4
    assert sent[0]["time"] == "2026-01-01T00:00:00.000Z" and sent[1]["time"] == "2026-01-01T00:00:05.000Z"
    states = [{c["id"]: c["state"] for c in s["cameras"]}["harbour-quay"] for s in sent]
    assert states == ["connecting", "offline", "offline", "offline"]
    assert [c["zones"] for c in sent[3]["cameras"] if c["id"] == "rail-east"] == [[]]


def test_every_example_and_demo_camera_and_patrol_point_has_a_location() -> None:
    for conf in ("configs/cameras.yaml", "configs/examples/cameras.full.yaml"):
        for cam in yaml.safe_load((ROOT / conf).read_text())["cameras"]:
            assert {"lat", "lon"} <= set(cam.get("location") or {}), f"{conf}: camera {cam['id']} has no location"
    assert len(PATROL.points) == 209 and all(p.location is not None for p in PATROL.points)
    demo = (ROOT / "scripts/demo.sh").read_text()
    clips = demo.split("CLIPS=(")[1].split(")")[0].split()
    assert all(f"[{c}]=\"{{lat: " in demo for c in clips), "every demo camera gets a location in scripts/demo.sh"
