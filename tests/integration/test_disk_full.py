"""The agent's data folder on a small filesystem fills during a broker outage (the scenario is
tests/fixtures/disk_full.py, run in its own process): alarm JSON kept, media dropped oldest
first and announced, no crash; when not even an alarm's JSON fits, health says `storage_full`
and the alarm waits in memory; it is written, once, when space returns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    # the disk filled up completely: the next alarm waits in memory, health says so
    assert r["full"]["storage_full"] is True and r["full"]["pending"] == 1
    # space returns: it is written, and every alarm is stored exactly once
    assert r["freed"]["storage_full"] is False and r["freed"]["pending"] == 0
    assert sorted(r["event_ids"]) == sorted(emitted)


def test_a_full_disk_under_the_outbox_drops_media_oldest_first_keeps_every_alarm_and_recovers(tmp_path):
    check(run_scenario(tmp_path, "outbox"))


def test_a_full_disk_under_the_local_store_does_the_same(tmp_path):
    """MQTT off: events.jsonl and media files on the small filesystem; no line is torn."""
    if not small_filesystem_works(tmp_path):
        pytest.xfail("known_miss: no small filesystem can be mounted here (unshare -Urm refused)")
    check(run_scenario(tmp_path, "folder"))
