"""Fetch: the adapter against a real local ZOP endpoint that recomputes x-dataDigest with its own secret."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from carriers.errors import (
    CarrierAuthError,
    CarrierError,
    CarrierRateLimited,
    CarrierResponseError,
    CarrierUnavailable,
)
from carriers.model import InterceptResult, ParcelRef, Status, TrackingResult
from carriers.testing.server import closed_port
from carriers.testing.zto import APP_KEY, APP_SECRET, INTERCEPT_PATH, TRACK_PATH, zop_digest
from carriers.zto import INFO, ZTOCarrier
from tests.carriers.payloads import FakeZTO
from tests.carriers.payloads import ZTOReply as Reply
from tests.carriers.payloads import zto_recorded as recorded

DELIVERED = "78100000000005"
PARCEL = ParcelRef("zto", DELIVERED, order_id="T-1001")
BUSY = Reply(503, "<html><body>503 Service Temporarily Unavailable</body></html>")


@pytest.fixture
def zto() -> Iterator[FakeZTO]:
    with FakeZTO(tracks={DELIVERED: "track_delivered"}) as server:
        yield server


class Waits:
    """Record the backoff delays instead of sleeping them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def adapter(
    url: str, *, key: str = APP_KEY, secret: str = APP_SECRET, waits: Waits | None = None, **options: Any
) -> ZTOCarrier:
    """Build the adapter the way the service does: INFO.factory with settings, http, environ (and backoff)."""
    settings = {"app_key_env": "ZTO_APP_KEY", "app_secret_env": "ZTO_APP_SECRET", "base_url": url, **options}
    context = {
        "clock": None,
        "http": httpx.AsyncClient(),
        "environ": {"ZTO_APP_KEY": key, "ZTO_APP_SECRET": secret},
        "sleep": waits or Waits(),
        "rand": lambda: 0.5,
    }
    carrier = INFO.factory(settings, context)
    assert isinstance(carrier, ZTOCarrier)
    return carrier


def track(carrier: ZTOCarrier, numbers: list[str]) -> list[TrackingResult]:
    return asyncio.run(carrier.track(numbers))


def intercept(carrier: ZTOCarrier, key: str, parcel: ParcelRef = PARCEL) -> InterceptResult:
    return asyncio.run(carrier.intercept(parcel, "refund_only", key))


def test_track_posts_signed_json_that_zop_accepts(zto: FakeZTO) -> None:
    (result,) = track(adapter(zto.base_url), [DELIVERED])

    (request,) = zto.seen
    assert request.path == TRACK_PATH
    assert request.headers["content-type"].startswith("application/json")
    assert request.headers["x-appkey"] == APP_KEY
    assert request.headers["x-datadigest"] == zop_digest(request.raw, APP_SECRET)
    assert request.json() == {"billCode": DELIVERED}
    assert result.events[-1].status is Status.DELIVERED
    assert APP_SECRET not in request.raw.decode()


def test_several_numbers_are_asked_one_per_call(zto: FakeZTO) -> None:
    results = track(adapter(zto.base_url), [DELIVERED, "78100000000099"])
    assert [s.json()["billCode"] for s in zto.seen] == [DELIVERED, "78100000000099"]
    assert [(r.tracking_no, r.problem) for r in results] == [(DELIVERED, None), ("78100000000099", "no_routes")]


def test_a_wrong_secret_is_refused_with_s211_and_never_retried(zto: FakeZTO) -> None:
    waits = Waits()
    with pytest.raises(CarrierAuthError) as caught:
        track(adapter(zto.base_url, secret="not-the-secret", waits=waits), [DELIVERED])
    assert (caught.value.code, caught.value.carrier) == ("S211", "zto")
    assert len(zto.seen) == 1
    assert waits.delays == []


def test_an_unknown_app_key_is_refused_with_s210(zto: FakeZTO) -> None:
    with pytest.raises(CarrierAuthError) as caught:
        track(adapter(zto.base_url, key="someone-else"), [DELIVERED])
    assert caught.value.code == "S210"


@pytest.mark.parametrize(
    ("fixture", "error"),
    [
        ("error_s200", CarrierUnavailable),
        ("error_s202", CarrierUnavailable),
        ("error_s203", CarrierUnavailable),
        ("error_s206", CarrierRateLimited),
        ("error_s207", CarrierResponseError),
        ("error_s208", CarrierResponseError),
        ("error_s210", CarrierAuthError),
        ("error_s211", CarrierAuthError),
        ("error_s212", CarrierAuthError),
        ("error_s214", CarrierAuthError),
        ("error_s221", CarrierRateLimited),
    ],
)
def test_platform_codes_in_an_http_200_body_are_typed(zto: FakeZTO, fixture: str, error: type[CarrierError]) -> None:
    zto.script = [Reply.recorded(fixture)]
    with pytest.raises(error) as caught:
        track(adapter(zto.base_url, retries=0), [DELIVERED])
    assert type(caught.value) is error
    assert caught.value.code == fixture.removeprefix("error_").upper()
    if isinstance(caught.value, CarrierResponseError):
        assert json.loads(caught.value.raw) == recorded(fixture)["body"]


def test_http_500_is_unavailable(zto: FakeZTO) -> None:
    zto.script = [Reply(500, "<html><body>500 Internal Server Error</body></html>")]
    with pytest.raises(CarrierUnavailable) as caught:
        track(adapter(zto.base_url, retries=0), [DELIVERED])
    assert caught.value.code == "500"


def test_a_closed_port_is_unavailable() -> None:
    with pytest.raises(CarrierUnavailable) as caught:
        track(adapter(f"http://127.0.0.1:{closed_port()}", retries=0), [DELIVERED])
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_an_html_page_with_http_200_is_a_response_error_keeping_the_body(zto: FakeZTO) -> None:
    zto.script = [Reply(200, "<html><body>网关维护中</body></html>")]
    with pytest.raises(CarrierResponseError) as caught:
        track(adapter(zto.base_url), [DELIVERED])
    assert caught.value.raw == "<html><body>网关维护中</body></html>"
    assert caught.value.__cause__ is not None
    assert len(zto.seen) == 1


# --- retries and timeouts --------------------------------------------------------------------


def test_503_then_429_then_200_succeeds_on_the_third_request(zto: FakeZTO) -> None:
    zto.script = [BUSY, Reply(429, "Too Many Requests", {"Retry-After": "1"})]
    waits = Waits()
    (result,) = track(adapter(zto.base_url, waits=waits), [DELIVERED])
    assert len(zto.seen) == 3
    assert result.events[-1].status is Status.DELIVERED
    assert waits.delays == [0.25, 1.0]  # jitter 0.5 of 0.5 s, then the carrier's own Retry-After
    assert all(s.headers["x-datadigest"] == zop_digest(s.raw, APP_SECRET) for s in zto.seen)


def test_busy_platform_codes_are_retried_then_the_last_error_is_raised(zto: FakeZTO) -> None:
    zto.script = [Reply.recorded("error_s203"), Reply.recorded("error_s221"), Reply.recorded("error_s200")]
    waits = Waits()
    with pytest.raises(CarrierUnavailable) as caught:
        track(adapter(zto.base_url, waits=waits, retries=2), [DELIVERED])
    assert caught.value.code == "S200"
    assert len(zto.seen) == 3
    assert waits.delays == [0.25, 0.5]


def test_a_server_slower_than_timeout_seconds_is_unavailable(zto: FakeZTO) -> None:
    zto.script = [Reply.recorded("track_delivered", delay=1.0), Reply.recorded("track_delivered", delay=1.0)]
    with pytest.raises(CarrierUnavailable) as caught:
        track(adapter(zto.base_url, timeout_seconds=0.2, retries=1), [DELIVERED])
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)
    assert len(zto.seen) == 2


def test_a_slow_first_answer_is_retried_within_the_timeout(zto: FakeZTO) -> None:
    zto.script = [Reply.recorded("track_delivered", delay=1.0)]
    (result,) = track(adapter(zto.base_url, timeout_seconds=0.3), [DELIVERED])
    assert result.events[-1].status is Status.DELIVERED
    assert len(zto.seen) == 2


# --- intercept -------------------------------------------------------------------------------


def test_intercept_sends_a_signed_return_to_sender_under_the_idempotency_key(zto: FakeZTO) -> None:
    result = intercept(adapter(zto.base_url), "refund-7788")

    (request,) = zto.seen
    assert request.path == INTERCEPT_PATH
    assert request.headers["x-datadigest"] == zop_digest(request.raw, APP_SECRET)
    assert request.json() == {
        "billCode": DELIVERED,
        "requestId": "refund-7788",
        "destinationType": 2,
        "thirdBizNo": "T-1001",
    }
    assert result == InterceptResult(accepted=True, raw_code="SYS000", carrier_ref="2026111100012345")


def test_customer_id_goes_with_the_intercept_when_configured(zto: FakeZTO) -> None:
    intercept(adapter(zto.base_url, customer_id="GPG1576724269"), "refund-7789")
    assert zto.seen[0].json()["customerId"] == "GPG1576724269"


def test_a_rejected_intercept_carries_ztos_reason_and_code(zto: FakeZTO) -> None:
    zto.intercept_reply = "intercept_rejected"
    result = intercept(adapter(zto.base_url), "refund-7790")
    assert result.accepted is False
    assert result.reason == "该运单已签收，不支持拦截"
    assert result.raw_code == "BIZ_REFUSED"


def test_a_retried_intercept_repeats_the_request_id_so_zto_never_intercepts_twice(zto: FakeZTO) -> None:
    zto.script = [BUSY]
    carrier = adapter(zto.base_url)
    first = intercept(carrier, "refund-7791")  # 503, then retried
    again = intercept(adapter(zto.base_url), "refund-7791")  # the outbox retries the action later
    other = intercept(carrier, "refund-7792")

    assert [s.json()["requestId"] for s in zto.seen] == ["refund-7791", "refund-7791", "refund-7791", "refund-7792"]
    assert sorted(zto.created) == ["refund-7791", "refund-7792"]
    assert (first.accepted, again.accepted, other.accepted) == (True, True, True)
    assert first.carrier_ref == again.carrier_ref


def test_an_intercept_whose_answer_was_lost_is_created_once(zto: FakeZTO) -> None:
    # ZTO creates the intercept on the first request but its answer comes after our timeout; the retry
    # sends the same requestId, ZTO recognises it, and there is still exactly one intercept.
    zto.late = [1.0]
    result = intercept(adapter(zto.base_url, timeout_seconds=0.3), "k-1")
    assert [s.json()["requestId"] for s in zto.seen] == ["k-1", "k-1"]
    assert list(zto.created) == ["k-1"]
    assert result.accepted is True


def test_an_intercept_refused_by_the_platform_is_typed(zto: FakeZTO) -> None:
    with pytest.raises(CarrierAuthError):
        intercept(adapter(zto.base_url, secret="wrong"), "refund-7793")
    assert zto.created == {}


# --- logs ------------------------------------------------------------------------------------


def test_logs_are_key_value_events_without_secrets(zto: FakeZTO) -> None:
    zto.script = [BUSY]
    with capture_logs() as logs:
        track(adapter(zto.base_url), [DELIVERED])
        intercept(adapter(zto.base_url), "refund-7794")
    retries = [e for e in logs if e["event"] == "carrier.retry"]
    assert retries == [
        {
            "event": "carrier.retry",
            "log_level": "info",
            "carrier": "zto",
            "operation": "track",
            "attempt": 1,
            "delay": 0.25,
            "error": "CarrierUnavailable",
            "code": "503",
        }
    ]
    assert any(e["event"] == "intercept.requested" for e in logs)
    dumped = json.dumps(logs, ensure_ascii=False, default=str)
    assert APP_SECRET not in dumped
    assert APP_KEY not in dumped
