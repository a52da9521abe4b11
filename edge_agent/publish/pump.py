"""`OutboxPump`: one thread drains the outbox to the broker and settles each message on its PUBACK.

At most `max_inflight` messages are unacknowledged at once; a PUBACK deletes its row, a refusal
counts an attempt (outbox.py decides what a refused message becomes). The pump thread alone owns
the paho mid -> outbox seq map; paho's network thread only queues acknowledgements for it.

The broker's limits (docs/mqtt.md, "Message size"): no message larger than the MQTT 5 Maximum
Packet Size from CONNACK is sent, and media chunked bigger than `chunk_cap` (the configured
`chunk_size`, lowered by what the broker showed it refuses) is cut again before its manifest
goes out, so rows chunked by an older release still get through. A broker that refuses a message
by dropping the connection (mosquitto's PUBACK 0x95, which paho cannot parse, or its
`max_packet_size`) shows as drop after drop with the same message unacknowledged. That message is
the suspect: the largest in the window bigger than any packet the broker has acknowledged (the
head is not: a reset can lose the PUBACK of a small message sent before the big one, and a
manifest blamed for a chunk's size would drop its media). After POISON_STRIKES such drops it is
isolated (a chunk or an event JSON lowers
`chunk_cap` to a quarter of its size; the chunk is cut again, the event trimmed, anything else
refused: media dropped and announced, retained state retried later), and the paho client is
renewed with one clean start, so that neither its memory nor the MQTT 5 session re-sends it.
The messages behind it then go out.

An event JSON bigger than `chunk_cap` (or the Maximum Packet Size) is trimmed before it is sent
(`EventContext.trimmed`: the largest `details` go, `details.trimmed` says so), its full JSON kept
in the outbox (`trimmed` table) and the trim logged and counted: under MQTT 3.1.1 a broker
discards an oversized message without a word, so the configured chunk size is the only limit
the agent can know. An event that cannot be trimmed small enough waits REFUSED_RETRY_S as before.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time

from ..alarms.event import Event, EventContext
from .chunks import rechunked_rows
from .mqtt import MqttLink
from .outbox import MAX_ATTEMPTS, REFUSED_RETRY_S, Outbox
from .outbox_schema import Message

log = logging.getLogger("edge_agent.publish")

PRUNE_EVERY_S = 30.0
PUMP_ERROR_LOG_S = 300.0  # a pump error that repeats is logged with its traceback this often
POISON_STRIKES = 2  # drops in a row with the same suspect in the window
MIN_CHUNK = 1024
HEADER_ROOM = 16  # PUBLISH fixed header, packet id, MQTT 5 property length: at most 1+4+2+1 bytes, rounded up
DOWN = -1  # the queued "connection dropped" mark (mids are 1..65535)


def packet_size(topic: str, payload: bytes) -> int:
    """An upper bound of the PUBLISH packet that carries `payload` on `topic` (QoS 1)."""
    return HEADER_ROOM + 2 + len(topic.encode()) + len(payload)


class OutboxPump:
    def __init__(self, outbox: Outbox, link: MqttLink, max_inflight: int, chunk_size: int, qos: int) -> None:
        self.outbox = outbox
        self.qos = qos
        self.link = link
        self.max_inflight = max_inflight
        self.chunk_cap = chunk_size  # lowered when the broker refuses a chunk
        self._acks: queue.SimpleQueue[tuple[int, bool, str]] = queue.SimpleQueue()
        self._mids: dict[int, Message] = {}  # paho mid -> outbox message, in send order; pump thread only
        self._strikes: dict[int, int] = {}  # outbox seq -> drops in a row with it the suspect
        self._largest_taken = 0  # the biggest packet the broker acknowledged: nothing that big is over its limit
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.counts = {"pump_errors": 0, "rechunked": 0, "poison": 0, "too_big": 0, "trimmed": 0}
        self._last_error: tuple[str, float] = ("", float("-inf"))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-pump", daemon=True)
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def wake(self) -> None:
        """Something new is in the outbox, or the link came up: look now rather than in 0.5 s."""
        self._wake.set()

    def on_published(self, mid: int, ok: bool, reason: str) -> None:
        # Network thread, maybe under paho's locks: only queue it, the pump does the rest.
        self._acks.put((mid, ok, reason))
        self._wake.set()

    def on_disconnected(self) -> None:
        # In the same queue as the acknowledgements: those read before the drop are settled first.
        self._acks.put((DOWN, False, "disconnected"))
        self._wake.set()

    def _run(self) -> None:
        last_prune = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self._settle_acks()
                if self.link.connected.is_set():
                    self._send(self.max_inflight - len(self._mids))
                if time.monotonic() - last_prune > PRUNE_EVERY_S:
                    self.outbox.prune_meta()
                    last_prune = time.monotonic()
            except Exception as exc:  # the pump must outlive any one bad message
                self._error(exc)
                time.sleep(0.5)
        self.outbox.release()

    def _error(self, exc: Exception) -> None:
        """The traceback once per distinct error and PUMP_ERROR_LOG_S; a repeat in between only counts."""
        key, now = f"{type(exc).__name__}: {exc}", time.monotonic()
        self.counts["pump_errors"] += 1
        if key != self._last_error[0] or now - self._last_error[1] >= PUMP_ERROR_LOG_S:
            log.exception("mqtt pump error (%d so far)", self.counts["pump_errors"])
            self._last_error = (key, now)

    def _settle_acks(self) -> None:
        done: list[int] = []
        while True:
            try:
                mid, ok, reason = self._acks.get_nowait()
            except queue.Empty:
                break
            if mid == DOWN:
                self.outbox.ack(done)
                done = []
                self._dropped()
                continue
            msg = self._mids.pop(mid, None)
            if msg is None:
                continue  # status message or a reply: not from the outbox
            seq = msg.seq
            self._strikes.pop(seq, None)
            if ok:
                done.append(seq)
                self._largest_taken = max(self._largest_taken, packet_size(msg.topic, msg.payload))
            elif self.outbox.fail(seq):
                log.error("broker refused outbox message %d %d times (%s): media is dropped, event JSON waits"
                          " %.0f s before the next try", seq, MAX_ATTEMPTS, reason, REFUSED_RETRY_S)
            else:
                log.warning("broker refused outbox message %d (%s); will retry", seq, reason)
        self.outbox.ack(done)

    def _dropped(self) -> None:
        """The connection dropped with messages unacknowledged: paho re-sends them on reconnect, in
        order. The same suspect drop after drop is what the broker will not take."""
        if not self._mids:
            return
        window = {m.seq for m in self._mids.values()}
        # only messages still in the window can be the suspect again: the map stays that small
        self._strikes = {seq: n for seq, n in self._strikes.items() if seq in window}
        head = self._suspect()
        if head is None:
            return  # nothing bigger than the broker has taken: the link dropped, not a limit
        self._strikes[head.seq] = self._strikes.get(head.seq, 0) + 1
        if self._strikes[head.seq] < POISON_STRIKES:
            return
        del self._strikes[head.seq]
        self.counts["poison"] += 1
        self._mids.clear()
        self.outbox.release()
        self.link.renew()  # forget paho's copies; what is left in the outbox is sent again
        log.error("mqtt: the broker dropped the connection %d times after outbox message %d (%s%s): isolated",
                  POISON_STRIKES, head.seq, head.kind, f" {head.media} of {head.event_id}" if head.media else "")
        if head.kind in ("chunk", "event") and len(head.payload) > MIN_CHUNK:
            # a quarter: the limit is somewhere below this size, and each wrong guess costs two drops
            self.chunk_cap = min(self.chunk_cap, max(MIN_CHUNK, len(head.payload) // 4 // MIN_CHUNK * MIN_CHUNK))
            if head.kind == "chunk":
                self._rechunk(head.seq, head.event_id, head.media, self.chunk_cap)
            else:
                self._trim(head, self._cap(head.topic))
        else:
            self._refuse(head.seq)

    def _suspect(self) -> Message | None:
        """The message a drop is blamed on: the largest in the window (the earliest of equals, the
        first the broker met) that is bigger than every packet the broker has acknowledged."""
        untried = [m for m in self._mids.values() if packet_size(m.topic, m.payload) > self._largest_taken]
        return max(untried, key=lambda m: len(m.payload), default=None)

    def _send(self, room: int) -> None:
        claimed = self.outbox.claim(room)
        for i, msg in enumerate(claimed):
            cut = self._cut_to(msg)
            trim = not cut and msg.kind == "event" and len(msg.payload) > self._cap(msg.topic)
            too_big = not (cut or trim) and self._over_limit(msg)
            if cut or trim or too_big:
                self.outbox.release([m.seq for m in claimed[i:]])  # nothing of its media in flight now
                if cut:
                    self._rechunk(msg.seq, msg.event_id, msg.media, cut)
                elif trim:
                    self._trim(msg, self._cap(msg.topic))
                else:
                    self._refuse(msg.seq)
                self._wake.set()  # what is behind it goes out now
                return
            rc, mid = self.link.publish(msg.topic, msg.payload, msg.qos, msg.retain)
            if rc in (0, 4):  # 4: connection just dropped; paho keeps QoS>0 and resends it
                self._mids[mid] = msg
            else:
                log.error("publish of %s failed locally (rc %d); will retry", msg.topic, rc)
                self.outbox.release([m.seq for m in claimed[i:]])
                return

    # -- the broker's limits -----------------------------------------------------------------
    def _cap(self, topic: str) -> int:
        """The largest payload on `topic` that this broker takes (as far as the agent knows)."""
        cap = self.chunk_cap
        limit = self.link.max_packet_size
        if limit:
            cap = min(cap, (limit - packet_size(topic, b"")) // MIN_CHUNK * MIN_CHUNK)
        return max(MIN_CHUNK, cap)

    def _cut_to(self, msg: Message) -> int:
        """The chunk size to cut `msg`'s media again at when one of its chunks is over the cap; else 0."""
        if msg.kind == "manifest":
            manifest = json.loads(msg.payload)
            cap = self._cap(msg.topic + "/99999")
            return cap if min(int(manifest.get("chunk_size", 0)), int(manifest.get("size", 0))) > cap else 0
        if msg.kind == "chunk":
            cap = self._cap(msg.topic.rsplit("/", 1)[0] + "/99999")
            return cap if len(msg.payload) > cap else 0
        return 0

    def _over_limit(self, msg: Message) -> bool:
        limit = self.link.max_packet_size
        if not limit or packet_size(msg.topic, msg.payload) <= limit:
            return False
        self.counts["too_big"] += 1
        log.error("mqtt: outbox message %d (%s, %d bytes) is over the broker's maximum packet size %d",
                  msg.seq, msg.kind, len(msg.payload), limit)
        return True

    def _rechunk(self, seq: int, event_id: str | None, media: str | None, size: int) -> None:
        """Cut one stored media file (none of it in flight) again at `size`; refuse it when its
        chunks cannot be joined."""
        assert media is not None
        if self.outbox.recut_media(event_id, media, lambda manifest, chunks: rechunked_rows(
                manifest, chunks, media, size, self.qos)):
            self.counts["rechunked"] += 1
            log.info("mqtt: %s of %s cut again into chunks of %d bytes for the broker's limit", media, event_id, size)
        else:
            self._refuse(seq)

    def _trim(self, msg: Message, limit: int) -> None:
        """Send `msg`'s event cut to `limit` bytes instead (its full JSON kept in the outbox);
        refuse it when it cannot be cut that small."""
        event = Event.from_json(msg.payload)
        small = EventContext.trimmed(event, limit)
        if small is None:
            log.error("mqtt: event %s %s (%d bytes) does not fit the broker's limit (%d) even trimmed",
                      event.event_id, event.phase, len(msg.payload), limit)
            self._refuse(msg.seq)
            return
        self.outbox.trim(msg.seq, small.to_json().encode(), msg.payload)
        self.counts["trimmed"] += 1
        log.error("mqtt: event %s %s is %d bytes, over the broker's limit (%d): sent without details %s"
                  " (details.trimmed); the full JSON stays in the outbox's `trimmed` table", event.event_id,
                  event.phase, len(msg.payload), limit, ", ".join(small.details["trimmed"]["dropped"]))

    def _refuse(self, seq: int) -> None:
        """Give up on one message now: media dropped and announced, event JSON retried later."""
        self.outbox.release([seq])
        self.outbox.fail(seq, at_once=True)
