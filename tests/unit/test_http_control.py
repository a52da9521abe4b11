"""The agent endpoint's one POST (the zone editor's per-camera apply): Host check, control token
from a 0600 file written at each start, and the apply's answer."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from edge_agent.config.models import Http
from edge_agent.ops.http import Endpoints, HttpEndpoint
from tests.fixtures.mosquitto import free_port


@pytest.fixture
def endpoint(tmp_path):
    applied: list[str] = []

    def apply(camera: str) -> dict:
        if camera != "cam":
            raise LookupError(f"no running camera {camera!r}")
        applied.append(camera)
        return {"camera": camera, "zones": ["track"], "lines": []}

    port = free_port()
    cfg = Http(listen=f"127.0.0.1:{port}", control_token_file=str(tmp_path / "control.token"))
    server = HttpEndpoint.start_for(cfg, Endpoints(lambda: {}, lambda: None, apply))
    yield f"http://127.0.0.1:{port}", tmp_path / "control.token", applied
    server.close()


def post(url: str, headers: dict[str, str]) -> tuple[int, dict]:
    req = urllib.request.Request(url, method="POST", data=b"", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, json.loads(body) if body.startswith(b"{") else {}


def test_apply_needs_the_control_token_and_our_host(endpoint):
    base, token_file, applied = endpoint
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert post(f"{base}/zones/cam/apply", {})[0] == 403
    assert post(f"{base}/zones/cam/apply", {"X-Control-Token": token[:-1]})[0] == 403
    assert post(f"{base}/zones/cam/apply", {"X-Control-Token": token, "Host": "evil.example"})[0] == 403
    assert applied == []
    code, body = post(f"{base}/zones/cam/apply", {"X-Control-Token": token})
    assert (code, body["applied"], body["zones"]) == (200, True, ["track"]) and applied == ["cam"]
    code, body = post(f"{base}/zones/other/apply", {"X-Control-Token": token})
    assert code == 409 and "no running camera" in body["error"]


def test_each_start_writes_a_new_token(endpoint, tmp_path):
    _, token_file, _ = endpoint
    first = token_file.read_text()
    cfg = Http(listen=f"127.0.0.1:{free_port()}", control_token_file=str(token_file))
    again = HttpEndpoint.start_for(cfg, Endpoints(lambda: {}, lambda: None, lambda c: {}))
    try:
        assert token_file.read_text() != first
    finally:
        again.close()
