"""Every MQTT topic the agent and central command use, built in one place.

Device topics live under `<prefix>/<site>/<device>/`; docs/mqtt.md shows each with a payload.
Alarm-type events go to `alarms`, patrol events (see `PATROL_TYPES`) to `patrol`; media follow
the event under `<base>/<event_id>/<media>` (manifest) and `<base>/<event_id>/<media>/<index>`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..alarms.event import PATROL_TYPES

MEDIA_NAMES = ("snapshot", "clip")
REPLY = "reply"  # cmd/reply is ours: never dispatched as a command


def _check_level(name: str, what: str) -> str:
    if not name or any(c in name for c in "/+#\0"):
        raise ValueError(f"{what} {name!r} cannot be used in an MQTT topic (no '/', '+', '#' or empty)")
    return name


@dataclass(frozen=True)
class Topics:
    prefix: str
    site: str
    device: str

    def __post_init__(self) -> None:
        for part in self.prefix.split("/"):
            _check_level(part, "topic prefix level")
        _check_level(self.site, "site id")
        _check_level(self.device, "device id")

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.site}/{self.device}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def alarms(self) -> str:
        return f"{self.base}/alarms"

    @property
    def patrol(self) -> str:
        return f"{self.base}/patrol"

    @property
    def snapshots(self) -> str:
        """Answers to the `snapshot` command: `<base>/snapshots/<snapshot_id>/snapshot[/<index>]`."""
        return f"{self.base}/snapshots"

    def snapshot_manifest(self, snapshot_id: str) -> str:
        return f"{self.snapshots}/{_check_level(snapshot_id, 'snapshot id')}/snapshot"

    @property
    def health(self) -> str:
        return f"{self.base}/health"

    @property
    def inventory(self) -> str:
        """Retained: the box's cameras, zones and patrol points (ops/inventory.py)."""
        return f"{self.base}/inventory"

    @property
    def cmd_filter(self) -> str:
        return f"{self.base}/cmd/+"

    @property
    def cmd_reply(self) -> str:
        return f"{self.base}/cmd/{REPLY}"

    def cmd(self, name: str) -> str:
        return f"{self.base}/cmd/{_check_level(name, 'command name')}"

    def event_topic(self, event_type: str) -> str:
        """`patrol` for check-ins, presence and rejected badges; `alarms` for everything else."""
        return self.patrol if event_type in PATROL_TYPES else self.alarms

    def media_manifest(self, event_type: str, event_id: str, media: str) -> str:
        return f"{self.event_topic(event_type)}/{_check_level(event_id, 'event id')}/{media}"

    def patrol_status(self, point: str) -> str:
        return f"{self.patrol}/status/{_check_level(point, 'patrol point')}"

    def suffix(self, topic_suffix: str) -> str:
        """A topic under this device from a relative suffix such as `patrol/status/gate-3`."""
        parts = topic_suffix.strip("/").split("/")
        for part in parts:
            _check_level(part, "topic level")
        return f"{self.base}/{'/'.join(parts)}"


def chunk_topic(manifest_topic: str, index: int) -> str:
    return f"{manifest_topic}/{index}"


def central_filters(prefix: str) -> list[str]:
    """What central command subscribes to: every site and device under `prefix`."""
    p = prefix.strip("/")
    return [
        f"{p}/+/+/status",
        f"{p}/+/+/alarms",
        f"{p}/+/+/alarms/+/+",
        f"{p}/+/+/alarms/+/+/+",
        f"{p}/+/+/patrol",
        f"{p}/+/+/patrol/+/+",
        f"{p}/+/+/patrol/+/+/+",
        f"{p}/+/+/snapshots/+/+",
        f"{p}/+/+/snapshots/+/+/+",
        f"{p}/+/+/health",
        f"{p}/+/+/inventory",
        f"{p}/+/+/cmd/{REPLY}",
    ]


@dataclass(frozen=True)
class Parsed:
    """A received topic, split: kind is status|event|manifest|chunk|patrol_status|health|inventory|reply|other."""

    kind: str
    site: str = ""
    device: str = ""
    stream: str = ""  # alarms | patrol | snapshots
    event_id: str = ""
    media: str = ""
    index: int = -1
    point: str = ""


def parse(prefix: str, topic: str) -> Parsed:
    """Split a topic below `prefix` into what it carries; anything unexpected is `other`."""
    p = prefix.strip("/") + "/"
    if not topic.startswith(p):
        return Parsed("other")
    parts = topic[len(p):].split("/")
    if len(parts) < 3:
        return Parsed("other")
    site, device, rest = parts[0], parts[1], parts[2:]
    head = rest[0]
    if rest in (["status"], ["health"], ["inventory"]):
        return Parsed(rest[0], site, device)
    if rest == ["cmd", REPLY]:
        return Parsed("reply", site, device)
    if head not in ("alarms", "patrol", "snapshots"):
        return Parsed("other", site, device)
    if len(rest) == 1 and head != "snapshots":
        return Parsed("event", site, device, head)
    if head == "patrol" and rest[1] == "status" and len(rest) == 3:
        return Parsed("patrol_status", site, device, head, point=rest[2])
    if len(rest) == 3 and rest[2] in MEDIA_NAMES:
        return Parsed("manifest", site, device, head, rest[1], rest[2])
    if len(rest) == 4 and rest[2] in MEDIA_NAMES and rest[3].isdigit():
        return Parsed("chunk", site, device, head, rest[1], rest[2], int(rest[3]))
    return Parsed("other", site, device)
