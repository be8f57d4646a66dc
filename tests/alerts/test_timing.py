"""Quiet hours and rate limits, on simulated time."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.alerts.timing import QuietHours, RateLimit

CN = ZoneInfo("Asia/Shanghai")


def at(hour: int, minute: int = 0, day: int = 11) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=CN)


def test_quiet_hours_span_midnight_and_let_critical_through() -> None:
    quiet = QuietHours.parse({"start": "23:00", "end": "08:00"}, CN)
    assert quiet.active(at(23, 30)) and quiet.active(at(3)) and not quiet.active(at(8)) and not quiet.active(at(22, 59))
    assert not quiet.allows(at(3), "warning")
    assert quiet.allows(at(3), "critical")
    assert quiet.allows(at(12), "info")
    assert quiet.ends_after(at(23, 30)) == at(8, day=12)
    assert quiet.ends_after(at(3, day=12)) == at(8, day=12)


def test_daytime_window() -> None:
    quiet = QuietHours.parse({"start": "12:00", "end": "13:30", "breakthrough": "warning"}, CN)
    assert quiet.active(at(12, 15)) and not quiet.active(at(13, 30))
    assert quiet.allows(at(12, 15), "warning") and not quiet.allows(at(12, 15), "info")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"start": "25:00", "end": "08:00"}, "alerts.quiet_hours.start: expected a time such as 23:00, got '25:00'"),
        ({"start": "23:00"}, "alerts.quiet_hours.end: expected a time"),
        ({"start": "23:00", "end": "08:00", "breakthrough": "loud"}, "alerts.quiet_hours.breakthrough"),
        ({"start": "23:00", "end": "08:00", "tz": "UTC"}, "alerts.quiet_hours.tz: unknown setting"),
    ],
)
def test_quiet_hours_errors(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        QuietHours.parse(raw, CN)


def test_rate_limit_slides_over_a_minute() -> None:
    limit = RateLimit(20)
    start = at(10)
    sent = [limit.take(start + timedelta(seconds=i)) for i in range(25)]
    assert sent == [True] * 20 + [False] * 5
    assert limit.next_free(start + timedelta(seconds=30)) == start + timedelta(minutes=1)
    assert limit.take(start + timedelta(minutes=1))
    assert not limit.take(start + timedelta(minutes=1))
    assert limit.take(start + timedelta(minutes=1, seconds=1))
    with pytest.raises(ValueError):
        RateLimit(0)
