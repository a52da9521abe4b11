"""models.yaml registry: fetch verifies and converts, bad files give ModelError with the fix."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import yaml
from onnx import TensorProto, helper

from edge_agent.cli import main
from edge_agent.detect.common import DetectorOptions
from edge_agent.detect.convert_darknet import convert
from edge_agent.detect.onnx_darknet import DarknetDetector
from edge_agent.detect.registry import Registry, class_names, load_detector, sha256_file
from edge_agent.errors import ModelError

FIX = "edge-agent models fetch"


@pytest.fixture(scope="module")
def real() -> Registry:
    reg = Registry()
    reg.fetch("yolov3-tiny")  # downloads and converts once on a fresh checkout
    return reg


def _sandbox(tmp_path: Path, real: Registry, edit=None, with_sources: bool = True) -> Registry:
    """A registry in tmp_path whose cache links to the real downloads (no network needed)."""
    manifest = yaml.safe_load(real.manifest_path.read_text())
    if edit:
        edit(manifest["models"]["yolov3-tiny"])
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(manifest))
    cache = tmp_path / "cache"
    (cache / "yolov3-tiny").mkdir(parents=True)
    archive = manifest["models"]["yolov3-tiny"]["source"]["archive"]
    (cache / archive).symlink_to(real.cache_dir / archive)
    if with_sources:
        for f in (real.cache_dir / "yolov3-tiny").iterdir():
            (cache / "yolov3-tiny" / f.name).symlink_to(f)
    return Registry(model_dir=tmp_path, manifest=tmp_path / "models.yaml", cache_dir=cache)


def test_manifest_default_entry_is_complete(real: Registry) -> None:
    entry = real.entry(real.default)
    assert real.default == "nanodet-g-416" and entry["format"] == "nanodet"
    assert len(entry["names"]) == 80 and entry["names"][0] == "person" and entry["names"][8] == "boat"
    assert len(entry["onnx_sha256"]) == 64 and entry["source"]["registry"] == "npm"
    assert sha256_file(real.path_of("nanodet-g-416")) == entry["onnx_sha256"]


def test_fetch_converts_reproducibly_and_then_skips(tmp_path, real) -> None:
    reg = _sandbox(tmp_path, real)
    out = reg.fetch("yolov3-tiny")
    assert out == tmp_path / "yolov3-tiny.onnx"
    assert sha256_file(out) == real.entry("yolov3-tiny")["onnx_sha256"]
    stamp = out.stat().st_mtime_ns
    reg.fetch("yolov3-tiny")
    assert out.stat().st_mtime_ns == stamp  # valid file: no work
    out.write_bytes(out.read_bytes()[:1000])  # damaged: converted again
    reg.fetch("yolov3-tiny")
    assert sha256_file(out) == real.entry("yolov3-tiny")["onnx_sha256"]


def test_truncated_cached_weights_are_extracted_again(tmp_path, real) -> None:
    reg = _sandbox(tmp_path, real, with_sources=False)
    weights = reg.cache_dir / "yolov3-tiny" / "yolov3-tiny.weights"
    weights.write_bytes((real.cache_dir / "yolov3-tiny" / "yolov3-tiny.weights").read_bytes()[:5000])
    reg.fetch("yolov3-tiny")
    assert sha256_file(weights) == real.entry("yolov3-tiny")["source"]["files"]["weights"]["sha256"]


def test_wrong_source_sha256_names_the_file_and_the_fix(tmp_path, real) -> None:
    def edit(entry):
        entry["source"]["files"]["weights"]["sha256"] = "0" * 64
    reg = _sandbox(tmp_path, real, edit, with_sources=False)
    with pytest.raises(ModelError) as err:
        reg.fetch("yolov3-tiny")
    assert "yolov3-tiny.weights" in str(err.value) and FIX in str(err.value)
    assert not (tmp_path / "yolov3-tiny.onnx").exists()


def test_wrong_onnx_sha256_names_the_file(tmp_path, real) -> None:
    reg = _sandbox(tmp_path, real, lambda e: e.update(onnx_sha256="f" * 64))
    with pytest.raises(ModelError) as err:
        reg.fetch("yolov3-tiny")
    assert "yolov3-tiny.onnx" in str(err.value) and "models fetch --force" in str(err.value)


def test_truncated_weights_fail_conversion_clearly(tmp_path, real) -> None:
    src = real.cache_dir / "yolov3-tiny"
    short = tmp_path / "short.weights"
    short.write_bytes((src / "yolov3-tiny.weights").read_bytes()[:1_000_000])
    with pytest.raises(ModelError, match="short.weights ends early"):
        convert(src / "yolov3-tiny.cfg", short, tmp_path / "x.onnx", ["a"] * 80)
    assert not (tmp_path / "x.onnx").exists()


def test_missing_and_truncated_model_give_model_error(tmp_path, real) -> None:
    reg = Registry(model_dir=tmp_path, manifest=real.manifest_path)
    with pytest.raises(ModelError) as err:
        load_detector("yolov3-tiny", DetectorOptions(), reg)
    assert "yolov3-tiny.onnx" in str(err.value) and f"{FIX} yolov3-tiny" in str(err.value)
    (tmp_path / "yolov3-tiny.onnx").write_bytes(real.path_of("yolov3-tiny").read_bytes()[:300_000])
    with pytest.raises(ModelError) as err:
        load_detector("yolov3-tiny", DetectorOptions(), reg)
    assert "yolov3-tiny.onnx" in str(err.value) and FIX in str(err.value)


def test_load_by_path_uses_metadata_and_class_names_need_no_session(tmp_path, real) -> None:
    path = real.path_of("yolov3-tiny")
    det = load_detector(str(path), DetectorOptions(threads=1), real)
    assert isinstance(det, DarknetDetector) and det.input_size == (416, 416)
    assert det.names == real.entry("yolov3-tiny")["names"]
    assert class_names("yolov3-tiny", real) == class_names(str(path), real) == det.names


def test_unknown_models_are_rejected_clearly(tmp_path, real) -> None:
    with pytest.raises(ModelError, match="neither a name in .* nor an existing file"):
        load_detector("yolov9-huge", DetectorOptions(), real)
    bare = tmp_path / "bare.onnx"
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(helper.make_model(graph), str(bare))
    with pytest.raises(ModelError, match="unknown ONNX layout"):
        load_detector(str(bare), DetectorOptions(), real)
    with pytest.raises(ModelError, match="names no classes"):
        class_names(str(bare), real)
    ultra = helper.make_model(graph)
    helper.set_model_props(ultra, {"names": "{0: 'person', 1: 'bicycle'}"})
    onnx.save(ultra, str(tmp_path / "ultra.onnx"))
    assert class_names(str(tmp_path / "ultra.onnx"), real) == ["person", "bicycle"]


def test_cli_list_and_fetch_errors_without_traceback(tmp_path, real, monkeypatch, capsys) -> None:
    monkeypatch.setenv("EDGE_AGENT_MODELS", str(tmp_path))
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "nanodet-g-416 (default)" in out and "missing" in out and str(tmp_path) in out
    monkeypatch.setenv("EDGE_AGENT_MANIFEST", str(tmp_path / "nope.yaml"))
    assert main(["models", "fetch"]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml" in err and "Traceback" not in err


@pytest.mark.parametrize("names,masks,message", [
    (["a"] * 3, None, "has \\[80\\] classes but 3 names"),
    (["a"] * 80, [[3, 4, 5]], "1 anchor masks given but .* has more yolo layers"),
])
def test_converter_rejects_inconsistent_inputs(tmp_path, real, names, masks, message) -> None:
    src = real.cache_dir / "yolov3-tiny"
    with pytest.raises(ModelError, match=message):
        convert(src / "yolov3-tiny.cfg", src / "yolov3-tiny.weights", tmp_path / "x.onnx", names, masks)


def test_cli_fetch_all_reports_each_broken_entry_after_fetching_the_rest(tmp_path, real, monkeypatch, capsys) -> None:
    reg = _sandbox(tmp_path, real)
    manifest = yaml.safe_load(reg.manifest_path.read_text())
    good = manifest["models"]["yolov3-tiny"]
    manifest["models"] = {"yolov3-tiny": good, "broken": {**good, "format": "caffe"}}
    reg.manifest_path.write_text(yaml.safe_dump(manifest))
    (tmp_path / "cache" / "broken").symlink_to(tmp_path / "cache" / "yolov3-tiny")
    monkeypatch.setenv("EDGE_AGENT_MODELS", str(tmp_path))
    monkeypatch.setenv("EDGE_AGENT_MANIFEST", str(reg.manifest_path))
    assert main(["models", "fetch", "--all"]) == 2
    captured = capsys.readouterr()
    assert f"yolov3-tiny: {tmp_path / 'yolov3-tiny.onnx'}" in captured.out
    assert "broken: model broken: format 'caffe' has no converter" in captured.err
    assert sha256_file(tmp_path / "yolov3-tiny.onnx") == good["onnx_sha256"]
