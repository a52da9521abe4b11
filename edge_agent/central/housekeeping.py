"""What the console does on its own, once a minute: re-enable shelved zones whose time is up, and
keep the media folder within `media.max_age_days` and `media.max_gb` (oldest first). Events, alarms
and the audit trail are never deleted; a pruned clip or snapshot shows as "not received"."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from ..config.central import MediaStore
from . import chunks
from .schema import media
from .store import Store
from .workflow import Workflow

log = logging.getLogger("edge_agent.central.housekeeping")
INTERVAL_S = 60.0


def prune_media(store: Store, cfg: MediaStore, now: float) -> int:
    """Delete media files (and their rows) past the age limit, then the oldest past the size limit; and
    the parts of media that never completed, past the age limit."""
    folder = Path(cfg.dir)
    with store.engine.begin() as conn:
        chunks.prune(conn, now - cfg.max_age_days * 86400)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(media.c.event_id, media.c.kind, media.c.size, media.c.path, media.c.received_at)
                            .order_by(media.c.received_at)).all()
    total = sum(r.size for r in rows)
    doomed = []
    for r in rows:
        if r.received_at < now - cfg.max_age_days * 86400 or total > cfg.max_gb * 1e9:
            doomed.append(r)
            total -= r.size
    for r in doomed:
        with store.engine.begin() as conn:
            conn.execute(media.delete().where(media.c.event_id == r.event_id, media.c.kind == r.kind))
        (folder / r.path).unlink(missing_ok=True)
    if doomed:
        log.info("media retention: deleted %d file(s), %.1f MB left", len(doomed), total / 1e6)
    return len(doomed)


class Housekeeper:
    def __init__(self, store: Store, workflow: Workflow, cfg: MediaStore, interval_s: float = INTERVAL_S) -> None:
        self.store, self.workflow, self.cfg, self.interval_s = store, workflow, cfg, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="central-housekeeping", daemon=True)

    def start(self) -> Housekeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def run_once(self) -> None:
        try:
            if n := self.workflow.reenable_due_zones():
                log.info("re-enabled %d shelved zone(s)", n)
            prune_media(self.store, self.cfg, self.workflow.now())
        except SQLAlchemyError as exc:
            log.warning("housekeeping skipped: database unavailable (%s)", type(exc).__name__)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.run_once()
