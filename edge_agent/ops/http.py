"""The box's HTTP endpoint (`http.listen`, default 127.0.0.1:9108): Prometheus `/metrics`, `/health`
(the JSON of the health topic) and `/snapshot/<camera>.jpg` for technicians; for the zone editor
`/frame/<camera>.json` (the latest analysed frame, unannotated, with its detections, so the editor's
"test" needs no second detector) and `POST /zones/<camera>/apply` (re-read that camera's zone file
and swap its zones in place).

Every request's Host header must name this listener (a DNS-rebinding page in a browser on the
box cannot read it); off loopback every request needs the bearer token of `http.token_file`.
The one POST changes what the agent does, so it also needs the control token: a random value the
agent writes at each start to `http.control_token_file` (mode 0600), sent as `X-Control-Token`.
Any local process can reach loopback; only root and the agent's own user can read that file, the
same people who may write the zone files. (Not the MQTT command secret: most sites have none, and
the editor would have to hold it.)
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from ..alarms.snapshot import encode_jpeg
from ..config.models import Http
from ..errors import EdgeAgentError
from .metrics import AgentCollector

log = logging.getLogger(__name__)
SNAPSHOT = re.compile(r"^/snapshot/([A-Za-z0-9_.-]+)\.jpg$")
FRAME = re.compile(r"^/frame/([A-Za-z0-9_.-]+)\.json$")
APPLY = re.compile(r"^/zones/([A-Za-z0-9_.-]+)/apply$")


class Endpoints:
    """What the server asks of the running process; each returns None while the agent (re)starts."""

    def __init__(self, report: Callable[[], dict[str, Any] | None], agent: Callable[[], Any],
                 apply_zones: Callable[[str], dict[str, Any]] | None = None) -> None:
        self.report = report
        self.agent = agent
        self.apply_zones = apply_zones

    def histogram(self):
        agent = self.agent()
        return None if agent is None else agent.health.detector_histogram()

    def snapshot(self, camera: str) -> bytes:
        agent = self.agent()
        if agent is None:
            raise LookupError("the agent is (re)starting; try again")
        return agent.cmd_snapshot({"camera": camera})[1]

    def frame(self, camera: str) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body): the latest analysed frame as JPEG (base64) with its detections."""
        agent = self.agent()
        if agent is None:
            return 503, {"error": "the agent is (re)starting; try again"}
        try:
            frame, dets = agent.analysed_frame(camera)
        except ValueError as exc:
            return 404, {"error": str(exc)}
        return 200, {"camera": camera, "frame_time": frame.wall_time, "width": frame.width, "height": frame.height,
                "jpeg": base64.b64encode(encode_jpeg(frame.image, 90)).decode(),
                "detections": [{"label": str(dets.class_name[i]), "score": float(dets.confidence[i]),
                                "xyxy": [float(v) for v in dets.xyxy[i]]} for i in range(len(dets))]}

    def apply(self, camera: str, given: str, control: str) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of the zone editor's per-camera apply, with the control token checked."""
        if not hmac.compare_digest(given, control):
            log.warning("refused a zone apply for %s: missing or wrong control token", camera)
            return 403, {"applied": False, "error": "control token required (X-Control-Token)"}
        if self.apply_zones is None:
            return 404, {"applied": False, "error": "this process applies no zones"}
        try:
            return 200, {"applied": True, **self.apply_zones(camera)}
        except (LookupError, ValueError, EdgeAgentError) as exc:
            return 409, {"applied": False, "error": str(exc)}
        except TimeoutError:  # the job is queued: it runs when the analytics thread gets to it
            return 504, {"applied": False, "error": "the agent was too busy to confirm; it applies the zones when "
                         "its analytics thread gets to them"}


class HttpEndpoint:
    def __init__(self, cfg: Http, endpoints: Endpoints) -> None:
        host, _, port = cfg.listen.rpartition(":")
        self.address = (host.strip("[]"), int(port))
        token = Path(cfg.token_file).read_text().splitlines()[0].strip() if cfg.token_file else None
        registry = CollectorRegistry(auto_describe=False)
        registry.register(AgentCollector(endpoints.report, endpoints.histogram))
        allowed = {f"{h}:{port}" for h in (host, "localhost", "127.0.0.1", "[::1]")}
        control = write_control_token(Path(cfg.control_token_file)) if endpoints.apply_zones else None
        self.server = ThreadingHTTPServer(self.address, _handler(endpoints, registry, allowed, token, control))
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


def write_control_token(path: Path) -> str:
    """A new random control token in `path`, readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.unlink(missing_ok=True)  # created anew, so an old file's looser mode does not carry over
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def _refusal(headers: Any, allowed_hosts: set[str], token: str | None) -> tuple[int, bytes] | None:
    """Why a request is refused (status, text), or None: a Host not ours, a missing bearer token."""
    if headers.get("Host", "") not in allowed_hosts:
        return 403, b"unknown Host header\n"
    if token is not None and not hmac.compare_digest(headers.get("Authorization", ""), f"Bearer {token}"):
        return 401, b"bearer token required\n"
    return None


def _handler(endpoints: Endpoints, registry: CollectorRegistry, allowed_hosts: set[str], token: str | None,
             control: str | None):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            self._serve(self._route)

        def do_POST(self) -> None:  # noqa: N802
            self._serve(self._post)

        def _serve(self, route: Callable[[], None]) -> None:
            refused = _refusal(self.headers, allowed_hosts, token)
            if refused is not None:
                return self._send(*refused, "text/plain")
            try:
                route()
            except Exception as exc:  # one bad request must not take the endpoint down
                log.exception("http %s failed", self.path)
                self._send(500, f"{type(exc).__name__}\n".encode(), "text/plain")

        def _post(self) -> None:
            match = APPLY.match(self.path.split("?", 1)[0])
            if match is None or control is None:
                return self._send(404, b"only POST /zones/<camera>/apply\n", "text/plain")
            self._json(*endpoints.apply(match.group(1), self.headers.get("X-Control-Token", ""), control))

        def _route(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                return self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            if path == "/health":
                report = endpoints.report()
                if report is None:
                    return self._send(503, b'{"error": "starting"}\n', "application/json")
                return self._send(200, json.dumps(report, default=str).encode(), "application/json")
            match = FRAME.match(path)
            if match:
                return self._json(*endpoints.frame(match.group(1)))
            match = SNAPSHOT.match(path)
            if match:
                try:
                    return self._send(200, endpoints.snapshot(match.group(1)), "image/jpeg")
                except (LookupError, ValueError) as exc:
                    return self._send(404, f"{exc}\n".encode(), "text/plain")
            self._send(404, b"try /metrics, /health or /snapshot/<camera>.jpg\n", "text/plain")

        def _json(self, code: int, body: dict[str, Any]) -> None:
            self._send(code, json.dumps(body).encode(), "application/json")

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
