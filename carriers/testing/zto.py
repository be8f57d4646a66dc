"""A local ZOP (ZTO open platform) endpoint that checks requests as ZOP does.

``POST /<method>`` (``zto.merchant.waybill.track.query``, ``thirdcenter.createIntercept``): a UTF-8 JSON
body with ``x-appKey`` and ``x-dataDigest`` headers. The server knows one application; it recomputes
Base64(MD5(body bytes as received + appSecret)) with its own code (not the adapter's) and answers a
wrong digest with S211, an unknown key with S210 and a body without ``billCode`` with S208. A checked
request is answered by the handler registered for its method (``fake.on(method, handler)``). An
intercept whose ``requestId`` was seen before is answered as the first time and creates nothing new
(ZOP's 幂等校验 on ``requestId``). Faults: ``auth`` answers S211, ``repeated`` the first answer again.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import md5
from pathlib import Path
from typing import Any

from carriers.testing.server import FakeServer, Reply, Request, load_answer

ANSWERS = Path(__file__).parent / "answers" / "zto"
APP_KEY = "zto-test-app-5e1f3c"
APP_SECRET = "9c4be1d07f2a4e0c8b3d6a1f5e7c2b90"
TRACK = "zto.merchant.waybill.track.query"
INTERCEPT = "thirdcenter.createIntercept"
TRACK_PATH = f"/{TRACK}"
INTERCEPT_PATH = f"/{INTERCEPT}"


def zop_digest(body: bytes, secret: str) -> str:
    """Compute ``x-dataDigest`` the way ZOP verifies it: over the raw request bytes, then the secret."""
    return base64.b64encode(md5(body + secret.encode("utf-8")).digest()).decode("ascii")


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw.decode("utf-8"))


#: A handler for one method: the fake, the request and its parsed body → the answer.
Handler = Callable[["FakeZTO", Seen, dict[str, Any]], Reply]


class FakeZTO(FakeServer):
    """ZOP on 127.0.0.1: check, then answer by method (trace: the recorded answer for the number)."""

    def __init__(
        self,
        tracks: dict[str, str] | None = None,
        fixtures: Path = ANSWERS,
        app_key: str = APP_KEY,
        app_secret: str = APP_SECRET,
        delay: float = 0.0,
    ) -> None:
        super().__init__(delay)
        self.tracks = dict(tracks or {})  # waybill number -> answer name of its trace (unknown: ``track_empty``)
        self.fixtures = fixtures
        self.app_key = app_key
        self.app_secret = app_secret
        self.intercept_reply = "intercept_accepted"  # answer name for a new intercept
        self.script: list[Reply] = []  # answers given in turn to checked requests, before the handlers
        self.created: dict[str, Reply] = {}  # intercepts ZTO created, by requestId
        #: extra seconds before answering, one per request in turn, after the request was processed
        self.late: list[float] = []
        self.handlers: dict[str, Handler] = {TRACK: FakeZTO._track, INTERCEPT: FakeZTO._intercept}

    @property
    def seen(self) -> list[Seen]:
        return [Seen(r.path, r.headers, r.raw) for r in list(self.received)]

    def on(self, method: str, handler: Handler) -> None:
        """Answer checked requests to ``/<method>`` with ``handler`` (replaces a built-in one)."""
        self.handlers[method] = handler

    def recorded(self, name: str, delay: float = 0.0) -> Reply:
        return Reply.from_recorded(load_answer(self.fixtures, name), delay)

    def auth_reply(self, request: Request) -> Reply:
        return self.recorded("error_s211")

    def repeated_reply(self, request: Request) -> Reply:
        try:
            request_id = request.json().get("requestId")
        except (ValueError, AttributeError):
            request_id = None
        return self.created.get(request_id) or self.recorded(self.intercept_reply)

    def answer(self, request: Request) -> Reply:
        reply = self._answer(request)
        if self.late:
            reply = Reply(reply.status, reply.body, reply.headers, reply.delay + self.late.pop(0))
        return reply

    def _answer(self, request: Request) -> Reply:
        handler = self.handlers.get(request.path.lstrip("/"))
        if handler is None:
            return Reply(404, "<html><body><h1>404 Not Found</h1></body></html>", {"Content-Type": "text/html"})
        if not request.headers.get("content-type", "").startswith("application/json"):
            return self.recorded("error_s208")
        if request.headers.get("x-appkey") != self.app_key:
            return self.recorded("error_s210")
        if request.headers.get("x-datadigest") != zop_digest(request.raw, self.app_secret):
            return self.recorded("error_s211")
        try:
            body = request.json()
        except ValueError:
            return self.recorded("error_s208")
        if not isinstance(body, dict) or not body.get("billCode"):
            return self.recorded("error_s208")
        if self.script:
            return self.script.pop(0)
        return handler(self, Seen(request.path, request.headers, request.raw), body)

    def _track(self, seen: Seen, body: dict[str, Any]) -> Reply:
        return self.recorded(self.tracks.get(body["billCode"], "track_empty"))

    def _intercept(self, seen: Seen, body: dict[str, Any]) -> Reply:
        request_id = body.get("requestId")
        if not request_id or body.get("destinationType") not in (1, 2, 3, 4):
            return self.recorded("error_s208")
        if request_id not in self.created:
            self.created[request_id] = self.recorded(self.intercept_reply)
        return self.created[request_id]
