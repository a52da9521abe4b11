"""`check` says which zones a schedule silences now, in site time, and warns about a missing time zone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from edge_agent.clock import parse_iso
from edge_agent.admin.check import _summary
from edge_agent.config.loader import load_all

ROOT = Path(__file__).resolve().parents[2]
ZONE = "zones:\n  - {name: track-bed, kind: rail, polygon: [[0,0],[1,0],[1,1]], labels: [person], " \
       "schedule: ['19:00-06:00']}\n"


def _site(tmp_path: Path, site: str) -> Path:
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "cam.yaml").write_text(ZONE)
    cfg = tmp_path / "cameras.yaml"
    cfg.write_text(f"site: {site}\ndevice: {{id: d}}\nmqtt: {{enabled: false}}\n"
                   "cameras:\n  - {id: cam, url: rtsp://h/1}\n")
    return cfg


def test_summary_says_whether_each_scheduled_zone_is_active_in_site_time(tmp_path: Path) -> None:
    cfg_path = _site(tmp_path, "{id: s, timezone: Europe/Oslo}")
    cfg, zones = load_all(cfg_path)
    afternoon = "\n".join(_summary(cfg_path, cfg, zones, parse_iso("2026-06-01T13:37:00Z")))  # 15:37 in Oslo
    assert "now 2026-06-01 15:37:00 +02:00" in afternoon
    assert "track-bed (rail, 19:00-06:00, INACTIVE now)" in afternoon
    night = "\n".join(_summary(cfg_path, cfg, zones, parse_iso("2026-06-01T20:00:00Z")))  # 22:00 in Oslo
    assert "track-bed (rail, 19:00-06:00, active now)" in night
    assert f"events, snapshots and clips are stored in {os.getcwd()}/data/media" in night


def test_a_missing_time_zone_is_a_warning_naming_the_zone_in_use(tmp_path: Path) -> None:
    cfg = _site(tmp_path, "{id: s}")
    res = subprocess.run([sys.executable, "-m", "edge_agent.cli", "check", "--config", str(cfg)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    assert "warning: site.timezone is not set: schedules and times use UTC (zones with a schedule: cam " \
           "track-bed)" in res.stdout
