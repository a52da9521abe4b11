"""The box's HTTP endpoint (`http.listen`, default 127.0.0.1:9108): Prometheus `/metrics`, `/health`
(the JSON of the health topic) and `/snapshot/<camera>.jpg` for technicians. Read-only GETs.

Every request's Host header must name this listener (a DNS-rebinding page in a browser on the
box cannot read it); off loopback every request needs the bearer token of `http.token_file`.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from ..config.models import Http
from .metrics import AgentCollector

log = logging.getLogger(__name__)
SNAPSHOT = re.compile(r"^/snapshot/([A-Za-z0-9_.-]+)\.jpg$")


class Endpoints:
    """What the server asks of the running process; each returns None while the agent (re)starts."""

    def __init__(self, report: Callable[[], dict[str, Any] | None], agent: Callable[[], Any]) -> None:
        self.report = report
        self.agent = agent

    def histogram(self):
        agent = self.agent()
        return None if agent is None else agent.health.detector_histogram()

    def snapshot(self, camera: str) -> bytes:
        agent = self.agent()
        if agent is None:
            raise LookupError("the agent is (re)starting; try again")
        return agent.cmd_snapshot({"camera": camera})[1]


class HttpEndpoint:
    def __init__(self, cfg: Http, endpoints: Endpoints) -> None:
        host, _, port = cfg.listen.rpartition(":")
        self.address = (host.strip("[]"), int(port))
        token = Path(cfg.token_file).read_text().splitlines()[0].strip() if cfg.token_file else None
        registry = CollectorRegistry(auto_describe=False)
        registry.register(AgentCollector(endpoints.report, endpoints.histogram))
        allowed = {f"{h}:{port}" for h in (host, "localhost", "127.0.0.1", "[::1]")}
        self.server = ThreadingHTTPServer(self.address, _handler(endpoints, registry, allowed, token))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    @classmethod
    def start_for(cls, cfg: Http, endpoints: Endpoints) -> "HttpEndpoint | None":
        """Started, or None (logged) when off or the port is taken: the cameras matter more than metrics."""
        if not cfg.enabled:
            return None
        try:
            endpoint = cls(cfg, endpoints)
        except OSError as exc:
            log.error("http.listen %s: %s; /metrics and /health are off", cfg.listen, exc.strerror or exc)
            return None
        endpoint._thread.start()
        log.info("serving /metrics, /health and /snapshot/<camera>.jpg on http://%s", cfg.listen)
        return endpoint

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(endpoints: Endpoints, registry: CollectorRegistry, allowed_hosts: set[str], token: str | None):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            if self.headers.get("Host", "") not in allowed_hosts:
                return self._send(403, b"unknown Host header\n", "text/plain")
            if token is not None and not hmac.compare_digest(self.headers.get("Authorization", ""), f"Bearer {token}"):
                return self._send(401, b"bearer token required\n", "text/plain")
            try:
                self._route()
            except Exception as exc:  # one bad request must not take the endpoint down
                log.exception("http %s failed", self.path)
                self._send(500, f"{type(exc).__name__}\n".encode(), "text/plain")

        def _route(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                return self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            if path == "/health":
                report = endpoints.report()
                if report is None:
                    return self._send(503, b'{"error": "starting"}\n', "application/json")
                return self._send(200, json.dumps(report, default=str).encode(), "application/json")
            match = SNAPSHOT.match(path)
            if match:
                try:
                    return self._send(200, endpoints.snapshot(match.group(1)), "image/jpeg")
                except (LookupError, ValueError) as exc:
                    return self._send(404, f"{exc}\n".encode(), "text/plain")
            self._send(404, b"try /metrics, /health or /snapshot/<camera>.jpg\n", "text/plain")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # scrapes every 15 s would flood the journal
            log.debug("http %s", format % args)

    return Handler
