"""Replay every committed clip through the real pipeline and check the alarms its ground truth expects.

Each `*.expected.yaml` beside the clips (written by scripts/make_footage.py from the scene's
geometry, or from hand labels for real footage) lists which alarms must come out: type, zone,
label, how many, and the media-time window of the first. The pipeline's own output never feeds
an expectation.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import av
import cv2
import jsonschema
import numpy as np
import pytest
import yaml

from edge_agent.clock import parse_iso
from edge_agent.config.loader import load_zones
from edge_agent.config.models import AgentConfig, Device, Site
from edge_agent.config.render import KIND_COLORS, LINE_COLOR
from edge_agent.evaluate import judge
from edge_agent.replay import run_replay

HERE = Path(__file__).parent
ALL = sorted(HERE.glob("*.expected.yaml"))
CASES = [c for c in ALL if "zones" in yaml.safe_load(c.read_text())]
PATROL = [c for c in ALL if "points" in yaml.safe_load(c.read_text())]
DEFAULT_START = "2026-06-01T10:00:00Z"


def _load(case: Path) -> dict:
    return yaml.safe_load(case.read_text())


def _replay(case: Path, out: Path) -> tuple[dict, list[dict]]:
    spec = _load(case)
    config = AgentConfig(
        site=Site(id="test-site", timezone=spec.get("timezone", "UTC")), device=Device(id="test-box")
    )
    result = run_replay(
        HERE / spec["clip"],
        HERE / spec["zones"],
        out,
        config=config,
        camera_id="cam",
        start=parse_iso(spec.get("start", DEFAULT_START)),
        fps=spec.get("fps", 5.0),
    )
    assert result.frames > 0
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    return spec, events


@pytest.fixture(scope="module", params=[c.name.removesuffix(".expected.yaml") for c in CASES])
def replayed(request, tmp_path_factory) -> tuple[dict, list[dict], Path]:
    out = tmp_path_factory.mktemp(request.param)
    spec, events = _replay(HERE / f"{request.param}.expected.yaml", out)
    return spec, events, out


def test_alarms_match_ground_truth(replayed):
    """The harness's judge (edge-agent eval): counts, first-alarm window, distinct tracks, extras."""
    spec, events, _ = replayed
    assert not judge(spec, events), judge(spec, events)


def test_a_stationary_zone_raises_nothing_but_stationary(replayed):
    """vessel_moored's expectations allow unlisted alarms (only_listed: false); its zone, though,
    has stationary_s, and such a zone raises `stationary` instead of `intrusion`, never both."""
    spec, events, _ = replayed
    stationary = {z.name for z in load_zones(HERE / spec["zones"]).zones if z.stationary_s is not None}
    wrong = [(e["type"], e["zone"]) for e in events if e["zone"] in stationary and e["type"] != "stationary"]
    assert not wrong, f"{spec['clip']}: {wrong}"


def test_every_alarm_has_all_phases_in_order(replayed):
    """...and every line is valid against the published docs/schemas/event.schema.json."""
    _, events, _ = replayed
    schema = json.loads((HERE.parents[1] / "docs" / "schemas" / "event.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for e in events:
        assert not list(validator.iter_errors(e)), e
    by_id: dict[str, list[str]] = {}
    times: dict[str, list[float]] = {}
    for e in events:
        by_id.setdefault(e["event_id"], []).append(e["phase"])
        times.setdefault(e["event_id"], []).append(parse_iso(e["time"]))
    for event_id, sent in times.items():  # an update sent after the end carried an earlier time
        assert sent == sorted(sent), (event_id, by_id[event_id], sent)
    for event_id, phases in by_id.items():
        assert phases[0] == "start", (event_id, phases)
        assert phases.count("start") == 1 and phases.count("end") == 1, (event_id, phases)
        assert phases.count("update") == 1, (event_id, phases)  # the clip


def _zone_edge_share(image: np.ndarray, polygon: list, colour: tuple[int, int, int]) -> float:
    """Share of points along the zone's outline whose neighbourhood has the kind's colour."""
    h, w = image.shape[:2]
    pts = np.asarray(polygon, float) * (w, h)
    hits = total = 0
    for a, b in zip(pts, np.roll(pts, -1, axis=0)):
        for s in np.linspace(0.1, 0.9, 9):
            x, y = (a + (b - a) * s).round().astype(int)
            x, y = min(max(x, 0), w - 1), min(max(y, 0), h - 1)
            patch = image[max(0, y - 2): y + 3, max(0, x - 2): x + 3].reshape(-1, 3).astype(int)
            total += 1
            hits += bool((np.abs(patch - colour).max(axis=1) < 60).any())
    return hits / total


def test_snapshots_are_jpegs_showing_the_zone(replayed):
    """...or the line, for a line crossing."""
    spec, events, out = replayed
    rules = load_zones(HERE / spec["zones"])
    shown = {z.name: (z.polygon, KIND_COLORS[z.kind]) for z in rules.zones}
    shown.update({ln.name: (list(ln.points), LINE_COLOR) for ln in rules.lines})
    for e in (e for e in events if e["phase"] == "start"):
        data = (out / e["snapshot"]["path"]).read_bytes()
        assert data[:2] == b"\xff\xd8" and hashlib.sha256(data).hexdigest() == e["snapshot"]["sha256"]
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[:2] == (spec["video"]["height"], spec["video"]["width"])
        outline, colour = shown[e["zone"]]
        assert _zone_edge_share(image, outline, colour) > 0.6


def test_clips_decode_and_cover_the_alarm(replayed):
    _, events, out = replayed
    starts = {e["event_id"]: e for e in events if e["phase"] == "start"}
    for e in (e for e in events if e["phase"] == "update" and "clip" in e):
        data = (out / e["clip"]["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == e["clip"]["sha256"]
        with av.open(io.BytesIO(data)) as c:
            n = sum(1 for _ in c.decode(video=0))
        clip_start = parse_iso(e["clip"]["start"])
        alarm = parse_iso(starts[e["event_id"]]["start"])
        assert n >= 10
        assert clip_start <= alarm <= clip_start + e["clip"]["duration_s"], (e["clip"], alarm)


def test_replay_cli_writes_events_and_fails_clearly(tmp_path):
    """The command CI and technicians run: exit 0 with a summary; a clear non-zero for bad input."""
    case = _load(HERE / "rail_intrusion.expected.yaml")
    cmd = [sys.executable, "-m", "edge_agent.cli", "replay", str(HERE / case["clip"]),
           "--zones", str(HERE / case["zones"]), "--out", str(tmp_path / "out"),
           "--start", DEFAULT_START, "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "intrusion" in done.stdout and "x real time" in done.stdout
    lines = (tmp_path / "out" / "events.jsonl").read_text().splitlines()
    assert [json.loads(x)["phase"] for x in lines].count("start") == 1

    bad_video = subprocess.run(cmd[:4] + [str(tmp_path / "missing.mp4")] + cmd[5:], capture_output=True, text=True)
    assert bad_video.returncode == 2 and "video file not found" in bad_video.stderr
    assert "Traceback" not in bad_video.stderr

    bad_zones = tmp_path / "bad.yaml"
    bad_zones.write_text("zones:\n  - name: x\n    kind: lake\n    polygon: [[0,0],[1,0],[1,1]]\n    labels: [person]\n")
    done = subprocess.run(cmd[:6] + [str(bad_zones)] + cmd[7:], capture_output=True, text=True)
    assert done.returncode == 2 and "bad.yaml:3" in done.stderr and "kind" in done.stderr


@pytest.mark.parametrize("case", PATROL, ids=lambda c: c.name.removesuffix(".expected.yaml"))
def test_patrol_clips_through_replay(case, tmp_path):
    """`replay --patrol`: the check-in stage rides the same pipeline as the zone rules."""
    spec = _load(case)
    config = AgentConfig(site=Site(id=spec["site"], timezone=spec["timezone"]), device=Device(id="test-box"))
    result = run_replay(HERE / spec["clip"], None, tmp_path, config=config, camera_id=spec["camera"],
                        start=parse_iso(spec["start"]), fps=spec["fps"], patrol=HERE / spec["points"])
    got = {t: sum(1 for e in result.events if e.type == t and e.phase == "start")
           for t in ("patrol_checkin", "patrol_badge_rejected", "patrol_presence")}
    assert got == {t: spec["expect"][t] for t in got}, got
    for e in (e for e in result.events if e.type == "patrol_checkin"):
        assert e.details["member"] == spec["expect"]["member"]
        assert (tmp_path / e.snapshot.path).is_file()
