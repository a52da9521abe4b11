"""configs/central.yaml: the command centre's settings (`edge-agent central serve`).

Validated by the one loader (`file:line: key: problem`); `edge-agent check --central FILE` prints
every problem at once. Relative paths (database file, media folder) resolve against the folder
that holds the file, as in cameras.yaml.
"""

from __future__ import annotations

import os
import sys
import zoneinfo
from pathlib import Path

from pydantic import Field, field_validator

from ..errors import ConfigError
from .loader import load_doc, resolve
from .models import Mqtt, Strict

DISPOSITIONS = ("true_alarm", "false_alarm", "nuisance", "test")


class Database(Strict):
    url: str = Field("sqlite:///central.sqlite", description="sqlite:///FILE (relative to this file) or "
                     "postgresql://user@host:port/db")

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not v.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return v


class MediaStore(Strict):
    dir: str = Field("central-media", description="Snapshots and clips, one folder per event.")
    max_age_days: float = Field(90.0, gt=0, description="Media of older alarms is deleted.")
    max_gb: float = Field(50.0, gt=0, description="Oldest media goes first past this size.")


class Http(Strict):
    listen: str = Field("127.0.0.1:8080", description="host:port the console listens on.")
    allowed_hosts: list[str] = Field(default_factory=list, description="Host header values accepted besides "
                                     "the listen address, localhost and 127.0.0.1 (e.g. the name operators use).")
    session_hours: float = Field(12.0, gt=0)
    max_failed_logins: int = Field(5, ge=1, description="Failed log-ins per user and address per 5 minutes.")

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, e.g. 127.0.0.1:8080")
        return v

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class DeviceSecret(Strict):
    command_secret: str | None = None
    command_secret_env: str | None = Field(None, description="Environment variable holding the secret.")

    def secret(self) -> str | None:
        return self.command_secret or (os.environ.get(self.command_secret_env) if self.command_secret_env else None)


class Workflow(Strict):
    priority: dict[str, int] = Field(
        default_factory=lambda: {"rail": 1, "water": 2, "shore": 3, "restricted": 4},
        description="Zone kind -> priority (1 first); camera alarms and unknown kinds come after.")
    group_window_s: float = Field(600.0, ge=0, description="A repeat (same camera, zone, type) within this "
                                  "time of the last one is counted on the open alarm instead of a new one.")
    escalate_after_s: float = Field(120.0, gt=0, description="A new alarm not acknowledged by then escalates.")
    ack_ttl_s: float = Field(600.0, gt=0, description="Lifetime of the signed ack command.")


class MapRef(Strict):
    x: float = Field(ge=0, description="Pixel column in the image.")
    y: float = Field(ge=0, description="Pixel row in the image.")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class MapImage(Strict):
    file: str = Field(min_length=1, description="PNG or JPEG of the site, north up; relative to this file.")
    ref: tuple[MapRef, MapRef] = Field(description="Two pixels whose lat/lon are known, apart in both directions.")

    @field_validator("ref")
    @classmethod
    def _apart(cls, v: tuple[MapRef, MapRef]) -> tuple[MapRef, MapRef]:
        a, b = v
        if a.x == b.x or a.y == b.y or a.lat == b.lat or a.lon == b.lon:
            raise ValueError("the two reference points must differ in x, y, lat and lon")
        return v


class MapView(Strict):
    """The map's background. None set: a plain lat/lon plot (no tile server anywhere)."""

    image: MapImage | None = Field(None, description="An operator-supplied picture of the site.")
    tiles: str | None = Field(None, description="A folder of offline tiles, <z>/<x>/<y>.png; relative to this file.")
    max_zoom: int = Field(18, ge=1, le=22)
    stale_after_s: float = Field(90.0, gt=0, description="A box that has sent nothing this long is shown as silent.")


class CentralConfig(Strict):
    timezone: str = Field("UTC", description="Site time zone for display.")
    database: Database = Field(default_factory=Database)
    media: MediaStore = Field(default_factory=MediaStore)
    http: Http = Field(default_factory=Http)
    mqtt: Mqtt = Field(default_factory=Mqtt)
    devices: dict[str, DeviceSecret] = Field(default_factory=dict, description="`site/device` -> command secret.")
    workflow: Workflow = Field(default_factory=Workflow)
    map: MapView = Field(default_factory=MapView)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (e.g. Europe/Amsterdam)") from None
        return v

    @field_validator("devices")
    @classmethod
    def _device_keys(cls, v: dict[str, DeviceSecret]) -> dict[str, DeviceSecret]:
        for key in v:
            if key.count("/") != 1 or not all(key.split("/")):
                raise ValueError(f"device key {key!r} must be `site/device`")
        return v

    def secret_for(self, site: str, device: str) -> str | None:
        entry = self.devices.get(f"{site}/{device}")
        return entry.secret() if entry else None


def load_central(path: str | Path) -> CentralConfig:
    """Load and validate; raise ConfigError with every problem; paths made absolute."""
    _, cfg, problems = load_doc(path, CentralConfig)
    if problems or cfg is None:
        raise ConfigError(problems)
    url = cfg.database.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = "sqlite:///" + str(resolve(path, url[len("sqlite:///"):]).resolve())
    media = cfg.media.model_copy(update={"dir": str(resolve(path, cfg.media.dir).resolve())})
    view = cfg.map.model_copy(update={
        "tiles": str(resolve(path, cfg.map.tiles).resolve()) if cfg.map.tiles else None,
        "image": cfg.map.image.model_copy(update={"file": str(resolve(path, cfg.map.image.file).resolve())})
        if cfg.map.image else None})
    return cfg.model_copy(update={"database": Database(url=url), "media": media, "map": view})


def check_central(path: str | Path) -> int:
    """`edge-agent check --central FILE`: every problem as `file:line: key: what`, exit 2; else a summary."""
    try:
        cfg = load_central(path)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        print(f"edge-agent check: {len(exc.problems)} problem(s) in {path}", file=sys.stderr)
        return 2
    db = cfg.database.url.split("@")[-1] if "@" in cfg.database.url else cfg.database.url
    print(f"{path}: console on http://{cfg.http.listen}, database {db}, media in {cfg.media.dir}, "
          f"broker {cfg.mqtt.host}:{cfg.mqtt.port} prefix {cfg.mqtt.topic_prefix}, {len(cfg.devices)} device(s)")
    for key, dev in cfg.devices.items():
        if not dev.secret():
            where = f"{dev.command_secret_env} is not set in this shell" if dev.command_secret_env else "none given"
            print(f"warning: devices.{key}: no command secret ({where}): commands to it go unsigned")
    print("OK")
    return 0
