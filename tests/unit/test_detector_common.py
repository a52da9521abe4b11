"""Shared detector plumbing: letterbox, NMS, un-letterboxing, options and provider fallback."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edge_agent.config.models import Detector as DetectorConfig
from edge_agent.detect.common import DetectorOptions, letterbox, make_session, nms, to_detections
from edge_agent.detect.registry import Registry
from edge_agent.errors import ModelError


def test_letterbox_keeps_aspect_and_centres_on_grey() -> None:
    image = np.full((360, 480, 3), 7, np.uint8)
    padded, scale, (px, py) = letterbox(image, (416, 416))
    assert padded.shape == (416, 416, 3) and scale == pytest.approx(416 / 480)
    assert (px, py) == (0, 52)
    assert (padded[:52] == 114).all() and (padded[-52:] == 114).all()
    assert (padded[52:-52] == 7).all()


def test_letterbox_then_to_detections_round_trips_boxes() -> None:
    image = np.zeros((424, 640, 3), np.uint8)
    _, scale, pad = letterbox(image, (416, 416))
    truth = np.array([[191, 100, 273, 375], [600, 400, 700, 500]], np.float32)  # 2nd leaves the image
    in_input = truth * scale + np.array([pad[0], pad[1], pad[0], pad[1]], np.float32)
    dets = to_detections(in_input, np.array([0.9, 0.5]), np.array([0, 8]), scale, pad, image.shape,
                         ["person"] + ["x"] * 7 + ["boat"])
    np.testing.assert_allclose(dets.xyxy[0], truth[0], atol=1e-3)
    np.testing.assert_allclose(dets.xyxy[1], [600, 400, 640, 424], atol=1e-3)  # clipped
    assert list(dets.class_name) == ["person", "boat"]


def test_to_detections_drops_boxes_entirely_in_the_padding() -> None:
    dets = to_detections(np.array([[0, 0, 50, 40]], np.float32), np.array([0.9]), np.array([0]),
                         0.65, (0.0, 52.0), (424, 640, 3), ["person"])
    assert len(dets) == 0 and dets.xyxy.shape == (0, 4)


def test_nms_suppresses_within_a_class_only() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    keep = nms(boxes, np.array([0.8, 0.9, 0.7, 0.6]), np.array([0, 0, 1, 0]), 0.45)
    assert list(keep) == [1, 2, 3]  # best first; box 0 overlaps box 1 (same class) by 0.81
    assert len(nms(boxes, np.array([0.8, 0.9, 0.7, 0.6]), np.array([0, 0, 1, 0]), 0.9)) == 4
    assert nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0.5).shape == (0,)


def test_options_from_config() -> None:
    cfg = DetectorConfig(providers=["tensorrt", "cpu"], min_score=0.4, trt_fp16=False, trt_cache_dir="/tmp/trt")
    opts = DetectorOptions.from_config(cfg)
    assert opts.providers == ["tensorrt", "cpu"] and opts.min_score == 0.4
    assert opts.trt_fp16 is False and opts.trt_cache_dir == "/tmp/trt" and opts.iou == 0.45


def test_unavailable_gpu_providers_fall_back_to_cpu_with_one_log_line(caplog, tmp_path) -> None:
    path = Registry().fetch("yolov3-tiny")
    opts = DetectorOptions(providers=["tensorrt", "cuda"], trt_cache_dir=str(tmp_path / "trt"), threads=1)
    with caplog.at_level(logging.INFO, logger="edge_agent.detect.common"):
        session, provider = make_session(path, opts)
    assert provider == "CPUExecutionProvider" == session.get_providers()[0]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "CPUExecutionProvider" in lines[0] and "tensorrt, cuda" in lines[0] and "yolov3-tiny.onnx" in lines[0]


@pytest.mark.parametrize("content", [None, b"", b"\x08\x07garbage" * 100])
def test_make_session_bad_files_raise_model_error(tmp_path, content) -> None:
    path = tmp_path / "broken.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError) as err:
        make_session(path, DetectorOptions())
    assert "broken.onnx" in str(err.value) and "edge-agent models fetch" in str(err.value)


def test_provider_list_orders_gpu_first_with_trt_options(tmp_path) -> None:
    from edge_agent.detect.common import _provider_list

    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    opts = DetectorOptions(providers=["cpu", "cuda", "tensorrt"], trt_fp16=False,
                           trt_cache_dir=str(tmp_path / "engines"))
    providers, missing = _provider_list(opts, available)
    assert missing == []
    assert [p if isinstance(p, str) else p[0] for p in providers] == available
    trt = providers[0][1]
    assert trt == {"trt_fp16_enable": False, "trt_engine_cache_enable": True,
                   "trt_engine_cache_path": str(tmp_path / "engines")}
    assert (tmp_path / "engines").is_dir()
    providers, missing = _provider_list(DetectorOptions(providers=["cuda"]), ["CPUExecutionProvider"])
    assert providers == ["CPUExecutionProvider"] and missing == ["cuda"]
