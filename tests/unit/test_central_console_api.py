"""The console's JSON and form endpoints in-process (the browser test drives the same routes):
clear HTTP errors for a stale version, an unknown alarm, a bad body or a bad day."""

from __future__ import annotations

import re

import pytest


from fastapi.testclient import TestClient  # noqa: E402

from edge_agent.central.serve import build  # noqa: E402
from edge_agent.config.central import CentralConfig  # noqa: E402
from edge_agent.web.auth import hash_password  # noqa: E402
from tests.unit.test_central_store import T0, event, raw  # noqa: E402


@pytest.fixture
def api(tmp_path):
    cfg = CentralConfig.model_validate({"database": {"url": f"sqlite:///{tmp_path / 'c.sqlite'}"},
                                        "media": {"dir": str(tmp_path / "media")}})
    centre = build(cfg)
    centre.store.put_user("op", "operator", hash_password("pw"), T0)
    a = event(1, T0)
    centre.store.record_event(a, raw(a), T0)
    client = TestClient(centre.web.app, base_url="http://127.0.0.1")
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)[1]
    client.post("/login", data={"user": "op", "password": "pw", "csrf": token})
    csrf = re.search(r'data-csrf="([^"]+)"', client.get("/").text)[1]
    yield client, csrf
    centre.store.close()


def test_actions_answer_with_clear_http_errors(api):
    client, csrf = api
    ack = {"action": "acknowledge", "version": "1", "csrf": csrf}
    assert client.post("/api/alarms/1/action", data=ack).json()["alarm"]["state"] == "acknowledged"  # a plain form
    stale = client.post("/api/alarms/1/action", data=ack)  # the same form again: a replay
    assert stale.status_code == 409 and "changed by someone else" in stale.json()["detail"]
    head = {"x-csrf-token": csrf}
    gone = {"action": "close", "version": 1, "disposition": "test"}
    assert client.post("/api/alarms/99/action", json=gone, headers=head).status_code == 404
    bad = client.post("/api/alarms/1/action", content=b"[1]", headers={**head, "content-type": "application/json"})
    assert bad.status_code == 400 and "JSON object" in bad.json()["detail"]
    no_disp = client.post("/api/alarms/1/action", json={"action": "close", "version": 2}, headers=head)
    assert no_disp.status_code == 400 and "disposition" in no_disp.json()["detail"]
    assert client.get("/report?day=yesterday").status_code == 400
    assert client.get("/media/1/clip").status_code == 404
    assert client.get("/api/alarms/99").status_code == 404
