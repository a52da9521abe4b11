"""vtest_restricted: a cut of OpenCV's vtest.avi (real pedestrians) with a keep-off-the-lawn zone.

The ground truth here is hand-made (tests/footage/vtest_labels.yaml): people were counted by
looking at the frames, not derived from any pipeline output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import av
import cv2
import yaml

from .render import Encoder
from .truth import EARLY_S, LATE_S

NAME = "vtest_restricted"
SMALL = "vtest_small"  # hard case: the first 8 s downscaled to 384x288 at 1 Mbit/s
CUT_START_S = 49.0  # seconds into vtest.avi
CUT_LENGTH_S = 25.0
SOURCE_FPS = 10
# The lawn below the footpath, drawn a little inside the grass edge so people walking along the
# path's edge are clearly outside.
LAWN = [[0.0, 0.50], [0.2, 0.52], [0.4, 0.60], [0.55, 0.70], [0.7, 0.80], [0.85, 0.88], [1.0, 0.93],
        [1.0, 1.0], [0.0, 1.0]]
ZONE = {"name": "lawn", "kind": "restricted", "polygon": LAWN, "labels": ["person"], "dwell_s": 1.0}
LABELS = Path(__file__).resolve().parents[2] / "tests" / "footage" / "vtest_labels.yaml"


def _fit(size: tuple[int, int] | None) -> tuple[int, int]:
    """Default 640x480; for another size, the largest 4:3 frame inside it (even dimensions)."""
    if size is None:
        return 640, 480
    w, h = size
    h = min(h, w * 3 // 4)
    return (h * 4 // 3) // 2 * 2, h // 2 * 2


def render(media: Path, out: Path, size: tuple[int, int] | None, fps: int, dump_yaml: Callable,
           crf: int | None = None, name: str = NAME, length_s: float = CUT_LENGTH_S,
           bitrate_kbps: int | None = None) -> None:
    width, height = _fit(size)
    src = media / "footage" / "vtest.avi"
    first = round(CUT_START_S * SOURCE_FPS)
    frames = []
    with av.open(str(src)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= first + round(length_s * SOURCE_FPS):
                break
            if i >= first:
                img = frame.to_ndarray(format="bgr24")
                frames.append(cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA))
    enc = Encoder(out / f"{name}.mp4", width, height, fps, crf or 30, bitrate_kbps)
    n_out = round(length_s * fps)
    for k in range(n_out):  # other frame rates repeat the nearest earlier source frame
        enc.write(frames[min(len(frames) - 1, k * SOURCE_FPS // fps)])
    enc.close()
    dump_yaml(out / "zones" / f"{name}.yaml", {"zones": [ZONE]}, f"Zones of {name}.mp4 (keep off the lawn)")
    labels = yaml.safe_load(LABELS.read_text())
    spec = expectation(labels, width, height, fps, n_out, name)
    if bitrate_kbps:
        spec["video"]["bitrate_kbps"] = bitrate_kbps
    dump_yaml(out / f"{name}.expected.yaml", spec, "Expected alarms, from the hand labels in vtest_labels.yaml")
    print(f"{name}: {n_out} frames {width}x{height}@{fps} {(out / f'{name}.mp4').stat().st_size / 1024:.0f} KiB")


def expectation(labels: dict[str, Any], width: int, height: int, fps: int, frames: int,
                name: str = NAME) -> dict[str, Any]:
    people = labels["people"]
    n = len(people)
    first = min(p["entered_at"] for p in people) + ZONE["dwell_s"]
    return {
        "clip": f"{name}.mp4", "zones": f"zones/{name}.yaml", "fps": 5.0,
        "video": {"width": width, "height": height, "fps": fps, "frames": frames},
        "expect": [{
            "type": "intrusion", "zone": "lawn", "label": "person", "count": labels["count_range"],
            "distinct_tracks": True, "first_alarm_within": [round(first - EARLY_S, 3), round(first + LATE_S, 3)],
        }],
        "only_listed": True,
        "truth": {"hand_count": n, "labels": "vtest_labels.yaml",
                  "people": {p["id"]: {k: p[k] for k in ("entered_at", "left_at", "entry_point")} for p in people}},
    }
