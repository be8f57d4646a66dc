"""Retries and timeouts of the Kuaidi100 adapter against the real local server."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from carriers.errors import CarrierAuthError, CarrierUnavailable
from carriers.kuaidi100 import Kuaidi100Carrier
from carriers.model import Status, TrackingResult
from carriers.testing.kuaidi100 import make_settings
from tests.carriers.payloads import FakeKuaidi100
from tests.carriers.payloads import Kuaidi100Reply as Reply

NUMBER = "ZT7800000000005"


def run(server: FakeKuaidi100, delays: list[float], **settings: object) -> list[TrackingResult]:
    """Track NUMBER once, recording the backoff delays instead of sleeping them."""

    async def record(delay: float) -> None:
        delays.append(delay)

    async def main() -> list[TrackingResult]:
        async with httpx.AsyncClient() as http:
            carrier = Kuaidi100Carrier(make_settings(server.base_url, **settings), http, sleep=record, rand=lambda: 1.0)
            return await carrier.track([NUMBER])

    return asyncio.run(main())


def test_503_then_429_then_200_succeeds_on_the_third_query() -> None:
    delays: list[float] = []
    with FakeKuaidi100(tracks={NUMBER: "query_state_5"}) as server:
        server.script = [Reply(503, "busy"), Reply(429, "slow down")]
        (result,) = run(server, delays)
    assert len(server.received) == 3
    assert result.events[-1].status is Status.OUT_FOR_DELIVERY
    assert delays == [0.5, 1.0]  # rand 1.0: base 0.5 doubled each retry


def test_return_code_502_in_the_body_is_retried_and_exhausted() -> None:
    delays: list[float] = []
    busy = Reply.recorded("error_server_busy")
    with FakeKuaidi100(tracks={NUMBER: "query_state_5"}) as server:
        server.script = [busy, busy, busy]
        with pytest.raises(CarrierUnavailable):
            run(server, delays, retries=2)
    assert len(server.received) == 3
    assert delays == [0.5, 1.0]


def test_a_bad_signature_is_never_retried() -> None:
    delays: list[float] = []
    with FakeKuaidi100() as server, pytest.raises(CarrierAuthError):
        run(server, delays, key="not-the-key")
    assert len(server.received) == 1
    assert delays == []


def test_a_server_slower_than_timeout_seconds_is_unavailable() -> None:
    delays: list[float] = []
    with FakeKuaidi100() as server:
        server.script = [Reply(200, "{}", delay=1.0), Reply(200, "{}", delay=1.0)]
        with pytest.raises(CarrierUnavailable) as caught:
            run(server, delays, timeout_seconds=0.2, retries=1)
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)
    assert len(server.received) == 2
