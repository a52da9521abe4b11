"""Schedule windows: parsing, midnight crossing, local time zones and DST."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from edge_agent.rules.schedule import in_schedule, parse_window


def epoch(text: str, tz: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def test_parse_window_gives_seconds_since_midnight():
    assert parse_window("19:00-06:00") == (19 * 3600, 6 * 3600)
    assert parse_window(" 7:30 - 8:15 ") == (7 * 3600 + 1800, 8 * 3600 + 900)
    assert parse_window("00:00-24:00") == (0, 24 * 3600)


@pytest.mark.parametrize(
    "text, words",
    [
        ("19-06", "not a time range"),
        ("19:00", "not a time range"),
        ("25:00-06:00", "start 25:00 is not a time of day"),
        ("19:00-06:60", "end 06:60 is not a time of day"),
        ("24:00-06:00", "start 24:00"),
        ("06:00-06:00", "starts where it ends"),
    ],
)
def test_parse_window_rejects_with_a_clear_message(text, words):
    with pytest.raises(ValueError) as err:
        parse_window(text)
    assert words in str(err.value)
    assert repr(text) in str(err.value)


def test_window_across_midnight_in_oslo():
    tz = "Europe/Oslo"  # UTC+1 in January: local 19:00 is 18:00Z
    w = ["19:00-06:00"]
    assert not in_schedule(w, epoch("2026-01-10T18:59:59", tz), tz)
    assert in_schedule(w, epoch("2026-01-10T19:00:00", tz), tz)
    assert in_schedule(w, epoch("2026-01-10T23:59:59", tz), tz)
    assert in_schedule(w, epoch("2026-01-11T00:00:00", tz), tz)
    assert in_schedule(w, epoch("2026-01-11T05:59:59", tz), tz)
    assert not in_schedule(w, epoch("2026-01-11T06:00:00", tz), tz)
    assert not in_schedule(w, epoch("2026-01-11T12:00:00", tz), tz)
    # The same instant judged in UTC would be outside the window: the zone is really used.
    assert not in_schedule(w, epoch("2026-01-10T19:30:00", tz) - 3600, "UTC")


def test_local_time_follows_daylight_saving():
    tz = "Europe/Oslo"  # UTC+2 in July
    w = ["19:00-06:00"]
    assert in_schedule(w, epoch("2026-07-01T19:00:00", tz), tz)
    assert not in_schedule(w, epoch("2026-07-01T18:30:00", tz), tz)


def test_several_windows_and_none_means_always():
    tz = "America/New_York"
    w = ["06:00-08:00", "17:00-19:00"]
    assert in_schedule(w, epoch("2026-03-02T07:00:00", tz), tz)
    assert in_schedule(w, epoch("2026-03-02T18:00:00", tz), tz)
    assert not in_schedule(w, epoch("2026-03-02T12:00:00", tz), tz)
    assert in_schedule(None, epoch("2026-03-02T12:00:00", tz), tz)
    assert in_schedule([], epoch("2026-03-02T12:00:00", tz), tz)


def test_unknown_time_zone_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        in_schedule(["19:00-06:00"], 0.0, "Mars/Base")
