"""The agent's log line for one delivered event phase: what, where, which event, and where its media went.

A technician reading `journalctl` must be able to find an alarm's snapshot and clip without
knowing the internals: the line names the event id (the key in events.jsonl, MQTT and central),
the score, the site's local time, and for each media item the file it was stored as (MQTT off)
or that it waits in the outbox for its topic (MQTT on; the outbox sends it when the broker has
room, and `edge-agent central` or the health report tell when it arrived).
"""

from __future__ import annotations

from pathlib import Path

from ..clock import parse_iso, site_time
from .event import Event, MediaRef


def _media(kind: str, ref: MediaRef, store: str | None) -> str:
    length = f" ({ref.duration_s:g} s)" if ref.duration_s is not None else ""
    if ref.path is not None:
        return f"{kind}{length} stored as {Path(store, ref.path) if store else ref.path}"
    if ref.topic is not None:
        return f"{kind}{length} in the outbox for {ref.topic}"
    return f"{kind}{length} not stored"


def alarm_line(ev: Event, tz: str, store: str | None = None) -> str:
    """`camera rail-east: intrusion start in track-bed (person, score 0.82), event ab12..., at 2026-06-01
    22:03:11 +02:00; snapshot stored as data/media/snapshots/ab12...-start.jpg`."""
    what = f"camera {ev.camera}: {ev.type} {ev.phase}"
    if ev.zone:
        what += f" in {ev.zone}"
    obj = ", ".join(x for x in (ev.label, None if ev.score is None else f"score {ev.score:.2f}") if x)
    if obj:
        what += f" ({obj})"
    when = ev.end if ev.phase == "end" and ev.end else (ev.time or ev.start)
    what += f", event {ev.event_id}, at {site_time(parse_iso(when), tz)}"
    if ev.phase == "end" and ev.end:
        what += f" after {parse_iso(ev.end) - parse_iso(ev.start):.1f} s"
    media = [_media(kind, ref, store) for kind, ref in (("snapshot", ev.snapshot), ("clip", ev.clip)) if ref]
    return what + ("; " + "; ".join(media) if media else "")
