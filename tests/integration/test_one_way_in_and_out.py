"""One way in for frames, one way out for events, proved with real parts.

- The same clip (a 7 fps source sampled at 5, with a 2 s pause in its feed) through replay and
  through a real GStreamer RTSP server: the same frames are sampled (by presentation time) and
  the same alarms are raised.
- A real sink failure (the outbox's SQLite capped with max_page_count: a genuine SQLITE_FULL)
  delays an alarm, is counted in health, and loses nothing once space returns.
- The fake clock drives the live agent through a camera_offline start and end.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from edge_agent.alarms.sink import FolderSink
from edge_agent.app import LiveAgent
from edge_agent.clock import FakeClock
from edge_agent.config.loader import load_zones
from edge_agent.config.models import AgentConfig, Camera, Device, Site
from edge_agent.health import Health
from edge_agent.publish.publisher import MqttSink
from edge_agent.replay import run_replay
from edge_agent.sources.file import FileSource
from edge_agent.sources.gate import FrameGate, sampled_frames
from edge_agent.sources.rtsp import RtspSource
from tests.fixtures.mosquitto import Probe, free_port, mqtt_settings
from tests.fixtures.rtsp import play_served_file, read_events
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration
FOOTAGE = Path(__file__).resolve().parents[1] / "footage"
ZONES = FOOTAGE / "zones" / "rail_intrusion.yaml"
GAP_AT, GAP_S, RATE = 1.0, 2.0, 7


@pytest.fixture(scope="module")
def detector():
    from edge_agent.config.models import Detector
    from edge_agent.detect.common import DetectorOptions
    from edge_agent.detect.registry import load_detector

    return load_detector(Detector().model, DetectorOptions())  # the model replay runs without --config


@pytest.fixture(scope="module")
def paused_7fps_clip(tmp_path_factory) -> Path:
    """rail_intrusion re-timed to 7 fps, its feed pausing 2 s after the first second (the
    timestamps jump, so a server that paces by them really stops sending); the person enters
    the track bed after the pause and stays."""
    with av.open(str(FOOTAGE / "rail_intrusion.mp4")) as src:
        frames = [f.to_ndarray(format="bgr24") for f in src.decode(video=0)]  # 10 fps
    path = tmp_path_factory.mktemp("gate") / "paused7.mp4"
    tb = Fraction(1, RATE)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.codec_context.time_base = tb
        stream.options = {"preset": "ultrafast", "bf": "0", "g": str(RATE), "sc_threshold": "0"}
        for k in range(int(len(frames) / 10 * RATE)):
            content = k / RATE
            vf = av.VideoFrame.from_ndarray(frames[min(len(frames) - 1, round(content * 10))], format="bgr24")
            vf.pts, vf.time_base = k + (round(GAP_S * RATE) if content >= GAP_AT else 0), tb
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _config(tmp: Path, cameras: list[Camera], **kw) -> AgentConfig:
    kw.setdefault("mqtt", {"enabled": False})
    return AgentConfig(site=Site(id="s1"), device=Device(id="d1"), cameras=cameras,
                       alarms={"store_dir": str(tmp / "media")}, **kw)


def test_replay_and_rtsp_sample_the_same_frames_and_raise_the_same_alarms(rtsp_server, paused_7fps_clip,
                                                                          detector, tmp_path):
    replayed_times = [f.media_time for f in sampled_frames(FileSource("cam", paused_7fps_clip), "cam", 5.0)]
    assert any(b - a > GAP_S for a, b in zip(replayed_times, replayed_times[1:])), "the clip has no pause"

    srv = rtsp_server({"cam": paused_7fps_clip})
    health, live_times = Health(), []
    source = RtspSource("cam", srv.url("cam"), FrameGate("cam", 5.0, health, lambda f: live_times.append(f.media_time)),
                        health)
    source.start()
    try:  # the served file ends: stop when the camera drops, before it reconnects and starts over
        assert wait_for(lambda: health.state("cam") == "online", 10)
        assert wait_for(lambda: health.state("cam") != "online", 40)
    finally:
        source.stop(5)
    rel = lambda ts: [round(t - ts[0], 3) for t in ts]  # noqa: E731
    assert rel(live_times) == rel(replayed_times)

    replay = run_replay(paused_7fps_clip, ZONES, tmp_path / "replay")
    cfg = _config(tmp_path, [Camera(id="cam", url=srv.url("cam"), detect_fps=5)])
    sink = FolderSink(tmp_path / "live")
    agent = LiveAgent(cfg, {"cam": load_zones(ZONES)}, detector, sink)
    agent.start()
    play_served_file(agent, sink)
    live = [e for e in read_events(tmp_path / "live") if e.phase == "start"]
    ref = [e for e in replay.events if e.phase == "start"]
    counters = agent.health.counters("cam")
    assert ref, "the replay itself found no alarm: the clip or the detector changed"
    # Apart, and first: frames replaced in the detector's slot (a machine too loaded for the
    # detector to keep up) are analysed by replay but not live, and the alarms then differ.
    assert counters["frames_dropped"] == 0, counters
    key = lambda e: (e.type, e.zone)  # noqa: E731
    assert sorted(map(key, live)) == sorted(map(key, ref))
    assert len({e.track_id for e in live}) == len({e.track_id for e in ref})
    for a, b in zip(sorted(live, key=key), sorted(ref, key=key)):
        assert abs(a.media_time - b.media_time) <= 0.2 + 1e-3, (a.media_time, b.media_time)


def test_an_outbox_that_cannot_write_delays_the_alarm_and_loses_nothing(mosquitto, detector, tmp_path):
    outbox = tmp_path / "outbox.sqlite"
    mqtt = mqtt_settings(mosquitto, outbox, topic_prefix="t")
    cfg = _config(tmp_path, [Camera(id="rail", url=str(FOOTAGE / "rail_intrusion.mp4"), detect_fps=5, loop=False)],
                  mqtt=mqtt)
    sink = MqttSink.from_config(cfg).start()
    probe = Probe(mosquitto.port, "t/s1/d1/alarms/#")
    db = sink.outbox._db
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")  # a full disk
    agent = LiveAgent(cfg, {"rail": load_zones(ZONES)}, detector, sink)
    agent.start()
    try:
        assert wait_for(lambda: (agent.supervise() or True)
                        and agent.health.snapshot().get("delivery", {}).get("emit_errors", 0) > 0, 30)
        assert probe.json("t/s1/d1/alarms") == []  # nothing went out non-durably
        db.execute("PRAGMA max_page_count = 1073741823")  # space is back
        assert wait_for(lambda: (agent.supervise() or True) and agent.health.state("rail") != "online", 40)
    finally:
        agent.stop()
    assert sink.wait_drained(10)
    sink.close(2)
    probe.stop()
    phases = [(m["event_id"], m["phase"]) for m in probe.json("t/s1/d1/alarms") if m["type"] == "intrusion"]
    starts = [eid for eid, phase in phases if phase == "start"]
    assert len(starts) == 1, phases  # exactly once
    # the rules' state moved on consistently: the same alarm later got its clip and its end
    assert phases.count((starts[0], "end")) == 1 and phases.count((starts[0], "update")) == 1, phases
    assert agent.health.snapshot()["delivery"]["pending"] == 0


def test_the_fake_clock_drives_the_live_agent_through_camera_offline(rtsp_server, small_clip, detector, tmp_path):
    port = free_port()
    url = f"rtsp://127.0.0.1:{port}/cam"
    clock = FakeClock()
    cfg = _config(tmp_path, [Camera(id="cam", url=url, offline_alarm_s=30)])
    sink = FolderSink(tmp_path / "out")
    agent = LiveAgent(cfg, {}, detector, sink, clock=clock)
    agent.start()
    try:
        agent.supervise()
        clock.advance(29)
        agent.supervise()
        assert not agent.offline.open  # down 29 s of 30
        clock.advance(2)
        agent.supervise()
        assert wait_for(lambda: [e.phase for e in read_events(tmp_path / "out")] == ["start"], 10)
        start = read_events(tmp_path / "out")[0]
        assert start.type == "camera_offline" and start.start == "2026-01-01T00:00:00.000Z"  # down since start
        from tests.fixtures.rtsp import RtspServer

        srv = RtspServer({"cam": small_clip}, loop=True, patterns=[], user=None, password=None, port=port).start()
        try:
            assert wait_for(lambda: agent.health.state("cam") == "online", 15)
            agent.supervise()
            assert wait_for(lambda: len(read_events(tmp_path / "out")) == 2, 10)
        finally:
            srv.kill()
    finally:
        agent.stop()
        sink.close()
    end = read_events(tmp_path / "out")[1]
    assert (end.event_id, end.phase, end.details["end_reason"]) == (start.event_id, "end", "restored")
    assert end.end == "2026-01-01T00:00:31.000Z"  # the fake clock's time, not the machine's
