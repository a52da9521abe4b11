"""The durable outbox: order, acknowledgement, restart, quota drops."""

from __future__ import annotations

import json
import sqlite3

import pytest

from edge_agent.publish.outbox import MAX_ATTEMPTS, REFUSED_RETRY_S, Outbox, Row
from edge_agent.publish.outbox_refused import TRIMMED_KEEP


def event_rows(eid: str, snap: int = 0, clip: int = 0, chunk: int = 100) -> list[Row]:
    rows = [Row("event", "a/alarms", json.dumps({"event_id": eid}).encode())]
    for media, size in (("snapshot", snap), ("clip", clip)):
        if size:
            rows.append(Row("manifest", f"a/alarms/{eid}/{media}", b"{}", media=media))
            rows += [Row("chunk", f"a/alarms/{eid}/{media}/{i}", b"x" * chunk, media=media) for i in range(size // chunk)]
    return rows


def put(box: Outbox, eid: str, **kw: int) -> dict[str, list[str]]:
    return box.put_event(eid, json.dumps({"event_id": eid}), event_rows(eid, **kw))


def announce(event_json: str, kinds: list[str]) -> Row:
    eid = json.loads(event_json)["event_id"]
    return Row("event", "a/alarms", json.dumps({"event_id": eid, "dropped": kinds}).encode())


def test_drains_event_json_first_then_snapshots_then_clips_each_in_event_order(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", 10**9)
    put(box, "e1", snap=200, clip=200)
    put(box, "e2", snap=100)
    topics = [m.topic for m in box.claim(100)]
    assert topics == [
        "a/alarms", "a/alarms",
        "a/alarms/e1/snapshot", "a/alarms/e1/snapshot/0", "a/alarms/e1/snapshot/1",
        "a/alarms/e2/snapshot", "a/alarms/e2/snapshot/0",
        "a/alarms/e1/clip", "a/alarms/e1/clip/0", "a/alarms/e1/clip/1",
    ]


def test_claim_respects_window_and_ack_deletes(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", 10**9)
    for i in range(5):
        put(box, f"e{i}")
    first = box.claim(2)
    assert [json.loads(m.payload)["event_id"] for m in first] == ["e0", "e1"]
    assert box.claim(2)[0].seq not in {m.seq for m in first}  # in-flight ones are not handed out twice
    box.ack([first[0].seq])
    assert box.depth() == 4 and box.counters()["delivered"] == 1


def test_unacknowledged_messages_survive_reopen(tmp_path):
    path = tmp_path / "o.sqlite"
    box = Outbox(path, 10**9)
    put(box, "e1", snap=300)
    claimed = box.claim(10)
    box.ack([claimed[0].seq])
    # no close(): as after kill -9
    again = Outbox(path, 10**9)
    assert [m.topic for m in again.claim(10)] == [m.topic for m in claimed[1:]]
    assert again.media_bytes() == 300


def test_quota_drops_oldest_clips_first_then_snapshots_and_announces(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", 1000, announce=announce)
    put(box, "e1", snap=200, clip=400)
    assert put(box, "e2", snap=200, clip=400) == {"e1": ["clip"]}
    assert put(box, "e3", snap=300) == {"e2": ["clip"]}
    assert put(box, "e4", snap=400) == {"e1": ["snapshot"]}
    assert box.media_bytes() == 900
    c = box.counters()
    assert c["dropped_clip"] == 2 and c["dropped_snapshot"] == 1
    events = [json.loads(m.payload) for m in box.claim(100) if m.kind == "event"]
    # every alarm's JSON is still there, plus one announcement per drop
    assert [e["event_id"] for e in events if "dropped" not in e] == ["e1", "e2", "e3", "e4"]
    assert [(e["event_id"], e["dropped"]) for e in events if "dropped" in e] == [
        ("e1", ["clip"]), ("e2", ["clip"]), ("e1", ["snapshot"])
    ]


def test_media_partly_in_flight_is_not_dropped(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", 500, announce=announce)
    put(box, "e1", clip=400)
    box.claim(3)  # event JSON, manifest, first chunk of e1's clip
    assert put(box, "e2", clip=400) == {"e2": ["clip"]}


def test_event_json_the_broker_keeps_refusing_is_never_given_up_only_delayed(tmp_path):
    """It used to be deleted after 3 refusals: an alarm lost to a passing ACL or broker hiccup."""
    box = Outbox(tmp_path / "o.sqlite", 10**9)
    now = [1000.0]
    box.time = lambda: now[0]
    put(box, "e1")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        (msg,) = box.claim(1)
        assert box.fail(msg.seq) is (attempt == MAX_ATTEMPTS)
    assert box.depth() == 1 and box.pending_events() == 1
    assert box.claim(1) == []  # not hammered in a tight loop
    now[0] += REFUSED_RETRY_S
    (again,) = box.claim(1)
    assert again.seq == msg.seq and json.loads(again.payload)["event_id"] == "e1"
    assert box.fail(again.seq) is True and box.claim(1) == []  # still kept, waits again
    box.ack([again.seq])
    assert box.depth() == 0 and box.counters()["refused"] == 1


def test_media_the_broker_keeps_refusing_is_dropped_whole_and_announced(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", 10**9, announce=announce)
    put(box, "e1", snap=200)
    head, manifest, chunk0 = box.claim(3)
    box.ack([head.seq, manifest.seq])
    for _ in range(MAX_ATTEMPTS - 1):
        assert box.fail(chunk0.seq) is False
        assert box.claim(1)[0].seq == chunk0.seq
    assert box.fail(chunk0.seq) is True
    rest = box.claim(10)
    # every chunk of that snapshot is gone (half a JPEG is useless); central is told it was dropped
    assert [json.loads(m.payload) for m in rest] == [{"event_id": "e1", "dropped": ["snapshot"]}]
    assert box.media_bytes() == 0 and box.counters()["rejected_snapshot"] == 1


def test_a_trimmed_event_goes_out_in_place_of_the_full_one_which_the_outbox_keeps_bounded(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", 10**9)
    for i in range(TRIMMED_KEEP + 3):
        put(box, f"e{i}")
        (msg,) = box.claim(1)
        box.trim(msg.seq, b'{"small":1}', msg.payload)
        (again,) = box.claim(1)  # the trimmed one, same place in the queue
        assert (again.seq, again.payload) == (msg.seq, b'{"small":1}')
        box.ack([again.seq])
    kept = [json.loads(j)["event_id"] for (j,) in box._db.execute("SELECT json FROM trimmed ORDER BY seq")]
    assert kept == [f"e{i}" for i in range(3, TRIMMED_KEEP + 3)] and box.counters()["trimmed"] == TRIMMED_KEEP + 3


def test_an_event_is_trimmed_largest_details_first_keeping_its_end_reason():
    from edge_agent.alarms.event import EventContext

    ev = EventContext("s", "d", "cam").start("intrusion", 1.7e9, key=(1,), zone="z")
    ev = EventContext.end(ev, 1.7e9 + 5, "left", {"big": "x" * 5000, "mid": "y" * 500, "small": 1})
    small = EventContext.trimmed(ev, 800)
    assert small.details == {"small": 1, "end_reason": "left",
                             "trimmed": {"bytes": len(ev.to_json()), "dropped": ["big", "mid"]}}
    assert len(small.to_json()) <= 800 and small.model_dump(exclude={"details"}) == ev.model_dump(exclude={"details"})
    assert EventContext.trimmed(ev, 1000).details["trimmed"]["dropped"] == ["big"]  # no more than needed
    assert EventContext.trimmed(ev, 300) is None  # not even the alarm's own fields fit


def test_an_outbox_of_the_previous_schema_opens_and_keeps_its_messages(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, priority INTEGER NOT NULL,"
        " kind TEXT NOT NULL, event_id TEXT, media TEXT, topic TEXT NOT NULL, payload BLOB NOT NULL,"
        " qos INTEGER NOT NULL, retain INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0);"
        "INSERT INTO messages (priority, kind, event_id, topic, payload, qos, created)"
        " VALUES (0, 'event', 'e0', 'a/alarms', x'7b7d', 1, 0);"
    )
    db.commit()
    db.close()
    box = Outbox(path, 10**9)
    assert [m.event_id for m in box.claim(5)] == ["e0"]


def test_an_unopenable_outbox_is_a_clear_error(tmp_path):
    from edge_agent.errors import EdgeAgentError

    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(EdgeAgentError, match="dir.sqlite: cannot open"):
        Outbox(tmp_path / "dir.sqlite", 1)


def test_a_failed_acknowledgement_does_not_leave_a_transaction_open(tmp_path):
    """An error inside ack() left BEGIN without COMMIT: every later alarm write then failed."""
    box = Outbox(tmp_path / "o.sqlite", 10**9)
    put(box, "e1")
    (msg,) = box.claim(1)
    real = box._bump
    box._bump = lambda name, by: (_ for _ in ()).throw(sqlite3.OperationalError("disk I/O error"))
    with pytest.raises(sqlite3.OperationalError):
        box.ack([msg.seq])
    box._bump = real
    put(box, "e2")  # raised "cannot start a transaction within a transaction" before
    box.ack([msg.seq])
    assert [json.loads(m.payload)["event_id"] for m in box.claim(5)] == ["e2"]


def test_a_retained_state_replaces_its_undelivered_predecessor(tmp_path):
    """Each status change of each patrol point queued one more message through an outage; only the
    latest retained state of a topic matters (one already on the wire is left to finish)."""
    box = Outbox(tmp_path / "o.sqlite", 10**9)
    for state in ("ok", "overdue", "camera_down"):
        box.put(Row("retained", "a/patrol/status/PP001", state.encode(), retain=True))
    box.put(Row("retained", "a/patrol/status/PP002", b"ok", retain=True))
    (first, second) = box.claim(5)
    assert (first.payload, second.payload) == (b"camera_down", b"ok")
    box.put(Row("retained", "a/patrol/status/PP001", b"ok", retain=True))  # PP001's is in flight
    assert [m.payload for m in box.claim(5)] == [b"ok"] and box.depth() == 3
