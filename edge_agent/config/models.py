"""What the YAML files may say: pydantic models with `extra="forbid"`.

`configs/cameras.yaml` is an `AgentConfig`; each `configs/zones/<camera>.yaml` is a `ZoneFile`.
Geometry is in normalized coordinates (x, y as fractions of width and height) so one zone file
fits a camera's main and sub stream alike. Cross-field checks that need the model's class names
or the file system live in `config/loader.py`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# A coordinate as a fraction of width or height; 0..1 keeps one zone file valid for every stream size.
Coord = Annotated[float, Field(ge=0, le=1)]
Point = tuple[Coord, Coord]
ZoneKind = Literal["rail", "water", "shore", "restricted"]
AnchorName = Literal["bottom_center", "center", "top_center", "bottom_left", "bottom_right"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The rules stage owns what a usable polygon and a schedule window are (it compiles them); the
# model asks it, imported late because rules imports these models.
def _check_window(text: str) -> str:
    from ..rules.schedule import parse_window

    parse_window(text)
    return text


def _check_polygon(points: list[Point]) -> list[Point]:
    from ..rules.zones import polygon_problem

    problem = polygon_problem(points)
    if problem:
        raise ValueError(problem)
    return points


# Validated per item so each bad window or exclusion is reported at its own line.
Window = Annotated[
    str,
    AfterValidator(_check_window),
    Field(json_schema_extra={"pattern": r"^\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*$"}, examples=["19:00-06:00"]),
]
Outline = Annotated[list[Point], AfterValidator(_check_polygon), Field(min_length=3)]


class Zone(Strict):
    name: str = Field(min_length=1, description="Unique within the camera; appears in every alarm.")
    kind: ZoneKind
    polygon: Outline = Field(description="[[x, y], ...] as fractions of width, height (0..1), in outline order.")
    labels: list[str] = Field(min_length=1, description="Class names of the loaded model, e.g. person, boat.")
    dwell_s: float = Field(1.0, ge=0, description="Seconds an object must stay inside before the alarm.")
    min_score: float = Field(0.3, ge=0, le=1)
    min_size: float = Field(0.0, ge=0, le=1, description="Minimum box height as a fraction of frame height.")
    anchor: AnchorName = "bottom_center"
    cooldown_s: float = Field(30.0, ge=0, description="A track that leaves may alarm again after this long.")
    schedule: list[Window] | None = Field(
        None,
        description='Local time windows in the site time zone, e.g. ["19:00-06:00"] (may cross midnight); '
        "absent = always.",
    )
    stationary_s: float | None = Field(
        None,
        gt=0,
        description="An object that stays put this long raises `stationary`; such a zone raises no `intrusion` "
        "(dwell_s is then unused).",
    )
    stationary_radius: float = Field(0.03, gt=0, le=1, description="How far (fraction of width) counts as put.")
    exclude: list[Outline] = Field(default_factory=list, description="Polygons inside the zone where nothing counts.")
    enabled: bool = True


class ZoneFile(Strict):
    zones: list[Zone] = Field(default_factory=list)


class Site(Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = ""
    timezone: str = "UTC"


class Device(Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")


class Location(Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Camera(Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = ""
    url: str = Field(min_length=1, description="rtsp://user:pass@host/path or a video file path.")
    substream_url: str | None = Field(None, description="Lower-resolution stream for detection; clips use `url`.")
    detect_fps: float = Field(5.0, gt=0, le=60)
    zones: str | None = Field(None, description="Zone file; default configs/zones/<id>.yaml beside this file.")
    location: Location | None = None
    enabled: bool = True
    stall_timeout_s: float = Field(10.0, gt=0, description="No frame this long: the camera is stalled.")
    offline_alarm_s: float = Field(60.0, ge=0, description="Offline or stalled this long: camera_offline alarm.")
    idle_interval_s: float = Field(2.0, ge=0, description="No motion, no track: analyse only this often.")
    loop: bool = Field(False, description="File sources only: start again at the end (demo cameras).")


class Detector(Strict):
    model: str = Field("yolov3-tiny", description="A name from models/models.yaml or a path to .onnx/.pt/.engine.")
    providers: list[Literal["cpu", "cuda", "tensorrt"]] = Field(default_factory=lambda: ["cpu"])
    min_score: float = Field(0.25, ge=0, le=1, description="Lowest score the detector reports.")
    trt_fp16: bool = True
    trt_cache_dir: str = "models/cache"
    max_batch: int = Field(4, ge=1, le=64)
    max_wait_ms: float = Field(20.0, ge=0)
    stall_s: float = Field(30.0, gt=0, description="Frames waiting this long for the detector or analytics "
                           "thread: the agent is unhealthy (container health check, systemd watchdog).")


class Alarms(Strict):
    pre_roll_s: float = Field(3.0, ge=0, le=60)
    post_roll_s: float = Field(3.0, ge=0, le=60)
    max_clip_s: float = Field(30.0, gt=0, le=600)
    snapshot_quality: int = Field(85, ge=30, le=100)
    store_dir: str = Field("data/media", description="Local snapshot and clip store (used when MQTT is off).")
    store_quota_mb: float = Field(1024.0, gt=0, description="Disk the local store may use; oldest clips go first.")


class Tls(Strict):
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False


class Outbox(Strict):
    path: str = "data/outbox.sqlite"
    media_quota_mb: float = Field(512.0, gt=0)
    synchronous: Literal["full", "normal"] = Field(
        "full", description="SQLite fsync policy: full survives power loss, normal only a process crash."
    )


class Mqtt(Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = "5"
    client_id: str | None = Field(None, description="Default: edge-agent-<site>-<device>.")
    username: str | None = None
    password: str | None = None
    password_env: str | None = Field(None, description="Environment variable that holds the password.")
    password_file: str | None = Field(None, description="File whose first line is the password.")
    tls: Tls | None = None
    topic_prefix: str = "edge"
    qos: Literal[0, 1, 2] = 1
    chunk_size: int = Field(128 * 1024, ge=1024, description="Bytes per media chunk message.")
    keepalive_s: int = Field(30, ge=5)
    health_interval_s: float = Field(30.0, gt=0)
    command_secret: str | None = None
    command_secret_env: str | None = None
    require_signed_commands: bool = False
    command_max_ttl_s: float = Field(3600.0, gt=0, description="Commands may expire at most this far ahead.")
    max_inflight: int = Field(20, ge=1, le=1000, description="Messages sent and not yet acknowledged.")
    reconnect_min_s: int = Field(1, ge=1)
    reconnect_max_s: int = Field(30, ge=1)
    session_expiry_s: int = Field(7 * 24 * 3600, ge=0, description="MQTT 5 persistent session lifetime.")
    outbox: Outbox = Field(default_factory=Outbox)


class Http(Strict):
    """The technicians' and monitoring endpoint: /metrics (Prometheus), /health, /snapshot/<camera>.jpg."""

    enabled: bool = True
    listen: str = Field("127.0.0.1:9108", pattern=r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$",
                        description="host:port; anything but loopback needs token_file.")
    token_file: str | None = Field(None, description="File whose first line is the bearer token every request "
                                   "must carry (Authorization: Bearer ...); required off loopback.")

    @model_validator(mode="after")
    def _token_off_loopback(self) -> "Http":
        host = self.listen.rpartition(":")[0].strip("[]")
        if self.enabled and host not in ("127.0.0.1", "localhost", "::1") and not self.token_file:
            raise ValueError(f"listen {self.listen} is reachable from other machines: set http.token_file")
        return self


class AgentConfig(Strict):
    site: Site
    device: Device
    detector: Detector = Field(default_factory=Detector)
    alarms: Alarms = Field(default_factory=Alarms)
    mqtt: Mqtt = Field(default_factory=Mqtt)
    http: Http = Field(default_factory=Http)
    patrol: str | None = Field(None, description="Patrol points file, e.g. patrol_points.yaml beside this file.")
    cameras: list[Camera] = Field(default_factory=list)
