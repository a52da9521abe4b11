"""Media as MQTT messages: one JSON manifest, then the raw bytes in chunks (docs/mqtt.md)."""

from __future__ import annotations

import hashlib
import json

from ..alarms.event import Event, MediaRef
from ..alarms.sink import CONTENT_TYPES
from .outbox_schema import Row
from .topics import Topics, chunk_topic


def media_rows(topics: Topics, event: Event, kind: str, data: bytes, chunk_size: int, qos: int) -> tuple[MediaRef, list[Row]]:
    """The MediaRef for the event and the manifest + chunk messages that carry `data`."""
    manifest_topic = topics.media_manifest(event.type, event.event_id, kind)
    old = getattr(event, kind, None)
    extra = {} if old is None else {"start": old.start, "duration_s": old.duration_s}
    ref = MediaRef.for_bytes(data, CONTENT_TYPES[kind], topic=manifest_topic, **extra)
    return ref, chunked_rows(manifest_topic, event.event_id, kind, data, chunk_size, qos)


def chunked_rows(manifest_topic: str, media_id: str, kind: str, data: bytes, chunk_size: int, qos: int) -> list[Row]:
    """The manifest message and the raw chunks of one media file."""
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] or [b""]
    manifest = {
        "event_id": media_id,
        "media": kind,
        "content_type": CONTENT_TYPES[kind],
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "chunk_size": chunk_size,
        "chunks": len(chunks),
    }
    rows = [Row("manifest", manifest_topic, json.dumps(manifest, separators=(",", ":")).encode(), qos, media=kind)]
    rows += [Row("chunk", chunk_topic(manifest_topic, i), c, qos, media=kind) for i, c in enumerate(chunks)]
    return rows


def rechunked_rows(manifest: bytes | None, chunks: list[tuple[str, bytes]], kind: str, chunk_size: int,
                   qos: int) -> list[Row] | None:
    """The stored chunks of one media file cut again at `chunk_size`, with a new manifest; None
    when they cannot be joined (a chunk already delivered, or not matching its manifest)."""
    if not chunks:
        return None
    manifest_topic = chunks[0][0].rsplit("/", 1)[0]
    if [t for t, _ in chunks] != [chunk_topic(manifest_topic, i) for i in range(len(chunks))]:
        return None  # the first chunks are gone: the rest cannot be cut again
    data = b"".join(p for _, p in chunks)
    meta = json.loads(manifest) if manifest is not None else {}
    if manifest is not None and (meta.get("chunks") != len(chunks) or meta.get("sha256") != hashlib.sha256(data).hexdigest()):
        return None
    media_id = meta.get("event_id") or manifest_topic.rsplit("/", 2)[-2]
    return chunked_rows(manifest_topic, media_id, kind, data, chunk_size, qos)
