"""Fetch: the adapter against a real local 丰桥 endpoint that recomputes msgDigest with its own check word."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from carriers.errors import (
    CarrierAuthError,
    CarrierError,
    CarrierRateLimited,
    CarrierResponseError,
    CarrierUnavailable,
)
from carriers.model import ParcelRef, Status, TrackingResult
from carriers.sf import INFO, SFCarrier
from carriers.sf.schema import route_query
from carriers.testing.clock import FixedClock
from carriers.testing.server import closed_port
from carriers.testing.sf import CHECK_WORD, PARTNER, RETURN_ADDRESS
from tests.carriers.payloads import NOW, FakeSF

NOW_MS = str(int(NOW.timestamp()) * 1000)
NUMBERS = ["SF1400000000001", "SF1400000000002"]
PARCEL = ParcelRef("sf", "SF1400000000001", order_id="T-1001")


@pytest.fixture
def sf() -> Iterator[FakeSF]:
    with FakeSF() as server:
        yield server


async def no_wait(delay: float) -> None:
    """Stand in for asyncio.sleep so retried calls do not wait."""


def adapter(
    url: str,
    *,
    check_word: str = CHECK_WORD,
    partner: str = PARTNER,
    clock: FixedClock | None = None,
    **options: Any,
) -> SFCarrier:
    """Build the adapter the way the service does: INFO.factory with settings, clock, http and environ."""
    settings = {
        "partner_id": partner,
        "check_word_env": "SF_CHECK_WORD",
        "base_url": url,
        "return_address": RETURN_ADDRESS,
        **options,
    }
    context = {
        "clock": clock or FixedClock(),
        "http": httpx.AsyncClient(),
        "environ": {"SF_CHECK_WORD": check_word},
        "sleep": no_wait,
    }
    carrier = INFO.factory(settings, context)
    assert isinstance(carrier, SFCarrier)
    return carrier


def track(carrier: SFCarrier, numbers: list[str]) -> list[TrackingResult]:
    return asyncio.run(carrier.track(numbers))


def test_track_posts_a_signed_form_that_sf_accepts(sf: FakeSF) -> None:
    results = track(adapter(sf.url), NUMBERS)

    (request,) = sf.seen
    assert request.content_type.startswith("application/x-www-form-urlencoded")
    assert request.form["partnerID"] == PARTNER
    assert request.form["serviceCode"] == "EXP_RECE_SEARCH_ROUTES"
    assert request.form["timestamp"] == NOW_MS
    assert request.form["requestID"] == f"sf-{NOW_MS}-1"
    assert request.msg() == route_query(NUMBERS)
    assert [r.tracking_no for r in results] == NUMBERS
    assert results[0].events[-2].status is Status.DELIVERED
    assert results[1].events[-1].status is Status.IN_TRANSIT


def test_each_query_gets_its_own_request_id(sf: FakeSF) -> None:
    clock = FixedClock()
    carrier = adapter(sf.url, clock=clock)
    track(carrier, NUMBERS)
    track(carrier, NUMBERS)
    clock.current = NOW + timedelta(seconds=1)
    track(carrier, NUMBERS)
    ids = [s.form["requestID"] for s in sf.seen]
    assert len(set(ids)) == 3
    assert all(len(i) <= 40 for i in ids)


def test_a_wrong_check_word_is_refused_with_a1006(sf: FakeSF) -> None:
    with pytest.raises(CarrierAuthError) as caught:
        track(adapter(sf.url, check_word="not-the-check-word"), NUMBERS)
    assert caught.value.code == "A1006"
    assert caught.value.carrier == "sf"


def test_an_unknown_partner_is_refused(sf: FakeSF) -> None:
    with pytest.raises(CarrierAuthError) as caught:
        track(adapter(sf.url, partner="SOMEONE_ELSE"), NUMBERS)
    assert caught.value.code == "A1004"


@pytest.mark.parametrize(
    ("fixture", "error"),
    [
        ("error_a1001", CarrierResponseError),
        ("error_a1003", CarrierAuthError),
        ("error_a1004", CarrierAuthError),
        ("error_a1005", CarrierRateLimited),
        ("error_a1006", CarrierAuthError),
        ("error_a1009", CarrierUnavailable),
        ("error_a1099", CarrierUnavailable),
    ],
)
def test_platform_errors_in_an_http_200_body_are_typed(sf: FakeSF, fixture: str, error: type[CarrierError]) -> None:
    sf.force = FakeSF.recorded_pair(fixture)
    with pytest.raises(error) as caught:
        track(adapter(sf.url), NUMBERS)
    assert type(caught.value) is error
    assert caught.value.code == fixture.removeprefix("error_").upper()
    if isinstance(caught.value, CarrierResponseError):
        assert caught.value.raw == sf.force[1]


def test_http_500_is_unavailable(sf: FakeSF) -> None:
    sf.force = (500, "<html><body>500 Internal Server Error</body></html>")
    with pytest.raises(CarrierUnavailable):
        track(adapter(sf.url), NUMBERS)


def test_a_timeout_is_unavailable(sf: FakeSF) -> None:
    sf.delay = 2.0
    with pytest.raises(CarrierUnavailable) as caught:
        track(adapter(sf.url, timeout_seconds=0.2, retries=0), NUMBERS)
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)
    assert len(sf.seen) == 1


def test_a_closed_port_is_unavailable() -> None:
    with pytest.raises(CarrierUnavailable) as caught:
        track(adapter(f"http://127.0.0.1:{closed_port()}/std/service"), NUMBERS)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_an_html_page_with_http_200_is_a_response_error_keeping_the_body(sf: FakeSF) -> None:
    sf.force = (200, "<html><body>网关维护中</body></html>")
    with pytest.raises(CarrierResponseError) as caught:
        track(adapter(sf.url), NUMBERS)
    assert caught.value.raw == "<html><body>网关维护中</body></html>"
    assert caught.value.__cause__ is not None


def test_intercept_sends_the_return_request_signed(sf: FakeSF) -> None:
    result = asyncio.run(adapter(sf.url).intercept(PARCEL, "refund-only", "refund-7788"))

    (request,) = sf.seen
    assert request.form["serviceCode"] == "EXP_RECE_WANTED_INTERCEPT"
    assert request.form["requestID"] == "refund-7788"
    assert request.msg() == {"waybillNo": "SF1400000000001", "serviceCode": "2", "role": "1", "payMode": "1",
                             "newDestAddress": RETURN_ADDRESS}  # fmt: skip
    assert result.accepted is True
    assert result.raw_code == "S0000"


def test_a_retried_intercept_repeats_the_request_id_so_sf_never_intercepts_twice(sf: FakeSF) -> None:
    sf.dedupe = True
    carrier = adapter(sf.url)
    first = asyncio.run(carrier.intercept(PARCEL, "refund-only", "refund-7788"))
    again = asyncio.run(adapter(sf.url).intercept(PARCEL, "refund-only", "refund-7788"))
    other = asyncio.run(carrier.intercept(PARCEL, "refund-only", "refund-7789"))

    ids = [s.form["requestID"] for s in sf.seen]
    assert ids == ["refund-7788", "refund-7788", "refund-7789"]
    assert first.accepted is True
    assert again.accepted is None
    assert again.raw_code == "A1007"
    assert other.accepted is True


def test_a_rejected_intercept_carries_sfs_reason_and_code(sf: FakeSF) -> None:
    sf.replies["EXP_RECE_WANTED_INTERCEPT"] = "intercept_rejected"
    result = asyncio.run(adapter(sf.url).intercept(PARCEL, "refund-only", "refund-7790"))
    assert result.accepted is False
    assert result.reason == "运单已签收，不能发起拦截"
    assert result.raw_code == "20034"


def test_an_intercept_that_times_out_raises_so_the_outbox_retries(sf: FakeSF) -> None:
    sf.delay = 2.0
    with pytest.raises(CarrierUnavailable):
        asyncio.run(adapter(sf.url, timeout_seconds=0.2, retries=0).intercept(PARCEL, "refund-only", "refund-7791"))


def test_an_intercept_refused_by_the_platform_is_typed(sf: FakeSF) -> None:
    with pytest.raises(CarrierAuthError):
        asyncio.run(adapter(sf.url, check_word="wrong").intercept(PARCEL, "refund-only", "refund-7792"))
