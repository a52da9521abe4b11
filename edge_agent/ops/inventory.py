"""The retained `<base>/inventory` message: what this box watches, for central command's map.

Its cameras (id, name, lat/lon, state, whether tampered, the size of a recent frame, the zones and
lines drawn on them) and the patrol points on those cameras (id, name, team, camera, lat/lon).
Zones have no lat/lon: the console draws them over the camera's snapshot, so they travel as
fractions of the frame, as in the zone files. Patrol point states are not here: each point's own
retained `patrol/status/<point>` carries them (patrol/overdue.py).

`InventoryWatch.step` runs on every supervision step of a running agent and publishes only when
the inventory differs from the last one it sent: so once at start, after a reload that changed
anything (a new agent, new zones), and whenever a camera's state or frame size changes. Retained,
so a console that starts later gets it at once. docs/mqtt.md and docs/schemas/inventory.schema.json
describe it.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field

from ..clock import Clock, iso_utc
from ..config.models import AgentConfig, Camera, Location, ZoneFile
from ..patrol.points import Point

Publish = Callable[[dict[str, Any]], None]


class _Message(BaseModel):
    # A newer agent may add fields; a console reading this ignores what it does not know.
    model_config = ConfigDict(extra="ignore")


class Shape(_Message):
    name: str
    kind: Literal["rail", "water", "shore", "restricted", "line"] = Field(
        description="The zone's kind; `line` for a directional tripwire (two points).")
    polygon: list[tuple[float, float]] = Field(description="[[x, y], ...] as fractions of the frame's width, height.")
    enabled: bool = True
    direction: Literal["in", "out", "both"] | None = Field(None, description="Lines only.")


class FrameSize(_Message):
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class InventoryCamera(_Message):
    id: str
    name: str
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    state: str = Field(description="connecting | online | stalled | offline | stopped (the health state).")
    tampered: bool = False
    frame: FrameSize | None = Field(None, description="A recent frame's size; absent before the first frame.")
    zones: list[Shape] = Field(default_factory=list)


class InventoryPoint(_Message):
    id: str
    name: str
    team: str
    camera: str
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


class Inventory(_Message):
    schema_version: int = Field(1, alias="schema")
    site: str
    device: str
    time: str | None = Field(None, description="When it was published (ISO 8601 UTC).")
    cameras: list[InventoryCamera] = Field(default_factory=list)
    patrol_points: list[InventoryPoint] = Field(default_factory=list)


def _where(location: Location | None) -> dict[str, float | None]:
    return {"lat": location.lat, "lon": location.lon} if location else {"lat": None, "lon": None}


def shapes(zones: ZoneFile) -> list[Shape]:
    """Zones and lines of one camera in one list, told apart by `kind` (`line` for a tripwire)."""
    out = [Shape(name=z.name, kind=z.kind, polygon=z.polygon, enabled=z.enabled) for z in zones.zones]
    out += [Shape(name=ln.name, kind="line", polygon=list(ln.points), enabled=ln.enabled, direction=ln.direction)
            for ln in zones.lines]
    return out


def camera_entry(cam: Camera, zones: ZoneFile, health: Mapping[str, Any], tampered: bool) -> InventoryCamera:
    """One camera; `health` is that camera's part of `Health.snapshot()` (empty before its first frame)."""
    width, height = int(health.get("width") or 0), int(health.get("height") or 0)
    return InventoryCamera(id=cam.id, name=cam.name or cam.id, **_where(cam.location),
                           state=str(health.get("state", "connecting")), tampered=tampered,
                           frame=FrameSize(width=width, height=height) if width and height else None,
                           zones=shapes(zones))


def point_entry(point: Point) -> InventoryPoint:
    return InventoryPoint(id=point.id, name=point.name or point.id, team=point.team, camera=point.camera,
                          **_where(point.location))


def inventory(cfg: AgentConfig, zones: Mapping[str, ZoneFile], health: Mapping[str, Any],
              tampered: set[str], points: Iterable[Point]) -> dict[str, Any]:
    """The message without its `time`: equal inventories compare equal."""
    cams = [camera_entry(c, zones.get(c.id) or ZoneFile(), health.get(c.id) or {}, c.id in tampered)
            for c in cfg.cameras if c.enabled]
    msg = Inventory(site=cfg.site.id, device=cfg.device.id, cameras=cams,
                    patrol_points=[point_entry(p) for p in sorted(points, key=lambda p: p.id)])
    return msg.model_dump(mode="json", by_alias=True, exclude={"time"}, exclude_none=True)


def inventory_json_schema() -> dict[str, Any]:
    return Inventory.model_json_schema(by_alias=True)


class InventoryWatch:
    """Publishes the inventory of one running agent whenever it changes."""

    def __init__(self, publish: Publish, clock: Clock) -> None:
        self.publish = publish
        self.clock = clock
        self._sent: str | None = None

    def step(self, agent: Any, zones: Mapping[str, ZoneFile]) -> bool:
        """`agent` is the running `LiveAgent`; True when a new inventory went out."""
        tampered = {cid for cid, rt in agent.cameras.items() if rt.pipeline.tamper.open is not None}
        points = agent.patrol.watch.points.values() if agent.patrol is not None else ()
        body = inventory(agent.cfg, zones, agent.health.snapshot()["cameras"], tampered, points)
        key = json.dumps(body, sort_keys=True)
        if key == self._sent:
            return False
        self.publish({**body, "time": iso_utc(self.clock.now())})
        self._sent = key
        return True
