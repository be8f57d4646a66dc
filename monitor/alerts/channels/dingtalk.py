"""The DingTalk channel: one Markdown message per notify to a custom robot (自定义机器人), optionally signed (加签).

Wire format, from DingTalk's custom robot documentation (open.dingtalk.com, "自定义机器人接入"):
POST JSON ``{"msgtype": "markdown", "markdown": {"title", "text"}, "at": {"atMobiles", "isAtAll"}}``
to the webhook; a mobile in ``atMobiles`` only pings if ``@<mobile>`` also appears in the text.
Signed mode appends ``&timestamp=<ms>&sign=<urlencode(base64(HmacSHA256(key=secret,
msg=timestamp + "\\n" + secret)))>``; the timestamp must be within an hour of DingTalk's clock.
The verdict is ``errcode`` in the JSON body, with HTTP 200 even on failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog

from monitor.alerts.channels._http import HttpChannel, JsonObject, credential, errcode_verdict, post_json, webhook_url
from monitor.alerts.messages import Message, render
from monitor.alerts.model import Alert, Delivery, mentions_of

log = structlog.get_logger("monitor.alerts.channels.dingtalk")

# errcode → may a retry help. Sources: the custom robot doc ("每个机器人每分钟最多发送20条…限流10分钟"
# answered as 130101 "send too fast, exceed 20 times per minute"), DingTalk's global return codes
# (-1 系统繁忙: retry), and the errors users report for a bad token or a failed security check
# (keyword, 加签 signature or IP allow-list all answer 310000). An unknown errcode gives up.
RETRYABLE_BY_ERRCODE: dict[int, bool] = {
    -1: True,  # 系统繁忙
    130101: True,  # send too fast, exceed 20 times per minute
    300001: False,  # token is not exist
    300005: False,  # token is not exist (robot of an external group)
    310000: False,  # keywords not in content / sign not match / ip not in whitelist
}
MOBILE = re.compile(r"\+?\d{5,20}")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DingTalkSettings:
    """Where the robot lives and whom to @-mention; the webhook and secret never show in a repr."""

    webhook: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    at_mobiles: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], environ: Mapping[str, str]) -> DingTalkSettings:
        """Build from a channel's config table: ``webhook_env`` (or ``webhook``), ``secret_env``, ``at_mobiles``."""
        mobiles = raw.get("at_mobiles", [])
        if not isinstance(mobiles, list | tuple) or not all(
            isinstance(m, str) and MOBILE.fullmatch(m) for m in mobiles
        ):
            raise ValueError(f"at_mobiles: expected a list of mobile numbers, got {mobiles!r}")
        return cls(
            webhook=webhook_url(raw, environ),
            secret=credential(raw, environ, "secret", required=False),
            at_mobiles=tuple(mobiles),
        )


def sign(timestamp_ms: str, secret: str) -> str:
    """Return DingTalk's 加签 signature, base64 before URL encoding: HmacSHA256(secret, "<ts>\\n<secret>")."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class DingTalkChannel(HttpChannel[DingTalkSettings]):
    """Send alerts to a DingTalk group as one Markdown message, saying whether a failure is worth retrying."""

    async def notify(self, alerts: Sequence[Alert]) -> Delivery:
        """Render ``alerts`` as one message and post it once."""
        message = render(alerts, self.language, self.link_base)
        body, failed = await post_json(self.http, self.url(), self.payload(message, mentions_of(alerts)))
        if failed is not None:
            log.warning("alert.channel_error", channel=self.name, error=failed.error, retryable=failed.retryable)
            return failed
        return self.verdict(body or {})

    def payload(self, message: Message, mentions: Sequence[str] = ()) -> JsonObject:
        """Build the robot's Markdown message; each @-mentioned mobile is also written into the text."""
        mobiles = mentions_of((), [*self.settings.at_mobiles, *mentions])
        text = message.markdown
        if mobiles:
            text += "\n\n" + " ".join(f"@{mobile}" for mobile in mobiles)
        return {
            "msgtype": "markdown",
            "markdown": {"title": message.title, "text": text},
            "at": {"atMobiles": mobiles, "isAtAll": False},
        }

    def url(self) -> str:
        """Return the webhook, with ``timestamp`` and ``sign`` added in signed mode."""
        if self.settings.secret is None:
            return self.settings.webhook
        timestamp = str((self.clock.now() - EPOCH) // timedelta(milliseconds=1))
        signed = {"timestamp": timestamp, "sign": sign(timestamp, self.settings.secret)}
        return str(httpx.URL(self.settings.webhook).copy_merge_params(signed))  # URL-encodes the signature

    def verdict(self, body: JsonObject) -> Delivery:
        """Read ``errcode``: 0 is sent, a rate limit is worth retrying, anything else gives up."""
        return errcode_verdict("dingtalk", self.name, body, RETRYABLE_BY_ERRCODE)
