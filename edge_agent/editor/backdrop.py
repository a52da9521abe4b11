"""The picture the zones are drawn on, per camera, and the detections "test" shows on it.

In order: the running agent's latest analysed frame (with the agent's own detections), else a frame
read from the camera itself (its RTSP URL, video file or image, opened with its password settings),
else what the technician uploaded. A camera that cannot be reached keeps the last picture, and the
page says why. Detections on a picture the agent did not analyse come from a local detector,
loaded on the first "test" only.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np

from ..config.models import AgentConfig, Camera
from ..config.render import first_frame
from ..config.secrets import stream_urls
from ..errors import EdgeAgentError
from ..frames import Detections
from .agent_link import AgentLink

log = logging.getLogger(__name__)


@dataclass
class Backdrop:
    jpeg: bytes
    width: int
    height: int
    source: str  # "agent", "camera" or "upload"
    taken: float
    detections: Detections | None = None  # the agent's, for its own frame

    def describe(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "source": self.source,
                "taken": time.strftime("%H:%M:%S", time.localtime(self.taken))}


def _jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise EdgeAgentError("cannot encode the picture as JPEG")
    return buf.tobytes()


class Backdrops:
    def __init__(self, cfg: AgentConfig, agent: AgentLink, detector: Callable[[], Any]) -> None:
        self.cameras: dict[str, Camera] = {c.id: c for c in cfg.cameras}
        self.agent = agent
        self._detector = detector
        self._cache: dict[str, Backdrop] = {}
        self._lock = threading.Lock()

    def get(self, camera: str, refresh: bool = False) -> tuple[Backdrop | None, str | None]:
        """(picture or None, why the camera could not give a new one)."""
        with self._lock:
            cached = self._cache.get(camera)
        if cached is not None and not refresh:
            return cached, None
        got = self.agent.frame(camera)
        if got is not None:
            return self._keep(camera, Backdrop(got.jpeg, got.width, got.height, "agent", time.time(), got.detections)), None
        try:
            image = first_frame(stream_urls(self.cameras[camera])[0])
        except EdgeAgentError as exc:
            return cached, f"camera {camera} cannot be reached ({exc}); " + (
                "showing the last picture" if cached else "upload a picture of it instead")
        h, w = image.shape[:2]
        return self._keep(camera, Backdrop(_jpeg(image), w, h, "camera", time.time())), None

    def upload(self, camera: str, data: bytes) -> Backdrop:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        if image is None:
            raise EdgeAgentError("the upload is not a picture OpenCV can read (use JPEG or PNG)")
        h, w = image.shape[:2]
        return self._keep(camera, Backdrop(_jpeg(image), w, h, "upload", time.time()))

    def _keep(self, camera: str, shot: Backdrop) -> Backdrop:
        with self._lock:
            self._cache[camera] = shot
        return shot

    def detections(self, shot: Backdrop) -> tuple[Detections, str]:
        """(detections, whose): the agent's for its own frame, else the local detector's."""
        if shot.detections is not None:
            return shot.detections, "the running agent's detector"
        image = cv2.imdecode(np.frombuffer(shot.jpeg, np.uint8), cv2.IMREAD_COLOR)
        detector = self._detector()
        return detector.detect([image])[0], f"a local detector ({detector.provider})"
