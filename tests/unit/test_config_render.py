"""Zones drawn over a picture: each zone's inside takes its kind's colour, exclusions do not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from edge_agent.config.models import Zone
from edge_agent.config.render import DISABLED_COLOR, FILL_ALPHA, KIND_COLORS, draw_zones, first_frame

ROOT = Path(__file__).resolve().parents[2]
GREY = (90, 90, 90)
ZONES = """\
zones:
  - name: left-water
    kind: water
    polygon: [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
    labels: [person]
    exclude:
      - [[0.05, 0.6], [0.2, 0.6], [0.2, 0.9], [0.05, 0.9]]
  - name: right-rail
    kind: rail
    polygon: [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]
    labels: [person]
    schedule: ["22:00-05:00"]
"""


def blended(kind: str) -> np.ndarray:
    return np.array(KIND_COLORS[kind]) * FILL_ALPHA + np.array(GREY) * (1 - FILL_ALPHA)


def grey_image(h: int = 200, w: int = 400) -> np.ndarray:
    return np.full((h, w, 3), GREY, np.uint8)


def zone(name: str, kind: str, poly: list, **kw: object) -> Zone:
    return Zone(name=name, kind=kind, polygon=poly, labels=["person"], **kw)


@pytest.mark.parametrize("kind", sorted(KIND_COLORS))
def test_inside_of_a_zone_has_its_kinds_colour(kind: str) -> None:
    img = draw_zones(grey_image(), [zone("z", kind, [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)])],
                     labels=False)
    assert np.abs(img[100, 200].astype(float) - blended(kind)).max() <= 2
    assert tuple(img[10, 10]) == GREY  # outside untouched


def test_disabled_zone_is_outlined_grey_without_fill() -> None:
    z = zone("off", "restricted", [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)], enabled=False)
    img = draw_zones(grey_image(), [z], labels=False)
    assert tuple(img[100, 200]) == GREY
    edge = img[48:53, 100:300].reshape(-1, 3)  # along the top edge at y = 50
    assert (np.abs(edge.astype(int) - DISABLED_COLOR).max(axis=1) <= 10).any()
    assert (np.abs(edge.astype(int) - GREY).max(axis=1) <= 10).any()  # dashed: gaps show the picture


def test_render_command_writes_a_png_with_kind_colours_and_a_clear_exclusion(tmp_path: Path) -> None:
    src = tmp_path / "frame.png"
    cv2.imwrite(str(src), grey_image())
    zones = tmp_path / "zones.yaml"
    zones.write_text(ZONES)
    out = tmp_path / "out" / "zones.png"
    res = subprocess.run([sys.executable, "-m", "edge_agent.cli", "zones", "render", str(zones), "--image", str(src),
                          "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    img = cv2.imread(str(out))
    assert img.shape == (200, 400, 3)
    assert np.abs(img[100, 100].astype(float) - blended("water")).max() <= 2
    assert np.abs(img[100, 300].astype(float) - blended("rail")).max() <= 2
    hatch = img[125:175, 25:75].reshape(-1, 3).astype(int)  # inside the exclusion
    assert not (np.abs(hatch - blended("water")).max(axis=1) <= 2).any()  # no zone fill there
    assert (hatch == GREY).all(axis=1).any() and (hatch.min(axis=1) > 200).any()  # picture + white hatching


def test_first_frame_of_a_video(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for value in (200, 20):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), value, np.uint8), format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    img = first_frame(str(path))
    assert img.shape == (48, 64, 3) and abs(int(img[24, 32, 1]) - 200) <= 6


@pytest.mark.integration
def test_render_over_a_real_rtsp_stream_with_credentials(rtsp_server, tmp_path: Path) -> None:
    srv = rtsp_server(patterns=["live"], user="viewer", password="Cam3raSecret")
    zones = tmp_path / "zones.yaml"
    zones.write_text(ZONES)
    out = tmp_path / "rtsp.png"
    res = subprocess.run([sys.executable, "-m", "edge_agent.cli", "zones", "render", str(zones),
                          "--image", srv.url("live"), "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert cv2.imread(str(out)).shape == (360, 640, 3)
    assert "rtsp://***@127.0.0.1" in res.stdout and "Cam3raSecret" not in res.stdout + res.stderr
    wrong = subprocess.run([sys.executable, "-m", "edge_agent.cli", "zones", "render", str(zones),
                            "--image", srv.url("live", password="WrongSecret9"), "--out", str(out)],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "cannot read a frame" in wrong.stderr
    assert "WrongSecret9" not in wrong.stderr and "Traceback" not in wrong.stderr


def test_lines_have_an_arrow_towards_the_counted_side_and_masks_are_hatched_black() -> None:
    from edge_agent.config.models import Line, ZoneFile
    from edge_agent.config.render import LINE_COLOR, MASK_COLOR

    def magenta(img: np.ndarray, x: int, y: int) -> bool:
        patch = img[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3).astype(int)
        return bool((np.abs(patch - LINE_COLOR).max(axis=1) <= 40).any())

    # drawn bottom to top at x = 200 on a 400x200 picture: its right is the picture's right
    up = [(0.5, 0.9), (0.5, 0.1)]
    masked = [(0.05, 0.1), (0.3, 0.1), (0.3, 0.8), (0.05, 0.8)]
    rules = ZoneFile(lines=[Line(name="gate", points=up, labels=["person"], direction="in")], masks=[masked])
    img = draw_zones(grey_image(), rules, labels=False)
    assert magenta(img, 200, 40) and magenta(img, 200, 160)  # the segment
    assert magenta(img, 215, 100) and not magenta(img, 185, 100)  # the arrow points right (12 px reach)
    out = draw_zones(grey_image(), rules.model_copy(update={"lines": [rules.lines[0].model_copy(
        update={"direction": "out"})]}), labels=False)
    assert magenta(out, 185, 100) and not magenta(out, 215, 100)
    inside = img[25:155, 25:115].reshape(-1, 3).astype(int)
    assert (np.abs(inside - MASK_COLOR).max(axis=1) <= 40).any()  # the hatching
    assert (np.abs(inside - GREY).max(axis=1) == 0).any()  # and the picture between it
