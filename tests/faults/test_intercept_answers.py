"""What an intercept answer means, adapter by adapter (issue 10, items 2–4): refusal, unknown, repeated, auth.

Only the carrier's explicit refusal is ``accepted=False``. An answer that cannot be read — garbage,
a gateway's HTML page with status 200, an envelope without a verdict — is ``CarrierResponseError``
(the service retries it under the same key); SF's A1007 is ``accepted=None, repeated=True``; a
signature refused is ``CarrierAuthError``. Against the kit's fakes, which check the signature.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from carriers.errors import CarrierAuthError, CarrierResponseError
from carriers.model import InterceptResult, ParcelRef
from carriers.sf import INFO as SF_INFO
from carriers.testing.clock import FixedClock
from carriers.testing.server import Reply
from carriers.testing.sf import CHECK_WORD, PARTNER, RETURN_ADDRESS
from carriers.testing.zto import APP_KEY, APP_SECRET
from carriers.zto import INFO as ZTO_INFO
from tests.carriers.payloads import FakeSF, FakeZTO

SF_PARCEL = ParcelRef("sf", "SF1400000000001", order_id="T-1")
ZTO_PARCEL = ParcelRef("zto", "78100000000005", order_id="T-1")
NO_VERDICT = Reply(200, {"apiResultCode": "A1000", "apiErrorMsg": "", "apiResponseID": "X", "apiResultData": "{}"})


async def no_wait(seconds: float) -> None:
    """Stand in for the adapters' backoff sleep."""


def sf_intercept(url: str, key: str = "intercept:parcel:1:1") -> InterceptResult:
    async def call() -> InterceptResult:
        async with httpx.AsyncClient() as http:
            settings = {"partner_id": PARTNER, "check_word_env": "CW", "base_url": url, "retries": 0,
                        "return_address": RETURN_ADDRESS}  # fmt: skip
            context = {"clock": FixedClock(), "http": http, "environ": {"CW": CHECK_WORD}, "sleep": no_wait}
            return await SF_INFO.factory(settings, context).intercept(SF_PARCEL, "refund_only", key)

    return asyncio.run(call())


def zto_intercept(url: str, key: str = "intercept:parcel:1:1") -> InterceptResult:
    async def call() -> InterceptResult:
        async with httpx.AsyncClient() as http:
            settings = {"app_key_env": "K", "app_secret_env": "S", "base_url": url, "retries": 0}
            context = {"clock": None, "http": http, "environ": {"K": APP_KEY, "S": APP_SECRET}, "sleep": no_wait}
            return await ZTO_INFO.factory(settings, context).intercept(ZTO_PARCEL, "refund_only", key)

    return asyncio.run(call())


@pytest.mark.parametrize("fault", ["garbage", "html"])
def test_sf_unreadable_intercept_answer_is_a_response_error_not_a_refusal(fault: str) -> None:
    with FakeSF() as sf:
        sf.fail(fault, times=1)
        with pytest.raises(CarrierResponseError):
            sf_intercept(sf.url)


def test_sf_envelope_without_a_verdict_is_a_response_error() -> None:
    with FakeSF() as sf:
        sf.script.append(NO_VERDICT)
        with pytest.raises(CarrierResponseError):
            sf_intercept(sf.url)


def test_sf_repeated_request_is_undecided_and_says_it_was_repeated() -> None:
    with FakeSF() as sf:
        sf.dedupe = True
        first = sf_intercept(sf.url, "intercept:parcel:7:1")
        again = sf_intercept(sf.url, "intercept:parcel:7:1")
    assert first.accepted is True
    assert (again.accepted, again.repeated, again.raw_code) == (None, True, "A1007")
    assert sf.seen[0].form["requestID"] == sf.seen[1].form["requestID"]


def test_sf_signature_refused_is_an_auth_error() -> None:
    with FakeSF() as sf:
        sf.fail("auth", times=1)
        with pytest.raises(CarrierAuthError):
            sf_intercept(sf.url)


def test_sf_explicit_refusal_is_the_only_rejection() -> None:
    with FakeSF() as sf:
        sf.replies["EXP_RECE_WANTED_INTERCEPT"] = "intercept_rejected"
        result = sf_intercept(sf.url)
    assert result.accepted is False and result.reason


@pytest.mark.parametrize("fault", ["garbage", "html"])
def test_zto_unreadable_intercept_answer_is_a_response_error(fault: str) -> None:
    with FakeZTO() as zto:
        zto.fail(fault, times=1)
        with pytest.raises(CarrierResponseError):
            zto_intercept(zto.base_url)


def test_zto_refusal_that_says_nothing_is_a_response_error() -> None:
    with FakeZTO() as zto:
        zto.script.append(Reply(200, {"status": False, "statusCode": "", "message": "", "result": None}))
        with pytest.raises(CarrierResponseError):
            zto_intercept(zto.base_url)


def test_zto_signature_refused_is_an_auth_error() -> None:
    with FakeZTO() as zto:
        zto.fail("auth", times=1)
        with pytest.raises(CarrierAuthError):
            zto_intercept(zto.base_url)


def test_zto_explicit_refusal_is_a_rejection() -> None:
    with FakeZTO() as zto:
        zto.intercept_reply = "intercept_rejected"
        result: Any = zto_intercept(zto.base_url)
    assert result.accepted is False and result.raw_code
