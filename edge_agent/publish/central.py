"""`edge-agent central`: the reference subscriber for central command.

Subscribes to every site and device under the prefix with a persistent session, prints each
alarm as it arrives, writes `OUT/events.jsonl` (one line per distinct event phase) and
reassembles media into `OUT/media/<event_id>/<snapshot.jpg|clip.mp4>` after checking sha256.
Redelivered messages (the agent resends anything not acknowledged) are dropped: `start` and
`end` by (event_id, phase), `update` by (event_id, phase, payload hash) because one event may
have several updates. An event phase is complete when all media it references has arrived or
a later `update` says it was dropped; `--count N` exits after N complete event phases.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import ValidationError

from ..alarms.event import Event
from ..clock import parse_iso, site_time
from ..config.models import Mqtt
from ..errors import EdgeAgentError
from .mqtt import LinkOptions, MqttLink, Callbacks
from .topics import central_filters, parse

log = logging.getLogger("edge_agent.publish.central")
SUFFIX = {"snapshot": ".jpg", "clip": ".mp4"}
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # event and snapshot ids: uuids, snap-<hex>


def parse_manifest(payload: bytes) -> dict[str, Any] | None:
    """A media manifest (docs/mqtt.md) with its chunk count and sha256, or None when it has not."""
    try:
        manifest = json.loads(payload)
        int(manifest["chunks"]), str(manifest["sha256"]), int(manifest.get("size", 0))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return manifest


def verified(manifest: dict[str, Any], data: bytes) -> bool:
    """The reassembled bytes are what the manifest announced: its sha256 and size."""
    return hashlib.sha256(data).hexdigest() == manifest["sha256"] and len(data) == int(manifest.get("size", len(data)))


@dataclass
class Assembly:
    manifest: dict[str, Any] | None = None
    chunks: dict[int, bytes] = field(default_factory=dict)
    done: bool = False  # verified and handed over


class MediaAssembler:
    """Reassembles chunked media and checks it against its manifest's sha256 and size.

    `manifest` and `chunk` return the verified bytes when the message completed the media, else
    None; the caller calls `release` once it has stored them. Parts are held in memory: the
    reference subscriber acknowledges on receipt (the console keeps them in its database, see
    edge_agent/central/chunks.py).
    """

    def __init__(self) -> None:
        self._media: dict[tuple[str, str], Assembly] = {}
        self.counts = {"corrupt": 0, "invalid": 0}

    def _get(self, event_id: str, media: str) -> Assembly:
        return self._media.setdefault((event_id, media), Assembly())

    def _refused(self, event_id: str) -> bool:
        """An id that is not a plain name (`..` is a valid topic level) must not become a folder."""
        if SAFE_ID.fullmatch(event_id):
            return False
        self.counts["invalid"] += 1
        log.warning("media for id %r refused: not a plain name", event_id[:80])
        return True

    def manifest(self, event_id: str, media: str, payload: bytes) -> bytes | None:
        if self._refused(event_id):
            return None
        manifest = parse_manifest(payload)
        if manifest is None:
            self.counts["invalid"] += 1
            log.warning("invalid manifest for %s/%s", event_id, media)
            return None
        a = self._get(event_id, media)
        if a.done and a.manifest and a.manifest["sha256"] == manifest["sha256"]:
            return None  # redelivered after we already have it
        # Other bytes, or the same bytes cut again at another chunk size (for a broker's limit):
        # chunks held so far belong to the old cut and are forgotten.
        if a.manifest and (a.manifest["sha256"], a.manifest.get("chunk_size")) != (manifest["sha256"],
                                                                                 manifest.get("chunk_size")):
            a.chunks.clear()
        a.manifest, a.done = manifest, False
        return self._finish(event_id, media, a)

    def chunk(self, event_id: str, media: str, index: int, payload: bytes) -> bytes | None:
        if self._refused(event_id):
            return None
        a = self._get(event_id, media)
        if a.done:
            return None
        a.chunks[index] = payload
        return self._finish(event_id, media, a)

    def release(self, event_id: str, media: str) -> None:
        """The media returned by `manifest` or `chunk` is stored: forget its parts (redeliveries stay ignored)."""
        self._get(event_id, media).chunks.clear()

    def _finish(self, event_id: str, media: str, a: Assembly) -> bytes | None:
        m = a.manifest
        if m is None or len(a.chunks) < int(m["chunks"]):
            return None
        data = b"".join(a.chunks.get(i, b"") for i in range(int(m["chunks"])))
        if not verified(m, data):
            self.counts["corrupt"] += 1
            log.error("media %s/%s failed its sha256 check; waiting for a resend", event_id, media)
            a.chunks.clear()
            a.manifest = None
            return None
        a.done = True
        return data


class Central:
    """Receives, de-duplicates, reassembles; `handle` is called for every message."""

    def __init__(self, out: str | Path, prefix: str, echo: Callable[[str], None] | None = None,
                 show: set[str] | None = None, timezone: str = "UTC") -> None:
        self.out = Path(out)
        self.timezone = timezone  # ALARM lines are read by people: in the site's time with its offset
        self.show = show or set()  # also print "replies" (to commands) and "health" reports
        (self.out / "media").mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.echo = echo or (lambda line: print(line, flush=True))
        self._seen: set[tuple[str, ...]] = self._load_seen(self.out / "events.jsonl")
        self._events = open(self.out / "events.jsonl", "a", encoding="utf-8")
        if self._events.tell() and not (self.out / "events.jsonl").read_bytes().endswith(b"\n"):
            self._events.write("\n")  # end a line cut by a crash so the next one stays whole
        self.media = MediaAssembler()
        self._have: set[tuple[str, str]] = set()  # (event_id, media) written to disk
        self._waiting: dict[tuple[str, ...], set[tuple[str, str]]] = {}
        self._dropped: set[tuple[str, str]] = set()
        self.status: dict[str, Any] = {}  # "site/device" -> latest status payload
        self.health: dict[str, Any] = {}
        self.patrol_status: dict[str, Any] = {}  # "site/device/point" -> retained payload
        self.streams: dict[str, str] = {}  # event_id -> "alarms" | "patrol" (the topic it came on)
        self.complete = 0
        self.counts = self.media.counts  # one dict: the assembler counts corrupt and invalid media
        self.counts.update(events=0, duplicates=0, media=0)
        self.changed = threading.Condition()

    @staticmethod
    def _key(ev: Event, payload: bytes) -> tuple[str, ...]:
        key: tuple[str, ...] = (ev.event_id, ev.phase)
        return key + (hashlib.sha256(payload).hexdigest(),) if ev.phase == "update" else key

    @classmethod
    def _load_seen(cls, path: Path) -> set[tuple[str, ...]]:
        """Phases already written by an earlier run into the same folder: a restarted central must
        still drop what the agent resends."""
        seen: set[tuple[str, ...]] = set()
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    seen.add(cls._key(Event.from_json(line), line.encode()))
                except (ValidationError, ValueError):
                    continue  # a line cut by a crash: the resend will write it again
        return seen

    def handle(self, topic: str, payload: bytes) -> None:
        t = parse(self.prefix, topic)
        if t.kind == "event":
            self._event(payload, t.stream)
        elif t.kind == "manifest":
            self._manifest(t.event_id, t.media, payload)
        elif t.kind == "chunk":
            self._chunk(t.event_id, t.media, t.index, payload)
        elif t.kind == "status":
            self.status[f"{t.site}/{t.device}"] = payload.decode(errors="replace")
            self.echo(f"STATUS {t.site}/{t.device} {payload.decode(errors='replace')}")
        elif t.kind == "patrol_status":
            self.patrol_status[f"{t.site}/{t.device}/{t.point}"] = payload.decode(errors="replace")
        elif t.kind == "health":
            self.health[f"{t.site}/{t.device}"] = payload.decode(errors="replace")
            if "health" in self.show:
                self.echo(f"HEALTH {t.site}/{t.device} {_health_line(payload)}")
        elif t.kind == "reply" and "replies" in self.show:
            self.echo(f"REPLY {t.site}/{t.device} {payload.decode(errors='replace')}")
        with self.changed:
            self.changed.notify_all()

    def _event(self, payload: bytes, stream: str) -> None:
        try:
            ev = Event.from_json(payload)
        except ValidationError as exc:
            self.counts["invalid"] += 1
            log.warning("invalid event JSON dropped: %s", exc.errors()[0]["msg"])
            return
        key = self._key(ev, payload)
        if key in self._seen:
            self.counts["duplicates"] += 1
            return
        self._seen.add(key)
        self.streams[ev.event_id] = stream
        self.counts["events"] += 1
        self._events.write(payload.decode() + "\n")
        self._events.flush()
        where = f" zone={ev.zone}" if ev.zone else ""
        what = f" {ev.label} {ev.score:.2f}" if ev.label and ev.score is not None else ""
        self.echo(f"ALARM {site_time(parse_iso(ev.time or ev.start), self.timezone)} "
                  f"{ev.site}/{ev.device}/{ev.camera} {ev.type} {ev.phase}"
                  f"{where}{what} id={ev.event_id}")
        for kind in ev.details.get("dropped", []) if isinstance(ev.details.get("dropped"), list) else []:
            self._dropped.add((ev.event_id, str(kind)))
            self.echo(f"DROPPED {ev.event_id} {kind} (the device's media quota was full)")
        need = {
            (ev.event_id, kind)
            for kind in ("snapshot", "clip")
            if getattr(ev, kind) is not None and getattr(ev, kind).topic
        }
        self._waiting[key] = need
        self._settle()

    def _manifest(self, event_id: str, media: str, payload: bytes) -> None:
        self._write(event_id, media, self.media.manifest(event_id, media, payload))

    def _chunk(self, event_id: str, media: str, index: int, payload: bytes) -> None:
        self._write(event_id, media, self.media.chunk(event_id, media, index, payload))

    def _write(self, event_id: str, media: str, data: bytes | None) -> None:
        if data is None:
            return
        folder = self.out / "media" / event_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{media}{SUFFIX.get(media, '.bin')}"
        path.write_bytes(data)
        self.media.release(event_id, media)
        self._have.add((event_id, media))
        self.counts["media"] += 1
        self.echo(f"MEDIA {event_id} {media} {len(data)} bytes sha256 ok -> {path}")
        self._settle()

    def _settle(self) -> None:
        """Count event phases whose media is all here (or announced as dropped)."""
        for key, need in list(self._waiting.items()):
            need -= {n for n in need if n in self._dropped or n in self._have}
            if not need:
                del self._waiting[key]
                self.complete += 1

    def close(self) -> None:
        self._events.close()


def _health_line(payload: bytes) -> str:
    """`cameras rail-east=online river=offline; outbox 3 waiting; disk 41% used` from a health report."""
    try:
        snap = json.loads(payload)
    except ValueError:
        return payload.decode(errors="replace")
    if not isinstance(snap, dict):
        return str(snap)
    cams = snap.get("cameras") if isinstance(snap.get("cameras"), dict) else {}
    parts = ["cameras " + " ".join(f"{cid}={c.get('state', '?') if isinstance(c, dict) else c}"
                                   for cid, c in cams.items())] if cams else []
    parts += [f"{k} {json.dumps(snap[k], separators=(',', ':'))}" for k in ("events", "outbox", "disk") if k in snap]
    return "; ".join(parts) or json.dumps(snap)


def site_timezone(path: str | None) -> str:
    """The cameras file's `site.timezone`, for the times `central` prints; UTC when it names none."""
    if not path or not Path(path).is_file():
        return "UTC"
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return "UTC"  # load_mqtt reports the broken file
    tz = (data.get("site") or {}).get("timezone") if isinstance(data, dict) else None
    return tz if isinstance(tz, str) and tz else "UTC"


def load_mqtt(path: str | None) -> Mqtt:
    """The `mqtt` section of a cameras.yaml; defaults when the file does not exist."""
    if not path or not Path(path).is_file():
        return Mqtt()
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        cfg = Mqtt.model_validate(data.get("mqtt") or {})
    except yaml.YAMLError as exc:
        raise EdgeAgentError(f"{path}: not valid YAML ({exc})") from exc
    except ValidationError as exc:
        e = exc.errors()[0]
        raise EdgeAgentError(f"{path}: mqtt.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}") from exc
    # Files named in the config are relative to its folder, as for the agent.
    here = Path(path).resolve().parent

    def rel(p: str | None) -> str | None:
        return str(here / p) if p and not Path(p).is_absolute() else p

    if cfg.tls is not None:
        cfg = cfg.model_copy(update={"tls": cfg.tls.model_copy(
            update={k: rel(getattr(cfg.tls, k)) for k in ("ca_file", "cert_file", "key_file")})})
    return cfg.model_copy(update={"password_file": rel(cfg.password_file)})


def run_central(cfg: Mqtt, out: str, prefix: str, count: int | None, duration: float | None,
                client_id: str | None = None, show: set[str] | None = None, timezone: str = "UTC") -> int:
    central = Central(out, prefix, show=show, timezone=timezone)
    cid = client_id or os.environ.get("EDGE_CENTRAL_CLIENT_ID") or f"edge-central-{socket.gethostname()}"
    opts = LinkOptions(client_id=cid, subscriptions=central_filters(prefix),
                       reconnect_min_s=cfg.reconnect_min_s, reconnect_max_s=max(cfg.reconnect_min_s, cfg.reconnect_max_s),
                       session_expiry_s=cfg.session_expiry_s)
    link = MqttLink(cfg, opts, Callbacks(message=lambda t, p, props: central.handle(t, p)))
    link.start()
    deadline = time.monotonic() + duration if duration else None
    try:
        with central.changed:
            while count is None or central.complete < count:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                central.changed.wait(timeout=min(left, 0.5) if left is not None else 0.5)
    except KeyboardInterrupt:
        pass
    finally:
        link.stop(graceful=False)
        central.close()
    c = central.counts
    print(f"central: {central.complete} complete event phases, {c['duplicates']} duplicates dropped, "
          f"{c['media']} media files, {c['corrupt']} corrupt, {c['invalid']} invalid", flush=True)
    return 0 if count is None or central.complete >= count else 1


def client_settings(cfg: Mqtt, args: Any) -> Mqtt:
    """The broker settings of a client tool: the config's, with --host, --port, --prefix and its own
    login (--username, --password-env) when given; a console is not the device and need not share
    the device's account."""
    updates: dict[str, Any] = {k: v for k, v in (("host", getattr(args, "host", None)),
                                                  ("port", getattr(args, "port", None)),
                                                  ("topic_prefix", getattr(args, "prefix", None))) if v}
    if getattr(args, "username", None):
        updates.update(username=args.username, password=None, password_file=None, password_env=None)
    if getattr(args, "password_env", None):
        updates.update(password=None, password_file=None, password_env=args.password_env)
    return cfg.model_copy(update=updates)


def cli_central(args: Any) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = client_settings(load_mqtt(getattr(args, "config", None)), args)
    show = {k for k in ("replies", "health") if getattr(args, k, False)}
    tz = getattr(args, "timezone", None) or site_timezone(getattr(args, "config", None))
    return run_central(cfg, args.out, cfg.topic_prefix, args.count, args.duration, show=show, timezone=tz)
