"""`edge-agent check` exit codes and output, and the committed JSON Schemas staying current."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

from edge_agent.admin.schema import COMMITTED, SCHEMA_DIR, SCHEMAS, render

DATA = Path(__file__).resolve().parents[1] / "data" / "config"
ROOT = Path(__file__).resolve().parents[2]


def edge_agent(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_agent.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_check_passes_a_good_config_and_summarises_it() -> None:
    res = edge_agent("check", "--config", str(DATA / "cameras_ok.yaml"))
    assert res.returncode == 0, res.stderr
    assert "1 camera(s)" in res.stdout and "quay: 1 zone(s)" in res.stdout and res.stdout.endswith("OK\n")
    assert "pw1234" not in res.stdout + res.stderr


def test_check_prints_every_problem_of_every_file_and_exits_2(tmp_path: Path) -> None:
    shutil.copy(DATA / "zones_many_errors.yaml", tmp_path / "cam1.yaml")
    cfg = tmp_path / "cameras.yaml"
    cfg.write_text("site: {id: s, timezone: Mars/Base}\ndevice: {id: d}\nmqtt: {enabled: false}\n"
                   "cameras:\n  - id: cam1\n    url: rtsp://u:Secr3tPass@h/1\n    zones: cam1.yaml\n")
    res = edge_agent("check", "--config", str(cfg), "--zones", str(DATA / "zones_bad_kind.yaml"))
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    assert lines[0].startswith(f"{cfg}:1: site.timezone: 'Mars/Base' is not a known time zone")
    assert sum(line.startswith(f"{tmp_path / 'cam1.yaml'}:") for line in lines) == 8
    assert any(line.startswith(f"{DATA / 'zones_bad_kind.yaml'}:8: zones[1].kind:") for line in lines)
    assert lines[-1].startswith("edge-agent check: 10 problem(s)")
    assert "Secr3tPass" not in res.stderr and "Traceback" not in res.stderr and res.stdout == ""


def test_check_of_a_missing_config_fails_with_its_name(tmp_path: Path) -> None:
    res = edge_agent("check", "--config", str(tmp_path / "none.yaml"))
    assert res.returncode == 2 and f"{tmp_path / 'none.yaml'}: file not found" in res.stderr


def test_check_of_zone_files_alone_on_a_laptop(tmp_path: Path) -> None:
    # No configs/cameras.yaml in this folder: only the named zone files are checked.
    good = edge_agent("check", "--zones", str(DATA / "zones_ok.yaml"), cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "zones_ok.yaml: 1 zone(s): quay" in good.stdout
    bad = edge_agent("check", "--zones", str(DATA / "zones_unknown_label.yaml"), cwd=tmp_path)
    assert bad.returncode == 2 and ":7: zones[0].labels[1]: 'persn'" in bad.stderr


def test_check_warns_about_valid_but_doubtful_settings(tmp_path: Path) -> None:
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "c.yaml").write_text(
        "zones:\n  - {name: z, kind: rail, polygon: [[0,0],[1,0],[1,1]], labels: [person], min_score: 0.1}\n")
    cfg = tmp_path / "cameras.yaml"
    cfg.write_text("site: {id: s}\ndevice: {id: d}\nmqtt: {password: pw}\n"
                   "cameras:\n  - {id: c, url: rtsp://h/1}\n")
    res = edge_agent("check", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    assert "warning: camera c, zone z: min_score 0.1 is below the detector's min_score 0.25" in res.stdout
    assert "warning: mqtt.password is written in the config and sent without TLS" in res.stdout


def test_dwell_in_a_stationary_zone_is_a_warning_not_an_error(tmp_path: Path) -> None:
    res = edge_agent("check", "--zones", str(DATA / "zones_stationary_dwell.yaml"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "zone moorings: dwell_s is unused: a zone with stationary_s raises `stationary` after 10 s" in res.stdout


def test_committed_schemas_equal_the_generated_ones() -> None:
    for name, file in COMMITTED.items():
        committed = (SCHEMA_DIR / f"{file}.schema.json").read_text(encoding="utf-8")
        assert committed == render(SCHEMAS[name]()), (
            f"docs/schemas/{file}.schema.json is stale: run `python -m edge_agent.admin.schema --write`")


def test_schemas_accept_the_examples_and_reject_a_bad_kind() -> None:
    zones = json.loads((SCHEMA_DIR / "zones.schema.json").read_text())
    cameras = json.loads((SCHEMA_DIR / "cameras.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(zones)
    jsonschema.validate(yaml.safe_load((ROOT / "configs/zones/example.yaml").read_text()), zones)
    jsonschema.validate(yaml.safe_load((ROOT / "configs/examples/cameras.full.yaml").read_text()), cameras)
    bad = yaml.safe_load((DATA / "zones_bad_kind.yaml").read_text())
    assert not jsonschema.Draft202012Validator(zones).is_valid(bad)


def test_schema_command_prints_the_event_schema() -> None:
    res = edge_agent("schema", "events")
    assert res.returncode == 0, res.stderr
    schema = json.loads(res.stdout)
    assert schema["title"] == "edge-agent event" and "event_id" in schema["properties"]
    zones = json.loads(edge_agent("schema", "zones").stdout)
    assert zones == SCHEMAS["zones"]()


def test_check_central_reports_each_problem_with_file_line_and_key(tmp_path, capsys):
    from edge_agent.cli import main

    bad = tmp_path / "central.yaml"
    bad.write_text("timezone: Mars/Olympus\nhttp:\n  listen: nowhere\n  bogus: 1\n"
                   "devices:\n  justone: {command_secret: hunter2-secret}\ndatabase: {url: mysql://x}\n")
    assert main(["check", "--central", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[:5] == [
        f"{bad}:1: timezone: unknown time zone 'Mars/Olympus' (e.g. Europe/Amsterdam)",
        f"{bad}:3: http.listen: must be host:port, e.g. 127.0.0.1:8080",
        f"{bad}:4: http.bogus: unknown key 'bogus'; allowed here: listen, allowed_hosts, session_hours, max_failed_logins",
        f"{bad}:5: devices: device key 'justone' must be `site/device`",
        f"{bad}:7: database.url: must start with sqlite:/// or postgresql://",
    ]
    assert "hunter2-secret" not in "\n".join(err)


def test_the_shipped_central_config_is_valid(capsys):
    from pathlib import Path

    from edge_agent.cli import main

    assert main(["check", "--central", str(Path(__file__).parents[2] / "configs/central.yaml")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "OK"
