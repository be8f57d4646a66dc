"""The WeCom channel: one message per notify to a group robot (群机器人) webhook.

Wire format, from WeCom's "群机器人配置说明" (developer.work.weixin.qq.com/document/path/91770):
POST JSON to ``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...``, either
``{"msgtype": "markdown", "markdown": {"content"}}`` (content ≤ 4096 bytes) or
``{"msgtype": "text", "text": {"content", "mentioned_list", "mentioned_mobile_list"}}`` (≤ 2048 bytes).
The verdict is ``errcode`` in the JSON body. A robot may send 20 messages a minute.

Mentions, and why the message type depends on them: Markdown mentions members only by userid,
written ``<@userid>`` in the content; mentioning by mobile number needs ``mentioned_mobile_list``,
which only text messages have. So without ``mention_mobiles`` the channel sends Markdown with a
``<@userid>`` line; with them it sends one text message carrying both lists — plainer, but the
people on call are actually paged. Either way it is one request per notify.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from monitor.alerts.channels._http import HttpChannel, JsonObject, errcode_verdict, post_json, webhook_url
from monitor.alerts.messages import Message, render
from monitor.alerts.model import Alert, Delivery, mentions_of

log = structlog.get_logger("monitor.alerts.channels.wecom")

# errcode → may a retry help. Sources: WeCom global error codes as answered by the webhook
# (45009 "api freq out of limit": the 20-a-minute limit; -1 system busy; 93000 "invalid webhook
# url": the key is wrong or the robot was removed). An unknown errcode gives up.
RETRYABLE_BY_ERRCODE: dict[int, bool] = {
    -1: True,  # system busy
    45009: True,  # api freq out of limit
    93000: False,  # invalid webhook url
}
MARKDOWN_MAX_BYTES = 4096
TEXT_MAX_BYTES = 2048
MOBILE = re.compile(r"\+?\d{5,20}")
USERID = re.compile(r"[^\s<>]+")


@dataclass(frozen=True, slots=True)
class WeComSettings:
    """Where the robot lives and whom to mention; the webhook (it holds the key) never shows in a repr."""

    webhook: str = field(repr=False)
    mention_userids: tuple[str, ...] = ()
    mention_mobiles: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], environ: Mapping[str, str]) -> WeComSettings:
        """Build from a channel's table: ``webhook_env`` (or ``webhook``), ``mention_userids``, ``mention_mobiles``."""
        return cls(
            webhook=webhook_url(raw, environ),
            mention_userids=_strings(raw, "mention_userids", USERID, "WeCom userids"),
            mention_mobiles=_strings(raw, "mention_mobiles", MOBILE, "mobile numbers"),
        )


def _strings(raw: Mapping[str, Any], key: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    values = raw.get(key, [])
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) and pattern.fullmatch(v) for v in values):
        raise ValueError(f"{key}: expected a list of {what}, got {values!r}")
    return tuple(values)


def fit(content: str, limit: int) -> str:
    """Cut ``content`` at a line boundary so its UTF-8 form fits in ``limit`` bytes, marking the cut with "…"."""
    if len(content.encode()) <= limit:
        return content
    head = content.encode()[: limit - len("\n…".encode())].decode(errors="ignore")
    return head.rsplit("\n", 1)[0] + "\n…"


class WeComChannel(HttpChannel[WeComSettings]):
    """Send alerts to a WeCom group as one message, saying whether a failure is worth retrying."""

    async def notify(self, alerts: Sequence[Alert]) -> Delivery:
        """Render ``alerts`` as one message and post it once."""
        message = render(alerts, self.language, self.link_base)
        body, failed = await post_json(self.http, self.settings.webhook, self.payload(message, mentions_of(alerts)))
        if failed is not None:
            log.warning("alert.channel_error", channel=self.name, error=failed.error, retryable=failed.retryable)
            return failed
        return self.verdict(body or {})

    def payload(self, message: Message, mentions: Sequence[str] = ()) -> JsonObject:
        """Build Markdown with ``<@userid>`` mentions, or text when mobiles must be mentioned (see module doc)."""
        userids = list(self.settings.mention_userids)
        mobiles = mentions_of((), [*self.settings.mention_mobiles, *mentions])
        if mobiles:
            text: JsonObject = {"content": fit(message.text, TEXT_MAX_BYTES), "mentioned_mobile_list": mobiles}
            if userids:
                text["mentioned_list"] = userids
            return {"msgtype": "text", "text": text}
        mentions = " ".join(f"<@{userid}>" for userid in userids)
        room = MARKDOWN_MAX_BYTES - len(f"\n\n{mentions}".encode()) if mentions else MARKDOWN_MAX_BYTES
        content = fit(message.markdown, room) + (f"\n\n{mentions}" if mentions else "")
        return {"msgtype": "markdown", "markdown": {"content": content}}

    def verdict(self, body: JsonObject) -> Delivery:
        """Read ``errcode``: 0 is sent, a rate limit is worth retrying, anything else gives up."""
        return errcode_verdict("wecom", self.name, body, RETRYABLE_BY_ERRCODE)
