"""The editor's way to the running agent on this box: its loopback HTTP endpoint (ops/http.py).

`frame` fetches the latest analysed frame with the agent's own detections (so the editor's "test"
does not start a second detector on the box's two cores); `apply` asks the agent to swap one
camera's zones, with the control token the agent wrote at start (readable by root and the agent's
user only). Both answer None when no agent runs, so the editor falls back to the camera itself.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config.models import Http
from ..frames import Detections

log = logging.getLogger(__name__)
FRAME_TIMEOUT_S = 6.0  # the agent waits up to 3 s for a fresh frame of a quiet camera
APPLY_TIMEOUT_S = 10.0


@dataclass
class AgentFrame:
    jpeg: bytes
    width: int
    height: int
    detections: Detections


class AgentLink:
    def __init__(self, http: Http) -> None:
        self.http = http
        self.base = f"http://{http.listen}"

    def _request(self, path: str, method: str = "GET", headers: dict[str, str] | None = None,
                 timeout: float = FRAME_TIMEOUT_S) -> tuple[int, dict[str, Any]] | None:
        if not self.http.enabled:
            return None
        req = urllib.request.Request(self.base + path, method=method, data=b"" if method == "POST" else None,
                                     headers=dict(headers or {}))
        if self.http.token_file:
            token = Path(self.http.token_file).read_text().splitlines()[0].strip()
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read())
            except ValueError:
                return exc.code, {"error": f"HTTP {exc.code}"}
        except (OSError, ValueError) as exc:  # no agent running (refused), or not ours
            log.debug("agent at %s: %s", self.base, exc)
            return None

    def frame(self, camera: str) -> AgentFrame | None:
        got = self._request(f"/frame/{camera}.json")
        if got is None or got[0] != 200:
            return None
        body = got[1]
        dets = body["detections"]
        return AgentFrame(base64.b64decode(body["jpeg"]), int(body["width"]), int(body["height"]), Detections(
            xyxy=np.array([d["xyxy"] for d in dets], np.float32).reshape(-1, 4),
            confidence=np.array([d["score"] for d in dets], np.float32),
            class_id=np.zeros(len(dets), np.int32),
            data={"class_name": np.array([d["label"] for d in dets], dtype=object)}))

    def apply(self, camera: str) -> tuple[bool, str]:
        """(applied, what the page shows)."""
        idle = f"no running agent answered at {self.base}: it reads the file when it starts"
        try:
            token = Path(self.http.control_token_file).read_text().strip()
        except OSError as exc:
            if self._request("/health", timeout=2.0) is None:
                return False, idle
            return False, (f"the running agent did not apply it: its control token cannot be read ({exc.strerror}: "
                           f"{self.http.control_token_file}); run the editor as the agent's user or root, from "
                           "the folder the agent runs in")
        got = self._request(f"/zones/{camera}/apply", "POST", {"X-Control-Token": token}, APPLY_TIMEOUT_S)
        if got is None:
            return False, idle
        code, body = got
        if code == 200 and body.get("applied"):
            return True, f"applied to the running agent: camera {camera} now has {', '.join(body['zones'] + body['lines']) or 'no zones'}"
        return False, f"the running agent did not apply it: {body.get('error') or f'HTTP {code}'}"
