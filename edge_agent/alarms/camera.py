"""Alarms about the camera itself: `camera_offline` (no frames) and `camera_tampered` (covered,
blinded or turned away). Like the rules engine they only make events and return them."""

from __future__ import annotations

from typing import Callable

from ..frames import Frame
from ..health import Health
from .delivery import Outgoing
from .event import Event, EventContext
from .snapshot import encode_jpeg


class OfflineMonitor:
    """Raise `camera_offline` when a camera is down for `offline_alarm_s`; end it when it is back.

    Runs on the supervising thread, which owns `open`."""

    def __init__(self, health: Health, ctx_for: Callable[[str], EventContext],
                 offline_alarm_s: dict[str, float]) -> None:
        self.health = health
        self.ctx_for = ctx_for  # camera id -> EventContext (site, device, location, run)
        self.limits = dict(offline_alarm_s)
        self.open: dict[str, Event] = {}

    def check(self) -> list[Outgoing]:
        """Call about once a second; returns the events it raised."""
        out: list[Event] = []
        clock = self.health.clock
        for cam, limit in self.limits.items():
            down = self.health.down_for(cam)
            if cam not in self.open and down >= limit and down > 0:
                out.append(self._start(cam, clock.now() - down))
            elif cam in self.open and down == 0:
                out.append(EventContext.end(self.open.pop(cam), clock.now(), "restored"))
        return [Outgoing(ev) for ev in out]

    def _start(self, cam: str, began: float) -> Event:
        snap = self.health.snapshot()["cameras"].get(cam, {})
        error = snap.get("last_error")
        if error is None:  # no attempt has failed yet: the first connection is still pending
            error = (f"no frame for {snap.get('down_for_s', 0):.0f} s: still {snap.get('state')}, "
                     "the camera has not answered yet")
        ev = self.ctx_for(cam).start(
            "camera_offline", self.health.clock.now(), key=("camera_offline", f"{began:.3f}"), since=began,
            details={"state": snap.get("state"), "error": error},
        )
        self.open[cam] = ev
        return ev

    def close(self) -> list[Outgoing]:
        """End open outages at shutdown so central does not wait for them for ever."""
        now = self.health.clock.now()
        out = [Outgoing(EventContext.end(ev, now, "shutdown")) for ev in self.open.values()]
        self.open.clear()
        return out


class TamperAlarm:
    """One camera's `camera_tampered` event: started when the scene watch says tampered, ended
    when the usual view is back (or at shutdown). Owned by the camera's analytics thread."""

    def __init__(self, ctx: EventContext, jpeg_quality: int) -> None:
        self.ctx = ctx
        self.quality = jpeg_quality
        self.open: Event | None = None

    def changed(self, reason: str | None, frame: Frame) -> list[Outgoing]:
        if reason is None:
            return self.close(frame.wall_time, "restored")
        if self.open is not None:
            return []
        self.open = self.ctx.start("camera_tampered", frame.wall_time, key=("camera_tampered", f"{frame.media_time:.3f}"),
                                   media_time=frame.media_time, details={"reason": reason})
        media = {"snapshot": encode_jpeg(frame.image, self.quality)} if frame.image is not None else {}
        return [Outgoing(self.open, media, frame.wall_time)]

    def close(self, wall: float, why: str = "shutdown") -> list[Outgoing]:
        if self.open is None:
            return []
        ev, self.open = self.open, None
        return [Outgoing(EventContext.end(ev, wall, why))]
