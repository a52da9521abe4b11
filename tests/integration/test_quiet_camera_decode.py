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
from edge_agent.detect.overload import SHED_ORDER
from edge_agent.health import Health
from edge_agent.sources.gate import FrameGate
from edge_agent.sources.rtsp import RtspSource
from tests.fixtures.rtsp import play_served_file, read_events, write_h264
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration
FOOTAGE = Path(__file__).resolve().parents[1] / "footage"
QUIET_S = 8.0  # seconds of the empty rail scene before the intrusion clip starts
FPS, GOP_S = 10, 1.0  # write_h264: GOP = fps frames
# Under overload: keyframes at 0, 4, 8 and 12 s, the person clip from 12 s; the clip is cut where
# the alarm is due at the latest (entry 2.4 s + dwell 3 s + GOP 4 s + 1 s), plus a second.
LONG_GOP_S, LONG_QUIET_S, INTRUSION_FRAMES = 4.0, 12.0, 115


def frames_of(path: Path):
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            yield frame.to_ndarray(format="bgr24")


@pytest.fixture(scope="module")
def quiet_then_person(tmp_path_factory) -> Path:
    """8 s of a still rail scene with sensor noise (rail_empty's first picture: its camera sways, which
    the motion gate rightly calls motion), then rail_intrusion (a person enters the track bed 2.4 s
    in) up to a second after the alarm is due at the latest."""
    path = tmp_path_factory.mktemp("quiet") / "quiet_then_person.mp4"
    still = next(frames_of(FOOTAGE / "rail_empty.mp4"))
    rng = np.random.default_rng(0)

    def frames():
        for _ in range(int(QUIET_S * FPS)):
            yield np.clip(still.astype(np.int16) + rng.integers(-2, 3, still.shape), 0, 255).astype(np.uint8)
        yield from list(frames_of(FOOTAGE / "rail_intrusion.mp4"))[:INTRUSION_FRAMES - 30]  # the GOP is 3 s shorter

    return write_h264(path, frames(), FPS)


@pytest.fixture(scope="module")
def long_gop_quiet_then_person(tmp_path_factory) -> Path:
    """A 4 s GOP: LONG_QUIET_S of rail_intrusion's first (empty) picture with sensor noise, then
    rail_intrusion up to where the alarm is due at the latest."""
    path = tmp_path_factory.mktemp("quiet") / "long_gop.mp4"
    intrusion = list(frames_of(FOOTAGE / "rail_intrusion.mp4"))[:INTRUSION_FRAMES]
    rng = np.random.default_rng(0)

    def frames():
        empty = intrusion[0].astype(np.int16)
        for _ in range(int(LONG_QUIET_S * FPS)):
            yield np.clip(empty + rng.integers(-2, 3, empty.shape), 0, 255).astype(np.uint8)
        yield from intrusion

    return write_h264(path, frames(), FPS, gop=int(LONG_GOP_S * FPS))


def truth_entry(quiet_s: float = QUIET_S) -> tuple[str, float, float]:
    """(zone, entry media time, dwell) from rail_intrusion's ground truth, shifted by the quiet part."""
    import yaml

    expected = yaml.safe_load((FOOTAGE / "rail_intrusion.expected.yaml").read_text())
    zone, visits = next(iter(expected["truth"]["objects"]["person-1"]["zones"].items()))
    dwell = load_zones(FOOTAGE / "zones" / "rail_intrusion.yaml").zones[0].dwell_s
    return zone, quiet_s + visits["visits"][0]["entered_at"], dwell


def live_agent(url: str, tmp_path: Path) -> tuple[LiveAgent, FolderSink]:
    """A started agent with the real detector on one camera with rail_intrusion's zones."""
    from edge_agent.detect.common import DetectorOptions
    from edge_agent.detect.registry import load_detector

    cfg = AgentConfig(site=Site(id="s1"), device=Device(id="d1"), mqtt={"enabled": False},
                      alarms={"store_dir": str(tmp_path / "media")},
                      cameras=[Camera(id="cam", url=url, detect_fps=5, keyframe_decode_max_gop_s=2.0)])
    sink = FolderSink(tmp_path / "live")
    agent = LiveAgent(cfg, {"cam": load_zones(FOOTAGE / "zones" / "rail_intrusion.yaml")},
                      load_detector("yolov3-tiny", DetectorOptions()), sink)
    return agent, sink


def assert_alarmed_in_time(folder: Path, quiet_s: float, gop_s: float) -> None:
    zone, entry, dwell = truth_entry(quiet_s)
    starts = [e for e in read_events(folder) if e.phase == "start" and e.type == "intrusion"]
    assert [(e.zone, e.label) for e in starts] == [(zone, "person")]
    assert entry <= starts[0].media_time <= entry + dwell + gop_s + 1.0, (starts[0].media_time, entry)


def test_keyframe_only_decode_on_a_quiet_camera_still_raises_the_alarm_in_time(rtsp_server, quiet_then_person,
                                                                                 tmp_path):
    srv = rtsp_server({"cam": quiet_then_person})
    agent, sink = live_agent(srv.url("cam"), tmp_path)
    agent.start()
    seen_keyframes_only = wait_for(lambda: agent.health.snapshot()["cameras"]["cam"].get("decode") == "keyframes", 10)
    snap = agent.health.snapshot()["cameras"]["cam"]
    play_served_file(agent, sink)
    assert seen_keyframes_only, snap
    assert snap["gop_s"] == GOP_S
    assert agent.health.counters("cam")["decode_switches"] >= 2  # to keyframes, and back when the person came
    assert_alarmed_in_time(tmp_path / "live", QUIET_S, GOP_S)


def test_under_overload_a_long_gop_camera_decodes_keyframes_and_still_alarms_in_time(
        rtsp_server, long_gop_quiet_then_person, tmp_path):
    """The policy's level is forced (a real overload takes dozens of cameras): keyframes at 4 s
    (the GOP measured) for overload; relaxed, full decode at 8 s (its GOP is past its 2 s rule);
    overloaded again, keyframes at 12 s, before the person enters (14.4 s)."""
    srv = rtsp_server({"cam": long_gop_quiet_then_person})
    agent, sink = live_agent(srv.url("cam"), tmp_path)
    agent.policy.tick = lambda: None  # hold the forced level: an idle detector would relax it
    shed_decode = SHED_ORDER.index("decode") + 1
    agent.policy.level = shed_decode
    agent.start()

    def info() -> dict:
        return agent.health.snapshot()["cameras"]["cam"]

    on_keyframes = wait_for(lambda: info().get("decode_reason") == "overload", 15)
    gop = info().get("gop_s")
    agent.policy.level = 0
    relaxed_full = wait_for(lambda: info().get("decode") == "full", 2 * LONG_GOP_S)
    agent.policy.level = shed_decode
    again = wait_for(lambda: info().get("decode_reason") == "overload", 2 * LONG_GOP_S)
    play_served_file(agent, sink)
    assert (on_keyframes, gop, relaxed_full, again) == (True, LONG_GOP_S, True, True)
    assert_alarmed_in_time(tmp_path / "live", LONG_QUIET_S, LONG_GOP_S)


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
