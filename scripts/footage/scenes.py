"""The synthetic scenes: backgrounds, actors' paths, zones, and how expectations follow from truth.

All geometry is in frame fractions and all times in media seconds, so one scene renders at any
size and frame rate. Each scene's zones are written next to the clip by make_footage.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .render import Actor, Pose

WALK_CYCLE = [f"people/dan{i}.gif" for i in range(1, 7)]
STANDING = "people/dan6.gif"  # the pose YOLOv3-tiny scores best standing on the track bed
STEPS_PER_S = 7.0  # walk-cycle images per second while moving

# Track bed of train-tracks1.jpg scaled to 16:9 and cut from the bottom: rails plus the ballast.
TRACK_BED = [[0.50, 0.40], [0.61, 0.40], [1.0, 0.78], [1.0, 1.0], [0.0, 1.0], [0.0, 0.96]]
# A stretch of the river in city-with-water.jpg that boats may not cross.
CHANNEL = [[0.30, 0.46], [0.72, 0.46], [0.72, 1.0], [0.30, 1.0]]
# The water along the bank of lake.jpg where boats must not moor.
NO_MOORING = [[0.02, 0.76], [0.98, 0.76], [0.98, 1.0], [0.02, 1.0]]

Key = tuple[float, float, float, float]  # (t, x, y, h): anchor and height at a time


def _interp(keys: list[Key], t: float) -> tuple[float, float, float, float] | None:
    """Linear interpolation between keys; returns (x, y, h, dx/dt) or None outside the keys."""
    if t < keys[0][0] or t > keys[-1][0]:
        return None
    for (t0, x0, y0, h0), (t1, x1, y1, h1) in zip(keys, keys[1:]):
        if t0 <= t <= t1:
            u = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
            vx = 0.0 if t1 == t0 else (x1 - x0) / (t1 - t0)
            vy = 0.0 if t1 == t0 else (y1 - y0) / (t1 - t0)
            speed = math.hypot(vx, vy)
            return x0 + u * (x1 - x0), y0 + u * (y1 - y0), h0 + u * (h1 - h0), vx if speed > 1e-6 else 0.0
    return None


def walker(name: str, keys: list[Key], steps_per_s: float = STEPS_PER_S) -> Actor:
    """A person on the dan1..dan6 walk cycle while moving, standing still between equal keys."""

    def pose(t: float) -> Pose | None:
        p = _interp(keys, t)
        if p is None:
            return None
        x, y, h, vx = p
        if vx == 0.0:
            return Pose(STANDING, x, y, h)
        return Pose(WALK_CYCLE[int(t * steps_per_s) % 6], x, y, h, flip=vx < 0)

    return Actor(name, "person", pose)


def vessel(name: str, sprite: str, keys: list[Key], bob: float = 0.004, period: float = 3.1) -> Actor:
    """A boat following keys, bobbing a little up and down (fraction of frame height)."""

    def pose(t: float) -> Pose | None:
        p = _interp(keys, t)
        if p is None:
            return None
        x, y, h, vx = p
        return Pose(sprite, x, y + bob * math.sin(2 * math.pi * t / period), h, flip=vx < 0)

    return Actor(name, "boat", pose)


def braking_keys(t_end: float, x0: float, x1: float, y: float, h: float, brake_s: float, n: int = 8) -> list[Key]:
    """Constant speed, then an even deceleration to a stop at x1 at t_end (sampled as keys)."""
    # distance = v*(t_end - brake_s) + v*brake_s/2
    v = (x1 - x0) / (t_end - brake_s / 2)
    t_brake = t_end - brake_s
    keys: list[Key] = [(0.0, x0, y, h), (t_brake, x0 + v * t_brake, y, h)]
    for i in range(1, n + 1):
        tau = brake_s * i / n
        keys.append((t_brake + tau, x0 + v * t_brake + v * tau - v * tau * tau / (2 * brake_s), y, h))
    return keys


@dataclass
class Scene:
    """One clip: how to draw it, its zones, and the expectation rules."""

    name: str
    background: str
    crop_y: float
    duration: float
    actors: list[Actor]
    zones: list[dict[str, Any]]
    seed: int
    gain: Callable[[float], float] = lambda t: 1.0
    noise: float = 1.5
    crf: int = 28
    detect_fps: float = 5.0
    facts: dict[str, Any] = field(default_factory=dict)  # nominal facts (e.g. stopped_at) for truth
    # Hard cases (scripts/footage/hard.py) fix their stream and its conditions:
    size: tuple[int, int] | None = None  # rendered at this size and rate whatever --size says
    fps: int | None = None
    bitrate_kbps: int | None = None  # a camera's constant bit rate instead of the CRF
    effect: Callable[..., Any] | None = None  # footage/effects.py
    foreground: list[tuple[float, float, float, float]] = field(default_factory=list)
    jitter_px: float = 1.0
    extra_alarms_allowed: int = 0  # id switches the expectation tolerates (a crowd)


def _rail_zone(**extra: Any) -> dict[str, Any]:
    zone = {"name": "track-bed", "kind": "rail", "polygon": TRACK_BED, "labels": ["person"], "dwell_s": 3.0}
    zone.update(extra)
    return zone


def _cloud(t: float) -> float:
    """Light dims by a quarter between 6 s and 9 s and comes back between 13 s and 16 s."""
    if t < 6 or t > 16:
        return 1.0
    if t < 9:
        return 1.0 - 0.25 * (t - 6) / 3
    if t < 13:
        return 0.75
    return 0.75 + 0.25 * (t - 13) / 3


TRACKS = "backgrounds/train-tracks1.jpg"
PERSON_H = 0.56  # about 200 px on a 360 px frame: YOLOv3-tiny scores the walker 0.6-0.95


def _rail_scenes() -> list[Scene]:
    h = PERSON_H
    return [
        Scene(
            "rail_intrusion", TRACKS, 1.0, 16.0,
            [walker("person-1", [(0.0, -0.08, 0.86, h), (8.5, 0.52, 0.86, h), (16.0, 0.52, 0.86, h)])],
            [_rail_zone()], seed=101,
        ),
        Scene(
            # Up the grass beside the left rail and back; the feet stay at least 0.07 outside.
            "rail_beside", TRACKS, 1.0, 18.0,
            [walker("person-1", [(0.0, -0.08, 0.68, h), (7.0, 0.34, 0.47, 0.42),
                                 (10.0, 0.34, 0.47, 0.42), (17.0, -0.08, 0.68, h)])],
            [_rail_zone()], seed=102,
        ),
        Scene(
            # Runs across the far end of the track bed in 1.5 s: shorter than the 3 s dwell.
            "rail_brief", TRACKS, 1.0, 14.0,
            [walker("person-1", [(0.0, -0.08, 0.50, 0.42), (6.6, 0.33, 0.50, 0.42), (8.95, 0.80, 0.50, 0.42),
                                 (13.5, 1.08, 0.50, 0.42)], steps_per_s=12.0)],
            [_rail_zone()], seed=106,
        ),
        Scene(
            # Two people walk in one after the other and stay, well apart: two alarms, two tracks.
            "rail_two_people", TRACKS, 1.0, 22.0,
            [walker("person-1", [(0.0, -0.08, 0.86, h), (10.0, 0.62, 0.86, h), (22.0, 0.62, 0.86, h)]),
             walker("person-2", [(6.0, -0.08, 0.88, h), (12.0, 0.30, 0.88, h), (22.0, 0.30, 0.88, h)])],
            [_rail_zone()], seed=107,
        ),
        Scene("rail_empty", TRACKS, 1.0, 20.0, [], [_rail_zone()], seed=103, gain=_cloud, noise=2.0),
    ]


def _water_scenes() -> list[Scene]:
    # The yacht, half the frame wide: the sail-boat cut-out scored under 0.2 everywhere.
    moored_keys = braking_keys(7.0, -0.26, 0.50, 0.93, 0.33, brake_s=1.5)
    moored_keys.append((24.0, 0.50, 0.93, 0.33))
    return [
        Scene(
            "boat_crossing", "backgrounds/city-with-water.jpg", 1.0, 24.0,
            [vessel("boat-1", "objects/yacht.gif", [(0.0, -0.27, 0.92, 0.36), (24.0, 1.27, 0.92, 0.36)])],
            [{"name": "channel", "kind": "water", "polygon": CHANNEL, "labels": ["boat"], "dwell_s": 2.0}],
            seed=104,
        ),
        Scene(
            "vessel_moored", "backgrounds/lake.jpg", 1.0, 24.0,
            [vessel("boat-1", "objects/yacht.gif", moored_keys)],
            [{"name": "no-mooring", "kind": "water", "polygon": NO_MOORING, "labels": ["boat"],
              "dwell_s": 1.0, "stationary_s": 8.0, "stationary_radius": 0.03}],
            seed=105, facts={"stopped_at": 7.0},
        ),
    ]


def scenes() -> dict[str, Scene]:
    """Every synthetic scene by name, in rendering order."""
    return {s.name: s for s in [*_rail_scenes(), *_water_scenes()]}
