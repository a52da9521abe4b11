"""The agent's data folder on a small filesystem fills during a broker outage (the scenario is
tests/fixtures/disk_full.py, run in its own process): alarm JSON kept, media dropped oldest
first and announced, no crash; then the disk reserve is given up and alarms are still written;
when not even an alarm's JSON fits, health says `storage_full` and the alarm waits in memory,
bounded: the oldest held media go first (the event says so), past the count the oldest event is
lost (counted); what is held is written, once, when space returns, and the reserve is made again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.disk_full import HELD_EVENTS, HELD_MEDIA, OVERFLOW

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def small_filesystem_works(where: Path) -> bool:
    probe = subprocess.run(["unshare", "-Urm", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {where}"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


def run_scenario(tmp_path: Path, sink: str) -> dict:
    """On a 3 MB tmpfs of its own (unshare -Urm); where this machine forbids mounting one, the
    outbox file is capped with SQLite's max_page_count instead (same code path: SQLITE_FULL)."""
    folder = tmp_path / sink
    folder.mkdir()
    mode = "folder" if sink == "folder" else "tmpfs"
    scenario = f"{sys.executable} -m tests.fixtures.disk_full {folder} {mode}"
    if small_filesystem_works(folder):
        cmd = ["unshare", "-Urm", "sh", "-c", f"mount -t tmpfs -o size=3m tmpfs {folder} && exec {scenario}"]
    else:
        cmd = [sys.executable, "-m", "tests.fixtures.disk_full", str(folder), "pages"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]  # no crash
    return json.loads(done.stdout)


def check(r: dict) -> None:
    emitted = r["emitted"]
    # 20 alarms with 300 KiB clips into 3 MB: every alarm's JSON is stored, none waits
    assert r["after_media"]["delivered"] == 20 and r["after_media"]["pending"] == 0
    assert not r["after_media"]["storage_full"]
    dropped = r["counters_media"].get("full_dropped_clip", 0)
    assert dropped >= 10  # most clips could not stay...
    assert r["clips_after_media"] and sorted(r["clips_after_media"]) == sorted(emitted[dropped:20])  # ...oldest first
    assert set(emitted[:dropped]) <= set(r["dropped_updates"])  # each drop announced with an update
    # the disk filled up completely: the reserve kept alarms coming (not SQLite's page cap: no
    # file gives pages back), then the next alarm waits in memory, health says so
    if r["mode"] != "pages":
        assert r["full"]["reserve_released"] == 1 and r["written_on_reserve"] >= 10, r["written_on_reserve"]
    assert r["full"]["storage_full"] is True and r["full"]["pending"] == 1
    # a burst with media while it stays full: at most HELD_MEDIA of media and HELD_EVENTS events held
    held = 1 + OVERFLOW
    assert r["overflow"]["pending"] == HELD_EVENTS and r["overflow"]["lost"] == held - HELD_EVENTS
    assert r["held_media"] <= HELD_MEDIA
    lost, kept = emitted[-held:][:held - HELD_EVENTS], emitted[-held:][held - HELD_EVENTS:]
    # space returns: what was held is written, once; the events whose media had to go say so
    # (all but the newest three, whose 960 KiB fit in HELD_MEDIA); the reserve is back
    assert r["freed"]["storage_full"] is False and r["freed"]["pending"] == 0
    assert sorted(r["event_ids"]) == sorted(e for e in emitted if e not in lost)
    assert sorted(r["stripped"]) == sorted(kept[:-3])
    # the outbox keeps room free (FREE_RESERVE) and gives dropped media's pages back; the local
    # store fills its disk up to its quota by design, so its reserve waits for a media drop
    assert r["reserve_back"] or r["mode"] == "folder"


def test_a_full_disk_under_the_outbox_drops_media_oldest_first_keeps_every_alarm_and_recovers(tmp_path):
    check(run_scenario(tmp_path, "outbox"))


def test_a_full_disk_under_the_local_store_does_the_same(tmp_path):
    """MQTT off: events.jsonl and media files on the small filesystem; no line is torn."""
    if not small_filesystem_works(tmp_path):
        pytest.xfail("known_miss: no small filesystem can be mounted here (unshare -Urm refused)")
    check(run_scenario(tmp_path, "folder"))
