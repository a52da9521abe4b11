"""Rectangular input (detect/rect.py): the input size a picture gets, which graphs take it, and
the default model finding what was pasted into real backgrounds at the right place on it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_agent.detect.common import DetectorOptions
from edge_agent.detect.onnx_nanodet import NanoDetDetector
from edge_agent.detect.rect import free_input_shape, probe, rect_size, uses_rect
from edge_agent.detect.registry import Registry, load_detector

from tests.data import scenes


@pytest.mark.parametrize("shape,expected", [
    ((720, 1280, 3), (416, 288)),    # 16:9 at 0.325: 416x234, at least 16 px of grey each side -> 288
    ((1080, 1920, 3), (416, 288)),
    ((360, 480, 3), (416, 352)),     # 4:3 at 0.867: 416x312 -> 352
    ((1280, 720, 3), (288, 416)),    # a portrait camera narrows instead
    ((416, 416, 3), (416, 416)),     # a tile stays square
    ((400, 416, 3), (416, 416)),     # never past the square
    ((10, 2000, 3), (416, 64)),
])
def test_rect_size(shape: tuple[int, int, int], expected: tuple[int, int]) -> None:
    w, h = rect_size(shape, (416, 416), 32)
    assert (w, h) == expected
    scale = min(416 / shape[1], 416 / shape[0])
    for side, picture in ((w, shape[1] * scale), (h, shape[0] * scale)):
        assert side == 416 or side - picture >= 32  # half a stride of grey each side, or the square's


def test_tensorrt_keeps_the_square() -> None:
    assert uses_rect(True, "CPUExecutionProvider") and uses_rect(True, "CUDAExecutionProvider")
    assert not uses_rect(True, "TensorrtExecutionProvider")
    assert not uses_rect(False, "CPUExecutionProvider")


def _model(path: Path, fixed_reshape: bool) -> Path:
    """A 3x64x64 -> conv -> (reshape to the square's element count) graph."""
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    conv = helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1])
    nodes, inits = [conv], [w]
    if fixed_reshape:
        inits.append(numpy_helper.from_array(np.array([1, 4 * 64 * 64], np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["c", "shape"], ["y"]))
    else:
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("fixed_reshape,takes_rect", [(False, True), (True, False)])
def test_probe_finds_graphs_fixed_to_their_square(tmp_path: Path, fixed_reshape: bool, takes_rect: bool) -> None:
    freed = free_input_shape(_model(tmp_path / "m.onnx", fixed_reshape))
    assert freed is not None
    session = ort.InferenceSession(freed, providers=["CPUExecutionProvider"])
    assert probe(lambda x: session.run(None, {"x": x}), (64, 64), 32) is takes_rect


@pytest.fixture(scope="module")
def pair() -> tuple[NanoDetDetector, NanoDetDetector]:
    Registry().fetch("nanodet-g-416")
    rect = load_detector("nanodet-g-416", DetectorOptions(min_score=0.25, threads=2))
    square = load_detector("nanodet-g-416", DetectorOptions(min_score=0.25, threads=2, rect=False))
    assert isinstance(rect, NanoDetDetector) and isinstance(square, NanoDetDetector)
    return rect, square


def test_default_model_runs_rect_by_default(pair: tuple[NanoDetDetector, NanoDetDetector]) -> None:
    rect, square = pair
    assert rect.rect_multiple == 32 and square.rect_multiple == 0
    assert rect.input_for((720, 1280, 3)) == (416, 288) and square.input_for((720, 1280, 3)) == (416, 416)


def _wide(image: np.ndarray, truth: tuple) -> tuple[np.ndarray, tuple]:
    """The 480x360 composite widened to 16:9 (a camera frame's shape) by mirroring its sides."""
    return cv2.copyMakeBorder(image, 0, 0, 80, 80, cv2.BORDER_REFLECT), (truth[0] + 80, truth[1], truth[2] + 80, truth[3])


@pytest.mark.parametrize("cutout,bg,x,bottom,height,label", [
    ("nathan", "train-tracks1", 200, 330, 120, "person"),
    ("nathan", "boardwalk", 120, 330, 100, "person"),
    ("sail-boat", "lake", 20, 350, 120, "boat"),  # touching the picture's bottom edge
    ("yacht", "lake", 220, 350, 70, "boat"),
])
def test_rect_finds_what_was_pasted_where_it_was_pasted(pair, cutout: str, bg: str, x: int, bottom: int,
                                                        height: int, label: str) -> None:
    rect, _ = pair
    image, truth = scenes.compose(scenes.background(bg), scenes.cutout(cutout), x, bottom, height)
    frame, truth = _wide(image, truth)
    assert rect.input_for(frame.shape) == (416, 288)  # the test is about the rect input
    overlap, score = scenes.best_match(rect.detect([frame])[0], label, truth)
    assert overlap >= 0.5 and score >= 0.35, (overlap, score)


def test_frames_and_tiles_in_one_call_match_single_calls(pair) -> None:
    rect, _ = pair
    frame = cv2.resize(cv2.imread(str(scenes.PERSON_PHOTO)), (1280, 720))
    tile = np.ascontiguousarray(frame[100:516, 400:816])
    together = rect.detect([frame, tile, frame])
    for image, batched in zip([frame, tile, frame], together):
        alone = rect.detect([image])[0]
        assert len(alone) == len(batched) > 0
        np.testing.assert_allclose(alone.xyxy, batched.xyxy, atol=0.05)
        np.testing.assert_allclose(alone.confidence, batched.confidence, atol=1e-4)
