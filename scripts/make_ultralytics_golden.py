"""Make tests/data/ultralytics/: a small real Ultralytics ONNX export and Ultralytics' own predictions.

Run in the Ultralytics venv (scripts/setup_ultralytics.sh):
    .venv-ultra/bin/python scripts/make_ultralytics_golden.py

Nothing is fetched: the model is built from Ultralytics' bundled `yolov8n.yaml` (untrained), fonts and
assets are never touched (no plotting, no saving), and YOLO_OFFLINE / YOLO_AUTOINSTALL stop hub
checks and pip auto-installs. An untrained YOLOv8 scores every anchor ~1e-5 (the head's bias
prior), which would leave nothing above conf 0.001 to compare, so `build_model` gives it
image-dependent, well-spread scores: BatchNorm statistics re-estimated on real frames, then fixed
gains/biases on the head's last convolutions. It is still untrained; only the decoding matters.

To keep the committed file small the export uses YOLOv8n's depth with 1/16 of its width (same graph
and head, ~0.6 M parameters, ~2.4 MB); `--full` exports the real yolov8n width (~12 MB) instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")
os.environ.setdefault("YOLO_VERBOSE", "False")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="yolo-config-"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "ultralytics"
MEDIA = Path(os.environ.get("EDGE_AGENT_MEDIA", Path(__file__).resolve().parents[2] / "shared" / "media"))
FRAMES = ["photos/person.jpg", "backgrounds/boardwalk.jpg", "backgrounds/city-with-water.jpg"]
IMGSZ = 320
CONF = 0.001
IOU = 0.7
SEED = 0


def build_model(width: float | None, calib: list[np.ndarray], seed: int = SEED):
    """An untrained YOLOv8n-shaped `YOLO` with COCO names and scores spread over (0.001, 1)."""
    import torch
    import yaml
    from ultralytics import YOLO
    from ultralytics.nn.tasks import yaml_model_load
    from ultralytics.utils import ROOT as UL_ROOT
    from ultralytics.utils import YAML

    torch.manual_seed(seed)
    if width is None:
        model = YOLO("yolov8n.yaml")
    else:  # same file, narrower: Ultralytics reads the scale from the name, so keep it 'yolov8n'
        cfg = yaml_model_load("yolov8n.yaml")
        cfg["scales"] = {"n": [0.33, width, 1024]}
        for key in ("yaml_file", "scale"):
            cfg.pop(key, None)
        path = Path(tempfile.mkdtemp(prefix="yolov8-")) / "yolov8n.yaml"
        path.write_text(yaml.safe_dump(cfg))
        model = YOLO(str(path))
    net = model.model
    net.names = dict(YAML.load(UL_ROOT / "cfg" / "datasets" / "coco.yaml")["names"])
    # Re-estimate BatchNorm on real frames so activations neither vanish nor explode.
    batch = np.stack([cv2.resize(im, (IMGSZ, IMGSZ))[:, :, ::-1].transpose(2, 0, 1) for im in calib])
    x = torch.from_numpy(batch.astype(np.float32) / 255.0)
    for mod in net.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None  # cumulative average over the one pass
    net.train()
    with torch.no_grad():
        net(x)
        net.eval()
        head = net.model[-1]
        for seq in head.cv3:  # class logits: spread out, centred low so many scores sit near 0.001..0.1
            seq[-1].weight.mul_(2.0)
            seq[-1].bias.fill_(-5.0)
        for seq in head.cv2:  # box bins: peakier DFL distributions, so box sizes vary
            seq[-1].weight.mul_(4.0)
    return model


def predictions(model, image: np.ndarray) -> dict:
    """Ultralytics' own pre/post-processing (LetterBox, NMS, scale_boxes) at conf 0.001."""
    r = model.predict(image, conf=CONF, iou=IOU, imgsz=IMGSZ, max_det=300, verbose=False)[0]
    b = r.boxes
    return {
        "xyxy": np.round(b.xyxy.cpu().numpy().astype(float), 3).tolist(),
        "conf": np.round(b.conf.cpu().numpy().astype(float), 6).tolist(),
        "cls": b.cls.cpu().numpy().astype(int).tolist(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="export the full yolov8n width (~12 MB)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import torch
    import ultralytics
    from ultralytics import YOLO

    args.out.mkdir(parents=True, exist_ok=True)
    frames = []
    for rel in FRAMES:
        dst = args.out / Path(rel).name
        if not dst.exists():
            shutil.copyfile(MEDIA / rel, dst)
        frames.append(dst)
    images = [cv2.imread(str(f)) for f in frames]
    calib = images + [cv2.imread(str(p)) for p in sorted((MEDIA / "backgrounds").glob("*.jpg"))]

    model = build_model(None if args.full else 0.0625, calib)
    with tempfile.TemporaryDirectory() as tmp:
        pt = Path(tmp) / "yolov8n.pt"
        model.save(str(pt))  # export from a reloaded .pt, as a user would
        exported = Path(YOLO(str(pt)).export(format="onnx", imgsz=IMGSZ, simplify=False, verbose=False))
        onnx_path = args.out / "yolov8n-320.onnx"
        shutil.copyfile(exported, onnx_path)
    onnx_model = YOLO(str(onnx_path), task="detect")
    golden = {
        "model": onnx_path.name,
        "ultralytics": ultralytics.__version__,
        "torch": torch.__version__,
        "imgsz": IMGSZ, "conf": CONF, "iou": IOU, "max_det": 300,
        "frames": {f.name: predictions(onnx_model, im) for f, im in zip(frames, images)},
    }
    (args.out / "golden.json").write_text(json.dumps(golden, indent=None, separators=(",", ":")) + "\n")
    for name, p in golden["frames"].items():
        conf = np.array(p["conf"])
        print(f"{name}: {len(conf)} boxes, {len(set(p['cls']))} classes, "
              f"conf {conf.min():.4f}..{conf.max():.4f}" if len(conf) else f"{name}: no boxes")
    print(f"{onnx_path}: {onnx_path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
