"""Patrol badges a fixed camera can read: six ArUco markers on a card, signed per site.

Why this code: the cameras watch patrol points from a pole, so a badge held up at the point is
small in the picture. A QR code needs about 80 px across to read (29x29 modules, about 2.7 px per
module), while an ArUco DICT_4X4_250 marker (6x6 cells with its border) reads at 12-32 px and
OpenCV finds it without extra weights (see /work/shared/notes/infrastructure.md). One marker
carries only an id 0-249, so a badge is a 3x2 grid of markers read as six base-250 digits
(about 48 bits): two digits are the badge number (0-62499), four are a signature
(about 32 bits). The signature is HMAC-SHA256 keyed by the site's badge secret over the site id
and the badge number, so a badge printed for (or photocopied from) another site, or a badge
number with a made-up signature, fails. Each marker carries its own orientation, so the reading
order is found from the markers themselves at any rotation of the card.

A badge can be copied within its own site (a camera cannot tell paper from paper); revoking it
in the roster (`valid_until`) is the remedy.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..errors import EdgeAgentError

BASE = 250  # DICT_4X4_250
COLS, ROWS = 3, 2
SIG_DIGITS = 4
MAX_BADGE = BASE * BASE - 1  # two digits
CELLS = 6  # a 4x4 marker with its one-cell black border
GAP = 1  # white cells between markers and around the grid: 1 reads from 48 px wide, 2 needs 56+
DOMAIN = "edge-agent-badge/1"


def signature(secret: bytes, site: str, badge: int) -> int:
    """The badge's signature digits as one number below 250**4, keyed by the site's secret."""
    mac = hmac.new(secret, f"{DOMAIN}|{site}|{badge}".encode(), hashlib.sha256).digest()
    return int.from_bytes(mac[:8], "big") % BASE**SIG_DIGITS


def encode(secret: bytes, site: str, badge: int) -> list[int]:
    """The six marker ids, row by row: badge number (2 digits), then signature (4 digits)."""
    if not 0 <= badge <= MAX_BADGE:
        raise ValueError(f"badge number {badge} is outside 0..{MAX_BADGE}")
    value = badge * BASE**SIG_DIGITS + signature(secret, site, badge)
    digits = []
    for _ in range(COLS * ROWS):
        value, d = divmod(value, BASE)
        digits.append(d)
    return digits[::-1]


def split(ids: Sequence[int]) -> tuple[int, int]:
    """(badge number, signature) from the six marker ids in reading order."""
    value = 0
    for d in ids:
        value = value * BASE + int(d)
    return divmod(value, BASE**SIG_DIGITS)


def verify(secret: bytes, site: str, ids: Sequence[int]) -> tuple[int, bool]:
    """(badge number, signature ok) for six marker ids read in order."""
    badge, sig = split(ids)
    return badge, hmac.compare_digest(sig.to_bytes(4, "big"), signature(secret, site, badge).to_bytes(4, "big"))


_DICT = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_250)


def render(ids: Sequence[int], cell_px: int = 20) -> np.ndarray:
    """The marker grid on white, `cell_px` pixels per marker cell (greyscale uint8)."""
    w = (COLS * CELLS + (COLS + 1) * GAP) * cell_px
    h = (ROWS * CELLS + (ROWS + 1) * GAP) * cell_px
    card = np.full((h, w), 255, np.uint8)
    side = CELLS * cell_px
    for k, mid in enumerate(ids):
        r, c = divmod(k, COLS)
        x = (GAP + c * (CELLS + GAP)) * cell_px
        y = (GAP + r * (CELLS + GAP)) * cell_px
        card[y : y + side, x : x + side] = cv2.aruco.generateImageMarker(_DICT, int(mid), side, borderBits=1)
    return card


def printable(ids: Sequence[int], lines: Sequence[str], cell_px: int = 20) -> np.ndarray:
    """A badge to print: the marker grid with a caption under it (BGR)."""
    grid = cv2.cvtColor(render(ids, cell_px), cv2.COLOR_GRAY2BGR)
    line_h = 2 * cell_px
    out = np.full((grid.shape[0] + line_h * len(lines) + cell_px, grid.shape[1], 3), 255, np.uint8)
    out[: grid.shape[0]] = grid
    for i, text in enumerate(lines):
        y = grid.shape[0] + line_h * (i + 1) - cell_px // 2
        cv2.putText(out, text, (GAP * cell_px, y), cv2.FONT_HERSHEY_SIMPLEX, cell_px / 22, (0, 0, 0), 2)
    return out


# ---- reading --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reading:
    """One badge found in an image: its six marker ids in order and where it is (pixels)."""

    ids: tuple[int, ...]
    center: tuple[float, float]
    width_px: float  # the marker grid's width in the image, for reports


def _params() -> cv2.aruco.DetectorParameters:
    p = cv2.aruco.DetectorParameters()
    # Badges are small in a crop around a person; let markers down to 3% of the crop's perimeter in.
    p.minMarkerPerimeterRate = 0.02
    p.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_NONE  # ids only: no sub-pixel corners needed
    return p


class BadgeReader:
    """Find complete badges (six markers in a 3x2 grid) in a BGR or grey image."""

    def __init__(self, upscale_below_px: int = 400) -> None:
        self.detector = cv2.aruco.ArucoDetector(_DICT, _params())
        self.upscale_below_px = upscale_below_px

    def read(self, image: np.ndarray, offset: tuple[float, float] = (0.0, 0.0)) -> list[Reading]:
        """Badges in `image`; centers are shifted by `offset` (the crop's corner in the frame)."""
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        scale = 1.0
        if max(grey.shape[:2]) < self.upscale_below_px:
            # Small crops: ArUco's thresholding windows start at 3 px, too coarse for 2 px cells.
            scale = 2.0
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        corners, ids, _ = self.detector.detectMarkers(grey)
        if ids is None or len(ids) < COLS * ROWS:
            return []
        ids = np.asarray(ids).reshape(-1)
        quads = [np.asarray(c, np.float64).reshape(4, 2) / scale for c in corners]
        out = []
        for group in _groups(quads):
            reading = _order([quads[i] for i in group], [int(ids[i]) for i in group])
            if reading is not None:
                cx, cy = reading.center
                out.append(Reading(reading.ids, (cx + offset[0], cy + offset[1]), reading.width_px))
        return out


def _groups(quads: list[np.ndarray]) -> list[list[int]]:
    """Markers close to each other (union-find on centre distance), groups of exactly six."""
    n = len(quads)
    centers = np.array([q.mean(axis=0) for q in quads])
    sides = np.array([np.linalg.norm(q - np.roll(q, 1, axis=0), axis=1).mean() for q in quads])
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            # Neighbours sit (CELLS+GAP)/CELLS = 1.17 sides apart, diagonals 1.65: 2.3 links both.
            if np.linalg.norm(centers[i] - centers[j]) < 2.3 * max(sides[i], sides[j]):
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) == COLS * ROWS]


def _order(quads: list[np.ndarray], ids: list[int]) -> Reading | None:
    """Put six markers in reading order using their own orientation; None if not a 3x2 grid."""
    x_axis = np.mean([q[1] - q[0] for q in quads], axis=0)
    norm = np.linalg.norm(x_axis)
    if norm < 1e-6:
        return None
    x_axis /= norm
    y_axis = np.array([-x_axis[1], x_axis[0]])  # image y points down, so this is the card's down
    centers = np.array([q.mean(axis=0) for q in quads])
    u, v = centers @ x_axis, centers @ y_axis
    side = float(np.mean([np.linalg.norm(q[1] - q[0]) for q in quads]))
    rows = np.argsort(v)
    top, bottom = rows[:COLS], rows[COLS:]
    if v[bottom].min() - v[top].max() < 0.6 * side:  # not two clear rows
        return None
    order = [*top[np.argsort(u[top])], *bottom[np.argsort(u[bottom])]]
    center = centers.mean(axis=0)
    return Reading(tuple(ids[i] for i in order), (float(center[0]), float(center[1])), float(np.ptp(u) + side))


# ---- `edge-agent badge make` ----------------------------------------------------------------

def cli_badge(args: argparse.Namespace) -> int:
    """Write a printable PNG badge for one roster entry (by badge number or member name)."""
    from ..config.loader import load_config, resolve
    from .points import badge_secret, find_member, load_patrol

    config = load_config(args.config)
    patrol_path = args.patrol or (str(resolve(args.config, config.patrol)) if config.patrol else None)
    if not patrol_path:
        raise EdgeAgentError("no patrol file: pass --patrol or set `patrol:` in the config")
    patrol = load_patrol(patrol_path, config)
    entry = find_member(patrol, args.member)
    secret = badge_secret(patrol, Path(patrol_path))
    ids = encode(secret, config.site.id, entry.badge)
    caption = [f"{config.site.id}  badge {entry.badge}", f"{entry.member} ({entry.team})"]
    out = Path(args.out)
    if not cv2.imwrite(str(out), printable(ids, caption)):
        raise EdgeAgentError(f"cannot write {out} (a .png path in an existing folder?)")
    print(f"badge {entry.badge} for {entry.member} ({entry.team}), site {config.site.id}: {out}")
    return 0
