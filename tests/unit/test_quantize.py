"""The INT8 variant (edge_agent/detect/quantize.py): calibration pictures and the quantised model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx

from edge_agent.detect.common import DetectorOptions
from edge_agent.detect.quantize import calibration_pictures
from edge_agent.detect.registry import Registry, load_detector
from tests.data.scenes import PERSON_PHOTO, PERSON_PHOTO_TRUTH, best_match

DATA = Path(__file__).resolve().parents[1] / "data"


def test_calibration_pictures_are_seeded_and_never_an_evaluation_frame():
    first = list(calibration_pictures(DATA / "backgrounds", DATA / "cutouts", 4, seed=0))
    again = list(calibration_pictures(DATA / "backgrounds", DATA / "cutouts", 4, seed=0))
    other = list(calibration_pictures(DATA / "backgrounds", DATA / "cutouts", 4, seed=1))
    assert len(first) == 4 and all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    plain = cv2.imread(str(DATA / "backgrounds" / "beach-malibu.jpg"))  # the first still, sorted
    assert first[0].shape == plain.shape and not np.array_equal(first[0], plain)  # cut-outs were pasted


def test_the_int8_model_is_quantised_and_still_finds_the_hand_marked_person():
    reg = Registry()
    path = reg.path_of("yolov3-tiny-int8")
    assert path.exists(), "scripts/setup.sh fetches yolov3-tiny-int8 (`edge-agent models fetch yolov3-tiny-int8`)"
    ops = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert path.stat().st_size < reg.path_of("yolov3-tiny").stat().st_size / 2
    det = load_detector("yolov3-tiny-int8", DetectorOptions())
    overlap, score = best_match(det.detect([cv2.imread(str(PERSON_PHOTO))])[0], "person", PERSON_PHOTO_TRUTH)
    assert overlap >= 0.5 and score >= 0.25, (overlap, score)
