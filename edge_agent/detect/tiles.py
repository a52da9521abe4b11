"""Sliced inference where the zones are: tiles at the model's input size, merged with the full frame.

A 36 px person far down a 1080p track bed is 8 px in a 416 px model input, below anything the
model finds; cut out at the input size, the same person is 36 px. Tiles cover only where the
zones and lines are, grown by the overlap (a small person's head above the track bed), never
the sky, and overlap so
an object smaller than the overlap lies whole inside some tile. The full frame still runs: it
finds what is too big for a tile.

Which tiles run on a frame (the cost): those where the motion gate saw change, those that found
an object of a class its zones watch lately (a moored vessel, a person who stopped) that the full
frame does not find surely itself (scored EXPLAINS_SCORE or more: then the tile is let go), and
every tile once per sweep (spread
over the sweep's frames, a tile or two at a time), so a still object is found at all. Change
that an object the full frame already sees large and surely explains (a near walker) opens no
tile: tiles are for what the full frame would lose, and without this one busy camera's tiles cost
several full frames' inference. Detections of all of them merge into one `Detections`: a box cut
by a tile's inner side is dropped (its whole is in a neighbour or the full frame), then per
class the best-scored box wins over a box that overlaps it (NMS) or lies mostly inside it (a
hull and its whole boat must not become two tracks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import cv2
import numpy as np

from ..config.models import TileGrid, Tiles, ZoneFile
from ..frames import Detections, Frame, iou_matrix
from .motion import MIN_CHANGED_PIXELS, blobs
from .overload import OverloadPolicy
from .tile_layout import AUTO_OVERLAP, Tile, plan


AUTO_SWEEP_S = 10.0
# The sweep passes over a tile whose picture has not changed since it last ran (a quiet camera's
# idle checks tell where it changed), but runs each at least this often: what a tile could find
# that leaves no change a blob (a faint object that came with the light) is found this late.
SWEEP_UNCHANGED_MAX_S = 60.0
NMS_IOU = 0.5
INSIDE = 0.8  # share of a box inside a better-scored box of its class that makes it the same object
SEAM_PX = 2.0  # a box this close to a tile's inner side was cut by it
GLOBAL_SHARE = 0.5  # change in more than this share of a camera's tiles is the whole picture's, not an object's
# A full-frame box this many model-input pixels long (a person about 150 px tall in 720p, at
# 416 px input) is one the full frame finds without help: the change around it is its own.
FULL_FRAME_SEES_PX = 48.0
# Only a sure box explains change (the bench's near walker scores 0.37-0.82; NanoDet's 0.25-0.3
# boxes over half a rail scene do not), and never one over a quarter of the frame: a false box
# must not hide where a small object moves. A box that explains nothing only costs tiles.
EXPLAINS_SCORE = 0.4
EXPLAINS_MAX_AREA = 0.25
EXPLAINED_GROW = 0.25  # grown by this share of its size on each side: where it moves to by the next sample
EXPLAINED_FOR_S = 1.0  # the last frame's boxes explain change for this long (media time)


def _concat(parts: Sequence[Detections]) -> Detections:
    keys = set.intersection(*(set(p.data) for p in parts)) if parts else set()
    return Detections(
        np.concatenate([p.xyxy for p in parts]) if parts else np.zeros((0, 4)),
        np.concatenate([p.confidence for p in parts]) if parts else np.zeros(0),
        np.concatenate([p.class_id for p in parts]) if parts else np.zeros(0),
        data={k: np.concatenate([p.data[k] for p in parts]) for k in keys},
    )


def from_tile(dets: Detections, tile: Tile, frame: tuple[int, int]) -> Detections:
    """A tile's detections in frame pixels, less the boxes its inner sides cut."""
    x1, y1, x2, y2 = tile
    b = dets.xyxy
    cut = np.zeros(len(dets), bool)
    if x1 > 0:
        cut |= b[:, 0] <= SEAM_PX
    if y1 > 0:
        cut |= b[:, 1] <= SEAM_PX
    if x2 < frame[0]:
        cut |= b[:, 2] >= (x2 - x1) - SEAM_PX
    if y2 < frame[1]:
        cut |= b[:, 3] >= (y2 - y1) - SEAM_PX
    kept = dets[~cut]
    kept.xyxy = kept.xyxy + np.array([x1, y1, x1, y1], np.float32)
    return kept


def same_object(a: Detections, b: Detections) -> np.ndarray:
    """[i, j]: box i of `a` is box j of `b`'s object: the same class, and overlapping as NMS does
    or lying mostly inside it (a hull inside its whole boat)."""
    iou = iou_matrix(a.xyxy, b.xyxy)
    area_a, area_b = a.area.astype(np.float64), b.area.astype(np.float64)
    inter = iou * (area_a[:, None] + area_b[None, :]) / (1.0 + iou)  # from IoU = I / (A + B - I)
    inside = inter / np.maximum(area_a[:, None], 1e-9)  # share of box i inside box j
    return ((iou > NMS_IOU) | (inside >= INSIDE)) & (a.class_id[:, None] == b.class_id[None, :])


def merge(parts: Sequence[Detections]) -> tuple[Detections, np.ndarray]:
    """One `Detections` from the full frame's and the tiles' (all in frame pixels), and for each
    kept row the index of the part it came from."""
    both = _concat(parts)
    source = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)]) if parts else np.zeros(0, int)
    if len(both) == 0:
        return both, source
    same = same_object(both, both)
    keep: list[int] = []
    for i in np.argsort(-both.confidence, kind="stable"):
        if not any(same[i, k] for k in keep):
            keep.append(int(i))
    keep.sort()
    return both[np.array(keep, int)], source[keep]


def crop(image: np.ndarray, tile: Tile) -> np.ndarray:
    x1, y1, x2, y2 = tile
    return np.ascontiguousarray(image[y1:y2, x1:x2])


@dataclass
class CameraTiles:
    """One camera's tiles and when each runs; used on one thread (the detector's, or replay's)."""

    setting: Tiles
    rules: ZoneFile
    input_size: tuple[int, int] | None
    phase: float = 0.0  # fraction of a sweep: cameras started together sweep at different times
    _layouts: dict[tuple[int, int], list[Tile]] = field(default_factory=dict)
    _last_t: float | None = None  # media time of the camera's last selection
    _owed: float = 0.0  # sweep tiles due and not yet run (a fraction of one carries over)
    _look: list[Tile] = field(default_factory=list)  # tiles of a first look (every tile) not run yet
    _next: int = 0  # the sweep's next tile, round the layout
    _held: dict[Tile, float] = field(default_factory=dict)  # tile -> media time it runs until
    _swept: dict[Tile, float] = field(default_factory=dict)  # tile -> media time the sweep last ran it
    _changed: set[Tile] = field(default_factory=set)  # tiles whose picture changed since the sweep ran them
    _seen: tuple[float, np.ndarray] | None = None  # (media time, grown boxes) the full frame saw large
    detected: int = 0  # tiles of this camera detected so far
    _watched: set[str] | None = None  # the class names its zones and lines judge

    @property
    def sweep_s(self) -> float:
        return self.setting.sweep_s if isinstance(self.setting, TileGrid) else AUTO_SWEEP_S

    def tiles(self, size: tuple[int, int]) -> list[Tile]:
        if size not in self._layouts:
            self._layouts[size] = plan(self.setting, self.rules, size, self.input_size)
        return self._layouts[size]

    def select(self, frame: Frame, shed_sweep: bool = False, shed_moving: bool = False) -> list[Tile]:
        """The tiles to detect on this frame; `shed_sweep`: the box is overloaded, the slow
        schedule waits (the overload policy sheds it first) while moving and held tiles still run;
        `shed_moving`: the box is saturated and this camera follows a track, so only its held
        tiles run (the far, small object it tracks); change elsewhere in its picture waits for
        the box to catch up, as motion on a quiet camera waits its turn."""
        tiles = self.tiles((frame.width, frame.height))
        t = frame.media_time
        if not tiles:
            return []
        self._note_change(frame, tiles)
        sweep = self._sweep(tiles, t, shed_sweep, frame.urgent)
        seen = self._seen[1] if self._seen and 0 <= t - self._seen[0] <= EXPLAINED_FOR_S else None
        # a frame the gate did not see (a first frame) has no change map: every tile counts as
        # moving, which is a first look, and sweep work is shed first
        moving = [] if shed_moving or (shed_sweep and frame.changes is None) else _moving(frame, tiles, seen)
        chosen = [tile for tile in tiles if tile in sweep or t <= self._held.get(tile, -math.inf) or tile in moving]
        self.detected += len(chosen)
        return chosen

    def _sweep(self, tiles: list[Tile], t: float, shed: bool, urgent: bool = False) -> list[Tile]:
        """The sweep's share of this frame: every tile once per `sweep_s`, spread evenly over the
        frames analysed (all of a 720p camera's 8 tiles in one batch held the detector for half a
        second, and a busy camera's next frames were replaced behind it); all of them on the
        camera's first frame (overloaded: one a frame) and when its media time goes back (a new
        connection; overloaded: left to the sweep). An urgent frame takes one at
        most: its camera's next frame comes a sample later and waits for its tiles, while a
        camera quiet for a while owes several (the rest carries over)."""
        last, self._last_t = self._last_t, t
        if last is None or t < last:
            self._owed, self._next = (self.phase * len(tiles) if last is None else 0.0), 0
            self._changed.clear()
            # overloaded, a reconnection's look is left to the sweep (48 cameras on looping clips:
            # each loop brought 4 tiles of a quiet camera); a first look goes a tile a frame (48
            # cameras starting together brought 4 tiles each while decoders were still on every
            # frame, and a busy camera went 6 s between analyses; none at all, tried, never found
            # a far person standing on the tracks from the start on a box that stayed overloaded)
            if last is None or not shed:
                self._look = list(tiles)
        if self._look:
            look, self._look = (self._look[:1], self._look[1:]) if shed else (self._look, [])
            self._swept.update((tile, t) for tile in look)
            return look
        if shed:
            return []  # nothing owed piles up while overloaded: the sweep resumes at its pace after
        self._owed = min(self._owed + len(tiles) * (t - last) / self.sweep_s, float(len(tiles)))
        k = int(self._owed + 1e-9)
        k = min(k, 1) if urgent else k
        self._owed -= k
        due = [tiles[(self._next + i) % len(tiles)] for i in range(k)]
        self._next = (self._next + k) % len(tiles)
        # passing over an unchanged tile is its turn: the sweep keeps its pace, only cheaper
        out = [tile for tile in due if tile in self._changed or t - self._swept.get(tile, -math.inf) >= SWEEP_UNCHANGED_MAX_S]
        for tile in out:
            self._swept[tile] = t
            self._changed.discard(tile)
        return out

    def _note_change(self, frame: Frame, tiles: list[Tile]) -> None:
        """Which tiles' picture changed: where an idle check's picture differs from the camera's
        last analysed one; all of them on any other frame (motion, a track, a first look)."""
        if frame.urgent or frame.since is None:
            self._changed.update(tiles)
        else:
            self._changed.update(_changed_tiles(blobs(frame.since), tiles, frame))

    def full_frame(self, dets: Detections, frame: Frame) -> None:
        """The full frame's own detections of this frame: those it sees large explain the change
        around them on the next frame."""
        if self.input_size is None:
            return
        shrink = min(self.input_size[0] / frame.width, self.input_size[1] / frame.height)
        b = dets.xyxy.astype(np.float64)
        wh = b[:, 2:] - b[:, :2]
        sure = (dets.confidence >= EXPLAINS_SCORE) & (wh.prod(axis=1) <= EXPLAINS_MAX_AREA * frame.width * frame.height)
        big = b[sure & (wh.max(axis=1) * shrink >= FULL_FRAME_SEES_PX)] if len(b) else b
        grow = (big[:, 2:] - big[:, :2]).max(axis=1, keepdims=True) * EXPLAINED_GROW  # a walker is tall, not wide
        self._seen = (frame.media_time, np.hstack([big[:, :2] - grow, big[:, 2:] + grow]))

    def _part_of_seen(self, box: np.ndarray, t: float) -> bool:
        """A box centred on an object the full frame saw large on this frame: a part of it (a
        tile sees a cut-off head as a person), or something beside it whose motion it hides."""
        if self._seen is None or self._seen[0] != t or not len(self._seen[1]):
            return False
        cx, cy, seen = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, self._seen[1]
        return bool(((seen[:, 0] <= cx) & (cx <= seen[:, 2]) & (seen[:, 1] <= cy) & (cy <= seen[:, 3])).any())

    def tile_objects(self, dets: Detections, sure: Detections) -> np.ndarray:
        """Which of `dets` a tile is needed for: a class this camera's zones or lines judge, and
        not an object of `sure` (the full frame's boxes scored EXPLAINS_SCORE or more), either way."""
        if self._watched is None:
            self._watched = {label for rule in [*self.rules.zones, *self.rules.lines] for label in rule.labels}
        watched = np.array([name in self._watched for name in dets.class_name], bool)
        if not len(dets) or not len(sure):
            return watched
        return watched & ~(same_object(dets, sure).any(axis=1) | same_object(sure, dets).any(axis=0))

    def release(self, tile: Tile) -> None:
        """What the tile found the full frame sees surely too: it runs again only when due."""
        self._held.pop(tile, None)

    def found(self, tile: Tile, box: np.ndarray, t: float) -> None:
        """An object from this tile is in the merged result: keep running the tile for a sweep's
        time, if the object is small (one the full frame would lose; a larger one is its job) and
        not part of one the full frame sees large."""
        overlap = self.setting.overlap if isinstance(self.setting, TileGrid) else AUTO_OVERLAP
        if max(box[2] - box[0], box[3] - box[1]) <= overlap * max(tile[2] - tile[0], tile[3] - tile[1]) \
                and not self._part_of_seen(box, t):
            self._held[tile] = t + self.sweep_s


def _changed_tiles(changes: np.ndarray, tiles: Sequence[Tile], frame: Frame) -> list[Tile]:
    """Tiles holding at least MIN_CHANGED_PIXELS of `changes` (a bool map at its own small size)."""
    sx, sy = changes.shape[1] / frame.width, changes.shape[0] / frame.height
    return [(x1, y1, x2, y2) for x1, y1, x2, y2 in tiles
            if int(np.count_nonzero(changes[int(y1 * sy): math.ceil(y2 * sy), int(x1 * sx): math.ceil(x2 * sx)]))
            >= MIN_CHANGED_PIXELS]


def _moving(frame: Frame, tiles: Sequence[Tile], seen: np.ndarray | None = None) -> list[Tile]:
    """Tiles where the motion gate saw an object-sized change (all of them without a change map:
    a frame the gate did not see) that no box in `seen` (frame pixels: objects the full frame
    sees large) explains. Single changed cells (sensor noise, compression) are opened away
    first; a far 28 px walker is a blob of several cells and stays. When most tiles change at
    once (shake, rain, a light switching, a keyframe's pulse) change says nothing about where
    objects are: then none counts, and held tiles and the sweep carry on alone."""
    if frame.changes is None:
        return list(tiles)
    changes = cv2.erode(frame.changes.astype(np.uint8), np.ones((2, 2), np.uint8))
    sx, sy = changes.shape[1] / frame.width, changes.shape[0] / frame.height
    for x1, y1, x2, y2 in seen if seen is not None else ():
        changes[max(0, int(y1 * sy)): max(0, math.ceil(y2 * sy)), max(0, int(x1 * sx)): max(0, math.ceil(x2 * sx))] = 0
    out = _changed_tiles(changes, tiles, frame)
    return [] if len(out) > max(2, GLOBAL_SHARE * len(tiles)) else out


class Tiling:
    """Every camera's tiles, and detection of a batch of frames with them: one detector call for
    the full frames and their tiles together, so tiles ride the shared detector's batches."""

    def __init__(self, input_size: tuple[int, int] | None = None, policy: OverloadPolicy | None = None) -> None:
        self.input_size = input_size
        self.policy = policy  # under overload the slow-schedule sweep is shed first
        self.cameras: dict[str, CameraTiles] = {}
        self.frames = 0  # full frames detected
        self.tiles = 0  # tiles detected beside them

    def set_camera(self, camera: str, setting: Tiles, rules: ZoneFile, phase: float = 0.0) -> None:
        """A camera's tiles from its setting and its zone file (again when its zones change)."""
        self.cameras[camera] = CameraTiles(setting, rules, self.input_size, phase)

    def select(self, frame: Frame, shed_sweep: bool = False, shed_moving: bool = False) -> list[Tile]:
        """The tiles to detect beside `frame`."""
        cam = self.cameras.get(frame.camera)
        return cam.select(frame, shed_sweep, shed_moving) if cam is not None else []

    def merge_frame(self, frame: Frame, tiles: Sequence[Tile], results: Sequence[Detections]) -> Detections:
        """One frame's `Detections` from its full frame's (`results[0]`) and its `tiles`' results.
        Every frame is merged, with tiles or without: a model that also boxes part of an object
        (NanoDet: a hull inside its whole boat) must not make two tracks on a frame no tile ran on."""
        size = (frame.width, frame.height)
        cam = self.cameras.get(frame.camera)
        self.frames += 1
        self.tiles += len(tiles)
        if cam is not None:
            cam.full_frame(results[0], frame)
        parts = [results[0]] + [from_tile(d, tile, size) for tile, d in zip(tiles, results[1:])]
        merged, source = merge(parts)
        if cam is None:
            return merged
        sure = results[0][results[0].confidence >= EXPLAINS_SCORE]
        for s, box, lost in zip(source.tolist(), merged.xyxy, cam.tile_objects(merged, sure)):
            if s and lost:
                cam.found(tiles[s - 1], box, frame.media_time)
        for tile, found in zip(tiles, parts[1:]):
            # a tile that finds only what no zone watches, or what the full frame finds surely too
            # (a near walker), is let go: held, it cost a busy camera a picture on every frame
            if len(found) and not cam.tile_objects(found, sure).any():
                cam.release(tile)
        return merged

    def detect(self, detector: Any, frames: Sequence[Frame]) -> list[Detections]:
        """Detect `frames` and their tiles in one detector call (replay; the live agent's detector
        thread calls `select` and `merge_frame` itself, a few pictures per call)."""
        shed = self.policy is not None and self.policy.shedding("tiles")
        chosen = [self.select(f, shed) for f in frames]
        results = detector.detect([f.image for f in frames] + [crop(f.image, t) for f, ts in zip(frames, chosen)
                                                               for t in ts])
        out, k = [], len(frames)
        for i, (frame, tiles) in enumerate(zip(frames, chosen)):
            out.append(self.merge_frame(frame, tiles, [results[i]] + list(results[k: k + len(tiles)])))
            k += len(tiles)
        return out


def input_size_of(detector: Any) -> tuple[int, int] | None:
    """The detector's model input (w, h), when it has a fixed one."""
    size = getattr(detector, "input_size", None)
    return (int(size[0]), int(size[1])) if size else None
