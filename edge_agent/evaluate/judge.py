"""Why a case fails: its alarms (the `start` events of a replay) against its expectations.

The expectation format is the footage tests': per expected alarm `type`, `zone`, `label`, a
`count` range, optionally `first_alarm_within` (media seconds) and `distinct_tracks`; with
`only_listed`, any other alarm is wrong. Each reason starts with its kind: missed, too early,
too late, duplicate tracks, wrong zone or false alarm.
"""

from __future__ import annotations

from typing import Any


def _summary(events: list[dict[str, Any]]) -> str:
    return ", ".join(f"{e['type']}/{e['zone']}/{e['label']}@{e['media_time']:.1f}s#{e['track_id']}"
                     for e in events) or "none"


def _judge_one(exp: dict[str, Any], hits: list[dict[str, Any]]) -> list[str]:
    what = f"{exp['type']} {exp['label']} in {exp['zone']}"
    lo, hi = exp["count"]
    reasons = []
    if len(hits) < lo:
        reasons.append(f"missed: {what}: {len(hits)} alarm(s), expected {lo}..{hi}")
    elif len(hits) > hi:
        kind = "false alarm" if hi == 0 else "duplicate tracks"
        reasons.append(f"{kind}: {what}: {len(hits)} alarm(s), expected {lo}..{hi} ({_summary(hits)})")
    if hits and "first_alarm_within" in exp:
        first = min(e["media_time"] for e in hits)
        a, b = exp["first_alarm_within"]
        if first < a:
            reasons.append(f"too early: {what}: first alarm at {first:.1f} s, expected within [{a}, {b}]")
        elif first > b:
            reasons.append(f"too late: {what}: first alarm at {first:.1f} s, expected within [{a}, {b}]")
    tracks = [e["track_id"] for e in hits]
    if exp.get("distinct_tracks") and len(tracks) != len(set(tracks)):
        reasons.append(f"duplicate tracks: {what}: one track alarmed twice ({tracks})")
    return reasons


def judge(spec: dict[str, Any], events: list[dict[str, Any]]) -> list[str]:
    """Reasons the case fails (empty: it passes). `events` are event dicts as in events.jsonl."""
    starts = [e for e in events if e["phase"] == "start"]
    reasons: list[str] = []
    matched: set[str] = set()
    for exp in spec["expect"]:
        hits = [e for e in starts
                if e["type"] == exp["type"] and e["zone"] == exp["zone"] and e["label"] == exp["label"]
                and e.get("details", {}).get("direction") == exp.get("direction")]  # lines: in | out
        reasons += _judge_one(exp, hits)
        matched.update(e["event_id"] for e in hits)
    if spec.get("only_listed"):
        expected_labels = {(exp["type"], exp["label"]) for exp in spec["expect"] if exp["count"][1] > 0}
        for e in starts:
            if e["event_id"] in matched:
                continue
            kind = "wrong zone" if (e["type"], e["label"]) in expected_labels else "false alarm"
            reasons.append(f"{kind}: unexpected {_summary([e])}")
    return reasons
