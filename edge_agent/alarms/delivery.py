"""The one way events leave: producers return `Outgoing` events, `Delivery` hands them to the sink.

Rules, patrol, overdue, camera health and tamper only *make* events (alarms/event.py's
`EventContext`) and return them; none of them knows where events go. `Delivery` owns the sink
and is the only caller of `sink.emit`: on its own thread in the live agent (producers on any
thread `submit`, a queue hands over), inline on the caller's thread in replay.

One error policy for every event: a failed emit is logged once per distinct cause, counted in
health (`delivery.emit_errors`), and the event is kept, in order, and tried again every
`retry_s` until the sink takes it. A full disk or a broken outbox delays an alarm; it never
loses one, and the producers' state (the rules engine's open alarms) is never rolled back.
When the cause is a full disk (not even an event's JSON fits), the disk reserve (reserve.py) is
given up first, so events can still be written; past it health says `storage_full` until the
events kept in memory are written. What is kept in memory is bounded: past `held_media_bytes`
of media the oldest held events lose their media (each then says so in `details.dropped`,
counted `media_dropped`), and past `held_events` phases the oldest is lost (counted `lost`, an
ERROR line each): both logged, neither silent. The reserve is made again once there is room.
"""

from __future__ import annotations

import errno
import logging
import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Protocol, Union

from ..clock import Clock, SystemClock
from .event import Event, EventContext
from .reserve import SpaceReserve
from .sink import EventSink

log = logging.getLogger("edge_agent.delivery")
RETRY_S = 1.0
LATENCY_SAMPLES = 2048  # recent alarm latencies kept for health and the benchmarks
HELD_MEDIA_BYTES = 32 * 1024 * 1024  # media of events held in memory on a full disk (a clip is ~1 MB)
HELD_EVENTS = 10_000  # event phases held in memory on a full disk (a few kB each without media)


@dataclass(frozen=True)
class Outgoing:
    """One event phase on its way out, with its media ("snapshot"/"clip" -> bytes)."""

    event: Event
    media: Mapping[str, bytes] = field(default_factory=dict)
    frame_wall: float | None = None  # wall time of the frame behind a `start`: alarm latency


class Deferred(Protocol):
    """Work whose result is an event, done on the delivering thread, off the analysis path
    (cutting a clip, which may mean re-encoding it)."""

    def build(self) -> Outgoing | None: ...


Item = Union[Outgoing, Deferred]


class Delivery:
    """Owns the sink; `submit` from any thread, events leave in the order submitted."""

    def __init__(self, sink: EventSink, clock: Clock | None = None, threaded: bool = True,
                 on_delivered: Callable[[Event], None] | None = None, retry_s: float = RETRY_S,
                 reserve: SpaceReserve | None = None, held_media_bytes: int = HELD_MEDIA_BYTES,
                 held_events: int = HELD_EVENTS) -> None:
        self.sink = sink
        self.reserve = reserve
        self._reserve_out = False  # released and not made again yet
        self.held_media_bytes, self.held_events = held_media_bytes, held_events
        self.clock = clock or SystemClock()
        self.threaded = threaded
        self.on_delivered = on_delivered
        self.retry_s = retry_s
        self._inbox: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._pending: deque[Item] = deque()  # owned by the delivering thread
        self._thread: threading.Thread | None = None
        self._last_cause: str | None = None
        self._stats_lock = threading.Lock()  # guards the counters and latencies read by health
        self.counts = {"delivered": 0, "emit_errors": 0, "media_dropped": 0, "lost": 0, "reserve_released": 0}
        self.storage_full = False  # the last emit failed for want of disk space
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    # -- producers ------------------------------------------------------------------------
    def submit(self, items: Iterable[Item]) -> None:
        if self.threaded:
            for item in items:
                self._inbox.put(item)
            return
        self._pending.extend(items)
        self._drain()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Delivery:
        if self.reserve is not None:
            self.reserve.ensure()
        if self.threaded and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="delivery", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> bool:
        """Deliver what is submitted (trying for up to `timeout` while the sink fails); True when
        nothing is left. What is left is logged with its ids: the caller decides what follows."""
        if self._thread is not None:
            self._inbox.put(None)
            self._thread.join(timeout)
            self._thread = None
        else:
            self._take_inbox()
            deadline = self.clock.monotonic() + timeout
            while self._pending and not self._drain() and self.clock.monotonic() < deadline:
                self.clock.sleep(min(self.retry_s, max(0.0, deadline - self.clock.monotonic())))
        if self._pending:
            log.error("%d event phase(s) could not be delivered: %s", len(self._pending),
                      ", ".join(_describe(item) for item in self._pending))
        return not self._pending

    def stats(self) -> dict[str, int]:
        with self._stats_lock:
            return {**self.counts, "pending": len(self._pending) + self._inbox.qsize(),
                    "storage_full": self.storage_full}

    def recent_latencies(self) -> list[float]:
        with self._stats_lock:
            return list(self.latencies)

    # -- the delivering thread ------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not (stopping and not self._pending):
            wait = self.retry_s if self._pending else None
            try:
                item = self._inbox.get(timeout=wait)
                if item is None:
                    stopping = True
                else:
                    self._pending.append(item)
                stopping |= self._take_inbox()
            except queue.Empty:
                pass
            if not self._drain() and stopping:
                return  # the sink still fails at shutdown: close() reports what is left

    def _take_inbox(self) -> bool:
        """Move everything queued into pending; True when the stop marker was among it."""
        stop = False
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return stop
            if item is None:
                stop = True
            else:
                self._pending.append(item)

    def _drain(self) -> bool:
        """Emit pending events in order; stop at the first failure. True when all went out."""
        while self._pending:
            item = self._pending[0]
            if not isinstance(item, Outgoing):
                built = self._build(item)
                if built is None:
                    self._pending.popleft()
                    continue
                item = self._pending[0] = built  # a retry must not cut the clip again
            try:
                delivered = self.sink.emit(item.event, item.media)
            except Exception as exc:  # any sink failure: keep the event, say so once per cause
                if _no_space(exc) and self._release_reserve():
                    continue  # the same event again, into the space the reserve held
                self._failed(item.event, exc)
                self._bound()
                return False
            self._pending.popleft()
            self._succeeded(item, delivered)
        return True

    def _build(self, work: Deferred) -> Outgoing | None:
        try:
            return work.build()
        except Exception:  # a clip that cannot be cut costs that clip, not the events behind it
            log.exception("could not prepare %r; it is skipped", work)
            return None

    def _failed(self, event: Event, exc: Exception) -> None:
        cause = f"{type(exc).__name__}: {exc}"
        full = _no_space(exc)
        with self._stats_lock:
            self.counts["emit_errors"] += 1
            self.storage_full = full
        if full and cause != self._last_cause:
            log.error("storage full: event %s %s (%s) kept in memory with %d other(s), written when space "
                      "returns: %s", event.type, event.phase, event.event_id, len(self._pending) - 1, cause)
            self._last_cause = cause
        if cause != self._last_cause:
            log.error("event %s %s (%s) not delivered yet, kept and retried every %.0f s: %s",
                      event.type, event.phase, event.event_id, self.retry_s, cause)
            self._last_cause = cause

    def _release_reserve(self) -> bool:
        freed = self.reserve.release() if self.reserve is not None else 0
        if freed:
            self._reserve_out = True
            with self._stats_lock:
                self.counts["reserve_released"] += 1
            log.error("storage full: the %d kB disk reserve %s is given up so events can still be written",
                      freed // 1024, self.reserve.path)
        return bool(freed)

    def _bound(self) -> None:
        """What waits in memory for the disk stays bounded: the oldest events' media go first
        (the event says so), then the oldest events themselves. Each is logged."""
        held = sum(len(b) for i in self._pending if isinstance(i, Outgoing) for b in i.media.values())
        for n, item in enumerate(self._pending):
            if held <= self.held_media_bytes:
                break
            if isinstance(item, Outgoing) and item.media:
                held -= sum(len(b) for b in item.media.values())
                self._pending[n] = Outgoing(EventContext.without_media(item.event, sorted(item.media)), {},
                                            item.frame_wall)
                with self._stats_lock:
                    self.counts["media_dropped"] += len(item.media)
                log.error("storage full: %s of %s dropped from memory (over %d MB of media held); the event "
                          "says so in details.dropped", ", ".join(sorted(item.media)), _describe(item),
                          self.held_media_bytes >> 20)
        while len(self._pending) > self.held_events:
            item = self._pending.popleft()
            with self._stats_lock:
                self.counts["lost"] += 1
            log.error("storage full: event %s LOST, %d event phases already held in memory", _describe(item),
                      self.held_events)

    def _succeeded(self, item: Outgoing, delivered: Event) -> None:
        if self._reserve_out and self.reserve is not None and self.reserve.ensure():
            self._reserve_out = False
            log.warning("disk reserve %s made again", self.reserve.path)
        if self._last_cause is not None:
            log.warning("delivery works again after: %s", self._last_cause)
            self._last_cause = None
        with self._stats_lock:
            self.counts["delivered"] += 1
            self.storage_full = False
            if item.frame_wall is not None and delivered.phase == "start":
                self.latencies.append(self.clock.now() - item.frame_wall)
        if self.on_delivered is not None:
            self.on_delivered(delivered)


def _describe(item: Item) -> str:
    event = item.event if isinstance(item, Outgoing) else getattr(item, "event", None)
    return f"{event.type} {event.phase} {event.event_id}" if event is not None else repr(item)


def _no_space(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT from the OS, or SQLite's "database or disk is full", anywhere in the chain."""
    cause: BaseException | None = exc
    for _ in range(8):  # a chain may loop back on itself
        if cause is None:
            return False
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "disk is full" in str(cause) or "No space left" in str(cause):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
