#!/usr/bin/env python3
"""Many simulated edge boxes publishing alarms with chunked media to `central serve` consumers.

Each simulated device sends what an edge box sends: every alarm's `start` and `end` event on
`<prefix>/<site>/<device>/alarms`, and for some alarms a snapshot and a clip as a manifest and
chunks built by the edge's own code (`edge_agent.publish.publisher.media_rows`), at QoS 1, a
device's messages in order. The media bytes are random (seeded), so their sha256 is known here.

Self-contained (the default): starts mosquitto, PostgreSQL and `--consumers` real `edge-agent
central serve` processes on one shared subscription and one database, publishes, optionally kills
one consumer (SIGKILL) mid-run and restarts it (`--kill`), then checks every event stored exactly
once and every media file assembled with its sha256, and prints the ingest rate (events/s, media
MB/s); exit 1 when something is missing. `--consumers 1 2` runs both. With `--port`, only
publishes to an already running local broker. `scripts/bench_console.py --scale-out` adds a
baseline and the publish-to-browser latency under this load.

Loopback only; bounded: at most 100,000 events, and `--max-seconds` for the whole run.

    .venv/bin/python scripts/load_central.py --devices 200 --events 10000 --media 1000 --kill
    .venv/bin/python scripts/load_central.py --consumers 1 2
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as paho  # noqa: E402

from edge_agent.alarms.event import Event  # noqa: E402
from edge_agent.clock import iso_utc  # noqa: E402
from edge_agent.publish.publisher import media_rows  # noqa: E402
from edge_agent.publish.topics import Topics  # noqa: E402
from tests.fixtures.mosquitto import Broker, free_port  # noqa: E402
from tests.fixtures.postgres import Postgres  # noqa: E402

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_EVENTS = 100_000
PREFIX = "load"


@dataclass
class Plan:
    """What the fleet sends, per device in sending order, and what the centre must end up with."""

    messages: list[list[tuple[str, bytes]]] = field(default_factory=list)
    events: set[tuple[str, str]] = field(default_factory=set)  # (event_id, phase)
    media: dict[tuple[str, str], str] = field(default_factory=dict)  # (event_id, kind) -> sha256
    media_bytes: int = 0

    @property
    def total(self) -> int:
        return sum(len(m) for m in self.messages)


def make_plan(devices: int, events: int, with_media: int, chunk_size: int = 16 * 1024, seed: int = 1,
              snapshot_kb: float = 8, clip_kb: float = 40) -> Plan:
    """`events` event messages (start and end of events/2 alarms) spread over `devices`; the starts of
    `with_media` alarms carry a snapshot and a clip of about the given sizes."""
    if not 0 < events <= MAX_EVENTS or events % 2 or not 0 <= with_media <= events // 2 or devices < 1:
        raise SystemExit(f"--events must be even, at most {MAX_EVENTS:,}; --media at most half of it; --devices >= 1")
    rng = random.Random(seed)
    plan = Plan(messages=[[] for _ in range(devices)])
    alarms, now = events // 2, time.time()
    every = alarms / with_media if with_media else 0
    media_at = {int(k * every) for k in range(with_media)}
    for j in range(alarms):
        d = j % devices
        topics = Topics(PREFIX, f"site-{d // 20:02d}", f"box-{d:03d}")
        t = now - (alarms - j) * 0.01
        ev = Event(event_id=Event.make_id(PREFIX, seed, j), phase="start", type="intrusion", site=topics.site,
                   device=topics.device, camera=f"cam{j % 3}", zone="beach", zone_kind="shore", label="person",
                   score=0.7, start=iso_utc(t), time=iso_utc(t))
        rows = []
        if j in media_at:
            for kind, kb in (("snapshot", snapshot_kb), ("clip", clip_kb)):
                data = rng.randbytes(int(kb * 1024 * rng.uniform(0.75, 1.25)))
                ref, more = media_rows(topics, ev, kind, data, chunk_size, 1)
                ev = ev.model_copy(update={kind: ref})
                rows += more
                plan.media[(ev.event_id, kind)] = ref.sha256
                plan.media_bytes += len(data)
        end = ev.next_phase("end", end=iso_utc(t + 5), time=iso_utc(t + 5))
        plan.messages[d] += [(topics.alarms, ev.to_json().encode()), *((r.topic, r.payload) for r in rows),
                             (topics.alarms, end.to_json().encode())]
        plan.events |= {(ev.event_id, "start"), (ev.event_id, "end")}
    return plan


class Fleet:
    """Publishes a plan over `connections` MQTT 5 connections (devices split among them, each
    connection sending its devices' messages interleaved), QoS 1, waiting for every PUBACK; with
    `rate`, at most that many messages a second in all (else as fast as the broker takes them)."""

    def __init__(self, host: str, port: int, plan: Plan, connections: int = 20, rate: float | None = None) -> None:
        if host not in LOOPBACK:
            raise SystemExit(f"load_central publishes only to a broker on this machine, not {host}")
        self.host, self.port, self.plan = host, port, plan
        self.connections = max(1, min(connections, len(plan.messages)))
        self.sent = 0
        self.rate = rate
        self._lock = threading.Lock()

    def run(self, deadline: float) -> None:
        threads = [threading.Thread(target=self._connection, args=(k, deadline), daemon=True)
                   for k in range(self.connections)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(max(0.0, deadline - time.monotonic()))

    def _connection(self, k: int, deadline: float) -> None:
        devices = self.plan.messages[k::self.connections]
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"load-fleet-{k}", protocol=paho.MQTTv5)
        c.max_inflight_messages_set(100)
        c.connect(self.host, self.port)
        c.loop_start()
        infos = []
        t0 = time.monotonic()
        for i in range(max(len(m) for m in devices)):
            for msgs in devices:
                if i < len(msgs):
                    infos.append(c.publish(*msgs[i], qos=1))
            with self._lock:
                self.sent += sum(1 for m in devices if i < len(m))
            if self.rate:
                time.sleep(max(0.0, t0 + len(infos) * self.connections / self.rate - time.monotonic()))
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        c.loop_stop()
        c.disconnect()


class Consumer:
    """One real `edge-agent central serve` process with its own config file, port and MQTT session."""

    def __init__(self, folder: Path, n: int, broker_port: int, db_url: str, media_dir: Path, http_port: int) -> None:
        self.client_id = f"load-consumer-{n}"
        self.folder = folder
        self.url = f"http://127.0.0.1:{http_port}"
        self.config = folder / f"central-{n}.yaml"
        self.config.write_text(
            f"database: {{url: '{db_url}'}}\nmedia: {{dir: '{media_dir}'}}\nhttp: {{listen: '127.0.0.1:{http_port}'}}\n"
            f"mqtt: {{host: 127.0.0.1, port: {broker_port}, topic_prefix: {PREFIX}, client_id: {self.client_id}, "
            f"reconnect_min_s: 1, reconnect_max_s: 2}}\ningest: {{shared_group: central}}\n")
        self.log = folder / f"central-{n}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Consumer:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "central", "serve", "--config",
                                          str(self.config)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def end_session(self, port: int) -> None:
        """Remove this consumer's session from the broker: a stopped member of a shared subscription
        would go on receiving its share of a later run's messages."""
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=paho.MQTTv5)
        c.connect("127.0.0.1", port, clean_start=True)
        c.disconnect()


def wait_subscribed(broker_log: Path, consumers: list[Consumer], since: int, timeout: float = 60) -> None:
    """Until the broker has each consumer's subscriptions (logged after byte `since` of its log): a
    message published before would be lost."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(broker_log, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        if all(f"Received SUBSCRIBE from {c.client_id}" in text for c in consumers):
            return
        for c in consumers:
            if c.proc is not None and c.proc.poll() is not None:
                raise RuntimeError(f"{c.client_id} exited: {c.log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    raise RuntimeError("the consumers did not subscribe within 60 s")


@dataclass
class Result:
    events: list[tuple[str, str]]  # (event_id, phase) of every stored row
    media: dict[tuple[str, str], tuple[str, str]]  # (event_id, kind) -> (sha256 recorded, sha256 of the file)
    parts_left: int


def stored(db_url: str, media_dir: Path) -> Result:
    import hashlib

    import sqlalchemy as sa

    from edge_agent.central.schema import events, media, media_chunks
    from edge_agent.central.store import engine_url

    engine = sa.create_engine(engine_url(db_url))
    try:
        with engine.connect() as conn:
            rows = [(r.event_id, r.phase) for r in conn.execute(sa.select(events.c.event_id, events.c.phase))]
            files = {(r.event_id, r.kind): (r.sha256, media_dir / r.path) for r in conn.execute(sa.select(media))}
            left = conn.execute(sa.select(sa.func.count()).select_from(media_chunks)).scalar()
    finally:
        engine.dispose()
    digest = {k: (sha, hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "") for k, (sha, p) in files.items()}
    return Result(rows, digest, int(left or 0))


def counts(db_url: str) -> tuple[int, int]:
    """(event rows, media rows) stored so far."""
    import psycopg

    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM media)").fetchone()


@dataclass
class Run:
    seconds: float  # first publish to the last event and media file stored
    stored: tuple[int, int]  # (event rows, media rows) at the end
    probe: object = None  # what the probe returned


def run_fleet(plan: Plan, broker, db_url: str, folder: Path, consumers: int = 2, kill: bool = False,
              deadline: float | None = None, connections: int = 20, probe=None, probes: int = 0,
              rate: float | None = None) -> Run:
    """Start the consumers, publish the plan (killing and restarting the last consumer at 40 % when
    asked, `probe(url of the first console)` publishing `probes` more events alongside), wait until
    everything is stored."""
    deadline = deadline or time.monotonic() + 600
    media_dir = folder / "media"
    since = broker.log.stat().st_size
    cons = [Consumer(folder, n, broker.port, db_url, media_dir, free_port()).start() for n in range(consumers)]
    probed: list[object] = []
    try:
        wait_subscribed(broker.log, cons, since)
        fleet = Fleet("127.0.0.1", broker.port, plan, connections, rate)
        t0 = time.monotonic()
        threads = [threading.Thread(target=fleet.run, args=(deadline,), daemon=True)]
        if probe is not None:
            threads.append(threading.Thread(target=lambda: probed.append(probe(cons[0].url)), daemon=True))
        for th in threads:
            th.start()
        if kill:
            while fleet.sent < 0.4 * plan.total and time.monotonic() < deadline:
                time.sleep(0.05)
            cons[-1].kill()
            time.sleep(3)
            cons[-1].start()
        want = (len(plan.events) + probes, len(plan.media))
        have = counts(db_url)
        while have < want and time.monotonic() < deadline:
            time.sleep(0.2)
            have = counts(db_url)
        seconds = time.monotonic() - t0
        for th in threads:
            th.join(max(0.0, deadline - time.monotonic()))
        return Run(seconds, have, probed[0] if probed else None)
    finally:
        for c in cons:
            c.stop()
            c.end_session(broker.port)


@contextmanager
def services() -> Iterator[tuple[Broker, Postgres, Path]]:
    """A local mosquitto and PostgreSQL in a temporary folder, removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="load-central-"))
    tmp.chmod(0o755)  # the PostgreSQL server runs as the postgres user
    for sub in ("pg", "broker"):
        (tmp / sub).mkdir()
        (tmp / sub).chmod(0o755)
    broker = Broker(tmp / "broker", free_port()).start()
    pg = Postgres(tmp / "pg", free_port())
    pg.init()
    pg.start()
    try:
        yield broker, pg, tmp
    finally:
        pg.stop()
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def describe(plan: Plan) -> str:
    return (f"{len(plan.messages)} devices, {len(plan.events):,} events, {len(plan.media):,} media files "
            f"({plan.media_bytes / 1e6:.1f} MB, {plan.total:,} MQTT messages)")


def run_all(plan: Plan, args: argparse.Namespace, deadline: float) -> int:
    with services() as (broker, pg, tmp):
        print(describe(plan), flush=True)
        for n in args.consumers:
            (tmp / f"run-{n}").mkdir()
            db = pg.fresh_db()
            run = run_fleet(plan, broker, db, tmp / f"run-{n}", n, args.kill, deadline, args.connections)
            if not report(plan, run, n, args.kill, db, tmp / f"run-{n}" / "media"):
                return 1
    return 0


def report(plan: Plan, run: Run, n: int, killed: bool, db_url: str, media_dir: Path) -> bool:
    """Print the rates and whether everything arrived once and intact; True when it did."""
    res = stored(db_url, media_dir)
    mine = [e for e in res.events if e in plan.events]  # not the latency probe's
    once = len(mine) == len(set(mine)) == len(plan.events)
    good = sum(1 for k, sha in plan.media.items() if res.media.get(k) == (sha, sha))
    print(f"{n} consumer(s){' (one killed and restarted)' if killed else ''}: {len(res.events):,} event rows in "
          f"{run.seconds:.1f} s = {len(plan.events) / run.seconds:.0f} events/s and "
          f"{plan.media_bytes / 1e6 / run.seconds:.2f} media MB/s ({plan.total / run.seconds:.0f} MQTT messages/s); "
          f"every event once: {once}; media assembled with sha256 ok: {good}/{len(plan.media)}; "
          f"parts left: {res.parts_left}", flush=True)
    return once and good == len(plan.media) and res.parts_left == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--events", type=int, default=10_000, help="event messages (start and end of half as many alarms)")
    ap.add_argument("--media", type=int, default=1_000, help="alarms whose start carries a snapshot and a clip")
    ap.add_argument("--chunk-size", type=int, default=16 * 1024, help="bytes per media chunk (the edge's mqtt.chunk_size)")
    ap.add_argument("--snapshot-kb", type=float, default=8, help="mean snapshot size (each varies +-25 %%)")
    ap.add_argument("--clip-kb", type=float, default=40, help="mean clip size")
    ap.add_argument("--connections", type=int, default=20, help="MQTT connections the devices share")
    ap.add_argument("--consumers", type=int, nargs="+", default=[2], help="run with each of these numbers of consumers")
    ap.add_argument("--kill", action="store_true", help="SIGKILL one consumer at 40%% and restart it 3 s later")
    ap.add_argument("--port", type=int, help="only publish, to the broker on this local port")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--max-seconds", type=float, default=900)
    args = ap.parse_args()
    plan = make_plan(args.devices, args.events, args.media, args.chunk_size, snapshot_kb=args.snapshot_kb,
                     clip_kb=args.clip_kb)
    deadline = time.monotonic() + args.max_seconds
    if args.port:
        t0 = time.monotonic()
        Fleet(args.host, args.port, plan, args.connections).run(deadline)
        print(f"published {plan.total:,} messages ({len(plan.events):,} events, {len(plan.media):,} media files) "
              f"in {time.monotonic() - t0:.1f} s")
        return 0
    return run_all(plan, args, deadline)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
