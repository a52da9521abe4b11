#!/usr/bin/env python3
"""Write the example configs/patrol_points.yaml: 209 smart patrol points, 12 teams, a roster.

    .venv/bin/python scripts/make_patrol_config.py [--out configs/patrol_points.yaml]

The points sit along a dyke (cameras dyke-01..dyke-14) and a railway (rail-01..rail-10), eight
or nine per camera, each with a small check-in area on its camera. Dyke points are due every 4 h
between 06:00 and 22:00; railway points every 6 h, day and night. Deterministic: the same file
every run, so a diff shows real changes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
N_POINTS = 209
N_TEAMS = 12
CAMERAS = [f"dyke-{i:02d}" for i in range(1, 15)] + [f"rail-{i:02d}" for i in range(1, 11)]
MEMBERS = ["Jansen", "de Vries", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "de Boer", "Bos",
           "Vos", "Peters", "Hendriks"]
INITIALS = "ABCD"


def area(slot: int) -> list[list[float]]:
    """One of nine non-overlapping cells of the lower two thirds of the picture (ground level)."""
    col, row = slot % 3, slot // 3
    x0, y0 = 0.04 + col * 0.32, 0.36 + row * 0.21
    return [[round(x0, 2), round(y0, 2)], [round(x0 + 0.28, 2), round(y0, 2)],
            [round(x0 + 0.28, 2), round(y0 + 0.18, 2)], [round(x0, 2), round(y0 + 0.18, 2)]]


def points() -> list[dict]:
    out = []
    per_team = -(-N_POINTS // N_TEAMS)  # teams walk consecutive stretches: 18 points (the last 11)
    for i in range(N_POINTS):
        cam = CAMERAS[i * len(CAMERAS) // N_POINTS]
        slot = sum(1 for p in out if p["camera"] == cam)
        rail = cam.startswith("rail")
        km = round(0.4 + 0.35 * i, 2)
        point = {
            "id": f"PP{i + 1:03d}",
            "name": f"{'Railway' if rail else 'Dyke'} km {km}",
            "camera": cam,
            "area": area(slot),
            # along the coast from Scheveningen (52.10, 4.27) north-east towards IJmuiden
            "location": {"lat": round(52.10 + 0.0017 * i, 5), "lon": round(4.27 + 0.0015 * i, 5)},
            "team": f"T{i // per_team + 1:02d}",
        }
        if rail:
            point["due"] = {"interval": "6h"}  # the railway is watched round the clock
        out.append(point)
    return out


def roster() -> list[dict]:
    out = []
    for t in range(N_TEAMS):
        for m in range(4):
            name = f"{INITIALS[m]}. {MEMBERS[(t + m) % len(MEMBERS)]}"
            entry = {"badge": 1000 + 10 * (t + 1) + m, "team": f"T{t + 1:02d}", "member": name,
                     "valid_until": dt.date(2027, 12, 31)}
            out.append(entry)
    out[-1]["valid_until"] = dt.date(2025, 6, 30)  # left the service: the badge must be rejected
    return out


def document() -> dict:
    return {
        "badge_secret_env": "EDGE_PATROL_SECRET",
        "defaults": {"due": {"interval": "4h", "window": "06:00-22:00"}, "presence_s": 10, "rearm_s": 600},
        "teams": [{"id": f"T{t + 1:02d}", "name": f"Patrol team {t + 1}"} for t in range(N_TEAMS)],
        "points": points(),
        "roster": roster(),
    }


def render(doc: dict) -> str:
    """Block style at the top, one line per team, point and badge (a reviewable diff per point)."""
    lines = []
    for key, value in doc.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines += [f"  - {_flow(item)}" for item in value]
        else:
            flow = None if isinstance(value, dict) else False  # a lone scalar in flow style is `{k: v}`
            lines.append(yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=flow).rstrip())
    return "\n".join(lines) + "\n"


def _flow(item: dict) -> str:
    return yaml.safe_dump(item, sort_keys=False, default_flow_style=True, width=10_000).strip()


HEADER = """\
# Patrol points, teams and badge roster (example: 209 points on 24 cameras, 12 teams).
# Written by scripts/make_patrol_config.py; check with
#   edge-agent check --config configs/examples/cameras.full.yaml --patrol configs/patrol_points.yaml
# Areas are check-in areas on the point's camera, [x, y] as fractions of width and height.
# Each box acts on the points of its own cameras. Due times: `interval` between check-ins, counted
# inside `window` (site time zone; absent = all day). Badges: `edge-agent badge make --member NAME`.
# The badge secret (HMAC key, one per site) comes from the environment, never from this file.
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "configs" / "patrol_points.yaml")
    args = p.parse_args(argv)
    args.out.write_text(HEADER + render(document()), encoding="utf-8")
    print(f"{args.out}: {N_POINTS} points on {len(CAMERAS)} cameras, {N_TEAMS} teams, {len(roster())} badges")
    return 0


if __name__ == "__main__":
    sys.exit(main())
