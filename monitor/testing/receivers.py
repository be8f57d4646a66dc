"""Fake alert receivers on the kit's server: DingTalk, WeCom, Feishu, Slack and the generic webhook.

Each checks what the provider checks (token or key, the signature where the channel signs, the
message's shape against a recorded request) and answers the provider's documented bodies; what it
found wrong with a request goes to ``problems``. ``force`` names a recorded answer given once a
request passed the checks (e.g. ``response_rate_limited``). The fault modes of
:class:`carriers.testing.server.FakeServer` work here too; ``auth`` answers the provider's
bad-token (or bad-signature) body. Time for the signature windows comes from the clock passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from carriers.testing.server import FakeServer, Reply, Request, load_answer
from monitor.alerts.channels.wecom import MARKDOWN_MAX_BYTES, TEXT_MAX_BYTES

ANSWERS = Path(__file__).parent / "answers"
TEXT = {"Content-Type": "text/plain; charset=utf-8"}


class Clock(Protocol):
    def now(self) -> datetime: ...


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def shape_problems(example: Any, actual: Any, optional: frozenset[str] = frozenset(), path: str = "$") -> list[str]:
    """Compare ``actual`` with a recorded example: same keys (bar ``optional`` ones), same JSON types."""
    if isinstance(example, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        problems = [f"{path}.{k}: missing" for k in example if k not in actual and k not in optional]
        problems += [f"{path}.{k}: not in the provider's format" for k in actual if k not in example]
        for key in example.keys() & actual.keys():
            problems += shape_problems(example[key], actual[key], optional, f"{path}.{key}")
        return problems
    if isinstance(example, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {actual!r}"]
        return (
            [p for item in actual for p in shape_problems(example[0], item, optional, f"{path}[]")] if example else []
        )
    if type(example) is not type(actual):
        return [f"{path}: expected {type(example).__name__}, got {type(actual).__name__}"]
    return []


class Receiver(FakeServer):
    """A provider's webhook endpoint: recorded answers from ``fixtures/<provider>``, ``problems`` found."""

    provider = ""
    bad_token = "response_ok"  # the answer to a wrong token (fault ``auth`` too)

    def __init__(self, force: str | None = None, fixtures: Path = ANSWERS, clock: Clock | None = None) -> None:
        super().__init__()
        self.force = force
        self.fixtures = fixtures
        self.clock: Clock = clock or _SystemClock()
        self.problems: list[str] = []

    def recorded(self, name: str) -> dict[str, Any]:
        return load_answer(self.fixtures / self.provider, name)

    def reply(self, name: str) -> Reply:
        """Answer with a recorded reply."""
        return Reply.from_recorded(self.recorded(name))

    def checked(self, name: str = "response_ok") -> Reply:
        """Answer a request that passed every check: the forced reply, or ``name``."""
        return self.reply(self.force or name)

    def json_body(self, request: Request) -> Any:
        """Return the JSON body, noting in ``problems`` when it is not JSON or not sent as JSON."""
        if not request.headers.get("content-type", "").startswith("application/json"):
            self.problems.append(f"Content-Type {request.headers.get('content-type')!r}")
        body = request.body
        if body is None:
            self.problems.append(f"body is not JSON: {request.raw[:80]!r}")
        return body

    def auth_reply(self, request: Request) -> Reply:
        return self.reply(self.bad_token)

    def epoch_seconds(self) -> int:
        return int(self.clock.now().timestamp())


class FakeDingTalk(Receiver):
    """The custom robot endpoint: access_token, then 加签 when a secret is set, then the message shape."""

    provider = "dingtalk"
    bad_token = "response_token_not_exist"
    path = "/robot/send"

    def __init__(self, token: str, secret: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.token = token
        self.secret = secret

    @property
    def url(self) -> str:
        return self.url_for(f"{self.path}?access_token={self.token}")

    @property
    def now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def answer(self, request: Request) -> Reply:
        if request.path != self.path:
            return Reply(404, "404 page not found", TEXT)
        body = self.json_body(request)
        if request.query.get("access_token") != self.token:
            return self.reply("response_token_not_exist")
        if self.secret is not None and not self.signed(request.query):
            return self.reply("response_sign_not_match")
        self.problems += shape_problems(self.recorded("request_markdown")["body"], body)
        return self.checked()

    def signed(self, query: dict[str, str]) -> bool:
        """Recompute the signature from our secret and the timestamp received, as DingTalk does."""
        timestamp = query.get("timestamp", "")
        if not timestamp.isdigit() or abs(int(timestamp) - self.now_ms) > 3_600_000:
            return False
        assert self.secret is not None
        digest = hmac.new(self.secret.encode(), f"{timestamp}\n{self.secret}".encode(), hashlib.sha256).digest()
        return hmac.compare_digest(query.get("sign", ""), base64.b64encode(digest).decode())


class FakeWeCom(Receiver):
    """The group robot endpoint: the key (WeCom robots do not sign), then the message shape for its msgtype."""

    provider = "wecom"
    bad_token = "response_invalid_key"
    path = "/cgi-bin/webhook/send"
    mentions: ClassVar[frozenset[str]] = frozenset({"mentioned_list", "mentioned_mobile_list"})

    def __init__(self, key: str, **options: Any) -> None:
        super().__init__(**options)
        self.key = key

    @property
    def url(self) -> str:
        return self.url_for(f"{self.path}?key={self.key}")

    def answer(self, request: Request) -> Reply:
        body = self.json_body(request)
        if request.path != self.path or request.query.get("key") != self.key:
            return self.reply("response_invalid_key")
        msgtype = body.get("msgtype") if isinstance(body, dict) else None
        if msgtype not in ("markdown", "text"):
            self.problems.append(f"msgtype {msgtype!r}")
        else:
            self.problems += shape_problems(self.recorded(f"request_{msgtype}")["body"], body, optional=self.mentions)
            limit = MARKDOWN_MAX_BYTES if msgtype == "markdown" else TEXT_MAX_BYTES
            if len(body[msgtype]["content"].encode()) > limit:
                self.problems.append(f"{msgtype} content over {limit} bytes")
        return self.checked()


class FakeFeishu(Receiver):
    """The custom bot endpoint: hook token, then 签名校验 when a secret is set, then the message shape."""

    provider = "feishu"
    bad_token = "response_token_invalid"
    examples: ClassVar[dict[str, str]] = {"interactive": "request_card", "text": "request_text"}

    def __init__(self, token: str, secret: str | None = None, ok: str = "response_ok", **options: Any) -> None:
        super().__init__(**options)
        self.token = token
        self.secret = secret
        self.ok = ok

    @property
    def path(self) -> str:
        return f"/open-apis/bot/v2/hook/{self.token}"

    @property
    def url(self) -> str:
        return self.url_for(self.path)

    @property
    def now_s(self) -> int:
        return self.epoch_seconds()

    def answer(self, request: Request) -> Reply:
        received = self.json_body(request)
        if request.path != self.path:
            return self.reply("response_token_invalid")
        body = dict(received) if isinstance(received, dict) else {}
        timestamp, sign = body.pop("timestamp", None), body.pop("sign", None)
        if self.secret is not None:
            example = {k: self.recorded("request_signed")["body"][k] for k in ("timestamp", "sign")}
            self.problems += shape_problems(example, {"timestamp": timestamp, "sign": sign})
            if not self.signed(timestamp, sign):
                return self.reply("response_sign_fail")
        example_name = self.examples.get(str(body.get("msg_type")))
        if example_name is None:
            return self.reply("response_bad_request")
        self.problems += shape_problems(self.recorded(example_name)["body"], body)
        return self.checked(self.ok)

    def signed(self, timestamp: Any, sign: Any) -> bool:
        """Recompute the signature from our secret and the timestamp received, as Feishu does."""
        if not isinstance(timestamp, str) or not timestamp.isdigit() or abs(int(timestamp) - self.now_s) > 3600:
            return False
        assert self.secret is not None
        digest = hmac.new(f"{timestamp}\n{self.secret}".encode(), b"", hashlib.sha256).digest()
        return isinstance(sign, str) and hmac.compare_digest(sign, base64.b64encode(digest).decode())


class FakeSlack(Receiver):
    """An incoming webhook: the hook's path, then a JSON body with text and header + section blocks."""

    provider = "slack"
    bad_token = "response_no_service"

    def __init__(self, hook: str, **options: Any) -> None:
        super().__init__(**options)
        self.hook = hook  # the path, /services/T.../B.../secret

    @property
    def url(self) -> str:
        return self.url_for(self.hook)

    def answer(self, request: Request) -> Reply:
        if request.path != self.hook:
            return self.reply("response_no_service")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return self.reply("response_invalid_payload")
        body = request.json()
        # the example's blocks list is compared item by item with its first block, the header: only it has emoji
        self.problems += shape_problems(self.recorded("request_blocks")["body"], body, frozenset({"emoji"}))
        header, section = body["blocks"]
        if (header["type"], section["type"], section["text"]["type"]) != ("header", "section", "mrkdwn"):
            self.problems.append(f"blocks: {[b['type'] for b in body['blocks']]}")
        if len(header["text"]["text"]) > 150 or len(section["text"]["text"]) > 3000:
            self.problems.append("a block is over Slack's length limit")
        return self.checked()


class FakeWebhook(Receiver):
    """A customer's endpoint: checks timestamp freshness and the HMAC over the raw bytes as docs/webhook.md says."""

    provider = "webhook"
    bad_token = "response_bad_signature"
    tolerance = 300  # seconds a receiver accepts between its clock and the timestamp

    def __init__(self, secret: str, path: str = "/hooks/parcel-monitor", **options: Any) -> None:
        super().__init__(**options)
        self.secret = secret
        self.path = path

    @property
    def url(self) -> str:
        return self.url_for(self.path)

    @property
    def now(self) -> int:
        return self.epoch_seconds()

    def answer(self, request: Request) -> Reply:
        if request.path != self.path:
            return self.reply("response_not_found")
        if not self.verified(request):
            return self.reply("response_bad_signature")
        self.problems += shape_problems(self.recorded("request_example")["body"], request.json())
        return self.checked()

    def verified(self, request: Request) -> bool:
        """Verify as the snippet in docs/webhook.md does."""
        timestamp = request.headers.get("x-parcel-monitor-timestamp", "")
        if not timestamp.isdigit() or abs(self.now - int(timestamp)) > self.tolerance:
            return False
        expected = hmac.new(self.secret.encode(), timestamp.encode() + b"." + request.raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(request.headers.get("x-parcel-monitor-signature", ""), f"sha256={expected}")

    def documents(self) -> list[dict[str, Any]]:
        """Every verified document received (faulted requests included when they were signed)."""
        return [r.json() for r in list(self.received) if r.path == self.path and self.verified(r)]


class FakeTicketSink(FakeWebhook):
    """A team's own ticket system taking ticket events (docs/webhook.md): same signature check, event keys checked."""

    EVENT_KEYS = frozenset({"version", "type", "event_id", "kind", "at", "actor", "from", "to", "body", "ticket"})
    TICKET_KEYS = frozenset({"id", "rule", "title", "state", "assignee", "team", "shop", "carrier", "tracking_no",
                             "order_id", "stake", "due_at", "outcome", "note", "created_at", "closed_at",
                             "close_reason", "reopened_count"})  # fmt: skip

    def answer(self, request: Request) -> Reply:
        if request.path != self.path:
            return self.reply("response_not_found")
        if not self.verified(request):
            return self.reply("response_bad_signature")
        body = request.json()
        if set(body) != self.EVENT_KEYS or set(body.get("ticket") or {}) != self.TICKET_KEYS:
            self.problems.append(f"keys {sorted(body)} / ticket {sorted(body.get('ticket') or {})}")
        if not isinstance(body.get("event_id"), int):
            self.problems.append(f"event_id {body.get('event_id')!r} is not a number")
        return self.checked()

    def event_ids(self) -> list[int]:
        """Return the event id of every verified document, in the order received (repeats included)."""
        return [d["event_id"] for d in self.documents()]
