"""Patrol scenes: a patroller walks into a check-in area and holds up a badge (or does not).

Badges are drawn as a camera sees them: the printed marker grid shrunk to `badge_px` across
with area averaging, tilted a few degrees, blurred a little (lens, focus) and then H.264-encoded
at CRF 28 with the rest of the frame. The expected events follow from what each scene shows,
and the points file, the site and the badge secret are written beside the clips.

    patrol_checkin     valid badge of this site, 70 px        -> one patrol_checkin (member)
    patrol_foreign     badge of another site, 70 px           -> patrol_badge_rejected, no check-in
    patrol_presence    no badge, lingers 13 s                 -> patrol_presence, no check-in
    patrol_small       valid badge at 30 px (too small), 13 s -> no check-in, patrol_presence
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from .render import Camera, Encoder, Sprites, composite, load_background
from .scenes import STANDING, WALK_CYCLE, STEPS_PER_S, _interp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from edge_agent.patrol.badge import encode, render as render_grid  # noqa: E402

SITE = "footage-site"
SECRET = "footage-badge-secret"
OTHER_SITE, OTHER_SECRET = "other-site", "other-site-secret"
CAMERA = "patrol-cam"
START = "2026-06-01T08:00:00Z"  # 10:00 local in Europe/Amsterdam: inside the 06:00-22:00 window
TIMEZONE = "Europe/Amsterdam"
AREA = [[0.30, 0.72], [0.70, 0.72], [0.70, 1.0], [0.30, 1.0]]  # the ground around the patrol post
MEMBER = {"badge": 1011, "team": "T01", "member": "A. Jansen", "valid_until": "2027-12-31"}
PERSON_H = 0.62  # about 220 px on a 360 px frame
DETECT_FPS = 5.0


@dataclass
class PatrolScene:
    name: str
    badge: tuple[str, str, int] | None  # (site, secret, badge number) printed on the card
    badge_px: int  # marker grid width in pixels at 640x360
    stand: tuple[float, float]  # stands in the area from .. to (media s)
    show: tuple[float, float]  # holds the badge up from .. to
    duration: float
    expect: dict[str, Any]
    seed: int


def scenes() -> dict[str, PatrolScene]:
    own = (SITE, SECRET, MEMBER["badge"])
    out = [
        PatrolScene("patrol_checkin", own, 70, (4.0, 10.0), (5.0, 9.0), 14.0,
                    {"patrol_checkin": 1, "patrol_badge_rejected": 0, "patrol_presence": 0,
                     "member": MEMBER["member"], "badge": MEMBER["badge"]}, seed=301),
        PatrolScene("patrol_foreign", (OTHER_SITE, OTHER_SECRET, MEMBER["badge"]), 70, (4.0, 10.0), (5.0, 9.0), 14.0,
                    {"patrol_checkin": 0, "patrol_badge_rejected": 1, "patrol_presence": 0,
                     "reason": "bad_signature"}, seed=302),
        PatrolScene("patrol_presence", None, 0, (4.0, 17.0), (0.0, 0.0), 21.0,
                    {"patrol_checkin": 0, "patrol_badge_rejected": 0, "patrol_presence": 1}, seed=303),
        PatrolScene("patrol_small", own, 30, (4.0, 17.0), (5.0, 16.0), 21.0,
                    {"patrol_checkin": 0, "patrol_badge_rejected": 0, "patrol_presence": 1}, seed=304),
    ]
    return {s.name: s for s in out}


NAMES = list(scenes())


def _keys(scene: PatrolScene) -> list[tuple[float, float, float, float]]:
    t_in, t_out = scene.stand
    y = 0.93
    return [(0.0, -0.08, y, PERSON_H), (t_in, 0.50, y, PERSON_H), (t_out, 0.50, y, PERSON_H),
            (scene.duration, 1.10, y, PERSON_H)]


def _card(scene: PatrolScene) -> np.ndarray | None:
    """The badge as the camera sees it: premultiplied BGRA float, tilted, blurred, `badge_px` wide."""
    if scene.badge is None:
        return None
    site, secret, number = scene.badge
    grid = render_grid(encode(secret.encode(), site, number), cell_px=20)
    h = round(grid.shape[0] * scene.badge_px / grid.shape[1])
    small = cv2.resize(grid, (scene.badge_px, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    pad = max(4, scene.badge_px // 6)
    bgr = cv2.copyMakeBorder(np.dstack([small] * 3), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    alpha = cv2.copyMakeBorder(np.ones_like(small), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    m = cv2.getRotationMatrix2D((bgr.shape[1] / 2, bgr.shape[0] / 2), 6.0, 1.0)  # held a little crooked
    size = (bgr.shape[1], bgr.shape[0])
    bgr = cv2.warpAffine(bgr, m, size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(alpha, m, size, flags=cv2.INTER_LINEAR)
    rgba = cv2.GaussianBlur(np.dstack([bgr * alpha[:, :, None], alpha]), (0, 0), 0.6)  # premultiplied
    return rgba.astype(np.float32)


def _frames(scene: PatrolScene, media: Path, width: int, height: int, fps: int):
    sprites = Sprites(media)
    bg = load_background(media / "backgrounds" / "train-tracks1.jpg", width, height, 1.0)
    cam = Camera(scene.seed, width, 1.5, 1.0)
    card = _card(scene)
    keys = _keys(scene)
    for i in range(round(scene.duration * fps)):
        t = i / fps
        frame = bg.copy()
        dx, dy = cam.next_offset()
        p = _interp(keys, t)
        shown, inside = False, False
        if p is not None:
            x, y, hh, vx = p
            inside = AREA[0][0] <= x <= AREA[1][0] and AREA[0][1] <= y <= AREA[2][1]  # feet in the area
            sprite = STANDING if vx == 0.0 else WALK_CYCLE[int(t * STEPS_PER_S) % 6]
            hpx = max(2, round(hh * height))
            spr = sprites.scaled(sprite, hpx, vx < 0)
            left, top = round(x * width - spr.shape[1] / 2), round(y * height) - hpx
            composite(frame, spr, left, top, 1.0)
            if card is not None and scene.show[0] <= t < scene.show[1]:
                scale = width / 640  # badge_px is at 640 px wide
                c = card if scale == 1 else cv2.resize(card, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                cx, cy = x * width + 0.12 * hpx, top + 0.42 * hpx  # held in front of the chest
                composite(frame, c, round(cx - c.shape[1] / 2), round(cy - c.shape[0] / 2), 1.0)
                shown = True
        yield cam.expose(frame, dx, dy), shown, inside


def points_file() -> dict[str, Any]:
    return {
        "badge_secret": SECRET,  # test footage only: a real site keeps it in badge_secret_env/_file
        "defaults": {"due": {"interval": "4h", "window": "06:00-22:00"}, "presence_s": 10, "rearm_s": 600},
        "teams": [{"id": "T01", "name": "Patrol team 1"}],
        "points": [{"id": "PP001", "name": "Footage patrol post", "camera": CAMERA, "area": AREA, "team": "T01"}],
        "roster": [MEMBER, {"badge": 1012, "team": "T01", "member": "B. de Vries", "valid_until": "2025-06-30"}],
    }


def render(name: str, media: Path, out: Path, size: tuple[int, int] | None, fps: int,
           dump_yaml: Callable[[Path, dict[str, Any], str], None]) -> None:
    """Render one patrol clip with its expected events (and the shared points file)."""
    scene = scenes()[name]
    width, height = size or (640, 360)
    path = out / f"{name}.mp4"
    enc = Encoder(path, width, height, fps, 28)
    shown, inside = [], []
    for i, (img, on, feet_in) in enumerate(_frames(scene, media, width, height, fps)):
        enc.write(img)
        if on:
            shown.append(i / fps)
        if feet_in:
            inside.append(i / fps)
    enc.close()
    dump_yaml(out / "patrol_points.yaml", points_file(),
              "Patrol points of the patrol_*.mp4 clips, written by scripts/make_footage.py")
    expected = {
        "clip": path.name, "points": "patrol_points.yaml", "camera": CAMERA, "site": SITE,
        "timezone": TIMEZONE, "start": START, "fps": DETECT_FPS,
        "video": {"width": width, "height": height, "fps": fps, "frames": round(scene.duration * fps)},
        "expect": scene.expect,
        "truth": {"badge_px": round(scene.badge_px * width / 640) if scene.badge else None,
                  "badge_site": scene.badge[0] if scene.badge else None,
                  "badge_shown": [shown[0], shown[-1]] if shown else None,
                  "in_area": [inside[0], inside[-1]], "standing": list(scene.stand)},
    }
    dump_yaml(out / f"{name}.expected.yaml", expected,
              "Expected patrol events, from what scripts/footage/patrol.py drew")
    print(f"{name}: {expected['video']['frames']} frames {width}x{height}@{fps} "
          f"{path.stat().st_size / 1024:.0f} KiB; expect {scene.expect}")
