"""Draw zones over a picture: `edge-agent zones render ZONES --image SRC --out PNG`, and `draw_zones`.

A technician checks a zone file by looking at it over the camera's own view: each zone is filled
translucently in its kind's colour and outlined, labelled with name, kind and schedule; exclusions
are hatched white; masks are hatched black; lines are magenta with an arrow across their middle
pointing the way a counted crossing goes (both ways for `both`); disabled zones and lines are
dashed grey without fill; the detector's tiles (sliced inference) are thin white rectangles. The
alarms stage reuses `draw_zones` for the outlines on snapshots.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from ..errors import EdgeAgentError, SourceError
from ..redact import redact_text, redact_url
from .loader import load_zones
from .models import Line, Point, Zone, ZoneFile

# BGR, chosen to stay apart from each other and from sky, water and grass.
KIND_COLORS: dict[str, tuple[int, int, int]] = {
    "rail": (0, 140, 255),  # orange
    "water": (255, 110, 0),  # blue
    "shore": (0, 220, 255),  # yellow
    "restricted": (40, 0, 230),  # red
}
DISABLED_COLOR = (160, 160, 160)
EXCLUDE_COLOR = (255, 255, 255)
MASK_COLOR = (0, 0, 0)
LINE_COLOR = (255, 0, 255)  # magenta: no zone kind, sky, water or grass has it
TILE_COLOR = (255, 255, 255)
FILL_ALPHA = 0.35  # share of the kind's colour inside a zone; the rest is the picture


def _pixels(points: Sequence[Point], width: int, height: int) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2) * (width, height)
    return np.clip(np.rint(pts), 0, (width - 1, height - 1)).astype(np.int32)


def _dashed(img: np.ndarray, pts: np.ndarray, color: tuple[int, int, int], thickness: int, dash: int) -> None:
    for a, b in zip(pts, np.roll(pts, -1, axis=0)):
        length = float(np.hypot(*(b - a)))
        steps = max(1, int(length // dash))
        for k in range(0, steps, 2):
            p = a + (b - a) * (k / steps)
            q = a + (b - a) * (min(k + 1, steps) / steps)
            cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q), color, thickness, cv2.LINE_AA)


def _exclusion(img: np.ndarray, original: np.ndarray, pts: np.ndarray, thick: int,
               color: tuple[int, int, int] = EXCLUDE_COLOR) -> None:
    """Nothing counts here: show the picture without zone fill, hatched, outlined (work in the box only)."""
    x, y, w, h = cv2.boundingRect(pts)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [pts - (x, y)], 255)
    hatched = original[y:y + h, x:x + w].copy()
    spacing = max(6, thick * 6)
    for c in range(-h, w, spacing):
        cv2.line(hatched, (c, 0), (c + h, h), color, max(1, spacing // 6), cv2.LINE_AA)
    np.copyto(img[y:y + h, x:x + w], hatched, where=mask[..., None] > 0)
    cv2.polylines(img, [pts], True, color, thick, cv2.LINE_AA)


def _label(zone: Zone | Line) -> str:
    text = f"{zone.name} [{zone.kind if isinstance(zone, Zone) else 'line ' + zone.direction}]"
    if zone.schedule:
        text += " " + ",".join(zone.schedule)
    if not zone.enabled:
        text += " (disabled)"
    return text.encode("ascii", "replace").decode()  # Hershey fonts are ASCII only


def _put_label(img: np.ndarray, text: str, pts: np.ndarray, color: tuple[int, int, int], scale: float) -> None:
    h, w = img.shape[:2]
    thick = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x, y = pts[np.argmin(pts[:, 1])]  # the topmost vertex, so the label sits on the zone's upper edge
    x = int(min(max(0, x - tw // 2), max(0, w - tw - 4)))
    y = int(min(max(th + 4, y - 4), h - base - 2))
    cv2.rectangle(img, (x, y - th - 4), (x + tw + 4, y + base), (0, 0, 0), -1)
    cv2.putText(img, text, (x + 2, y - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)


def _line(img: np.ndarray, line: Line, thick: int, scale: float | None) -> None:
    """The segment, and an arrow across its middle towards the side a counted crossing ends on."""
    h, w = img.shape[:2]
    a, b = _pixels(line.points, w, h).astype(np.float64)
    color = LINE_COLOR if line.enabled else DISABLED_COLOR
    if line.enabled:
        cv2.line(img, tuple(int(v) for v in a), tuple(int(v) for v in b), color, thick * 2, cv2.LINE_AA)
    else:
        _dashed(img, np.array([a, b], np.int32), color, thick * 2, dash=max(8, thick * 8))
    d = b - a
    right = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-9)  # y down: A->B's right side
    mid, reach = (a + b) / 2, max(12.0, min(w, h) * 0.06)
    sides = {"in": [1.0], "out": [-1.0], "both": [1.0, -1.0]}[line.direction]
    for sign in sides:
        tip = mid + right * reach * sign
        cv2.arrowedLine(img, tuple(int(v) for v in mid), tuple(int(v) for v in tip), color, thick * 2,
                        cv2.LINE_AA, tipLength=0.35)
    if scale is not None:
        _put_label(img, _label(line), np.array([a, b], np.int32), color, scale)


def draw_zones(image_bgr: np.ndarray, zones: Sequence[Zone] | ZoneFile, labels: bool = True) -> np.ndarray:
    """A copy of `image_bgr` with every zone drawn (fill, exclusions, outline, label); given a whole
    zone file, its masks and lines too."""
    rules = zones if isinstance(zones, ZoneFile) else ZoneFile(zones=list(zones))
    zones = rules.zones
    img = image_bgr.copy()
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    h, w = img.shape[:2]
    thick = max(1, round(min(w, h) / 300))
    fill = img.copy()
    for zone in zones:
        if zone.enabled:
            cv2.fillPoly(fill, [_pixels(zone.polygon, w, h)], KIND_COLORS[zone.kind])
    img = cv2.addWeighted(fill, FILL_ALPHA, img, 1 - FILL_ALPHA, 0)
    original = image_bgr if image_bgr.ndim == 3 else cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
    for zone in zones:
        for points in zone.exclude:
            _exclusion(img, original, _pixels(points, w, h), thick)
    for points in rules.masks:
        _exclusion(img, original, _pixels(points, w, h), thick, MASK_COLOR)
    for zone in zones:
        pts = _pixels(zone.polygon, w, h)
        if zone.enabled:
            cv2.polylines(img, [pts], True, KIND_COLORS[zone.kind], thick * 2, cv2.LINE_AA)
        else:
            _dashed(img, pts, DISABLED_COLOR, thick * 2, dash=max(8, thick * 8))
    scale = max(0.4, min(w, h) / 900)
    if labels:
        for zone in zones:
            color = KIND_COLORS[zone.kind] if zone.enabled else DISABLED_COLOR
            _put_label(img, _label(zone), _pixels(zone.polygon, w, h), color, scale)
    for line in rules.lines:
        _line(img, line, thick, scale if labels else None)
    return img


def draw_tiles(img: np.ndarray, tiles: Sequence[tuple[int, int, int, int]]) -> None:
    """The detector's tiles (pixel boxes), each outlined and numbered in its corner, in place."""
    thick = max(1, round(min(img.shape[:2]) / 500))
    for i, (x1, y1, x2, y2) in enumerate(tiles, 1):
        inset = 2 * thick * (i % 2)  # neighbours overlap: shift every other outline to tell them apart
        cv2.rectangle(img, (x1 + inset, y1 + inset), (x2 - 1 - inset, y2 - 1 - inset), TILE_COLOR, thick, cv2.LINE_AA)
        cv2.putText(img, str(i), (x1 + inset + 4, y2 - inset - 6), cv2.FONT_HERSHEY_SIMPLEX,
                    max(0.4, min(img.shape[:2]) / 1200), TILE_COLOR, thick, cv2.LINE_AA)


TilesFor = Callable[[ZoneFile, tuple[int, int]], Sequence[tuple[int, int, int, int]]]


def first_frame(source: str) -> np.ndarray:
    """The first picture of an image file, a video file or a stream URL, as BGR."""
    if "://" not in source:
        if not Path(source).is_file():
            raise SourceError(f"{source}: file not found")
        img = cv2.imread(source, cv2.IMREAD_COLOR)
        if img is not None:
            return img
    import av  # only videos and streams need PyAV

    options = {"rtsp_transport": "tcp"} if source.startswith(("rtsp://", "rtsps://")) else {}
    try:
        with av.open(source, options=options, timeout=(10.0, 10.0)) as container:
            if not container.streams.video:
                raise SourceError(f"{redact_url(source)}: no video stream")
            for frame in container.decode(video=0):
                return frame.to_ndarray(format="bgr24")
    except (av.error.FFmpegError, OSError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)  # strerror leaves out the URL PyAV appends
        # from None on purpose: the cause's own text may carry a password; this message is redacted
        raise SourceError(f"{redact_url(source)}: cannot read a frame: {redact_text(why)}") from None
    raise SourceError(f"{redact_url(source)}: the video has no frames")


def camera_source(config_path: str, camera_id: str, zones_file: str | None) -> tuple[str, str]:
    """(zone file, URL to open) of one camera of a config; the password is put in only here."""
    from .loader import load_config
    from .secrets import stream_urls

    cfg = load_config(config_path)
    cam = next((c for c in cfg.cameras if c.id == camera_id), None)
    if cam is None:
        raise EdgeAgentError(f"{config_path}: no camera {camera_id!r}; cameras: "
                             f"{', '.join(c.id for c in cfg.cameras) or '-'}")
    return zones_file or str(cam.zones), stream_urls(cam)[0]


def cli_zones(args: argparse.Namespace, tiles_for: TilesFor | None = None) -> int:
    """`edge-agent zones render ZONES --image SRC --out PNG`; `tiles_for(zones, (w, h))` gives the
    detector's tiles to draw too."""
    if args.zones_command != "render":
        raise EdgeAgentError(f"unknown zones command {args.zones_command!r}")
    zones_file, source, shown = args.zones, args.image, redact_url(args.image or "")
    if getattr(args, "camera", None):
        zones_file, source = camera_source(args.config, args.camera, zones_file)
        shown = f"camera {args.camera}"
    if not zones_file:
        raise EdgeAgentError("name the zone file (or give --camera to use that camera's)")
    zone_file = load_zones(zones_file)  # labels unchecked: drawing does not need the model
    image = first_frame(source)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    drawn = draw_zones(image, zone_file)
    tiles = list(tiles_for(zone_file, (image.shape[1], image.shape[0]))) if tiles_for else []
    draw_tiles(drawn, tiles)
    if not cv2.imwrite(str(out), drawn):
        raise EdgeAgentError(f"{out}: cannot write the picture (use a .png or .jpg name in a writable folder)")
    h, w = drawn.shape[:2]
    print(f"{out}: {len(zone_file.zones)} zone(s), {len(zone_file.lines)} line(s), {len(zone_file.masks)} mask(s), "
          f"{len(tiles)} tile(s) drawn over a {w}x{h} frame of {shown}")
    return 0
