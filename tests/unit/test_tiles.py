"""Sliced inference: tile layout (geometry), merging (boxes with known overlaps), when tiles run,
and a real detector finding a far person in a tile that the full frame misses."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.config.models import TileGrid, Zone, ZoneFile
from edge_agent.detect.tile_layout import layout, near_zones, plan
from edge_agent.detect.tiles import CameraTiles, Tiling, from_tile, merge
from edge_agent.frames import Detections, Frame

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
import scenes  # noqa: E402


def zone_file(*polygons) -> ZoneFile:
    return ZoneFile(zones=[Zone(name=f"z{i}", kind="rail", polygon=p, labels=["person"]) for i, p in enumerate(polygons)])


def lower(frame: tuple[int, int], top: float = 0.5) -> np.ndarray:
    """A map of the frame's lower part (below `top`), at 1/8 scale."""
    near = np.zeros((frame[1] // 8, frame[0] // 8), bool)
    near[round(top * frame[1] / 8):] = True
    return near


LOWER_HALF = zone_file([(0.0, 0.65), (1.0, 0.65), (1.0, 1.0), (0.0, 1.0)])


def dets(rows: list[tuple[float, float, float, float, float, int]]) -> Detections:
    names = {0: "person", 8: "boat", 13: "bench"}
    return Detections(xyxy=[r[:4] for r in rows], confidence=[r[4] for r in rows], class_id=[r[5] for r in rows],
                      data={"class_name": np.array([names[r[5]] for r in rows], dtype=object)})


def test_tiles_of_the_model_input_size_cover_the_zone_region_with_the_overlap_asked():
    tiles = layout(lower((1280, 720)), (1280, 720), (416, 416), 0.25)
    assert all((x2 - x1, y2 - y1) == (416, 416) for x1, y1, x2, y2 in tiles)
    assert all(0 <= x1 and x2 <= 1280 and 0 <= y1 and y2 <= 720 for x1, y1, x2, y2 in tiles)
    xs = sorted({(x1, x2) for x1, _, x2, _ in tiles})
    assert xs[0][0] == 0 and xs[-1][1] == 1280  # the region's whole width
    assert all(a[1] - b[0] >= 0.25 * 416 for a, b in zip(xs, xs[1:]))  # neighbours share a quarter
    assert {(y1, y2) for _, y1, _, y2 in tiles} == {(304, 720)}  # one row: the 360 px high region fits
    assert len(tiles) == 4  # ceil((1280 - 416) / 312) + 1


def test_any_object_smaller_than_the_overlap_lies_whole_inside_some_tile():
    tiles = layout(lower((1920, 1080)), (1920, 1080), (416, 416), 0.25)
    rng = random.Random(3)
    for _ in range(500):
        w, h = rng.uniform(5, 104), rng.uniform(5, 104)
        x, y = rng.uniform(0, 1920 - w), rng.uniform(544, 1080 - h)  # the map starts at row 68 of 135
        assert any(x1 <= x and x + w <= x2 and y1 <= y and y + h <= y2 for x1, y1, x2, y2 in tiles), (x, y, w, h)


def test_tiles_leave_out_the_sky_and_the_gap_between_far_apart_zones():
    rules = zone_file([(0.0, 0.9), (0.05, 0.9), (0.05, 1.0), (0.0, 1.0)], [(0.95, 0.9), (1.0, 0.9), (1.0, 1.0)])
    near = near_zones(rules, (1920, 1080), 104)
    ys, xs = np.nonzero(near)  # each zone grown by 104 px, within a map cell
    assert (xs.max() + 1) * 8 == 1920 and abs(ys.min() * 8 - (0.9 * 1080 - 104)) <= 8
    assert abs((xs[xs < 120].max() + 1) * 8 - (0.05 * 1920 + 104)) <= 8
    assert not near[:, round(0.11 * 240): round(0.89 * 240)].any()
    tiles = layout(near, (1920, 1080), (416, 416), 0.25)
    assert tiles and all(y2 == 1080 and y1 == 1080 - 416 for _, y1, _, y2 in tiles)  # one row, nothing above
    assert not any(x1 >= 0.15 * 1920 and x2 <= 0.85 * 1920 for x1, _, x2, _ in tiles)  # none over the gap
    assert any(x1 == 0 for x1, _, _, _ in tiles) and any(x2 == 1920 for _, _, x2, _ in tiles)


def test_tiles_follow_a_diagonal_shore_not_its_bounding_box():
    shore = zone_file([(0.0, 0.95), (0.95, 0.0), (1.0, 0.0), (1.0, 0.05), (0.05, 1.0), (0.0, 1.0)])
    tiles = plan("auto", shore, (1920, 1080), (416, 416))
    whole = layout(np.ones((135, 240), bool), (1920, 1080), (416, 416), 0.25)
    assert len(whole) == 6 * 4 and 0 < len(tiles) < len(whole)
    # the far corners, away from the band by more than a tile, get none
    assert not any(x2 <= 0.4 * 1920 and y2 <= 0.4 * 1080 for x1, y1, x2, y2 in tiles)
    assert not any(x1 >= 0.6 * 1920 and y1 >= 0.6 * 1080 for x1, y1, x2, y2 in tiles)


def test_auto_tiles_only_where_the_full_frame_shrinks_objects_and_off_means_none():
    regions = zone_file([(0.1, 0.6), (0.9, 0.6), (0.9, 0.9)])
    assert plan("auto", regions, (640, 360), (416, 416)) == []  # 1.5x: the full frame sees enough
    assert len(plan("auto", regions, (1280, 720), (416, 416))) >= 3
    assert plan("off", regions, (1920, 1080), (416, 416)) == []
    assert plan("auto", ZoneFile(), (1920, 1080), (416, 416)) == []  # no zones: nothing to watch
    assert plan("auto", regions, (1920, 1080), None) == []  # a model without a fixed input size
    grid = plan(TileGrid(size=320, overlap=0.5), regions, (640, 360), (416, 416))
    assert grid and all(x2 - x1 == 320 for x1, _, x2, _ in grid)


def test_a_hull_inside_its_whole_boat_and_one_person_seen_by_two_tiles_merge_into_one_each():
    full = dets([(100, 400, 300, 480, 0.9, 8)])  # the whole boat
    tile_a = dets([(110, 410, 200, 470, 0.6, 8), (600, 500, 620, 540, 0.5, 0)])  # its hull; a far person
    tile_b = dets([(601, 501, 621, 541, 0.7, 0), (640, 500, 660, 540, 0.4, 0)])  # the same person; another
    merged, source = merge([full, tile_a, tile_b])
    rows = sorted(zip(merged.class_name.tolist(), np.rint(merged.confidence * 10).astype(int).tolist(), source.tolist()))
    assert rows == [("boat", 9, 0), ("person", 4, 2), ("person", 7, 2)]


def test_merging_keeps_overlapping_boxes_of_different_classes_and_a_box_only_half_inside():
    person_on_boat = merge([dets([(100, 400, 300, 480, 0.9, 8), (150, 380, 180, 470, 0.5, 0)])])[0]
    assert sorted(person_on_boat.class_name.tolist()) == ["boat", "person"]
    half = merge([dets([(0, 0, 100, 100, 0.9, 0), (50, 0, 150, 100, 0.8, 0)])])[0]  # IoU 1/3, half inside
    assert len(half) == 2


def test_a_box_cut_by_a_tile_s_inner_side_is_dropped_and_one_at_the_frame_s_edge_kept():
    tile = (400, 300, 816, 716)  # inner sides left, top, right; its bottom is not the frame's (720)
    d = dets([(0, 100, 30, 150, 0.9, 0), (200, 100, 416, 150, 0.9, 0), (200, 0, 230, 40, 0.9, 0),
              (100, 200, 130, 260, 0.8, 0)])
    kept = from_tile(d, tile, (1280, 720))
    assert kept.xyxy.tolist() == [[500, 500, 530, 560]]  # only the whole one, moved into frame pixels
    edge = from_tile(dets([(0, 100, 30, 150, 0.9, 0)]), (0, 300, 416, 716), (1280, 720))
    assert len(edge) == 1  # the tile's left side is the frame's


def frame_at(t: float, changes: np.ndarray | None, size=(1280, 720)) -> Frame:
    return Frame("cam", int(t * 5), t, t, np.zeros((size[1], size[0], 3), np.uint8), None, changes=changes)


def test_all_tiles_run_on_the_first_frame_then_only_where_motion_is_or_an_object_was_found():
    """The sweep shed (as the overload policy does) leaves what motion and holds run."""
    cam = CameraTiles("auto", LOWER_HALF, (416, 416), phase=0.0)
    tiles = cam.tiles((1280, 720))
    still = np.zeros((180, 320), bool)
    assert cam.select(frame_at(0.0, None)) == tiles  # the first frame sweeps
    assert cam.select(frame_at(0.2, still), True) == []
    moving = still.copy()
    moving[146:153, 300:302] = True  # a far walker, 28 px tall: 7 grey-copy cells at x 1200-1208 px
    assert cam.select(frame_at(0.4, moving), True) == [tiles[-1]]
    speckle = still.copy()
    speckle[100::7, ::5] = True  # single changed cells all over: noise, not an object
    assert cam.select(frame_at(0.5, speckle), True) == []
    shaken = still.copy()
    shaken[100::10, :] = True
    shaken[101::10, :] = True  # every tile has blobs: the whole picture moved (shake)
    assert cam.select(frame_at(0.55, shaken), True) == []
    cam.found(tiles[2], np.array([600, 400, 900, 700]), 0.4)  # a big one: the full frame's job
    cam.found(tiles[1], np.array([400, 500, 460, 530]), 0.4)  # a small still boat: its tile runs on
    assert cam.select(frame_at(0.6, still), True) == [tiles[1]]
    assert cam.select(frame_at(10.4, still), True) == [tiles[1]]
    assert cam.select(frame_at(10.6, still), True) == []  # nothing found there for ten seconds


def test_the_sweep_runs_every_tile_once_per_sweep_a_tile_at_a_time():
    """A 720p camera's 4 tiles over 20 s at 5 fps: 8 sweep tiles, never two on one frame (all at
    once held the detector for half a second), each tile within every 10 s."""
    cam = CameraTiles("auto", LOWER_HALF, (416, 416), phase=0.0)
    tiles = cam.tiles((1280, 720))
    still = np.zeros((180, 320), bool)
    assert len(tiles) == 4 and cam.select(frame_at(0.0, None)) == tiles
    runs = [cam.select(frame_at(i / 5, still)) for i in range(1, 101)]
    assert max(map(len, runs)) == 1 and sum(map(len, runs)) == 8
    for start in range(len(runs) - 50):
        assert {t for r in runs[start:start + 50] for t in r} == set(tiles), start
    slow = CameraTiles("auto", LOWER_HALF, (416, 416))  # a quiet camera analysed every 5 s
    slow.select(frame_at(0.0, None))
    idle = [frame_at(t, still) for t in (5.0, 10.0, 30.0)]
    for frame in idle:
        frame.urgent = False  # an idle check (no map of where it changed: every tile counts as changed)
    assert [len(slow.select(frame)) for frame in idle] == [2, 2, 4]
    # motion after a quiet while: one sweep tile per frame, the rest owed to the next frames
    assert [len(slow.select(frame_at(t, still))) for t in (40.0, 40.2, 40.4, 40.6, 40.8)] == [1, 1, 1, 1, 0]
    assert slow.select(frame_at(1.0, None)) == tiles  # media time went back: a new connection sweeps


def test_change_around_an_object_the_full_frame_sees_large_opens_no_tile_but_a_small_one_s_does():
    """A near walker (300 px tall in 720p: 97 px in the 416 px input) is the full frame's: the change
    around it opens no tile on the next frame; change beside it, or after it is gone, still does."""
    cam = CameraTiles("auto", LOWER_HALF, (416, 416), phase=0.0)
    tiles = cam.tiles((1280, 720))
    cam.select(frame_at(0.0, None))  # the sweep
    walker = np.zeros((180, 320), bool)
    walker[105:180, 150:175] = True  # x 600-700, y 420-720 px: where the walker moved
    near = frame_at(0.2, walker)
    cam.full_frame(dets([(610, 420, 690, 720, 0.8, 0)]), near)
    assert cam.select(frame_at(0.4, walker), True) == []
    far = walker.copy()
    far[146:153, 300:302] = True  # and a far 28 px walker at x 1200 px
    assert cam.select(frame_at(0.6, far), True) == [tiles[-1]]
    cam.full_frame(dets([(1200, 584, 1208, 612, 0.6, 0)]), near)  # small: not the full frame's alone
    under_walker = [t for t in tiles if t[0] < 700 and t[2] > 600]
    assert len(under_walker) == 2 and cam.select(frame_at(0.8, walker), True) == under_walker
    cam.full_frame(dets([(610, 420, 690, 720, 0.3, 0)]), near)  # unsure: explains nothing
    assert cam.select(frame_at(0.9, walker), True) == under_walker
    cam.full_frame(dets([(0, 300, 1280, 720, 0.9, 8)]), near)  # over a quarter of the frame: nor that
    assert cam.select(frame_at(1.0, walker), True) == under_walker
    cam.full_frame(dets([(610, 420, 690, 720, 0.8, 0)]), frame_at(1.1, walker))
    assert cam.select(frame_at(1.2, walker), True) == []
    assert cam.select(frame_at(2.5, walker), True) == under_walker  # 1.5 s on, that box explains nothing


def test_a_small_box_on_an_object_the_full_frame_sees_large_holds_no_tile():
    """A tile sees the near walker's cut-off head as a small person: that must not keep the tile
    running for ten seconds; a small object away from it still does."""
    cam = CameraTiles("auto", LOWER_HALF, (416, 416), phase=0.0)
    tiles = cam.tiles((1280, 720))
    cam.select(frame_at(0.0, None))
    still = np.zeros((180, 320), bool)
    now = frame_at(0.2, still)
    cam.full_frame(dets([(610, 420, 690, 720, 0.8, 0)]), now)
    cam.found(tiles[1], np.array([630, 420, 660, 450]), 0.2)  # its head
    assert cam.select(frame_at(0.4, still), True) == []
    cam.full_frame(dets([(610, 420, 690, 720, 0.8, 0)]), frame_at(0.6, still))
    cam.found(tiles[-1], np.array([1200, 584, 1208, 612]), 0.6)  # a far walker
    assert cam.select(frame_at(0.8, still), True) == [tiles[-1]]

class CropSeer:
    """Finds a 20x40 person at a fixed frame position, but only in pictures it is not shrunk in."""

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def detect(self, images):
        self.sizes += [(im.shape[1], im.shape[0]) for im in images]
        out = []
        for im in images:
            where = np.argwhere(im[:, :, 0] == 255)
            if im.shape[1] > 416 or not len(where):
                out.append(dets([]))
            else:
                (y1, x1), (y2, x2) = where.min(0), where.max(0) + 1
                out.append(dets([(x1, y1, x2, y2, 0.8, 0)]))
        return out


def test_tiles_ride_the_frames_detector_call_and_come_back_in_frame_pixels():
    tiling = Tiling((416, 416))
    tiling.set_camera("cam", "auto", LOWER_HALF)
    image = np.zeros((720, 1280, 3), np.uint8)
    image[600:640, 700:720] = 255
    seer = CropSeer()
    got = tiling.detect(seer, [Frame("cam", 0, 0.0, 0.0, image), Frame("other", 0, 0.0, 0.0, image)])
    assert len(seer.sizes) == 2 + 4  # one call: both frames, the tiled camera's four tiles
    assert got[0].xyxy.tolist() == [[700, 600, 720, 640]] and len(got[1]) == 0
    assert (tiling.frames, tiling.tiles) == (2, 4)


class HullAndBoat:
    """Boxes a whole boat and, inside it, its hull (as NanoDet does on the moored vessel)."""

    def detect(self, images):
        return [dets([(100, 250, 400, 330, 0.5, 8), (120, 260, 380, 300, 0.35, 8)]) for _ in images]


def test_a_frame_no_tile_runs_on_is_merged_too():
    """640x360 gets no tiles: the hull inside its boat must still not become a second track."""
    tiling = Tiling((416, 416))
    tiling.set_camera("cam", "auto", LOWER_HALF)
    got = tiling.detect(HullAndBoat(), [Frame("cam", 0, 0.0, 0.0, np.zeros((360, 640, 3), np.uint8))])
    assert tiling.tiles == 0
    assert got[0].xyxy.tolist() == [[100, 250, 400, 330]]


@pytest.fixture(scope="module")
def detector():
    from edge_agent.detect.common import DetectorOptions
    from edge_agent.detect.registry import load_detector

    return load_detector("yolov3-tiny", DetectorOptions())


def test_a_far_person_the_full_frame_misses_is_found_in_a_tile(detector):
    bg = cv2.resize(scenes.background("train-tracks1"), (1920, 1080), interpolation=cv2.INTER_AREA)
    image, truth = scenes.compose(bg, scenes.cutout("dan1"), x=1250, bottom=900, height=48)
    full = detector.detect([image])[0]
    assert scenes.best_match(full, "person", truth)[0] < 0.3
    tiling = Tiling(detector.input_size)
    tiling.set_camera("cam", "auto", zone_file([(0.3, 0.7), (0.9, 0.7), (0.9, 0.95), (0.3, 0.95)]))
    tiled = tiling.detect(detector, [Frame("cam", 0, 0.0, 0.0, image)])[0]
    assert scenes.best_match(tiled, "person", truth)[0] >= 0.5


def test_the_tiles_setting_reads_yaml_s_bare_off_and_names_file_line_and_key_when_wrong(tmp_path):
    from edge_agent.config.loader import load_yaml_model
    from edge_agent.config.models import AgentConfig
    from edge_agent.errors import ConfigError

    good = tmp_path / "good.yaml"
    good.write_text("site: {id: s}\ndevice: {id: d}\ndetector:\n  tiles: off\n"
                    "cameras:\n  - id: c\n    url: c.mp4\n    tiles: {size: 512, overlap: 0.5}\n  - {id: e, url: e.mp4}\n")
    cfg = load_yaml_model(good, AgentConfig)
    assert cfg.detector.tiles == "off" and cfg.cameras[0].tiles == TileGrid(size=512, overlap=0.5)
    assert cfg.cameras[1].tiles is None and AgentConfig(site={"id": "s"}, device={"id": "d"}).detector.tiles == "auto"
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: {id: s}\ndevice: {id: d}\ndetector:\n  tiles: sometimes\n"
                   "cameras:\n  - id: c\n    url: c.mp4\n    tiles: {size: 10, overlap: 0.2, step: 3}\n")
    problems = pytest.raises(ConfigError, load_yaml_model, bad, AgentConfig).value.problems
    assert any(p.startswith(f"{bad}:4: detector.tiles: must be auto, off or a mapping") for p in problems), problems
    assert any(p.startswith(f"{bad}:8: cameras[0].tiles.size: must be greater than or equal to 64") for p in problems)
    assert any(p.startswith(f"{bad}:8: cameras[0].tiles.step: unknown key 'step'; allowed here: size, overlap")
               for p in problems), problems


def test_an_overloaded_box_sheds_the_sweep_but_keeps_moving_tiles():
    """Issue 15's shed order: the slow-schedule sweep goes first; a far walker's tile still runs."""
    cam = CameraTiles("auto", LOWER_HALF, (416, 416), phase=0.0)
    tiles = cam.tiles((1280, 720))
    still = np.zeros((180, 320), bool)
    assert cam.select(frame_at(0.0, None)) == tiles  # the first sweep runs while the box keeps up
    late = cam.sweep_s + 0.5
    assert cam.select(frame_at(late, still), shed_sweep=True) == []
    moving = still.copy()
    moving[146:153, 300:302] = True
    assert cam.select(frame_at(late + 0.2, moving), shed_sweep=True) == [tiles[-1]]
    # relieved: the sweep resumes at its pace, a tile at a time, nothing piled up while shed
    assert [len(cam.select(frame_at(late + 0.4 + i / 5, still))) for i in range(13)] == [0] * 12 + [1]


def test_a_saturated_following_camera_runs_its_held_tile_and_not_its_moving_ones():
    """Saturated, a camera following a track keeps the tile on its far, small object; change
    elsewhere in its picture waits for the box to catch up."""
    cam = CameraTiles("auto", LOWER_HALF, (416, 416), phase=0.0)
    tiles = cam.tiles((1280, 720))
    still = np.zeros((180, 320), bool)
    cam.select(frame_at(0.0, None))  # the first look, every tile
    cam.found(tiles[0], np.array([40, 500, 56, 530]), 0.0)  # a far walker, 30 px: its tile holds
    moving = still.copy()
    moving[146:153, 300:302] = True  # change in the last tile
    assert cam.select(frame_at(0.2, moving), True, shed_moving=True) == [tiles[0]]
    assert cam.select(frame_at(0.4, moving), True) == [tiles[0], tiles[-1]]  # relieved: both
    assert cam.select(frame_at(cam.sweep_s + 1, moving), True, shed_moving=True) == []  # hold over


def test_a_first_look_and_a_reconnection_look_at_every_tile_unless_the_box_is_overloaded():
    """A camera's first frame and media time going back (a new connection) look at every tile:
    sweep work, shed first (48 cameras starting together on a saturated box): a first look goes
    a tile a frame, a reconnection's is left to the sweep."""
    cam = CameraTiles("auto", LOWER_HALF, (416, 416), phase=0.0)
    tiles = cam.tiles((1280, 720))
    still = np.zeros((180, 320), bool)
    # overloaded, the first look goes a tile a frame; relieved, the rest at once
    assert cam.select(frame_at(0.0, None), shed_sweep=True) == tiles[:1]  # a first frame has no change map
    assert cam.select(frame_at(0.2, still), shed_sweep=True) == tiles[1:2]
    assert cam.select(frame_at(0.4, still)) == tiles[2:]
    assert cam.select(frame_at(0.6, still)) == []
    assert cam.select(frame_at(30.0, still), shed_sweep=True) == []
    assert cam.select(frame_at(1.0, still), shed_sweep=True) == []  # reconnected while overloaded
    assert cam.select(frame_at(1.2, still)) == []  # relieved: that look is left to the sweep
    assert cam.select(frame_at(0.5, still)) == tiles  # reconnected again, relieved


def idle_at(t: float, since: np.ndarray) -> Frame:
    """A quiet camera's idle check: `since` is where its picture changed since its last analysis."""
    frame = frame_at(t, since)
    frame.urgent, frame.since = False, since
    return frame


def test_the_sweep_passes_over_tiles_whose_picture_has_not_changed_but_runs_each_every_minute():
    """A still camera's idle checks every 10 s: a tile runs again once the picture in it changed,
    or SWEEP_UNCHANGED_MAX_S after it last ran; motion or a track (an urgent frame) counts as a
    change everywhere, as before."""
    from edge_agent.detect.tiles import SWEEP_UNCHANGED_MAX_S

    cam = CameraTiles("auto", LOWER_HALF, (416, 416), phase=0.0)
    tiles = cam.tiles((1280, 720))
    still = np.zeros((180, 320), bool)
    assert SWEEP_UNCHANGED_MAX_S == 60.0 and cam.select(frame_at(0.0, None)) == tiles
    assert [cam.select(idle_at(t, still)) for t in (10.0, 20.0, 30.0, 40.0, 50.0)] == [[]] * 5
    assert cam.select(idle_at(60.0, still)) == tiles
    arrived = still.copy()
    arrived[146:153, 300:303] = True  # something far at x 1200-1212 px: only the last tile holds it
    assert cam.select(idle_at(70.0, arrived)) == [tiles[-1]]
    assert cam.select(idle_at(80.0, still)) == []
    cam.select(frame_at(82.0, still))  # an urgent frame: the sweep cannot tell what changed
    assert cam.select(idle_at(90.0, still)) == tiles


def test_a_tile_holds_for_what_the_zones_watch_and_the_full_frame_does_not_find_surely():
    """On the capacity bench a static thing of a class no zone watches kept a busy camera's tile
    running on every frame. A tile holds for a small person (the zones watch people) the full frame
    misses; not for a bench; and it is let go once the full frame finds its person surely itself."""
    tiling = Tiling((416, 416))
    tiling.set_camera("cam", "auto", LOWER_HALF)
    cam = tiling.cameras["cam"]
    tiles = cam.tiles((1280, 720))
    still = np.zeros((180, 320), bool)
    assert cam.select(frame_at(0.0, None)) == tiles
    x0, y0 = tiles[-1][:2]
    person = (1000 - x0, 600 - y0, 1020 - x0, 640 - y0, 0.7, 0)  # 20x40 px at x 1000, in the last tile's pixels
    bench = (10, 10, 60, 50, 0.6, 13)  # in the first tile
    found = [dets([bench])] + [dets([])] * (len(tiles) - 2) + [dets([person])]
    tiling.merge_frame(frame_at(0.0, None), tiles, [dets([])] + found)
    assert cam.select(frame_at(0.2, still), True) == [tiles[-1]]
    unsure = dets([(998, 598, 1022, 642, 0.3, 0)])  # the full frame's own box, scored under EXPLAINS_SCORE
    tiling.merge_frame(frame_at(0.2, still), [tiles[-1]], [unsure, dets([person])])
    assert cam.select(frame_at(0.4, still), True) == [tiles[-1]]
    sure = dets([(998, 598, 1022, 642, 0.5, 0)])
    tiling.merge_frame(frame_at(0.4, still), [tiles[-1]], [sure, dets([person])])
    assert cam.select(frame_at(0.6, still), True) == []
