"""The normalized model refuses events that would be ambiguous downstream."""

from datetime import UTC, datetime

import pytest

from carriers.model import ExceptionReason, Status, TrackingEvent

AWARE = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)


def test_naive_time_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TrackingEvent("sandbox", "SBX1", datetime(2024, 3, 1, 8, 30), Status.IN_TRANSIT)


def test_aware_time_is_kept() -> None:
    event = TrackingEvent("sandbox", "SBX1", AWARE, Status.IN_TRANSIT, raw_code="30")
    assert event.time == AWARE
    assert event.reason is None


def test_reason_is_accepted_with_exception_status() -> None:
    event = TrackingEvent("sandbox", "SBX1", AWARE, Status.EXCEPTION, reason=ExceptionReason.LOST)
    assert event.reason is ExceptionReason.LOST


@pytest.mark.parametrize("status", [s for s in Status if s is not Status.EXCEPTION] + [None])
def test_reason_without_exception_status_is_rejected(status: Status | None) -> None:
    with pytest.raises(ValueError, match="only valid with status 'exception'"):
        TrackingEvent("sandbox", "SBX1", AWARE, status, reason=ExceptionReason.REFUSED)


def test_unknown_code_keeps_status_none() -> None:
    event = TrackingEvent("sandbox", "SBX1", AWARE, None, raw_code="99", raw_text="未知状态")
    assert event.status is None
    assert event.raw_code == "99"
