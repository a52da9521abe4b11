"""Media cut again at a smaller chunk size (a broker's limit, an outbox of the previous release):
the new cut joins to the same bytes, a cut that lost its first chunks is not attempted, and a
receiver that holds chunks of the old cut forgets them instead of mixing the two."""

from __future__ import annotations

import hashlib
import json
import os

from edge_agent.publish.central import MediaAssembler
from edge_agent.publish.chunks import chunked_rows, rechunked_rows

TOPIC = "edge/s/d/alarms/ev-1/clip"
DATA = os.urandom(300_000)


def parts(rows):
    manifest = next(r.payload for r in rows if r.kind == "manifest")
    return manifest, [(r.topic, r.payload) for r in rows if r.kind == "chunk"]


def test_a_128k_cut_is_cut_again_at_64k_with_a_manifest_that_says_so():
    manifest, chunks = parts(chunked_rows(TOPIC, "ev-1", "clip", DATA, 128 * 1024, 1))
    rows = rechunked_rows(manifest, chunks, "clip", 64 * 1024, 1)
    new_manifest, new_chunks = parts(rows)
    meta = json.loads(new_manifest)
    assert (meta["chunk_size"], meta["chunks"], meta["size"]) == (65536, 5, len(DATA))
    assert meta["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert [t for t, _ in new_chunks] == [f"{TOPIC}/{i}" for i in range(5)]
    assert b"".join(p for _, p in new_chunks) == DATA and max(len(p) for _, p in new_chunks) == 65536
    # the manifest already delivered (gone from the outbox): the chunks alone are enough
    assert parts(rechunked_rows(None, chunks, "clip", 64 * 1024, 1))[1] == new_chunks


def test_chunks_that_cannot_be_joined_are_not_cut_again():
    manifest, chunks = parts(chunked_rows(TOPIC, "ev-1", "clip", DATA, 128 * 1024, 1))
    assert rechunked_rows(manifest, chunks[1:], "clip", 64 * 1024, 1) is None  # chunk 0 already delivered
    assert rechunked_rows(manifest, chunks[:-1], "clip", 64 * 1024, 1) is None  # the manifest wants 3
    assert rechunked_rows(None, [], "clip", 64 * 1024, 1) is None


def test_a_receiver_with_chunks_of_the_old_cut_assembles_the_new_one():
    old_manifest, old_chunks = parts(chunked_rows(TOPIC, "ev-1", "clip", DATA, 128 * 1024, 1))
    new_manifest, new_chunks = parts(rechunked_rows(old_manifest, old_chunks, "clip", 64 * 1024, 1))
    rx = MediaAssembler()
    assert rx.manifest("ev-1", "clip", old_manifest) is None
    assert rx.chunk("ev-1", "clip", 1, old_chunks[1][1]) is None  # went through before the drop
    assert rx.manifest("ev-1", "clip", new_manifest) is None
    # chunk 1 of the new cut comes last (re-sent after a drop): until then the old chunk 1 must
    # not stand in for it
    order = [0, 2, 3, 4, 1]
    got = [rx.chunk("ev-1", "clip", i, new_chunks[i][1]) for i in order]
    assert got == [None] * 4 + [DATA] and rx.counts["corrupt"] == 0
