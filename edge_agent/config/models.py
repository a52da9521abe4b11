"""What the YAML files may say: pydantic models with `extra="forbid"`.

`configs/cameras.yaml` is an `AgentConfig`; each `configs/zones/<camera>.yaml` is a `ZoneFile`.
Geometry is in normalized coordinates (x, y as fractions of width and height) so one zone file
fits a camera's main and sub stream alike. Cross-field checks that need the model's class names
or the file system live in `config/loader.py`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag,
                      model_validator)

from .geometry import polygon_problem
from .timeofday import parse_window

# A coordinate as a fraction of width or height; 0..1 keeps one zone file valid for every stream size.
Coord = Annotated[float, Field(ge=0, le=1)]
Point = tuple[Coord, Coord]
ZoneKind = Literal["rail", "water", "shore", "restricted"]
AnchorName = Literal["bottom_center", "center", "top_center", "bottom_left", "bottom_right"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_window(text: str) -> str:
    parse_window(text)
    return text


def _check_polygon(points: list[Point]) -> list[Point]:
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


class TrackScore(Strict):
    """The median rule: one lucky frame of a rock scored 0.7 among its 0.3s does not raise an alarm."""

    median: float | None = Field(None, ge=0, le=1, description="A track may raise an alarm only when at least half "
                                 "of its last `window` detections score this much (the median of their scores "
                                 "reaches it); a younger track counts its missing detections as 0. Default: the "
                                 "zone's or line's own min_score, asked of most detections instead of one.")
    window: int = Field(5, ge=1, le=100, description="How many of the track's latest detections the median is over.")


def _check_aspect(value: tuple[float, float]) -> tuple[float, float]:
    if value[0] >= value[1]:
        raise ValueError(f"aspect [{value[0]:g}, {value[1]:g}] must be [low, high] with low < high")
    return value


class ObjectFilter(Strict):
    """Which detections a zone or a line counts; a detection that fails counts as not seen (a weak frame)."""

    labels: list[str] = Field(min_length=1, description="Class names of the loaded model, e.g. person, boat.")
    min_score: float = Field(0.3, ge=0, le=1)
    min_size: float = Field(0.008, ge=0, le=1, description="Minimum box height as a fraction of frame height "
                            "(0.008: 9 px at 1080p, 3 px at 360p: leftovers, not objects; a 35 px long boat "
                            "far out is taller).")
    max_size: float = Field(0.8, gt=0, le=1, description="Maximum box height as a fraction of frame height: a "
                            "spider or a raindrop on the lens, not a person.")
    aspect: Annotated[tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]],
                      AfterValidator(_check_aspect)] = Field(
        (0.1, 10.0), description="[low, high] box width / height; the default drops only slivers (a wave "
        "crest, a pole), never a standing person (~0.4) or a long boat (~4).")
    track_score: TrackScore = Field(default_factory=TrackScore)
    anchor: AnchorName = "bottom_center"


class Zone(ObjectFilter):
    name: str = Field(min_length=1, description="Unique within the camera (zones and lines); appears in every alarm.")
    kind: ZoneKind
    polygon: Outline = Field(description="[[x, y], ...] as fractions of width, height (0..1), in outline order.")
    dwell_s: float = Field(1.0, ge=0, description="Seconds an object must stay inside before the alarm.")
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


def _check_segment(points: tuple[Point, Point]) -> tuple[Point, Point]:
    if points[0] == points[1]:
        raise ValueError("the line's two points are the same point; a line needs two different points")
    return points


class Line(ObjectFilter):
    """A directional tripwire: `line_crossed` when a track's anchor crosses the segment A-B."""

    name: str = Field(min_length=1, description="Unique within the camera (zones and lines); the event's `zone`.")
    points: Annotated[tuple[Point, Point], AfterValidator(_check_segment)] = Field(
        description="[A, B]: the segment's ends as fractions of width, height; only a crossing of the segment "
        "itself counts, not of its extension.")
    direction: Literal["in", "out", "both"] = Field(
        "both", description="`in`: from the left of A->B to its right, as the picture is seen (y down; left is "
        "where (B - A) x (P - A) < 0): a line drawn bottom to top counts left-to-right crossings, one drawn left "
        "to right counts downward ones; `out`: the reverse; `both`: either.")
    hysteresis: float = Field(0.02, ge=0, le=0.5, description="The anchor must be this far (fraction of frame "
                              "width) from the line on one side, then on the other: jitter on the line never "
                              "counts, nor a track that turns back before it.")
    schedule: list[Window] | None = Field(None, description="As for zones; absent = always.")
    enabled: bool = True


class Background(Strict):
    """Objects already there, motionless, when the camera started are background (a rock called "person")."""

    enabled: bool = True
    learn_s: float = Field(10.0, ge=0, description="Tracks first seen within this many seconds of the camera's "
                           "first analysed frame may be background.")
    radius: float = Field(0.02, gt=0, le=1, description="Such a track stays background until its box centre lies "
                          "this far (fraction of frame width) from where it was first seen (a track scored under "
                          "`weak_below`: the median of its last centres, and farther than its first box was wide); "
                          "then it counts, for good.")
    weak_below: float | None = Field(0.4, ge=0, le=1, description="A track born later whose first detection scores "
                                     "below this is held the same way until it travels as above or half its recent "
                                     "detections score this much (a reflection in moving water called \"person\" "
                                     "appears in place and never travels); null: only start-up tracks are held.")
    sure_above: float | None = Field(0.5, ge=0, le=1, description="A track there from the start counts, still or "
                                     "not, once half its recent detections score this much: the detector is sure of "
                                     "it (rocks called \"person\" on the project's footage score 0.29-0.44, far "
                                     "people standing still 0.6-0.8); null: only moving lets it count.")


class FrameSize(Strict):
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class ZoneFile(Strict):
    zones: list[Zone] = Field(default_factory=list)
    lines: list[Line] = Field(default_factory=list, description="Directional line crossings (`line_crossed`).")
    masks: list[Outline] = Field(default_factory=list, description="Polygons where detections are ignored by every "
                                 "zone and line (a statue, a buoy, a reflection): a box whose centre is inside.")
    background: Background = Field(default_factory=Background)
    frame: FrameSize | None = Field(None, description="The picture size (pixels) the zones were drawn on, written "
                                    "by `edge-agent zones edit`: `edge-agent check` warns when the camera's picture "
                                    "no longer has its aspect ratio (the normalised zones would be stretched).")


class Site(Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = ""
    timezone: str = "UTC"


class Device(Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")


class Location(Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class TileGrid(Strict):
    """Tiles of a set size instead of the `auto` ones: each is detected at the model's input size."""

    size: int = Field(ge=64, le=4096, description="Tile width and height in stream pixels; the model's input "
                      "size (416 for nanodet-g-416 and yolov3-tiny) detects each tile without shrinking it.")
    overlap: float = Field(0.25, ge=0, le=0.75, description="Share of a tile its neighbour covers too: an object "
                           "smaller than size x overlap lies whole inside some tile.")
    sweep_s: float = Field(10.0, gt=0, description="Every tile runs at least this often, the sweep spread over the "
                           "frames a tile or two at a time; besides it only tiles with motion or with a "
                           "small object found in them lately run.")


def _tiles_word(value: object) -> object:
    # YAML 1.1 reads a bare `off` as false (and `on` as true): take them as the words they were.
    if isinstance(value, bool):
        return "off" if value is False else "auto"
    if isinstance(value, (dict, TileGrid)) or value in ("auto", "off"):
        return value
    raise ValueError(f"must be auto, off or a mapping {{size, overlap, sweep_s}}, got {value!r}")


# Routed by shape, so a wrong tile size is reported as that and not also as "not auto or off".
Tiles = Annotated[
    Annotated[Literal["auto", "off"], Tag("word")] | Annotated[TileGrid, Tag("grid")],
    Discriminator(lambda v: "word" if isinstance(v, str) else "grid"),
    BeforeValidator(_tiles_word),
]
TILES_HELP = ("Sliced inference where the zones are, in addition to the full frame: `auto` lays tiles of the "
              "model's input size over the zones' region when the full frame would shrink small objects "
              "(the stream is over twice the input size), `off`, or {size, overlap, sweep_s}.")


class Camera(Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = ""
    url: str = Field(min_length=1, description="rtsp://host:554/path (user and password from the keys below, "
                     "or ${VAR} from the environment) or a video file path.")
    substream_url: str | None = Field(None, description="Lower-resolution stream for detection; clips use `url`.")
    username: str | None = Field(None, description="Camera user, put into url and substream_url when opened.")
    password_env: str | None = Field(None, description="Environment variable that holds the camera password.")
    password_file: str | None = Field(None, description="File whose first line is the camera password.")
    detect_fps: float = Field(5.0, gt=0, le=60)
    zones: str | None = Field(None, description="Zone file; default configs/zones/<id>.yaml beside this file.")
    location: Location | None = None
    enabled: bool = True
    stall_timeout_s: float = Field(10.0, gt=0, description="No frame this long: the camera is stalled.")
    offline_alarm_s: float = Field(60.0, ge=0, description="Offline or stalled this long: camera_offline alarm.")
    idle_interval_s: float = Field(2.0, ge=0, description="No motion, no track: analyse only this often.")
    idle_unchanged_max_s: float = Field(
        10.0, ge=0, description="An idle check whose picture has not changed since the detector last saw it "
        "(by 6 levels of 255 on a few pixels of the zones' region; water and rain only beyond their usual change) "
        "is skipped until the last analysis is this old: it would find what that one found. 0: every idle check "
        "runs.")
    motion_learning: bool = Field(True, description="The motion gate learns where the picture moves steadily "
                                  "(water, glitter, rain; in about half a minute) and opens only for motion unusual "
                                  "there; health: steady_motion. false: any motion opens it.")
    loop: bool = Field(False, description="File sources only: start again at the end (demo cameras).")
    keyframe_decode_max_gop_s: float = Field(
        2.0, ge=0, description="RTSP: while the camera is quiet (no motion, no track for 3 s), decode only its "
        "keyframes, if its measured GOP (health: gop_s) is at most this long; full decode resumes with the "
        "keyframe that shows motion, so an alarm is late by at most one GOP. 0: always decode every frame.")
    keyframe_decode_overload_max_gop_s: float = Field(
        5.0, ge=0, description="RTSP: while the box is overloaded (health: overload.shed has `decode`), a quiet "
        "camera decodes only its keyframes whatever keyframe_decode_max_gop_s says, if its GOP is at most this "
        "long: its alarm may be late by one GOP, but the box keeps up. A longer GOP could hide a person crossing "
        "between two keyframes, so such a camera keeps full decode. 0: never for overload.")
    hwaccel: Literal["off", "cuda", "vaapi", "qsv", "drm"] = Field(
        "off", description="RTSP: decode on this FFmpeg hardware device; when it cannot be opened the camera "
        "decodes in software (health: hw_decode says which, with the reason).")
    tiles: Tiles | None = Field(None, description="This camera's tiles; default: detector.tiles. " + TILES_HELP)
    detect_stream: Literal["auto", "main", "substream"] = Field(
        "auto", description="With substream_url: the stream the motion gate and the detector decode (clips are "
        "always cut from `url`). auto: the substream, unless this camera's tiles (its own or detector.tiles) are "
        "on: tiles are for far objects, which a 640x360 substream is too small to show (README, measured by "
        "scripts/bench_substream.py), so such a camera detects on the main stream. Health: detect_stream.")

    @model_validator(mode="after")
    def _substream_to_detect_on(self) -> "Camera":
        if self.detect_stream == "substream" and not self.substream_url:
            raise ValueError("detect_stream is substream, but the camera has no substream_url")
        return self


class Detector(Strict):
    model: str = Field("nanodet-g-416", description="A name from models/models.yaml or a path to .onnx/.pt/.engine.")
    providers: list[Literal["cpu", "cuda", "tensorrt"]] = Field(default_factory=lambda: ["cpu"])
    min_score: float = Field(0.25, ge=0, le=1, description="Lowest score the detector reports.")
    trt_fp16: bool = True
    trt_cache_dir: str = "models/cache"
    max_batch: int = Field(4, ge=1, le=64)
    max_wait_ms: float = Field(20.0, ge=0)
    rect_input: bool = Field(True, description="Letterbox full frames into the smallest multiple of the model's "
                             "stride that holds them (416x288 for 16:9 on a 416 model: 0.7x the work) where the "
                             "model's graph allows; off: its square input. TensorRT always runs the square.")
    tiles: Tiles = Field("auto", description=TILES_HELP)
    stall_s: float = Field(30.0, gt=0, description="Frames waiting this long for the detector or analytics "
                           "thread: the agent is unhealthy (container health check, systemd watchdog).")
    max_motion_gap_s: float = Field(1.0, gt=0, description="Overload: a camera with motion or an open track is "
                                    "analysed at least this often; one that waits longer raises "
                                    "`analysis_degraded` until it is served again.")


class Alarms(Strict):
    pre_roll_s: float = Field(3.0, ge=0, le=60)
    post_roll_s: float = Field(3.0, ge=0, le=60)
    max_clip_s: float = Field(30.0, gt=0, le=600)
    snapshot_quality: int = Field(85, ge=30, le=100)
    store_dir: str = Field("data/media", description="Snapshots, clips and events.jsonl when mqtt.enabled is "
                           "false (with MQTT they wait in the outbox); relative: from the folder the agent runs in.")
    store_quota_mb: float = Field(1024.0, gt=0, description="Disk the local store may use; oldest clips go first.")


class Tls(Strict):
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False


class Outbox(Strict):
    path: str = Field("data/outbox.sqlite", description="Alarms and their media wait here until the broker "
                      "has them; relative: from the folder the agent runs in.")
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
    chunk_size: int = Field(64 * 1024, ge=1024, description="Bytes per media chunk message; with topic and "
                            "header under AWS IoT Core's 128 KB and EMQX's 1 MB (docs/mqtt.md).")
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
    control_token_file: str = Field("data/control.token", description="The agent writes a new random token here "
                                    "(mode 0600) at each start; a POST that changes the running agent (the zone "
                                    "editor's per-camera apply) must carry it. Relative: from the folder the agent "
                                    "runs in.")

    @model_validator(mode="after")
    def _token_off_loopback(self) -> "Http":
        host = self.listen.rpartition(":")[0].strip("[]")
        if self.enabled and host not in ("127.0.0.1", "localhost", "::1") and not self.token_file:
            raise ValueError(f"listen {self.listen} is reachable from other machines: set http.token_file")
        return self


class EditorAccess(Strict):
    """Who may use `edge-agent zones edit` when it listens beyond loopback (see the README)."""

    password_hash: str | None = Field(None, description="argon2 hash of the editor's password (user `technician`); "
                                      "required when the editor listens on anything but loopback.")
    allowed_hosts: list[str] = Field(default_factory=list, description="Host header values accepted besides the "
                                     "listen address, localhost and 127.0.0.1.")


class AgentConfig(Strict):
    site: Site
    device: Device
    detector: Detector = Field(default_factory=Detector)
    alarms: Alarms = Field(default_factory=Alarms)
    mqtt: Mqtt = Field(default_factory=Mqtt)
    http: Http = Field(default_factory=Http)
    patrol: str | None = Field(None, description="Patrol points file, e.g. patrol_points.yaml beside this file.")
    cameras: list[Camera] = Field(default_factory=list)
    editor: EditorAccess = Field(default_factory=EditorAccess)
