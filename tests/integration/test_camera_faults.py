"""Cameras breaking the way real sites break them, against a real GStreamer RTSP server: a new
picture size on the same path, frames that all fail, garbage after a valid handshake, a server
that freezes, a first connection that never answers."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from edge_agent.alarms.camera import OfflineMonitor
from edge_agent.alarms.event import EventContext
from edge_agent.alarms.sink import FolderSink
from edge_agent.app import LiveAgent
from edge_agent.config.models import Camera
from edge_agent.health import Health
from edge_agent.sources.gate import FrameGate
from edge_agent.sources.rtsp import RtspSource
from tests.fixtures.rtsp import read_events, tcp_server, write_h264
from tests.integration import test_live_agent as live
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration
detector = live.detector  # the real detector, loaded once per module
agent_config = live.agent_config


def halves(path: Path, size: tuple[int, int], bright_left: bool, seconds: float = 3.0, fps: int = 25) -> Path:
    """A textured view, one half bright and one dark, with a bar moving across it; the other
    `bright_left` is the view of a camera turned away."""
    w, h = size
    rng = np.random.default_rng(w * h)
    scene = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
    scene[:, : w // 2] += 190 if bright_left else 20
    scene[:, w // 2:] += 20 if bright_left else 190

    def frames() -> Iterator[np.ndarray]:
        for i in range(int(seconds * fps)):
            img = scene.copy()
            x = (i * 8) % (w - 16)
            img[h // 3: 2 * h // 3, x: x + 16] = 128
            yield img

    return write_h264(path, frames(), fps)


def test_new_picture_size_on_the_same_path_is_analysed_and_a_turned_camera_is_noticed(rtsp_server, detector,
                                                                                       mosquitto, tmp_path):
    """640x360 then, after the camera 'reboots', 640x480 of a view turned away: the agent analyses
    the new size at once (it used to fail every frame and stay `online`, blind), still raises
    camera_tampered against the rescaled background, and `accept_view`, signed and sent as
    `edge-agent cmd accept_view` sends it over a real broker, makes the new view the usual one."""
    from edge_agent.clock import SystemClock
    from edge_agent.publish.publisher import MqttSink, command_dispatcher
    from edge_agent.publish.sender import parse_args, send_command
    from edge_agent.run import _Control, _handlers
    from tests.fixtures.mosquitto import mqtt_settings

    wide = halves(tmp_path / "wide.mp4", (640, 360), bright_left=True)
    tall = halves(tmp_path / "tall.mp4", (640, 480), bright_left=False)
    srv = rtsp_server({"cam": wide}, loop=True)
    sink = FolderSink(tmp_path / "events")
    agent = LiveAgent(agent_config(tmp_path, [Camera(id="cam", url=srv.url("cam"), idle_interval_s=0.5)]),
                      {}, detector, sink)
    agent.start()
    ctl = _Control()
    ctl.agent = agent
    mqtt = mqtt_settings(mosquitto, tmp_path / "o.sqlite", command_secret="k3y")
    table = command_dispatcher(mqtt, _handlers(ctl, str(tmp_path / "unused.yaml")), SystemClock())
    commands = MqttSink(mqtt, "s1", "d1", dispatcher=table).start()
    cam = lambda: agent.health.snapshot()["cameras"]["cam"]  # noqa: E731

    def tamper(phase: str) -> list:
        return [e for e in read_events(tmp_path / "events") if e.type == "camera_tampered" and e.phase == phase]

    try:
        assert wait_for(lambda: cam()["counters"]["frames_analysed"] >= 5 and cam()["height"] == 360, 15), cam()
        srv.files["cam"] = tall
        srv.restart()
        assert wait_for(lambda: cam()["height"] == 480, 15), cam()
        analysed = cam()["counters"]["frames_analysed"]
        assert wait_for(lambda: cam()["counters"]["frames_analysed"] >= analysed + 5, 10), cam()
        last = agent.cameras["cam"].pipeline.last()
        assert last is not None and last[0].image.shape == (480, 640, 3)
        assert cam()["counters"]["frame_errors"] == 0 and cam()["state"] == "online"
        assert wait_for(lambda: tamper("start"), 15), "the view turned away was not noticed"
        assert tamper("start")[0].details["reason"] == "changed"

        tool = mqtt_settings(mosquitto, tmp_path / "tool.sqlite", command_secret="k3y")
        reply, _ = send_command(tool, "s1", "d1", "accept_view", parse_args(["by=tech-1"], "cam"))
        assert reply["ok"] and reply["result"]["accepted"] is True, reply
        assert wait_for(lambda: tamper("end"), 5)
        assert tamper("end")[0].details["end_reason"] == "accepted"
        sampled = agent.cameras["cam"].gate.sampled
        # longer than the tamper hold (3 s at 5 fps): the accepted view is not taken for tampering
        assert wait_for(lambda: agent.cameras["cam"].gate.sampled >= sampled + 25, 15)
        assert agent.cameras["cam"].gate.tamper is None
    finally:
        commands.close(2)
        agent.stop()
        sink.close()
    assert len(tamper("start")) == 1


def test_a_camera_whose_every_frame_fails_is_reported_offline_with_the_error(rtsp_server, tmp_path):
    """A fault on every frame (here downstream) left the camera `online` with 0 frames analysed
    and frame_errors climbing: a silent blind camera. Now the connection is given up, the state
    says offline with the error, and camera_offline is raised with it."""
    clip = halves(tmp_path / "v.mp4", (320, 240), bright_left=True)
    srv = rtsp_server({"a": clip}, loop=True)
    health = Health()

    def broken(frame) -> None:
        raise ValueError("operands could not be broadcast together")

    src = RtspSource("a", srv.url("a"), FrameGate("a", 25, health, broken), health=health, stall_timeout_s=30)
    monitor = OfflineMonitor(health, lambda c: EventContext("s", "d", c), {"a": 5.0})
    src.start()
    try:
        assert wait_for(lambda: (monitor.check(), bool(monitor.open))[1], 20), health.snapshot()
        event = monitor.open["a"]
        assert "broadcast" in (event.details["error"] or "")
        assert health.state("a") != "online" and src.alive
        assert health.counters("a")["frame_errors"] >= 50 and health.counters("a")["reconnects"] >= 1
    finally:
        assert src.stop(10)


def rtsp_then_garbage(sdp: bytes) -> tuple[socket.socket, int]:
    """An RTSP server that completes OPTIONS/DESCRIBE/SETUP/PLAY properly, then sends interleaved
    RTP whose payload is random bytes."""

    def answer(conn: socket.socket) -> None:
        rng = np.random.default_rng(1)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            method = lines[0].split()[0]
            cseq = next(ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("cseq"))
            extra, body = "", b""
            if method == "OPTIONS":
                extra = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n"
            elif method == "DESCRIBE":
                extra, body = "Content-Type: application/sdp\r\n", sdp
            elif method == "SETUP":
                extra = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 12345678\r\n"
            elif method == "PLAY":
                extra = "Session: 12345678\r\nRange: npt=0-\r\n"
            conn.sendall(f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode()
                         + body)
            if method == "PLAY":
                break
        for seq in range(1, 1 << 30):
            payload = bytes(rng.integers(0, 256, 1000, dtype=np.uint8))
            rtp = bytes([0x80, 96]) + (seq & 0xFFFF).to_bytes(2, "big") + ((seq * 3600) & 0xFFFFFFFF).to_bytes(4, "big") \
                + b"\x01\x02\x03\x04" + payload
            conn.sendall(b"$\x00" + len(rtp).to_bytes(2, "big") + rtp)
            time.sleep(0.01)

    return tcp_server(answer)


SDP = (b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n"
       b"a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42c01e;"
       b"sprop-parameter-sets=Z0LAHtkAUAW7ARAAAAMAEAAAAwPI8WLkgA==,aMuMsg==\r\na=control:track1\r\n")


def test_garbage_rtp_after_a_valid_handshake_is_a_camera_down_with_its_error():
    """Garbage after a valid handshake (a wrong stream on the port, a broken encoder): never an
    `online` camera that analyses nothing; the state says why, and the camera keeps retrying."""
    junk, port = rtsp_then_garbage(SDP)
    health = Health()
    frames: list = []
    src = RtspSource("g", f"rtsp://127.0.0.1:{port}/cam", FrameGate("g", 5, health, frames.append), health=health,
                     stall_timeout_s=3.0, open_timeout_s=3.0)
    src.start()
    try:
        assert wait_for(lambda: health.counters("g")["reconnects"] >= 1
                        and health.snapshot()["cameras"]["g"]["last_error"], 20), health.snapshot()
        assert health.state("g") != "online" and src.alive
        assert health.down_for("g") > 0
    finally:
        assert src.stop(10)
        junk.close()


def test_camera_offline_raised_while_the_first_open_is_pending_says_why():
    """A camera that accepts the connection but never answers: camera_offline comes before the
    first open gives up, and its details.error was null."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # the kernel accepts; nobody ever answers
    health = Health()
    src = RtspSource("s", f"rtsp://127.0.0.1:{silent.getsockname()[1]}/cam", FrameGate("s", 5, health, print),
                     health=health, open_timeout_s=30.0)
    monitor = OfflineMonitor(health, lambda c: EventContext("s", "d", c), {"s": 1.0})
    src.start()
    try:
        assert wait_for(lambda: (monitor.check(), bool(monitor.open))[1], 10)
        assert health.state("s") == "connecting"  # the open is still pending
        assert monitor.open["s"].details["error"]
    finally:
        src.request_stop()
        silent.close()
        assert src.stop(40)


def test_an_alarm_open_when_its_camera_dies_ends_and_delivers_its_clip(rtsp_server, detector, tmp_path):
    """The server is killed right after `intrusion` starts and stays down: the end (at the last
    frame, end_reason camera_offline) and the clip came only when the camera returned, or never."""
    from edge_agent.clock import parse_iso
    from edge_agent.config.loader import load_zones

    footage = Path(__file__).resolve().parents[1] / "footage"
    srv = rtsp_server({"cam": footage / "rail_intrusion.mp4"})
    sink = FolderSink(tmp_path / "events")
    cfg = agent_config(tmp_path, [Camera(id="cam", url=srv.url("cam"), detect_fps=5)])
    agent = LiveAgent(cfg, {"cam": load_zones(footage / "zones" / "rail_intrusion.yaml")}, detector, sink)
    agent.start()

    def intrusion(phase: str) -> list:
        agent.supervise()
        return [e for e in read_events(tmp_path / "events") if e.type == "intrusion" and e.phase == phase]

    try:
        assert wait_for(lambda: intrusion("start"), 20)
        srv.kill()
        killed = time.time()
        start = intrusion("start")[0]
        assert wait_for(lambda: intrusion("end") and any(e.clip for e in intrusion("update")),
                        cfg.alarms.post_roll_s + 15), agent.health.snapshot()
        end = intrusion("end")[0]
        clip = next(e.clip for e in intrusion("update") if e.clip)
    finally:
        agent.stop()
        sink.close()
    assert end.event_id == start.event_id and end.details["end_reason"] == "camera_offline"
    # at the camera's last frame, not when the outage was noticed (post_roll_s later); a frame's wall
    # time comes from its timestamp on the stream's clock, which may run ahead of ours by up to a
    # sample period (5 fps) around the kill
    assert parse_iso(start.time) <= parse_iso(end.end) <= killed + 1 / 5 < killed + cfg.alarms.post_roll_s
    assert clip.duration_s >= cfg.alarms.pre_roll_s
    assert (tmp_path / "events" / clip.path).stat().st_size == clip.size


def test_a_frozen_camera_stays_stalled_while_reconnects_get_no_answer(rtsp_server, small_clip):
    """`stalled` lasted a quarter of a second: the next open against the frozen server timed out
    and health said `offline`, "invalid data", a wrong diagnosis sent to the operator."""
    srv = rtsp_server({"a": small_clip}, loop=True)
    health = Health()
    src = RtspSource("a", srv.url("a"), FrameGate("a", 5, health, lambda f: None), health=health,
                     stall_timeout_s=2.0, open_timeout_s=2.0)
    src.start()
    states: list[str] = []
    try:
        assert wait_for(lambda: health.state("a") == "online", 10)
        srv.freeze()

        def watched() -> bool:
            src.check_watchdog()
            states.append(health.state("a"))
            return health.counters("a")["reconnects"] >= 2  # opens after the stall got no answer
        assert wait_for(watched, 30), health.snapshot()
        after = states[states.index("stalled"):]
        assert set(after) == {"stalled"}, sorted(set(after))
        assert "stalled" in health.snapshot()["cameras"]["a"]["last_error"]
    finally:
        srv.thaw()
        assert src.stop(10)


def test_a_file_camera_whose_every_frame_fails_is_reported_offline(tmp_path):
    """The paced demo camera as well: a blind camera never stays `online`."""
    from edge_agent.sources.base import PacedFileSource

    clip = halves(tmp_path / "v.mp4", (320, 240), bright_left=True)
    health = Health()

    def broken(frame) -> None:
        raise ValueError("operands could not be broadcast together")

    src = PacedFileSource("f", str(clip), FrameGate("f", 25, health, broken), health, loop=True)
    src.start()
    try:
        assert wait_for(lambda: health.state("f") == "offline", 15), health.snapshot()
        assert "broadcast" in health.snapshot()["cameras"]["f"]["last_error"]
    finally:
        assert src.stop(5)
