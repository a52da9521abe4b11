#!/usr/bin/env python3
"""The console's ingest rate, publish-to-screen latency and storage per 10,000 alarms.

1. events/s: N event messages (start, update and end of N/3 alarms) published at QoS 1 into a local mosquitto, until the console's ingest
   has committed all of them, into PostgreSQL and SQLite; baseline in the same run: a bare paho
   subscriber that acknowledges each message at once (no database), so the ratio is what storing
   costs.
2. latency: alarms published one by one while Debian's chromium shows the live list; from the
   publish call to the row appearing in the page (a MutationObserver stamps it), p50 and p95.
3. storage: alarms with the snapshot and clip of a replay of tests/footage/rail_intrusion.mp4
   published by the agent's MqttSink; PostgreSQL's database growth plus the media folder, per
   10,000 alarms (measured on --media-alarms and scaled linearly).

`--scale-out` instead: a simulated fleet (scripts/load_central.py: 200 devices, 10,000 events,
1,000 alarms with a snapshot and a clip) into 1, then 2 `central serve` processes on one shared
subscription and one PostgreSQL: events/s and media MB/s against a bare subscriber receiving the
same fleet in the same run, and the publish -> browser latency of probe alarms under that load.

    .venv/bin/python scripts/bench_console.py [--n 1000] [--latency 40] [--media-alarms 100]
    .venv/bin/python scripts/bench_console.py --scale-out [--fleet-events 10000] [--latency 40]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as paho  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from edge_agent.alarms.event import Event  # noqa: E402
from edge_agent.central.schema import alarms  # noqa: E402
from edge_agent.clock import iso_utc  # noqa: E402
from edge_agent.web.auth import hash_password  # noqa: E402
from tests.fixtures.console import central_config, start_console  # noqa: E402
from tests.fixtures.mosquitto import Broker, free_port, mqtt_settings  # noqa: E402
from tests.fixtures.postgres import Postgres  # noqa: E402
from tests.fixtures.waiting import wait_for  # noqa: E402
from scripts.load_central import (PREFIX as LOAD_PREFIX, Fleet, Plan, describe, make_plan, report,  # noqa: E402
                                  run_fleet, services)

SITE, DEVICE, PREFIX = "shore-07", "box-01", "city"
TOPIC = f"{PREFIX}/{SITE}/{DEVICE}/alarms"


def events(n: int, tag: str) -> list[bytes]:
    """n alarm starts on 50 cameras, each far enough apart in time to open its own alarm."""
    t0 = time.time() - n * 700
    return [Event(event_id=Event.make_id(tag, i), phase="start", type="intrusion", site=SITE, device=DEVICE,
                  camera=f"cam{i % 50}", zone="track-bed", zone_kind="rail", label="person", score=0.8,
                  start=iso_utc(t0 + i * 700), time=iso_utc(t0 + i * 700)).to_json().encode() for i in range(n)]


def phases(n: int, tag: str) -> list[bytes]:
    """n event messages as an agent sends them: per alarm its start, an update (clip ready), its end."""
    out: list[bytes] = []
    for start in events(-(-n // 3), tag):
        ev = Event.from_json(start)
        out += [start, ev.next_phase("update", details={"clip": "ready"}).to_json().encode(),
                ev.next_phase("end", end=ev.start).to_json().encode()]
    return out[:n]


def publisher(port: int) -> paho.Client:
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{time.monotonic_ns()}")
    c.max_inflight_messages_set(100)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def publish_all(c: paho.Client, payloads: list[bytes]) -> None:
    infos = [c.publish(TOPIC, p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(30)


def baseline_rate(broker: Broker, payloads: list[bytes]) -> float:
    got = threading.Event()
    count = [0]
    sub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-baseline", manual_ack=True)

    def on_message(client, userdata, msg):
        client.ack(msg.mid, msg.qos)
        count[0] += 1
        if count[0] == len(payloads):
            got.set()

    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe(f"{PREFIX}/+/+/alarms", qos=1)
    sub.loop_start()
    time.sleep(0.5)
    pub = publisher(broker.port)
    t0 = time.monotonic()
    publish_all(pub, payloads)
    got.wait(120)
    rate = len(payloads) / (time.monotonic() - t0)
    for c in (pub, sub):
        c.loop_stop()
        c.disconnect()
    return rate


def ingest_rate(broker: Broker, db_url: str, folder: Path, payloads: list[bytes]) -> float:
    cfg = central_config(broker, db_url, folder, SITE, DEVICE)
    console = start_console(cfg, client_id=f"bench-{folder.name}")
    pub = publisher(broker.port)
    try:
        t0 = time.monotonic()
        publish_all(pub, payloads)
        assert wait_for(lambda: console.centre.ingest.counts["stored"] >= len(payloads), 600, step=0.01), \
            console.centre.ingest.stats()
        return len(payloads) / (time.monotonic() - t0)
    finally:
        pub.loop_stop()
        pub.disconnect()
        console.stop()


def watched_list(browser, url: str, user: str, password: str):
    """The live list, logged in, with `window.seenAt[alarm id]` stamped (ms) when each row appears."""
    page = browser.new_page()
    page.goto(f"{url}/login")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#live.on")
    page.evaluate("""() => { window.seenAt = {};
        new MutationObserver(() => { for (const tr of document.querySelectorAll('#alarms tbody tr[data-id]'))
            if (!(tr.dataset.id in window.seenAt)) window.seenAt[tr.dataset.id] = Date.now(); })
        .observe(document.querySelector('#alarms tbody'), {childList: true}); }""")
    return page


def latency(broker: Broker, db_url: str, folder: Path, n: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    cfg = central_config(broker, db_url, folder, SITE, DEVICE)
    console = start_console(cfg, client_id="bench-latency")
    console.centre.store.put_user("bench", "viewer", hash_password("bench-pw"), time.time())
    pub = publisher(broker.port)
    sent: dict[str, float] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = watched_list(browser, console.url, "bench", "bench-pw")
            for payload in events(n, f"latency-{time.time()}"):
                sent[json.loads(payload)["event_id"]] = time.time()
                pub.publish(TOPIC, payload, qos=1)
                time.sleep(0.3)
            assert wait_for(lambda: page.evaluate("() => Object.keys(window.seenAt).length") >= n, 30)
            seen = page.evaluate("() => window.seenAt")
            browser.close()
        with console.centre.store.engine.connect() as conn:
            ids = dict(conn.execute(sa.select(alarms.c.id, alarms.c.event_id)).all())
        return sorted(seen[str(a)] / 1000 - sent[e] for a, e in ids.items() if str(a) in seen)
    finally:
        pub.loop_stop()
        pub.disconnect()
        console.stop()


def replay_media(folder: Path) -> dict[str, bytes]:
    """The snapshot and clip the agent makes for the person on the track in the test footage."""
    from edge_agent.replay import run_replay

    footage = Path(__file__).resolve().parents[1] / "tests" / "footage"
    run_replay(footage / "rail_intrusion.mp4", footage / "zones" / "rail_intrusion.yaml", folder)
    lines = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    snap = next(e["snapshot"]["path"] for e in lines if e.get("snapshot"))
    clip = next(e["clip"]["path"] for e in lines if e.get("clip"))
    return {"snapshot": (folder / snap).read_bytes(), "clip": (folder / clip).read_bytes()}


def storage(broker: Broker, pg: Postgres, folder: Path, k: int) -> tuple[float, float, dict[str, int]]:
    """(database bytes, media bytes) per 10,000 alarms with a snapshot and a clip each."""
    from edge_agent.publish.publisher import MqttSink

    media = replay_media(folder / "replay")
    db = pg.fresh_db()
    cfg = central_config(broker, db, folder / "store", SITE, DEVICE)
    console = start_console(cfg, client_id="bench-storage")
    size_sql = sa.text("SELECT pg_database_size(current_database())")
    with console.centre.store.engine.connect() as conn:
        before = conn.execute(size_sql).scalar()
    sink = MqttSink(mqtt_settings(broker, folder / "outbox.sqlite", topic_prefix=PREFIX), SITE, DEVICE).start()
    try:
        for payload in events(k, f"storage-{time.time()}"):
            sink.emit(Event.from_json(payload), media)
        assert wait_for(lambda: console.centre.ingest.counts["media"] >= 2 * k, 600, step=0.1)
        with console.centre.store.engine.connect() as conn:
            after = conn.execute(size_sql).scalar()
        files = sum(f.stat().st_size for f in (folder / "store" / "media").rglob("*") if f.is_file())
    finally:
        sink.close(5)
        console.stop()
    scale = 10_000 / k
    return (after - before) * scale, files * scale, {kind: len(data) for kind, data in media.items()}


def baseline(port: int, plan: Plan, deadline: float, connections: int) -> float:
    """Seconds for a bare paho subscriber (no database, PUBACK at once) to receive the whole plan."""
    got, done = [0], threading.Event()
    sub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="load-baseline", protocol=paho.MQTTv5)

    def on_message(client, userdata, msg) -> None:
        got[0] += 1
        if got[0] >= plan.total:
            done.set()

    sub.on_message = on_message
    sub.on_subscribe = lambda *a: done.set()
    sub.connect("127.0.0.1", port)
    sub.subscribe(f"{LOAD_PREFIX}/#", qos=1)
    sub.loop_start()
    done.wait(10)
    done.clear()
    t0 = time.monotonic()
    Fleet("127.0.0.1", port, plan, connections).run(deadline)
    done.wait(max(0.0, deadline - time.monotonic()))
    seconds = time.monotonic() - t0
    sub.loop_stop()
    sub.disconnect()
    return seconds


def latency_probe(port: int, db_url: str, n: int, interval: float = 0.25) -> Callable[[str], list[float]]:
    """A probe(url) for run_fleet: n rail alarms (priority 1, on top of the list) published one by
    one while chromium shows the first console's live list; publish -> row, in seconds, sorted."""
    def probe(url: str) -> list[float]:
        import sqlalchemy as sa
        from playwright.sync_api import sync_playwright

        from edge_agent.central.schema import alarms
        from edge_agent.central.store import Store
        from edge_agent.web.auth import hash_password

        store = Store.open(db_url)
        store.put_user("bench", "viewer", hash_password("bench-pw"), time.time())
        pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="load-probe", protocol=paho.MQTTv5)
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        sent: dict[str, float] = {}
        ids: dict[int, str] = {}
        seen: dict[str, float] = {}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
                page = watched_list(browser, url, "bench", "bench-pw")
                for i in range(n):
                    now = time.time()
                    ev = Event(event_id=Event.make_id("probe", now, i), phase="start", type="intrusion",
                               site="probe", device="box", camera=f"cam{i}", zone="track", zone_kind="rail",
                               label="person", score=0.9, start=iso_utc(now), time=iso_utc(now))
                    sent[ev.event_id] = now
                    pub.publish(f"{LOAD_PREFIX}/probe/box/alarms", ev.to_json().encode(), qos=1)
                    time.sleep(interval)

                def shown() -> bool:  # every probe stored, and its row in the page
                    with store.engine.connect() as conn:
                        ids.update(conn.execute(sa.select(alarms.c.id, alarms.c.event_id)
                                                .where(alarms.c.site == "probe")).all())
                    seen.update(page.evaluate("() => window.seenAt"))
                    return len(ids) == n and all(str(a) in seen for a in ids)

                wait_for(shown, 120, step=0.5)
                browser.close()
        finally:
            pub.loop_stop()
            store.close()
        return sorted(seen[str(a)] / 1000 - sent[e] for a, e in ids.items() if str(a) in seen)
    return probe

def scale_out(args: argparse.Namespace) -> int:
    """Ingest rate with 1 and 2 consumers on a shared subscription (scripts/load_central.py), then
    the publish -> browser latency of probe alarms while a smaller fleet sends at half the rate
    one consumer sustained (a saturated ingest only measures its backlog)."""
    plan = make_plan(args.devices, args.fleet_events, args.fleet_media)
    paced = make_plan(args.devices, args.fleet_events // 5 // 2 * 2, args.fleet_media // 5, seed=2)
    deadline = time.monotonic() + 3600
    with services() as (broker, pg, tmp):
        print(describe(plan), flush=True)
        base = baseline(broker.port, plan, deadline, 20)
        print(f"baseline, a bare paho subscriber without a database: {plan.total / base:.0f} MQTT messages/s "
              f"({len(plan.events) / base:.0f} events/s, {plan.media_bytes / 1e6 / base:.1f} media MB/s)", flush=True)
        rates = {}
        for n in (1, 2):
            (tmp / f"run-{n}").mkdir()
            db = pg.fresh_db()
            run = run_fleet(plan, broker, db, tmp / f"run-{n}", n, deadline=deadline)
            report(plan, run, n, False, db, tmp / f"run-{n}" / "media")
            rates[n] = plan.total / run.seconds
        print(f"latency: {describe(paced)}, sent at {rates[1] / 2:.0f} MQTT messages/s", flush=True)
        for n in (1, 2):
            (tmp / f"lat-{n}").mkdir()
            db = pg.fresh_db()
            run = run_fleet(paced, broker, db, tmp / f"lat-{n}", n, deadline=deadline, rate=rates[1] / 2,
                            probe=latency_probe(broker.port, db, args.latency), probes=args.latency)
            print(f"  {n} consumer(s): publish -> row in chromium's live list: {percentiles(run.probe)}", flush=True)
    return 0


def percentiles(lat: list[float] | None) -> str:
    if not lat:
        return "no probe alarm reached the page"
    return (f"{len(lat)} alarms, p50 {statistics.median(lat) * 1000:.0f} ms, "
            f"p95 {lat[int(0.95 * (len(lat) - 1))] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="events for the ingest rate")
    ap.add_argument("--latency", type=int, default=40, help="alarms for the publish-to-screen latency")
    ap.add_argument("--media-alarms", type=int, default=100, help="alarms with media for the storage figure")
    ap.add_argument("--scale-out", action="store_true", help="instead: 1 and 2 consumers under a simulated fleet")
    ap.add_argument("--devices", type=int, default=200, help="--scale-out: simulated devices")
    ap.add_argument("--fleet-events", type=int, default=10_000, help="--scale-out: event messages")
    ap.add_argument("--fleet-media", type=int, default=1_000, help="--scale-out: alarms with a snapshot and a clip")
    args = ap.parse_args()
    if args.scale_out:
        return scale_out(args)
    tmp = Path(tempfile.mkdtemp(prefix="bench-console-"))
    tmp.chmod(0o755)  # the PostgreSQL server runs as the postgres user
    (tmp / "pg").mkdir()
    (tmp / "broker").mkdir()
    broker = Broker(tmp / "broker", free_port()).start()
    pg = Postgres(tmp / "pg", free_port())
    pg.folder.chmod(0o755)
    pg.init()
    pg.start()
    try:
        base = baseline_rate(broker, phases(args.n, "baseline"))
        rows = [("bare paho subscriber (baseline)", base)]
        for name, url in (("console -> PostgreSQL", pg.fresh_db()), ("console -> SQLite", f"sqlite:///{tmp / 'c.sqlite'}")):
            (tmp / name[11:]).mkdir()
            rows.append((name, ingest_rate(broker, url, tmp / name[11:], phases(args.n, name))))
        print(f"ingest, {args.n} event messages (start, update, end per alarm) at QoS 1, PUBACK after commit:")
        for name, rate in rows:
            print(f"  {name:<34} {rate:8.0f} events/s   x baseline {rate / base:5.2f}")
        (tmp / "lat").mkdir()
        lat = latency(broker, pg.fresh_db(), tmp / "lat", args.latency)
        print(f"publish -> row in chromium's live list (PostgreSQL): {percentiles(lat)}")
        db_bytes, media_bytes, sizes = storage(broker, pg, tmp, args.media_alarms)
        print(f"storage per 10,000 alarms with media (measured on {args.media_alarms}; snapshot {sizes['snapshot'] / 1e3:.0f} kB, "
              f"clip {sizes['clip'] / 1e3:.0f} kB): PostgreSQL {db_bytes / 1e6:.0f} MB, media {media_bytes / 1e9:.2f} GB")
    finally:
        pg.stop()
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
