"""The live agent: every camera of one config wired to one detector and one sink; start, supervise, stop.

Threads: one decode thread per camera (sources/rtsp.py, or a paced file for demo cameras), one
detector thread shared by all cameras (detect/batcher.py), one analytics thread that runs each
camera's `CameraPipeline` in frame order, the MQTT pump, and the main thread supervising
(watchdogs, camera_offline, clips due on quiet cameras, health). SIGTERM/SIGINT stop the
sources, let the detector and analytics finish what they hold, end alarms in progress, flush
the outbox, and exit 0 (the process around it is run.py).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .alarms.event import Event
from .alarms.sink import EventSink
from .alarms.snapshot import annotate, encode_jpeg
from .clock import Clock, SystemClock, iso_utc
from .config.models import AgentConfig, Camera, ZoneFile
from .detect.batcher import DetectorBatcher
from .detect.motion import SceneWatch
from .frames import Detections, Frame
from .health import Health, OfflineMonitor
from .patrol.checkin import PatrolStage
from .pipeline import CameraPipeline
from .redact import redact_url
from .rules.engine import EventContext
from .sources.packets import PacketRing
from .sources.rtsp import RtspSource
from .sources.base import PacedFileSource

log = logging.getLogger("edge_agent.app")
SNAPSHOT_WAIT_S = 3.0  # a snapshot command waits this long for a fresh frame, then sends the last one


@dataclass
class CameraRuntime:
    camera: Camera
    ctx: EventContext
    ring: PacketRing
    pipeline: CameraPipeline
    source: Any  # RtspSource | PacedFileSource
    watch: SceneWatch | None = None
    tamper_event: Event | None = None


@dataclass
class LiveStats:
    latencies: list[float] = field(default_factory=list)  # seconds from frame to alarm delivered
    events: int = 0


class LiveAgent:
    """Every camera of one config, one shared detector, one sink."""

    def __init__(self, cfg: AgentConfig, zones: dict[str, ZoneFile], detector, sink: EventSink,
                 clock: Clock | None = None, health: Health | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.health = health or Health(self.clock)
        self.sink = sink
        self.stats = LiveStats()
        self.cameras: dict[str, CameraRuntime] = {}
        self._results: queue.Queue[tuple[Frame, Detections] | None] = queue.Queue(maxsize=256)
        self.batcher = DetectorBatcher(detector, self._on_result, self.health,
                                       cfg.detector.max_batch, cfg.detector.max_wait_ms)
        self._analytics = threading.Thread(target=self._analyse_loop, name="analytics", daemon=True)
        self.analysed = 0  # results the analytics thread has taken: its progress, for the watchdog
        run_id = f"{self.clock.now():.0f}"
        for cam in cfg.cameras:
            if cam.enabled:
                zf = zones.get(cam.id)
                self.cameras[cam.id] = self._build(cam, zf.zones if zf else [], run_id)
        # check-ins at this box's patrol points ride the cameras' pipelines; overdue runs on the clock
        self.patrol = PatrolStage.from_config(cfg, self.clock, sink, lambda c: self.health.state(c) == "online",
                                              lambda c: self.cameras[c].ctx)
        for cid, monitor in (self.patrol.monitors if self.patrol else {}).items():
            self.cameras[cid].pipeline.patrol = monitor
        self.offline = OfflineMonitor(
            self.health, self._emit_plain, lambda cid: self.cameras[cid].ctx,
            {cid: rt.camera.offline_alarm_s for cid, rt in self.cameras.items()},
        )

    def _build(self, cam: Camera, zones: list, run_id: str) -> CameraRuntime:
        a = self.cfg.alarms
        ring = PacketRing(a.pre_roll_s + a.max_clip_s + a.post_roll_s + 5.0)
        location = cam.location.model_dump() if cam.location else None
        ctx = EventContext(self.cfg.site.id, self.cfg.device.id, cam.id, self.cfg.site.timezone, location, run_id)
        pipeline = CameraPipeline(ctx, zones, a, self.sink, ring)
        pipeline.alarms.keep_delivered = False  # live: count, do not keep every event in memory
        watch = SceneWatch(cam.idle_interval_s, active=pipeline.busy)
        if cam.url.startswith(("rtsp://", "rtsps://")):
            source = RtspSource(
                cam.id, cam.url, cam.detect_fps, self.batcher.submit, self.health, ring, self.clock,
                substream_url=cam.substream_url, stall_timeout_s=cam.stall_timeout_s, watch=watch,
                on_tamper=self._on_tamper,
            )
        else:
            source = PacedFileSource(cam.id, cam.url, cam.detect_fps, self.batcher.submit, self.health, ring,
                                     self.clock, loop=cam.loop, watch=watch, on_tamper=self._on_tamper)
        return CameraRuntime(cam, ctx, ring, pipeline, source, watch)

    # --- running ---------------------------------------------------------------------------
    def start(self) -> None:
        self._analytics.start()
        self.batcher.start()
        for rt in self.cameras.values():
            log.info("camera %s: starting %s", rt.camera.id, redact_url(rt.camera.url))
            rt.source.start()

    def supervise(self) -> None:
        """One supervision step; call about twice a second. A failing step is logged and the rest
        still run: this is the main loop, and an exception here would end the whole agent."""
        for rt in self.cameras.values():
            self._guarded(f"camera {rt.camera.id}", self._supervise_camera, rt)
        self._guarded("camera_offline check", self.offline.check)
        if self.patrol is not None:
            self._guarded("patrol overdue check", self.patrol.check)

    def _supervise_camera(self, rt: CameraRuntime) -> None:
        check = getattr(rt.source, "check_watchdog", None)
        if check:
            check()
        latest = rt.ring.latest_time
        if latest is not None:
            for ev in rt.pipeline.tick(latest):
                self._count(ev, None)

    def progress(self) -> dict[str, tuple[bool, int, int]]:
        """Per worker thread: (alive, items done, items waiting); judged by ops/progress.py."""
        return {
            "detector": (self.batcher.alive, self.batcher.batches + self.batcher.errors, self.batcher.waiting()),
            "analytics": (self._analytics.is_alive(), self.analysed, self._results.qsize()),
        }

    def _guarded(self, what: str, step: Any, *args: Any) -> None:
        try:
            step(*args)
        except Exception:
            log.exception("supervision: %s failed; the agent carries on", what)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sources, drain detector and analytics, end alarms in progress."""
        for rt in self.cameras.values():  # all at once: a camera stuck in a slow open must not delay the rest
            rt.source.request_stop()
        deadline = time.monotonic() + timeout
        for rt in self.cameras.values():
            if not rt.source.stop(max(0.1, deadline - time.monotonic())):
                log.warning("camera %s: decode thread did not stop in %.0f s", rt.camera.id, timeout)
        self.batcher.stop(timeout)
        self._results.put(None)
        self._analytics.join(timeout)
        now = self.clock.now()
        for rt in self.cameras.values():
            media = rt.ring.latest_time or 0.0
            for ev in rt.pipeline.close(now, media):
                self._count(ev, None)
            if rt.tamper_event is not None:
                self._end_tamper(rt, "shutdown")
        self.offline.close()

    # --- analytics -------------------------------------------------------------------------
    def _on_result(self, frame: Frame, dets: Detections) -> None:
        try:
            self._results.put((frame, dets), timeout=5)
        except queue.Full:
            self.health.count(frame.camera, "frames_dropped")

    def _analyse_loop(self) -> None:
        while True:
            item = self._results.get()
            if item is None:
                return
            self.analysed += 1
            frame, dets = item
            rt = self.cameras.get(frame.camera)
            if rt is None:
                continue
            try:
                for ev in rt.pipeline.process(frame, dets):
                    self._count(ev, frame)
            except Exception:  # one camera's bad frame must not stop the others' analysis
                log.exception("camera %s: pipeline failed on frame %d", frame.camera, frame.seq)

    def _count(self, ev: Event, frame: Frame | None) -> None:
        self.stats.events += 1
        if ev.phase == "start":
            self.health.alarm(ev.camera, ev.type)
        if frame is not None and ev.phase == "start":
            self.stats.latencies.append(self.clock.now() - frame.wall_time)
            log.info("camera %s: %s %s in %s (%s) %s", ev.camera, ev.type, ev.phase, ev.zone, ev.label, ev.event_id)

    def _emit_plain(self, ev: Event, media: dict[str, bytes] | None = None) -> None:
        try:
            self.sink.emit(ev, media or {})
            self._count(ev, None)
            log.warning("camera %s: %s %s", ev.camera, ev.type, ev.phase)
        except Exception:
            log.exception("camera %s: could not deliver %s", ev.camera, ev.type)

    # --- tampering -------------------------------------------------------------------------
    def _on_tamper(self, camera: str, reason: str | None, frame: Frame) -> None:
        rt = self.cameras[camera]
        if reason is None:
            if rt.tamper_event is not None:
                self._end_tamper(rt, "restored")
            return
        if rt.tamper_event is not None:
            return
        ctx, t = rt.ctx, iso_utc(frame.wall_time)
        ev = Event(
            event_id=Event.make_id(ctx.site, ctx.device, camera, "camera_tampered", f"{frame.media_time:.3f}", ctx.run_id),
            phase="start", type="camera_tampered", site=ctx.site, device=ctx.device, camera=camera, start=t, time=t,
            media_time=round(frame.media_time, 3), location=ctx.location, details={"reason": reason},
        )
        rt.tamper_event = ev
        media = {"snapshot": encode_jpeg(frame.image, self.cfg.alarms.snapshot_quality)} if frame.image is not None else {}
        self._emit_plain(ev, media)

    def _end_tamper(self, rt: CameraRuntime, why: str) -> None:
        ev, rt.tamper_event = rt.tamper_event, None
        now = iso_utc(self.clock.now())
        self._emit_plain(ev.next_phase("end", end=now, time=now, details={**ev.details, "end_reason": why}))

    # --- commands --------------------------------------------------------------------------
    def _runtime(self, args: dict[str, Any]) -> CameraRuntime:
        cam = args.get("camera")
        if cam not in self.cameras:
            raise ValueError(f"unknown camera {cam!r}; known: {sorted(self.cameras)}")
        return self.cameras[cam]

    def cmd_snapshot(self, args: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """The next analysed frame, annotated; a quiet camera is analysed only every idle interval,
        so its gate is opened for one frame rather than answering with a picture that old."""
        rt = self._runtime(args)
        before = rt.pipeline.last
        if rt.watch is not None:
            rt.watch.force_next()
        deadline = time.monotonic() + SNAPSHOT_WAIT_S
        while rt.pipeline.last is before and time.monotonic() < deadline:
            time.sleep(0.02)
        last = rt.pipeline.last
        if last is None or last[0].image is None:
            raise ValueError(f"camera {rt.camera.id} has no analysed frame yet (state {self.health.state(rt.camera.id)})")
        frame, dets = last
        when = iso_utc(frame.wall_time)
        image = annotate(frame.image, dets, rt.pipeline.zones, caption=f"{rt.camera.id} {when}")
        jpeg = encode_jpeg(image, self.cfg.alarms.snapshot_quality)
        return {"camera": rt.camera.id, "frame_time": when, "size": len(jpeg)}, jpeg

    def cmd_zone(self, args: dict[str, Any]) -> dict[str, Any]:
        rt = self._runtime(args)
        enabled = args.get("enabled")
        if not isinstance(enabled, bool):
            raise ValueError("args.enabled must be true or false")
        if not rt.pipeline.set_zone_enabled(str(args.get("zone")), enabled):
            raise ValueError(f"camera {rt.camera.id} has no zone {args.get('zone')!r}")
        return {"camera": rt.camera.id, "zone": args.get("zone"), "enabled": enabled}
