"""Prometheus metrics, computed at scrape time from the same report the health topic carries
(nothing is counted twice, nothing is added to the hot path)."""

from __future__ import annotations

from typing import Any, Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

STAGES = {"decoded": "frames_in", "analysed": "frames_analysed", "dropped": "frames_dropped"}


class AgentCollector(Collector):
    """`report()` -> the health report (run.py) or None while the agent (re)starts;
    `histogram()` -> Health.detector_histogram() of the running agent."""

    def __init__(self, report: Callable[[], dict[str, Any] | None],
                 histogram: Callable[[], tuple[list[tuple[float, int]], float] | None]) -> None:
        self.report = report
        self.histogram = histogram

    def collect(self) -> Iterator[Metric]:
        rep = self.report()
        if rep is None:
            return
        yield from _cameras(rep.get("cameras", {}))
        hist = self.histogram()
        if hist is not None:
            buckets, total = hist
            h = HistogramMetricFamily("edge_agent_detector_seconds", "Detector inference time per batch")
            h.add_metric([], [(_le(b), n) for b, n in buckets], total)
            yield h
        yield from _mqtt(rep.get("mqtt"))
        disk = GaugeMetricFamily("edge_agent_disk_free_bytes", "Free bytes where the outbox and the media store live",
                                 labels=["store"])
        for store in ("outbox", "store"):
            if f"{store}_free_bytes" in rep.get("disk", {}):
                disk.add_metric([store], rep["disk"][f"{store}_free_bytes"])
        yield disk


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def _cameras(cams: dict[str, Any]) -> Iterator[Metric]:
    up = GaugeMetricFamily("edge_agent_camera_up", "1 while the camera delivers frames", labels=["camera"])
    frames = CounterMetricFamily("edge_agent_frames", "Frames per camera and stage", labels=["camera", "stage"])
    fps = GaugeMetricFamily("edge_agent_camera_fps", "Frames per second over the last 10 s", labels=["camera", "stage"])
    alarms = CounterMetricFamily("edge_agent_alarms", "Alarms started", labels=["camera", "type"])
    steady = GaugeMetricFamily("edge_agent_camera_steady_motion", "Share of the zones' region the motion gate "
                               "learned as moving steadily (water, rain)", labels=["camera"])
    for cam, h in cams.items():
        up.add_metric([cam], 1.0 if h["state"] == "online" else 0.0)
        for stage, key in STAGES.items():
            frames.add_metric([cam, stage], h["counters"].get(key, 0))
        fps.add_metric([cam, "decoded"], h["fps_in"])
        fps.add_metric([cam, "analysed"], h["fps_analysed"])
        if "effective_fps" in h:  # the detect fps the overload policy lets this camera have now
            fps.add_metric([cam, "effective"], h["effective_fps"])
        if "steady_motion" in h:
            steady.add_metric([cam], h["steady_motion"])
        for type_, n in h.get("alarms", {}).items():
            alarms.add_metric([cam, type_], n)
    yield from (up, frames, fps, alarms, steady)


def _mqtt(stats: dict[str, Any] | None) -> Iterator[Metric]:
    if stats is None:  # MQTT off: alarms go to the local store
        return
    yield GaugeMetricFamily("edge_agent_mqtt_connected", "1 while connected to the broker",
                            value=1.0 if stats["connected"] else 0.0)
    yield GaugeMetricFamily("edge_agent_outbox_messages", "Messages waiting in the outbox", value=stats["outbox_depth"])
    yield GaugeMetricFamily("edge_agent_outbox_oldest_seconds", "Age of the oldest message in the outbox",
                            value=stats["outbox_oldest_s"])
