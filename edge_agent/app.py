"""The live agent: every camera of one config wired to one detector and one sink; start, supervise, stop.

Threads and what each owns:
- one decode thread per camera (sources/rtsp.py, or a paced file for demo cameras): its stream,
  its `FrameGate` (sampling, motion gate, tamper watch);
- the detector thread (detect/batcher.py): the detector, the latest-frame slots;
- the analytics thread: every camera's `CameraPipeline` (tracker, rules, alarms, tamper, patrol
  check-ins). Other threads hand it work through one queue (`_work`): detection results, tamper
  changes, clip ticks, commands;
- the delivery thread (alarms/delivery.py): the sink; every event leaves through it;
- the main thread (run.py) calls `supervise` (watchdogs, camera_offline, patrol overdue).
SIGTERM/SIGINT stop the sources, let the detector and analytics finish what they hold, end alarms
in progress, deliver what is left and exit 0 (the process around it is run.py).
"""

from __future__ import annotations

import concurrent.futures
import collections
import functools
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable

from .alarms.camera import OfflineMonitor
from .alarms.degraded import DegradedMonitor
from .alarms.delivery import Delivery, Item
from .alarms.reserve import reserve_for
from .alarms.event import Event, EventContext
from .alarms.logline import alarm_line
from .alarms.sink import EventSink
from .alarms.snapshot import annotate, encode_jpeg
from .clock import Clock, SystemClock, iso_utc, site_time
from .config.models import AgentConfig, Camera, ZoneFile
from .config.secrets import stream_urls
from .detect.batcher import DetectorBatcher
from .detect.common import uses_gpu
from .detect.motion import SceneWatch
from .detect.overload import OverloadPolicy
from .detect.tiles import Tiling, input_size_of
from .frames import Detections, Frame
from .health import Health
from .patrol.checkin import PatrolStage
from .patrol.overdue import StatusPublisher
from .pipeline import CameraPipeline
from .redact import redact_url
from .sources.base import LiveSource, PacedFileSource
from .sources.decode import detects_on_substream
from .sources.gate import FrameGate, idle_phase
from .sources.packets import PacketRing
from .sources.rtsp import RtspSource

log = logging.getLogger("edge_agent.app")
SNAPSHOT_WAIT_S = 3.0  # a snapshot command waits this long for a fresh frame, then sends the last one
COMMAND_WAIT_S = 5.0  # a command that needs the analytics thread waits this long for it


@dataclass
class CameraRuntime:
    camera: Camera
    ring: PacketRing
    pipeline: CameraPipeline
    gate: FrameGate
    source: LiveSource


class LiveAgent:
    """Every camera of one config, one shared detector, one delivery to one sink."""

    def __init__(self, cfg: AgentConfig, zones: dict[str, ZoneFile], detector, sink: EventSink,
                 clock: Clock | None = None, health: Health | None = None,
                 publish_status: StatusPublisher | None = None,
                 on_detections: Callable[[Frame, Detections], None] | None = None) -> None:
        self.cfg = cfg
        # sees every analysed frame's detections before its pipeline does, on the analytics thread
        # (the evaluation harness scores them per frame, as replay's `on_detections`)
        self.on_detections = on_detections
        self.clock = clock or SystemClock()
        self.health = health or Health(self.clock)
        self.delivery = Delivery(sink, self.clock, on_delivered=self._delivered, reserve=reserve_for(sink))
        self.cameras: dict[str, CameraRuntime] = {}
        self._work: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=256)
        self.policy = OverloadPolicy(cfg.detector.max_motion_gap_s)
        self.tiling = Tiling(input_size_of(detector), self.policy)
        # a call lasts at most half the shortest frame interval: an urgent frame that comes
        # during one is taken before the camera's next frame replaces it
        fastest = max((c.detect_fps for c in cfg.cameras if c.enabled), default=5.0)
        self.batcher = DetectorBatcher(detector, self._on_result, self.health, cfg.detector.max_batch,
                                       cfg.detector.max_wait_ms, policy=self.policy, tiling=self.tiling,
                                       call_budget_s=0.5 / fastest)
        self._analytics = threading.Thread(target=self._analyse_loop, name="analytics", daemon=True)
        self.analysed = 0  # jobs the analytics thread has done: its progress, for the watchdog
        self.failed_steps: collections.Counter[str] = collections.Counter()  # supervision steps that raised
        run_id = f"{self.clock.now():.0f}"
        for cam in cfg.cameras:
            if cam.enabled:
                zf = zones.get(cam.id)
                self.cameras[cam.id] = self._build(cam, zf or ZoneFile(), run_id)
        # check-ins at this box's patrol points ride the cameras' pipelines; overdue runs on the clock
        self.patrol = PatrolStage.from_config(cfg, self.clock, publish_status,
                                              lambda c: self.health.state(c) == "online",
                                              lambda c: self.cameras[c].pipeline.ctx)
        for cid, monitor in (self.patrol.monitors if self.patrol else {}).items():
            self.cameras[cid].pipeline.patrol = monitor
        self._lost: set[str] = set()  # cameras whose alarms were ended for this outage; main thread's
        self.offline = OfflineMonitor(self.health, lambda cid: self.cameras[cid].pipeline.ctx,
                                      {cid: rt.camera.offline_alarm_s for cid, rt in self.cameras.items()})
        self.degraded = DegradedMonitor(self.health, lambda cid: self.cameras[cid].pipeline.ctx,
                                        cfg.detector.max_motion_gap_s)

    def _build(self, cam: Camera, zones: ZoneFile, run_id: str) -> CameraRuntime:
        a = self.cfg.alarms
        ring = PacketRing(a.pre_roll_s + a.max_clip_s + a.post_roll_s + 5.0)
        location = cam.location.model_dump() if cam.location else None
        ctx = EventContext(self.cfg.site.id, self.cfg.device.id, cam.id, self.cfg.site.timezone, location, run_id)
        pipeline = CameraPipeline(ctx, zones, a, ring)
        watch = SceneWatch(cam.idle_interval_s, active=pipeline.busy.is_set,
                           following=pipeline.following.is_set, regions=pipeline.motion_regions(),
                           phase=idle_phase(cam.id), idle_stretch=self.policy.idle_stretch,
                           learn=cam.motion_learning, unchanged_max_s=cam.idle_unchanged_max_s)
        tiles = cam.tiles or self.cfg.detector.tiles
        self.tiling.set_camera(cam.id, tiles, zones, idle_phase(cam.id))
        gate = FrameGate(cam.id, cam.detect_fps, self.health, self.batcher.submit, watch, self._on_tamper,
                         self.policy)
        source: LiveSource
        if cam.url.startswith(("rtsp://", "rtsps://")):
            url, substream_url = stream_urls(cam)  # the password is read now, not kept in the config
            if cam.substream_url:
                on_sub = detects_on_substream(cam.detect_stream, tiles_on=tiles != "off")
                substream_url = substream_url if on_sub else None  # None: the main stream is decoded
                self.health.set_info(cam.id, detect_stream="substream" if on_sub else "main")
            source = RtspSource(cam.id, url, gate, self.health, ring, self.clock,
                                substream_url=substream_url, stall_timeout_s=cam.stall_timeout_s,
                                keyframe_decode_max_gop_s=cam.keyframe_decode_max_gop_s,
                                keyframe_decode_overload_max_gop_s=cam.keyframe_decode_overload_max_gop_s,
                                hwaccel=cam.hwaccel)
        else:
            source = PacedFileSource(cam.id, cam.url, gate, self.health, ring, self.clock, loop=cam.loop)
        return CameraRuntime(cam, ring, pipeline, gate, source)

    # --- running ---------------------------------------------------------------------------
    def start(self) -> None:
        self.delivery.start()
        self._analytics.start()
        self.batcher.warm_up()  # before the first frame, so none waits on the first inference
        self.batcher.start()
        for rt in self.cameras.values():
            log.info("camera %s: starting %s", rt.camera.id, redact_url(rt.camera.url))
            rt.source.start()

    def supervise(self) -> None:
        """One supervision step; call about twice a second. A failing step is logged and the rest
        still run: this is the main loop, and an exception here would end the whole agent."""
        for rt in self.cameras.values():
            self._guarded(f"camera {rt.camera.id}", self._supervise_camera, rt)
        self._guarded("camera_offline check", lambda: self.delivery.submit(self.offline.check()))
        self._guarded("overload check", self._supervise_overload)
        if self.patrol is not None:
            self._guarded("patrol overdue check", lambda: self.delivery.submit(self.patrol.check()))
        self.health.set_section("delivery", self.delivery.stats())
        provider = self.batcher.detector.provider  # a failing GPU provider is replaced by the CPU
        wants_gpu = any(p != "cpu" for p in self.cfg.detector.providers)
        self.health.set_detector(provider=provider, gpu_fallback=wants_gpu and not uses_gpu(provider))
        self.health.set_section("supervision", {"failed_steps": dict(self.failed_steps)})

    def _supervise_overload(self) -> None:
        self.policy.tick()  # an idle detector reports no batches: the policy relaxes here
        self.delivery.submit(self.degraded.check(self.batcher.urgent_waits()))
        self.health.set_section("overload", self.policy.state())
        for cid, rt in self.cameras.items():
            self.health.set_info(cid, effective_fps=round(self.policy.effective_fps(rt.camera.detect_fps), 2))

    def _supervise_camera(self, rt: CameraRuntime) -> None:
        rt.source.check_watchdog()
        cid = rt.camera.id
        down = self.health.down_for(cid)
        if down == 0:
            self._lost.discard(cid)
        elif down > self.cfg.alarms.post_roll_s and cid not in self._lost:
            # not back within post-roll: its open alarms end and their clips are cut now, rather
            # than when (if ever) the camera returns
            try:
                self._work.put_nowait(functools.partial(self._deliver, rt.pipeline.camera_lost))
                self._lost.add(cid)
            except queue.Full:
                pass  # the analytics thread is busy: the next supervision step asks again
            return
        latest = rt.ring.latest_time
        if latest is not None:  # clips due on a quiet camera: the analytics thread owns the pipeline
            try:
                self._work.put_nowait(functools.partial(self._deliver, rt.pipeline.tick, latest))
            except queue.Full:
                pass  # busy with frames: their processing cuts due clips as well

    def progress(self) -> dict[str, tuple[bool, int, int]]:
        """Per worker thread: (alive, items done, items waiting); judged by ops/progress.py."""
        return {
            "detector": (self.batcher.alive, self.batcher.batches + self.batcher.errors, self.batcher.waiting()),
            "analytics": (self._analytics.is_alive(), self.analysed, self._work.qsize()),
        }

    def _guarded(self, what: str, step: Callable[..., Any], *args: Any) -> None:
        try:
            step(*args)
        except Exception:
            self.failed_steps[what] += 1
            log.exception("supervision: %s failed; the agent carries on", what)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sources, drain detector and analytics, end alarms in progress, deliver the rest."""
        for rt in self.cameras.values():  # all at once: a camera stuck in a slow open must not delay the rest
            rt.source.request_stop()
        deadline = self.clock.monotonic() + timeout
        for rt in self.cameras.values():
            if not rt.source.stop(max(0.1, deadline - self.clock.monotonic())):
                log.warning("camera %s: decode thread did not stop in %.0f s", rt.camera.id, timeout)
        self.batcher.stop(timeout)
        self._work.put(None)
        self._analytics.join(timeout)
        # the analytics thread has ended: the pipelines are this thread's now
        now = self.clock.now()
        for rt in self.cameras.values():
            self.delivery.submit(rt.pipeline.close(now, rt.ring.latest_time or 0.0))
        self.delivery.submit(self.offline.close())
        self.delivery.submit(self.degraded.close())
        self.delivery.close(timeout)
        self.health.set_section("delivery", self.delivery.stats())

    # --- the analytics thread ----------------------------------------------------------------
    def _on_result(self, frame: Frame, dets: Detections) -> None:
        rt = self.cameras.get(frame.camera)
        if rt is None:
            return
        try:
            self._work.put(functools.partial(self._process, rt, frame, dets), timeout=5)
        except queue.Full:
            self.health.count(frame.camera, "frames_dropped")

    def _process(self, rt: CameraRuntime, frame: Frame, dets: Detections) -> None:
        if self.on_detections is not None:
            self.on_detections(frame, dets)
        self.delivery.submit(rt.pipeline.process(frame, dets))

    def _on_tamper(self, camera: str, reason: str | None, frame: Frame) -> None:
        """From a decode thread: the tamper alarm is the analytics thread's to raise or end."""
        self._work.put(functools.partial(self._deliver, self.cameras[camera].pipeline.tamper_changed, reason, frame))

    def _deliver(self, produce: Callable[..., list[Item]], *args: Any) -> None:
        self.delivery.submit(produce(*args))

    def _analyse_loop(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                return
            self.analysed += 1
            try:
                job()
            except Exception:  # one camera's bad frame must not stop the others' analysis
                log.exception("analytics: %s failed", getattr(job, "func", job))

    def _on_analytics(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the analytics thread (which owns the pipelines) and return its result."""
        done: concurrent.futures.Future = concurrent.futures.Future()

        def job() -> None:
            try:
                done.set_result(fn())
            except Exception as exc:
                done.set_exception(exc)

        self._work.put(job, timeout=COMMAND_WAIT_S)
        return done.result(timeout=COMMAND_WAIT_S)

    def _delivered(self, ev: Event) -> None:
        """On the delivery thread, for each event phase that left: counted per camera and type in
        health (metrics), and one log line with its id, score, site time and where its media went."""
        if ev.phase == "start":
            self.health.alarm(ev.camera, ev.type)
        store = None if self.cfg.mqtt.enabled else self.cfg.alarms.store_dir
        level = logging.WARNING if ev.type.startswith("camera_") else logging.INFO
        log.log(level, "%s", alarm_line(ev, self.cfg.site.timezone, store))

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
        frame, dets = self.analysed_frame(rt.camera.id)
        when = iso_utc(frame.wall_time)
        caption = f"{rt.camera.id} {site_time(frame.wall_time, self.cfg.site.timezone)}"
        image = annotate(frame.image, dets, rt.pipeline.rules, caption=caption)
        jpeg = encode_jpeg(image, self.cfg.alarms.snapshot_quality)
        return {"camera": rt.camera.id, "frame_time": when, "size": len(jpeg)}, jpeg

    def analysed_frame(self, camera: str) -> tuple[Frame, Detections]:
        """The camera's next analysed frame and its detections (the zone editor's picture and test)."""
        rt = self._runtime({"camera": camera})
        before = rt.pipeline.last()
        if rt.gate.watch is not None:
            rt.gate.watch.force_next()
        last = rt.pipeline.next_frame(before, SNAPSHOT_WAIT_S)
        if last is None or last[0].image is None:
            raise ValueError(f"camera {rt.camera.id} has no analysed frame yet (state {self.health.state(rt.camera.id)})")
        return last

    def apply_zones(self, camera: str, rules: ZoneFile) -> None:
        """A camera's new zone file, applied on the analytics thread without touching its stream or
        any other camera; its open alarms end with end_reason `reloaded`."""
        rt = self.cameras[camera]
        items = self._on_analytics(lambda: rt.pipeline.replace_rules(rules, self.clock.now(), rt.ring.latest_time or 0.0))
        self.delivery.submit(items)
        if rt.gate.watch is not None:
            rt.gate.watch.set_regions(rt.pipeline.motion_regions())
        self.tiling.set_camera(camera, rt.camera.tiles or self.cfg.detector.tiles, rules, idle_phase(camera))
        log.info("camera %s: new zones applied (%s)", camera, ", ".join(z.name for z in rules.zones) or "none")

    def cmd_zone(self, args: dict[str, Any]) -> dict[str, Any]:
        rt = self._runtime(args)
        enabled = args.get("enabled")
        if not isinstance(enabled, bool):
            raise ValueError("args.enabled must be true or false")
        zone = str(args.get("zone"))
        if not self._on_analytics(lambda: rt.pipeline.set_zone_enabled(zone, enabled)):
            raise ValueError(f"camera {rt.camera.id} has no zone {args.get('zone')!r}")
        return {"camera": rt.camera.id, "zone": args.get("zone"), "enabled": enabled}

    def cmd_accept_view(self, args: dict[str, Any]) -> dict[str, Any]:
        """A technician moved or replaced the camera on purpose: its current picture becomes the
        usual view, and an open camera_tampered alarm ends (end_reason `accepted`). Logged, so
        the site's record says who accepted which view when."""
        rt = self._runtime(args)
        if rt.gate.watch is None:
            raise ValueError(f"camera {rt.camera.id} has no tamper watch")
        rt.gate.watch.accept_view()
        now = self.clock.now()
        self.delivery.submit(self._on_analytics(lambda: rt.pipeline.tamper.close(now, "accepted")))
        by = args.get("by")
        log.warning("camera %s: new view accepted%s; tamper watch learns it afresh", rt.camera.id,
                    f" by {by}" if by else "")
        return {"camera": rt.camera.id, "accepted": True, "time": iso_utc(now)}
