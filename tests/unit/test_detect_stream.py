"""Which of a camera's streams detection decodes: the substream, unless tiles need the main stream."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge_agent.alarms.sink import FolderSink
from edge_agent.app import LiveAgent
from edge_agent.config.models import AgentConfig, Camera, Device, Site, ZoneFile
from edge_agent.detect.common import DetectorOptions
from edge_agent.detect.registry import load_detector
from edge_agent.sources.decode import detects_on_substream


def test_auto_detects_on_the_substream_only_without_tiles():
    assert detects_on_substream("auto", tiles_on=False)
    assert not detects_on_substream("auto", tiles_on=True)
    assert detects_on_substream("substream", tiles_on=True)  # told otherwise
    assert not detects_on_substream("main", tiles_on=False)


def test_detect_stream_substream_needs_a_substream_url():
    with pytest.raises(ValidationError, match="no substream_url"):
        Camera(id="a", url="rtsp://cam/main", detect_stream="substream")


@pytest.fixture(scope="module")
def detector():
    return load_detector("yolov3-tiny", DetectorOptions())


@pytest.mark.parametrize("tiles, detect_stream, decoded", [
    ("auto", "auto", "main"), ("off", "auto", "substream"), ("auto", "substream", "substream"),
    ("off", "main", "main")])
def test_the_agent_decodes_the_stream_the_rule_gives(detector, tmp_path, tiles, detect_stream, decoded):
    cam = Camera(id="a", url="rtsp://127.0.0.1:1/main", substream_url="rtsp://127.0.0.1:1/sub", tiles=tiles,
                 detect_stream=detect_stream)
    cfg = AgentConfig(site=Site(id="s"), device=Device(id="d"), mqtt={"enabled": False},
                      alarms={"store_dir": str(tmp_path / "media")}, cameras=[cam])
    agent = LiveAgent(cfg, {"a": ZoneFile()}, detector, FolderSink(tmp_path / "out"))  # built, not started
    source = agent.cameras["a"].source
    assert source.substream_url == ("rtsp://127.0.0.1:1/sub" if decoded == "substream" else None)
    assert source.url == "rtsp://127.0.0.1:1/main"  # clips: always the main stream
    assert agent.health.snapshot()["cameras"]["a"]["detect_stream"] == decoded
