"""The overload policy: what is shed in which order, urgent frames first, `analysis_degraded`."""

from __future__ import annotations

import time

import numpy as np

from edge_agent.alarms.degraded import DegradedMonitor
from edge_agent.alarms.event import EventContext
from edge_agent.clock import FakeClock
from edge_agent.detect.batcher import DetectorBatcher
from edge_agent.detect.overload import IDLE_STRETCH, SHED_ORDER, OverloadPolicy
from edge_agent.detect.tiles import Tiling
from edge_agent.frames import Frame
from edge_agent.health import Health
from tests.fixtures.detector_calls import Recorder, calls, run_all, tagged


def frame(cam: str, seq: int, urgent: bool) -> Frame:
    return Frame(cam, seq, seq * 0.2, 1_767_225_600 + seq * 0.2, np.zeros((8, 8, 3), np.uint8), urgent=urgent)


def overloaded_window(policy: OverloadPolicy, clock: FakeClock, urgent_lost: int = 1) -> None:
    for _ in range(urgent_lost):
        policy.frame_lost(urgent=True)
    clock.advance(policy.window_s)
    policy.tick()


def relaxed_window(policy: OverloadPolicy, clock: FakeClock) -> None:
    clock.advance(policy.window_s)
    policy.batch_done(0.1 * policy.window_s)  # busy a tenth of the window


def test_shed_order_is_tiles_then_idle_checks_then_decode_then_fps_and_back_in_reverse():
    clock = FakeClock()
    policy = OverloadPolicy(max_motion_gap_s=1.0, clock=clock.monotonic)
    assert policy.state()["shed"] == [] and policy.effective_fps(5.0) == 5.0
    overloaded_window(policy, clock)
    assert policy.state()["shed"] == ["tiles"] and policy.idle_stretch() == 1.0
    overloaded_window(policy, clock)
    assert policy.state()["shed"] == ["tiles", "idle"] and policy.idle_stretch() == IDLE_STRETCH
    assert policy.effective_fps(5.0) == 5.0
    overloaded_window(policy, clock)
    assert policy.state()["shed"] == ["tiles", "idle", "decode"] and policy.shedding("decode")
    assert policy.effective_fps(5.0) == 5.0
    overloaded_window(policy, clock)
    assert policy.state()["shed"] == ["tiles", "idle", "decode", "fps"]
    lowered = policy.effective_fps(5.0)
    assert lowered < 5.0
    assert policy.effective_fps(10.0) / 10.0 == lowered / 5.0  # lowered evenly: the same share of each
    for _ in range(30):
        overloaded_window(policy, clock)
    # never below two samples per max_motion_gap_s, nor above what the camera asked for
    assert policy.effective_fps(5.0) == 2.0 and policy.effective_fps(1.0) == 1.0
    for _ in range(60):
        relaxed_window(policy, clock)
    state = policy.state()
    assert (state["overloaded"], state["level"], state["shed"], state["fps_scale"]) == (False, 0, [], 1.0)
    assert state["overloaded_windows"] == 34


def test_a_lost_idle_check_is_not_overload_but_a_lost_urgent_frame_is():
    clock = FakeClock()
    policy = OverloadPolicy(clock=clock.monotonic)
    policy.frame_lost(urgent=False)
    clock.advance(policy.window_s)
    policy.batch_done(0.5)
    assert policy.level == 0
    overloaded_window(policy, clock)
    assert policy.level == 1


def test_a_window_between_the_thresholds_holds_the_level():
    clock = FakeClock()
    policy = OverloadPolicy(clock=clock.monotonic)
    overloaded_window(policy, clock)
    clock.advance(policy.window_s)
    policy.batch_done(0.75 * policy.window_s)
    assert policy.level == 1


def test_urgent_frames_are_detected_before_idle_checks_that_waited_longer():
    rec = Recorder()
    b = DetectorBatcher(rec, on_result=lambda f, d: None, max_batch=2, max_wait_ms=0)
    b.cost_s = 0.04  # room for two
    for cam, urgent in (("quiet1", False), ("quiet2", False), ("busy1", True), ("busy2", True)):
        b.submit(tagged(cam, 0, urgent))
    run_all(b)
    assert [[cam for cam, _ in call] for call in calls(rec)] == [["busy1", "busy2"], ["quiet1", "quiet2"]]


def test_a_camera_following_an_object_goes_before_motion_alone_until_that_waited_half_the_gap():
    # three rain cameras' frames ahead of the busy camera's replaced its frame at 12 cameras
    rec = Recorder()
    b = DetectorBatcher(rec, on_result=lambda f, d: None, max_batch=1, max_wait_ms=0,
                        policy=OverloadPolicy(max_motion_gap_s=0.2))
    for cam in ("rain1", "rain2"):
        b.submit(tagged(cam, 0, urgent=True))
    b.submit(tagged("busy", 0, urgent=True, following=True))
    b.submit(tagged("quiet", 0, urgent=False))
    run_all(b)
    assert [cam for call in calls(rec) for cam, _ in call] == ["busy", "rain1", "rain2", "quiet"]
    rec.calls.clear()
    b.submit(tagged("rain1", 1, urgent=True))
    time.sleep(0.11)  # past half of max_motion_gap_s: motion alone is not held back any longer
    b.submit(tagged("busy", 1, urgent=True, following=True))
    b.submit(tagged("rain2", 1, urgent=True))
    run_all(b)
    assert [cam for call in calls(rec) for cam, _ in call] == ["rain1", "busy", "rain2"]


def test_a_following_camera_keeps_one_frame_behind_the_waiting_one_until_the_box_is_saturated():
    # at 16 cameras, two busy in step, a busy frame was replaced while its camera's previous frame
    # and entry tiles were still in the detector
    rec = Recorder()
    clock = FakeClock()
    policy = OverloadPolicy(max_motion_gap_s=1.0, clock=clock.monotonic)
    b = DetectorBatcher(rec, on_result=lambda f, d: None, max_batch=1, max_wait_ms=0, policy=policy)
    for seq in range(4):  # 0 is waiting, 1 behind it; 2 and 3 each replace the one behind
        b.submit(tagged("busy", seq, urgent=True, following=True))
    b.submit(tagged("rain", 0, urgent=True))
    b.submit(tagged("rain", 1, urgent=True))  # motion alone: replaced as before
    run_all(b)
    assert sorted(cam_seq for call in calls(rec) for cam_seq in call) == [("busy", 0), ("busy", 3), ("rain", 1)]
    assert b.dropped == 3 and b.waiting() == 0
    rec.calls.clear()
    while not policy.saturated():  # urgent frames lost window after window: fps lowered
        overloaded_window(policy, clock)
    for seq in (4, 5):
        b.submit(tagged("busy", seq, urgent=True, following=True))
    run_all(b)
    assert [cam_seq for call in calls(rec) for cam_seq in call] == [("busy", 5)]


def test_saturated_following_cameras_take_all_but_one_place_of_a_call_motion_alone_the_last():
    rec = Recorder()
    clock = FakeClock()
    policy = OverloadPolicy(max_motion_gap_s=1.0, clock=clock.monotonic)
    while not policy.saturated():
        overloaded_window(policy, clock)
    b = DetectorBatcher(rec, on_result=lambda f, d: None, max_batch=4, max_wait_ms=0, policy=policy)
    for cam in ("rain1", "rain2", "rain3"):  # waiting longest
        b.submit(tagged(cam, 0, urgent=True))
    for cam in ("busy1", "busy2", "busy3", "busy4"):
        b.submit(tagged(cam, 0, urgent=True, following=True))
    run_all(b)
    assert [sorted(cam for cam, _ in call) for call in calls(rec)] == [
        ["busy1", "busy2", "busy3", "rain1"], ["busy4", "rain2", "rain3"]]
    rec.calls.clear()
    one = DetectorBatcher(rec, on_result=lambda f, d: None, max_batch=1, max_wait_ms=0, policy=policy)
    one.submit(tagged("rain1", 1, urgent=True))  # with one place a call, by their wait as before
    time.sleep(0.55)  # past half the gap, as every frame of a saturated box
    one.submit(tagged("busy1", 1, urgent=True, following=True))
    run_all(one)
    assert [cam for call in calls(rec) for cam, _ in call] == ["rain1", "busy1"]


def test_among_frames_past_half_the_gap_object_motion_goes_before_other_motion_alone():
    # 48 cameras starting together: every first look and the unlearned rain waited past the gap,
    # and by their wait alone a walker's first two analyses came 5 s apart
    rec = Recorder()
    b = DetectorBatcher(rec, on_result=lambda f, d: None, max_batch=1, max_wait_ms=0,
                        policy=OverloadPolicy(max_motion_gap_s=0.2))
    b.submit(tagged("rain", 0, urgent=True))
    b.submit(tagged("first", 0, urgent=True))
    time.sleep(0.11)  # both past half the gap
    b.submit(tagged("walker", 0, urgent=True, object_motion=True))  # not yet: by its wait
    run_all(b)
    assert [cam for call in calls(rec) for cam, _ in call] == ["rain", "first", "walker"]
    rec.calls.clear()
    b.submit(tagged("rain", 1, urgent=True))
    b.submit(tagged("walker", 1, urgent=True, object_motion=True))
    time.sleep(0.11)
    run_all(b)
    assert [cam for call in calls(rec) for cam, _ in call] == ["walker", "rain"]


class EightTiles(Tiling):
    """The still camera's idle check carries its eight sweep tiles; the others none."""

    def select(self, frame, shed_sweep=False, shed_moving=False):
        return [(0, 0, 4, 4)] * 8 if frame.camera == "still" else []


class AskedTiles(Tiling):
    """Records what each camera's frame was asked to shed."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: dict[str, tuple[bool, bool]] = {}

    def select(self, frame, shed_sweep=False, shed_moving=False):
        self.asked[frame.camera] = (shed_sweep, shed_moving)
        return []


def test_saturated_a_following_camera_sheds_its_moving_tiles_and_motion_alone_keeps_them():
    # 48 cameras, 6 busy: the busy cameras' moving tiles were half of each call's pictures, and a
    # busy camera's first alarm came a sample past the bound; held tiles still run (tiles' tests)
    rec, tiling = Recorder(), AskedTiles()
    b = DetectorBatcher(rec, on_result=lambda f, d: None, max_batch=4, max_wait_ms=0, tiling=tiling)
    b.submit(tagged("busy", 0, urgent=True, following=True))
    b.submit(tagged("rain", 0, urgent=True))
    run_all(b)
    assert tiling.asked == {"busy": (False, False), "rain": (False, False)}  # keeping up: all tiles
    b.policy.level = len(SHED_ORDER)  # fps lowered: saturated
    b.submit(tagged("busy", 1, urgent=True, following=True))
    b.submit(tagged("rain", 1, urgent=True))
    run_all(b)
    assert tiling.asked == {"busy": (True, True), "rain": (True, False)}


def test_an_urgent_frame_waits_one_call_not_an_idle_checks_eight_tiles():
    # One call of an idle check and its sweep tiles held the detector for 600 ms, three of a busy
    # camera's frame intervals; now the busy frame goes at the next call, alone.
    rec, results = Recorder(), []
    b = DetectorBatcher(rec, on_result=lambda f, d: results.append(f.camera), max_batch=4, max_wait_ms=0,
                        tiling=EightTiles())
    b.cost_s = 0.02  # room for four
    b.submit(tagged("still", 0, urgent=False))
    b.step(0)
    b.submit(tagged("busy", 0, urgent=True))
    run_all(b)
    cams = [[cam for cam, _ in call] for call in calls(rec)]
    assert cams == [["still"] * 4, ["busy"], ["still"] * 4, ["still"]]
    assert results == ["busy", "still"]  # each frame handed on once, with all its pictures
    b.stop()  # stopping with nothing waiting: the last step finds nothing, no error
    assert b.step(timeout=0.1) == 0


def test_a_cameras_next_frame_waits_for_its_frames_tiles_and_is_not_lost():
    # a far boat only a tile sees must keep its tiles: cutting them short for the camera's next
    # frame lost the boat of boats_far_rough over RTSP
    rec, results = Recorder(), []
    b = DetectorBatcher(rec, on_result=lambda f, d: results.append(f.seq), max_batch=1, max_wait_ms=0,
                        tiling=EightTiles())
    b.submit(tagged("still", 0, urgent=True))
    b.step(0)
    b.step(0)  # its full frame and one tile
    b.submit(tagged("still", 1, urgent=True))  # frame 0 has seven tiles to go
    run_all(b)
    assert results == [0, 1] and b.dropped == 0
    assert [seq for call in calls(rec) for _, seq in call] == [0] * 9 + [1] * 9


def test_urgent_waits_report_begun_and_still_waiting_urgent_frames_only():
    b = DetectorBatcher(Recorder(), on_result=lambda f, d: None, max_batch=1, max_wait_ms=0)
    for cam, urgent in (("busy", True), ("other", True), ("quiet", False)):
        b.submit(tagged(cam, 0, urgent))
    b.step(0)  # busy's analysis done; other's not begun
    assert set(b.urgent_waits()) == {"busy", "other"}  # begun, and still waiting; never the idle check
    b.step(0)
    assert set(b.urgent_waits()) == {"other"}
    assert b.urgent_waits() == {}  # reported once


def test_analysis_degraded_starts_past_the_bound_and_ends_after_a_clean_hold():
    clock = FakeClock()
    health = Health(clock)
    monitor = DegradedMonitor(health, lambda cam: EventContext("site", "edge", cam), max_gap_s=1.0, end_after_s=10.0)
    assert monitor.check({"a": 0.9}) == []
    started = monitor.check({"a": 1.4, "b": 0.2})
    assert [(o.event.type, o.event.phase, o.event.camera) for o in started] == [("analysis_degraded", "start", "a")]
    assert started[0].event.details["waited_s"] == 1.4 and "effective_fps" in started[0].event.details
    clock.advance(6.0)
    assert monitor.check({"a": 1.2}) == []  # starved again: the hold starts over, no second start
    clock.advance(9.0)
    assert monitor.check({"a": 0.3}) == []  # served in time, but not for 10 s yet
    clock.advance(1.5)
    ended = monitor.check({})
    assert [(o.event.phase, o.event.details["end_reason"]) for o in ended] == [("end", "recovered")]
    assert ended[0].event.event_id == started[0].event.event_id
    assert "effective_fps" in ended[0].event.details


def test_a_decoder_behind_real_time_is_overload_a_little_late_is_not():
    clock = FakeClock()
    policy = OverloadPolicy(clock=clock.monotonic)
    policy.decoded_late(0.3)  # jitter, a slow keyframe
    clock.advance(policy.window_s)
    policy.batch_done(0.1)  # the detector is nearly idle: decode threads run below it
    assert policy.level == 0
    policy.decoded_late(1.5)
    clock.advance(policy.window_s)
    policy.batch_done(0.1)
    assert policy.level == 1


def test_lateness_is_measured_from_the_connections_wall_anchor():
    from types import SimpleNamespace

    from edge_agent.sources.rtsp import _Connection

    clock = FakeClock()
    conn = _Connection(SimpleNamespace(clock=clock, _t0=clock.monotonic(), _media_end=0.0), 1 / 90000, 25.0)
    assert conn.late(0.0) == 0.0  # nothing dated yet
    conn.wall_time(0.0)
    clock.advance(2.0)
    assert conn.late(2.0) == 0.0  # on time
    assert conn.late(0.5) == 1.5  # decoded 1.5 s after real time allowed


def test_decoders_behind_or_fps_lowered_is_saturated_and_a_calm_window_is_not():
    clock = FakeClock()
    policy = OverloadPolicy(clock=clock.monotonic)
    assert not policy.saturated()
    policy.decoded_late(2.0)
    clock.advance(policy.window_s)
    policy.tick()
    assert policy.saturated() and not policy.shedding("fps")
    relaxed_window(policy, clock)
    assert not policy.saturated()
    for _ in range(len(SHED_ORDER)):
        overloaded_window(policy, clock)
    assert policy.shedding("fps") and policy.saturated()


def test_an_idle_check_with_an_urgent_frame_behind_it_is_not_held_by_another_cameras_motion():
    rec, results = Recorder(), []
    b = DetectorBatcher(rec, on_result=lambda f, d: results.append((f.camera, f.seq)), max_batch=1, max_wait_ms=0,
                        tiling=EightTiles())
    b.submit(tagged("still", 0, urgent=False))
    b.step(0)  # the idle check's full frame; eight sweep tiles to go
    b.submit(tagged("still", 1, urgent=True))  # something moved there
    for seq in range(40):  # a busy camera, urgent all along
        b.submit(tagged("busy", seq, urgent=True))
        b.step(0)
    assert ("still", 0) in results and ("still", 1) in results
