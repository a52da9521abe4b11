"""The one config loader: YAML -> pydantic models, every problem reported as `file:line: key: what`.

YAML is composed to nodes first so each value keeps the line it was written on; pydantic's error
`loc` is then walked through the nodes to find that line. All problems of all files are collected
and raised together as one `ConfigError`, so a field technician fixes them in one pass.
Relative paths inside cameras.yaml to files it reads (zone files, patrol file, password and TLS
files) resolve against the folder that holds cameras.yaml; paths the agent writes (outbox, media
store, engine cache) against the folder it runs in (`data_path`).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Callable, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError, EdgeAgentError
from .messages import YamlDoc, describe, parse_yaml
from .crosscheck import check_config, check_secrets, is_url, resolve
from .messages import get_in, items_in
from .models import AgentConfig, Camera, Detector, ZoneFile
from .zonecheck import check_zone_file

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

def zones_path(config_path: str | Path, camera: Camera) -> Path:
    """The camera's zone file: its `zones:` key, else `zones/<id>.yaml` beside the cameras file."""
    return resolve(config_path, camera.zones or Path("zones") / f"{camera.id}.yaml")


# ---- cameras.yaml --------------------------------------------------------------------------------

def _load_config(path: str | Path, secrets: bool = False) -> tuple[YamlDoc | None, AgentConfig | None, list[str]]:
    doc, cfg, problems = load_doc(path, AgentConfig)
    if doc is not None and isinstance(doc.data, dict):
        problems = by_line(problems + check_config(doc) + (check_secrets(doc) if secrets else []))
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
        if not is_url(url) and not Path(url).exists() and resolve(config_path, url).exists():
            url = str(resolve(config_path, url))
        cams.append(cam.model_copy(update={"url": url, "zones": str(zones_path(config_path, cam)),
                                           "password_file": fix(cam.password_file)}))
    mqtt = cfg.mqtt.model_copy(update={
        "password_file": fix(cfg.mqtt.password_file),
        "tls": None if cfg.mqtt.tls is None else cfg.mqtt.tls.model_copy(update={
            k: fix(getattr(cfg.mqtt.tls, k)) for k in ("ca_file", "cert_file", "key_file")}),
        "outbox": cfg.mqtt.outbox.model_copy(update={"path": data_path(cfg.mqtt.outbox.path)}),
    })
    return cfg.model_copy(update={
        "cameras": cams,
        "patrol": fix(cfg.patrol),
        "mqtt": mqtt,
        "http": cfg.http.model_copy(update={"token_file": fix(cfg.http.token_file),
                                            "control_token_file": data_path(cfg.http.control_token_file)}),
        "alarms": cfg.alarms.model_copy(update={"store_dir": data_path(cfg.alarms.store_dir)}),
        "detector": cfg.detector.model_copy(update={"trt_cache_dir": data_path(cfg.detector.trt_cache_dir)}),
    })


def data_path(value: str) -> str:
    """What the agent writes (outbox, media, engine cache): relative to the folder it runs in, the
    project folder (in the container /opt/edge-agent, whose data/ is the data volume), never beside
    the config: the config folder is the read-mostly config volume."""
    return os.path.abspath(Path(value).expanduser())


def load_config(path: str | Path) -> AgentConfig:
    """Load and check cameras.yaml (not the zone files); raise ConfigError with every problem."""
    _, cfg, problems = _load_config(path)
    if problems or cfg is None:
        raise ConfigError(problems)
    return cfg


# ---- zone files ----------------------------------------------------------------------------------

def collect_zones(path: str | Path, class_names: list[str] | None,
                model: str) -> tuple[ZoneFile | None, list[str]]:
    doc, zf, problems = load_doc(path, ZoneFile)
    if doc is not None and isinstance(doc.data, dict):
        problems = by_line(problems + check_zone_file(doc, class_names, model))
    return (zf if not problems else None), problems


def load_zones(path: str | Path, class_names: list[str] | None = None, model: str = "the detector") -> ZoneFile:
    """Load one zone file; labels are checked against `class_names` when given (None: not checked)."""
    zf, problems = collect_zones(path, class_names, model)
    if problems or zf is None:
        raise ConfigError(problems)
    return zf


ClassNames = Callable[[str], "list[str] | None"]  # model -> the labels its zones may use (None: unchecked)


def coco80(model: str) -> list[str]:
    """Zone labels checked against COCO-80: for callers with no detector at hand. The agent and
    `edge-agent check` pass the detector registry's `zone_labels`, which knows every model."""
    return list(COCO80)


# ---- everything ----------------------------------------------------------------------------------

def collect(config_path: str | Path,
            class_names: ClassNames = coco80) -> tuple[AgentConfig | None, dict[str, ZoneFile], list[str]]:
    """Load cameras.yaml and every enabled camera's zone file without raising.

    Zone files are checked even when cameras.yaml has problems: each camera entry with a usable id
    names its file, so one run of `edge-agent check` shows the problems of every file.
    """
    doc, cfg, problems = _load_config(config_path, secrets=True)
    zones: dict[str, ZoneFile] = {}
    if doc is None or not isinstance(doc.data, dict):
        return None, zones, problems
    model = get_in(doc.data, "detector", "model")
    model = model if isinstance(model, str) else Detector().model
    names = None
    try:
        names = class_names(model)
    except EdgeAgentError as exc:
        problems.append(doc.problem(("detector", "model"), str(exc)))
    in_files: list[str] = []  # problems inside the zone files, after those of cameras.yaml
    for i, raw in items_in(doc.data, "cameras"):
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


def load_all(config_path: str | Path, class_names: ClassNames = coco80) -> tuple[AgentConfig, dict[str, ZoneFile]]:
    """cameras.yaml and the zone file of each camera, all checked; ConfigError lists every problem."""
    cfg, zones, problems = collect(config_path, class_names)
    if problems or cfg is None:
        raise ConfigError(problems)
    return cfg, zones
