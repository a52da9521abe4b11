"""Evidence export: one alarm as a zip of its events, snapshot, clip and audit trail.

`manifest.json` inside lists every other file with its sha256 and size, so whoever receives the
zip can show that nothing in it was changed since it left the console.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from ..clock import iso_utc

MEDIA_FILES = {"snapshot": "snapshot.jpg", "clip": "clip.mp4"}


def evidence_zip(alarm: dict[str, Any], events: list[dict[str, Any]], audit: list[dict[str, Any]],
                 media: dict[str, Path], exported_by: str, now: float) -> bytes:
    files: dict[str, bytes] = {"alarm.json": _json(alarm), "audit.json": _json(audit)}
    for i, ev in enumerate(events, 1):
        files[f"events/{i:02d}-{ev.get('phase', 'event')}.json"] = _json(ev)
    for kind, path in media.items():
        files[MEDIA_FILES.get(kind, kind)] = path.read_bytes()
    manifest = {
        "alarm_id": alarm["id"], "event_id": alarm["event_id"], "exported_by": exported_by,
        "exported_at": iso_utc(now),
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                  for name, data in sorted(files.items())},
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr("manifest.json", _json(manifest))
    return buf.getvalue()


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, default=str).encode()
