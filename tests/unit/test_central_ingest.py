"""The ingest's handling of one message, on SQLite: bad input is dropped with a reason and the
rest still stored; media are verified by sha256; media parts survive a restart in the database."""

from __future__ import annotations

import hashlib
import json
import logging

import sqlalchemy as sa

from edge_agent.central.ingest import MAX_EVENT_BYTES, Changes, Ingest  # noqa: E402
from edge_agent.central.schema import media_chunks  # noqa: E402
from edge_agent.central.store import Store  # noqa: E402
from edge_agent.config.central import CentralConfig  # noqa: E402
from tests.unit.test_central_store import T0, event, raw  # noqa: E402

BASE = "edge/site1/dev1/alarms"


def make(tmp_path) -> Ingest:
    cfg = CentralConfig.model_validate({"database": {"url": f"sqlite:///{tmp_path / 'c.sqlite'}"},
                                        "media": {"dir": str(tmp_path / "media")}})
    return Ingest(cfg, Store.open(cfg.database.url), Changes())


def send_media(ingest: Ingest, event_id: str, data: bytes, chunks: int, sha: str | None = None,
               upto: int | None = None) -> None:
    size = -(-len(data) // chunks)
    parts = [data[i * size:(i + 1) * size] for i in range(chunks)]
    manifest = {"chunks": chunks, "sha256": sha or hashlib.sha256(data).hexdigest(), "size": len(data)}
    ingest.handle(f"{BASE}/{event_id}/snapshot", json.dumps(manifest).encode())
    for i, part in enumerate(parts[:upto]):
        ingest.handle(f"{BASE}/{event_id}/snapshot/{i}", part)


def test_bad_messages_are_dropped_with_a_reason_and_good_ones_stored(tmp_path, caplog):
    ingest = make(tmp_path)
    good = event(1, T0)
    with caplog.at_level(logging.ERROR, "edge_agent.central.ingest"):
        ingest.handle(BASE, b"{not json")
        ingest.handle(BASE, json.dumps({"event_id": "x", "phase": "start"}).encode())
        ingest.handle(BASE, b"{" + b" " * MAX_EVENT_BYTES + b"}")
        ingest.handle(BASE, raw(good))
        ingest.handle(BASE, raw(good))
    assert ingest.counts["dropped"] == 3 and ingest.counts["stored"] == 1 and ingest.counts["duplicates"] == 1
    assert any("more than" in r.message for r in caplog.records)
    assert any("not a valid event" in r.message for r in caplog.records)


def test_media_is_verified_and_a_corrupt_one_waits_for_a_resend(tmp_path):
    ingest = make(tmp_path)
    ev = event(1, T0)
    ingest.handle(BASE, raw(ev))
    data = bytes(range(256)) * 40
    send_media(ingest, ev.event_id, data, 3, sha="0" * 64)  # arrives whole but does not match
    assert ingest.store.media_of(ev.event_id) == {} and ingest.counts["corrupt"] == 1
    send_media(ingest, ev.event_id, data, 3)  # the agent resends it
    row = ingest.store.media_of(ev.event_id)["snapshot"]
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "media" / row["path"]).read_bytes() == data


def test_media_parts_survive_a_restart_of_the_console(tmp_path):
    """Parts are acknowledged once committed: a console restarted mid-media must still complete it."""
    first = make(tmp_path)
    ev = event(1, T0)
    first.handle(BASE, raw(ev))
    data = b"jpeg-bytes" * 1000
    send_media(first, ev.event_id, data, 4, upto=3)
    first.store.close()
    second = make(tmp_path)
    second.handle(f"{BASE}/{ev.event_id}/snapshot/3", data[3 * 2500:])
    assert (tmp_path / "media" / second.store.media_of(ev.event_id)["snapshot"]["path"]).read_bytes() == data
    with second.store.engine.connect() as conn:  # the assembled parts are gone from the database
        assert conn.execute(sa.select(sa.func.count()).select_from(media_chunks)).scalar() == 0


def test_fresh_picture_answer_is_shown_on_its_alarm(tmp_path):
    """`snapshot` command -> the box's reply names a snapshot id -> its image arrives on snapshots/."""
    from edge_agent.central import queries
    from edge_agent.central.workflow import Workflow

    ingest = make(tmp_path)
    sent: list[tuple[str, bytes]] = []
    wf = Workflow(ingest.store, ingest.cfg, lambda t, p: sent.append((t, p)), lambda: T0)
    ev = event(1, T0)
    ingest.handle(BASE, raw(ev))
    alarm = wf.get(1)["id"]
    rid = wf.request_snapshot(alarm, "olga")
    assert sent[0][0] == "edge/site1/dev1/cmd/snapshot" and json.loads(sent[0][1])["args"] == {"camera": "cam1"}
    reply = {"request_id": rid, "command": "snapshot", "ok": True, "result": {"snapshot_id": "snap-7"}}
    ingest.handle("edge/site1/dev1/cmd/reply", json.dumps(reply).encode())
    assert queries.latest_fresh_snapshot(ingest.store.engine, alarm) is None  # the image is not here yet
    data = b"\xff\xd8fresh" * 500
    manifest = {"chunks": 1, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    ingest.handle("edge/site1/dev1/snapshots/snap-7/snapshot", json.dumps(manifest).encode())
    ingest.handle("edge/site1/dev1/snapshots/snap-7/snapshot/0", data)
    assert queries.latest_fresh_snapshot(ingest.store.engine, alarm)["snapshot_id"] == "snap-7"
    assert [a["action"] for a in wf.audit_of(alarm)] == ["snapshot_sent", "snapshot_reply"]
    ingest.handle("edge/site1/dev1/cmd/reply", json.dumps(reply).encode())  # redelivered: audited once
    assert len(wf.audit_of(alarm)) == 2


def test_escalation_and_priority_order_in_the_list(tmp_path):
    from edge_agent.central import queries

    ingest = make(tmp_path)
    for n, (kind, t) in enumerate((("water", T0), ("rail", T0 + 100), ("water", T0 + 200))):
        e = event(n, t, zone=f"z{n}", kind=kind)
        ingest.handle(BASE, raw(e))
    rows = queries.list_alarms(ingest.store.engine, {}, now=T0 + 250, escalate_after_s=120, tz="Europe/Amsterdam")
    assert [(r["zone"], r["escalated"]) for r in rows] == [("z1", True), ("z2", False), ("z0", True)]
    assert rows[0]["started"] == "2026-01-01 01:01:40"  # T0 + 100 s in Amsterdam (UTC+1 in winter)


def test_a_clip_the_browser_cannot_play_is_recognised(tmp_path):
    """Debian's chromium plays H.264 but not H.265: the alarm view must say so for an H.265 clip."""
    import av
    import numpy as np

    from edge_agent.central.queries import video_codec

    paths = {}
    for codec in ("libx264", "libx265"):
        paths[codec] = tmp_path / f"{codec}.mp4"
        with av.open(str(paths[codec]), "w") as out:
            stream = out.add_stream(codec, rate=10)
            stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
            for i in range(5):
                frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 40, np.uint8), format="rgb24")
                out.mux(stream.encode(frame))
            out.mux(stream.encode())
    assert (video_codec(str(paths["libx264"])), video_codec(str(paths["libx265"]))) == ("h264", "hevc")
    assert video_codec(str(tmp_path / "missing.mp4")) is None


def test_pages_wake_when_the_ingest_thread_stores_something():
    import asyncio
    import threading

    from edge_agent.central.ingest import Changes

    changes = Changes()

    async def watch() -> tuple[int, int]:
        quiet = await changes.changed(0, 0.05)  # nothing happened: back after the timeout
        threading.Timer(0.05, changes.bump).start()  # the ingest thread stores something
        return quiet, await changes.changed(0, 30)

    # its own thread: a session-wide Playwright browser keeps an event loop running on this one
    result: list[tuple[int, int]] = []
    runner = threading.Thread(target=lambda: result.append(asyncio.run(watch())))
    runner.start()
    runner.join(30)
    assert result == [(0, 1)]


def test_a_media_id_that_is_not_a_plain_name_never_becomes_a_path(tmp_path):
    """`..` is a valid MQTT topic level: a forged box must not write outside the media folder."""
    ingest = make(tmp_path)
    data = b"x" * 100
    for bad in ("..", ".hidden"):
        send_media(ingest, bad, data, 1)
    assert ingest.counts["invalid"] == 4  # two manifests, two chunks
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith("snapshot") or p.name == "manifest.json"]


def test_consoles_share_the_fleet_through_a_shared_subscription_by_default(tmp_path):
    """Several `central serve` share the messages ($share/<group>/...), each with its own session."""
    import pytest

    from edge_agent.central.ingest import filters
    from edge_agent.central.serve import console_client_id
    from edge_agent.config.central import load_central
    from edge_agent.errors import ConfigError

    ingest = make(tmp_path)
    subs = ingest.link.opts.subscriptions
    assert "$share/central/edge/+/+/alarms" in subs and "$share/central/edge/+/+/alarms/+/+/+" in subs
    # a broker sends no retained message to a shared subscription: the boxes' state is unshared
    for state in ("status", "health", "inventory", "patrol/status/+"):
        assert f"edge/+/+/{state}" in subs and f"$share/central/edge/+/+/{state}" not in subs
    conf = tmp_path / "central.yaml"
    conf.write_text("http: {listen: '127.0.0.1:8091'}\ningest:\n  shared_group: null\n")
    cfg = load_central(conf)
    # two consoles on one host differ by their port, so neither takes over the other's session
    assert console_client_id(cfg).endswith("-8091")
    unshared = Ingest(cfg, ingest.store, Changes()).link.opts.subscriptions
    assert unshared == filters("edge") and not any(f.startswith("$share") for f in unshared)
    conf.write_text("ingest:\n  shared_group: a/b\n")
    with pytest.raises(ConfigError) as exc:
        load_central(conf)
    assert exc.value.problems == [f"{conf}:2: ingest.shared_group: must be a plain name (no '/', '+' or '#'), "
                                  "or null for no sharing"]
