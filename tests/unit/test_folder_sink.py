"""The folder sink: replay output and the live agent's local store when MQTT is off."""

from __future__ import annotations

import json

from edge_agent.alarms.event import Event
from edge_agent.alarms.sink import FolderSink


def _event(i: int, phase: str = "start") -> Event:
    return Event(event_id=f"ev-{i}", phase=phase, type="intrusion", site="s", device="d", camera="c",
                 zone="z", start=f"2026-06-01T10:00:0{i}.000Z")


def _lines(folder) -> list[dict]:
    return [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]


def test_quota_drops_oldest_clips_first_then_snapshots_and_tells_in_an_update(tmp_path):
    sink = FolderSink(tmp_path, quota_bytes=2500)
    sink.emit(_event(1), {"snapshot": b"s" * 400})
    sink.emit(_event(1, "update"), {"clip": b"c" * 1000})
    sink.emit(_event(2), {"snapshot": b"s" * 400})
    sink.emit(_event(2, "update"), {"clip": b"c" * 1000})  # 2800 > 2500: event 1's clip goes
    assert not (tmp_path / "clips" / "ev-1-update.mp4").exists()
    assert (tmp_path / "clips" / "ev-2-update.mp4").exists()
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["ev-1-start.jpg", "ev-2-start.jpg"]
    sink.emit(_event(3, "update"), {"clip": b"c" * 1500})  # 3300: clip 2 goes, snapshots stay
    sink.emit(_event(4), {"snapshot": b"s" * 1300})  # 3600: clip 3, the last clip, goes
    sink.emit(_event(5), {"snapshot": b"s" * 1000})  # 3100 and no clips: the oldest snapshots go
    sink.close()
    assert sink.dropped == {"clip": 3, "snapshot": 2}
    drops = [(e["event_id"], e["details"]["dropped"]) for e in _lines(tmp_path) if "dropped" in e.get("details", {})]
    assert drops == [("ev-1", ["clip"]), ("ev-2", ["clip"]), ("ev-3", ["clip"]), ("ev-1", ["snapshot"]),
                     ("ev-2", ["snapshot"])]
    total = sum(p.stat().st_size for d in ("snapshots", "clips") for p in (tmp_path / d).iterdir())
    assert total <= 2500
    # every event line written is still there: drops add lines, never remove them
    assert [(e["event_id"], e["phase"]) for e in _lines(tmp_path) if "dropped" not in e.get("details", {})] == [
        ("ev-1", "start"), ("ev-1", "update"), ("ev-2", "start"), ("ev-2", "update"), ("ev-3", "update"),
        ("ev-4", "start"), ("ev-5", "start")]


def test_media_from_an_earlier_run_counts_against_the_quota(tmp_path):
    first = FolderSink(tmp_path)
    first.emit(_event(1), {"snapshot": b"s" * 2000})
    first.close()
    second = FolderSink(tmp_path, quota_bytes=2500)
    second.emit(_event(2), {"snapshot": b"s" * 1000})
    second.close()
    assert not (tmp_path / "snapshots" / "ev-1-start.jpg").exists()
    assert (tmp_path / "snapshots" / "ev-2-start.jpg").exists()
    assert len(_lines(tmp_path)) == 2  # the old file's owner is unknown after a restart: no update line


def test_replay_folder_has_no_quota_and_starts_fresh(tmp_path):
    FolderSink(tmp_path).emit(_event(1), {"clip": b"c" * 5000})
    sink = FolderSink(tmp_path, append=False)
    sink.emit(_event(2), {"clip": b"c" * 5000})
    sink.close()
    assert [e["event_id"] for e in _lines(tmp_path)] == ["ev-2"]
    assert len(list((tmp_path / "clips").iterdir())) == 2
