"""Zone schedules: local-time windows such as "19:00-06:00" in the site's time zone.

A window is half-open, [start, end): "19:00-06:00" is armed at 19:00:00 and disarmed at 06:00:00.
A window whose end is before its start crosses midnight. "24:00" is allowed as an end, so
"00:00-24:00" means all day. Times are wall-clock local times, so DST is honoured: "19:00" is
19:00 on the site's clock in winter and in summer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from ..config.timeofday import Window, WindowLike, check_timezone, parse_window, site_zone

__all__ = ["Window", "WindowLike", "check_timezone", "in_schedule", "local_seconds", "parse_window", "site_zone"]

def local_seconds(t_epoch: float, tz_name: str) -> float:
    """Seconds since local midnight at `t_epoch` in `tz_name`."""
    local = datetime.fromtimestamp(t_epoch, site_zone(tz_name))
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


def _contains(window: Window, sec: float) -> bool:
    start, end = window
    if start < end:
        return start <= sec < end
    return sec >= start or sec < end  # crosses midnight


def in_schedule(windows: Iterable[WindowLike] | None, t_epoch: float, tz_name: str = "UTC") -> bool:
    """True when `t_epoch` falls in any window (local time in `tz_name`).

    `None` and an empty list both mean "always armed": a missing schedule never silences a zone
    (use `enabled: false` for that).
    """
    if windows is None:
        return True
    parsed = [parse_window(w) if isinstance(w, str) else w for w in windows]
    if not parsed:
        return True
    sec = local_seconds(t_epoch, tz_name)
    return any(_contains(w, sec) for w in parsed)
