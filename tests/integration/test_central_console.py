"""The console end to end with real parts: footage replayed by the real agent (`edge-agent replay
--mqtt`) -> real mosquitto -> the console's ingest -> real PostgreSQL -> the pages in Debian's
chromium (Playwright). What is expected comes from the footage's ground truth
(tests/footage/rail_intrusion.expected.yaml: one person intrusion in the rail zone `track-bed`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
import yaml


from edge_agent.publish.commands import CommandDispatcher  # noqa: E402
from edge_agent.web.auth import hash_password  # noqa: E402
from tests.fixtures.console import SECRET, central_config  # noqa: E402
from tests.fixtures.waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.integration
FOOTAGE = Path(__file__).parents[1] / "footage"
TRUTH = yaml.safe_load((FOOTAGE / "rail_intrusion.expected.yaml").read_text())["expect"][0]
DOCS = Path(__file__).parents[2] / "docs"


class Listener:
    """A plain MQTT client: when each alarm `start` reached the broker, and the box's commands."""

    def __init__(self, port: int) -> None:
        self.starts: dict[str, float] = {}
        self.commands: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="console-test-listener")
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([("city/+/+/alarms", 1), ("city/+/+/cmd/+", 1)])
        self.client.loop_start()

    def _message(self, client, userdata, msg) -> None:
        if msg.topic.endswith("/alarms"):
            ev = json.loads(msg.payload)
            if ev["phase"] == "start":
                self.starts.setdefault(ev["event_id"], time.monotonic())
        elif not msg.topic.endswith("/reply"):
            self.commands.append((msg.topic, bytes(msg.payload)))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def replay(broker_port: int, tmp: Path) -> subprocess.Popen:
    conf = tmp / "cameras.yaml"
    conf.write_text(
        "site: {id: shore-07, timezone: Europe/Amsterdam}\ndevice: {id: box-01}\n"
        f"mqtt:\n  port: {broker_port}\n  topic_prefix: city\n  outbox: {{path: {tmp / 'outbox.sqlite'}}}\n"
        "cameras:\n"
        f"  - {{id: rail-east, url: {FOOTAGE / 'rail_intrusion.mp4'}, zones: {FOOTAGE / 'zones/rail_intrusion.yaml'},"
        " location: {lat: 51.92, lon: 4.48}}\n")
    return subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli", "replay", str(FOOTAGE / "rail_intrusion.mp4"),
         "--zones", str(FOOTAGE / "zones/rail_intrusion.yaml"), "--config", str(conf), "--camera", "rail-east",
         "--out", str(tmp / "replay"), "--mqtt", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_js(page, expr: str, timeout: float) -> None:
    """Poll a page expression from here: Playwright's wait_for_function evaluates strings, which the
    console's Content-Security-Policy (script-src 'self', no eval) rightly refuses."""
    assert wait_for(lambda: page.evaluate(f"() => Boolean({expr})"), timeout, step=0.1), expr


def log_in(browser, url: str, user: str, password: str):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/")
    assert "/login" in page.url  # not logged in: sent to the log-in page
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    return context, page


def test_alarm_from_replay_is_seen_handled_and_closed_in_the_browser(
        mosquitto, postgres, console_factory, browser, tmp_path):
    cfg = central_config(mosquitto, postgres.fresh_db(), tmp_path, escalate_after_s=3600)
    console = console_factory(cfg)
    store = console.centre.store
    store.put_user("olga", "operator", hash_password("olga-pw"), time.time())
    store.put_user("vera", "viewer", hash_password("vera-pw"), time.time())
    store.put_user("piet", "operator", hash_password("piet-pw"), time.time())
    listener = Listener(mosquitto.port)
    op_ctx, page = log_in(browser, console.url, "olga", "olga-pw")
    contexts = [op_ctx]
    try:
        page.wait_for_selector("#live.on", timeout=10_000)  # the list listens to the server's events
        proc = replay(mosquitto.port, tmp_path)
        # The alarm appears in the open list without a reload, within 10 s of reaching the broker.
        page.wait_for_selector("#alarms tbody tr[data-id]", timeout=120_000)
        seen = time.monotonic()
        assert len(listener.starts) == 1
        assert seen - next(iter(listener.starts.values())) < 10.0
        # the list is re-rendered on every change: read the row in one go
        alarm_id, cells = page.evaluate("""() => { const tr = document.querySelector('#alarms tbody tr[data-id]');
            return [tr.dataset.id, [...tr.cells].map((td) => td.innerText)]; }""")
        assert cells[3] == TRUTH["zone"] and cells[4] == TRUTH["type"] and cells[5].startswith(TRUTH["label"])
        assert cells[2] == "shore-07 / rail-east" and cells[7] == "new"

        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-3000:]
        _screenshot(page, "console-alarm-list.png")

        # Acknowledge from the list with the keyboard (the first row is selected): the box's command
        # topic gets a signed ack that the agent's dispatcher executes.
        page.keyboard.press("a")
        page.wait_for_selector(f"#alarms tr.state-acknowledged[data-id='{alarm_id}']", timeout=10_000)
        assert wait_for(lambda: listener.commands, 10)
        [(topic, payload)] = listener.commands
        assert topic == "city/shore-07/box-01/cmd/ack"
        acked: list[dict] = []
        box = CommandDispatcher({"ack": lambda args: acked.append(args) or {"acked": True}}, secret=SECRET,
                                require_signed=True)
        reply = box.handle(topic, payload)
        assert reply["ok"] is True, reply
        assert acked == [{"event_id": console.centre.workflow.get(int(alarm_id))["event_id"], "by": "olga"}]

        # The alarm view: the snapshot has loaded and the clip plays.
        page.click(f"#alarms tbody tr[data-id='{alarm_id}']")
        page.wait_for_url(f"{console.url}/alarms/{alarm_id}")
        wait_js(page, "document.getElementById('snapshot').naturalWidth > 0", 30)
        wait_js(page, "document.getElementById('clip').readyState >= 2", 60)
        t0 = page.evaluate("document.getElementById('clip').currentTime")
        wait_js(page, f"document.getElementById('clip').currentTime > {t0} + 0.3", 15)
        assert page.evaluate("document.getElementById('clip').error") is None
        assert page.is_disabled("#ack")  # already acknowledged

        # A second operator has the alarm open on a page that hears no live updates ...
        piet_ctx, piet = log_in(browser, console.url, "piet", "piet-pw")
        contexts.append(piet_ctx)
        piet.route("**/api/stream", lambda route: route.abort())
        piet.goto(f"{console.url}/alarms/{alarm_id}")
        wait_js(piet, "document.querySelectorAll('#audit tbody tr').length >= 2", 10)

        page.fill("form[data-action=assign] input[name=assignee]", "team 3")
        page.click("#assign")
        page.wait_for_selector("#state.state-assigned", timeout=10_000)

        # ... so his assignment is based on what he saw before: he is told, nothing is overwritten.
        piet.fill("form[data-action=assign] input[name=assignee]", "team 5")
        piet.click("#assign")
        piet.wait_for_selector("#message.error", timeout=10_000)
        assert "changed by someone else" in piet.inner_text("#message")
        piet.wait_for_selector("#state.state-assigned", timeout=10_000)  # his page now shows the change
        assert piet.inner_text("#assignee") == "team 3"
        assert console.centre.workflow.get(int(alarm_id))["assignee"] == "team 3"

        # A viewer sees the alarm but may not close it, even with a valid session and CSRF token.
        view_ctx, viewer = log_in(browser, console.url, "vera", "vera-pw")
        contexts.append(view_ctx)
        viewer.goto(f"{console.url}/alarms/{alarm_id}")
        assert viewer.query_selector("#close") is None
        refused = viewer.evaluate(
            """async (id) => (await web.post(`/api/alarms/${id}/action`,
                 {action: "close", version: 3, disposition: "false_alarm"})).status""", alarm_id)
        assert refused == 403

        # A form posted without the CSRF token is refused (the operator's own, logged-in session).
        forged = page.request.post(f"{console.url}/api/alarms/{alarm_id}/action",
                                   form={"action": "close", "version": "3", "disposition": "test"})
        assert forged.status == 403
        assert console.centre.workflow.get(int(alarm_id))["state"] == "assigned"

        page.select_option("form[data-action=close] select[name=disposition]", "true_alarm")
        page.fill("form[data-action=close] input[name=note]", "person on the track, team 3 removed him")
        page.click("#close")
        page.wait_for_selector("#state.state-closed", timeout=10_000)
        wait_js(page, "document.querySelectorAll('#audit tbody tr').length >= 4", 10)
        _screenshot(page, "console-alarm-view.png")
        alarm = console.centre.workflow.get(int(alarm_id))
        assert (alarm["state"], alarm["assignee"], alarm["disposition"]) == ("closed", "team 3", "true_alarm")
        actions = [a["action"] for a in console.centre.workflow.audit_of(int(alarm_id))]
        assert actions[:4] == ["acknowledge", "ack_sent", "assign", "close"]
        assert [(a["user"], a["action"]) for a in console.centre.workflow.audit_of(int(alarm_id))
                if a["action"] in ("acknowledge", "assign", "close")] == [("olga", "acknowledge"),
                                                                          ("olga", "assign"), ("olga", "close")]
        check_evidence(page, console.url, alarm_id, tmp_path / "replay")
        check_report(page, console, alarm_id)
    finally:
        listener.close()
        for context in contexts:
            context.close()


def check_evidence(page, url: str, alarm_id: str, replay_out: Path) -> None:
    """The zip holds what the agent sent (same bytes as its own local copy) and a true manifest."""
    resp = page.request.get(f"{url}/alarms/{alarm_id}/evidence.zip")
    assert resp.status == 200
    with zipfile.ZipFile(io.BytesIO(resp.body())) as z:
        manifest = json.loads(z.read("manifest.json"))
        assert set(manifest["files"]) == set(z.namelist()) - {"manifest.json"}
        for name, entry in manifest["files"].items():
            assert hashlib.sha256(z.read(name)).hexdigest() == entry["sha256"], name
        local = [json.loads(x) for x in (replay_out / "events.jsonl").read_text().splitlines()]
        start = next(e for e in local if e["phase"] == "start")
        clip = next(e for e in local if e.get("clip"))
        assert z.read("snapshot.jpg") == (replay_out / start["snapshot"]["path"]).read_bytes()
        assert z.read("clip.mp4") == (replay_out / clip["clip"]["path"]).read_bytes()
        assert [a["action"] for a in json.loads(z.read("audit.json"))][:4] == ["acknowledge", "ack_sent", "assign", "close"]
        assert {json.loads(z.read(n))["phase"] for n in z.namelist() if n.startswith("events/")} == {"start", "update", "end"}


def check_report(page, console, alarm_id: str) -> None:
    started = console.centre.workflow.get(int(alarm_id))["started_at"]
    day = datetime.fromtimestamp(started, ZoneInfo("Europe/Amsterdam")).strftime("%Y-%m-%d")
    page.goto(f"{console.url}/report?day={day}")
    rows = page.evaluate("() => [...document.querySelectorAll('#report tbody tr')].map((tr) => [...tr.cells].map((c) => c.innerText))")
    heads = page.evaluate("() => [...document.querySelectorAll('#report thead th')].map((th) => th.innerText)")
    assert [dict(zip(heads, r)) for r in rows] == [{
        "Camera": "rail-east", "Zone": "track-bed", "Alarms": "1", "Events": "1", "true alarm": "1",
        "false alarm": "", "nuisance": "", "test": "", "open": ""}]


def _screenshot(page, name: str) -> None:
    """Kept in docs/ when EDGE_DOCS_SCREENSHOTS=1 (how the README's pictures are made)."""
    if os.environ.get("EDGE_DOCS_SCREENSHOTS") == "1":
        page.screenshot(path=str(DOCS / name))


def test_login_flood_is_rate_limited_and_foreign_host_refused(mosquitto, console_factory, tmp_path):
    import httpx

    cfg = central_config(mosquitto, f"sqlite:///{tmp_path / 'c.sqlite'}", tmp_path)
    console = console_factory(cfg)
    console.centre.store.put_user("olga", "operator", hash_password("right"), time.time())
    with httpx.Client(base_url=console.url) as c:
        token = c.get("/login").cookies.get("edge_login")
        codes = [c.post("/login", data={"user": "olga", "password": f"wrong{i}", "csrf": token}).status_code
                 for i in range(cfg.http.max_failed_logins + 1)]
        assert codes[:-1] == [200] * cfg.http.max_failed_logins and codes[-1] == 429
        # even the right password waits out the window: the flood cannot keep guessing
        assert c.post("/login", data={"user": "olga", "password": "right", "csrf": token}).status_code == 429
        assert c.get("/login", headers={"Host": "evil.example:8080"}).status_code == 421
