"""The sandbox carrier: a deterministic simulated world, and the adapter in front of it."""

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from carriers.model import ExceptionReason, ParcelRef, Status, TrackingEvent
from carriers.sandbox import INFO, SandboxCarrier
from carriers.sandbox.client import CODE
from carriers.sandbox.mapping import CARRIER, STATUS_BY_CODE
from carriers.sandbox.settings import SandboxSettings
from carriers.sandbox.world import FATES, World

FIXTURE = Path(__file__).parents[1] / "fixtures" / "sandbox" / "track_example.json"
SHIPPED = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
LATER = SHIPPED + timedelta(days=30)
NUMBERS = [f"SBX{i:06d}" for i in range(2000)]
WORLD = World(SandboxSettings())


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


def numbers_with(fate: str, count: int = 20) -> list[str]:
    found = [n for n in NUMBERS if WORLD.fate(n) == fate][:count]
    assert found, f"no {fate} parcel among {len(NUMBERS)} numbers"
    return found


def statuses(events: list[TrackingEvent]) -> list[Status | None]:
    return [e.status for e in events]


def as_json(event: TrackingEvent) -> dict[str, object]:
    return {
        "carrier": event.carrier,
        "tracking_no": event.tracking_no,
        "time": event.time.isoformat(),
        "status": event.status.value if event.status else None,
        "raw_code": event.raw_code,
        "raw_text": event.raw_text,
        "location": event.location,
        "reason": event.reason.value if event.reason else None,
    }


# --- the world ---------------------------------------------------------------------------


def test_same_inputs_give_the_same_events() -> None:
    again = World(SandboxSettings())
    for number in NUMBERS[:200]:
        assert WORLD.fate(number) == again.fate(number)
        assert WORLD.events(number, SHIPPED, LATER) == again.events(number, SHIPPED, LATER)
        assert WORLD.intercept_verdict(number) == again.intercept_verdict(number)


def test_another_seed_tells_another_story() -> None:
    other = World(SandboxSettings(seed=1))
    differ = [n for n in NUMBERS[:50] if WORLD.events(n, SHIPPED, LATER) != other.events(n, SHIPPED, LATER)]
    assert len(differ) > 40


def test_a_later_now_only_adds_events() -> None:
    cuts = [SHIPPED + timedelta(hours=h) for h in range(0, 24 * 15, 5)]
    for number in NUMBERS[:150]:
        previous: list[TrackingEvent] = []
        for now in cuts:
            current = WORLD.events(number, SHIPPED, now)
            assert current[: len(previous)] == previous
            previous = current
        assert previous == WORLD.events(number, SHIPPED, LATER)


def test_fate_shares_follow_the_settings() -> None:
    settings = SandboxSettings(
        never_picked_up=0.10, stall_in_transit=0.15, delivery_failed=0.10, returned=0.05, lost=0.05
    )
    counts = Counter(World(settings).fate(n) for n in NUMBERS)
    assert set(counts) == set(FATES)
    expected = {"fine": 0.55} | {fate: getattr(settings, fate) for fate in FATES[1:]}
    for fate, share in expected.items():
        assert abs(counts[fate] / len(NUMBERS) - share) < 0.03, (fate, counts)


def test_default_shares_are_roughly_kept() -> None:
    counts = Counter(WORLD.fate(n) for n in NUMBERS)
    assert 0.75 < counts["fine"] / len(NUMBERS) < 0.90
    assert 0.02 < counts["never_picked_up"] / len(NUMBERS) < 0.08
    assert counts["lost"] > 0


def test_shares_above_one_are_refused() -> None:
    with pytest.raises(ValueError, match="more than 1"):
        World(SandboxSettings(never_picked_up=0.6, stall_in_transit=0.6))


def test_never_picked_up_has_no_events_ever() -> None:
    for number in numbers_with("never_picked_up"):
        assert WORLD.events(number, SHIPPED, SHIPPED + timedelta(days=365)) == []


def test_fine_parcels_are_delivered_within_a_week() -> None:
    for number in numbers_with("fine", 100):
        events = WORLD.events(number, SHIPPED, LATER)
        codes = statuses(events)
        assert codes[0] is Status.PICKED_UP
        assert timedelta(hours=1) <= events[0].time - SHIPPED <= timedelta(hours=18)
        transit = [s for s in codes if s is Status.IN_TRANSIT]
        assert 2 <= len(transit) <= 5
        assert codes[1 : 1 + len(transit)] == transit
        rest = codes[1 + len(transit) :]
        assert rest in (
            [Status.OUT_FOR_DELIVERY, Status.DELIVERED],
            [Status.OUT_FOR_DELIVERY, Status.AVAILABLE_FOR_PICKUP, Status.DELIVERED],
        )
        assert events[-1].time - SHIPPED <= timedelta(days=7)


def test_some_fine_parcels_wait_at_a_station() -> None:
    histories = [statuses(WORLD.events(n, SHIPPED, LATER)) for n in numbers_with("fine", 100)]
    waited = [h for h in histories if Status.AVAILABLE_FOR_PICKUP in h]
    assert 10 < len(waited) < 90


def test_stalled_parcels_stop_after_one_or_two_scans() -> None:
    for number in numbers_with("stall_in_transit"):
        codes = statuses(WORLD.events(number, SHIPPED, SHIPPED + timedelta(days=365)))
        assert codes in ([Status.PICKED_UP, Status.IN_TRANSIT], [Status.PICKED_UP] + [Status.IN_TRANSIT] * 2)


def test_failed_delivery_is_retried_the_next_day() -> None:
    for number in numbers_with("delivery_failed"):
        events = WORLD.events(number, SHIPPED, SHIPPED + timedelta(days=30))
        codes = statuses(events)
        failed = codes.index(Status.DELIVERY_FAILED)
        assert codes[failed - 1] is Status.OUT_FOR_DELIVERY
        assert codes[failed + 1 :] == [Status.OUT_FOR_DELIVERY, Status.DELIVERED]
        assert timedelta(hours=20) <= events[failed + 1].time - events[failed].time <= timedelta(hours=26)


def test_refused_parcels_go_back_to_the_sender() -> None:
    for number in numbers_with("returned"):
        events = WORLD.events(number, SHIPPED, LATER)
        assert statuses(events)[0] is Status.PICKED_UP
        assert Status.IN_TRANSIT in statuses(events)
        assert statuses(events)[-3:] == [Status.EXCEPTION, Status.RETURNING, Status.RETURNED]
        assert events[-3].reason is ExceptionReason.REFUSED
        assert "拒收" in events[-3].raw_text
        assert "退签" in events[-1].raw_text


def test_lost_parcels_end_with_a_lost_exception() -> None:
    for number in numbers_with("lost"):
        events = WORLD.events(number, SHIPPED, SHIPPED + timedelta(days=365))
        assert statuses(events)[:2] == [Status.PICKED_UP, Status.IN_TRANSIT]
        assert events[-1].status is Status.EXCEPTION
        assert events[-1].reason is ExceptionReason.LOST
        assert [e.status for e in events].count(Status.EXCEPTION) == 1


def test_every_event_is_well_formed() -> None:
    cuts = [SHIPPED + timedelta(days=d) for d in (1, 3, 30)]
    seen_codes = set()
    for number in NUMBERS[:400]:
        for now in cuts:
            events = WORLD.events(number, SHIPPED, now)
            assert [e.time for e in events] == sorted(e.time for e in events)
            for event in events:
                seen_codes.add(event.raw_code)
                assert event.raw_code in STATUS_BY_CODE
                assert event.status is STATUS_BY_CODE[event.raw_code]
                assert event.time.utcoffset() is not None
                assert event.time <= now
                assert event.carrier == CODE
                assert event.tracking_no == number
                assert event.raw_text.startswith("【")
                assert event.location
                assert (event.reason is None) == (event.status is not Status.EXCEPTION)
    assert seen_codes >= {"20", "30", "40", "45", "50", "60", "71", "72", "80", "90"}


def test_events_are_in_shanghai_time() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    for number in NUMBERS[:50]:
        for event in WORLD.events(number, SHIPPED, LATER):
            assert event.time.utcoffset() == timedelta(hours=8)
            assert event.time.astimezone(shanghai) == event.time


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        WORLD.events("SBX000001", SHIPPED.replace(tzinfo=None), LATER)


def test_intercept_verdicts_follow_the_acceptance_share() -> None:
    accepted = Counter(WORLD.intercept_verdict(n).accepted for n in NUMBERS)
    assert 0.85 < accepted[True] / len(NUMBERS) < 0.95
    never = World(SandboxSettings(intercept_acceptance=0.0))
    verdict = never.intercept_verdict("SBX000001")
    assert verdict.accepted is False
    assert verdict.reason
    assert World(SandboxSettings(intercept_acceptance=1.0)).intercept_verdict("SBX000001").accepted is True


def test_mapping_names_the_same_carrier_as_the_client() -> None:
    assert CARRIER == CODE


# --- the recorded example ----------------------------------------------------------------

# Regenerate with the same inputs: World(SandboxSettings(seed=7)).events("SBX202400013", ...).
EXAMPLE_SEED = 7
EXAMPLE_NUMBER = "SBX202400013"


def test_world_reproduces_the_recorded_example() -> None:
    world = World(SandboxSettings(seed=EXAMPLE_SEED))
    assert world.fate(EXAMPLE_NUMBER) == "fine"
    recorded = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert [as_json(e) for e in world.events(EXAMPLE_NUMBER, SHIPPED, LATER)] == recorded


def test_recorded_example_times_are_shanghai_instants() -> None:
    recorded = json.loads(FIXTURE.read_text(encoding="utf-8"))
    first = recorded[0]
    assert first["status"] == Status.PICKED_UP
    assert first["time"] == "2024-03-01T22:37:00+08:00"
    assert datetime.fromisoformat(first["time"]).astimezone(UTC) == datetime(2024, 3, 1, 14, 37, tzinfo=UTC)
    assert recorded[-1]["status"] == Status.DELIVERED
    assert {e["raw_code"] for e in recorded} <= set(STATUS_BY_CODE)


# --- the adapter -------------------------------------------------------------------------


def test_track_returns_one_result_per_number() -> None:
    carrier = SandboxCarrier(FakeClock(LATER), WORLD)
    numbers = NUMBERS[:5]
    for number in numbers:
        carrier.register(number, SHIPPED)
    results = asyncio.run(carrier.track(numbers))
    assert [r.tracking_no for r in results] == numbers
    for result in results:
        assert result.carrier == CODE
        assert result.problem is None
        assert list(result.events) == WORLD.events(result.tracking_no, SHIPPED, LATER)


def test_track_reads_the_injected_clock() -> None:
    clock = FakeClock(SHIPPED)
    carrier = SandboxCarrier(clock, WORLD)
    number = numbers_with("fine", 1)[0]
    carrier.register(number, SHIPPED)
    assert asyncio.run(carrier.track([number]))[0].events == ()
    clock.current = SHIPPED + timedelta(days=8)
    (result,) = asyncio.run(carrier.track([number]))
    assert result.events[-1].status is Status.DELIVERED


def test_an_unregistered_number_is_shipped_when_first_tracked() -> None:
    first_seen = SHIPPED + timedelta(hours=3)
    clock = FakeClock(first_seen)
    carrier = SandboxCarrier(clock, WORLD)
    number = numbers_with("fine", 1)[0]
    asyncio.run(carrier.track([number]))
    clock.current = LATER
    (result,) = asyncio.run(carrier.track([number]))
    assert list(result.events) == WORLD.events(number, first_seen, LATER)


def test_without_a_world_every_number_is_a_problem() -> None:
    carrier = SandboxCarrier(FakeClock(LATER))
    results = asyncio.run(carrier.track(["A1", "B2"]))
    assert [(r.tracking_no, r.problem) for r in results] == [("A1", "not_found"), ("B2", "not_found")]


def test_a_staged_verdict_answers_the_intercept() -> None:
    carrier = SandboxCarrier(FakeClock(LATER), WORLD)
    carrier.stage_verdict("SBX000001", accepted=False, reason="已派送中，无法拦截")
    parcel = ParcelRef(CODE, "SBX000001")
    answer = asyncio.run(carrier.intercept(parcel, "refund_only", "key-1"))
    assert answer.accepted is False
    assert answer.reason == "已派送中，无法拦截"


def test_a_later_verdict_is_undecided_until_staged() -> None:
    carrier = SandboxCarrier(FakeClock(LATER), WORLD)
    carrier.expect_verdict_later("SBX000002")
    parcel = ParcelRef(CODE, "SBX000002")
    assert asyncio.run(carrier.intercept(parcel, "refund_only", "key-1")).accepted is None
    carrier.stage_verdict("SBX000002", accepted=True)
    assert asyncio.run(carrier.intercept(parcel, "refund_only", "key-2")).accepted is True


def test_without_staging_the_world_decides() -> None:
    carrier = SandboxCarrier(FakeClock(LATER), WORLD)
    answer = asyncio.run(carrier.intercept(ParcelRef(CODE, "SBX000003"), "refund_only", "k"))
    assert answer == WORLD.intercept_verdict("SBX000003")


def test_a_repeated_idempotency_key_gets_the_first_answer() -> None:
    carrier = SandboxCarrier(FakeClock(LATER), WORLD)
    parcel = ParcelRef(CODE, "SBX000004")
    carrier.stage_verdict("SBX000004", accepted=True)
    first = asyncio.run(carrier.intercept(parcel, "refund_only", "order-1:intercept"))
    carrier.stage_verdict("SBX000004", accepted=False, reason="网点暂不支持拦截")
    again = asyncio.run(carrier.intercept(parcel, "refund_only", "order-1:intercept"))
    other = asyncio.run(carrier.intercept(parcel, "refund_only", "order-2:intercept"))
    assert again == first
    assert first.accepted is True
    assert other.accepted is False
    assert len(carrier.intercept_requests) == 3
    assert {key for key, _ in carrier.intercept_requests} == {"order-1:intercept", "order-2:intercept"}


def test_the_plugin_factory_builds_a_carrier() -> None:
    clock = FakeClock(LATER)
    carrier = INFO.factory({"seed": 7}, {"clock": clock})
    assert isinstance(carrier, SandboxCarrier)
    number = EXAMPLE_NUMBER
    carrier.register(number, SHIPPED)
    (result,) = asyncio.run(carrier.track([number]))
    assert [as_json(e) for e in result.events] == json.loads(FIXTURE.read_text(encoding="utf-8"))
    scripted = INFO.factory({}, {"clock": clock, "scripted": True})
    assert asyncio.run(scripted.track([number]))[0].problem == "not_found"
