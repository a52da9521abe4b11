"""Times of day and time zones as the config states them: schedule windows such as "19:00-06:00"
and IANA zone names. Validated here, where the config is loaded; judged in rules/schedule.py."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Window = tuple[int, int]  # (start, end) in seconds since local midnight; end may be 86400
WindowLike = Union[str, Window]

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_DAY = 24 * 3600


def parse_window(text: str) -> Window:
    """Parse "HH:MM-HH:MM" (24-hour local time) into seconds since midnight; ValueError says why not."""
    example = 'use "HH:MM-HH:MM" in 24-hour local time, e.g. "19:00-06:00"'
    if not isinstance(text, str):
        raise ValueError(f"schedule window {text!r} is not text; {example}")
    match = _WINDOW.match(text)
    if not match:
        raise ValueError(f"schedule window {text!r} is not a time range; {example}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    for hour, minute, what in ((h1, m1, "start"), (h2, m2, "end")):
        if minute > 59 or hour > 24 or (hour == 24 and (minute or what == "start")):
            raise ValueError(
                f"schedule window {text!r}: {what} {hour:02d}:{minute:02d} is not a time of day "
                f"(00:00-23:59; 24:00 only as an end)"
            )
    start, end = (h1 * 60 + m1) * 60, (h2 * 60 + m2) * 60
    if start == end:
        raise ValueError(
            f"schedule window {text!r} starts where it ends; write \"00:00-24:00\" for all day "
            f"or leave out `schedule` to arm the zone always"
        )
    return start, end


@lru_cache(maxsize=64)
def site_zone(tz_name: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz_name!r}; use an IANA name such as Europe/Oslo") from exc


def check_timezone(tz_name: str) -> None:
    """Raise ValueError with a clear message when `tz_name` is not a known IANA time zone."""
    site_zone(tz_name)
