"""The zone editor in Debian's chromium (Playwright): draw, set, save, drag, refuse, test, tiles, and
the security of its POSTs. Expected points are where the test clicked (half a pixel of the picture);
the person "test" counts is the footage's ground truth (rail_intrusion.expected.yaml: person-1
inside track-bed from 2.4 s, its feet at (0.342, 0.861) at 6 s); the tiles shown are counted from
the tiling rule's geometry."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from edge_agent.cli import main as cli_main
from tests.fixtures.editor import FOOTAGE, TECH_COMMENT, TRACK_ZONES, write_site
from tests.integration.test_central_console import _screenshot
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
W, H = 640, 360  # rail_intrusion.mp4
TRUTH = yaml.safe_load((FOOTAGE / "rail_intrusion.expected.yaml").read_text())["truth"]["objects"]["person-1"]


def dataset(page, key: str) -> str:
    return page.evaluate(f"() => document.getElementById('editor').dataset.{key} || ''")


def open_editor(browser, url: str, camera: str):
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    page.goto(f"{url}/edit/{camera}")
    assert wait_for(lambda: dataset(page, "ready") and dataset(page, "pictureReady"), 15), "the page did not load"
    return page


def at(page, x: float, y: float) -> tuple[float, float]:
    """Screen position of a fraction of the picture, on a whole CSS pixel (where mouse events land)."""
    box = page.locator("#canvas").bounding_box()
    return round(box["x"] + x * box["width"]) + 0.0, round(box["y"] + y * box["height"]) + 0.0


def clicked(page, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The fractions of the picture the test really clicked for `points` (whole pixels)."""
    box = page.locator("#canvas").bounding_box()
    out = []
    for x, y in points:
        sx, sy = at(page, x, y)
        out.append(((sx - box["x"]) / box["width"], (sy - box["y"]) / box["height"]))
    return out


def click_shape(page, mode: str, points: list[tuple[float, float]]) -> None:
    page.click(mode)
    for x, y in points:
        page.mouse.click(*at(page, x, y))
    if mode != "#new-line":
        page.click("#finish")


def save(page, expect: str) -> None:
    before = dataset(page, "saves")
    page.click("#save")
    assert wait_for(lambda: dataset(page, "saves") != before or dataset(page, "saveState") in ("refused", "failed"), 15)
    assert dataset(page, "saveState") == expect, page.inner_text("#message") + page.inner_text("#problems")


def answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        pass  # 503 while starting: it answers
    except OSError:
        return False
    return True


def zone(path: Path, name: str) -> dict:
    return next(z for z in yaml.safe_load(path.read_text())["zones"] if z["name"] == name)


def near(points, expected) -> bool:
    return len(points) == len(expected) and all(
        abs(p[0] - e[0]) * W <= 0.5 and abs(p[1] - e[1]) * H <= 0.5 for p, e in zip(points, expected))


def test_draw_save_drag_refuse_and_conflict(browser, editor_factory, tmp_path):
    config = write_site(tmp_path, {"rail-east": (str(FOOTAGE / "rail_intrusion.mp4"), TRACK_ZONES)})
    zone_file = tmp_path / "zones" / "rail-east.yaml"
    original = zone_file.read_text()
    page = open_editor(browser, editor_factory(config).url, "rail-east")

    square = [(0.1, 0.1), (0.3, 0.1), (0.3, 0.3), (0.1, 0.3)]
    click_shape(page, "#new-zone", square)
    page.fill("#f-name", "platform")
    page.dispatch_event("#f-name", "change")
    page.select_option("#f-kind", "shore")
    page.select_option("#f-labels", ["person", "car"])
    click_shape(page, "#new-line", [(0.7, 0.9), (0.7, 0.5)])  # drawn upwards: `in` is left to right
    click_shape(page, "#new-mask", [(0.45, 0.45), (0.55, 0.45), (0.5, 0.55)])
    save(page, "saved")  # no agent runs: saved, and the page says it was not applied
    assert "no running agent" in page.inner_text("#message")
    saved = yaml.safe_load(zone_file.read_text())
    platform = zone(zone_file, "platform")
    assert near(platform["polygon"], clicked(page, square)) and platform["kind"] == "shore" and platform["labels"] == ["person", "car"]
    assert saved["frame"] == {"width": W, "height": H}
    (line,) = saved["lines"]
    assert near(line["points"], clicked(page, [(0.7, 0.9), (0.7, 0.5)])) and line["direction"] == "in"
    assert near(saved["masks"][0], clicked(page, [(0.45, 0.45), (0.55, 0.45), (0.5, 0.55)]))
    text = zone_file.read_text()
    assert TECH_COMMENT in text and "# Zones of rail_intrusion.mp4" in text and "  - [0.5, 0.4]\n" in text
    assert (tmp_path / "zones" / "rail-east.yaml.bak").read_text() == original
    assert cli_main(["check", "--config", str(config)]) == 0  # `edge-agent check`, in this process

    page.mouse.move(*at(page, 0.3, 0.1))  # drag the second point
    page.mouse.down()
    page.mouse.move(*at(page, 0.42, 0.16), steps=5)
    page.mouse.up()
    page.mouse.move(*at(page, 0.1, 0.2))  # grab the left edge: a new point there
    page.mouse.down()
    page.mouse.move(*at(page, 0.05, 0.2), steps=5)
    page.mouse.up()
    save(page, "saved")
    moved = clicked(page, [(0.1, 0.1), (0.42, 0.16), (0.3, 0.3), (0.1, 0.3), (0.05, 0.2)])
    assert near(zone(zone_file, "platform")["polygon"], moved)
    page.mouse.dblclick(*at(page, 0.3, 0.3))  # a double click deletes a point
    save(page, "saved")
    assert near(zone(zone_file, "platform")["polygon"], moved[:2] + moved[3:])

    page.locator("#shapes li[data-kind=zone]", has_text="platform").click()
    hole = [(0.12, 0.15), (0.2, 0.16), (0.12, 0.22)]
    click_shape(page, "#new-exclude", hole)  # an exclusion inside platform, by the same clicks
    page.mouse.move(*at(page, 0.12, 0.22))  # and its point dragged like a zone's
    page.mouse.down()
    page.mouse.move(*at(page, 0.14, 0.24), steps=3)
    page.mouse.up()
    save(page, "saved")
    assert [near(p, clicked(page, hole[:2] + [(0.14, 0.24)])) for p in zone(zone_file, "platform")["exclude"]] == [True]
    assert "  exclude:\n  - [[" in zone_file.read_text()  # one polygon a line, as configs/zones/example.yaml
    _screenshot(page, "zone-editor.png")

    before = zone_file.read_bytes()
    click_shape(page, "#new-zone", [(0.6, 0.1), (0.8, 0.3), (0.8, 0.1), (0.6, 0.3)])  # a bow tie
    save(page, "refused")
    assert "crosses itself" in page.inner_text("#problems")
    assert zone_file.read_bytes() == before
    _screenshot(page, "zone-editor-refused.png")

    page.locator("#shapes li[data-kind=zone][data-index='2'] .del").click()  # the bow tie goes
    zone_file.write_text(zone_file.read_text() + "# edited in another tab\n")
    changed = zone_file.read_bytes()
    save(page, "refused")
    assert "changed since" in page.inner_text("#message")
    assert zone_file.read_bytes() == changed


def test_test_counts_the_person_in_the_track_zone(browser, editor_factory, tmp_path):
    import av
    import cv2

    config = write_site(tmp_path, {"rail-east": (str(FOOTAGE / "rail_intrusion.mp4"), TRACK_ZONES)})
    with av.open(str(FOOTAGE / "rail_intrusion.mp4")) as clip:
        frame = next(f for f in clip.decode(video=0) if f.time >= 6.0)
        cv2.imwrite(str(tmp_path / "six.png"), frame.to_ndarray(format="bgr24"))
    page = open_editor(browser, editor_factory(config).url, "rail-east")
    page.set_input_files("#upload", str(tmp_path / "six.png"))
    assert wait_for(lambda: "your upload" in page.inner_text("#frame-status"), 10)
    page.click("#test")
    assert wait_for(lambda: dataset(page, "tested"), 30), page.inner_text("#test-by")
    people = page.locator(".det[data-label=person]")
    assert people.count() == 1, page.inner_text("#test-result")
    assert people.get_attribute("data-counted") == "track-bed"
    _screenshot(page, "zone-editor-test.png")
    # the box is the walker's (a detector's box on this clip may stop at the knees: its bottom may sit
    # up to 0.1 of the height above the true feet) and the anchor shown is its bottom centre
    x1, y1, x2, y2 = (float(v) for v in people.get_attribute("data-box").split(","))
    feet = [float(v) for v in people.get_attribute("data-anchor").split(",")]
    truth = next(p[1:] for p in TRUTH["path"] if p[0] == 6.0)
    assert x1 <= truth[0] <= x2 and y1 < truth[1] and abs(y2 - truth[1]) < 0.1
    assert feet == pytest.approx([(x1 + x2) / 2, y2], abs=2e-4)

    # Tiles follow the zones being edited: a 1280x720 picture with one zone on its lower half.
    cv2.imwrite(str(tmp_path / "big.png"), cv2.resize(cv2.imread(str(tmp_path / "six.png")), (1280, 720)))
    page.set_input_files("#upload", str(tmp_path / "big.png"))
    assert wait_for(lambda: page.evaluate("document.getElementById('canvas').width") == 1280, 10)
    page.locator("#shapes li[data-kind=zone] .del").click()  # track-bed goes
    half = [(0.002, 0.5), (0.998, 0.5), (0.998, 0.998), (0.002, 0.998)]
    click_shape(page, "#new-zone", half)
    page.click("#tiles")
    assert wait_for(lambda: dataset(page, "tilesShown"), 10), page.inner_text("#tiles-status")
    tiles = yaml.safe_load(dataset(page, "tiles"))
    # `auto`: tiles of the model's input size over the zone grown by the overlap (a quarter of a
    # tile), spread evenly, neighbours sharing at least the overlap
    manifest = yaml.safe_load((ROOT / "models" / "models.yaml").read_text())
    size = manifest["models"][manifest["default"]]["input_size"][0]  # the editor runs the default model
    grow = 0.25 * size
    xs, ys = zip(*((x * 1280, y * 720) for x, y in clicked(page, half)))
    spans = [min(limit, max(v) + grow) - max(0, min(v) - grow) for v, limit in ((xs, 1280), (ys, 720))]
    cols, rows = (1 if s <= size else math.ceil((s - size) / (size * 0.75)) + 1 for s in spans)
    assert (cols, rows) == (4, 2) and len(tiles) == cols * rows, page.inner_text("#tiles-status")
    assert all(x2 - x1 == y2 - y1 == size and 0 <= x1 and x2 <= 1280 and y1 <= 360 < y2 <= 720
               for x1, y1, x2, y2 in tiles)
    assert f"{cols * rows} tile(s) of {size}x{size}" in page.inner_text("#tiles-status")


def test_posts_need_the_csrf_token_and_our_host(editor_factory, tmp_path):
    config = write_site(tmp_path, {"rail-east": (str(FOOTAGE / "rail_intrusion.mp4"), TRACK_ZONES)})
    zone_file = tmp_path / "zones" / "rail-east.yaml"
    before = zone_file.read_bytes()
    url = editor_factory(config).url
    with httpx.Client(base_url=url) as client:
        page = client.get("/edit/rail-east")
        assert page.status_code == 200 and "edge_session" in client.cookies
        state = client.get("/api/state/rail-east").json()
        body = {"version": state["version"], "doc": {"zones": []}}
        assert client.post("/api/save/rail-east", json=body).status_code == 403  # no CSRF token
        assert client.post("/api/save/rail-east", json=body, headers={"X-CSRF-Token": "guess"}).status_code == 403
        csrf = page.text.split('data-csrf="', 1)[1].split('"', 1)[0]
        foreign = client.post("/api/save/rail-east", json=body, headers={"X-CSRF-Token": csrf, "Host": "evil.example"})
        assert foreign.status_code == 421
        assert client.post("/api/tiles/rail-east", json=state).status_code == 403
        tiles = client.post("/api/tiles/rail-east", json=state, headers={"X-CSRF-Token": csrf}).json()
        # 640x360 shrinks less than twice into the 416 px input: the full frame alone, no tiles
        assert tiles["size"] == [W, H] and tiles["tiles"] == [] and tiles["setting"] == "auto"
    assert zone_file.read_bytes() == before


def test_off_loopback_needs_a_password(tmp_path):
    from edge_agent.editor.cli import build
    from edge_agent.errors import EdgeAgentError

    config = write_site(tmp_path, {"rail-east": (str(FOOTAGE / "rail_intrusion.mp4"), TRACK_ZONES)})
    with pytest.raises(EdgeAgentError, match="password_hash"):
        build(str(config), "0.0.0.0:8090")


def test_saved_zone_is_applied_to_the_running_agent_for_that_camera_only(browser, editor_factory, rtsp_server,
                                                                         tmp_path):
    """A live agent on two RTSP cameras: camera b's zone has an open alarm; the zone drawn on camera
    a is applied on save and the walker raises an alarm in it; b's alarm is not ended by the apply."""
    import json
    import urllib.error
    import urllib.request

    from tests.fixtures.mosquitto import free_port
    from tests.fixtures.rtsp import read_events

    server = rtsp_server({"a": FOOTAGE / "rail_intrusion.mp4", "b": FOOTAGE / "rail_intrusion.mp4"}, loop=True)
    port = free_port()
    config = write_site(tmp_path, {"a": (server.url("a"), None), "b": (server.url("b"), TRACK_ZONES)},
                        http=f"http: {{listen: '127.0.0.1:{port}', control_token_file: {tmp_path / 'control.token'}}}")
    agent = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "run", "--config", str(config)], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    events = lambda: read_events(tmp_path / "media")  # noqa: E731
    starts = lambda cam: [e for e in events() if e.camera == cam and e.phase == "start"]  # noqa: E731
    running = editor_factory(config)  # while the agent starts
    try:
        assert wait_for(lambda: answers(f"http://127.0.0.1:{port}/health"), 30), "the agent did not start"
        assert (tmp_path / "control.token").stat().st_mode & 0o077 == 0
        refused = urllib.request.Request(f"http://127.0.0.1:{port}/zones/a/apply", method="POST", data=b"")
        with pytest.raises(urllib.error.HTTPError) as no_token:
            urllib.request.urlopen(refused, timeout=5)
        assert no_token.value.code == 403

        page = open_editor(browser, running.url, "a")
        assert "running agent" in page.inner_text("#frame-status")
        click_shape(page, "#new-zone", [(0.5, 0.4), (0.61, 0.4), (0.995, 0.78), (0.995, 0.995), (0.005, 0.995),
                                        (0.005, 0.96)])
        page.fill("#f-name", "track-new")
        page.dispatch_event("#f-name", "change")
        page.select_option("#f-kind", "rail")
        assert wait_for(lambda: starts("b"), 40), "camera b raised no alarm"
        save(page, "applied")  # while b's alarm is open (the walker stays on b's track until the clip loops)
        ended_before = [e for e in events() if e.camera == "b" and e.phase == "end"]
        assert "applied to the running agent" in page.inner_text("#message")
        assert wait_for(lambda: [e for e in starts("a") if e.zone == "track-new"], 40), "no alarm in the new zone"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            health = json.loads(resp.read())
        assert health["cameras"]["a"]["counters"]["reconnects"] == 0  # its stream was not touched
    finally:
        agent.terminate()
        agent.wait(20)
    b_alarms = {e.event_id for e in starts("b")}
    assert ended_before == [], "camera b's alarm was not open any more when the zones were applied"
    assert all(e.details.get("end_reason") != "reloaded" for e in events() if e.event_id in b_alarms)


def test_with_a_password_the_page_needs_a_log_in(editor_factory, tmp_path):
    from edge_agent.web.auth import hash_password

    config = write_site(tmp_path, {"rail-east": (str(FOOTAGE / "rail_intrusion.mp4"), TRACK_ZONES)})
    config.write_text(config.read_text() + f"editor: {{password_hash: '{hash_password('s3cret-pw')}'}}\n")
    with httpx.Client(base_url=editor_factory(config).url) as client:
        assert client.get("/api/state/rail-east").status_code == 401
        page = client.get("/edit/rail-east", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        form = client.get("/login")
        csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        wrong = client.post("/login", data={"user": "technician", "password": "guess", "csrf": csrf})
        assert "edge_session" not in client.cookies and wrong.status_code == 200
        client.post("/login", data={"user": "technician", "password": "s3cret-pw", "csrf": csrf})
        assert client.get("/api/state/rail-east").status_code == 200


def test_an_unreachable_camera_is_said_and_a_picture_can_be_uploaded(editor_factory, tmp_path):
    from tests.fixtures.mosquitto import free_port

    config = write_site(tmp_path, {"gone": (f"rtsp://127.0.0.1:{free_port()}/cam", TRACK_ZONES)})
    with httpx.Client(base_url=editor_factory(config).url) as client:
        page = client.get("/edit/gone")
        csrf = page.text.split('data-csrf="', 1)[1].split('"', 1)[0]
        got = client.get("/api/frame/gone").json()
        assert got["frame"] is None and "cannot be reached" in got["error"] and "upload" in got["error"]
        bad = client.post("/api/frame/gone", content=b"not a picture", headers={"X-CSRF-Token": csrf})
        assert bad.status_code == 400
        png = (DOCS / "zone-editor.png").read_bytes()
        up = client.post("/api/frame/gone", content=png, headers={"X-CSRF-Token": csrf}).json()
        assert up["frame"]["source"] == "upload" and up["frame"]["width"] > 0
        again = client.get("/api/frame/gone?refresh=true").json()  # still unreachable: the last picture stays
        assert again["frame"]["source"] == "upload" and "showing the last picture" in again["error"]
