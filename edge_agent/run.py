"""The `edge-agent run` process: load the config, serve one `LiveAgent`, reload, signals, health.

`app.py` builds and supervises the cameras of one config; this module owns the process around it:
refusing a bad config, the MQTT sink and its command handlers, a reload that replaces the agent
only once the new config has been fully prepared, SIGTERM/SIGINT, and the periodic health report.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from .alarms.sink import EventSink, FolderSink
from .clock import Clock, SystemClock, log_in_site_time
from .config.models import AgentConfig, ZoneFile
from .app import LiveAgent
from .health import disk_use
from .ops.allocator import tune_allocator
from .ops.http import Endpoints, HttpEndpoint
from .ops.inventory import InventoryWatch
from .ops.progress import ServiceWatch
from .publish.commands import MediaReply
from .publish.publisher import MqttSink

log = logging.getLogger("edge_agent.run")
Prepared = tuple[AgentConfig, dict[str, ZoneFile], Any]  # config, zone files, detector


class _Control:
    """What command handlers and signals ask of the main loop."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.running: Prepared | None = None
        self.reload: Prepared | None = None
        self.agent: LiveAgent | None = None


def _load(config_path: str) -> tuple[AgentConfig, dict[str, ZoneFile]]:
    from .config.loader import load_all
    from .detect.registry import zone_labels
    from .errors import ConfigError

    cfg, zones = load_all(config_path, zone_labels)
    if not any(c.enabled for c in cfg.cameras):
        raise ConfigError([f"{config_path}: cameras: no enabled camera to run"])
    return cfg, zones


def _prepare(config_path: str, running: Prepared | None = None) -> Prepared:
    """Everything a config needs before the agent can run on it: the files, the patrol points,
    the detector (reused when unchanged). Raises EdgeAgentError, so a bad reload is refused while
    the running agent carries on, instead of killing the agent after the reply said yes."""
    from .detect.common import DetectorOptions
    from .detect.registry import load_detector
    from .patrol.points import badge_secret, load_patrol

    cfg, zones = _load(config_path)
    if cfg.patrol:
        badge_secret(load_patrol(cfg.patrol, cfg), Path(cfg.patrol))
    if running is not None and running[0].detector == cfg.detector:
        return cfg, zones, running[2]
    return cfg, zones, load_detector(cfg.detector.model, DetectorOptions.from_config(cfg.detector))


def _handlers(ctl: _Control, config_path: str) -> dict[str, Any]:
    def agent() -> LiveAgent:
        if ctl.agent is None:
            raise ValueError("the agent is (re)starting; try again")
        return ctl.agent

    def snapshot(args: dict[str, Any]) -> MediaReply:
        info, jpeg = agent().cmd_snapshot(args)
        return MediaReply(info, jpeg)  # the dispatcher publishes the JPEG and names it in the reply

    def ack(args: dict[str, Any]) -> dict[str, Any]:
        # The box keeps no alarm state to change: the acknowledgement is logged here and, through
        # the reply on cmd/reply, seen by every console of central command.
        event_id = args.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            raise ValueError("args.event_id is required")
        log.info("alarm %s acknowledged%s", event_id, f" by {args['by']}" if args.get("by") else "")
        return {"event_id": event_id, "acked": True}

    def reload(args: dict[str, Any]) -> dict[str, Any]:
        prepared = _prepare(config_path, ctl.running)  # a bad config is refused here; the running one stays
        ctl.reload = prepared
        return {"reloading": True, "cameras": [c.id for c in prepared[0].cameras if c.enabled]}

    return {"snapshot": snapshot, "ack": ack, "zone": lambda a: agent().cmd_zone(a), "reload": reload,
            "accept_view": lambda a: agent().cmd_accept_view(a)}


def _make_sink(cfg: AgentConfig, clock: Clock, handlers: dict[str, Any]) -> EventSink:
    if cfg.mqtt.enabled:
        return MqttSink.from_config(cfg, clock, handlers).start()
    log.info("mqtt disabled: events go to %s", cfg.alarms.store_dir)
    return FolderSink(cfg.alarms.store_dir, quota_bytes=int(cfg.alarms.store_quota_mb * 1024 * 1024))


def _status_publisher(sink: EventSink):
    """Patrol points' retained status goes out over MQTT; a folder sink has no retained topics."""
    if not isinstance(sink, MqttSink):
        return None
    return lambda point, body: sink.state.publish_retained(f"patrol/status/{point}", body)


def _inventory_watch(sink: EventSink, clock: Clock) -> InventoryWatch | None:
    """The box's retained inventory (cameras, zones, patrol points) for central's map; MQTT only."""
    if not isinstance(sink, MqttSink):
        return None
    return InventoryWatch(lambda body: sink.state.publish_retained("inventory", body), clock)


def _health_report(agent: LiveAgent, sink: EventSink) -> dict[str, Any]:
    """What the health topic, the health file and /health carry."""
    snap = agent.health.snapshot()
    snap["events"] = agent.delivery.stats()["delivered"]
    try:
        snap["disk"] = disk_use(agent.cfg.mqtt.outbox.path if agent.cfg.mqtt.enabled else None,
                                agent.cfg.alarms.store_dir)
    except OSError as exc:  # health must go out even when the disk cannot be inspected
        snap["disk"] = {"error": exc.strerror or str(exc)}
    if isinstance(sink, MqttSink):
        snap["mqtt"] = sink.stats()
    return snap


def _publish_health(agent: LiveAgent, sink: EventSink, health_file: str | None) -> bool:
    """Publish health and write the health file; False when the file could not be written."""
    snap = _health_report(agent, sink)
    if isinstance(sink, MqttSink):
        sink.state.publish_health(snap)
    if health_file:
        tmp = Path(health_file).with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(snap, default=str, indent=1))
            tmp.replace(health_file)
        except OSError as exc:  # a full disk must not end the agent that watches the cameras
            log.error("health file %s not written (%s)", health_file, exc.strerror or exc)
            return False
    return True


def run_live(config_path: str, duration: float | None = None, health_file: str | None = None) -> int:
    """Run until SIGTERM/SIGINT or `duration`; returns the exit code."""
    tune_allocator()  # before the detector's and cameras' threads start
    ctl = _Control()
    # SIGHUP's default action ends the process: one sent while the detector still loads (seconds)
    # would kill the agent instead of reloading it. Until the agent runs, it is only noted.
    starting = signal.signal(signal.SIGHUP, lambda *_: log.warning(
        "SIGHUP while starting: the config is read now anyway; send it again to reload later edits"))
    try:
        ctl.running = _prepare(config_path)
    except BaseException:
        signal.signal(signal.SIGHUP, starting)
        raise
    cfg = ctl.running[0]
    log_in_site_time(cfg.site.timezone)
    clock = SystemClock()
    handlers = _handlers(ctl, config_path)
    sink = _make_sink(cfg, clock, handlers)
    previous = {sig: signal.signal(sig, lambda *_: ctl.stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGHUP, _on_sighup(config_path, handlers["reload"]))
    previous[signal.SIGHUP] = starting

    def report() -> dict[str, Any] | None:
        agent = ctl.agent  # read once: a reload swaps it
        return None if agent is None else _health_report(agent, sink)

    http = HttpEndpoint.start_for(cfg.http, Endpoints(report, lambda: ctl.agent, _zone_applier(ctl)))
    deadline = None if duration is None else clock.monotonic() + duration
    try:
        while True:
            _serve(ctl, sink, clock, deadline, health_file)
            if ctl.reload is None:
                break
            old, ctl.running, ctl.reload = ctl.running, ctl.reload, None
            if ctl.running[0].mqtt != old[0].mqtt:
                log.warning("reload: mqtt settings changed; they take effect at the next restart")
            log.info("reloaded %s", config_path)
    finally:
        if http is not None:
            http.close()
        drained = sink.close(5.0) if isinstance(sink, MqttSink) else sink.close()
        if drained is False:
            log.warning("outbox not empty at exit; it is sent at the next start")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _on_sighup(config_path: str, reload: Any) -> Any:
    """SIGHUP reloads as the `reload` command does: the new config is prepared off the signal
    (loading a detector takes seconds), and a bad one is refused while the running one carries on."""
    def prepare() -> None:
        try:
            result = reload({})
            log.info("SIGHUP: reloading %s (cameras %s)", config_path, ", ".join(result["cameras"]))
        except Exception as exc:  # a reload must never end the agent
            log.error("SIGHUP: %s not reloaded; the running config stays. %s", config_path, exc)

    return lambda *_: threading.Thread(target=prepare, name="sighup-reload", daemon=True).start()


def _serve(ctl: _Control, sink: EventSink, clock: Clock, deadline: float | None, health_file: str | None) -> None:
    """Run one agent on `ctl.running` until stop, deadline or a reload request."""
    assert ctl.running is not None
    cfg, zones, detector = ctl.running
    agent = ctl.agent = LiveAgent(cfg, zones, detector, sink, clock, publish_status=_status_publisher(sink))
    service = ServiceWatch(cfg.detector.stall_s)
    agent.start()
    service.started(len(agent.cameras))
    log.info("running %d camera(s) on %s", len(agent.cameras), detector.provider)
    inventory = _inventory_watch(sink, clock)
    health_every = min(cfg.mqtt.health_interval_s, 2.0 if health_file else cfg.mqtt.health_interval_s)
    next_health = clock.monotonic() + min(2.0, health_every)
    while not ctl.stop.is_set():
        if ctl.reload is not None and not _reload_in_place(ctl, agent):
            break  # more than zones changed: the agent restarts on the new config
        if deadline is not None and clock.monotonic() >= deadline:
            ctl.stop.set()
            break
        agent.supervise()
        if inventory is not None and ctl.running is not None:
            _step_inventory(inventory, agent, ctl.running[1])
        service.step(agent)
        if clock.monotonic() >= next_health:
            _publish_health(agent, sink, health_file)
            next_health = clock.monotonic() + health_every
        ctl.stop.wait(0.5)
    ctl.agent = None
    service.stopping()
    agent.stop()
    _publish_health(agent, sink, health_file)


def _step_inventory(inventory: InventoryWatch, agent: LiveAgent, zones: dict[str, ZoneFile]) -> None:
    try:
        inventory.step(agent, zones)
    except Exception:  # the map may go stale; the cameras must keep being watched
        log.exception("inventory not published; the agent carries on")


def _zone_applier(ctl: _Control) -> Any:
    """The zone editor's per-camera apply: that camera's zone file, read and checked by the loader
    now, swapped in place; the running config remembers it, so a later reload does not apply it again."""
    from .config.loader import load_zones
    from .detect.registry import zone_labels

    def apply(camera: str) -> dict[str, Any]:
        agent, running = ctl.agent, ctl.running
        if agent is None or running is None:
            raise LookupError("the agent is (re)starting; try again")
        cfg, zones, detector = running
        cam = next((c for c in cfg.cameras if c.id == camera and c.enabled), None)
        if cam is None or camera not in agent.cameras:
            raise LookupError(f"no running camera {camera!r}")
        zf = load_zones(str(cam.zones), zone_labels(cfg.detector.model), cfg.detector.model)
        ctl.running = (cfg, {**zones, camera: zf}, detector)  # first: a busy agent still runs the queued swap
        agent.apply_zones(camera, zf)
        return {"camera": camera, "zones": [z.name for z in zf.zones], "lines": [ln.name for ln in zf.lines]}

    return apply


def _reload_in_place(ctl: _Control, agent: LiveAgent) -> bool:
    """When a reload changes only zone files, apply them camera by camera to the running agent:
    no stream reconnects, no other camera's alarm ends. False when anything else changed."""
    assert ctl.running is not None and ctl.reload is not None
    (old_cfg, old_zones, old_detector), (new_cfg, new_zones, new_detector) = ctl.running, ctl.reload
    if new_cfg != old_cfg or new_detector is not old_detector:
        return False
    changed = [cam for cam in agent.cameras if new_zones.get(cam) != old_zones.get(cam)]
    for cam in changed:
        agent.apply_zones(cam, new_zones.get(cam) or ZoneFile())
    ctl.running, ctl.reload = ctl.reload, None
    log.info("reload: zones of %s applied; no camera restarted", ", ".join(changed) or "no camera changed")
    return True


def cli_run(args) -> int:
    return run_live(args.config, args.duration, getattr(args, "health_file", None))
