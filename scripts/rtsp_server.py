#!/usr/bin/python3
"""A small RTSP server for tests, benchmarks and the demo (Debian GStreamer, run with /usr/bin/python3).

Serves H.264 MP4 files without re-encoding at rtsp://HOST:PORT/<name>, optionally looped, and live
test-pattern mounts (encoded with x264). Optional basic auth so tests can check that credentials
never reach logs. Prints "ready <port>" on stdout once it listens.

    /usr/bin/python3 scripts/rtsp_server.py --port 8554 --loop cam1=tests/footage/a.mp4 --pattern live
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

ROLE = "user"


def segment_seek(demux: Gst.Element, flags: Gst.SeekFlags) -> bool:
    """Seek the demuxer itself back to 0 with the SEGMENT flag (it then posts SEGMENT_DONE, not EOS)."""
    event = Gst.Event.new_seek(1.0, Gst.Format.TIME, Gst.SeekFlags.SEGMENT | flags, Gst.SeekType.SET, 0,
                               Gst.SeekType.NONE, -1)
    for pad in demux.srcpads:
        pad.send_event(event)
        break
    return False  # one-shot when called from GLib.idle_add


def on_media_configure(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia,
                       name: str | None = None) -> None:
    """Loop a file: a segment seek at preparation, then a non-flushing one on every SEGMENT_DONE.

    The seeks go straight into the demuxer's source pad: seeks on the media's pipeline do not
    reach it through the RTP elements. A non-flushing segment seek keeps running time going, so
    the client sees one continuous stream (the first keyframe of each loop repeats the previous
    pts). Subclassing RTSPMedia breaks its signals under PyGObject; a flushing seek once playing
    raced with concurrent clients' set-up (some never got a frame); hence this shape.
    """
    element = media.get_element()
    pipeline = element.get_parent() or element
    demux = element.get_by_name("demux")
    bus = pipeline.get_bus()
    bus.enable_sync_message_emission()

    def on_sync(_bus: Gst.Bus, message: Gst.Message) -> None:
        if message.type == Gst.MessageType.SEGMENT_DONE:
            GLib.idle_add(segment_seek, demux, Gst.SeekFlags(0))
            if name:  # --print-loops: how often the file was played through (scripts/soak.py counts them)
                print(f"loop {name} {time.time():.3f}", flush=True)

    def on_prepared(_media: GstRtspServer.RTSPMedia) -> None:
        segment_seek(demux, Gst.SeekFlags.FLUSH)
        if name:
            print(f"play {name} {time.time():.3f}", flush=True)

    bus.connect("sync-message", on_sync)
    media.connect("prepared", on_prepared)


def file_launch(path: Path) -> str:
    return (
        f'( filesrc location="{path}" ! qtdemux name=demux ! h264parse ! '
        "rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def pattern_launch(pattern: str, width: int, height: int, fps: int) -> str:
    return (
        f"( videotestsrc is-live=true pattern={pattern} ! "
        f"video/x-raw,width={width},height={height},framerate={fps}/1 ! "
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} ! "
        "rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def make_factory(launch: str, loop: bool, auth: bool, name: str | None = None) -> GstRtspServer.RTSPMediaFactory:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(False)  # every client starts at frame 0: deterministic tests
    if loop:
        factory.connect("media-configure", on_media_configure, name)
    if auth:
        factory.add_role_from_structure(
            Gst.Structure.new_from_string(
                f"{ROLE}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )
        )
    return factory


def install_auth(server: GstRtspServer.RTSPServer, user: str, password: str) -> None:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken.new()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE)
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", help="NAME=FILE.mp4 or FILE.mp4 (mount name = file stem)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8554, help="0 picks a free port")
    p.add_argument("--loop", action="store_true", help="loop files for ever")
    p.add_argument("--print-loops", action="store_true",
                   help="print `play NAME TIME` when a client's stream starts, `loop NAME TIME` at each loop")
    p.add_argument("--pattern", action="append", default=[], help="NAME[:gst-pattern] live test pattern mount")
    p.add_argument("--size", default="640x360", help="test pattern size WxH")
    p.add_argument("--fps", type=int, default=25, help="test pattern fps")
    p.add_argument("--user")
    p.add_argument("--password")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    auth = bool(args.user)
    if auth:
        install_auth(server, args.user, args.password or "")
    mounts = server.get_mount_points()
    for spec in args.files:
        name, _, path = spec.rpartition("=")
        file = Path(path).resolve()
        if not file.is_file():
            print(f"rtsp_server: no such file: {path}", file=sys.stderr)
            return 2
        mount = name or file.stem
        mounts.add_factory(f"/{mount}", make_factory(file_launch(file), args.loop, auth,
                                                     mount if args.print_loops else None))
    width, height = (int(v) for v in args.size.split("x"))
    for spec in args.pattern:
        name, _, pattern = spec.partition(":")
        launch = pattern_launch(pattern or "ball", width, height, args.fps)
        mounts.add_factory(f"/{name}", make_factory(launch, False, auth))
    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 2
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"ready {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
