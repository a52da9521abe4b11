"""UltralyticsOnnxDetector against Ultralytics' own predictions (no torch needed) and a hand-made graph.

tests/data/ultralytics/ holds a real Ultralytics export (YOLOv8n graph, 1/16 width, untrained,
320x320) and golden.json: what Ultralytics' predictor (its LetterBox, NMS, scale_boxes) returned
on the three frames there at conf 0.001. Made by scripts/make_ultralytics_golden.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_agent.detect.common import DetectorOptions
from edge_agent.detect.common import parse_names
from edge_agent.detect.onnx_ultralytics import UltralyticsOnnxDetector
from edge_agent.detect.registry import load_detector
from edge_agent.errors import ModelError
from edge_agent.frames import iou_matrix

DATA = Path(__file__).resolve().parents[1] / "data" / "ultralytics"
GOLDEN = json.loads((DATA / "golden.json").read_text())


def matched(golden: dict, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Per golden box: does one of ours have the same class, IoU > 0.9 and a score within 1e-3?

    Boxes clipped at the image border can coincide, so the score is part of the match."""
    gx = np.asarray(golden["xyxy"], dtype=np.float64).reshape(-1, 4)
    gc, gs = np.asarray(golden["cls"]), np.asarray(golden["conf"])
    if len(gx) == 0 or len(xyxy) == 0:
        return np.zeros(len(gx), dtype=bool)
    ok = (iou_matrix(gx, xyxy.astype(np.float64)) > 0.9) & (gc[:, None] == cls[None, :])
    ok &= np.abs(gs[:, None] - conf[None, :]) < 1e-3
    return ok.any(axis=1)


@pytest.fixture(scope="module")
def detector() -> UltralyticsOnnxDetector:
    opts = DetectorOptions(min_score=GOLDEN["conf"], iou=GOLDEN["iou"])
    return UltralyticsOnnxDetector(DATA / GOLDEN["model"], opts, None)


def test_names_and_size_come_from_the_export_metadata(detector: UltralyticsOnnxDetector) -> None:
    assert len(detector.names) == 80
    assert detector.names[0] == "person" and detector.names[8] == "boat"
    assert detector.input_size == (GOLDEN["imgsz"], GOLDEN["imgsz"])
    assert detector.provider == "CPUExecutionProvider"


@pytest.mark.parametrize("frame", sorted(GOLDEN["frames"]))
def test_boxes_match_ultralytics_own_predictions(detector: UltralyticsOnnxDetector, frame: str) -> None:
    golden = GOLDEN["frames"][frame]
    assert len(golden["conf"]) >= 250, "golden file too thin to prove anything; remake it"
    image = cv2.imread(str(DATA / frame))
    det = detector.detect([image])[0]
    ok = matched(golden, det.xyxy, det.confidence, det.class_id)
    # Float32 NMS ties at the 0.7 IoU border may flip a box or two; more is a real difference.
    assert ok.sum() >= 0.97 * len(ok), f"{frame}: {ok.sum()}/{len(ok)} golden boxes matched"
    assert len(det) == len(golden["conf"])  # same NMS survivors, capped at max_det like Ultralytics
    assert set(det.data["class_name"]) <= set(detector.names)
    h, w = image.shape[:2]
    assert det.xyxy[:, [0, 2]].max() <= w and det.xyxy[:, [1, 3]].max() <= h


def test_batch_gives_the_same_boxes_as_singles(detector: UltralyticsOnnxDetector) -> None:
    frames = sorted(GOLDEN["frames"])
    images = [cv2.imread(str(DATA / f)) for f in frames]
    batch = detector.detect(images)
    for frame, det in zip(frames, batch):
        ok = matched(GOLDEN["frames"][frame], det.xyxy, det.confidence, det.class_id)
        assert ok.sum() >= 0.97 * len(ok)


def test_registry_picks_this_backend_for_an_ultralytics_onnx() -> None:
    det = load_detector(str(DATA / GOLDEN["model"]), DetectorOptions(min_score=0.5))
    assert isinstance(det, UltralyticsOnnxDetector)
    assert det.names[0] == "person"


def _constant_model(path: Path, output: np.ndarray, names: str, imgsz: str = "[32, 32]") -> Path:
    """An ONNX graph whose output is `output` whatever the image: decode and geometry in isolation."""
    img = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))
    # 0 * mean(images) + constant: the output depends on the input, so ORT keeps the input.
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["z", "const"], ["output0"]),
    ]
    inits = [numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
             numpy_helper.from_array(output.astype(np.float32), "const")]
    graph = helper.make_graph(nodes, "g", [img], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in {"author": "Ultralytics", "task": "detect", "stride": "32", "imgsz": imgsz,
                 "names": names}.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))
    return path


def test_decode_letterbox_geometry_and_per_class_nms(tmp_path: Path) -> None:
    # Anchors (columns): cx, cy, w, h, score person, score boat. Input 32x32, image 64x32 →
    # scale 0.5, image rows sit at input y 8..24.
    out = np.array([[
        [16, 16.5, 16, 4],  # cx
        [16, 16.0, 16, 20],  # cy
        [8, 8, 8, 4],  # w
        [4, 4, 4, 4],  # h
        [0.2, 0.1, 0.05, 0.001],  # person
        [0.1, 0.05, 0.9, 0.0005],  # boat
    ]], dtype=np.float32)
    path = _constant_model(tmp_path / "c.onnx", out, "{0: 'person', 1: 'boat'}")
    det = UltralyticsOnnxDetector(path, DetectorOptions(min_score=0.01, iou=0.7), None)
    got = det.detect([np.zeros((32, 64, 3), np.uint8)])[0]
    # Anchor 2 (boat 0.9), anchor 0 (person 0.2); anchor 1 (person 0.1) overlaps anchor 0 with
    # IoU 0.88 and is suppressed; anchor 3 is under min_score.
    assert got.class_id.tolist() == [1, 0]
    assert list(got.data["class_name"]) == ["boat", "person"]
    np.testing.assert_allclose(got.confidence, [0.9, 0.2], rtol=1e-6)
    np.testing.assert_allclose(got.xyxy, [[24, 12, 40, 20], [24, 12, 40, 20]], atol=1e-4)


def test_wrong_class_count_is_a_model_error(tmp_path: Path) -> None:
    out = np.zeros((1, 6, 4), np.float32)
    path = _constant_model(tmp_path / "bad.onnx", out, "{0: 'a', 1: 'b', 2: 'c'}")
    with pytest.raises(ModelError, match="does not fit 4 box values"):
        UltralyticsOnnxDetector(path, DetectorOptions(), None)


def test_parse_names_forms_and_errors() -> None:
    assert parse_names("{0: 'person', 1: 'bicycle'}", "m") == ["person", "bicycle"]
    assert parse_names("{0: 'a', 2: 'c'}", "m") == ["a", "1", "c"]  # a gap keeps ids aligned
    assert parse_names("['x', 'y']", "m") == ["x", "y"]
    with pytest.raises(ModelError, match="m: metadata 'names'"):
        parse_names("{0: person}", "m")
    with pytest.raises(ModelError, match="non-integer class ids"):
        parse_names("{'a': 'b'}", "m")
