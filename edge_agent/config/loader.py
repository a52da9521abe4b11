"""The one config loader: YAML -> pydantic models, every problem reported as `file:line: key: what`.

YAML is composed to nodes first so each value keeps the line it was written on; pydantic's error
`loc` is then walked through the nodes to find that line. All problems of all files are collected
and raised together as one `ConfigError`, so a field technician fixes them in one pass.
Relative paths inside cameras.yaml (zone files, patrol file, MQTT password/TLS files) resolve
against the folder that holds cameras.yaml.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import zoneinfo
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from ..errors import ConfigError, EdgeAgentError
from .messages import YamlDoc, describe, parse_yaml
from .models import AgentConfig, Camera, Detector, Outline, ZoneFile

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

# Used only when the detector registry cannot be imported (a stripped install): the COCO-80 spelling
# every model in models/models.yaml uses.
COCO80: list[str] = [name.replace("_", " ") for name in (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign "
    "parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella "
    "handbag tie suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard "
    "surfboard tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple sandwich orange "
    "broccoli carrot hot_dog pizza donut cake chair couch potted_plant bed dining_table toilet tv laptop "
    "mouse remote keyboard cell_phone microwave oven toaster sink refrigerator book clock vase scissors "
    "teddy_bear hair_drier toothbrush"
).split()]


# ---- generic: one file, one model ----------------------------------------------------------------

def _validate(doc: YamlDoc, model: type[M], context: Any = None) -> tuple[M | None, list[str]]:
    """Validate a parsed document; every pydantic error becomes one `file:line: key: what` line."""
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        return None, [doc.problem((), f"the file must hold `key: value` lines at the top, found {kind}")]
    try:
        return model.model_validate(data, context=context), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc, text = describe(err, model, doc.secrets)
            problems.append(doc.problem(loc, text))
        return None, problems


def load_doc(path: str | Path, model: type[M], context: Any = None) -> tuple[YamlDoc | None, M | None, list[str]]:
    """Parse and validate without raising: (document, model or None, problems)."""
    doc, problems = parse_yaml(path)
    if doc is None:
        return None, None, problems
    obj, more = _validate(doc, model, context)
    return doc, obj, by_line(problems + more)


def load_yaml_model(path: str | Path, model: type[M], context: Any = None) -> M:
    """Load one YAML file as `model`; raise ConfigError listing every problem with its line."""
    _, obj, problems = load_doc(path, model, context)
    if problems or obj is None:
        raise ConfigError(problems)
    return obj


def by_line(problems: list[str]) -> list[str]:
    """One file's problems in the order a reader meets them (stable for equal lines)."""
    def line(text: str) -> int:
        m = _LINE.match(text)
        return int(m[1]) if m else 0
    return sorted(problems, key=line)


_LINE = re.compile(r"^.*?:(\d+): ")


# ---- paths ---------------------------------------------------------------------------------------

def resolve(config_path: str | Path, value: str | Path) -> Path:
    """A path written in cameras.yaml: absolute as is, relative to the cameras file's folder."""
    p = Path(value).expanduser()
    # normpath only tidies `a/../b` for messages; the file reached is the same.
    return p if p.is_absolute() else Path(os.path.normpath(Path(config_path).parent / p))


def zones_path(config_path: str | Path, camera: Camera) -> Path:
    """The camera's zone file: its `zones:` key, else `zones/<id>.yaml` beside the cameras file."""
    return resolve(config_path, camera.zones or Path("zones") / f"{camera.id}.yaml")


def _is_url(value: str) -> bool:
    return "://" in value


# What FFmpeg (PyAV) opens for a camera; anything else is almost surely a typing mistake (rtps://).
SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp", "file")


def _source_problem(doc: YamlDoc, value: str) -> str | None:
    """Why a camera `url` cannot be opened as written, or None."""
    if _is_url(value):
        scheme = value.split("://", 1)[0].lower()
        if scheme in SCHEMES:
            return None
        # Swapped letters first (rtps -> rtsp), then the nearest spelling.
        close = [s for s in SCHEMES if sorted(s) == sorted(scheme)] or \
            difflib.get_close_matches(scheme, SCHEMES, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]}://? " if close else ""
        return f"unknown URL scheme {scheme!r}; {hint}use one of {', '.join(s + '://' for s in SCHEMES)}"
    if Path(value).exists() or resolve(doc.path, value).exists():
        return None
    return (f"video file {value!r} not found (neither from the working folder nor beside the cameras file); "
            "an RTSP camera needs a URL like rtsp://host:554/stream")


# ---- cameras.yaml --------------------------------------------------------------------------------
# Cross-checks read the raw YAML data, not the validated model, so they still report when some
# other key of the same file is wrong: every problem comes out in one pass.

def _get(data: Any, *keys: str | int) -> Any:
    """data[k1][k2]... or None when any step is missing or of the wrong shape."""
    for key in keys:
        if isinstance(key, int):
            data = data[key] if isinstance(data, list) and 0 <= key < len(data) else None
        else:
            data = data.get(key) if isinstance(data, dict) else None
    return data


def _items(data: Any, key: str) -> list[tuple[int, dict]]:
    seq = _get(data, key)
    return [(i, x) for i, x in enumerate(seq) if isinstance(x, dict)] if isinstance(seq, list) else []


def _check_config(doc: YamlDoc) -> list[str]:
    """Cross-field and file-system checks that pydantic cannot do alone."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, cam in _items(doc.data, "cameras"):
        cam_id = cam.get("id")
        if isinstance(cam_id, str) and cam_id in seen:
            problems.append(doc.problem(("cameras", i, "id"), f"camera id {cam_id!r} is used twice (first at line "
                                        f"{doc.line(('cameras', seen[cam_id], 'id'))}); ids must be unique"))
        elif isinstance(cam_id, str):
            seen[cam_id] = i
        for key in ("url", "substream_url"):
            value = cam.get(key)
            why = _source_problem(doc, value) if isinstance(value, str) and value else None
            if why:
                problems.append(doc.problem(("cameras", i, key), why))
    tz = _get(doc.data, "site", "timezone")
    if isinstance(tz, str):
        problems += _check_timezone(doc, tz)
    problems += _check_mqtt(doc)
    patrol = _get(doc.data, "patrol")
    if isinstance(patrol, str) and not resolve(doc.path, patrol).is_file():
        problems.append(doc.problem(("patrol",), f"patrol file {resolve(doc.path, patrol)} not found"))
    return problems


def _check_timezone(doc: YamlDoc, tz: str) -> list[str]:
    try:
        zoneinfo.ZoneInfo(tz)
        return []
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(tz, sorted(zoneinfo.available_timezones()), n=2, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        return [doc.problem(("site", "timezone"), f"{tz!r} is not a known time zone; use an IANA name such "
                            f"as UTC, Europe/Oslo or America/New_York{hint}")]


def _check_file(doc: YamlDoc, loc: tuple[str, ...]) -> list[str]:
    value = _get(doc.data, *loc)
    if isinstance(value, str) and value and not resolve(doc.path, value).is_file():
        return [doc.problem(loc, f"file {resolve(doc.path, value)} not found (relative paths start at the "
                            "cameras file's folder)")]
    return []


def _check_mqtt(doc: YamlDoc) -> list[str]:
    mqtt = _get(doc.data, "mqtt")
    if not isinstance(mqtt, dict) or mqtt.get("enabled") is False:
        return []
    problems: list[str] = []
    given = [k for k in ("password", "password_env", "password_file") if mqtt.get(k)]
    if len(given) > 1:
        problems.append(doc.problem(("mqtt", given[1]), f"set only one of {', '.join(given)}"))
    problems += _check_file(doc, ("mqtt", "password_file"))
    tls = mqtt.get("tls")
    if isinstance(tls, dict):
        for key in ("ca_file", "cert_file", "key_file"):
            problems += _check_file(doc, ("mqtt", "tls", key))
        if bool(tls.get("cert_file")) != bool(tls.get("key_file")):
            have = "cert_file" if tls.get("cert_file") else "key_file"
            problems.append(doc.problem(("mqtt", "tls", have), "a client certificate needs both cert_file and "
                                        "key_file"))
    return problems


def _load_config(path: str | Path) -> tuple[YamlDoc | None, AgentConfig | None, list[str]]:
    doc, cfg, problems = load_doc(path, AgentConfig)
    if doc is not None and isinstance(doc.data, dict):
        problems = by_line(problems + _check_config(doc))
    return doc, (absolute_paths(cfg, path) if cfg is not None and not problems else None), problems


def absolute_paths(cfg: AgentConfig, config_path: str | Path) -> AgentConfig:
    """The config with every file path made absolute against the cameras file's folder.

    Done once here so no other module needs to know where the config file was.
    """
    config_path = Path(config_path).resolve()

    def fix(value: str | None) -> str | None:
        return None if value is None else str(resolve(config_path, value))

    cams = []
    for cam in cfg.cameras:
        url = cam.url
        if not _is_url(url) and not Path(url).exists() and resolve(config_path, url).exists():
            url = str(resolve(config_path, url))
        cams.append(cam.model_copy(update={"url": url, "zones": str(zones_path(config_path, cam))}))
    mqtt = cfg.mqtt.model_copy(update={
        "password_file": fix(cfg.mqtt.password_file),
        "tls": None if cfg.mqtt.tls is None else cfg.mqtt.tls.model_copy(update={
            k: fix(getattr(cfg.mqtt.tls, k)) for k in ("ca_file", "cert_file", "key_file")}),
        "outbox": cfg.mqtt.outbox.model_copy(update={"path": fix(cfg.mqtt.outbox.path)}),
    })
    return cfg.model_copy(update={
        "cameras": cams,
        "patrol": fix(cfg.patrol),
        "mqtt": mqtt,
        "http": cfg.http.model_copy(update={"token_file": fix(cfg.http.token_file)}),
        "alarms": cfg.alarms.model_copy(update={"store_dir": fix(cfg.alarms.store_dir)}),
        "detector": cfg.detector.model_copy(update={"trt_cache_dir": fix(cfg.detector.trt_cache_dir)}),
    })


def load_config(path: str | Path) -> AgentConfig:
    """Load and check cameras.yaml (not the zone files); raise ConfigError with every problem."""
    _, cfg, problems = _load_config(path)
    if problems or cfg is None:
        raise ConfigError(problems)
    return cfg


# ---- zone files ----------------------------------------------------------------------------------

def _check_zones(doc: YamlDoc, class_names: list[str] | None, model: str) -> list[str]:
    problems: list[str] = []
    first: dict[str, int] = {}
    known = set(class_names or [])
    for i, raw in _items(doc.data, "zones"):
        name = raw.get("name")
        if isinstance(name, str) and name in first:
            line = doc.line(("zones", first[name], "name"))
            problems.append(doc.problem(("zones", i, "name"), f"zone name {name!r} is used twice (first at "
                                        f"line {line}); names must be unique within a camera"))
        elif isinstance(name, str):
            first[name] = i
        labels = raw.get("labels")
        for j, label in enumerate(labels if isinstance(labels, list) else []):
            if known and isinstance(label, str) and label not in known:
                problems.append(doc.problem(("zones", i, "labels", j), _unknown_label(label, class_names or [], model)))
        problems += _check_exclusions(doc, i, raw)
    return problems


def _check_exclusions(doc: YamlDoc, i: int, raw: dict) -> list[str]:
    """Exclusions that miss their zone or swallow it are almost always a typing mistake."""
    from shapely.geometry import Polygon

    area = _outline(raw.get("polygon"))
    excludes = raw.get("exclude")
    if area is None or not isinstance(excludes, list):
        return []  # a bad polygon is reported with its line by validation
    problems: list[str] = []
    zone = Polygon(area)
    for k, points in enumerate(excludes):
        ex = _outline(points)
        if ex is None:
            continue
        if Polygon(ex).intersection(zone).area <= 0:
            problems.append(doc.problem(("zones", i, "exclude", k), "this exclusion does not overlap its zone's "
                                        "polygon, so it has no effect (x and y swapped?)"))
        elif Polygon(ex).covers(zone):
            problems.append(doc.problem(("zones", i, "exclude", k), "this exclusion covers the whole zone, so "
                                        "the zone can never alarm"))
    return problems


_OUTLINE: TypeAdapter[list] = TypeAdapter(Outline)


def _outline(value: Any) -> list | None:
    try:
        return _OUTLINE.validate_python(value)
    except ValidationError:
        return None


def _unknown_label(label: str, names: list[str], model: str) -> str:
    close = difflib.get_close_matches(label, names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    return f"{label!r} is not a class of model {model}; {hint}known labels: {shown}"


def collect_zones(path: str | Path, class_names: list[str] | None,
                model: str) -> tuple[ZoneFile | None, list[str]]:
    doc, zf, problems = load_doc(path, ZoneFile)
    if doc is not None and isinstance(doc.data, dict):
        problems = by_line(problems + _check_zones(doc, class_names, model))
    return (zf if not problems else None), problems


def load_zones(path: str | Path, class_names: list[str] | None = None, model: str = "the detector") -> ZoneFile:
    """Load one zone file; labels are checked against `class_names` when given (None: not checked)."""
    zf, problems = collect_zones(path, class_names, model)
    if problems or zf is None:
        raise ConfigError(problems)
    return zf


def model_class_names(model: str) -> list[str] | None:
    """The class names the configured model knows; None when it cannot tell (then labels go unchecked).

    Raises EdgeAgentError (ModelError) when the model is neither a known name nor an existing file.
    """
    try:
        from ..detect.registry import class_names
    except ImportError as exc:  # a stripped install without the detector stack
        log.debug("detector registry unavailable (%s); checking labels against COCO-80", exc)
        return list(COCO80)
    return list(class_names(model)) or None


# ---- everything ----------------------------------------------------------------------------------

def collect(config_path: str | Path) -> tuple[AgentConfig | None, dict[str, ZoneFile], list[str]]:
    """Load cameras.yaml and every enabled camera's zone file without raising.

    Zone files are checked even when cameras.yaml has problems: each camera entry with a usable id
    names its file, so one run of `edge-agent check` shows the problems of every file.
    """
    doc, cfg, problems = _load_config(config_path)
    zones: dict[str, ZoneFile] = {}
    if doc is None or not isinstance(doc.data, dict):
        return None, zones, problems
    model = _get(doc.data, "detector", "model")
    model = model if isinstance(model, str) else Detector().model
    names = None
    try:
        names = model_class_names(model)
    except EdgeAgentError as exc:
        problems.append(doc.problem(("detector", "model"), str(exc)))
    in_files: list[str] = []  # problems inside the zone files, after those of cameras.yaml
    for i, raw in _items(doc.data, "cameras"):
        cam_id, zones_key = raw.get("id"), raw.get("zones")
        if not isinstance(cam_id, str) or not cam_id or not isinstance(zones_key, (str, type(None))):
            continue  # reported by validation
        path = resolve(config_path, zones_key or Path("zones") / f"{cam_id}.yaml")
        if not path.is_file():
            if raw.get("enabled") is not False:
                key = ("cameras", i, "zones") if zones_key else ("cameras", i, "id")
                problems.append(doc.problem(key, f"zone file {path} not found for camera {cam_id!r}; create "
                                            "it or point `zones:` at one"))
            continue
        zf, more = collect_zones(path, names, model)
        in_files += more
        if zf is not None:
            zones[cam_id] = zf
    problems = by_line(problems) + in_files
    return (cfg if not problems else None), zones, problems


def load_all(config_path: str | Path) -> tuple[AgentConfig, dict[str, ZoneFile]]:
    """cameras.yaml and the zone file of each camera, all checked; ConfigError lists every problem."""
    cfg, zones, problems = collect(config_path)
    if problems or cfg is None:
        raise ConfigError(problems)
    return cfg, zones
