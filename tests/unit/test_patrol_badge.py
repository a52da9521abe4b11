"""Signed ArUco badges: encode/verify, another site's badge fails, reading at camera sizes."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from edge_agent.cli import main
from edge_agent.patrol.badge import BadgeReader, encode, printable, render, verify

BG = Path(__file__).resolve().parents[1] / "data" / "person.jpg"


def test_round_trip_and_site_binding():
    ids = encode(b"site-a-secret", "site-a", 1234)
    assert len(ids) == 6 and all(0 <= i < 250 for i in ids)
    assert verify(b"site-a-secret", "site-a", ids) == (1234, True)
    # A badge of another site (other secret, or the same secret under another site id) fails.
    assert verify(b"site-b-secret", "site-a", ids)[1] is False
    assert verify(b"site-a-secret", "site-b", ids)[1] is False
    tampered = list(ids)
    tampered[1] = (tampered[1] + 1) % 250  # another badge number with the old signature
    assert verify(b"site-a-secret", "site-a", tampered)[1] is False


def test_badge_number_range():
    with pytest.raises(ValueError):
        encode(b"k", "s", 62500)


def _scene(width_px: int, angle: float = 0.0) -> np.ndarray:
    """A badge `width_px` across on a photo, blurred like a lens, through H.264 CRF 28."""
    bg = cv2.resize(cv2.imread(str(BG)), (640, 360))
    card = render(encode(b"k", "s", 4321), 20)
    h = round(card.shape[0] * width_px / card.shape[1])
    small = cv2.resize(card, (width_px, h), interpolation=cv2.INTER_AREA)
    pad = 6
    small = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255)
    m = cv2.getRotationMatrix2D((small.shape[1] / 2, small.shape[0] / 2), angle, 1.0)
    small = cv2.warpAffine(small, m, (small.shape[1], small.shape[0]), borderValue=255)
    small = cv2.GaussianBlur(small, (0, 0), 0.6)
    bg[150 : 150 + small.shape[0], 300 : 300 + small.shape[1]] = small[:, :, None]
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 640, 360, "yuv420p"
        s.options = {"crf": "28", "threads": "1"}
        for i in range(3):
            f = av.VideoFrame.from_ndarray(bg, format="bgr24")
            f.pts, f.time_base = i, Fraction(1, 10)
            out.mux(s.encode(f))
        out.mux(s.encode(None))
    buf.seek(0)
    with av.open(buf) as inp:
        frames = [f.to_ndarray(format="bgr24") for f in inp.decode(video=0)]
    return frames[-1]


@pytest.mark.parametrize("width_px,angle", [(56, 0.0), (70, 8.0), (100, -15.0), (70, 180.0)])
def test_reads_badges_a_camera_sees(width_px, angle):
    img = _scene(width_px, angle)
    crop = img[100:330, 230:450]  # a person's box around the badge, as PatrolMonitor crops
    found = BadgeReader().read(crop, offset=(230, 100))
    assert [verify(b"k", "s", r.ids) for r in found] == [(4321, True)]
    cx, cy = found[0].center
    assert 300 < cx < 300 + width_px + 12 and 150 < cy < 150 + width_px


@pytest.mark.parametrize("width_px", [24, 32])
def test_too_small_badge_gives_no_reading(width_px):
    img = _scene(width_px)
    assert BadgeReader().read(img[100:330, 230:450]) == []


def test_no_badge_no_reading():
    assert BadgeReader().read(cv2.imread(str(BG))) == []


def test_printable_and_cli_badge_make(tmp_path, monkeypatch, capsys):
    assert printable(encode(b"k", "s", 1), ["line"]).shape[2] == 3
    monkeypatch.setenv("EDGE_PATROL_SECRET", "example-secret")
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "badge.png"
    rc = main(["badge", "make", "--config", str(root / "configs/examples/cameras.full.yaml"),
               "--patrol", str(root / "configs/patrol_points.yaml"), "--member", "A. Jansen", "--out", str(out)])
    assert rc == 0 and "badge 1010" in capsys.readouterr().out
    found = BadgeReader().read(cv2.imread(str(out)))
    assert [verify(b"example-secret", "harbour-north", r.ids) for r in found] == [(1010, True)]
    monkeypatch.delenv("EDGE_PATROL_SECRET")
    rc = main(["badge", "make", "--config", str(root / "configs/examples/cameras.full.yaml"),
               "--patrol", str(root / "configs/patrol_points.yaml"), "--member", "A. Jansen", "--out", str(out)])
    assert rc == 2 and "EDGE_PATROL_SECRET is not set" in capsys.readouterr().err
