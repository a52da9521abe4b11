"""The false-alarm budget's CI slice (issue 10 item 6): empty scenes with waves, sun glitter, rain
with a shaking camera, heavy sensor noise at dusk, a slow brightness drift and the day/night IR
switch, drawn at run time from fixed seeds (scripts/footage/empty.py, from the committed
backgrounds), replayed as `edge-agent replay VIDEO --zones Z.yaml --out DIR` with no --config, so
with the shipped defaults. Nothing should alarm: every `start` of any type is a false alarm,
camera_tampered included. `scripts/bench_false_alarms.py` runs the same scenes for hours.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edge_agent.cli import main
from tests.fixtures.rtsp import read_events

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from footage.empty import CONDITIONS, ci_slice, render_empty  # noqa: E402

SECONDS_EACH = 30.0  # 6 conditions: 3 media-minutes in all, about 105 s of CPU (the suite's share)
SCENES = {s.condition: s for s in ci_slice(SECONDS_EACH)}


def test_the_slice_covers_every_condition():
    assert set(SCENES) == set(CONDITIONS)
    assert sum(s.duration for s in SCENES.values()) >= 180
    zones = [z for s in SCENES.values() for z in s.zones]
    assert {z["kind"] for z in zones} >= {"water", "rail"}
    assert all(set(z) == {"name", "kind", "polygon", "labels", "dwell_s"} for z in zones)  # defaults only


@pytest.mark.timeout(900)  # drawing, encoding and replaying 30 s of video: generous for a loaded machine
@pytest.mark.parametrize("condition", CONDITIONS)
def test_an_empty_scene_raises_no_alarm(condition, tmp_path):
    clip, zones = render_empty(SCENES[condition], tmp_path)
    assert main(["replay", str(clip), "--zones", str(zones), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    starts = [(e.type, e.zone, e.details) for e in read_events(tmp_path / "out") if e.phase == "start"]
    assert starts == [], SCENES[condition].name
