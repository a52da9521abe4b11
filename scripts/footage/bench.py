"""The live benchmark's cameras (scripts/bench_live.py): 720p25 H.264 clips of a few seconds, looped
by the RTSP server, drawn from the committed stills in tests/data (read as data, never imported).

Quiet cameras are what a site really has, not only still pictures: a still scene with sensor noise,
water that never stops moving, rain, and a still scene from a camera with a 4 s GOP (field cameras
use 2-4 s or dynamic GOPs). The busy camera is a person walking through the benchmark's zone; when
the person's feet enter it is known from the drawing (`BUSY_ENTRY_S`), the ground truth the
overload row's alarm delays are measured from.
"""

from __future__ import annotations

from pathlib import Path

from .effects import rain, water
from .hard import LAKE
from .render import Actor, Encoder, Pose, SceneRender, Sprites, render_frames

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
W, H, FPS = 1280, 720, 25
SECONDS = 12.0
# The zone every benchmark camera has (frame fractions) and the walk through it.
ZONE = {"name": "track", "kind": "rail", "polygon": [[0.3, 0.4], [0.7, 0.4], [0.7, 1.0], [0.3, 1.0]],
        "labels": ["person"], "dwell_s": 1.0, "cooldown_s": 5.0}
WALK = (0.05, 0.95, 10.0)  # anchor x from, to, over seconds (then 2 s empty before the loop)
FEET_Y, PERSON_H = 0.92, 0.45
BUSY_ENTRY_S = (ZONE["polygon"][0][0] - WALK[0]) / (WALK[1] - WALK[0]) * WALK[2]
QUIET_KINDS = ("still", "water", "rain", "gop4")
TRACKS, LAKE_PHOTO = "backgrounds/train-tracks1.jpg", "backgrounds/lake.jpg"


def walker() -> Actor:
    def pose(t: float) -> Pose | None:
        if t > WALK[2]:
            return None
        x = WALK[0] + (WALK[1] - WALK[0]) * t / WALK[2]
        return Pose(f"cutouts/dan{int(t * 2) % 6 + 1}.gif", x, FEET_Y, PERSON_H)

    return Actor("person-1", "person", pose)


def scene(kind: str) -> tuple[SceneRender, int]:
    """(what to draw, GOP in frames) for one kind of camera."""
    noise, gop = 1.5, FPS
    if kind == "busy":
        return SceneRender(DATA / TRACKS, 0.5, SECONDS, [walker()], seed=1, noise=noise, jitter_px=0.0), gop
    if kind == "water":
        return SceneRender(DATA / LAKE_PHOTO, 1.0, SECONDS, [], seed=2, noise=noise, jitter_px=0.0,
                           effect=water(LAKE, 0.06)), gop
    if kind == "rain":
        return SceneRender(DATA / TRACKS, 0.5, SECONDS, [], seed=3, noise=noise, jitter_px=0.0,
                           effect=rain(260, 38)), gop
    if kind == "gop4":
        gop = 4 * FPS
    elif kind != "still":
        raise ValueError(f"unknown camera kind {kind!r}; known: busy, {', '.join(QUIET_KINDS)}")
    return SceneRender(DATA / TRACKS, 0.5, SECONDS, [], seed=4, noise=noise, jitter_px=0.0), gop


def render_clips(folder: Path, kinds: tuple[str, ...] = ("busy", *QUIET_KINDS)) -> dict[str, Path]:
    """kind -> clip path; rendered once into `folder` (about a minute per clip on a busy box)."""
    out = {}
    for kind in kinds:
        path = out[kind] = folder / f"{kind}.mp4"
        if path.exists():
            continue
        spec, gop = scene(kind)
        enc = Encoder(folder / f"{kind}.part.mp4", W, H, FPS, crf=23, gop=gop, preset="veryfast")
        for img, _truth in render_frames(spec, Sprites(DATA), W, H, FPS):
            enc.write(img)
        enc.close()
        (folder / f"{kind}.part.mp4").rename(path)
    return out
