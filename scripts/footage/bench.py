"""The live benchmark's cameras (scripts/bench_live.py): 720p25 H.264 clips of a few seconds, looped
by the RTSP server, drawn from the committed stills in tests/data (read as data, never imported).

Quiet cameras are what a site really has, not only still pictures: a still scene with sensor noise,
water that never stops moving, rain, and a still scene from a camera with a 4 s GOP (field cameras
use 2-4 s or dynamic GOPs). The busy camera is a person walking through the benchmark's zone; when
the person's feet enter it is known from the drawing (`BUSY_ENTRY_S`), the ground truth the
overload row's alarm delays are measured from.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import av

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


# An empty hard case cut from the water camera above, where it misled the live agent: NanoDet calls
# the wave-broken reflections of the trunks at the picture's bottom edge "person" at 0.2-0.37 in
# place for seconds on end, and their boxes flicker between one trunk and two (third 2026-12-02
# session). Drawn as the bench streams it (CRF 23), then the cut re-encoded as a recorder would.
REFLECTIONS = "lake_reflections_empty"
REFLECTIONS_CUT_S = (14.0, 24.0)
REFLECTIONS_ZONE = {"name": "waterfront", "kind": "shore", "polygon": ZONE["polygon"], "labels": ["person"],
                    "dwell_s": 1.0}


def render_reflections(out: Path, dump_yaml: Callable[[Path, dict[str, Any], str], None]) -> None:
    """The clip, its zones (the bench's zone, to the picture's edge) and its expectation: no alarm."""
    t0, t1 = REFLECTIONS_CUT_S
    spec, gop = scene("water")
    spec = replace(spec, duration=t1)
    streamed = out / f"{REFLECTIONS}.streamed.mp4"
    enc = Encoder(streamed, W, H, FPS, crf=23, gop=gop, preset="veryfast")
    for img, _truth in render_frames(spec, Sprites(DATA), W, H, FPS):
        enc.write(img)
    enc.close()
    clip = out / f"{REFLECTIONS}.mp4"
    cut = Encoder(clip, W, H, FPS, crf=20, gop=gop, preset="veryfast")
    with av.open(str(streamed)) as src:
        for i, frame in enumerate(src.decode(video=0)):
            if t0 - 1e-6 <= i / FPS < t1 - 1e-6:
                cut.write(frame.to_ndarray(format="bgr24"))
    frames = cut.count
    cut.close()
    streamed.unlink()
    kbps = round(clip.stat().st_size * 8 / 1000 / (t1 - t0))
    dump_yaml(out / "zones" / f"{REFLECTIONS}.yaml", {"zones": [REFLECTIONS_ZONE]},
              f"Zones of {REFLECTIONS}.mp4, written by scripts/make_footage.py")
    expect = [{"type": "intrusion", "zone": "waterfront", "label": "person", "count": [0, 0]}]
    dump_yaml(out / f"{REFLECTIONS}.expected.yaml",
              {"clip": f"{REFLECTIONS}.mp4", "zones": f"zones/{REFLECTIONS}.yaml", "fps": 5.0,
               "video": {"width": W, "height": H, "fps": FPS, "frames": frames, "bitrate_kbps": kbps},
               "expect": expect, "only_listed": True, "truth": {"objects": {}}},
              "Expected alarms: nothing was drawn but water (scripts/footage/bench.py)")
    print(f"{REFLECTIONS}: {frames} frames {W}x{H}@{FPS} {clip.stat().st_size / 1024:.0f} KiB, {kbps} kb/s")
