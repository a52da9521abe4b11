"""`edge-agent central serve`: store, ingest, workflow and the web console in one process.

The first run (no users yet) creates the user `admin` and prints its generated password once.
A database that is down at start is waited for (the ingest also waits, without acknowledging,
when it goes away later).
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from ..clock import Clock, SystemClock
from ..config.central import CentralConfig
from ..web.app import Web, WebOptions
from ..web.auth import hash_password
from .console import HERE, Console
from .fleet_pages import FleetPages
from .housekeeping import Housekeeper
from .ingest import Changes, Ingest
from .store import Store
from .workflow import Workflow

log = logging.getLogger("edge_agent.central.serve")
DB_RETRY_MAX_S = 30.0


@dataclass
class Centre:
    store: Store
    ingest: Ingest
    workflow: Workflow
    web: Web
    changes: Changes
    housekeeper: Housekeeper

    def start(self) -> Centre:
        self.ingest.start()
        self.housekeeper.start()
        return self

    def stop(self) -> None:
        self.housekeeper.stop()
        self.ingest.stop()
        self.store.close()


def open_store(cfg: CentralConfig) -> Store:
    """Open (and migrate) the database, waiting as long as it takes for one that is down at start."""
    delay = 1.0
    while True:
        try:
            return Store.open(cfg.database.url, cfg.workflow)
        except SQLAlchemyError as exc:
            log.warning("database not reachable (%s); retrying in %.0f s", type(getattr(exc, "orig", None) or exc).__name__,
                        delay)
            time.sleep(delay)
            delay = min(delay * 2, DB_RETRY_MAX_S)


def first_admin(store: Store, clock: Clock) -> None:
    if store.count_users() == 0:
        password = secrets.token_urlsafe(12)
        store.put_user("admin", "admin", hash_password(password), clock.now())
        print(f"central: created user admin; its password (shown this once): {password}", flush=True)


def build(cfg: CentralConfig, clock: Clock | None = None, client_id: str | None = None) -> Centre:
    """Everything but the HTTP server: tests drive the app in-process."""
    clock = clock or SystemClock()
    store = open_store(cfg)
    first_admin(store, clock)
    changes = Changes()
    # Its own persistent session: not the reference subscriber's (edge-central-<host>), which may run beside it.
    cid = client_id or cfg.mqtt.client_id or f"edge-console-{socket.gethostname()}"
    ingest = Ingest(cfg, store, changes, clock, cid)
    workflow = Workflow(store, cfg, ingest.publish, clock.now)

    def user(name: str) -> tuple[str, str] | None:
        row = store.get_user(name)
        return (row["role"], row["password_hash"]) if row else None

    web = Web(WebOptions("Command centre", {cfg.http.host, *cfg.http.allowed_hosts}, cfg.http.session_hours,
                         cfg.http.max_failed_logins, templates=(HERE / "templates",),
                         static=(("/static/console", HERE / "static"),)), user)
    Console(web, cfg, workflow, changes, clock)
    FleetPages(web, cfg, store.engine, clock)
    return Centre(store, ingest, workflow, web, changes, Housekeeper(store, workflow, cfg.media))


def http_server(centre: Centre, host: str, port: int) -> uvicorn.Server:
    # proxy_headers off: X-Forwarded-For must not choose the address the log-in limiter counts.
    return uvicorn.Server(uvicorn.Config(centre.web.app, host=host, port=port, log_level="warning",
                                         proxy_headers=False, timeout_graceful_shutdown=2))


def serve(cfg: CentralConfig, duration: float | None = None) -> int:
    centre = build(cfg).start()
    server = http_server(centre, cfg.http.host, cfg.http.port)
    if duration:
        threading.Timer(duration, lambda: setattr(server, "should_exit", True)).start()
    print(f"central: console on http://{cfg.http.listen}/ ; ingesting {cfg.mqtt.topic_prefix}/+/+/alarms "
          f"from {cfg.mqtt.host}:{cfg.mqtt.port}", flush=True)
    try:
        server.run()
    finally:
        centre.stop()
    return 0
