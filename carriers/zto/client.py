"""Talk to ZTO's open platform (ZOP): sign the JSON body, post it, read the error out of the answer.

Every API is one ``POST {gateway}/{api name}`` of a UTF-8 JSON body with two headers: ``x-appKey``
(the application's key) and ``x-dataDigest`` = Base64(MD5(request body + appSecret)) — ZOP's 平台标准签名
(open.zto.com/#/documents?menuId=4; the worked example: body ``{"pageNo1":33,"pageSize2":23,"data":"test"}``
with appSecret ``6fecf57d0f3e1c2100eac4810aa90b54`` signs to ``7Ih1zjVdgQEFBzdITreegg==``). The digest is
computed over the exact bytes sent. ZOP answers HTTP 200 even when it refuses: ``status`` and
``statusCode`` in the body decide (公共错误码对照表 S200–S221, 公共数据鉴权错误码 E404–E418).

Uncertain, and flagged where it matters: ZTO's own SDK sends the key as ``x-companyid`` while the
platform's documents name ``x-appKey`` (header names are case-insensitive; we follow the documents);
some clients call ``api.zto.com`` rather than ``japi.zto.com`` for the trace query; ZOP publishes no
QPS figure (S206/S221 say a limit exists), so ``requests_per_second`` is a conservative 5; the
intercept's business refusal codes and its answer to a repeated ``requestId`` are not in the public
documents we found (``requestId`` is documented as the idempotency check, 幂等校验).

Every request carries the settings' ``timeout_seconds``; timeouts, 5xx, S200/S202/S203 (unavailable)
and S206/S221 or HTTP 429 (rate limited) are retried with :mod:`carriers.retry`. The intercept sends
the caller's idempotency key as ``requestId`` on every try, so a retry never intercepts twice.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import structlog

from carriers.errors import (
    CarrierAuthError,
    CarrierError,
    CarrierRateLimited,
    CarrierResponseError,
    CarrierUnavailable,
)
from carriers.model import InterceptResult, Limits, ParcelRef, TrackingResult
from carriers.retry import Rand, Sleep, call_with_retries
from carriers.zto.mapping import STATUS_BY_CODE, to_result
from carriers.zto.schema import Answer, intercept_order, intercept_ref, parse_scans, track_query
from carriers.zto.settings import ZTOSettings

CODE = "zto"
TRACK_API = "zto.merchant.waybill.track.query"
INTERCEPT_API = "thirdcenter.createIntercept"
JSON_TYPE = "application/json; charset=UTF-8"
T = TypeVar("T")

# statusCode → error, from ZOP's 公共错误码对照表 (every one answered with HTTP 200). Others: see below.
ERROR_BY_CODE: dict[str, type[CarrierError]] = {
    "S200": CarrierUnavailable,  # 请求超时: the backend behind the gateway timed out
    "S202": CarrierUnavailable,  # 发生错误: the backend threw an exception
    "S203": CarrierUnavailable,  # 服务暂不可用
    "S206": CarrierRateLimited,  # api qos limit: calls per minute/hour used up
    "S207": CarrierResponseError,  # API不存在: our URL names no API
    "S208": CarrierResponseError,  # XX不能为空: a required parameter is missing from our body
    "S210": CarrierAuthError,  # 无权限访问: the application is not bound to this API
    "S211": CarrierAuthError,  # 签名错误: x-dataDigest does not match (wrong appSecret)
    "S212": CarrierAuthError,  # IP黑白名单限制: our address is not on the application's list
    "S214": CarrierAuthError,  # 时间戳非法: the app is set to a timestamped signature we do not send
    "S221": CarrierRateLimited,  # api qps flow limit
}
# statusCode of the trace query that is about the number, not the call (公共数据鉴权错误码): data on
# its result, so one bad number never fails a batch. Uncertain: E404/E418 could also mean the whole
# account lacks a binding; as ZTO words them ("请绑定缺失的电子面单账号") they are about this waybill.
PROBLEM_BY_CODE: dict[str, str] = {
    "E404": "not_authorized",  # 鉴权失败,未绑定电子面单账号
    "E409": "phone_mismatch",  # 鉴权失败,收寄人电话号码校验不一致
    "E413": "phone_required",  # 鉴权失败,请输入收寄人任一方电话号码后4位
    "E416": "invalid_number",  # 不符合中通运单号规则校验
    "E418": "not_authorized",  # 鉴权失败,不存在对应的网点授权
}
#: requestId we send as is; the length ZOP accepts is not documented, so 40 (as SF's) to be safe.
REQUEST_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}")

log = structlog.get_logger("carriers.zto")


@dataclass(frozen=True, slots=True)
class ZTORequest:
    """One signed call, ready to send: where, which headers, and the exact body bytes signed."""

    url: str
    body: bytes
    headers: dict[str, str] = field(repr=False)


def data_digest(body: bytes, app_secret: str) -> str:
    """Return ``x-dataDigest`` = Base64(MD5(body + appSecret)), over the UTF-8 bytes."""
    return base64.b64encode(hashlib.md5(body + app_secret.encode("utf-8")).digest()).decode("ascii")


def encode_body(payload: dict[str, Any]) -> bytes:
    """Serialize a body compactly, Chinese unescaped, as the bytes that are both signed and sent."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build_request(settings: ZTOSettings, api: str, payload: dict[str, Any]) -> ZTORequest:
    """Return the signed request of one ZOP call (pure)."""
    body = encode_body(payload)
    headers = {
        "Content-Type": JSON_TYPE,
        "x-appKey": settings.app_key,
        "x-dataDigest": data_digest(body, settings.app_secret),
    }
    return ZTORequest(url=settings.url(api), body=body, headers=headers)


def intercept_request_id(idempotency_key: str) -> str:
    """Use the caller's key as ``requestId``; a longer or odd key is hashed, stably, to 40 characters."""
    if REQUEST_ID.fullmatch(idempotency_key):
        return idempotency_key
    return "ik-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:37]


def _retry_after(response: httpx.Response) -> float | None:
    """Read a ``Retry-After`` of whole seconds (a gateway's; ZOP itself signals S206/S221 in the body)."""
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


class ZTOCarrier:
    """ZTO Express through ZOP: trace query for tracking, createIntercept (return to sender) for intercepts."""

    code = CODE
    # The trace query takes one billCode per call; ZOP publishes no rate, so 5/s is a conservative guess.
    limits = Limits(batch_size=1, requests_per_second=5.0)

    def __init__(
        self,
        settings: ZTOSettings,
        http: httpx.AsyncClient,
        *,
        sleep: Sleep = asyncio.sleep,
        rand: Rand = random.random,
    ) -> None:
        """Use ``http`` for transport and ``sleep``/``rand`` for the retry backoff."""
        self.settings = settings
        self._http = http
        self._sleep = sleep
        self._rand = rand
        #: How often each scanType missing from STATUS_BY_CODE was seen.
        self.unknown_codes: Counter[str] = Counter()

    async def track(self, numbers: Sequence[str]) -> list[TrackingResult]:
        """Query each number in turn (one billCode per call); an unknown number is a ``problem``."""
        return [await self._retrying(lambda n=number: self._track_one(n), "track") for number in numbers]

    async def _track_one(self, number: str) -> TrackingResult:
        """Send one trace query and read its answer."""
        text, answer = await self._post(TRACK_API, track_query(number))
        if not answer.status:
            problem = PROBLEM_BY_CODE.get(answer.status_code)
            if problem is not None:
                return TrackingResult(CODE, number, problem=problem, problem_code=answer.status_code)
            message = f"zto trace query refused: {answer.status_code} {answer.message}".strip()
            raise CarrierResponseError(message, carrier=CODE, code=answer.status_code, raw=text)
        try:
            result = to_result(number, parse_scans(answer.result))
        except (ValueError, TypeError) as err:
            raise CarrierResponseError(f"zto trace answer unreadable: {err}", carrier=CODE, raw=text) from err
        self._count_unknown(result)
        return result

    async def intercept(self, parcel: ParcelRef, reason: str, idempotency_key: str) -> InterceptResult:
        """Ask ZTO to return ``parcel`` to the sender; the idempotency key is the ``requestId`` of every try.

        createIntercept has no free-text reason field, so ``reason`` is not sent; the order id, when
        known, goes as ``thirdBizNo`` (外部业务唯一标识).
        """
        request_id = intercept_request_id(idempotency_key)
        payload = intercept_order(parcel, request_id, self.settings.customer_id)
        log.info("intercept.requested", carrier=CODE, tracking_no=parcel.tracking_no, request_id=request_id)
        return await self._retrying(lambda: self._intercept_once(payload), "intercept")

    async def _intercept_once(self, payload: dict[str, Any]) -> InterceptResult:
        """Send the intercept and read ZTO's verdict; a refusal that is not a platform error is a rejection.

        A refusal must say something (a code or a message): ``status: false`` with neither is an
        answer we cannot read, an unknown outcome retried under the same ``requestId``. ZOP documents
        no query of an intercept's result, so the service follows the parcel's scans instead.
        """
        text, answer = await self._post(INTERCEPT_API, payload)
        if not answer.status:
            if not (answer.status_code or answer.message):
                raise CarrierResponseError("zto intercept refused without a code or message", carrier=CODE, raw=text)
            return InterceptResult(accepted=False, reason=answer.message, raw_code=answer.status_code)
        return InterceptResult(accepted=True, raw_code=answer.status_code, carrier_ref=intercept_ref(answer.result))

    async def _retrying(self, fn: Callable[[], Awaitable[T]], operation: str) -> T:
        """Run ``fn`` under the settings' retry policy, with the injected sleep and jitter."""
        return await call_with_retries(
            fn, self.settings.retry_policy, sleep=self._sleep, rand=self._rand, carrier=CODE, operation=operation
        )

    async def _post(self, api: str, payload: dict[str, Any]) -> tuple[str, Answer]:
        """Post one signed call; return the body and its answer, or raise the typed error of a failed call."""
        request = build_request(self.settings, api, payload)
        try:
            response = await self._http.post(
                request.url, content=request.body, headers=request.headers, timeout=self.settings.timeout_seconds
            )
        except httpx.TimeoutException as err:
            raise CarrierUnavailable(f"zto {api} timed out", carrier=CODE) from err
        except httpx.TransportError as err:
            raise CarrierUnavailable(f"zto {api} unreachable: {type(err).__name__}", carrier=CODE) from err
        except httpx.DecodingError as err:  # a body its Content-Encoding does not decode: unreadable, not retried
            raise CarrierResponseError(f"zto {api}: undecodable answer: {err}", carrier=CODE) from err
        text = response.text
        status = response.status_code
        if status == 429:
            wait = _retry_after(response)
            raise CarrierRateLimited(f"zto {api} answered HTTP 429", carrier=CODE, code="429", retry_after=wait)
        if status >= 500:
            raise CarrierUnavailable(f"zto {api} answered HTTP {status}", carrier=CODE, code=str(status))
        if status in (401, 403):
            raise CarrierAuthError(f"zto {api} answered HTTP {status}", carrier=CODE, code=str(status))
        if status != 200:
            raise CarrierResponseError(f"zto {api} answered HTTP {status}", carrier=CODE, code=str(status), raw=text)
        try:
            answer = Answer.parse(text)
        except ValueError as err:
            raise CarrierResponseError(f"zto {api} answer is not ZOP's: {err}", carrier=CODE, raw=text) from err
        if not answer.status:
            self._raise_for_platform_code(api, answer, text)
        return text, answer

    @staticmethod
    def _raise_for_platform_code(api: str, answer: Answer, text: str) -> None:
        """Raise the typed error of a platform statusCode (S…); business codes are left to the caller."""
        error = ERROR_BY_CODE.get(answer.status_code)
        if error is None:
            return
        message = f"zto {api} refused: {answer.status_code} {answer.message}".strip()
        if error is CarrierResponseError:
            raise CarrierResponseError(message, carrier=CODE, code=answer.status_code, raw=text)
        raise error(message, carrier=CODE, code=answer.status_code)

    def _count_unknown(self, result: TrackingResult) -> None:
        """Count scan types missing from the table; log each one the first time it is seen."""
        for event in result.events:
            if event.raw_code in STATUS_BY_CODE:
                continue
            if not self.unknown_codes[event.raw_code]:
                log.warning("carrier.unknown_code", carrier=CODE, code=event.raw_code)
            self.unknown_codes[event.raw_code] += 1
