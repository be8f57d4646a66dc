"""The Feishu (Lark) channel: one card (or text) per notify to a custom bot webhook, optionally signed.

Wire format, from Feishu's "自定义机器人使用指南" (open.feishu.cn/document/client-docs/bot-v3/add-custom-bot):
POST JSON to ``https://open.feishu.cn/open-apis/bot/v2/hook/<token>``, either
``{"msg_type": "interactive", "card": {"header": ..., "elements": [...]}}`` or
``{"msg_type": "text", "content": {"text"}}``; body at most 20 KB; 100 messages a minute, 5 a second.
Signed mode (签名校验) adds ``"timestamp"`` (seconds, as a string) and ``"sign"`` to the body, where
sign = base64(HmacSHA256(key=timestamp + "\\n" + secret, msg=b"")) — note the key and message are the
other way round from DingTalk. The verdict is ``code`` in the JSON body (``StatusCode`` on old replies).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from monitor.alerts.channels._http import HttpChannel, JsonObject, credential, post_json, webhook_url
from monitor.alerts.messages import Message, render
from monitor.alerts.model import SENT, Alert, Delivery

log = structlog.get_logger("monitor.alerts.channels.feishu")

# code → may a retry help. Sources: the custom bot guide (11232 is the rate-limit error, "避开整点");
# bot replies users report: 19021 "sign match fail or timestamp is not within one hour", 19001
# "param invalid: incoming webhook access token invalid". 9499 is ambiguous — Feishu answers it for
# a malformed body ("Bad Request") and when throttling ("too many request", HTTP 400) — so its msg decides.
RETRYABLE_BY_CODE: dict[int, bool] = {
    11232: True,  # frequency limited
    19001: False,  # param invalid (e.g. the hook token is wrong)
    19021: False,  # sign match fail, or timestamp more than an hour off
}
AMBIGUOUS = 9499
MSG_TYPES = ("interactive", "text")
TEMPLATE_BY_SEVERITY = {"critical": "red", "warning": "orange", "info": "blue"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FeishuSettings:
    """Where the bot lives and how to speak to it; the webhook and secret never show in a repr."""

    webhook: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    msg_type: str = "interactive"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], environ: Mapping[str, str]) -> FeishuSettings:
        """Build from a channel's config table: ``webhook_env`` (or ``webhook``), ``secret_env``, ``msg_type``."""
        msg_type = raw.get("msg_type", "interactive")
        if msg_type not in MSG_TYPES:
            raise ValueError(f"msg_type: expected one of {', '.join(MSG_TYPES)}, got {msg_type!r}")
        return cls(
            webhook=webhook_url(raw, environ),
            secret=credential(raw, environ, "secret", required=False),
            msg_type=msg_type,
        )


def sign(timestamp_s: str, secret: str) -> str:
    """Return Feishu's signature: base64 of HmacSHA256 keyed by "<ts>\\n<secret>" over an empty message."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def template(alerts: Sequence[Alert]) -> str:
    """Colour the card header by the worst firing severity; green when everything has resolved."""
    firing = {a.severity for a in alerts if a.state != "resolved"}
    if not firing:
        return "green"
    return next((TEMPLATE_BY_SEVERITY[s] for s in TEMPLATE_BY_SEVERITY if s in firing), "blue")


class FeishuChannel(HttpChannel[FeishuSettings]):
    """Send alerts to a Feishu group as one card, saying whether a failure is worth retrying."""

    async def notify(self, alerts: Sequence[Alert]) -> Delivery:
        """Render ``alerts`` as one message and post it once."""
        payload = self.payload(render(alerts, self.language, self.link_base), template(alerts))
        body, failed = await post_json(self.http, self.settings.webhook, payload)
        if failed is not None:
            log.warning("alert.channel_error", channel=self.name, error=failed.error, retryable=failed.retryable)
            return failed
        return self.verdict(body or {})

    def payload(self, message: Message, colour: str = "blue") -> JsonObject:
        """Build a card (header title, lark_md body) or a text message, signed when a secret is set."""
        payload: JsonObject = {}
        if self.settings.secret is not None:
            timestamp = str((self.clock.now() - EPOCH) // timedelta(seconds=1))
            payload |= {"timestamp": timestamp, "sign": sign(timestamp, self.settings.secret)}
        if self.settings.msg_type == "text":
            return payload | {"msg_type": "text", "content": {"text": message.text}}
        lines = message.markdown.split("\n")
        body = "\n".join(lines[1:] if lines[0].startswith("#") else lines)  # the header already shows the title
        card = {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": message.title}, "template": colour},
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": body}}],
        }
        return payload | {"msg_type": "interactive", "card": card}

    def verdict(self, body: JsonObject) -> Delivery:
        """Read ``code`` (or the older ``StatusCode``): 0 is sent, throttling is worth retrying, the rest gives up."""
        code = body.get("code", body.get("StatusCode"))
        if code == 0:
            return SENT
        msg = str(body.get("msg", body.get("StatusMessage", "")))
        if not isinstance(code, int):
            log.warning("alert.channel_error", channel=self.name, errcode=None, retryable=False)
            return Delivery(sent=False, error="feishu: reply has no code")
        retryable = "too many" in msg.lower() if code == AMBIGUOUS else RETRYABLE_BY_CODE.get(code, False)
        known = code in RETRYABLE_BY_CODE or code == AMBIGUOUS
        log.warning(
            "alert.channel_error", channel=self.name, errcode=code, errmsg=msg, retryable=retryable, known=known
        )
        return Delivery(sent=False, retryable=retryable, error=f"feishu code {code}: {msg}")
