"""The config loader names the file, line and key of every problem, all at once, without secrets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_agent.config.loader import (
    COCO80,
    collect,
    load_all,
    load_config,
    load_yaml_model,
    load_zones,
    zones_path,
)
from edge_agent.config.models import AgentConfig, Camera, Zone, ZoneFile
from edge_agent.errors import ConfigError

DATA = Path(__file__).resolve().parents[1] / "data" / "config"
ROOT = Path(__file__).resolve().parents[2]


def zone_problems(name: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_zones(DATA / name, COCO80, "yolov3-tiny")
    return info.value.problems


def config_problems(name: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_all(DATA / name)
    return info.value.problems


def only(problems: list[str]) -> str:
    assert len(problems) == 1, problems
    return problems[0]


def test_lines_masks_and_filters_are_checked_at_their_lines() -> None:
    problems = zone_problems("zones_line_mistakes.yaml")
    where = str(DATA / "zones_line_mistakes.yaml")
    expected = [
        (":6: zones[0].aspect:", "must be [low, high] with low < high"),
        (":9: lines[0].points:", "the same point"),
        (":11: lines[1].name:", "'track' is used twice (first at line 2)"),
        (":13: lines[1].labels[0]:", "did you mean 'person'"),
        (":14: lines[1].direction:", "'inwards' is not allowed"),
        (":16: masks[0]:", "at least 3"),
    ]
    assert len(problems) == len(expected), problems
    for text, (at, words) in zip(problems, expected):
        assert text.startswith(where + at) and words in text, text


@pytest.mark.parametrize(
    "name, where, words",
    [
        ("zones_unknown_key.yaml", ":6: zones[0].dwel_s:", ["unknown key 'dwel_s'", "did you mean 'dwell_s'"]),
        ("zones_bad_kind.yaml", ":8: zones[1].kind:", ["'lake' is not allowed", "rail, water, shore, restricted"]),
        ("zones_point_outside.yaml", ":7: zones[0].polygon[2][1]:", ["y = 1.2 is outside", "0 to 1"]),
        ("zones_self_crossing.yaml", ":5: zones[0].polygon:", ["crosses itself"]),
        ("zones_unknown_label.yaml", ":7: zones[0].labels[1]:", ["'persn' is not a class", "did you mean 'person'"]),
        ("zones_duplicate_name.yaml", ":6: zones[1].name:", ["'track' is used twice (first at line 2)"]),
        ("zones_syntax_error.yaml", ":5:", ["YAML syntax error", "flow sequence at line 4"]),
    ],
)
def test_each_kind_of_zone_mistake_is_reported_at_its_line(name: str, where: str, words: list[str]) -> None:
    text = only(zone_problems(name))
    assert text.startswith(str(DATA / name) + where), text
    for word in words:
        assert word in text


def test_each_bad_schedule_window_is_reported_at_its_own_line() -> None:
    problems = zone_problems("zones_bad_schedule.yaml")
    assert len(problems) == 2, problems
    assert ":8: zones[0].schedule[1]: " in problems[0] and "'7pm-6am'" in problems[0]
    assert ":9: zones[0].schedule[2]: " in problems[1] and "25:00" in problems[1]


def test_exclusions_that_miss_cross_or_swallow_the_zone_are_reported() -> None:
    problems = zone_problems("zones_exclusion.yaml")
    assert [p.split(": ", 2)[1] for p in problems] == [
        "zones[0].exclude[1]", "zones[0].exclude[2]", "zones[0].exclude[3]"]
    assert ":8: " in problems[0] and "does not overlap" in problems[0]
    assert ":9: " in problems[1] and "crosses itself" in problems[1]
    assert ":10: " in problems[2] and "covers the whole zone" in problems[2]


def test_all_problems_of_a_file_come_at_once_in_line_order() -> None:
    problems = zone_problems("zones_many_errors.yaml")
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == [3, 4, 5, 6, 7, 9, 11, 12], problems
    assert "zones[2].name: required, but missing" in problems[-1]


def test_labels_are_unchecked_without_class_names() -> None:
    zf = load_zones(DATA / "zones_unknown_label.yaml")
    assert zf.zones[0].labels == ["person", "persn"]


def test_camera_and_mqtt_secrets_never_appear_in_errors() -> None:
    problems = config_problems("cameras_password.yaml")
    text = "\n".join(problems)
    assert "Hunter2secret" not in text and "Sup3rSecretMqtt" not in text
    assert ":4: mqtt.password: must be text, got ***" in text
    assert ":9: cameras[0].location: must be a mapping" in text and "rtsp://***@192.0.2.5" in text
    assert ":10: cameras[0].detect_fps: must be a number, got 'fast'" in text


def test_a_password_holding_an_at_sign_is_masked_whole(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("site: {id: s}\ndevice: {id: d}\ncameras:\n  - id: c\n"
                   "    url: rtsp://admin:p@ss0rdX@10.0.0.1/x\n    location: rtsp://admin:p@ss0rdX@10.0.0.1/x\n")
    problems = pytest.raises(ConfigError, load_yaml_model, cfg, AgentConfig).value.problems
    assert problems == [f"{cfg}:6: cameras[0].location: must be a mapping (`key: value` lines), "
                        "got 'rtsp://***@10.0.0.1/x'"]


def test_yaml_syntax_error_on_a_password_line_does_not_quote_the_line() -> None:
    text = only(config_problems("cameras_password_syntax.yaml"))
    assert text.startswith(f"{DATA / 'cameras_password_syntax.yaml'}:6: YAML syntax error")
    assert "Hunter2secret" not in text


def test_duplicate_camera_ids() -> None:
    text = only(config_problems("cameras_duplicate_ids.yaml"))
    assert ":11: cameras[2].id: camera id 'quay' is used twice (first at line 5)" in text


def test_unknown_timezone_suggests_the_right_one() -> None:
    text = only(config_problems("cameras_bad_timezone.yaml"))
    assert ":3: site.timezone: 'Europe/Olso' is not a known time zone" in text
    assert "Europe/Oslo" in text


def test_missing_files_named_in_the_config_are_reported() -> None:
    problems = config_problems("cameras_files.yaml")
    where = [p.split(": ", 2)[0].rsplit(":", 1)[1] + " " + p.split(": ", 2)[1] for p in problems]
    assert where == [
        "2 device.id", "3 patrol", "5 mqtt.password_file", "7 mqtt.tls.ca_file", "8 mqtt.tls.cert_file",
        "8 mqtt.tls.cert_file", "11 cameras[0].url", "13 cameras[1].id", "14 cameras[1].url",
    ], problems
    assert "secrets/missing.txt" in problems[2]  # a path is not a secret
    assert "zones/gate.yaml not found" in problems[-2]
    assert "unknown URL scheme 'rtps'; did you mean rtsp://?" in problems[-1]


def test_zone_files_are_checked_even_when_cameras_yaml_has_problems(tmp_path: Path) -> None:
    shutil.copy(DATA / "zones_bad_kind.yaml", tmp_path / "bad.yaml")
    cfg = tmp_path / "cameras.yaml"
    cfg.write_text("site: {id: s}\ndevice: {id: d}\nmqtt: {enabled: false}\nbogus: 1\n"
                   "cameras:\n  - id: c1\n    url: rtsp://h/1\n    zones: bad.yaml\n")
    _, _, problems = collect(cfg)
    assert problems[0].startswith(f"{cfg}:4: bogus: unknown key")
    assert problems[1].startswith(f"{tmp_path / 'bad.yaml'}:8: zones[1].kind:")


def test_good_files_load(tmp_path: Path) -> None:
    cfg, zones = load_all(DATA / "cameras_ok.yaml")
    assert [c.id for c in cfg.cameras] == ["quay"] and cfg.site.timezone == "Europe/Oslo"
    assert [z.name for z in zones["quay"].zones] == ["quay"]
    assert load_config(DATA / "cameras_ok.yaml") == cfg


def test_shipped_examples_validate(example_site: Path) -> None:
    cfg, zones = load_all(example_site)  # copied to configs/cameras.yaml as the README says
    assert [z.name for z in zones["quay-east"].zones] == ["quay-edge", "boats-at-quay", "crane-rails"]
    assert cfg.cameras[0].location is not None
    project = example_site.parents[1]  # data goes to the project's data/, not configs/data/
    assert Path(cfg.mqtt.outbox.path) == project / "data" / "outbox.sqlite"
    assert Path(cfg.alarms.store_dir) == project / "data" / "media"
    for path in sorted((ROOT / "configs" / "zones").glob("*.yaml")):
        assert isinstance(load_zones(path, COCO80), ZoneFile)


def test_zones_path_defaults_beside_the_cameras_file_and_resolves_relative_paths() -> None:
    cam = Camera(id="cam1", url="rtsp://h/1")
    assert zones_path("configs/cameras.yaml", cam) == Path("configs/zones/cam1.yaml")
    assert zones_path("/etc/edge/cameras.yaml", Camera(id="c", url="x", zones="z/a.yaml")) == Path("/etc/edge/z/a.yaml")
    assert zones_path("configs/cameras.yaml", Camera(id="c", url="x", zones="/abs/a.yaml")) == Path("/abs/a.yaml")


def test_file_level_problems(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope.yaml: file not found"):
        load_yaml_model(missing, ZoneFile)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"list.yaml:1: the file must hold `key: value` lines"):
        load_yaml_model(listed, AgentConfig)
    twice = tmp_path / "twice.yaml"
    twice.write_text("zones: []\nzones: []\n")
    with pytest.raises(ConfigError, match=r"twice.yaml:2: zones: written twice \(first at line 1\)"):
        load_yaml_model(twice, ZoneFile)


def test_merge_keys_point_at_the_key_written_in_the_mapping(tmp_path: Path) -> None:
    merged = tmp_path / "merge.yaml"
    merged.write_text("zones:\n  - &z {name: a, kind: rail, polygon: [[0,0],[1,0],[1,1]], labels: [person]}\n"
                      "  - <<: *z\n    name: b\n    kind: pond\n")
    text = only(pytest.raises(ConfigError, load_yaml_model, merged, ZoneFile).value.problems)
    assert text.startswith(f"{merged}:5: zones[1].kind: 'pond' is not allowed"), text


def test_a_value_of_the_wrong_yaml_type_says_how_to_write_it(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("site: {id: s}\ndevice: {id: d}\nmqtt:\n  protocol: 5\n  qos: '1'\n")
    problems = pytest.raises(ConfigError, load_yaml_model, cfg, AgentConfig).value.problems
    assert problems == [f'{cfg}:4: mqtt.protocol: 5 must be written as text, in quotes: "5"',
                        f"{cfg}:5: mqtt.qos: '1' must be written without quotes: 1"]


def test_missing_required_key_points_at_its_parent() -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml_model(DATA / "zones_ok.yaml", AgentConfig)
    assert any(p.startswith(f"{DATA / 'zones_ok.yaml'}:1: site: required, but missing") for p in info.value.problems)


def test_zone_model_checks_hold_for_code_built_zones_too() -> None:
    with pytest.raises(ValueError, match="crosses itself"):
        Zone(name="z", kind="rail", polygon=[(0, 0), (1, 1), (1, 0), (0, 1)], labels=["person"])
    with pytest.raises(ValueError, match="not a time range"):
        Zone(name="z", kind="rail", polygon=[(0, 0), (1, 0), (1, 1)], labels=["person"], schedule=["night"])
    zone = Zone(name="z", kind="rail", polygon=[(0, 0), (1, 0), (1, 1)], labels=["person"],
                schedule=["22:00-06:00"])
    assert zone.schedule == ["22:00-06:00"]
