"""UltralyticsDetector (.pt through the real Ultralytics API) against our ONNX decoder on the same weights.

Runs in `.venv-ultra` (torch + ultralytics, made by scripts/setup_ultralytics.sh, which
`scripts/setup.sh --with-ultralytics` runs, as scripts/test.sh does) through a subprocess, since the
main venv has no torch. The .pt is made at
test time from Ultralytics' bundled yolov8n.yaml (untrained, nothing downloaded), with scores
spread the same way as the committed golden model, then exported to ONNX at the same size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_agent.frames import iou_matrix

ROOT = Path(__file__).resolve().parents[2]
ULTRA_PY = ROOT / ".venv-ultra" / "bin" / "python"
FRAMES = ROOT / "tests" / "data" / "ultralytics"

DRIVER = r'''
import importlib.util, json, sys, time
from pathlib import Path
root, frames_dir, tmp = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
spec = importlib.util.spec_from_file_location("golden", root / "scripts" / "make_ultralytics_golden.py")
golden = importlib.util.module_from_spec(spec); spec.loader.exec_module(golden)  # sets YOLO_OFFLINE etc.
import cv2
from ultralytics import YOLO
from edge_agent.detect.common import DetectorOptions
from edge_agent.detect.registry import load_detector

frames = sorted(frames_dir.glob("*.jpg"))
images = [cv2.imread(str(f)) for f in frames]
pt = tmp / "yolov8n.pt"
golden.build_model(None, images).save(str(pt))  # full yolov8n width, untrained
opts = DetectorOptions(min_score=0.001, iou=0.7)
api = load_detector(str(pt), opts)
onnx_path = Path(YOLO(str(pt)).export(format="onnx", imgsz=api.imgsz, simplify=False, verbose=False))
ours = load_detector(str(onnx_path), opts)
t = time.perf_counter(); api_out = api.detect(images); t_api = time.perf_counter() - t
t = time.perf_counter(); onnx_out = ours.detect(images); t_onnx = time.perf_counter() - t
def dump(d):
    return {"xyxy": d.xyxy.tolist(), "conf": d.confidence.tolist(), "cls": d.class_id.tolist(),
            "names": [str(n) for n in d.data["class_name"]]}
print(json.dumps({
    "api_type": type(api).__name__, "onnx_type": type(ours).__name__, "provider": api.provider,
    "imgsz": api.imgsz, "names": api.names, "onnx_names": ours.names,
    "t_api": t_api, "t_onnx": t_onnx,
    "frames": {f.name: {"api": dump(a), "onnx": dump(o)} for f, a, o in zip(frames, api_out, onnx_out)},
}))
'''


def match_fraction(ref: dict, other: dict) -> tuple[int, int]:
    """How many `ref` boxes have one in `other` with the same class, IoU > 0.9 and score within 1e-3."""
    a, b = np.asarray(ref["xyxy"]).reshape(-1, 4), np.asarray(other["xyxy"]).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return 0, len(a)
    ok = iou_matrix(a, b) > 0.9
    ok &= np.asarray(ref["cls"])[:, None] == np.asarray(other["cls"])[None, :]
    ok &= np.abs(np.asarray(ref["conf"])[:, None] - np.asarray(other["conf"])[None, :]) < 1e-3
    return int(ok.any(axis=1).sum()), len(a)


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> dict:
    assert ULTRA_PY.exists(), f"{ULTRA_PY} missing: run scripts/setup_ultralytics.sh (scripts/test.sh does)"
    tmp = tmp_path_factory.mktemp("ultra")
    driver = tmp / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp / "yolo-config"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(ULTRA_PY), str(driver), str(ROOT), str(FRAMES), str(tmp)],
                          capture_output=True, text=True, timeout=240, env=env, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.integration
def test_pt_goes_through_the_ultralytics_api_and_matches_our_onnx_decoder(compared: dict) -> None:
    assert compared["api_type"] == "UltralyticsDetector"
    assert compared["onnx_type"] == "UltralyticsOnnxDetector"
    assert compared["provider"] == "CPUExecutionProvider"
    assert compared["names"][0] == "person" and compared["names"][8] == "boat"
    assert compared["names"] == compared["onnx_names"]
    assert len(compared["frames"]) == 3
    for name, pair in compared["frames"].items():
        api, onnx = pair["api"], pair["onnx"]
        assert len(api["conf"]) >= 100, f"{name}: only {len(api['conf'])} boxes; nothing to compare"
        assert api["names"] == [compared["names"][c] for c in api["cls"]]
        # torch and ONNX Runtime differ in the last float bits, so an NMS tie at IoU 0.7 or the
        # max_det cut may flip a few boxes; a real decode or letterbox difference loses most.
        hit, total = match_fraction(api, onnx)
        assert hit >= 0.9 * total, f"{name}: {hit}/{total} Ultralytics boxes found by our decoder"
        back, total_onnx = match_fraction(onnx, api)
        assert back >= 0.9 * total_onnx, f"{name}: {back}/{total_onnx} of ours found by Ultralytics"


@pytest.mark.integration
def test_missing_ultralytics_is_a_model_error_naming_the_setup_script(tmp_path: Path) -> None:
    pt = tmp_path / "best.pt"
    pt.write_bytes(b"not really a checkpoint")
    code = (
        "import sys; sys.modules['ultralytics'] = None\n"  # as in the main venv: not importable
        "from edge_agent.detect.common import DetectorOptions\n"
        "from edge_agent.detect.registry import load_detector\n"
        "from edge_agent.errors import ModelError\n"
        "try:\n"
        f"    load_detector({str(pt)!r}, DetectorOptions())\n"
        "except ModelError as e:\n"
        "    print('MODELERROR', e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "MODELERROR" in proc.stdout
    assert "scripts/setup_ultralytics.sh" in proc.stdout and "ultralytics" in proc.stdout


@pytest.mark.integration
def test_broken_pt_is_a_model_error_not_a_traceback(tmp_path: Path) -> None:
    assert ULTRA_PY.exists(), f"{ULTRA_PY} missing: run scripts/setup_ultralytics.sh"
    pt = tmp_path / "best.pt"
    pt.write_bytes(b"not really a checkpoint")
    code = (
        "from edge_agent.detect.common import DetectorOptions\n"
        "from edge_agent.detect.registry import load_detector\n"
        "from edge_agent.errors import ModelError\n"
        "try:\n"
        f"    load_detector({str(pt)!r}, DetectorOptions())\n"
        "except ModelError as e:\n"
        "    print('MODELERROR', e)\n"
    )
    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp_path / "yolo-config")}
    proc = subprocess.run([str(ULTRA_PY), "-c", code], capture_output=True, text=True, timeout=120,
                          env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "MODELERROR" in proc.stdout and "cannot be loaded by Ultralytics" in proc.stdout
