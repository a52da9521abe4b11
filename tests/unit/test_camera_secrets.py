"""Camera passwords from the environment or a file, `${VAR}` in URLs, and `check` failing on what stops `run`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from edge_agent.config.loader import collect, load_config
from edge_agent.config.models import Camera
from edge_agent.config.secrets import expand_vars, stream_urls, with_credentials
from edge_agent.errors import EdgeAgentError
from edge_agent.redact import redact_text, redact_url, url_secrets

ROOT = Path(__file__).resolve().parents[2]
HARD = "p@ss#w:rd/1 %x"  # every character that breaks a URL written by hand


def edge_agent(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "edge_agent.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env=full_env)


def test_credentials_are_percent_encoded_so_any_character_survives() -> None:
    url = with_credentials("rtsp://192.0.2.10:554/Streaming/101?x=1", "view er", HARD)
    parts = urlsplit(url)
    assert (unquote(parts.username), unquote(parts.password)) == ("view er", HARD)
    assert (parts.hostname, parts.port, parts.path, parts.query) == ("192.0.2.10", 554, "/Streaming/101", "x=1")


def test_a_url_with_its_own_login_is_left_as_written() -> None:
    assert with_credentials("rtsp://a:b@h/1", "c", "d") == "rtsp://a:b@h/1"
    assert with_credentials("clips/a.mp4", "c", "d") == "clips/a.mp4"


def test_variables_inside_the_login_are_encoded_and_elsewhere_kept(monkeypatch) -> None:
    monkeypatch.setenv("CAM_PW", HARD)
    monkeypatch.setenv("CAM_HOST", "192.0.2.7")
    url = expand_vars("rtsp://admin:${CAM_PW}@${CAM_HOST}:554/live", "camera c.url")
    parts = urlsplit(url)
    assert unquote(parts.password) == HARD and parts.hostname == "192.0.2.7" and parts.path == "/live"
    monkeypatch.delenv("CAM_PW")
    with pytest.raises(EdgeAgentError, match=r"camera c.url: environment variable CAM_PW is not set"):
        expand_vars("rtsp://admin:${CAM_PW}@h/live", "camera c.url")


def test_stream_urls_read_the_password_at_open_time(tmp_path: Path, monkeypatch) -> None:
    cam = Camera(id="c", url="rtsp://h/main", substream_url="rtsp://h/sub", username="viewer",
                 password_env="CAM_PW")
    monkeypatch.setenv("CAM_PW", HARD)
    main, sub = stream_urls(cam)
    assert unquote(urlsplit(main).password) == HARD and unquote(urlsplit(sub).password) == HARD
    assert HARD not in cam.model_dump_json()  # the parsed config never holds the value
    (tmp_path / "pw").write_text("from-file\nignored\n")
    filed = Camera(id="c", url="rtsp://h/main", username="viewer", password_file=str(tmp_path / "pw"))
    assert urlsplit(stream_urls(filed)[0]).password == "from-file"
    monkeypatch.delenv("CAM_PW")
    with pytest.raises(EdgeAgentError, match="camera c.password_env: environment variable CAM_PW is not set"):
        stream_urls(cam)


def test_redaction_covers_encoded_and_raw_passwords() -> None:
    url = with_credentials("rtsp://h:554/x", "u", HARD)
    error = f"Server returned 401 for '{url}' (password {HARD})"
    cleaned = redact_text(error, url_secrets(url))
    assert HARD not in cleaned and urlsplit(url).password not in cleaned
    assert redact_url("rtsp://u:p@ss@host/x") == "rtsp://***@host/x"  # a raw @ no longer leaks the tail


def _site(tmp_path: Path, camera: str, mqtt: str = "{enabled: false}") -> Path:
    (tmp_path / "zones").mkdir(exist_ok=True)
    (tmp_path / "zones" / "c.yaml").write_text("zones: []\n")
    cfg = tmp_path / "cameras.yaml"
    cfg.write_text(f"site: {{id: s, timezone: UTC}}\ndevice: {{id: d}}\nmqtt: {mqtt}\ncameras:\n  - {camera}\n")
    return cfg


def test_a_camera_accepts_password_env_and_password_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CAM_PW", HARD)
    cfg = load_config(_site(tmp_path, "{id: c, url: rtsp://h/1, username: viewer, password_env: CAM_PW}"))
    assert cfg.cameras[0].password_env == "CAM_PW"
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "cam.txt").write_text(HARD + "\n")
    cfg = load_config(_site(tmp_path, "{id: c, url: rtsp://h/1, username: viewer, password_file: secrets/cam.txt}"))
    assert cfg.cameras[0].password_file == str(tmp_path / "secrets" / "cam.txt")  # relative to cameras.yaml


def test_login_mistakes_are_reported_with_their_line(tmp_path: Path) -> None:
    cfg = _site(tmp_path, "{id: c, url: rtsp://a:b@h/1, username: viewer, password_env: X, password_file: f}")
    _, _, problems = collect(cfg)
    text = "\n".join(problems)
    assert ":5: cameras[0].password_file: set only one of password_env, password_file" in text
    assert ":5: cameras[0].url: this URL has its own user:password" in text
    assert "cameras[0].password_file: file" in text and "not found" in text


def test_check_fails_on_an_unset_camera_password_variable(tmp_path: Path) -> None:
    cfg = _site(tmp_path, "{id: c, url: rtsp://h/1, username: viewer, password_env: EDGE_TEST_CAM_PW}")
    env = {k: v for k, v in os.environ.items() if k != "EDGE_TEST_CAM_PW"}
    res = subprocess.run([sys.executable, "-m", "edge_agent.cli", "check", "--config", str(cfg)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, env={**env, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 2
    assert ":5: cameras[0].password_env: environment variable EDGE_TEST_CAM_PW is not set" in res.stderr
    ok = edge_agent("check", "--config", str(cfg), cwd=tmp_path, env={"EDGE_TEST_CAM_PW": HARD})
    assert ok.returncode == 0, ok.stderr
    assert HARD not in ok.stdout + ok.stderr


def test_check_fails_when_a_url_variable_or_the_broker_password_is_missing(tmp_path: Path) -> None:
    cfg = _site(tmp_path, "{id: c, url: 'rtsp://u:${EDGE_TEST_UNSET_1}@h/1'}",
                mqtt="{password_env: EDGE_TEST_UNSET_2, command_secret_env: EDGE_TEST_UNSET_3}")
    res = edge_agent("check", "--config", str(cfg), cwd=tmp_path)
    assert res.returncode == 2
    assert ":3: mqtt.password_env: environment variable EDGE_TEST_UNSET_2 is not set" in res.stderr
    assert ":3: mqtt.command_secret_env: environment variable EDGE_TEST_UNSET_3 is not set" in res.stderr
    assert ":5: cameras[0].url: environment variable EDGE_TEST_UNSET_1 is not set" in res.stderr


def test_check_fails_on_an_unreadable_password_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_bytes(b"\xff\xfe not text")
    cfg = _site(tmp_path, "{id: c, url: rtsp://h/1, username: viewer, password_file: pw}")
    res = edge_agent("check", "--config", str(cfg), cwd=tmp_path)
    assert res.returncode == 2 and "cameras[0].password_file: cannot read" in res.stderr
