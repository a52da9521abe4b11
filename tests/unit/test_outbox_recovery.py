"""The outbox after a power cut tore its SQLite file or its WAL: it opens, keeps every intact row,
reports what it could not read, and takes new alarms. Real SQLite files, damaged on disk."""

from __future__ import annotations

import json
import shutil

from edge_agent.publish.outbox import Outbox, Row

PAGE = 4096


def event(i: int) -> tuple[str, str, list[Row]]:
    eid = f"e{i:04d}"
    body = json.dumps({"event_id": eid, "pad": "p" * 300}).encode()
    rows = [Row("event", "a/alarms", body), Row("chunk", f"a/alarms/{eid}/clip/0", f"{i:04d}".encode() * 225, media="clip")]
    return eid, body.decode(), rows


def written(n: int, start: int = 0) -> dict[bytes, str]:
    """Payload -> topic of what events start..start+n-1 stored: the ground truth rows are checked against."""
    out = {}
    for i in range(start, start + n):
        for row in event(i)[2]:
            out[row.payload] = row.topic
    return out


def fill(box: Outbox, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        eid, body, rows = event(i)
        box.put_event(eid, body, rows)


def stored(box: Outbox) -> list:
    return box.claim(100_000)


def test_a_file_whose_tail_was_torn_off_opens_with_its_intact_rows(tmp_path):
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path, 10**9)
    fill(box, 300)
    box.close()
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 3 * PAGE)  # the last pages never reached the disk
    box = Outbox(path, 10**9)
    try:
        assert box.recovery is not None and box.recovery.problem
        truth = written(300)
        kept = stored(box)
        assert kept and all(truth.get(m.payload) == m.topic for m in kept)  # nothing garbled kept
        assert len(kept) < len(truth) or box.recovery.unreadable >= 1  # the loss is reported
        assert box.counters()["recovered_rows"] == sum(box.recovery.kept.values())
        assert (tmp_path / box.recovery.moved_to.rsplit("/", 1)[-1]).exists()  # kept for a post-mortem
        box.put_event(*event(999)[:2], event(999)[2])  # and it takes new alarms
        assert any(m.payload == event(999)[2][0].payload for m in box.claim(100_000))
    finally:
        box.close()


def test_a_torn_wal_tail_loses_only_the_transaction_it_tore(tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    box = Outbox(live / "outbox.sqlite", 10**9)
    fill(box, 40)
    box._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the first 40 are in the main file
    box._db.execute("PRAGMA wal_autocheckpoint=0")
    fill(box, 20, start=40)  # these only in the WAL when the power goes
    cut = tmp_path / "cut"
    shutil.copytree(live, cut)  # the disk as the power cut left it
    box.close()
    wal = cut / "outbox.sqlite-wal"
    data = bytearray(wal.read_bytes())
    data[-200:] = b"\xa5" * 200  # the last frame written half
    wal.write_bytes(bytes(data))

    box = Outbox(cut / "outbox.sqlite", 10**9)
    try:
        assert box.recovery is not None and box.recovery.wal_frames_lost >= 1
        assert box.recovery.problem is None  # the file itself is sound
        kept = {m.payload for m in stored(box)}
        assert set(written(59)) <= kept  # every committed transaction before the torn one
        assert not set(written(1, start=59)) & kept  # the torn one is gone as a whole
        assert box.counters()["wal_frames_lost"] == box.recovery.wal_frames_lost
    finally:
        box.close()


def test_a_file_of_garbage_never_stops_the_agent(tmp_path):
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"\x00\xffnot sqlite" * 1000)
    box = Outbox(path, 10**9)
    try:
        assert box.recovery is not None and box.recovery.problem
        assert sum(box.recovery.kept.values()) == 0 and box.recovery.unreadable >= 1
        box.put_event(*event(1)[:2], event(1)[2])
        assert len(stored(box)) == 2
    finally:
        box.close()


def test_a_sound_outbox_is_left_alone(tmp_path):
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path, 10**9)
    fill(box, 5)
    box.close()
    box = Outbox(path, 10**9)
    try:
        assert box.recovery is None and len(stored(box)) == 10
    finally:
        box.close()
