"""`OutboxPump`: one thread drains the outbox to the broker and settles each message on its PUBACK.

At most `max_inflight` messages are unacknowledged at once; a PUBACK deletes its row, a refusal
counts an attempt (outbox.py decides what a refused message becomes). The pump thread alone owns
the paho mid -> outbox seq map; paho's network thread only queues acknowledgements for it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from .mqtt import MqttLink
from .outbox import MAX_ATTEMPTS, REFUSED_RETRY_S, Outbox

log = logging.getLogger("edge_agent.publish")

PRUNE_EVERY_S = 30.0
PUMP_ERROR_LOG_S = 300.0  # a pump error that repeats is logged with its traceback this often


class OutboxPump:
    def __init__(self, outbox: Outbox, link: MqttLink, max_inflight: int) -> None:
        self.outbox = outbox
        self.link = link
        self.max_inflight = max_inflight
        self._acks: queue.SimpleQueue[tuple[int, bool, str]] = queue.SimpleQueue()
        self._mids: dict[int, int] = {}  # paho mid -> outbox seq; pump thread only
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.counts = {"pump_errors": 0}
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
            seq = self._mids.pop(mid, None)
            if seq is None:
                continue  # status message or a reply: not from the outbox
            if ok:
                done.append(seq)
            elif self.outbox.fail(seq):
                log.error("broker refused outbox message %d %d times (%s): media is dropped, event JSON waits"
                          " %.0f s before the next try", seq, MAX_ATTEMPTS, reason, REFUSED_RETRY_S)
            else:
                log.warning("broker refused outbox message %d (%s); will retry", seq, reason)
        self.outbox.ack(done)

    def _send(self, room: int) -> None:
        for msg in self.outbox.claim(room):
            rc, mid = self.link.publish(msg.topic, msg.payload, msg.qos, msg.retain)
            if rc in (0, 4):  # 4: connection just dropped; paho keeps QoS>0 and resends it
                self._mids[mid] = msg.seq
            else:
                log.error("publish of %s failed locally (rc %d); will retry", msg.topic, rc)
                self.outbox.release([msg.seq])
                break
