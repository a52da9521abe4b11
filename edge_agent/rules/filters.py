"""Which detections may count at all, before any zone or line looks at where they are.

- Box filters, per zone or line (`ObjectFilter`): label, `min_score`, `min_size` / `max_size`
  (box height over frame height) and `aspect` (box width over height).
- Masks, per camera: a detection whose box centre lies in a mask polygon is ignored everywhere
  (a statue, a buoy, a reflection). The centre, not the zone's anchor: a mask says "this thing is
  not an object", and a person walking past the statue's foot keeps counting.
- The median-score rule, per zone or line (`track_score`): a track may raise an alarm only when
  at least half of its last `window` detections score `median` (default: the zone's or line's
  `min_score`) or more. Missing detections of a track younger than `window` count as 0, so a
  track born on one lucky frame must first earn it.
- Background, per camera: a track first seen within `learn_s` of the camera's first analysed
  frame is background until it travels: its box centre lies more than `radius` (fraction of
  frame width) from where it was first seen; while fewer than half of its recent detections reach
  `weak_below`, the median of its last centres must, and farther than its first box was wide (a
  reflection's box flickers between one trunk and two for frames on end; such a jump is no
  travel), and after it was lost on the frames analysed for over a second it is placed anew (the
  tracker may have continued it on a second reflection). A rock the detector calls "person" never moves, so it never counts,
  unless the detector is sure of it: half its recent detections score `sure_above` (0.5) or
  more, as a far person standing on the tracks when the camera starts does (0.6-0.8 on the
  project's footage) and the rocks NanoDet calls "person" do not (0.29-0.44); such a rock needs a
  mask. A person who walks in and then stands still on the tracks was first seen later (or moved since
  first seen) and counts as any other track. Once a background track travels it counts for good
  and its place is forgotten. Background holds the alarm, not the presence (as the median rule
  does): the walker's dwell runs from its entry, so it alarms on time. The places of background
  tracks are remembered: a track born later on such a place (same label, IoU >= 0.5 with its
  first box) is the same still object found again after the tracker lost it (a flickering
  detection at dusk), and is background too, under the same rule. What this cannot tell apart: a
  person standing still from the moment the camera starts, scored under `sure_above`, is
  background until they move; a rock first detected hours after the start (at dusk) is not
  background unless weak; draw a mask for it.
- Weak newcomers, per camera (`background.weak_below`, 0.4): a track born later whose first
  detection scores below it is held the same way (no place remembered) until it travels or half
  its recent detections reach `weak_below`. A wave-broken reflection of a tree trunk in moving
  water is called "person" at 0.2-0.37 for seconds on end, in place; a far person scored that low
  walks or is seen better. The price: a far person who appears and stands still, scored under
  0.4 throughout, does not alarm.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np
import shapely

from ..config.models import Background, ObjectFilter
from ..frames import Detections, iou_matrix

_EMPTY = np.zeros(0, dtype=bool)
SAME_PLACE_IOU = 0.5  # a re-detected still object: its box is where it was
GAP_S = 1.0  # a weak held track lost on the frames analysed for longer is placed anew where seen again
FORGET_S = 30.0  # track memory outlives any tracker grace (seconds), then goes: bounded memory


def box_ok(flt: ObjectFilter, dets: Detections, height: int) -> np.ndarray:
    """Bool mask: label, score, box height and aspect as `flt` asks."""
    if len(dets) == 0:
        return _EMPTY.copy()
    labels = frozenset(flt.labels)
    label_ok = np.fromiter((str(n) in labels for n in dets.class_name), dtype=bool, count=len(dets))
    score_ok = dets.confidence >= np.float32(flt.min_score)
    box_w = (dets.xyxy[:, 2] - dets.xyxy[:, 0]).astype(np.float64)
    box_h = (dets.xyxy[:, 3] - dets.xyxy[:, 1]).astype(np.float64)
    rel_h = box_h / float(height)
    size_ok = (rel_h >= flt.min_size - 1e-9) & (rel_h <= flt.max_size + 1e-9)
    aspect = box_w / np.maximum(box_h, 1e-9)
    aspect_ok = (aspect >= flt.aspect[0]) & (aspect <= flt.aspect[1])
    return label_ok & score_ok & size_ok & aspect_ok


def masked(masks: Sequence[shapely.Polygon], dets: Detections, width: int, height: int) -> np.ndarray:
    """Bool mask: the box centre lies in one of the (prepared, normalised) mask polygons."""
    out = np.zeros(len(dets), dtype=bool)
    if len(dets) == 0 or not masks:
        return out
    centre = dets.anchors("center").astype(np.float64) / np.array([width, height], np.float64)
    for poly in masks:
        out |= shapely.intersects_xy(poly, centre[:, 0], centre[:, 1])
    return out


@dataclass(frozen=True)
class TrackMemo:
    """What the rules remember of one track across zones and lines."""

    label: str
    last_media: float
    first: tuple[float, float, float]  # centre x, y and width of its first box, in frame widths
    scores: tuple[float, ...] = ()  # its latest detections' scores, oldest first
    recent: tuple[tuple[float, float, float], ...] = ()  # the same of its latest boxes, oldest first
    background: bool = False
    place: int | None = None  # key of the background place it holds, if any
    missed: bool = False  # an analysed frame since it was last seen did not show it


@dataclass(frozen=True)
class Places:
    """Background places: where still objects were at start-up, by the id of the track that found them."""

    boxes: Mapping[int, tuple[str, tuple[float, float, float, float]]]  # normalised xyxy

    def find(self, label: str, box: np.ndarray) -> int | None:
        keys = [k for k, (lab, _) in self.boxes.items() if lab == label]
        if not keys:
            return None
        iou = iou_matrix(box[None, :], np.array([self.boxes[k][1] for k in keys]))[0]
        best = int(np.argmax(iou))
        return keys[best] if iou[best] >= SAME_PLACE_IOU else None


def held(memo: TrackMemo, still: bool = False) -> bool:
    """Background for this zone. A `still` zone (a no-mooring zone's `stationary_s`) is about
    objects that stop: there a weak newcomer is not held (a far boat that moors, scored 0.3),
    only what was there at start-up."""
    return memo.background and not (still and memo.place is None)


def may_alarm(memo: TrackMemo | None, flt: ObjectFilter, still: bool = False) -> bool:
    """Not `held`, and at least half (rounded up) of the track's last `window` detections reach
    the median threshold."""
    if memo is None or held(memo, still):
        return False
    rule = flt.track_score
    return _strong(memo.scores, flt.min_score if rule.median is None else rule.median, rule.window)


def best_rows(dets: Detections, rows: np.ndarray) -> dict[int, int]:
    """track id -> its best-scored row among `rows` (a clash of two rows for one id is rare)."""
    best: dict[int, int] = {}
    for i in rows:
        tid = int(dets.tracker_id[i])
        if tid not in best or dets.confidence[i] > dets.confidence[best[tid]]:
            best[tid] = int(i)
    return best


def _strong(scores: tuple[float, ...], threshold: float, keep: int) -> bool:
    """At least half (rounded up) of the last `keep` scores reach `threshold` (a young track's
    missing ones count as below it)."""
    return sum(s >= threshold - 1e-6 for s in scores[-keep:]) >= (keep + 1) // 2


def _median(boxes: tuple[tuple[float, float, float], ...]) -> np.ndarray:
    return np.median(np.asarray(boxes, np.float64), axis=0)


def travelled(memo: TrackMemo, radius: float, weak: bool) -> bool:
    """Its box centre is more than `radius` from where it was first seen. A `weak` track's usual
    place (the median of its latest boxes) must be, and farther than its first box was wide: a
    reflection (scored under 0.4) flickers between one trunk and two for frames on end, its
    centre jumping by more than the radius and back, by less than a box's width; a walker moves
    on, past where it stood. (A sure track's box moves at once: under overload a camera may be
    analysed once a second, and a median of five would hold a walker's alarm for seconds.)"""
    now = _median(memo.recent) if weak else memo.recent[-1]
    return bool(np.hypot(now[0] - memo.first[0], now[1] - memo.first[1]) > max(radius, memo.first[2] * weak))


def _born(places: dict, tid: int, label: str, box: np.ndarray, centre: tuple[float, float], score: float,
          media_time: float, since_start: float, cfg: Background) -> TrackMemo:
    place = None
    if cfg.enabled and since_start <= cfg.learn_s + 1e-6:
        place = tid
        places[tid] = (label, tuple(float(v) for v in box))
    elif cfg.enabled:
        place = Places(places).find(label, box)
    weak = cfg.enabled and place is None and cfg.weak_below is not None and score < cfg.weak_below
    return TrackMemo(label, media_time, (*centre, float(box[2] - box[0])), background=place is not None or weak,
                     place=place)


def _step(memo: TrackMemo | None, places: dict, tid: int, label: str, box: np.ndarray, centre: tuple[float, float],
          score: float, media_time: float, since_start: float, cfg: Background, keep: int) -> TrackMemo:
    if memo is None:
        memo = _born(places, tid, label, box, centre, score, media_time, since_start, cfg)
    seen = (*centre, float(box[2] - box[0]))  # box is normalised by the frame width in x
    sure = cfg.weak_below is None or _strong(memo.scores, cfg.weak_below, keep)
    if memo.background and not sure and memo.missed and media_time - memo.last_media > GAP_S:
        # Lost on the frames between, it may have been continued on another still object within
        # the tracker's reach (a second reflection a trunk away): that jump is no travel.
        memo = replace(memo, first=seen, recent=())
    memo = replace(memo, last_media=media_time, missed=False, scores=(memo.scores + (score,))[-keep:],
                   recent=(memo.recent + (seen,))[-keep:])
    if memo.background:
        # A weak track (no place) is let go by its scores; a start-up place only when the detector
        # is sure of it (`sure_above`): a far person standing on the tracks when the camera starts
        # scores 0.6-0.8, the rocks NanoDet calls "person" 0.29-0.44.
        strong = cfg.weak_below is None or _strong(memo.scores, cfg.weak_below, keep)
        sure = memo.place is not None and cfg.sure_above is not None and _strong(memo.scores, cfg.sure_above, keep)
        if (memo.place is None and strong) or sure or travelled(memo, cfg.radius, weak=not strong):
            if memo.place is not None:  # it was no still object: its place is free again
                places.pop(memo.place, None)
            memo = replace(memo, background=False, place=None)
    return memo


def update_tracks(memos: Mapping[int, TrackMemo], places: Places, started_media: float, dets: Detections,
                  size: tuple[int, int], media_time: float, cfg: Background, ignore: np.ndarray,
                  keep: int) -> tuple[dict[int, TrackMemo], Places]:
    """One frame: the track memos and background places after the tracked `dets`.

    `ignore` marks masked rows: they teach nothing. `keep` is the longest `track_score.window`
    of any zone or line. Background rows still count for zones (the dwell runs); `may_alarm`
    holds their alarms, so a walker first seen in the first seconds alarms on time once it moved.
    """
    w, h = size
    rows = np.nonzero((dets.tracker_id >= 0) & ~ignore)[0] if len(dets) else np.zeros(0, np.int64)
    out = {tid: m for tid, m in memos.items() if media_time - m.last_media <= FORGET_S}
    boxes = dict(places.boxes)
    centres = dets.anchors("center") / float(w) if len(dets) else np.zeros((0, 2))
    scale = np.array([w, h, w, h], np.float64)
    for tid, i in sorted(best_rows(dets, rows).items()):
        out[tid] = _step(out.get(tid), boxes, tid, str(dets.class_name[i]), dets.xyxy[i] / scale,
                         (float(centres[i, 0]), float(centres[i, 1])), float(dets.confidence[i]), media_time,
                         media_time - started_media, cfg, keep)
    for tid, m in out.items():
        if m.last_media != media_time and not m.missed:  # not on this frame
            out[tid] = replace(m, missed=True)
    return out, Places(boxes)
