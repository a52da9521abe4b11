"""`edge-agent replay`: the full pipeline on a video file, events and media to a folder.

Replay is how CI proves behaviour on recorded footage, and how a technician tries a zone file
on a clip from the site. It runs the same `CameraPipeline` as a live camera, with time taken
from the file, so it is deterministic and runs as fast as the detector allows.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from .alarms.delivery import Delivery
from .alarms.event import Event, EventContext
from .alarms.sink import EventSink, FolderSink, TeeSink
from .clock import MediaClock, parse_iso
from .config.models import AgentConfig, Alarms, Camera, Device, Site, ZoneFile
from .detect.common import DetectorOptions
from .detect.motion import SceneWatch
from .detect.tiles import Tiling, input_size_of
from .errors import EdgeAgentError
from .frames import Detections, Frame
from .health import Health
from .pipeline import CameraPipeline
from .redact import redact_url
from .sources.file import FileSource
from .sources.gate import FrameGate, idle_phase
from .sources.packets import PacketRing

log = logging.getLogger(__name__)


@dataclass
class ReplayResult:
    events: list[Event] = field(default_factory=list)
    frames: int = 0
    tiles: int = 0  # tiles detected beside the frames
    detect_seconds: float = 0.0  # in the detector, frames and tiles
    media_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def speed(self) -> float:
        """Media seconds processed per wall second (> 1: faster than real time)."""
        return self.media_seconds / self.wall_seconds if self.wall_seconds else 0.0


def _camera_for(video: Path, config: AgentConfig, camera_id: str | None) -> Camera:
    """The config's camera of that id (its location, detect fps), else one named after the file."""
    for cam in config.cameras:
        if cam.id == camera_id:
            return cam
    cid = camera_id or re.sub(r"[^A-Za-z0-9_.-]", "-", video.stem) or "replay"
    try:
        return Camera(id=cid, url=str(video))
    except ValidationError as err:
        raise EdgeAgentError(f"--camera {cid!r} is not a valid camera id; use only letters, digits "
                             "and _ . - (no spaces)") from err


def _open_out(out_dir: str | Path) -> FolderSink:
    """The output folder, emptied of a previous run's events (its media files are overwritten)."""
    try:
        return FolderSink(out_dir, append=False)
    except OSError as exc:
        raise EdgeAgentError(f"--out {out_dir}: cannot write the replay's output there "
                             f"({exc.strerror or exc})") from exc


def run_replay(
    video: str | Path,
    zones_file: str | Path | None,
    out_dir: str | Path,
    config: AgentConfig | None = None,
    camera_id: str | None = None,
    start: float | None = None,
    fps: float | None = None,
    model: str | None = None,
    extra_sink: EventSink | None = None,
    progress: bool = False,
    patrol: str | Path | None = None,
    on_detections: Callable[[Frame, Detections], None] | None = None,
) -> ReplayResult:
    """Replay `video` through the pipeline; events go to `out_dir` (and `extra_sink`).

    Frames are sampled and gated by the same `FrameGate` a live camera uses, with the camera's
    detect fps, idle interval and tiles, so CI analyses what the live agent would. `on_detections`
    sees every analysed frame's merged detections (the evaluation harness scores them per frame)."""
    from .config.loader import load_zones
    from .detect.registry import class_names, load_detector

    if "://" in str(video):  # Path() would fold "rtsp://user:pw@" into "rtsp:/user:pw@", past redaction
        raise EdgeAgentError(f"replay reads a video file, not a stream: {redact_url(str(video))}; record a "
                             "clip from the camera first, or watch it live with `edge-agent run`")
    video = Path(video)
    if fps is not None and not fps > 0:  # `fps or default` would take 0 for "not given"
        raise EdgeAgentError(f"--fps must be a positive number of frames per second, got {fps:g}")
    config = config or AgentConfig(site=Site(id="replay"), device=Device(id="replay"))
    camera = _camera_for(video, config, camera_id)
    model_name = model or config.detector.model
    rules = load_zones(zones_file, class_names(model_name)) if zones_file is not None else ZoneFile()
    detector = load_detector(model_name, DetectorOptions.from_config(config.detector))
    start = time.time() if start is None else start
    alarms: Alarms = config.alarms
    ring = PacketRing(alarms.pre_roll_s + alarms.max_clip_s + alarms.post_roll_s + 5.0)
    folder = _open_out(out_dir)
    sink: EventSink = TeeSink(folder, extra_sink) if extra_sink is not None else folder
    clock = MediaClock(start)
    result = ReplayResult()
    delivery = Delivery(sink, clock, threaded=False, on_delivered=result.events.append)
    pipeline = _pipeline(config, camera, rules, ring, clock, patrol)
    source = FileSource(camera.id, video, ring)
    began = time.perf_counter()
    bar = _Progress(video) if progress else None
    try:
        analysis = _Analysis(detector, _tiling(detector, config, camera, rules), pipeline, clock, delivery, on_detections)
        result.frames = _run(source, camera, fps if fps is not None else camera.detect_fps, analysis,
                             config.detector.max_batch, bar)
        result.tiles, result.detect_seconds = analysis.tiling.tiles, analysis.detect_seconds
    finally:
        delivered = delivery.close(timeout=0)
        sink.close()
        if bar:
            bar.done()
    if not delivered:
        raise EdgeAgentError(f"--out {out_dir}: some events could not be written (see the log above)")
    result.media_seconds = source.duration or 0.0
    result.wall_seconds = time.perf_counter() - began
    return result


def _tiling(detector: Any, config: AgentConfig, camera: Camera, rules: ZoneFile) -> Tiling:
    """The camera's tiles, as the live agent lays them (its own setting, else the detector's)."""
    tiling = Tiling(input_size_of(detector))
    tiling.set_camera(camera.id, camera.tiles or config.detector.tiles, rules, idle_phase(camera.id))
    return tiling


def _pipeline(config: AgentConfig, camera: Camera, rules: ZoneFile, ring: PacketRing, clock: MediaClock,
              patrol: str | Path | None) -> CameraPipeline:
    location = camera.location.model_dump() if camera.location else None
    ctx = EventContext(config.site.id, config.device.id, camera.id, config.site.timezone, location)
    monitor = None
    if patrol is not None:
        from .patrol.checkin import PatrolStage

        monitor = PatrolStage.for_camera(patrol, config, ctx, clock).monitors[camera.id]
    return CameraPipeline(ctx, rules, config.alarms, ring, patrol=monitor)


Observer = Callable[[Frame, Detections], None]


@dataclass
class _Analysis:
    """Detection and the pipeline for batches of frames, and where their events go."""

    detector: Any
    tiling: Tiling
    pipeline: CameraPipeline
    clock: MediaClock
    delivery: Delivery
    observe: Observer | None = None
    detect_seconds: float = 0.0

    def __call__(self, frames: list[Frame]) -> Frame:
        began = time.perf_counter()
        detections = self.tiling.detect(self.detector, frames)
        self.detect_seconds += time.perf_counter() - began
        for frame, dets in zip(frames, detections):
            if self.observe is not None:
                self.observe(frame, dets)
            self.clock.set_media_time(frame.media_time)
            self.delivery.submit(self.pipeline.process(frame, dets))
        return frames[-1]


def _run(source: FileSource, camera: Camera, fps: float, analyse: _Analysis, batch_size: int,
         bar: _Progress | None) -> int:
    """Frames through the camera's gate, detected in batches; returns the frames analysed."""
    pipeline, clock, delivery = analyse.pipeline, analyse.clock, analyse.delivery
    batch: list[Frame] = []
    watch = SceneWatch(camera.idle_interval_s, active=pipeline.busy.is_set,
                       following=pipeline.following.is_set, regions=pipeline.motion_regions(),
                       phase=idle_phase(camera.id), learn=camera.motion_learning,
                       unchanged_max_s=camera.idle_unchanged_max_s)
    gate = FrameGate(camera.id, fps, Health(clock), batch.append, watch,
                     lambda _cam, reason, frame: delivery.submit(pipeline.tamper_changed(reason, frame)))
    last: Frame | None = None
    for t, decoded in source:
        gate.offer(decoded, t, lambda m: clock.start + m)
        if len(batch) >= batch_size:
            last = analyse(batch)
            batch.clear()
            if bar:
                bar.update(last.media_time)
    if batch:
        last = analyse(batch)
    end_media = max(last.media_time if last else 0.0, source.duration or 0.0)
    delivery.submit(pipeline.close(clock.start + end_media, end_media))
    return gate.analysed


class _Progress:
    """A one-line progress bar on a terminal; silent when stderr is not one."""

    def __init__(self, video: Path) -> None:
        import av

        self.enabled = sys.stderr.isatty()
        self.total = 0.0
        try:
            with av.open(str(video)) as c:
                self.total = float(c.duration or 0) / 1e6
        except Exception:  # a progress bar must never fail the replay
            self.total = 0.0

    def update(self, media_time: float) -> None:
        if not self.enabled or self.total <= 0:
            return
        done = min(1.0, media_time / self.total)
        bar = "#" * int(done * 30)
        sys.stderr.write(f"\r[{bar:<30}] {media_time:6.1f}/{self.total:.1f} s")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _parse_start(text: str) -> float:
    try:
        return parse_iso(text)
    except ValueError as err:
        raise EdgeAgentError(f"--start {text!r} is not an ISO 8601 time; write e.g. 2026-06-01T22:00:00Z "
                             "(UTC) or 2026-06-01T22:00:00+02:00") from err


def replay_sink(config: AgentConfig, out_dir: str | Path):
    """The MQTT sink of `replay --mqtt`, started. With the live agent's config it must not be that
    agent: its own client id (a broker drops the older of two clients with one id, so the two
    would knock each other off for ever) and its own outbox in the output folder (two pumps on one
    outbox would each send, and delete, the other's messages)."""
    from .clock import SystemClock
    from .publish.publisher import MqttSink

    mqtt = config.mqtt
    client_id = f"{mqtt.client_id or f'edge-agent-{config.site.id}-{config.device.id}'}-replay-{os.getpid()}"
    outbox = mqtt.outbox.model_copy(update={"path": str(Path(out_dir) / "outbox.sqlite")})
    # no session to resume: this client id is never used again, and the outbox holds what is unsent
    mqtt = mqtt.model_copy(update={"client_id": client_id, "outbox": outbox, "session_expiry_s": 0})
    return MqttSink.from_config(config.model_copy(update={"mqtt": mqtt}), SystemClock()).start()


def cli_replay(args) -> int:
    from .config.loader import load_config

    config = load_config(args.config) if args.config else None
    start = _parse_start(args.start) if args.start else None
    extra = None
    if args.mqtt:
        if config is None:
            raise EdgeAgentError("--mqtt needs --config (the broker settings live in cameras.yaml)")
        extra = replay_sink(config, args.out)
    try:
        result = run_replay(
            args.video,
            args.zones,
            args.out,
            config=config,
            camera_id=args.camera,
            start=start,
            fps=args.fps,
            model=args.model,
            extra_sink=extra,
            progress=not args.no_progress,
            patrol=args.patrol,
        )
    finally:
        if extra is not None:  # also when the replay failed before its own sinks were closed
            extra.close()
    counts = Counter((e.type, e.phase) for e in result.events)
    print(
        f"replayed {Path(args.video).name}: {result.frames} frames analysed, "
        f"{result.media_seconds:.1f} s of video in {result.wall_seconds:.1f} s ({result.speed:.1f}x real time)"
    )
    for (etype, phase), n in sorted(counts.items()):
        print(f"  {etype:<22} {phase:<6} {n}")
    print(f"events: {Path(args.out) / 'events.jsonl'}")
    return 0
