"""RtspSource against a real GStreamer RTSP server on loopback: reconnect, stall, errors, secrets."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from edge_agent.health import Health
from edge_agent.sources.packets import PacketRing, cut_clip
from edge_agent.sources.rtsp import RtspSource
from edge_agent.sources.gate import FrameGate
from tests.fixtures.rtsp import tcp_server
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration


class Collector:
    def __init__(self) -> None:
        self.frames = []
        self.lock = threading.Lock()

    def __call__(self, frame) -> None:
        with self.lock:
            self.frames.append((time.monotonic(), frame))

    def count_since(self, t: float) -> int:
        with self.lock:
            return sum(1 for at, _ in self.frames if at >= t)


def make_source(name: str, url: str, health: Health, **kw) -> tuple[RtspSource, Collector]:
    sink = Collector()
    src = RtspSource(name, url, FrameGate(name, 5, health, sink), health=health, **kw)
    src.start()
    return src, sink


def test_frames_sampled_at_detect_fps_and_packets_ringed(rtsp_server, small_clip):
    srv = rtsp_server({"a": small_clip}, loop=True)
    health = Health()
    ring = PacketRing(10)
    src, sink = make_source("a", srv.url("a"), health, ring=ring)
    try:
        assert wait_for(lambda: len(sink.frames) >= 10, 10)
        frames = [f for _, f in sink.frames]
        assert frames[0].image is not None and frames[0].image.shape == (240, 320, 3)
        gaps = [b.media_time - a.media_time for a, b in zip(frames, frames[1:])]
        assert all(0.15 < g < 0.25 for g in gaps), gaps  # 5 fps of a 25 fps stream
        assert frames[0].media_time < 0.05  # first connection: media time is the file's time
        counters = health.counters("a")
        assert counters["frames_in"] >= 4 * counters["frames_analysed"] if counters["frames_analysed"] else True
        assert health.state("a") == "online"
        clip = cut_clip(ring, 0.0, 1.5)
        assert clip is not None and clip[0][4:8] == b"ftyp"
    finally:
        assert src.stop(10)


def test_server_killed_and_restarted_camera_reconnects_others_keep_going(rtsp_server, small_clip):
    srv = rtsp_server({"a": small_clip}, loop=True)
    other = rtsp_server({"b": small_clip}, loop=True)
    health = Health()
    src, sink = make_source("a", srv.url("a"), health)
    src_b, sink_b = make_source("b", other.url("b"), health)
    try:
        assert wait_for(lambda: len(sink.frames) >= 3 and len(sink_b.frames) >= 3, 10)
        srv.kill()
        assert wait_for(lambda: health.state("a") in ("offline", "connecting"), 3)
        time.sleep(2.5)  # several refused reconnects while the server is away
        assert health.state("a") != "online"
        t_down = time.monotonic()
        assert sink_b.count_since(t_down - 2.5) >= 5  # the other camera kept going meanwhile
        srv.restart()
        back = time.monotonic()
        assert wait_for(lambda: sink.count_since(back) > 0, 5), health.snapshot()
        assert health.state("a") == "online"
        assert health.counters("a")["reconnects"] >= 1
        times = [f.media_time for _, f in sink.frames]
        assert all(b > a for a, b in zip(times, times[1:]))  # media time never goes backwards
    finally:
        assert src.stop(10) and src_b.stop(10)


def test_frozen_server_is_stalled_then_recovers(rtsp_server, small_clip):
    srv = rtsp_server({"a": small_clip}, loop=True)
    health = Health()
    src, sink = make_source("a", srv.url("a"), health, stall_timeout_s=3.0)
    try:
        assert wait_for(lambda: len(sink.frames) >= 3, 10)
        srv.freeze()
        frozen = time.monotonic()

        def stalled() -> bool:
            src.check_watchdog()
            return health.state("a") in ("stalled", "connecting", "offline")

        assert wait_for(stalled, 3.0 + 2.0)
        assert time.monotonic() - frozen <= 5.0  # reported within its stall timeout (plus polling slack)
        assert wait_for(lambda: health.counters("a")["stalls"] >= 1, 8)
        srv.thaw()
        srv.restart()  # a frozen server's sessions are lost; what comes back is a fresh one
        back = time.monotonic()
        assert wait_for(lambda: sink.count_since(back) > 0, 8), health.snapshot()
    finally:
        assert src.stop(10), "decode thread left hanging"


def test_frozen_server_never_hangs_stop(rtsp_server, small_clip):
    srv = rtsp_server({"a": small_clip}, loop=True)
    health = Health()
    src, sink = make_source("a", srv.url("a"), health, stall_timeout_s=3.0)
    assert wait_for(lambda: len(sink.frames) >= 2, 10)
    srv.freeze()
    time.sleep(0.5)
    began = time.monotonic()
    assert src.stop(10), "decode thread left hanging on a frozen server"
    assert time.monotonic() - began < 8
    assert health.state("a") == "stopped"


def garbage_server() -> tuple[socket.socket, int]:
    """A TCP port that answers anything with noise (not RTSP)."""

    def answer(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(b"\x00\xffgarbage" * 200)

    return tcp_server(answer)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_sources_give_clear_per_camera_errors_without_leaking_secrets(rtsp_server, small_clip, caplog):
    srv = rtsp_server({"a": small_clip}, loop=True, user="viewer", password="s3cr3t-pw")
    junk, junk_port = garbage_server()
    health = Health()
    cams = {
        "wrongpath": srv.url("nope"),
        "refused": f"rtsp://viewer:s3cr3t-pw@127.0.0.1:{free_port()}/a",
        "garbage": f"rtsp://viewer:s3cr3t-pw@127.0.0.1:{junk_port}/a",
        "badpass": srv.url("a", password="wrong-s3cr3t"),
        "good": srv.url("a"),
    }
    caplog.set_level(logging.DEBUG)
    sources = {cid: make_source(cid, url, health, open_timeout_s=3.0) for cid, url in cams.items()}
    try:
        assert wait_for(lambda: all(health.snapshot()["cameras"][c]["last_error"] for c in cams if c != "good")
                        and len(sources["good"][1].frames) >= 3, 15), health.snapshot()
        errors = {c: health.snapshot()["cameras"][c]["last_error"] for c in cams}
        assert "404" in errors["wrongpath"]
        assert "refused" in errors["refused"]
        assert "invalid data" in errors["garbage"] or "timed out" in errors["garbage"]
        assert "401" in errors["badpass"]
        for c in cams:
            if c != "good":
                assert health.state(c) in ("offline", "connecting")
        assert health.state("good") == "online"
    finally:
        for src, _ in sources.values():
            assert src.stop(10)
        junk.close()
    text = caplog.text + str(health.snapshot())
    assert "s3cr3t" not in text
    for c in ("wrongpath", "refused", "garbage", "badpass"):
        assert f"camera {c}" in caplog.text


def test_substream_for_detection_main_stream_for_clips(rtsp_server, small_clip, tmp_path):
    from tests.fixtures.rtsp import encode_clip

    main = encode_clip(tmp_path / "main.mp4", size=(640, 480))
    srv = rtsp_server({"main": main, "sub": small_clip}, loop=True)
    health = Health()
    ring = PacketRing(10)
    src, sink = make_source("cam", srv.url("main"), health, ring=ring, substream_url=srv.url("sub"))
    try:
        assert wait_for(lambda: len(sink.frames) >= 5 and (ring.latest_time or 0) > 2.0, 10)
        assert sink.frames[-1][1].image.shape == (240, 320, 3)  # detection sees the substream
        clip = cut_clip(ring, 0.0, 2.0)
    finally:
        assert src.stop(10)
    assert clip is not None
    import io

    import av

    with av.open(io.BytesIO(clip[0])) as c:
        s = c.streams.video[0]
        assert (s.width, s.height) == (640, 480)  # clips keep the main stream's resolution


def test_a_callback_that_raises_does_not_end_the_camera(rtsp_server, small_clip):
    """A bug downstream (detector submit, tamper alarm) must cost one frame, not the camera for ever."""
    srv = rtsp_server({"a": small_clip}, loop=True)
    health = Health()
    calls = []

    def flaky(frame) -> None:
        calls.append(frame)
        if len(calls) == 1:
            raise RuntimeError("downstream bug")

    src = RtspSource("a", srv.url("a"), FrameGate("a", 5, health, flaky), health=health, stall_timeout_s=3)
    src.start()
    try:
        assert wait_for(lambda: len(calls) >= 5, 15), (len(calls), health.snapshot())
        assert src.alive and health.state("a") == "online"
        assert health.counters("a")["frame_errors"] == 1  # that one frame, counted where health shows it
    finally:
        assert src.stop(5)


def test_a_file_camera_survives_a_callback_that_raises(small_clip):
    """The demo's file cameras ended for good (state offline) on the first downstream error."""
    from edge_agent.sources.base import PacedFileSource

    health = Health()
    calls = []

    def flaky(frame) -> None:
        calls.append(frame)
        if len(calls) == 1:
            raise RuntimeError("downstream bug")

    src = PacedFileSource("f", str(small_clip), FrameGate("f", 5, health, flaky), health, loop=True)
    src.start()
    try:
        assert wait_for(lambda: len(calls) >= 4, 10), (len(calls), health.snapshot())
        assert health.state("f") == "online" and health.counters("f")["frame_errors"] == 1
    finally:
        assert src.stop(5)


def test_an_unexpected_error_opening_the_stream_is_retried(rtsp_server, small_clip, monkeypatch):
    """Only FFmpeg and OS errors were caught around av.open: anything else ended the thread."""
    import av

    from edge_agent.sources import rtsp as rtsp_module

    srv = rtsp_server({"a": small_clip}, loop=True)
    real, calls = av.open, []

    def flaky_open(*args, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("surprise")
        return real(*args, **kw)

    monkeypatch.setattr(rtsp_module.av, "open", flaky_open)
    health = Health()
    src, sink = make_source("a", srv.url("a"), health)
    try:
        ok = wait_for(lambda: len(sink.frames) >= 3, 15)
        if not ok and srv.why_dead():
            # The test server died under a loaded CI machine (once: refused for 15 s): the source
            # must still pick the camera up when it is back, which is the retry this test is about.
            print(srv.why_dead())
            srv.restart()
            ok = wait_for(lambda: len(sink.frames) >= 3, 15)
        assert ok, (health.snapshot(), srv.why_dead())
        assert len(calls) >= 2 and health.counters("a")["reconnects"] >= 1
    finally:
        assert src.stop(5)
