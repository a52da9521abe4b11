"""Cheaper decode on real RTSP cameras (GStreamer server on loopback), real detector: a quiet camera
decoding keyframes only still raises the alarm when a person enters; a hardware decoder that
cannot be used falls back to software decode."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np
import pytest

from edge_agent.alarms.sink import FolderSink
from edge_agent.app import LiveAgent
from edge_agent.config.loader import load_zones
from edge_agent.config.models import AgentConfig, Camera, Device, Site
from edge_agent.health import Health
from edge_agent.sources.gate import FrameGate
from edge_agent.sources.rtsp import RtspSource
from tests.fixtures.rtsp import play_served_file, read_events, write_h264
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration
FOOTAGE = Path(__file__).resolve().parents[1] / "footage"
QUIET_S = 8.0  # seconds of the empty rail scene before the intrusion clip starts
FPS, GOP_S = 10, 1.0  # write_h264: GOP = fps frames


def frames_of(path: Path):
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            yield frame.to_ndarray(format="bgr24")


@pytest.fixture(scope="module")
def quiet_then_person(tmp_path_factory) -> Path:
    """8 s of a still rail scene with sensor noise (rail_empty's first picture: its camera sways, which
    the motion gate rightly calls motion), then rail_intrusion (a person enters the track bed 2.4 s in)."""
    path = tmp_path_factory.mktemp("quiet") / "quiet_then_person.mp4"
    still = next(frames_of(FOOTAGE / "rail_empty.mp4"))
    rng = np.random.default_rng(0)

    def frames():
        for _ in range(int(QUIET_S * FPS)):
            yield np.clip(still.astype(np.int16) + rng.integers(-2, 3, still.shape), 0, 255).astype(np.uint8)
        yield from frames_of(FOOTAGE / "rail_intrusion.mp4")

    return write_h264(path, frames(), FPS)


def truth_entry() -> tuple[str, float, float]:
    """(zone, entry media time, dwell) from rail_intrusion's ground truth, shifted by the quiet part."""
    import yaml

    expected = yaml.safe_load((FOOTAGE / "rail_intrusion.expected.yaml").read_text())
    zone, visits = next(iter(expected["truth"]["objects"]["person-1"]["zones"].items()))
    dwell = load_zones(FOOTAGE / "zones" / "rail_intrusion.yaml").zones[0].dwell_s
    return zone, QUIET_S + visits["visits"][0]["entered_at"], dwell


def test_keyframe_only_decode_on_a_quiet_camera_still_raises_the_alarm_in_time(rtsp_server, quiet_then_person,
                                                                                 tmp_path):
    from edge_agent.detect.common import DetectorOptions
    from edge_agent.detect.registry import load_detector

    srv = rtsp_server({"cam": quiet_then_person})
    cfg = AgentConfig(site=Site(id="s1"), device=Device(id="d1"), mqtt={"enabled": False},
                      alarms={"store_dir": str(tmp_path / "media")},
                      cameras=[Camera(id="cam", url=srv.url("cam"), detect_fps=5, keyframe_decode_max_gop_s=2.0)])
    sink = FolderSink(tmp_path / "live")
    agent = LiveAgent(cfg, {"cam": load_zones(FOOTAGE / "zones" / "rail_intrusion.yaml")},
                      load_detector("yolov3-tiny", DetectorOptions()), sink)
    agent.start()
    seen_keyframes_only = wait_for(lambda: agent.health.snapshot()["cameras"]["cam"].get("decode") == "keyframes", 10)
    snap = agent.health.snapshot()["cameras"]["cam"]
    play_served_file(agent, sink)
    assert seen_keyframes_only, snap
    assert snap["gop_s"] == GOP_S
    assert agent.health.counters("cam")["decode_switches"] >= 2  # to keyframes, and back when the person came
    zone, entry, dwell = truth_entry()
    starts = [e for e in read_events(tmp_path / "live") if e.phase == "start" and e.type == "intrusion"]
    assert [(e.zone, e.label) for e in starts] == [(zone, "person")]
    assert entry <= starts[0].media_time <= entry + dwell + GOP_S + 1.0, (starts[0].media_time, entry)


def test_a_hardware_decoder_that_cannot_be_opened_falls_back_to_software(rtsp_server, small_clip, caplog):
    srv = rtsp_server({"a": small_clip}, loop=True)
    health = Health()
    frames = []
    src = RtspSource("a", srv.url("a"), FrameGate("a", 5, health, frames.append), health=health, hwaccel="cuda")
    caplog.set_level(logging.WARNING, logger="edge_agent.sources.decode")
    src.start()
    try:
        assert wait_for(lambda: len(frames) >= 5, 15)
        info = health.snapshot()["cameras"]["a"]
        if info["hw_decode"] == "cuda":  # a box with a usable NVIDIA decoder
            return
        assert info["hw_decode"].startswith("fallback: ") and health.state("a") == "online"
        assert [r for r in caplog.records if "decoding in software" in r.getMessage()]
        assert src.hwaccel == "off"  # later reconnects go straight to software
    finally:
        assert src.stop(10)
