"""Per-point patrol state that must survive a restart: last check-in and when the interval began.

A small JSON file replaced atomically (write a temp file, fsync, rename), so a power cut leaves
either the old or the new state, never half of one. It is written only when something changes
(a check-in, a window opening, an overdue alarm raised or cleared): a few writes an hour.
Times are wall-clock epoch seconds: the monotonic clock restarts with the process, so wall time
is the only thing a restarted agent can rebase its durations on.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
VERSION = 1


@dataclass
class PointState:
    ref_wall: float | None = None  # when the current interval began (check-in or window opening)
    last_checkin: float | None = None  # wall time of the last check-in
    member: str | None = None
    badge: int | None = None
    overdue_id: str | None = None  # event_id of the open patrol_overdue alarm
    overdue_since: float | None = None


@dataclass
class PatrolStore:
    """Point id -> PointState, loaded from and saved to `path` (None: memory only)."""

    path: Path | None
    points: dict[str, PointState] = field(default_factory=dict)
    save_errors: int = 0  # saves the disk refused (monitoring went on from memory)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, path: str | Path | None) -> PatrolStore:
        store = cls(Path(path) if path else None)
        if store.path is None or not store.path.exists():
            return store
        try:
            raw = json.loads(store.path.read_text(encoding="utf-8"))
            for pid, st in raw.get("points", {}).items():
                store.points[pid] = PointState(**{k: v for k, v in st.items() if k in PointState.__dataclass_fields__})
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            # A corrupt file must not stop patrol monitoring: start fresh, loudly.
            log.error("patrol state %s unreadable (%s); starting with no check-in history", store.path, exc)
            store.points.clear()
        return store

    def get(self, point: str) -> PointState:
        with self._lock:
            return self.points.setdefault(point, PointState())

    def save(self) -> bool:
        """Write the file; False (logged) when the disk refuses. Monitoring goes on from memory:
        a full disk must not stop overdue alarms, only their survival of a restart."""
        if self.path is None:
            return True
        with self._lock:
            points = {k: asdict(v) for k, v in sorted(self.points.items())}
        body: dict[str, Any] = {"version": VERSION, "points": points}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(body, fh, separators=(",", ":"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            self.save_errors += 1
            log.error("patrol state %s not saved (%s); due times are kept in memory only", self.path,
                      exc.strerror or exc)
            return False
        return True
