"""`analysis_degraded`: a camera with motion or an open track waited longer than
`detector.max_motion_gap_s` for the detector (the box is overloaded past what shedding can fix).
Like the other camera alarms it only makes events and returns them."""

from __future__ import annotations

from typing import Callable

from ..health import Health
from .delivery import Outgoing
from .event import Event, EventContext

# Served within the bound this long before the alarm ends: one good batch between two starved
# ones must not end it and raise it again (the hysteresis).
END_AFTER_S = 10.0


class DegradedMonitor:
    """Runs on the supervising thread, which owns `open`; `check` about twice a second with the
    batcher's `urgent_waits()`."""

    def __init__(self, health: Health, ctx_for: Callable[[str], EventContext], max_gap_s: float,
                 end_after_s: float = END_AFTER_S) -> None:
        self.health = health
        self.ctx_for = ctx_for
        self.max_gap_s = float(max_gap_s)
        self.end_after_s = float(end_after_s)
        self.open: dict[str, Event] = {}
        self._starved_at: dict[str, float] = {}  # camera -> monotonic time it last waited too long

    def check(self, waits: dict[str, float]) -> list[Outgoing]:
        clock = self.health.clock
        now, out = clock.monotonic(), []
        for cam, waited in waits.items():
            if waited <= self.max_gap_s:
                continue
            self._starved_at[cam] = now
            if cam not in self.open:
                self.open[cam] = self.ctx_for(cam).start(
                    "analysis_degraded", clock.now(), key=("analysis_degraded", f"{clock.now():.3f}"),
                    details={"waited_s": round(waited, 2), "max_motion_gap_s": self.max_gap_s,
                             "effective_fps": self._fps(cam)})
                out.append(self.open[cam])
        for cam in [c for c in self.open if now - self._starved_at[c] >= self.end_after_s]:
            out.append(EventContext.end(self.open.pop(cam), clock.now(), "recovered",
                                        {"effective_fps": self._fps(cam)}))
        return [Outgoing(ev) for ev in out]

    def _fps(self, camera: str) -> float:
        return float(self.health.snapshot()["cameras"].get(camera, {}).get("fps_analysed", 0.0))

    def close(self) -> list[Outgoing]:
        now = self.health.clock.now()
        out = [Outgoing(EventContext.end(ev, now, "shutdown", {"effective_fps": self._fps(cam)}))
               for cam, ev in self.open.items()]
        self.open.clear()
        return out
