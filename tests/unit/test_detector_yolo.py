"""The default detector (YOLOv3-tiny via ONNX Runtime) on real images with known object positions."""

from __future__ import annotations


import cv2
import numpy as np
import pytest

from edge_agent.detect.common import DetectorOptions
from edge_agent.detect.onnx_darknet import DarknetDetector
from edge_agent.detect.registry import Registry, load_detector



from tests.data import scenes  # composites with known boxes, shared with bench_detector.py


@pytest.fixture(scope="session")
def detector() -> DarknetDetector:
    Registry().fetch("yolov3-tiny")  # what `edge-agent models fetch` does; a no-op when present
    det = load_detector("yolov3-tiny", DetectorOptions(min_score=0.25))
    assert isinstance(det, DarknetDetector)
    return det


def test_person_photo_box_at_true_position(detector: DarknetDetector) -> None:
    image = cv2.imread(str(scenes.PERSON_PHOTO))
    dets = detector.detect([image])[0]
    overlap, score = scenes.best_match(dets, "person", scenes.PERSON_PHOTO_TRUTH)
    assert score > 0.8 and overlap > 0.8, (overlap, score)
    assert {"dog", "horse"} <= set(dets.class_name)
    # one person only: NMS merged the overlapping candidates
    assert list(dets.class_name).count("person") == 1
    assert dets.class_id[list(dets.class_name).index("person")] == 0


@pytest.mark.parametrize("cut,x,height", [("dan1", 200, 100), ("sam", 40, 160), ("nathan", 340, 100)])
def test_person_on_rail_track_lands_where_pasted(detector: DarknetDetector, cut: str, x: int, height: int) -> None:
    image, truth = scenes.compose(scenes.background("train-tracks1"), scenes.cutout(cut), x, 330, height)
    dets = detector.detect([image])[0]
    overlap, score = scenes.best_match(dets, "person", truth)
    assert score >= 0.25 and overlap >= 0.6, (truth, dets.xyxy, dets.class_name)
    feet = dets[np.argmax([scenes.iou(b, truth) for b in dets.xyxy])].anchors()[0]
    assert abs(feet[0] - (truth[0] + truth[2]) / 2) < 0.15 * (truth[2] - truth[0]) + 4
    assert abs(feet[1] - truth[3]) < 0.15 * height


@pytest.mark.parametrize("bg", ["lake", "city-with-water"])
def test_boat_on_water_lands_where_pasted(detector: DarknetDetector, bg: str) -> None:
    image, truth = scenes.compose(scenes.background(bg), scenes.cutout("yacht"), 120, scenes.WATERLINE[bg], 70)
    dets = detector.detect([image])[0]
    overlap, score = scenes.best_match(dets, "boat", truth)
    # the truth box includes the mast's thin lines, the detector boxes the hull: IoU ~0.55-0.7
    assert score >= 0.4 and overlap >= 0.45, (truth, dets.xyxy, dets.class_name, dets.confidence)


def test_empty_backgrounds_have_no_person_or_boat(detector: DarknetDetector) -> None:
    images = [scenes.background(name) for name in scenes.EMPTY_BACKGROUNDS]
    for name, dets in zip(scenes.EMPTY_BACKGROUNDS, detector.detect(images)):
        found = {n for n in dets.class_name if n in ("person", "boat")}
        assert not found, (name, list(zip(dets.class_name, dets.confidence)))


def test_batch_of_four_equals_four_singles(detector: DarknetDetector) -> None:
    assert detector.fixed_batch is None  # dynamic batch: the four go through one session.run
    photo = cv2.imread(str(scenes.PERSON_PHOTO))
    track, _ = scenes.compose(scenes.background("train-tracks1"), scenes.cutout("nathan"), 200, 330, 120)
    lake, _ = scenes.compose(scenes.background("lake"), scenes.cutout("yacht"), 120, 350, 70)
    images = [photo, track, lake, cv2.resize(photo, (320, 480))]  # mixed sizes and aspect ratios
    batch = detector.detect(images)
    singles = [detector.detect([img])[0] for img in images]
    assert [len(d) for d in batch] == [len(d) for d in singles] and all(len(d) for d in batch)
    for b, s in zip(batch, singles):
        np.testing.assert_allclose(b.xyxy, s.xyxy, atol=0.05)
        np.testing.assert_allclose(b.confidence, s.confidence, atol=1e-4)
        assert list(b.class_name) == list(s.class_name)


def test_boxes_are_in_source_pixels_and_clipped(detector: DarknetDetector) -> None:
    photo = cv2.imread(str(scenes.PERSON_PHOTO))
    big = cv2.resize(photo, (1280, 848))
    small, large = detector.detect([photo, big])
    p_small = small[small.class_id == 0].xyxy[0]
    p_large = large[large.class_id == 0].xyxy[0]
    np.testing.assert_allclose(p_large / 2, p_small, atol=3)
    for dets, img in ((small, photo), (large, big)):
        assert (dets.xyxy >= 0).all() and (dets.xyxy[:, [0, 2]] <= img.shape[1]).all()
        assert (dets.xyxy[:, [1, 3]] <= img.shape[0]).all()


def test_min_score_filters(detector: DarknetDetector) -> None:
    photo = cv2.imread(str(scenes.PERSON_PHOTO))
    strict = DarknetDetector(detector.path, DetectorOptions(min_score=0.9, threads=1), detector.entry)
    dets = strict.detect([photo])[0]
    assert len(dets) and (dets.confidence >= 0.9).all()
    assert len(dets) < len(detector.detect([photo])[0]) + 1
    assert strict.detect([]) == []


def test_grey_and_bgra_frames_are_accepted(detector: DarknetDetector) -> None:
    photo = cv2.imread(str(scenes.PERSON_PHOTO))
    grey = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)
    for dets in detector.detect([grey, bgra]):
        overlap, _ = scenes.best_match(dets, "person", scenes.PERSON_PHOTO_TRUTH)
        assert overlap > 0.7
    with pytest.raises(ValueError, match="BGR uint8"):
        detector.detect([photo.astype(np.float32)])
