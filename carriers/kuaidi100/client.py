"""Kuaidi100 transport: URLs, signing, HTTP, and reading the error out of the body.

Kuaidi100 answers HTTP 200 with the error in the body (``{"result": false, "returnCode": ...}``),
so the body decides. Sources: 实时快递查询 api.kuaidi100.com/document/5f0ffb5ebc8da837cbd8aefc
(``sign = MD5(param + key + customer)``, upper-case hex); FAQ pages /document/chaxunwujieguo
(500 查询无结果), /document/yanzhengqianmingshibai (503 验证签名失败), /document/chaxunzhaobudaogongsi
(400: incomplete submission, no quota left or a wrong customer), /document/cha-xun-bao-cuo1 (408:
the carrier rejected the phone number), /document/suodanhouguo (a number queried more than 48 times
in 24 h is locked for 24 h), /document/timeout (the push answer); the subscription reply codes are
from Kuaidi100's own 订阅推送 article (cloud.tencent.com/developer/article/1828132).

Each query carries the settings' ``timeout_seconds``; a timeout, HTTP 5xx or 429 and returnCode
501/502 are retried with :mod:`carriers.retry`. A query only reads, so a retry is harmless, but
every try counts towards Kuaidi100's 48 queries of a number a day: keep ``retries`` small.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import structlog

from carriers.errors import CarrierAuthError, CarrierRateLimited, CarrierResponseError, CarrierUnavailable
from carriers.kuaidi100.mapping import push_results, query_events, split_ref
from carriers.kuaidi100.schema import Answer
from carriers.kuaidi100.settings import Kuaidi100Settings
from carriers.model import Limits, TrackingEvent, TrackingResult
from carriers.retry import Rand, Sleep, call_with_retries

CODE = "kuaidi100"
QUERY_PATH = "/poll/query.do"
SUBSCRIBE_PATH = "/poll"
#: Advanced states and a statusCode on every event (the 4 of the resultv2 parameter).
RESULTV2 = "4"
#: returnCode of the query that is about one number: data on its result, not an error.
QUERY_PROBLEMS = {"500": "not_found", "408": "rejected"}
QUERY_AUTH = frozenset({"400", "503", "601"})
QUERY_UNAVAILABLE = frozenset({"501", "502"})
#: returnCode of a subscription: 501 is "already subscribed", 700–702 refuse the number.
SUBSCRIBE_ACCEPTED = frozenset({"200", "501"})
SUBSCRIBE_REFUSED = frozenset({"700", "701", "702"})
SUBSCRIBE_AUTH = frozenset({"600", "601"})
SUBSCRIBE_UNAVAILABLE = frozenset({"500"})

log = structlog.get_logger("carriers.kuaidi100")


def md5_upper(text: str) -> str:
    """Return the 32-character upper-case hex MD5 of ``text`` (UTF-8)."""
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def build_query(settings: Kuaidi100Settings, company: str, number: str, phone: str | None = None) -> dict[str, str]:
    """Return the form of one 实时快递查询, signed over the exact ``param`` string sent."""
    param: dict[str, str] = {"com": company, "num": number}
    if phone:
        param["phone"] = phone
    param |= {"resultv2": RESULTV2, "show": "0", "order": "desc"}
    text = json.dumps(param, ensure_ascii=False, separators=(",", ":"))
    return {"customer": settings.customer, "sign": md5_upper(text + settings.key + settings.customer), "param": text}


def build_subscribe(settings: Kuaidi100Settings, company: str, number: str, phone: str | None = None) -> dict[str, str]:
    """Return the form of one subscription (订阅): Kuaidi100 pushes every change to ``callback_url``."""
    if settings.callback_url is None:
        raise ValueError("callback_url: required to subscribe to Kuaidi100 pushes")
    parameters = {"callbackurl": callback_with_token(settings.callback_url, settings.push_token), "resultv2": RESULTV2}
    if settings.salt is not None:
        parameters["salt"] = settings.salt
    if phone:
        parameters["phone"] = phone
    param = {"company": company, "number": number, "key": settings.key, "parameters": parameters}
    return {"schema": "json", "param": json.dumps(param, ensure_ascii=False, separators=(",", ":"))}


def callback_with_token(url: str, token: str | None) -> str:
    """Return the callback URL Kuaidi100 is given: with ``token=<push token>`` added to its query, if set."""
    if token is None:
        return url
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode({"token": token})) if q)
    return urlunsplit(parts._replace(query=query))


def push_ack(ok: bool = True, message: str = "") -> dict[str, Any]:
    """Return the body to answer a push with, as documented: success, or a failure that makes Kuaidi100 retry."""
    if ok:
        return {"result": True, "returnCode": "200", "message": "成功"}
    return {"result": False, "returnCode": "500", "message": message or "失败"}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


class Kuaidi100Carrier:
    """Kuaidi100 as the service sees it: one number per query, pushes for subscribed numbers."""

    code = CODE

    def __init__(
        self,
        settings: Kuaidi100Settings,
        http: httpx.AsyncClient,
        *,
        sleep: Sleep = asyncio.sleep,
        rand: Rand = random.random,
    ) -> None:
        """Use ``http`` for transport and ``sleep``/``rand`` for the retry backoff."""
        self._settings = settings
        self._http = http
        self._sleep = sleep
        self._rand = rand
        # No documented QPS; 48 queries of one number in 24 h lock it (锁单), so at most one per 30 min.
        self.limits = Limits(
            batch_size=1,
            requests_per_second=settings.requests_per_second,
            max_queries_per_number_per_day=48,
            extra={"min_seconds_between_queries_of_a_number": 1800},
        )
        #: How often each code missing from the table was seen (each is logged once).
        self.unknown_codes: Counter[str] = Counter()

    async def track(self, numbers: Sequence[str]) -> list[TrackingResult]:
        """Query each number in turn; an unknown number is a ``problem`` on its result."""
        return [await self._track_one(number) for number in numbers]

    async def _track_one(self, ref: str) -> TrackingResult:
        """Query one number, retrying a failed call under the settings' policy."""
        return await call_with_retries(
            lambda: self._query(ref),
            self._settings.retry_policy,
            sleep=self._sleep,
            rand=self._rand,
            carrier=CODE,
            operation="track",
        )

    async def _query(self, ref: str) -> TrackingResult:
        """Send one 实时快递查询 and read its answer."""
        company, number = split_ref(ref, self._settings.company)
        phone = self._settings.phone_for(company)
        body = await self._post(QUERY_PATH, build_query(self._settings, company, number, phone))
        if "returnCode" not in body and body.get("result") is not False:
            events = query_events(ref, body)
            self._note_unknown(events)
            return TrackingResult(CODE, ref, events)
        answer = Answer.read(body, body)
        problem = QUERY_PROBLEMS.get(answer.return_code)
        if problem is not None:
            return TrackingResult(CODE, ref, problem=problem, problem_code=answer.return_code)
        raise self._error(answer, body, QUERY_AUTH, QUERY_UNAVAILABLE)

    async def subscribe(self, ref: str, phone: str | None = None) -> Answer:
        """Subscribe a number to pushes; a refused number (700–702) is returned, not raised."""
        company, number = split_ref(ref, self._settings.company)
        phone = phone or self._settings.phone_for(company)
        body = await self._post(SUBSCRIBE_PATH, build_subscribe(self._settings, company, number, phone))
        answer = Answer.read(body, body)
        if answer.return_code in SUBSCRIBE_ACCEPTED or answer.return_code in SUBSCRIBE_REFUSED:
            return answer
        raise self._error(answer, body, SUBSCRIBE_AUTH, SUBSCRIBE_UNAVAILABLE)

    def push_ack(self, ok: bool = True, message: str = "") -> dict[str, Any]:
        """Answer a push callback the way Kuaidi100 expects (see :func:`push_ack`)."""
        return push_ack(ok, message)

    @property
    def push_signed(self) -> bool:
        """Tell whether :meth:`parse_push` checks Kuaidi100's signature (a salt is set)."""
        return self._settings.salt is not None

    @property
    def push_token(self) -> str | None:
        """Return the secret the push route must find as ``?token=`` in the callback URL, if set."""
        return self._settings.push_token

    def parse_push(self, body: bytes, headers: Mapping[str, str]) -> list[TrackingResult]:
        """Read a push callback (form fields ``param`` and ``sign``), checking the signature when a salt is set.

        Without a salt the caller must have checked :attr:`push_token`; with neither, every push is refused.

        Raises:
            CarrierAuthError: pushes are off (no salt, no token), or the signature is missing or wrong.
            CarrierResponseError: the body is not a readable push.
        """
        if self._settings.salt is None and self._settings.push_token is None:
            raise CarrierAuthError("kuaidi100: pushes are off (no salt or push token)", carrier=CODE, code="off")
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError as err:
            raise CarrierResponseError("kuaidi100: push body is not UTF-8", carrier=CODE, raw=body) from err
        params, signs = fields.get("param", []), fields.get("sign", [])
        if len(params) != 1 or len(signs) > 1:
            raise CarrierResponseError("kuaidi100: push needs exactly one param", carrier=CODE, raw=body)
        param = params[0]
        if self._settings.salt is not None:
            expected = md5_upper(param + self._settings.salt)
            if not signs or not hmac.compare_digest(signs[0].upper().encode(), expected.encode()):
                raise CarrierAuthError("kuaidi100: push signature does not match", carrier=CODE, code="sign")
        try:
            payload = json.loads(param)
        except (ValueError, RecursionError) as err:
            raise CarrierResponseError("kuaidi100: push param is not JSON", carrier=CODE, raw=body) from err
        results = push_results(payload, self._settings.company)
        for result in results:
            self._note_unknown(result.events)
        return results

    async def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        """POST a form and return the JSON object answered, translating transport failures."""
        url = self._settings.base_url + path
        try:
            response = await self._http.post(url, data=form, timeout=self._settings.timeout_seconds)
        except httpx.TransportError as err:
            raise CarrierUnavailable(f"kuaidi100: {path}: {type(err).__name__}: {err}", carrier=CODE) from err
        except httpx.DecodingError as err:  # a body its Content-Encoding does not decode: unreadable, not retried
            raise CarrierResponseError(f"kuaidi100: {path}: undecodable answer: {err}", carrier=CODE) from err
        status = response.status_code
        if status == 429:
            wait = _retry_after(response)
            raise CarrierRateLimited(f"kuaidi100: {path}: HTTP 429", carrier=CODE, code="429", retry_after=wait)
        if status >= 500:
            raise CarrierUnavailable(f"kuaidi100: {path}: HTTP {status}", carrier=CODE, code=str(status))
        if status in (401, 403):
            raise CarrierAuthError(f"kuaidi100: {path}: HTTP {status}", carrier=CODE, code=str(status))
        if status != 200:
            raise CarrierResponseError(f"kuaidi100: {path}: HTTP {status}", carrier=CODE, raw=response.text)
        try:
            body = response.json()
        except (ValueError, RecursionError) as err:
            raise CarrierResponseError(f"kuaidi100: {path}: not JSON", carrier=CODE, raw=response.text) from err
        if not isinstance(body, dict):
            raise CarrierResponseError(f"kuaidi100: {path}: not a JSON object", carrier=CODE, raw=body)
        return body

    @staticmethod
    def _error(answer: Answer, body: object, auth: frozenset[str], unavailable: frozenset[str]) -> Exception:
        message = f"kuaidi100: returnCode {answer.return_code}: {answer.message}"
        if answer.return_code in auth:
            return CarrierAuthError(message, carrier=CODE, code=answer.return_code)
        if answer.return_code in unavailable:
            return CarrierUnavailable(message, carrier=CODE, code=answer.return_code)
        return CarrierResponseError(message, carrier=CODE, code=answer.return_code, raw=body)

    def _note_unknown(self, events: Sequence[TrackingEvent]) -> None:
        """Count codes missing from the table; log each the first time it is seen."""
        for event in events:
            if event.status is None:
                self.unknown_codes[event.raw_code] += 1
                if self.unknown_codes[event.raw_code] == 1:
                    log.warning("carrier.unknown_code", carrier=CODE, code=event.raw_code)
