"""ByteTrack-style multi-object tracking with time-based expiry.

Each `update(dets, t)` call:
1. predicts every live track's box at `t` with a constant velocity in pixels per second
   (measured over the last second of matches, so it is the same at 2 fps and at 25 fps);
2. matches high-score detections (>= `high_score`) to tracks by IoU, greedily, best pair first;
   a box that straddles two more confident boxes side by side (see `straddlers`) counts as
   low-score. NMS leaves such a box over two people who walk half behind each other; on the
   OpenCV `vtest.avi` cut in tests/footage it fitted the second person's track better than
   her own box did, took that track, her box started a new id and the lost track's person
   got a second alarm;
3. matches low-score detections (`low_score` <= score < `high_score`) to the tracks still
   unmatched: a boat whose score dips for a frame keeps its track instead of losing it;
4. matches high-score detections still unmatched to tracks still unmatched by centre distance:
   similar size and within reach (0.5 box sizes plus `max_speed` box sizes per second since the
   track was last seen). At 1-2 fps a walker moves a body width between frames and a new track
   has no velocity yet; on the OpenCV `vtest.avi` walkers this cut the track count at 2 fps from
   329 to 22 and at 10 fps from 65 to 27;
5. starts a new track for each unmatched high-score detection, except one that overlaps a more
   confident box of its class continuing a confirmed track by DOUBLE_IOU (a second box of the
   same object, `_doubles`);
6. removes each track that is not in this frame and was last seen more than `lost_grace_s`
   seconds ago (time, not frame count, so a slow camera keeps tracks as long as a fast one;
   and a frame must show the track missing, so a gap with no frames at all loses nothing).

Matching is class-aware: a detection only continues a track of the same class. Greedy matching
(highest IoU first, ties by detection row, then the older track) is deterministic and, for the
handful of objects a camera sees, gives the same pairs as an optimal assignment in practice
without scipy.

Rows are never dropped: `update` returns the same rows with `tracker_id` filled, and -1 for a row
that continues no track and starts none (a low-score detection, or a new track not yet confirmed
by `min_hits` matches). Ids are confirmed-track ids, 1, 2, 3, ..., never reused.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .frames import Detections, iou_matrix

_VELOCITY_WINDOW_S = 1.0  # velocity = displacement over about this long; smooths box jitter
_NEAR_BOX = 0.5  # distance matching: reach in box sizes even for a zero time gap
_MAX_REACH = 3.0  # ... and never more, however long the gap
_LEVEL = 0.7  # vertical IoU of boxes side by side at the same distance (see `straddlers`)
DOUBLE_IOU = 0.4  # a weaker box this much over a tracked one of its class starts no track (see `_doubles`)


@dataclass
class Track:
    """One tracked object. `box` is the last matched box (pixels); `id` is 0 until confirmed."""

    key: int  # internal, also for unconfirmed tracks
    class_id: int
    class_name: str
    box: np.ndarray
    score: float
    first_seen: float
    last_seen: float
    id: int = 0
    hits: int = 1
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float64))  # centre px/s
    history: deque = field(default_factory=deque)  # (t, centre) of recent matches

    def predict(self, t: float) -> np.ndarray:
        """The box moved on by the velocity for the time since it was last seen."""
        dt = max(0.0, t - self.last_seen)
        shift = self.velocity * dt
        return self.box + np.array([shift[0], shift[1], shift[0], shift[1]])

    def observe(self, box: np.ndarray, score: float, t: float) -> None:
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], np.float64)
        self.history.append((t, centre))
        while len(self.history) > 2 and t - self.history[1][0] >= _VELOCITY_WINDOW_S:
            self.history.popleft()
        t0, c0 = self.history[0]
        if t - t0 > 1e-6:
            self.velocity = (centre - c0) / (t - t0)
        self.box = box.astype(np.float64)
        self.score = score
        self.last_seen = t
        self.hits += 1


@dataclass(frozen=True)
class TrackInfo:
    """What the rules may read about a confirmed track."""

    id: int
    box: tuple[float, float, float, float]
    class_id: int
    class_name: str
    score: float
    first_seen: float
    last_seen: float
    hits: int


def _centre(boxes: np.ndarray) -> np.ndarray:
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)


def _size(boxes: np.ndarray) -> np.ndarray:
    """sqrt(area): one length that suits tall people and long boats alike."""
    wh = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
    return np.sqrt(wh[:, 0] * wh[:, 1])


def _same_class(dets: Detections, rows: np.ndarray, tracks: list[Track]) -> np.ndarray:
    return dets.class_id[rows][:, None] == np.array([tr.class_id for tr in tracks])[None, :]


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(row, col) pairs, best IoU first, each row and col at most once, IoU >= threshold."""
    rows, cols = np.nonzero(iou >= threshold)
    if len(rows) == 0:
        return []
    order = np.lexsort((cols, rows, -iou[rows, cols]))  # best IoU, then lowest row, then col
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c))
    return pairs


def straddlers(dets: Detections, rows: np.ndarray, share: float) -> np.ndarray:
    """Which `rows` sit between two stronger boxes: level with two or more more-confident boxes
    of their class (the same rows of the picture, so side by side at the same distance), with
    at least `share` of their width covered by those boxes together and by none of them alone.

    That is the box NMS leaves over two people who overlap (a man and a woman walking side by
    side): it fits the pair's tracks about as well as their own boxes do and shows nobody new.
    A box inside one bigger box (a child in front of an adult), or one that merely touches a
    nearer person's box, is not one.
    """
    out = np.zeros(len(rows), bool)
    xyxy = dets.xyxy.astype(np.float64)
    for k, r in enumerate(rows):
        x0, y0, x1, y1 = xyxy[r]
        stronger = (dets.class_id == dets.class_id[r]) & (dets.confidence > dets.confidence[r])
        ys = xyxy[stronger][:, [1, 3]]
        v_inter = np.clip(np.minimum(ys[:, 1], y1) - np.maximum(ys[:, 0], y0), 0, None)
        v_union = np.maximum(ys[:, 1], y1) - np.minimum(ys[:, 0], y0)
        level = xyxy[stronger][v_inter >= _LEVEL * np.maximum(v_union, 1e-6)]
        if len(level) < 2 or x1 <= x0:
            continue
        spans = np.clip(level[:, [0, 2]], x0, x1)
        alone = (spans[:, 1] - spans[:, 0]).max() / (x1 - x0)
        out[k] = alone < share and _covered(spans) / (x1 - x0) >= share
    return out


def _doubles(dets: Detections, rows: np.ndarray, matched: dict[int, Track]) -> set[int]:
    """Unmatched `rows` that overlap a more confident box of their class continuing a confirmed
    track in this frame by DOUBLE_IOU or more: a second, weaker box of an object already tracked
    (a walker's shoulder-to-knee box in rain and shake, 0.39 beside the whole person's 0.60 at
    IoU 0.44); a new track from it alarmed for the same person twice."""
    kept = [r for r, tr in matched.items() if tr.id]
    out: set[int] = set()
    if not kept:
        return out
    iou = iou_matrix(dets.xyxy[rows], dets.xyxy[kept])
    for i, r in enumerate(rows.tolist()):
        if r in matched:
            continue
        same = (dets.class_id[kept] == dets.class_id[r]) & (dets.confidence[kept] > dets.confidence[r])
        if (same & (iou[i] >= DOUBLE_IOU)).any():
            out.add(r)
    return out


def _covered(spans: np.ndarray) -> float:
    """Length of the union of (n, 2) intervals."""
    total, reach = 0.0, -np.inf
    for a, b in spans[np.argsort(spans[:, 0])]:
        if b > reach:
            total += b - max(a, reach)
            reach = b
    return total


Pair = tuple[int, Track]  # (detection row, track)


class Tracker:
    """Give each detection a stable track id across frames; see the module docstring."""

    def __init__(
        self,
        high_score: float = 0.4,
        low_score: float = 0.1,
        match_iou: float = 0.3,
        lost_grace_s: float = 2.0,
        min_hits: int = 1,
        max_speed: float = 1.5,
        straddle_share: float = 0.75,
    ) -> None:
        if not 0 <= low_score <= high_score <= 1:
            raise ValueError(f"need 0 <= low_score ({low_score}) <= high_score ({high_score}) <= 1")
        if lost_grace_s < 0 or min_hits < 1:
            raise ValueError("lost_grace_s must be >= 0 and min_hits >= 1")
        self.high_score = high_score
        self.low_score = low_score
        self.match_iou = match_iou
        self.lost_grace_s = lost_grace_s
        self.min_hits = min_hits
        self.max_speed = max_speed  # box sizes per second, for the distance fallback
        self.straddle_share = straddle_share  # see `straddlers`
        self._live: list[Track] = []
        self._next_key = 1
        self._next_id = 1
        self._last_t: float | None = None

    @property
    def tracks(self) -> dict[int, TrackInfo]:
        """Confirmed live tracks (including those within their lost grace), by id."""
        return {
            tr.id: TrackInfo(
                tr.id, tuple(float(v) for v in tr.box), tr.class_id, tr.class_name,
                tr.score, tr.first_seen, tr.last_seen, tr.hits,
            )
            for tr in self._live
            if tr.id
        }

    def update(self, dets: Detections, t: float) -> Detections:
        """Associate `dets` (one frame at epoch or media time `t`) with tracks; see module docstring."""
        t = float(t)
        if self._last_t is not None and t < self._last_t:
            t = self._last_t  # a clock step back must not make tracks "predict" backwards
        self._last_t = t
        n = len(dets)
        out_ids = np.full(n, -1, np.int64)
        conf = dets.confidence
        names = dets.class_name
        high = np.nonzero(conf >= self.high_score)[0]
        low = np.nonzero((conf >= self.low_score) & (conf < self.high_score))[0]
        # A box between two stronger ones counts as weak: matched first by IoU, it would take
        # a track from its own person's box, which then starts a new id (a second alarm).
        weak = high[straddlers(dets, high, self.straddle_share)]
        if len(weak):
            high = np.setdiff1d(high, weak)
            low = np.union1d(low, weak)

        matched_rows: dict[int, Track] = {}
        free = list(self._live)
        for rows, how in ((high, self._by_iou), (low, self._by_iou), (high, self._by_distance)):
            rows = np.array([r for r in rows if int(r) not in matched_rows], np.int64)
            pairs = how(dets, rows, free, t)
            for r, tr in pairs:
                matched_rows[r] = tr
            taken = {id(tr) for _, tr in pairs}
            free = [tr for tr in free if id(tr) not in taken]

        for r, tr in matched_rows.items():
            tr.observe(dets.xyxy[r], float(conf[r]), t)
            if not tr.id and tr.hits >= self.min_hits:
                tr.id = self._take_id()
        # Expire after matching: only a frame without the object is evidence that it is gone, so
        # a long stretch with no analysed frames (motion gating, a slow camera) loses nothing.
        # Unconfirmed tracks get one chance: missing a frame before confirmation drops them.
        seen = {id(tr) for tr in matched_rows.values()}
        self._live = [
            tr for tr in self._live
            if id(tr) in seen or (tr.id and t - tr.last_seen <= self.lost_grace_s + 1e-9)
        ]
        doubles = _doubles(dets, high, matched_rows)
        for r in high:
            r = int(r)
            if r not in matched_rows and r not in doubles:
                cls_id, name = int(dets.class_id[r]), str(names[r])
                matched_rows[r] = self._start(dets.xyxy[r], float(conf[r]), cls_id, name, t)
        for r, tr in matched_rows.items():
            out_ids[r] = tr.id if tr.id else -1
        return dets.with_tracker_id(out_ids)

    def _by_iou(self, dets: Detections, rows: np.ndarray, tracks: list[Track], t: float) -> list[Pair]:
        if len(rows) == 0 or not tracks:
            return []
        predicted = np.stack([tr.predict(t) for tr in tracks])
        iou = iou_matrix(dets.xyxy[rows], predicted)
        iou = np.where(_same_class(dets, rows, tracks), iou, 0.0)
        # `tracks` is in creation order, so on equal IoU the older track wins.
        return [(int(rows[r]), tracks[c]) for r, c in greedy_match(iou, self.match_iou)]

    def _by_distance(self, dets: Detections, rows: np.ndarray, tracks: list[Track], t: float) -> list[Pair]:
        """Last resort for boxes that no longer overlap: at 1-2 fps a walker moves a body width
        between frames, and a new track has no velocity yet. A detection of similar size whose
        centre is within reach (`max_speed` box sizes per second since last seen) continues it."""
        if len(rows) == 0 or not tracks:
            return []
        predicted = np.stack([tr.predict(t) for tr in tracks])
        det = dets.xyxy[rows].astype(np.float64)
        d_size, t_size = _size(det), _size(predicted)
        gap = np.array([t - tr.last_seen for tr in tracks])
        reach = np.minimum(_NEAR_BOX + self.max_speed * gap, _MAX_REACH) * t_size
        dist = np.linalg.norm(_centre(det)[:, None, :] - _centre(predicted)[None, :, :], axis=2)
        ratio = d_size[:, None] / np.maximum(t_size[None, :], 1e-6)
        ok = _same_class(dets, rows, tracks) & (ratio >= 0.5) & (ratio <= 2.0) & (dist <= reach[None, :])
        closeness = np.where(ok, 1.0 - dist / np.maximum(reach[None, :], 1e-6) + 1e-9, 0.0)
        return [(int(rows[r]), tracks[c]) for r, c in greedy_match(closeness, 1e-12)]

    def _start(self, box: np.ndarray, score: float, class_id: int, name: str, t: float) -> Track:
        tr = Track(self._next_key, class_id, name, box.astype(np.float64), score, t, t)
        self._next_key += 1
        tr.history.append((t, np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], np.float64)))
        if self.min_hits <= 1:
            tr.id = self._take_id()
        self._live.append(tr)
        return tr

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1
