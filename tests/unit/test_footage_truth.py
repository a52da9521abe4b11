"""The committed test clips decode as their expected files say, and their ground truth is consistent.

Checks the footage itself (size, frame count, camera-like H.264), that every zone file loads with
the project's loader, that the truth agrees with the zone geometry (entry points inside, margins
outside), that the pixels show an object where the truth says one was drawn, and that the script
still computes the committed truth.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import av
import numpy as np
import pytest
import yaml
from shapely.geometry import Point, Polygon

from edge_agent.config.loader import load_zones

ROOT = Path(__file__).resolve().parents[2]
FOOTAGE = ROOT / "tests" / "footage"
DATA = ROOT / "tests" / "data"  # committed copies of the shared media this test needs
# The zone cases scripts/make_footage.py writes (other tests may keep their own clips here).
CASE_IDS = ["boat_crossing", "rail_beside", "rail_brief", "rail_empty", "rail_intrusion", "rail_schedule_inside",
            "rail_schedule_outside", "rail_two_people", "vessel_moored", "vtest_restricted"]
CASES = [FOOTAGE / f"{name}.expected.yaml" for name in CASE_IDS]
CLIPS = sorted({FOOTAGE / yaml.safe_load(c.read_text())["clip"] for c in CASES})


def _spec(case: Path) -> dict:
    return yaml.safe_load(case.read_text())


def _zones(spec: dict) -> dict[str, Polygon]:
    zf = load_zones(FOOTAGE / spec["zones"])
    return {z.name: z for z in zf.zones}


def _frames(clip: Path, times: set[int] | None = None) -> dict[int, np.ndarray]:
    with av.open(str(clip)) as c:
        return {i: f.to_ndarray(format="bgr24") for i, f in enumerate(c.decode(video=0)) if times is None or i in times}


@pytest.mark.parametrize("clip", CLIPS, ids=lambda p: p.name)
def test_clip_is_small_camera_like_h264(clip: Path):
    spec = _spec(FOOTAGE / f"{clip.stem}.expected.yaml")
    video = spec["video"]
    assert clip.stat().st_size < 1_000_000
    with av.open(str(clip)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.codec_context.width, stream.codec_context.height) == (video["width"], video["height"])
        assert float(stream.average_rate) == video["fps"]
        packets = [p for p in c.demux(stream) if p.size]
    assert len(packets) == video["frames"]
    keys = [i for i, p in enumerate(packets) if p.is_keyframe]
    assert keys == list(range(0, video["frames"], video["fps"]))  # GOP = fps, no scene-cut keyframes
    assert [p.pts for p in packets] == sorted(p.pts for p in packets)  # no B-frames: decode order = display order
    assert len(_frames(clip)) == video["frames"]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_expectations_name_real_zones_and_labels(case: Path):
    spec = _spec(case)
    zones = _zones(spec)
    assert (FOOTAGE / spec["clip"]).exists()
    assert spec["expect"], "an empty expectation list would pass anything"
    for exp in spec["expect"]:
        zone = zones[exp["zone"]]
        assert exp["label"] in zone.labels and exp["type"] in ("intrusion", "stationary")
        lo, hi = exp["count"]
        assert 0 <= lo <= hi
        if exp["type"] == "stationary":
            assert zone.stationary_s
        if "first_alarm_within" in exp:
            a, b = exp["first_alarm_within"]
            assert 0 <= a < b <= spec["video"]["frames"] / spec["video"]["fps"]


@pytest.mark.parametrize("case", [c for c in CASES if "objects" in _spec(c)["truth"]],
                         ids=lambda c: c.name.removesuffix(".expected.yaml"))
def test_synthetic_truth_agrees_with_zone_geometry(case: Path):
    spec = _spec(case)
    zones = _zones(spec)
    polys = {name: Polygon(z.polygon) for name, z in zones.items()}
    for exp in spec["expect"]:
        zone = zones[exp["zone"]]
        visits = [(name, v) for name, o in spec["truth"]["objects"].items() if o["label"] == exp["label"]
                  for v in o["zones"][exp["zone"]]["visits"]]
        if exp["count"] == [0, 0] and not zone.schedule:
            # Nothing may have been inside long enough to alarm.
            assert all((v["left_at"] or 1e9) - v["entered_at"] < zone.dwell_s for _, v in visits)
        for _, v in visits:
            # Inside, up to the rounding of the stored point to three decimals.
            assert polys[exp["zone"]].distance(Point(v["entry_point"])) < 0.0015
        if exp["type"] == "intrusion" and exp["count"][0] >= 1 and "first_alarm_within" in exp:
            # The window is built around the first entry + dwell, never before anything was inside.
            first = min(v["entered_at"] for _, v in visits)
            a, b = exp["first_alarm_within"]
            assert first < a and a <= first + zone.dwell_s <= b
            assert len({name for name, _ in visits}) >= exp["count"][0]
    for name, obj in spec["truth"]["objects"].items():
        for zname, z in obj["zones"].items():
            for t, x, y in obj["path"]:
                inside = polys[zname].contains(Point(x, y))
                in_visit = any(v["entered_at"] <= t < (v["left_at"] or 1e9) for v in z["visits"])
                if abs(polys[zname].exterior.distance(Point(x, y))) > 0.01:  # away from the edge
                    assert inside == in_visit, (name, zname, t)


def test_rail_beside_keeps_the_feet_out():
    truth = _spec(FOOTAGE / "rail_beside.expected.yaml")["truth"]["objects"]["person-1"]["zones"]["track-bed"]
    assert truth["visits"] == [] and truth["min_margin_outside"] >= 0.05


def test_moored_vessel_settles_before_the_clip_ends():
    spec = _spec(FOOTAGE / "vessel_moored.expected.yaml")
    zone = _zones(spec)["no-mooring"]
    settled = spec["truth"]["objects"]["boat-1"]["zones"]["no-mooring"]["settled_at"]
    a, b = spec["expect"][0]["first_alarm_within"]
    assert settled <= spec["truth"]["stopped_at"] and a >= settled + zone.stationary_s - 0.25
    assert b <= spec["video"]["frames"] / spec["video"]["fps"]


@pytest.mark.parametrize("name, inside", [("rail_schedule_outside", False), ("rail_schedule_inside", True)])
def test_schedule_cases_start_outside_and_inside_the_window(name: str, inside: bool):
    spec = _spec(FOOTAGE / f"{name}.expected.yaml")
    zone = _zones(spec)["track-bed"]
    assert zone.schedule == ["19:00-06:00"] and spec["clip"] == "rail_intrusion.mp4"
    start = datetime.fromisoformat(spec["start"].replace("Z", "+00:00")).astimezone(ZoneInfo(spec["timezone"]))
    end = start.timestamp() + spec["video"]["frames"] / spec["video"]["fps"]
    for t in (start.timestamp(), end):
        local = datetime.fromtimestamp(t, ZoneInfo(spec["timezone"]))
        assert (local.hour >= 19 or local.hour < 6) == inside
    assert (spec["expect"][0]["count"] == [0, 0]) == (not inside)


@pytest.mark.parametrize("direction", ["in", "out"])
def test_line_cases_follow_the_walkers_path(direction: str):
    """The walker crosses the gate left to right; drawn bottom to top, that is `in`."""
    spec = _spec(FOOTAGE / f"rail_line_{direction}.expected.yaml")
    rules = load_zones(FOOTAGE / spec["zones"])
    (gate,) = rules.lines
    assert spec["clip"] == "rail_intrusion.mp4" and not rules.zones and gate.direction == direction
    (ax, ay), (bx, by) = gate.points
    assert ax == bx and ay > by  # vertical, drawn upwards: its left is the picture's left
    path = spec["truth"]["objects"]["person-1"]["path"]
    assert all(by < y < ay for _, _, y in path)  # the feet stay within the segment's height
    assert all(x1 >= x0 - 0.005 for (_, x0, _), (_, x1, _) in zip(path, path[1:]))  # never walks back
    assert path[0][1] < ax - gate.hysteresis and path[-1][1] > ax + gate.hysteresis
    (exp,) = spec["expect"]
    assert exp["type"] == "line_crossed" and exp["direction"] == direction
    if direction == "out":
        assert exp["count"] == [0, 0]
        return
    past = min(t for t, x, _ in path if x >= ax + gate.hysteresis)  # the first whole second past it
    a, b = exp["first_alarm_within"]
    assert exp["count"] == [1, 1] and a < past - 1.0 < past <= b


def test_vtest_hand_labels_match_the_zone():
    spec = _spec(FOOTAGE / "vtest_restricted.expected.yaml")
    labels = yaml.safe_load((FOOTAGE / "vtest_labels.yaml").read_text())
    lawn = Polygon(_zones(spec)["lawn"].polygon)
    assert len(labels["people"]) == spec["truth"]["hand_count"] == 2
    lo, hi = spec["expect"][0]["count"]
    assert lo <= len(labels["people"]) <= hi and spec["expect"][0]["distinct_tracks"]
    for person in labels["people"]:
        assert lawn.contains(Point(person["entry_point"]))
        assert 0 <= person["entered_at"] < person["left_at"] <= labels["cut"]["length_s"]


def test_pixels_show_the_person_where_the_truth_drew_it():
    """rail_intrusion and rail_empty share the background: they differ inside the truth box only."""
    spec = _spec(FOOTAGE / "rail_intrusion.expected.yaml")
    t, x, y = spec["truth"]["objects"]["person-1"]["path"][4]  # t = 5 s: whole person, full light
    i = round(t * spec["video"]["fps"])
    a = _frames(FOOTAGE / "rail_intrusion.mp4", {i})[i].astype(np.int16)
    b = _frames(FOOTAGE / "rail_empty.mp4", {i})[i].astype(np.int16)
    h, w = a.shape[:2]
    diff = np.abs(a - b).max(axis=2)
    cx, foot = round(x * w), round(y * h)
    person = diff[foot - 150: foot - 20, cx - 15: cx + 15]  # torso and legs above the feet
    assert (person > 40).mean() > 0.5
    far = diff[:, (cx + 150 if cx < w / 2 else 0):][:, :150]  # a band well clear of the person
    assert np.median(far) < 12


def _media(tmp: Path) -> Path:
    """The shared media layout (backgrounds/, people/, objects/) from the committed copies."""
    for sub, files in (("backgrounds", ["train-tracks1.jpg"]), ("people", [f"dan{i}.gif" for i in range(1, 7)])):
        (tmp / sub).mkdir(parents=True)
        src = DATA / ("backgrounds" if sub == "backgrounds" else "cutouts")
        for name in files:
            (tmp / sub / name).write_bytes((src / name).read_bytes())
    return tmp


def test_script_still_computes_the_committed_truth(tmp_path):
    """Re-draw rail_intrusion without encoding: the truth must equal the committed file's."""
    media = _media(tmp_path)
    sys.path.insert(0, str(ROOT / "scripts"))
    from footage.render import SceneRender, Sprites, render_frames
    from footage.scenes import scenes
    from footage.truth import object_truth
    from make_footage import write_line_variants

    scene = scenes()["rail_intrusion"]
    spec = _spec(FOOTAGE / "rail_intrusion.expected.yaml")
    v = spec["video"]
    render = SceneRender(media / scene.background, scene.crop_y, scene.duration, scene.actors, scene.seed,
                         scene.gain, scene.noise)
    frames = [truth for _, truth in render_frames(render, Sprites(media), v["width"], v["height"], v["fps"])]
    assert len(frames) == v["frames"]
    assert object_truth(frames, scene.zones, v["fps"], v["width"] / v["height"]) == spec["truth"]["objects"]
    write_line_variants({}, frames, v["width"] / v["height"], {}, tmp_path)  # ...and the line cases'
    for name in ("rail_line_in", "rail_line_out"):
        assert _spec(tmp_path / f"{name}.expected.yaml")["expect"] == _spec(FOOTAGE / f"{name}.expected.yaml")["expect"]
        assert (tmp_path / "zones" / f"{name}.yaml").read_text() == (FOOTAGE / "zones" / f"{name}.yaml").read_text()


HARD = FOOTAGE / "hard"
HARD_CASES = sorted(HARD.glob("*.expected.yaml"))


@pytest.mark.parametrize("case", HARD_CASES, ids=lambda c: c.name.removesuffix(".expected.yaml"))
def test_hard_clip_is_a_camera_stream_at_its_bit_rate(case: Path):
    spec = _spec(case)
    video, clip = spec["video"], HARD / spec["clip"]
    with av.open(str(clip)) as c:
        stream = c.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.width, stream.codec_context.height) == (
            "h264", video["width"], video["height"])
        assert float(stream.average_rate) == video["fps"]
        packets = [p for p in c.demux(stream) if p.size]
    assert [i for i, p in enumerate(packets) if p.is_keyframe] == list(range(0, video["frames"], video["fps"]))
    kbps = clip.stat().st_size * 8 / 1000 / (video["frames"] / video["fps"])
    assert 0.7 * video["bitrate_kbps"] <= kbps <= 1.15 * video["bitrate_kbps"], kbps


@pytest.mark.parametrize("px", [28, 36, 44, 60])
def test_far_people_are_drawn_at_the_stated_height(px: int):
    spec = _spec(HARD / f"far_person_{px}.expected.yaml")
    first = spec["truth"]["objects"]["person-1"]["boxes"][0]
    assert abs((first[4] - first[2]) * spec["video"]["height"] - px) <= 1.0


def test_parapet_hides_the_lower_half():
    spec = _spec(HARD / "parapet_hidden.expected.yaml")
    h = spec["video"]["height"]
    standing = [b for b in spec["truth"]["objects"]["person-1"]["boxes"] if b[0] >= 3.5]
    for _, _, y0, _, y1 in standing:
        assert abs(y1 - 0.66) * h <= 6  # the box ends at the parapet's top (up to the camera jitter)
        assert (y1 - y0) < 0.6 * 0.44  # less than 60 % of the 0.44-tall person is visible
