"""A GPU execution provider that fails, at start or while running, is replaced by the CPU: the
site keeps its detection, health says `gpu_fallback`. This machine has no GPU, so the GPU's
failure is simulated (the one fake here); the CPU run, the model and the picture are real."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from edge_agent.detect.common import CPU, DetectorOptions
from edge_agent.detect.registry import load_detector

PERSON = Path(__file__).resolve().parents[1] / "data" / "person.jpg"


class DeviceLost:
    """A session whose GPU died: every run fails as CUDA does after an illegal memory access."""

    def run(self, *args, **kw):
        raise RuntimeError("CUDA failure 700: an illegal memory access was encountered")


def people(dets) -> int:
    return int(sum(1 for name in dets.class_name if name == "person"))


def test_a_gpu_that_fails_while_running_falls_back_to_the_cpu_and_health_says_so(tmp_path):
    from edge_agent.alarms.sink import FolderSink
    from edge_agent.app import LiveAgent
    from edge_agent.config.models import AgentConfig, Camera, Device, Site

    det = load_detector("yolov3-tiny", DetectorOptions())
    det.session, det.provider = DeviceLost(), "CUDAExecutionProvider"
    image = cv2.imread(str(PERSON))
    assert people(det.detect([image])[0]) >= 1  # the batch that met the failure is not lost
    assert det.provider == CPU
    cfg = AgentConfig(site=Site(id="s"), device=Device(id="d"), mqtt={"enabled": False},
                      detector={"providers": ["cuda", "cpu"]}, cameras=[Camera(id="c", url=str(PERSON))],
                      alarms={"store_dir": str(tmp_path / "media")})
    sink = FolderSink(tmp_path / "events")
    agent = LiveAgent(cfg, {}, det, sink)
    agent.supervise()
    detector = agent.health.snapshot()["detector"]
    assert detector["gpu_fallback"] is True and detector["provider"] == CPU
    sink.close()


def test_a_gpu_provider_that_fails_to_start_falls_back_to_the_cpu(monkeypatch):
    import onnxruntime as ort

    real = ort.InferenceSession

    def gpu_broken(path, sess_options=None, providers=()):
        if any("CUDA" in (p[0] if isinstance(p, tuple) else p) for p in providers):
            raise RuntimeError("CUDA driver version is insufficient for CUDA runtime version")
        return real(path, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", CPU])
    monkeypatch.setattr(ort, "InferenceSession", gpu_broken)
    det = load_detector("yolov3-tiny", DetectorOptions(providers=["cuda", "cpu"]))
    assert det.provider == CPU
    assert people(det.detect([cv2.imread(str(PERSON))])[0]) >= 1


def test_a_cpu_failure_is_not_hidden():
    det = load_detector("yolov3-tiny", DetectorOptions())
    det.session = DeviceLost()
    with pytest.raises(RuntimeError):
        det.detect([cv2.imread(str(PERSON))])
