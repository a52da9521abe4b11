"""The file source's timing and sampling, and clips remuxed from the packet ring."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest

from edge_agent.errors import SourceError
from edge_agent.sources.file import FileSource
from edge_agent.sources.gate import Sampler, sampled_frames
from edge_agent.sources.packets import PacketRing, cut_clip


def _encode(path: Path, seconds: float = 6.0, fps: int = 10, gop: int = 10) -> None:
    """A clip whose frame i has a white bar at x = 2i, so decoded frames can be identified."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = 160, 96, "yuv420p"
        s.codec_context.gop_size = gop
        s.options = {"bf": "0", "sc_threshold": "0", "crf": "18"}
        for i in range(int(seconds * fps)):
            img = np.zeros((96, 160, 3), np.uint8)
            img[:, 2 * i : 2 * i + 2] = 255
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def _index(image: np.ndarray) -> int:
    return int(np.argmax(image[:, :, 0].mean(axis=0))) // 2


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "grey.mp4"
    _encode(path)
    return path


def test_file_source_samples_at_detect_fps_with_media_time(clip):
    frames = list(sampled_frames(FileSource("cam", clip), "cam", 2.5, start_wall=1000.0))
    times = [f.media_time for f in frames]
    assert len(frames) == 15  # 6 s at 2.5 fps
    assert times[0] == pytest.approx(0.0)
    assert np.allclose(np.diff(times), 0.4, atol=0.051)
    assert all(f.wall_time == pytest.approx(1000.0 + f.media_time) for f in frames)
    assert [f.seq for f in frames] == list(range(15))
    # the frame really is the one at that time: its bar sits at x = 2 * frame index
    assert _index(frames[5].image) == round(frames[5].media_time * 10) == 20


def test_file_source_duration_is_the_video_length_whatever_the_detect_fps(clip):
    for fps in (2.5, 10.0):
        src = FileSource("cam", clip)
        list(sampled_frames(src, "cam", fps))
        assert src.duration == pytest.approx(6.0)  # 60 frames at 10 fps, not 5.9 s + one detect interval


def test_file_source_loop_keeps_time_increasing(clip):
    src = FileSource("cam", clip, loop=True)
    times = []
    for frame in sampled_frames(src, "cam", 1):
        times.append(frame.media_time)
        if len(times) == 14:
            src.stop()
    assert all(b > a for a, b in zip(times, times[1:]))
    assert times[-1] > 12.0


def test_missing_and_garbage_files_name_the_camera(tmp_path):
    with pytest.raises(SourceError, match="camera gate-3: video file not found"):
        list(FileSource("gate-3", tmp_path / "nope.mp4"))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(SourceError, match="camera gate-3: cannot read video"):
        list(FileSource("gate-3", junk))


def test_clip_from_ring_starts_at_keyframe_and_covers_window(clip):
    ring = PacketRing(seconds=30)
    for _ in FileSource("cam", clip, ring=ring):
        pass
    data, first, last = cut_clip(ring, 2.35, 4.0)
    assert first == pytest.approx(2.0)  # the keyframe at or before 2.35 s (GOP 1 s)
    assert last == pytest.approx(4.0)
    with av.open(io.BytesIO(data)) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert len(frames) == 21
    assert [_index(f) for f in frames] == list(range(20, 41))


def test_ring_forgets_old_packets_and_survives_source_close(clip):
    ring = PacketRing(seconds=2)
    for _ in FileSource("cam", clip, ring=ring):
        pass
    # the source closed its container; the ring's own template must still mux
    assert ring.earliest_time >= ring.latest_time - 2.0
    data, first, _ = cut_clip(ring, 0.0, 10.0)
    assert first >= 3.9
    with av.open(io.BytesIO(data)) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 10


def test_sampler_keeps_the_detect_rate_from_a_source_rate_that_is_not_a_multiple():
    """7 fps sampled at 5: a fixed 0.2 s grid, each slot taking the first frame at or after it."""
    sampler = Sampler(5.0)
    taken = [k for k in range(70) if sampler.take(k / 7.0)]
    assert len(taken) == 50  # frames up to 9.86 s: grid slots 0.0, 0.2 ... 9.8
    assert taken[:6] == [0, 2, 3, 5, 6, 7]  # 0, .286, .429, .714, .857, 1.0 s


def test_sampler_re_anchors_after_a_gap_and_on_restart():
    sampler = Sampler(5.0)
    times = [0.0, 0.04, 0.2, 0.4, 2.43, 2.47, 2.63, 2.67]  # a 2 s pause in the feed after 0.4 s
    assert [t for t in times if sampler.take(t)] == [0.0, 0.2, 0.4, 2.43, 2.63]
    sampler.restart()
    assert sampler.take(2.64)  # a new connection: its first frame is sampled


def test_a_clip_over_a_loop_of_repeated_timestamps_is_copied_not_re_encoded(clip):
    """An RTSP loop or reconnect repeats a timestamp (90 kHz); the MP4 track's coarser timescale
    must still see time go on, or the muxer refuses the packet and the clip is re-encoded."""
    from fractions import Fraction

    from edge_agent.sources.packets import StoredPacket, remux_clip

    with av.open(str(clip)) as src:
        stream = src.streams.video[0]
        encoded = [p for p in src.demux(stream) if p.size]
        ticks = [round(p.pts * stream.time_base * 90_000) for p in encoded]
        first = [StoredPacket(bytes(p), t, t, p.is_keyframe, t / 90_000, 0) for p, t in zip(encoded[:20], ticks)]
        again = ticks[19]  # the loop's first keyframe arrives with the last frame's timestamp
        second = [StoredPacket(bytes(p), again + t, again + t, p.is_keyframe, 2.0 + t / 90_000, 0)
                  for p, t in zip(encoded[:20], ticks)]
        data = remux_clip(first + second, stream, Fraction(1, 90_000))
    with av.open(io.BytesIO(data)) as out:
        got = [p for p in out.demux(out.streams.video[0]) if p.size]
    assert [bytes(p) for p in got] == [p.data for p in first + second]  # the camera's own bytes
    assert all(b.dts > a.dts for a, b in zip(got, got[1:]))
