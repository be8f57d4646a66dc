"""The cadence: often near a deadline, backing off 3 → 6 → 12 → 24 h while nothing changes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from monitor.config import PollingSettings
from monitor.polling.cadence import cap_spacing, next_poll

NOW = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
S = PollingSettings()


@dataclass(frozen=True)
class P:
    status: str = "in_transit"
    picked_up_at: datetime | None = NOW - 10 * H
    pickup_deadline: datetime | None = NOW + 14 * H
    promised_delivery: datetime | None = None
    intercept_state: str | None = None
    poll_step: int = 0


def test_quiet_parcel_backs_off_3_6_12_24_then_stays_at_24() -> None:
    parcel, now, waits = P(), NOW, []
    for i in range(6):
        nxt = next_poll(parcel, now, changed=i == 0, settings=S)
        waits.append((nxt.at - now) / H)
        parcel, now = replace(parcel, poll_step=nxt.step), nxt.at
    assert waits == [3, 6, 12, 24, 24, 24]


def test_news_starts_the_back_off_again() -> None:
    assert next_poll(P(poll_step=3), NOW, changed=True, settings=S).at == NOW + 3 * H


def test_finished_parcels_are_never_polled_again() -> None:
    for status in ("delivered", "returned"):
        assert next_poll(P(status=status), NOW, changed=True, settings=S).at is None


def test_near_the_pickup_deadline_polls_every_30_minutes() -> None:
    waiting = P(status="pending", picked_up_at=None, pickup_deadline=NOW + 2 * H, poll_step=3)
    assert next_poll(waiting, NOW, changed=False, settings=S).at == NOW + timedelta(minutes=30)
    overdue = replace(waiting, pickup_deadline=NOW - 2 * H)
    assert next_poll(overdue, NOW, changed=False, settings=S).at == NOW + timedelta(minutes=30)


def test_a_far_deadline_is_not_slept_through() -> None:
    waiting = P(status="pending", picked_up_at=None, pickup_deadline=NOW + 10 * H, poll_step=3)
    # the back-off says 24 h, but the deadline's 6-hour approach starts in 4 h
    assert next_poll(waiting, NOW, changed=False, settings=S).at == NOW + 4 * H


def test_a_promised_delivery_and_trouble_make_polling_frequent() -> None:
    promised = P(promised_delivery=NOW + 1 * H, poll_step=2)
    assert next_poll(promised, NOW, False, S).at == NOW + timedelta(minutes=30)
    for busy in (P(status="out_for_delivery"), P(status="exception"), P(intercept_state="requested")):
        assert next_poll(busy, NOW, False, S).at == NOW + timedelta(minutes=30)
    assert next_poll(P(intercept_state="succeeded"), NOW, False, S).at == NOW + 6 * H


def test_the_per_number_cap_is_a_minimum_spacing() -> None:
    spacing = cap_spacing(48)
    assert spacing is not None and spacing * 48 > timedelta(hours=24)
    busy = P(status="out_for_delivery")
    settings = replace(S, near_minutes=5)
    assert next_poll(busy, NOW, False, settings, spacing).at == NOW + spacing
    assert cap_spacing(None) is None


def test_settings_change_the_steps() -> None:
    settings = replace(S, backoff_hours=(1, 2))
    assert next_poll(P(poll_step=1), NOW, False, settings).at == NOW + 2 * H
