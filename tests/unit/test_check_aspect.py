"""`edge-agent check` warns when a camera's picture no longer has the shape its zones were drawn on."""

from __future__ import annotations

from pathlib import Path

from edge_agent.admin.check import aspect_warnings
from edge_agent.config.models import AgentConfig, Camera, Device, FrameSize, Site, ZoneFile

CLIP = str(Path(__file__).resolve().parents[1] / "footage" / "rail_intrusion.mp4")  # 640x360, 16:9


def _warnings(drawn: FrameSize | None, url: str = CLIP, probe: bool = False) -> list[str]:
    cfg = AgentConfig(site=Site(id="s"), device=Device(id="d"), cameras=[Camera(id="cam", url=url)])
    return aspect_warnings(cfg, {"cam": ZoneFile(frame=drawn)}, probe)


def test_same_shape_at_another_size_is_fine_another_shape_is_not():
    assert _warnings(FrameSize(width=1920, height=1080)) == []
    assert _warnings(None) == []  # drawn before the editor recorded the size
    (warning,) = _warnings(FrameSize(width=640, height=480))
    assert warning.startswith("camera cam: its picture is 640x360 but the zones were drawn on 640x480")


def test_a_stream_is_opened_only_with_probe():
    assert _warnings(FrameSize(width=640, height=480), url="rtsp://127.0.0.1:9/none") == []
