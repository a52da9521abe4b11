"""Every console process's pages hear of what any of them stored (PostgreSQL LISTEN/NOTIFY).

With a shared subscription the alarm a page waits for may be stored by another process. After
each change a page may show, a process sends a notification on the channel `edge_central` that
carries its own id; a listener thread in every process wakes its pages when another's arrives (and
once after each (re)connect, for what it missed meanwhile). SQLite has no such channel: several
processes need PostgreSQL; one process needs nothing.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("edge_agent.central.peers")
CHANNEL = "edge_central"
RETRY_MAX_S = 30.0


class Peers:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.me = uuid.uuid4().hex
        self.enabled = engine.dialect.name == "postgresql"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def announce(self) -> None:
        """Tell the other processes; a database that is away just means their pages wait for the next one."""
        if not self.enabled:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.text("SELECT pg_notify(:channel, :me)"), {"channel": CHANNEL, "me": self.me})
        except SQLAlchemyError as exc:
            log.debug("change not announced to other consoles: %s", exc)

    def start(self, wake: Callable[[], None]) -> Peers:
        if self.enabled:
            self._thread = threading.Thread(target=self._listen, args=(wake,), name="central-peers", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _listen(self, wake: Callable[[], None]) -> None:
        import psycopg

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        delay = 1.0
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    delay = 1.0
                    wake()
                    while not self._stop.is_set():
                        if any(n.payload != self.me for n in conn.notifies(timeout=1.0)):
                            wake()
            except psycopg.Error as exc:
                log.warning("not hearing other consoles' changes (%s); retrying in %.0f s", type(exc).__name__, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_S)
