"""Annotated JPEG snapshots: the boxes, the alarm's object, its zone outline and a caption."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..config.models import Zone, ZoneFile
from ..frames import Detections

ALARM_COLOUR = (0, 0, 255)
OTHER_COLOUR = (0, 200, 255)


def annotate(
    image: np.ndarray,
    dets: Detections,
    zones: Sequence[Zone] | ZoneFile = (),
    highlight_track: int | None = None,
    caption: str = "",
) -> np.ndarray:
    """A copy of `image` with zones, every box (thin) and the alarm's object (thick, red)."""
    from ..config.render import draw_zones  # the one zone drawing, shared with `zones render`

    out = draw_zones(image.copy(), zones) if zones else image.copy()
    scale = max(1, round(out.shape[0] / 400))
    ids = dets.tracker_id if dets.tracker_id is not None else np.full(len(dets), -1)
    for box, score, name, tid in zip(dets.xyxy, dets.confidence, dets.class_name, ids):
        hit = highlight_track is not None and int(tid) == highlight_track
        colour = ALARM_COLOUR if hit else OTHER_COLOUR
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 3 * scale if hit else scale)
        label = f"{name} {score:.2f}" + (f" #{int(tid)}" if tid >= 0 else "")
        cv2.putText(out, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, colour, scale)
    if caption:
        cv2.rectangle(out, (0, 0), (out.shape[1], 22 * scale), (0, 0, 0), -1)
        cv2.putText(out, caption, (6, 16 * scale), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (255, 255, 255), scale)
    return out


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
