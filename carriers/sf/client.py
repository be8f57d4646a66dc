"""Talk to SF's 丰桥 open platform: sign, post the form, read the error out of the body.

Every service is one form POST (``application/x-www-form-urlencoded``) of ``partnerID``, ``requestID``,
``serviceCode``, ``timestamp``, ``msgData`` (JSON) and ``msgDigest`` = Base64(MD5(Java
``URLEncoder.encode(msgData + timestamp + checkWord, "UTF-8")``)) — SF's 数字签名 guide. SF answers
HTTP 200 even when it refuses: ``apiResultCode`` says whether the platform took the call.

Every request carries the ``timeout_seconds`` of the settings; a timeout, 5xx, A1009/A1099
(unavailable) and A1005 or HTTP 429 (rate limited) are retried with :mod:`carriers.retry`. A route
query is rebuilt for each try (a fresh ``requestID``: SF refuses a repeated one with A1007); an
intercept repeats the idempotency key as its ``requestID``, so a retry is answered A1007 instead of
intercepting twice. An intercept answer that cannot be read (not the envelope, an HTML page with
status 200, no ``success`` in ``apiResultData``) is a ``CarrierResponseError``: an unknown outcome the
service retries under the same requestID; only ``success: false`` is SF's refusal. 丰桥 documents no
query of an intercept's result (we found none for 截单转寄), so A1007's verdict comes from the routes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote_plus

import httpx
import structlog

from carriers.adapter import Clock
from carriers.errors import (
    CarrierAuthError,
    CarrierError,
    CarrierRateLimited,
    CarrierResponseError,
    CarrierUnavailable,
)
from carriers.model import InterceptResult, Limits, ParcelRef, TrackingResult
from carriers.retry import Rand, Sleep, call_with_retries
from carriers.sf.mapping import STATUS_BY_CODE, to_results
from carriers.sf.schema import OK, BizResult, Envelope, intercept_order, parse_route_resps, route_query
from carriers.sf.settings import SFSettings

CODE = "sf"
ROUTE_SERVICE = "EXP_RECE_SEARCH_ROUTES"
INTERCEPT_SERVICE = "EXP_RECE_WANTED_INTERCEPT"
DUPLICATE = "A1007"
# apiResultCode → error, from the 公共返回码 table of SF's API overview; others: CarrierResponseError.
ERROR_BY_API_CODE: dict[str, type[CarrierError]] = {
    "A1001": CarrierResponseError,  # required parameter empty: our request is malformed
    "A1002": CarrierAuthError,  # request expired (OAuth2 token older than 2 h)
    "A1003": CarrierAuthError,  # IP not allowed for this partnerID
    "A1004": CarrierAuthError,  # no permission for the service, or sandbox/production mismatch
    "A1005": CarrierRateLimited,  # 流量受控: 30 calls/s and 3000/day per interface on the test platform
    "A1006": CarrierAuthError,  # invalid digital signature (check word)
    "A1007": CarrierResponseError,  # duplicate request (requestID seen before)
    "A1008": CarrierResponseError,  # data decryption failed
    "A1009": CarrierUnavailable,  # target service exception or unreachable
    "A1010": CarrierAuthError,  # account still in sandbox-test status
    "A1099": CarrierUnavailable,  # system exception
}
T = TypeVar("T")
REQUEST_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

log = structlog.get_logger("carriers.sf")


def java_urlencode(text: str) -> str:
    """Encode like Java's ``URLEncoder.encode(text, "UTF-8")``: space → '+', keep ``* . - _``, escape '~'."""
    return quote_plus(text, safe="*").replace("~", "%7E")


def msg_digest(msg_data: str, timestamp: str, check_word: str) -> str:
    """Return ``msgDigest`` = Base64(MD5(URLEncode(msgData + timestamp + checkWord)))."""
    encoded = java_urlencode(msg_data + timestamp + check_word)
    return base64.b64encode(hashlib.md5(encoded.encode("utf-8")).digest()).decode("ascii")


def build_request(
    settings: SFSettings, service: str, msg: dict[str, Any], timestamp: str, request_id: str
) -> dict[str, str]:
    """Return the signed form fields of one call (pure)."""
    msg_data = json.dumps(msg, ensure_ascii=False, separators=(",", ":"))
    return {
        "partnerID": settings.partner_id,
        "requestID": request_id,
        "serviceCode": service,
        "timestamp": timestamp,
        "msgData": msg_data,
        "msgDigest": msg_digest(msg_data, timestamp, settings.check_word),
    }


def _retry_after(response: httpx.Response) -> float | None:
    """Read a ``Retry-After`` of whole seconds (a gateway's, not SF's: 丰桥 signals A1005 in the body)."""
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


def intercept_request_id(idempotency_key: str) -> str:
    """Use the caller's key as ``requestID`` (String(40)); a longer or odd key is hashed, stably."""
    if REQUEST_ID.fullmatch(idempotency_key):
        return idempotency_key
    return "ik-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:37]


class SFCarrier:
    """SF Express through 丰桥: route query for tracking, 截单转寄 for intercepts."""

    code = CODE
    # The route query takes at most 10 numbers (error 8003 查询单号超过最大限制); 丰桥 caps each
    # interface at 30 calls/s per partner, so 5/s leaves room for other callers of the account.
    limits = Limits(batch_size=10, requests_per_second=5.0)

    def __init__(
        self,
        settings: SFSettings,
        http: httpx.AsyncClient,
        clock: Clock,
        *,
        sleep: Sleep = asyncio.sleep,
        rand: Rand = random.random,
    ) -> None:
        """Use ``http`` for transport, ``clock`` for timestamps, ``sleep``/``rand`` for retry backoff."""
        self.settings = settings
        self._http = http
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._sequence = itertools.count(1)
        #: How often each opCode missing from STATUS_BY_CODE was seen.
        self.unknown_codes: Counter[str] = Counter()

    def _timestamp(self) -> str:
        """Return the injected clock's time in epoch milliseconds (``timestamp`` is a long)."""
        return str((self._clock.now() - EPOCH) // timedelta(milliseconds=1))

    async def track(self, numbers: Sequence[str]) -> list[TrackingResult]:
        """Fetch the routes of up to 10 waybill numbers in one call."""
        if not numbers:
            return []
        if len(numbers) > self.limits.batch_size:
            raise ValueError(f"sf route query takes at most {self.limits.batch_size} numbers, got {len(numbers)}")
        return await self._retrying(lambda: self._track_once(numbers), "track")

    async def _track_once(self, numbers: Sequence[str]) -> list[TrackingResult]:
        """Send one route query under a fresh requestID and map its answer."""
        timestamp = self._timestamp()
        request_id = f"{CODE}-{timestamp}-{next(self._sequence)}"
        msg = route_query(numbers, self.settings.check_phone_no)
        text, envelope = await self._call(ROUTE_SERVICE, msg, timestamp, request_id)
        self._raise_for_api_code(envelope, text)
        try:
            biz = BizResult.parse(envelope.result_data)
            if not biz.success:
                message = f"sf route query refused: {biz.error_code} {biz.error_msg}"
                raise CarrierResponseError(message, carrier=CODE, code=biz.error_code, raw=text)
            results = to_results(list(numbers), parse_route_resps(biz.msg_data))
        except (ValueError, TypeError, KeyError) as err:
            raise CarrierResponseError(f"sf route answer unreadable: {err}", carrier=CODE, raw=text) from err
        self._count_unknown(results)
        return results

    async def intercept(self, parcel: ParcelRef, reason: str, idempotency_key: str) -> InterceptResult:
        """Ask SF to return ``parcel`` to the sender; the idempotency key is the requestID, so a retry repeats it.

        SF's 截单转寄 has no field for a free-text reason, so ``reason`` is not sent. With ``intercept = false``
        nothing is sent: the answer is a rejection saying so, and the parcel is left to people.
        """
        if not self.settings.intercept:
            return InterceptResult(False, reason="intercept is off for this SF account (carriers.sf.intercept)")
        request_id = intercept_request_id(idempotency_key)
        msg = intercept_order(self.settings, parcel)
        log.info("intercept.requested", carrier=CODE, tracking_no=parcel.tracking_no, request_id=request_id)
        return await self._retrying(lambda: self._intercept_once(msg, request_id), "intercept")

    async def _intercept_once(self, msg: dict[str, Any], request_id: str) -> InterceptResult:
        """Send the intercept under ``request_id`` and read SF's verdict."""
        text, envelope = await self._call(INTERCEPT_SERVICE, msg, self._timestamp(), request_id)
        if envelope.result_code == DUPLICATE:  # the first request with this requestID arrived: its verdict is not here
            reason = envelope.error_msg or "duplicate request"
            return InterceptResult(accepted=None, reason=reason, raw_code=DUPLICATE, repeated=True)
        self._raise_for_api_code(envelope, text)
        try:
            biz = BizResult.parse(envelope.result_data)
        except (ValueError, TypeError) as err:
            raise CarrierResponseError(f"sf intercept answer unreadable: {err}", carrier=CODE, raw=text) from err
        if not biz.success:
            return InterceptResult(accepted=False, reason=biz.error_msg, raw_code=biz.error_code)
        ref = biz.msg_data.get("cusId") if isinstance(biz.msg_data, dict) else None
        return InterceptResult(accepted=True, raw_code=biz.error_code, carrier_ref=ref if isinstance(ref, str) else "")

    async def _retrying(self, fn: Callable[[], Awaitable[T]], operation: str) -> T:
        """Run ``fn`` under the settings' retry policy, with the injected sleep and jitter."""
        policy = self.settings.retry_policy
        return await call_with_retries(
            fn, policy, sleep=self._sleep, rand=self._rand, carrier=CODE, operation=operation
        )

    async def _call(self, service: str, msg: dict[str, Any], timestamp: str, request_id: str) -> tuple[str, Envelope]:
        """Post one signed call and return the body with its envelope; transport failures are typed."""
        form = build_request(self.settings, service, msg, timestamp, request_id)
        try:
            response = await self._http.post(self.settings.base_url, data=form, timeout=self.settings.timeout_seconds)
        except httpx.TimeoutException as err:
            raise CarrierUnavailable(f"sf {service} timed out", carrier=CODE) from err
        except httpx.TransportError as err:
            raise CarrierUnavailable(f"sf {service} unreachable: {err}", carrier=CODE) from err
        except httpx.DecodingError as err:  # a body its Content-Encoding does not decode: unreadable, not retried
            raise CarrierResponseError(f"sf {service}: undecodable answer: {err}", carrier=CODE) from err
        text = response.text
        if response.status_code >= 500:
            raise CarrierUnavailable(f"sf {service} answered HTTP {response.status_code}", carrier=CODE)
        if response.status_code == 429:
            wait = _retry_after(response)
            raise CarrierRateLimited(f"sf {service} answered HTTP 429", carrier=CODE, code="429", retry_after=wait)
        if response.status_code != 200:
            raise CarrierResponseError(f"sf {service} answered HTTP {response.status_code}", carrier=CODE, raw=text)
        try:
            return text, Envelope.parse(text)
        except ValueError as err:
            message = f"sf {service} answer is not 丰桥's envelope: {err}"
            raise CarrierResponseError(message, carrier=CODE, raw=text) from err

    def _raise_for_api_code(self, envelope: Envelope, text: str) -> None:
        """Raise the typed error for an ``apiResultCode`` other than A1000."""
        code = envelope.result_code
        if code == OK:
            return
        error = ERROR_BY_API_CODE.get(code, CarrierResponseError)
        message = f"sf refused the call: {code} {envelope.error_msg}".strip()
        if error is CarrierResponseError:
            raise CarrierResponseError(message, carrier=CODE, code=code, raw=text)
        raise error(message, carrier=CODE, code=code)

    def _count_unknown(self, results: list[TrackingResult]) -> None:
        """Count opCodes missing from the table; log each one the first time it is seen."""
        for result in results:
            for event in result.events:
                if event.raw_code in STATUS_BY_CODE:
                    continue
                if not self.unknown_codes[event.raw_code]:
                    log.warning("carrier.unknown_code", carrier=CODE, code=event.raw_code)
                self.unknown_codes[event.raw_code] += 1
