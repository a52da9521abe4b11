"""DetectorBatcher: latest-frame slots, fair round-robin across cameras, a real detector behind it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.detect.batcher import DetectorBatcher
from edge_agent.detect.overload import SHED_ORDER
from edge_agent.frames import Detections, Frame
from edge_agent.health import Health
from tests.fixtures.detector_calls import TAGS, Recorder, calls, run_all, tagged

PHOTO = Path(__file__).resolve().parents[1] / "data" / "person.jpg"
ROOT_PHOTO = Path(__file__).resolve().parents[1] / "data" / "person.jpg"


def frame(cam: str, seq: int, image: np.ndarray | None = None) -> Frame:
    return Frame(cam, seq, seq * 0.2, 1_767_225_600 + seq * 0.2, image if image is not None else np.zeros((8, 8, 3), np.uint8))


def test_a_frame_replaced_before_analysis_counts_as_dropped():
    health, rec = Health(), Recorder()
    TAGS.clear()
    b = DetectorBatcher(rec, on_result=lambda f, d: None, health=health, max_batch=4, max_wait_ms=0)
    for seq in range(3):
        b.submit(tagged("a", seq))
    run_all(b)
    assert calls(rec) == [[("a", 2)]]
    assert b.dropped == 2 and health.counters("a")["frames_dropped"] == 2


def test_frames_go_longest_waiting_first_and_a_replaced_frame_keeps_its_place():
    rec = Recorder()
    TAGS.clear()
    b = DetectorBatcher(rec, on_result=lambda f, d: None, max_batch=4, max_wait_ms=0)
    for cam in "abcdef":
        b.submit(tagged(cam, 0))
    b.step(timeout=0)
    b.submit(tagged("a", 1))  # after b..f: it waits behind them
    run_all(b)
    assert [c[0] for call in calls(rec) for c in call] == list("abcdefa")
    rec.calls.clear()
    b.submit(tagged("c", 2))
    for seq in range(3, 8):  # a busy camera replacing its frame keeps its place, never jumps ahead
        b.submit(tagged("a", seq))
    b.submit(tagged("b", 2))
    run_all(b)
    assert [c for call in calls(rec) for c in call] == [("c", 2), ("a", 7), ("b", 2)]


def test_a_call_holds_as_many_pictures_as_the_budget_at_the_measured_cost():
    b = DetectorBatcher(Recorder(), on_result=lambda f, d: None, max_batch=4, call_budget_s=0.1)
    assert b.room() == 1  # cost not measured yet: one picture
    b.cost_s = 0.07  # a small CPU
    assert b.room() == 1
    b.cost_s = 0.03
    assert b.room() == 3
    b.cost_s = 0.002  # a GPU
    assert b.room() == 4


def test_a_lone_frame_waits_at_most_max_wait_for_company():
    rec = Recorder()
    TAGS.clear()
    b = DetectorBatcher(rec, on_result=lambda f, d: None, max_batch=4, max_wait_ms=50)
    b.cost_s = 0.001  # room for four
    b.submit(tagged("a", 0))
    b.submit(tagged("b", 0))
    b.step(1)  # both cameras seen
    b.submit(tagged("a", 1))
    began = time.monotonic()
    assert b.step(1) == 1
    assert time.monotonic() - began < 1.0  # bounded by max_wait, not by the other cameras
    assert b.step(timeout=0.05) == 0  # nothing waiting: returns after the timeout


@pytest.fixture(scope="module")
def detector():
    from edge_agent.detect.common import DetectorOptions
    from edge_agent.detect.registry import load_detector

    return load_detector("yolov3-tiny", DetectorOptions())


def test_shared_detector_thread_finds_the_person_for_every_camera(detector):
    image = cv2.imread(str(ROOT_PHOTO if ROOT_PHOTO.exists() else PHOTO))
    assert image is not None
    health = Health()
    results: dict[str, list] = {}
    done = threading.Event()

    def on_result(f: Frame, dets) -> None:
        results.setdefault(f.camera, []).append(list(dets.class_name))
        if len(results) == 3:
            done.set()

    b = DetectorBatcher(detector, on_result, health, max_batch=4, max_wait_ms=20)
    b.start()
    try:
        for cam in ("c1", "c2", "c3"):
            b.submit(frame(cam, 0, image))
        assert done.wait(30)
    finally:
        b.stop()
    for cam in ("c1", "c2", "c3"):
        assert "person" in results[cam][0]
        assert health.counters(cam)["frames_analysed"] == 1
    snap = health.snapshot()["detector"]
    assert snap["frames"] == 3 and snap["batches"] >= 1 and snap["ms_per_frame"] > 0


def test_a_failing_batch_is_counted_and_the_thread_lives_on():
    class Broken:
        def __init__(self) -> None:
            self.calls = 0

        def detect(self, images):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("boom")
            return [Detections.empty() for _ in images]  # what a real detector gives on an empty picture

    got = []
    b = DetectorBatcher(Broken(), lambda f, d: got.append(f.seq), max_batch=1, max_wait_ms=0)
    b.start()
    try:
        b.submit(frame("a", 0))
        deadline = time.monotonic() + 5
        while b.errors == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        b.submit(frame("a", 1))
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        b.stop()
    assert b.errors == 1 and got == [1]


def test_past_keeping_up_frames_go_in_whole_batches_with_their_tiles():
    rec = Recorder()
    TAGS.clear()
    b = DetectorBatcher(rec, on_result=lambda f, d: None, max_batch=2, max_wait_ms=0)
    b.policy.level = len(SHED_ORDER)  # fps lowered
    for cam, urgent in (("quiet", False), ("a", True), ("b", True), ("c", True)):
        b.submit(tagged(cam, 0, urgent))
    run_all(b)
    assert [[cam for cam, _ in call] for call in calls(rec)] == [["a", "b"], ["c"], ["quiet"]]
