"""`edge-agent check`: validate cameras.yaml, every zone file and the patrol file in one pass.

Every problem is printed as `file:line: key: what is wrong` (the format editors and grep understand),
all at once, and the exit status is 2 when there is any. On success a short summary says what the
agent would watch, plus warnings for settings that are valid but probably not what was meant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from ..errors import ConfigError, EdgeAgentError
from ..config.loader import collect, collect_zones, resolve, zones_path
from ..detect.registry import zone_labels
from ..clock import SystemClock, site_time
from ..rules.schedule import in_schedule
from ..config.models import AgentConfig, Detector, Zone, ZoneFile
from ..config.secrets import stream_urls

DEFAULT_CONFIG = "configs/cameras.yaml"


def zone_warnings(where: str, zf: ZoneFile, detector_min_score: float) -> list[str]:
    """Valid zone settings that are probably mistakes (`where` names the camera or file)."""
    out: list[str] = []
    if not any(z.enabled for z in (*zf.zones, *zf.lines)):
        out.append(f"{where}: no enabled zone or line, so it raises only camera alarms (offline, tampered)")
    for zone in zf.zones:
        if zone.enabled and zone.min_score < detector_min_score:
            out.append(f"{where}, zone {zone.name}: min_score {zone.min_score:g} is below the detector's "
                       f"min_score {detector_min_score:g}; the detector's applies")
        if zone.stationary_s is not None and "dwell_s" in zone.model_fields_set:
            out.append(f"{where}, zone {zone.name}: dwell_s is unused: a zone with stationary_s raises "
                       f"`stationary` after {zone.stationary_s:g} s instead of `intrusion`")
    return out


def config_warnings(cfg: AgentConfig, zones: dict[str, ZoneFile]) -> list[str]:
    """Valid settings that are probably mistakes; reported by `check`, never fatal."""
    out: list[str] = []
    if "timezone" not in cfg.site.model_fields_set:
        scheduled = [f"{cam} {z.name}" for cam, zf in zones.items() for z in zf.zones if z.schedule]
        out.append(f"site.timezone is not set: schedules and times use {cfg.site.timezone}"
                   + (f" (zones with a schedule: {', '.join(scheduled)})" if scheduled else ""))
    for cam in cfg.cameras:
        if not cam.enabled:
            out.append(f"camera {cam.id}: disabled (enabled: false); it is not watched")
        elif cam.id in zones:
            out += zone_warnings(f"camera {cam.id}", zones[cam.id], cfg.detector.min_score)
    mqtt = cfg.mqtt
    if mqtt.enabled and mqtt.password and not mqtt.tls:
        out.append("mqtt.password is written in the config and sent without TLS; prefer password_file")
    return out


ASPECT_TOLERANCE = 0.02  # 1280x720 vs 1920x1080 is the same picture; 4:3 vs 16:9 is not


def aspect_warnings(cfg: AgentConfig, zones: dict[str, ZoneFile], probe: bool) -> list[str]:
    """Zones drawn on a picture of another shape (the camera was changed to 4:3, or a new lens) are
    stretched over the new one. Video files are read at once; streams only with --probe."""
    from .probe import picture_size

    out = []
    for cam in cfg.cameras:
        drawn = zones.get(cam.id).frame if cam.enabled and cam.id in zones else None
        if drawn is None or (cam.url.startswith(("rtsp://", "rtsps://")) and not probe):
            continue
        try:
            w, h = picture_size(stream_urls(cam)[0])
        except EdgeAgentError:
            continue  # a camera that cannot be opened is reported by --probe
        if abs((w / h) / (drawn.width / drawn.height) - 1) > ASPECT_TOLERANCE:
            out.append(f"camera {cam.id}: its picture is {w}x{h} but the zones were drawn on "
                       f"{drawn.width}x{drawn.height}, another shape: redraw them (edge-agent zones edit)")
    return out


def check_patrol(path: Path, cfg: AgentConfig | None) -> tuple[list[str], list[str]]:
    """(problems, notes) from the patrol stage's own loader, when that stage is installed.

    Hook for the patrol engineer: `edge_agent.patrol.points.load_patrol(path, config)` raises
    ConfigError (problems with lines) or another EdgeAgentError when the file is wrong.
    """
    try:
        points = importlib.import_module("edge_agent.patrol.points")
    except ModuleNotFoundError:
        return [], [f"{path}: patrol points not checked (this build has no patrol stage)"]
    if cfg is None:
        return [], [f"{path}: patrol points not checked until cameras.yaml is fixed"]
    try:
        points.load_patrol(path, cfg)
    except ConfigError as exc:
        return exc.problems, []
    except EdgeAgentError as exc:
        return [f"{path}: {exc}"], []
    return [], [f"{path}: patrol points OK"]


def _zone_state(zone: Zone, now: float, tz: str) -> str:
    """`track-bed (rail, 19:00-06:00, inactive now)`: a schedule silences a zone, so say when."""
    if not zone.enabled:
        return f"{zone.name} ({zone.kind}, disabled)"
    if not zone.schedule:
        return f"{zone.name} ({zone.kind}, always)"
    active = "active now" if in_schedule(zone.schedule, now, tz) else "INACTIVE now"
    return f"{zone.name} ({zone.kind}, {','.join(zone.schedule)}, {active})"


def _summary(config_path: Path, cfg: AgentConfig, zones: dict[str, ZoneFile], now: float) -> list[str]:
    tz = cfg.site.timezone
    lines = [f"{config_path}: site {cfg.site.id} ({tz}, now {site_time(now, tz)}), device {cfg.device.id}, "
             f"model {cfg.detector.model}, {len(cfg.cameras)} camera(s)"]
    for cam in cfg.cameras:
        zf = zones.get(cam.id)
        if zf is None:
            lines.append(f"  {cam.id}: disabled, no zone file")
            continue
        parts = [_zone_state(z, now, tz) for z in zf.zones]
        parts += [f"{ln.name} (line {ln.direction}{'' if ln.enabled else ', disabled'})" for ln in zf.lines]
        state = "" if cam.enabled else " [camera disabled]"
        lines.append(f"  {cam.id}: {len(zf.zones)} zone(s) in {zones_path(config_path, cam)}{state}: "
                     f"{', '.join(parts) or '-'}")
    if cfg.mqtt.enabled:
        lines.append(f"  alarms: to MQTT {cfg.mqtt.host}:{cfg.mqtt.port}; with their snapshots and clips they wait "
                     f"in {cfg.mqtt.outbox.path} until the broker has them")
    else:
        lines.append(f"  alarms: MQTT off; events, snapshots and clips are stored in {cfg.alarms.store_dir}")
    return lines


def _extra_zones(files: list[str], cfg: AgentConfig | None) -> tuple[list[str], list[str], list[str]]:
    """(problems, summary lines, warnings) of zone files named on the command line."""
    model = cfg.detector.model if cfg else Detector().model
    try:
        names = zone_labels(model)
    except EdgeAgentError:
        names = None  # reported with the config when there is one
    min_score = cfg.detector.min_score if cfg else Detector().min_score
    problems, lines, warnings = [], [], []
    for name in files:
        zf, more = collect_zones(name, names, model)
        problems += more
        if zf is not None:
            shown = [z.name for z in zf.zones] + [f"{ln.name} (line)" for ln in zf.lines]
            counted = f", {len(zf.lines)} line(s)" if zf.lines else ""
            lines.append(f"{name}: {len(zf.zones)} zone(s){counted}: {', '.join(shown) or '-'}")
            warnings += zone_warnings(name, zf, min_score)
    return problems, lines, warnings


def cli_check(args: argparse.Namespace) -> int:
    """Validate everything; print all problems and return 2, or print a summary and return 0."""
    if getattr(args, "central", None):
        from ..config.central import check_central

        return check_central(args.central)
    config_path = Path(args.config)
    extra: list[str] = list(getattr(args, "zones", None) or [])
    problems: list[str] = []
    report: list[str] = []
    cfg: AgentConfig | None = None
    zones: dict[str, ZoneFile] = {}
    # `check --zones f.yaml` on a laptop without a site config checks just the zone files.
    if not (extra and args.config == DEFAULT_CONFIG and not config_path.exists()):
        cfg, zones, problems = collect(config_path, zone_labels)
        if cfg is not None and not problems:
            report += _summary(config_path, cfg, zones, SystemClock().now())
    more, lines, warnings = _extra_zones(extra, cfg)
    problems += more
    report += lines
    patrol = getattr(args, "patrol", None) or (str(resolve(config_path, cfg.patrol)) if cfg and cfg.patrol else None)
    if patrol:
        more, notes = check_patrol(Path(patrol), cfg)
        problems += more
        report += notes
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        print(f"edge-agent check: {len(problems)} problem(s); the agent will not start until they are fixed",
              file=sys.stderr)
        return 2
    for line in report:
        print(line)
    warnings += aspect_warnings(cfg, zones, getattr(args, "probe", False)) if cfg else []
    for line in (config_warnings(cfg, zones) if cfg else []) + warnings:
        print(f"warning: {line}")
    if getattr(args, "probe", False) and cfg is not None:
        return _probe(cfg, getattr(args, "camera", None))
    print("OK")
    return 0


def _probe(cfg: AgentConfig, camera: str | None) -> int:
    from .probe import probe

    if camera is not None:
        if camera not in {c.id for c in cfg.cameras}:
            print(f"edge-agent check: no camera {camera!r}; cameras: {', '.join(c.id for c in cfg.cameras)}",
                  file=sys.stderr)
            return 2
        cfg = cfg.model_copy(update={"cameras": [c for c in cfg.cameras if c.id == camera]})
    failed = 0
    for ok, line in probe(cfg):
        print(f"probe: {line}", file=sys.stdout if ok else sys.stderr, flush=True)
        failed += not ok
    if failed:
        print(f"edge-agent check --probe: {failed} connection(s) failed; the agent would start but not work",
              file=sys.stderr)
        return 3
    print("OK")
    return 0
