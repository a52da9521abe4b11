"""A zone file changed on one camera of a running agent: applied to that camera alone, without
reconnecting its stream or ending another camera's alarm (SIGHUP and the signed `reload` command
take this path when nothing but zone files changed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.alarms.sink import FolderSink
from edge_agent.app import LiveAgent
from edge_agent.config.loader import load_zones
from edge_agent.config.models import AgentConfig, Camera, Device, Site, ZoneFile
from tests.fixtures.rtsp import read_events
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration
FOOTAGE = Path(__file__).resolve().parents[1] / "footage"
ZONES = FOOTAGE / "zones" / "rail_intrusion.yaml"  # the track bed the walker enters at 2.4 s


@pytest.fixture(scope="module")
def detector():
    from edge_agent.detect.common import DetectorOptions
    from edge_agent.detect.registry import load_detector

    return load_detector("yolov3-tiny", DetectorOptions())


def test_new_zones_reach_one_camera_without_touching_its_stream_or_the_others(detector, tmp_path):
    clip = str(FOOTAGE / "rail_intrusion.mp4")
    cams = [Camera(id=c, url=clip, detect_fps=5, loop=False) for c in ("a", "b")]
    cfg = AgentConfig(site=Site(id="s1"), device=Device(id="d1"), cameras=cams, mqtt={"enabled": False},
                      alarms={"store_dir": str(tmp_path / "media")})
    sink = FolderSink(tmp_path / "out")
    agent = LiveAgent(cfg, {"a": ZoneFile(), "b": load_zones(ZONES)}, detector, sink)
    source_a = agent.cameras["a"].source
    agent.start()
    starts = lambda cam: [e for e in read_events(tmp_path / "out") if e.camera == cam and e.phase == "start"]  # noqa: E731
    try:
        assert wait_for(lambda: (agent.supervise() or True) and starts("b"), 15), "camera b raised no alarm"
        assert starts("a") == []  # no zones yet on camera a
        agent.apply_zones("a", load_zones(ZONES))
        assert wait_for(lambda: (agent.supervise() or True) and starts("a"), 10), "the new zone raised nothing"
        assert agent.cameras["a"].source is source_a and agent.health.state("a") == "online"
        assert agent.health.counters("a")["reconnects"] == 0
    finally:
        agent.stop()
        sink.close()
    events = read_events(tmp_path / "out")
    (b_start,) = starts("b")
    b_phases = [e for e in events if e.event_id == b_start.event_id]
    assert all(e.details.get("end_reason") != "reloaded" for e in b_phases)  # b's alarm went on untouched
    assert [e.zone for e in starts("a")] == ["track-bed"]
