"""The two values every stage passes along: a decoded `Frame` and its `Detections`.

`Detections` follows Roboflow supervision's design: parallel numpy arrays, one row per object,
indexable with a boolean mask or an index array to give a new `Detections`. Detect fills
`xyxy`, `confidence`, `class_id` and `data["class_name"]`; track adds `tracker_id`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Anchor = str  # "bottom_center" | "center" | "top_center" | "bottom_left" | "bottom_right"


@dataclass
class Detections:
    """Objects found in one frame. `xyxy` is in pixels of the source frame."""

    xyxy: np.ndarray  # (N, 4) float32
    confidence: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int32
    tracker_id: np.ndarray | None = None  # (N,) int64, -1 where untracked
    data: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. "class_name": (N,) object

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(self.xyxy)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(n)
        self.class_id = np.asarray(self.class_id, dtype=np.int32).reshape(n)
        if self.tracker_id is not None:
            self.tracker_id = np.asarray(self.tracker_id, dtype=np.int64).reshape(n)
        for key, value in self.data.items():
            value = np.asarray(value)
            if len(value) != n:
                raise ValueError(f"Detections.data[{key!r}] has {len(value)} rows, expected {n}")
            self.data[key] = value

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros(0, np.float32),
            class_id=np.zeros(0, np.int32),
            data={"class_name": np.zeros(0, dtype=object)},
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> Detections:
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            tracker_id=None if self.tracker_id is None else self.tracker_id[index],
            data={k: v[index] for k, v in self.data.items()},
        )

    def __iter__(self):
        """Yield one single-row `Detections` per object."""
        for i in range(len(self)):
            yield self[i]

    @property
    def class_name(self) -> np.ndarray:
        return self.data.get("class_name", np.full(len(self), "", dtype=object))

    @property
    def area(self) -> np.ndarray:
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    def anchors(self, anchor: Anchor = "bottom_center") -> np.ndarray:
        """(N, 2) pixel points of each box that zone tests use (the feet, by default)."""
        x1, y1, x2, y2 = self.xyxy.T
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        points = {
            "bottom_center": (cx, y2),
            "center": (cx, cy),
            "top_center": (cx, y1),
            "bottom_left": (x1, y2),
            "bottom_right": (x2, y2),
        }
        if anchor not in points:
            raise ValueError(f"unknown anchor {anchor!r}; allowed: {', '.join(points)}")
        return np.stack(points[anchor], axis=1).astype(np.float32).reshape(-1, 2)

    def with_tracker_id(self, tracker_id: np.ndarray) -> Detections:
        return Detections(self.xyxy, self.confidence, self.class_id, tracker_id, dict(self.data))


@dataclass
class Frame:
    """One decoded picture of one camera.

    `media_time` is seconds since the source started (the stream's pts), which replay uses as
    its clock; `wall_time` is epoch seconds (UTC) when the frame was taken, from `Clock`.
    `image` is BGR uint8, filled only for frames sampled for analysis.
    """

    camera: str
    seq: int
    media_time: float
    wall_time: float
    image: np.ndarray | None = None
    motion: float | None = None  # fraction of changed pixels, when the source measures it
    urgent: bool = True  # motion or an open track; False for a quiet camera's idle check (served last)
    changes: np.ndarray | None = None  # the motion gate's map of changed pixels (bool, its own small size)
    # a quiet camera's idle check: where the picture changed since its last analysed frame (bool, the
    # same small size); None for other frames, or when that could not be told
    since: np.ndarray | None = None
    # a watched object was followed (anywhere in the picture) when the frame was sampled: its
    # camera's frames are served before frames urgent for motion alone (rain, waves), which wait
    # up to half max_motion_gap_s
    following: bool = False
    # the gate saw object-sized change (a blob) near the zones, not the scatter of rain, waves or
    # noise: a saturated box serves it before other motion alone (a new intruder before it is followed)
    object_motion: bool = False

    @property
    def height(self) -> int:
        return 0 if self.image is None else int(self.image.shape[0])

    @property
    def width(self) -> int:
        return 0 if self.image is None else int(self.image.shape[1])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes: the one box overlap, for the tracker, NMS and the rules."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float64)
    a = a.astype(np.float64)[:, None, :]
    b = b.astype(np.float64)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
