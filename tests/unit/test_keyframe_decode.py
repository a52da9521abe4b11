"""Keyframe-only decode (`skip_frame`) on a real H.264 clip: when it switches, what it decodes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import av

from edge_agent.detect.overload import SHED_ORDER, OverloadPolicy
from edge_agent.health import Health
from edge_agent.sources.decode import KeyframeDecode

CLIP = Path(__file__).resolve().parents[1] / "footage" / "rail_empty.mp4"  # 640x360, 10 fps, GOP 10 frames


def decode(max_gop_s: float, motion_at: float | None = None, overload: tuple[float, float] | None = None,
           overload_max_gop_s: float = 5.0) -> tuple[list[tuple[float, bool]], KeyframeDecode, Health]:
    """Every decoded frame as (media time, keyframe); motion is reported on the first frame at or
    after `motion_at`, as the gate would; the overload policy sheds decode from `overload[0]` to
    `overload[1]` media seconds."""
    health = Health()
    policy = OverloadPolicy()
    gate = SimpleNamespace(last_urgent=0.0, policy=policy)  # the first frame of a connection is urgent
    mode = KeyframeDecode("cam", gate, health, max_gop_s, quiet_after_s=3.0, overload_max_gop_s=overload_max_gop_s)
    out = []
    with av.open(str(CLIP)) as container:
        stream = container.streams.video[0]
        tb = float(stream.time_base)
        mode.attach(stream)
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            if overload is not None:
                on = overload[0] <= packet.pts * tb < overload[1]
                policy.level = SHED_ORDER.index("decode") + 1 if on else 0
            mode.before(packet, packet.pts * tb)
            for frame in packet.decode():
                t = frame.pts * tb
                out.append((round(t, 2), frame.key_frame))
                if motion_at is not None and t >= motion_at and gate.last_urgent < motion_at:
                    gate.last_urgent = t
    return out, mode, health


def test_a_quiet_camera_with_a_short_gop_decodes_only_keyframes_after_the_quiet_time():
    frames, mode, health = decode(max_gop_s=2.0)
    assert mode.gop_s == 1.0 and health.snapshot()["cameras"]["cam"]["gop_s"] == 1.0
    before = [t for t, _ in frames if t < 3.0]
    assert len(before) == 30  # every frame while the GOP is measured and the quiet time runs
    later = [(t, key) for t, key in frames if t >= 4.0]
    assert later and all(key for _, key in later)
    assert [t for t, _ in later] == [float(s) for s in range(4, 4 + len(later))]  # one a second: the GOP
    assert health.snapshot()["cameras"]["cam"]["decode"] == "keyframes"
    assert health.counters("cam")["decode_switches"] == 1


def test_motion_on_a_keyframe_resumes_full_decode_with_the_next_frame():
    frames, mode, health = decode(max_gop_s=2.0, motion_at=8.0)
    times = [t for t, _ in frames]
    assert 7.5 not in times  # keyframes only before the motion
    assert [t for t in times if 8.0 <= t < 9.0] == [round(8.0 + i / 10, 2) for i in range(10)]
    assert health.counters("cam")["decode_switches"] >= 2
    # quiet again for 3 s: back to keyframes at the first keyframe after that
    assert [t for t in times if 11.0 < t < 12.0] == []


def test_a_gop_longer_than_the_bound_keeps_full_decode():
    frames, mode, health = decode(max_gop_s=0.5)
    assert mode.gop_s == 1.0 and not mode.keyframes_only
    assert len(frames) == 200 and health.counters("cam")["decode_switches"] == 0
    assert health.snapshot()["cameras"]["cam"]["decode"] == "full"


def test_zero_bound_turns_it_off():
    frames, mode, _ = decode(max_gop_s=0.0)
    assert len(frames) == 200 and not mode.keyframes_only


def test_under_overload_a_quiet_camera_decodes_keyframes_whatever_its_gop_and_returns_to_its_rule_after():
    # the clip's 1 s GOP is longer than the 0.5 s bound: full decode, except while overload sheds decode
    frames, mode, health = decode(max_gop_s=0.5, overload=(5.0, 12.0))
    times = [t for t, _ in frames]
    assert [t for t in times if 4.0 <= t < 5.0] == [round(4.0 + i / 10, 2) for i in range(10)]  # not yet
    assert [t for t in times if 5.0 <= t < 12.0] == [float(s) for s in range(5, 12)]  # keyframes only
    assert [t for t in times if 12.0 <= t < 13.0] == [round(12.0 + i / 10, 2) for i in range(10)]  # relaxed
    assert not mode.keyframes_only and health.counters("cam")["decode_switches"] == 2
    info = health.snapshot()["cameras"]["cam"]
    assert (info["decode"], info["decode_reason"]) == ("full", None)


def test_health_says_why_a_camera_is_on_keyframes():
    _, _, health = decode(max_gop_s=0.5, overload=(5.0, 30.0))
    assert health.snapshot()["cameras"]["cam"]["decode_reason"] == "overload"
    _, _, health = decode(max_gop_s=2.0, overload=(5.0, 30.0))  # its own GOP rule comes first
    assert health.snapshot()["cameras"]["cam"]["decode_reason"] == "gop"


def test_under_overload_a_gop_past_the_overload_bound_keeps_full_decode():
    frames, mode, health = decode(max_gop_s=0.5, overload=(0.0, 30.0), overload_max_gop_s=0.8)
    assert len(frames) == 200 and health.counters("cam")["decode_switches"] == 0
