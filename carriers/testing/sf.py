"""A local 丰桥 (SF Express open platform) endpoint that checks the form and ``msgDigest`` as SF does.

The server has its own Java ``URLEncoder`` (written out character by character, not shared with the
adapter), recomputes ``msgDigest`` and answers a wrong one with A1006, an unknown ``partnerID`` with
A1004 and a missing field with A1001. A checked request is answered by the handler registered for its
``serviceCode`` (``fake.on(code, handler)``); the built-in ones answer the recorded answer named in
``replies`` (route query, intercept). ``script`` queues answers given, one per checked request, before
the handlers. Faults (see :mod:`carriers.testing.server`): ``auth`` answers A1006, ``repeated`` A1007.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carriers.testing.server import FakeServer, Reply, Request, load_answer

ANSWERS = Path(__file__).parent / "answers" / "sf"
PARTNER = "QIAO_TEST_0001"
CHECK_WORD = "Yk3vQ9pLm2ZxR7wT4nB8cD1fG6hJ0sAe"
PATH = "/std/service"
FIELDS = ("partnerID", "requestID", "serviceCode", "timestamp", "msgData", "msgDigest")
ROUTES = "EXP_RECE_SEARCH_ROUTES"
INTERCEPT = "EXP_RECE_WANTED_INTERCEPT"
FORM = "application/x-www-form-urlencoded"
#: A warehouse to return intercepted parcels to: ``[carriers.sf] return_address``, required while intercepts are on.
RETURN_ADDRESS = {"province": "浙江省", "city": "杭州市", "county": "余杭区", "address": "仓前街道 1 号 退货仓",
                  "contact": "退货组", "phone": "0571-88886666"}  # fmt: skip
#: The same as a TOML table, for configuration files written by tests.
RETURN_ADDRESS_TOML = "[carriers.sf.return_address]\n" + "".join(f'{k} = "{v}"\n' for k, v in RETURN_ADDRESS.items())

#: An answer queued in ``script``: status, raw body, extra headers, seconds to wait before answering.
Scripted = Reply


def java_encode(text: str) -> str:
    """Java ``URLEncoder.encode(text, "UTF-8")``: keep a-z A-Z 0-9 . - * _, space → +, else %XX of UTF-8."""
    out = []
    for char in text:
        if char.isascii() and (char.isalnum() or char in ".-*_"):
            out.append(char)
        elif char == " ":
            out.append("+")
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def sf_digest(msg_data: str, timestamp: str, check_word: str) -> str:
    """Compute ``msgDigest`` the way 丰桥 verifies it."""
    return base64.b64encode(hashlib.md5(java_encode(msg_data + timestamp + check_word).encode()).digest()).decode()


def route_answer(routes_by_number: dict[str, list[dict[str, Any]]]) -> Reply:
    """Build a successful route answer (A1000) for the given ``mailNo -> routes`` in SF's documented shape."""
    data = {"success": True, "errorCode": "S0000", "errorMsg": None,
            "msgData": {"routeResps": [{"mailNo": n, "routes": r} for n, r in routes_by_number.items()]}}  # fmt: skip
    body = {"apiErrorMsg": "", "apiResponseID": "00016B0D59BA503FDF3C3333355F863F", "apiResultCode": "A1000",
            "apiResultData": json.dumps(data, ensure_ascii=False)}  # fmt: skip
    return Reply(200, body)


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    path: str
    content_type: str
    form: dict[str, str]

    def msg(self) -> Any:
        return json.loads(self.form["msgData"])


#: A handler for one serviceCode: the fake and the checked request → the answer.
Handler = Callable[["FakeSF", Seen], Reply]


class FakeSF(FakeServer):
    """丰桥 on 127.0.0.1: check the form and signature, then answer by ``serviceCode``."""

    def __init__(
        self,
        check_word: str = CHECK_WORD,
        partner: str = PARTNER,
        fixtures: Path = ANSWERS,
        delay: float = 0.0,
        nodelay: bool = True,
    ) -> None:
        super().__init__(delay, nodelay)
        self.check_word = check_word
        self.partner = partner
        self.fixtures = fixtures  # where named answers are read: the kit's defaults, or tests/fixtures/sf
        self.replies = {ROUTES: "route_delivered", INTERCEPT: "intercept_accepted"}
        self.handlers: dict[str, Handler] = {ROUTES: FakeSF._named, INTERCEPT: FakeSF._named}
        self.force: tuple[int, str] | None = None  # (status, raw body) for every checked request
        self.dedupe = False  # answer A1007 to a requestID seen before, as a deduplicating platform would
        self.script: list[Reply] = []

    @property
    def url(self) -> str:
        """The full endpoint URL, as ``base_url`` in SF's settings takes it."""
        return self.base_url + PATH

    @property
    def seen(self) -> list[Seen]:
        """Every request received, as forms."""
        return [Seen(r.path, r.headers.get("content-type", ""), r.form()) for r in list(self.received)]

    def on(self, service_code: str, handler: Handler) -> None:
        """Answer checked requests for ``service_code`` with ``handler`` (replaces a built-in one)."""
        self.handlers[service_code] = handler

    def fixture(self, name: str) -> tuple[int, str]:
        """Return (status, raw body) of the recorded answer ``name``."""
        data = load_answer(self.fixtures, name)
        return data["status"], json.dumps(data["body"], ensure_ascii=False)

    def reply(self, name: str) -> Reply:
        return Reply(*self.fixture(name))

    def _named(self, seen: Seen) -> Reply:
        return self.reply(self.replies[seen.form["serviceCode"]])

    def auth_reply(self, request: Request) -> Reply:
        return self.reply("error_a1006")

    def repeated_reply(self, request: Request) -> Reply:
        return self.reply("intercept_duplicate")

    def answer(self, request: Request) -> Reply:
        if request.path != PATH:
            return Reply(404, "<html><body>404 Not Found</body></html>", {"Content-Type": "text/html"})
        form = request.form()
        seen = Seen(request.path, request.headers.get("content-type", ""), form)
        if not seen.content_type.startswith(FORM) or any(not form.get(f) for f in FIELDS):
            return self.reply("error_a1001")
        if form["partnerID"] != self.partner:
            return self.reply("error_a1004")
        if form["msgDigest"] != sf_digest(form["msgData"], form["timestamp"], self.check_word):
            return self.reply("error_a1006")
        if self.script:
            return self.script.pop(0)
        if self.dedupe:
            earlier = [r for r in list(self.received) if r is not request]
            if any(r.form().get("requestID") == form["requestID"] for r in earlier):
                return self.reply("intercept_duplicate")
        if self.force is not None:
            return Reply(*self.force)
        handler = self.handlers.get(form["serviceCode"])
        if handler is None:
            return self.reply("error_a1004")  # no permission for that service
        return handler(self, seen)
