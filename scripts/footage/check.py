"""Run the project's detector over a rendered clip and compare with the drawn ground truth.

Used while tuning sizes and placement: for every actor, the share of frames in which a detection
of its label overlaps its drawn box (IoU >= 0.3), and the scores those detections had.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import yaml


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x0, y0 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x1, y1 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area - inter, 1e-9)


def check_clip(clip: Path, boxes: dict[int, list[tuple[str, str, tuple]]], model: str, fps: float,
               step: int = 2) -> dict[str, Any]:
    """boxes: frame index -> [(actor, label, normalized xyxy)]. Returns per-actor hit rate and scores."""
    from edge_agent.detect.common import DetectorOptions
    from edge_agent.detect.registry import load_detector

    det = load_detector(model, DetectorOptions(min_score=0.1))
    stats: dict[str, dict[str, list]] = {}
    with av.open(str(clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % step or i not in boxes:
                continue
            img = frame.to_ndarray(format="bgr24")
            H, W = img.shape[:2]
            d = det.detect([img])[0]
            names = d.data["class_name"]
            for actor, label, box in boxes[i]:
                s = stats.setdefault(actor, {"scores": [], "misses": []})
                mask = names == label
                truth = np.array(box) * [W, H, W, H]
                ious = _iou(truth, d.xyxy[mask]) if mask.any() else np.zeros(0)
                ok = ious >= 0.3
                if ok.any():
                    s["scores"].append(float(d.confidence[mask][ok].max()))
                else:
                    s["misses"].append(round(i / fps, 1))
    out: dict[str, Any] = {}
    for actor, s in stats.items():
        sc = np.array(s["scores"]) if s["scores"] else np.zeros(1)
        n = len(s["scores"]) + len(s["misses"])
        out[actor] = {"frames": n, "found": len(s["scores"]), "median": round(float(np.median(sc)), 2),
                      "p10": round(float(np.percentile(sc, 10)), 2), "over_0.5": int((sc > 0.5).sum()),
                      "missed_at": s["misses"][:20]}
    return out


def print_report(name: str, report: dict[str, Any]) -> None:
    print(f"{name}: detector check {yaml.safe_dump(report, default_flow_style=True, width=200).strip()}")
