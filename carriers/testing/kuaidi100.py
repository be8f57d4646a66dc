"""A local Kuaidi100 (快递100) that checks requests as Kuaidi100 does, for one parcel or a fleet of them.

``POST /poll/query.do`` (实时快递查询): a form of ``customer``, ``sign`` and ``param``; the customer must
be known and ``sign`` must equal MD5(param + key + customer) in upper-case hex, computed here over the
``param`` string exactly as received. ``POST /poll`` (订阅): ``schema=json`` and a ``param`` holding the
key and ``parameters.callbackurl``.

:class:`FakeKuaidi100` answers recorded answers by number; :class:`Fleet` answers many numbers from a
script of scans and records when each was asked (on the clock it is given), so tests can check cadence,
quotas and Kuaidi100's 48-queries-per-24-hours lock from the carrier's side. :func:`push_body` builds a
signed push callback as Kuaidi100 posts it. Faults: ``auth`` answers returnCode 503 (验证签名失败),
``repeated`` the subscription's 501 (重复订阅).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from carriers.kuaidi100 import Kuaidi100Settings
from carriers.testing.server import FakeServer, Reply, Request, load_answer

ANSWERS = Path(__file__).parent / "answers" / "kuaidi100"
CUSTOMER = "8A2C1F3B9E7D4C6A0B5E3D2F1A9C8B7E"
KEY = "kQ3xR7vT2mW9pL5n"
COMPANY = "zhongtong"
FORM = "application/x-www-form-urlencoded"
QUERY_PATH = "/poll/query.do"
SUBSCRIBE_PATH = "/poll"
CST = timezone(timedelta(hours=8))
#: Companies Kuaidi100 never answers without ``phone`` (api.kuaidi100.com/document/5f0ffb5ebc8da837cbd8aefc).
PHONE_REQUIRED = frozenset({"shunfeng", "shunfengkuaiyun"})

#: A scan: when, Kuaidi100's statusCode, and the text.
Scan = tuple[datetime, str, str]
Script = Callable[[str, datetime], list[Scan] | None]


def md5_upper(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def make_settings(base_url: str = "https://poll.kuaidi100.com", **changes: Any) -> Kuaidi100Settings:
    """Return settings for the account the fakes know (company ``zhongtong``)."""
    values: dict[str, Any] = {"customer": CUSTOMER, "key": KEY, "company": COMPANY, "base_url": base_url}
    return Kuaidi100Settings(**(values | changes))


def quiet_in_transit(picked_up: datetime) -> Script:
    """Every number: picked up at ``picked_up``, then nothing new, ever."""
    return lambda _number, _now: [(picked_up, "103", "【杭州市】快递员已揽收")]


def body_for(number: str, scans: list[Scan], company: str = COMPANY) -> dict[str, Any]:
    """Return a successful query answer (newest scan first, resultv2=4 fields)."""
    data = [
        {
            "time": f"{t.astimezone(CST):%Y-%m-%d %H:%M:%S}",
            "ftime": f"{t.astimezone(CST):%Y-%m-%d %H:%M:%S}",
            "context": text,
            "status": "在途",
            "statusCode": code,
            "areaName": "浙江,杭州市",
            "location": "杭州转运中心",
        }
        for t, code, text in sorted(scans, reverse=True)
    ]
    state = "3" if any(code == "3" for _, code, _ in scans) else "0"
    return {"message": "ok", "nu": number, "ischeck": "1" if state == "3" else "0", "condition": "F00",
            "com": company, "status": "200", "state": state, "data": data}  # fmt: skip


def push_body(last_result: dict[str, Any] | str, salt: str, status: str = "polling") -> bytes:
    """Build a push callback as Kuaidi100 posts it: form ``param`` and ``sign = MD5(param + salt)`` upper hex.

    ``last_result`` is a query answer (e.g. :func:`body_for`) or an already serialized ``param``.
    """
    if isinstance(last_result, str):
        param = last_result
    else:
        payload = {"status": status, "billstatus": "check" if last_result.get("ischeck") == "1" else "update",
                   "message": "", "autoCheck": "0", "comOld": "", "comNew": "", "lastResult": last_result}  # fmt: skip
        param = json.dumps(payload, ensure_ascii=False)
    return urlencode({"param": param, "sign": md5_upper(param + salt)}).encode("ascii")


class _Kuaidi100Base(FakeServer):
    """What both fakes share: the account, the signature check, the fault answers."""

    def __init__(
        self, fixtures: Path = ANSWERS, delay: float = 0.0, nodelay: bool = True, keep_alive: bool = False
    ) -> None:
        super().__init__(delay, nodelay, keep_alive)
        self.fixtures = fixtures
        self.customer = CUSTOMER
        self.key = KEY

    def recorded(self, name: str) -> Reply:
        return Reply.from_recorded(load_answer(self.fixtures, name))

    def signed(self, form: dict[str, str]) -> bool:
        return form.get("customer") == self.customer and form.get("sign") == md5_upper(
            form.get("param", "") + self.key + self.customer
        )

    def auth_reply(self, request: Request) -> Reply:
        return self.recorded("error_bad_sign")

    def repeated_reply(self, request: Request) -> Reply:
        return self.recorded("subscribe_duplicate")


class FakeKuaidi100(_Kuaidi100Base):
    """Kuaidi100's query and subscription endpoints, answered from recorded answers; ``force`` overrides them."""

    def __init__(
        self, tracks: dict[str, str] | None = None, force: Reply | None = None, fixtures: Path = ANSWERS
    ) -> None:
        super().__init__(fixtures)
        self.tracks = dict(tracks or {})  # tracking number -> answer name
        self.force = force
        self.script: list[Reply] = []  # answered in turn to signed queries, before force and the answers
        self.subscribed: list[dict[str, Any]] = []

    @property
    def forms(self) -> list[tuple[str, dict[str, str], dict[str, str]]]:
        """Every request received as (path, headers, form)."""
        return [(r.path, r.headers, r.form()) for r in list(self.received)]

    def answer(self, request: Request) -> Reply:
        if request.path == QUERY_PATH:
            return self.query(request)
        if request.path == SUBSCRIBE_PATH:
            return self.subscribe(request)
        return Reply(404, "404 Not Found", {"Content-Type": "text/plain"})

    def query(self, request: Request) -> Reply:
        form = request.form()
        if not request.headers.get("content-type", "").startswith(FORM) or form.get("customer") != self.customer:
            return self.recorded("error_no_company")
        if not self.signed(form):
            return self.recorded("error_bad_sign")
        query = json.loads(form["param"])
        if query.get("com") in PHONE_REQUIRED and not query.get("phone"):
            return self.recorded("error_phone_check")  # SF checks a phone against the number
        if self.script:
            return self.script.pop(0)
        if self.force is not None:
            return self.force
        name = self.tracks.get(query.get("num", ""))
        if name is None or load_answer(self.fixtures, name)["body"]["com"] != query.get("com"):
            return self.recorded("error_no_result")
        return self.recorded(name)

    def subscribe(self, request: Request) -> Reply:
        form = request.form()
        if not request.headers.get("content-type", "").startswith(FORM) or form.get("schema") != "json":
            return self.recorded("subscribe_server_error")
        param = json.loads(form.get("param", "{}"))
        if param.get("key") != self.key:
            return self.recorded("subscribe_bad_key")
        if self.force is not None:
            return self.force
        if any(s["number"] == param.get("number") for s in self.subscribed):
            return self.recorded("subscribe_duplicate")
        self.subscribed.append(param)
        return self.recorded("subscribe_ok")


class Fleet(_Kuaidi100Base):
    """The query endpoint for many numbers. ``script(number, now)`` gives a number's scans, or None if unknown."""

    def __init__(
        self, script: Script, clock: Any = None, delay: float = 0.0, nodelay: bool = True, fixtures: Path = ANSWERS
    ) -> None:
        super().__init__(fixtures, delay, nodelay, keep_alive=True)
        self.script = script
        self.clock = clock  # None: `asked` on the real clock
        self.status = 200  # set to 503 (or 429) to make the carrier fail
        self.asked: dict[str, list[datetime]] = defaultdict(list)
        self.requests = 0
        self.bad_signatures = 0

    def most_in_24h(self) -> int:
        """Return the most queries of any one number inside any 24-hour window."""
        worst = 0
        for times in list(self.asked.values()):
            times = sorted(times)
            start = 0
            for end, moment in enumerate(times):
                while moment - times[start] >= timedelta(hours=24):
                    start += 1
                worst = max(worst, end - start + 1)
        return worst

    def answer(self, request: Request) -> Reply:
        if request.path != QUERY_PATH:
            return Reply(404, "not found", {"Content-Type": "text/plain"})
        form = request.form()
        if not self.signed(form):
            self.bad_signatures += 1
            return self.recorded("error_bad_sign")
        if self.status != 200:
            return Reply(self.status, "<html><body>busy</body></html>", {"Content-Type": "text/html"})
        query = json.loads(form["param"])
        number = query.get("num", "")
        now = self.clock.now() if self.clock is not None else datetime.now(CST)
        with self._lock:
            self.asked[number].append(now)
            self.requests += 1
        scans = self.script(number, now)
        if scans is None:
            return self.recorded("error_no_result")
        return Reply(200, body_for(number, [s for s in scans if s[0] <= now], query.get("com") or COMPANY))
