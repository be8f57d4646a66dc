"""Retries and timeouts of the SF adapter against the real local 丰桥 endpoint: 503, 429, slow answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from carriers.errors import CarrierAuthError, CarrierRateLimited, CarrierUnavailable
from carriers.model import ParcelRef, Status, TrackingResult
from carriers.sf import INFO, SFCarrier
from carriers.testing.clock import FixedClock
from carriers.testing.sf import CHECK_WORD, PARTNER, RETURN_ADDRESS, Scripted
from tests.carriers.payloads import FakeSF

NUMBERS = ["SF1400000000001", "SF1400000000002"]
PARCEL = ParcelRef("sf", "SF1400000000001", order_id="T-1001")
BUSY = Scripted(503, "<html><body>503 Service Temporarily Unavailable</body></html>")


@pytest.fixture
def sf() -> Iterator[FakeSF]:
    with FakeSF() as server:
        yield server


class Waits:
    """Record the backoff delays instead of sleeping them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def adapter(url: str, waits: Waits, **options: Any) -> SFCarrier:
    settings = {
        "partner_id": PARTNER,
        "check_word_env": "SF_CHECK_WORD",
        "base_url": url,
        "return_address": RETURN_ADDRESS,
        **options,
    }
    context = {
        "clock": FixedClock(),
        "http": httpx.AsyncClient(),
        "environ": {"SF_CHECK_WORD": CHECK_WORD},
        "sleep": waits,
        "rand": lambda: 0.5,
    }
    carrier = INFO.factory(settings, context)
    assert isinstance(carrier, SFCarrier)
    return carrier


def track(carrier: SFCarrier) -> list[TrackingResult]:
    return asyncio.run(carrier.track(NUMBERS))


def test_503_then_429_then_200_succeeds_on_the_third_request(sf: FakeSF) -> None:
    sf.script = [BUSY, Scripted(429, "Too Many Requests", {"Retry-After": "2"})]
    waits = Waits()
    results = track(adapter(sf.url, waits))

    assert len(sf.seen) == 3
    assert results[0].events[-1].status is Status.DELIVERED
    # full jitter with rand 0.5: 0.5 * 0.5 * 2**0 after the 503; the 429 names its own wait.
    assert waits.delays == [0.25, 2.0]
    # every try is a fresh route query: SF refuses a repeated requestID (A1007)
    assert len({s.form["requestID"] for s in sf.seen}) == 3


def test_platform_codes_a1009_and_a1005_are_retried(sf: FakeSF) -> None:
    sf.script = [Scripted(*FakeSF.recorded_pair("error_a1009")), Scripted(*FakeSF.recorded_pair("error_a1005"))]
    waits = Waits()
    track(adapter(sf.url, waits))
    assert len(sf.seen) == 3
    assert waits.delays == [0.25, 0.5]


def test_attempts_exhausted_re_raise_the_last_typed_error(sf: FakeSF) -> None:
    sf.script = [BUSY, BUSY, Scripted(429, "")]
    waits = Waits()
    with pytest.raises(CarrierRateLimited):
        track(adapter(sf.url, waits, retries=2))
    assert len(sf.seen) == 3
    assert len(waits.delays) == 2


def test_a_wrong_check_word_is_never_retried(sf: FakeSF) -> None:
    waits = Waits()
    settings = {"partner_id": PARTNER, "check_word_env": "SF_CHECK_WORD", "base_url": sf.url, "intercept": False}
    context = {
        "clock": FixedClock(),
        "http": httpx.AsyncClient(),
        "environ": {"SF_CHECK_WORD": "wrong"},
        "sleep": waits,
    }
    with pytest.raises(CarrierAuthError):
        asyncio.run(INFO.factory(settings, context).track(NUMBERS))
    assert len(sf.seen) == 1
    assert waits.delays == []


def test_a_server_slower_than_timeout_seconds_is_unavailable_after_every_try(sf: FakeSF) -> None:
    sf.delay = 1.0
    waits = Waits()
    with pytest.raises(CarrierUnavailable) as caught:
        track(adapter(sf.url, waits, timeout_seconds=0.2, retries=1))
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)
    assert len(sf.seen) == 2


def test_an_intercept_retried_after_503_repeats_its_request_id(sf: FakeSF) -> None:
    sf.script = [BUSY]
    result = asyncio.run(adapter(sf.url, Waits()).intercept(PARCEL, "refund-only", "refund-7788"))
    assert [s.form["requestID"] for s in sf.seen] == ["refund-7788", "refund-7788"]
    assert result.accepted is True


def test_an_intercept_whose_answer_was_lost_is_not_made_twice(sf: FakeSF) -> None:
    # The first request reaches SF but its answer comes too late; the retry repeats the requestID,
    # which SF answers with A1007, so there is still one intercept and its verdict is pending.
    sf.dedupe = True
    sf.script = [Scripted(*FakeSF.recorded_pair("intercept_accepted"), delay=1.0)]
    result = asyncio.run(adapter(sf.url, Waits(), timeout_seconds=0.3).intercept(PARCEL, "refund-only", "k-1"))
    assert [s.form["requestID"] for s in sf.seen] == ["k-1", "k-1"]
    assert result.accepted is None
    assert result.raw_code == "A1007"


def test_each_retry_is_logged_as_data_without_the_check_word(sf: FakeSF) -> None:
    sf.script = [BUSY]
    with capture_logs() as logs:
        track(adapter(sf.url, Waits()))
    (retry,) = [event for event in logs if event["event"] == "carrier.retry"]
    assert retry["carrier"] == "sf"
    assert retry["operation"] == "track"
    assert retry["attempt"] == 1
    assert retry["delay"] == 0.25
    assert retry["error"] == "CarrierUnavailable"
    assert all(CHECK_WORD not in json.dumps(event, ensure_ascii=False, default=str) for event in logs)
