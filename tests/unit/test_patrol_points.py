"""The patrol points file: the shipped 209-point example validates; mistakes come with their lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.errors import ConfigError, EdgeAgentError
from edge_agent.patrol.points import badge_secret, find_member, load_patrol, parse_duration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "configs" / "patrol_points.yaml"


def test_example_has_209_points_12_teams_and_validates():
    patrol = load_patrol(EXAMPLE)
    assert len(patrol.points) == 209
    assert len({p.id for p in patrol.points}) == 209
    assert {p.team for p in patrol.points} == {t.id for t in patrol.teams} and len(patrol.teams) == 12
    assert len({p.camera for p in patrol.points}) > 12
    assert patrol.due(patrol.points[0]).interval_s == 4 * 3600
    assert patrol.due(patrol.points[0]).window == "06:00-22:00"
    assert len(patrol.for_cameras(["dyke-01"])) == 9  # a box acts on its own cameras' points only


def test_example_is_what_the_generator_writes(tmp_path):
    import runpy

    out = tmp_path / "p.yaml"
    script = runpy.run_path(str(ROOT / "scripts" / "make_patrol_config.py"))
    assert script["main"](["--out", str(out)]) == 0
    assert out.read_text() == EXAMPLE.read_text()


def test_check_command_validates_the_example(capsys, example_site):
    assert main(["check", "--config", str(example_site), "--patrol", str(EXAMPLE)]) == 0
    assert "patrol points OK" in capsys.readouterr().out


BROKEN = """\
badge_secret_env: SECRET_ENV
defaults:
  due: {interval: 4 hours, window: "06:00-22:00"}
teams:
  - {id: T01}
points:
  - {id: PP001, camera: cam-1, team: T01, area: [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]}
  - {id: PP001, camera: cam-1, team: T01, area: [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]}
  - {id: PP003, camera: cam-1, team: T09, area: [[0.1, 0.1], [1.5, 0.1], [0.5, 0.5]]}
  - id: PP004
    camera: cam-1
    team: T01
    area: [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]
    due: {window: "25:00-22:00"}
roster:
  - {badge: 1, team: T01, member: A}
  - {badge: 70000, team: T01, member: B}
  - {badge: 1, team: T01, member: C, valid_until: someday}
"""


def test_broken_file_lists_every_problem_at_its_line(tmp_path):
    path = tmp_path / "patrol.yaml"
    path.write_text(BROKEN)
    with pytest.raises(ConfigError) as err:
        load_patrol(path)
    problems = err.value.problems
    text = "\n".join(problems)
    expected = {
        3: "interval",  # 4 hours
        8: "point id 'PP001' is used twice (first at line 7)",
        9: "team 'T09' is not in `teams:`",
        14: "25:00",
        17: "70000",
        18: "badge number 1 is used twice",
    }
    for line, words in expected.items():
        assert any(p.startswith(f"{path}:{line}: ") and words in p for p in problems), (line, words, text)
    assert any(p.startswith(f"{path}:9: ") and "points[2].area[1][0]" in p for p in problems), text  # x = 1.5
    assert any(p.startswith(f"{path}:18: ") and "valid_until" in p for p in problems), text
    assert [int(p.split(":")[1]) for p in problems] == sorted(int(p.split(":")[1]) for p in problems)


def test_check_command_prints_patrol_problems_with_lines(tmp_path, capsys, example_site):
    path = tmp_path / "patrol.yaml"
    path.write_text(BROKEN)
    assert main(["check", "--config", str(example_site), "--patrol", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:8: " in err and "Traceback" not in err


def test_yaml_syntax_error_has_a_line(tmp_path):
    path = tmp_path / "patrol.yaml"
    path.write_text("points:\n  - {id: PP001, camera: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_patrol(path)
    assert err.value.problems[0].startswith(f"{path}:")


def test_two_secret_sources_and_missing_secret_file(tmp_path):
    path = tmp_path / "patrol.yaml"
    path.write_text("badge_secret_env: X\nbadge_secret_file: nothere.txt\n")
    with pytest.raises(ConfigError) as err:
        load_patrol(path)
    text = "\n".join(err.value.problems)
    assert f"{path}:2: badge_secret_file: set only one of" in text
    assert "nothere.txt not found" in text


def test_secret_is_read_from_file_env_and_never_echoed(tmp_path, monkeypatch):
    (tmp_path / "key.txt").write_text("s3cret-file\n")
    path = tmp_path / "patrol.yaml"
    path.write_text("badge_secret_file: key.txt\n")
    assert badge_secret(load_patrol(path)) == b"s3cret-file"
    path.write_text("badge_secret_env: PATROL_TEST_SECRET\n")
    monkeypatch.delenv("PATROL_TEST_SECRET", raising=False)
    with pytest.raises(EdgeAgentError) as err:
        badge_secret(load_patrol(path))
    assert "PATROL_TEST_SECRET is not set" in str(err.value)
    path.write_text("badge_secret: hunter2-long\ndefaults: {presence_s: -1}\n")
    with pytest.raises(ConfigError) as bad:
        load_patrol(path)
    assert "hunter2-long" not in str(bad.value)


@pytest.mark.parametrize("text,seconds", [("4h", 14400), ("90m", 5400), ("1h30m", 5400), ("45s", 45), (600, 600)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["4 hours", "", "0h", "-5", "h"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_find_member_by_badge_or_name():
    patrol = load_patrol(EXAMPLE)
    assert find_member(patrol, "1010").member == "A. Jansen"
    assert find_member(patrol, "a. jansen").badge == 1010
    with pytest.raises(EdgeAgentError, match="no badge number or member"):
        find_member(patrol, "Nobody")
