"""The live agent (`edge-agent run`) judges patrol check-ins on its cameras, as replay does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

FOOTAGE = Path(__file__).parents[1] / "footage"


def test_run_checks_in_a_badge_shown_to_a_camera(tmp_path):
    shutil.copy(FOOTAGE / "patrol_points.yaml", tmp_path / "patrol_points.yaml")
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "patrol-cam.yaml").write_text("zones: []\n")
    (tmp_path / "cameras.yaml").write_text(
        "site: {id: footage-site, timezone: Europe/Amsterdam}\ndevice: {id: box-1}\npatrol: patrol_points.yaml\n"
        "mqtt: {enabled: false}\nalarms: {store_dir: out}\n"
        f"cameras:\n  - {{id: patrol-cam, url: {FOOTAGE / 'patrol_checkin.mp4'}}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "run", "--config", str(tmp_path / "cameras.yaml"), "--duration", "18"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,  # relative data paths start here
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(x) for x in (tmp_path / "out" / "events.jsonl").read_text().splitlines()]
    checkins = [e for e in events if e["type"] == "patrol_checkin" and e["phase"] == "start"]
    assert len(checkins) == 1, [(e["type"], e["phase"]) for e in events]
    assert checkins[0]["details"]["member"] == "A. Jansen" and checkins[0]["zone"] == "PP001"
    assert not [e for e in events if e["type"] in ("patrol_badge_rejected", "patrol_presence")]
