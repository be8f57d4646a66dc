"""The Slack channel: one Block Kit message per notify to an incoming webhook.

Wire format, from Slack's incoming-webhook and Block Kit references (docs.slack.dev):
POST JSON ``{"text": <fallback for notifications>, "blocks": [header, section]}``; a header block
holds at most 150 characters of plain text, a section at most 3000 of mrkdwn, where ``&``, ``<``
and ``>`` are control characters to escape, bold is ``*x*`` and a link ``<url|text>``.
Slack answers HTTP 200 with the body ``ok``. Errors are plain-text codes with a 4xx status
(api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks): 400
``invalid_payload``, 403 ``action_prohibited`` / ``invalid_token``, 404 ``channel_not_found`` /
``no_service``, 410 ``channel_is_archived``; 500 ``rollup_error``. Over its rate limit Slack
answers 429 with a ``Retry-After`` header in seconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from monitor.alerts.channels._http import HttpChannel, JsonObject, post, webhook_url
from monitor.alerts.messages import Message, render
from monitor.alerts.model import SENT, Alert, Delivery

log = structlog.get_logger("monitor.alerts.channels.slack")

HEADER_MAX = 150
SECTION_MAX = 3000
BODY_SHOWN = 100  # characters of an error body kept in a Delivery; Slack's codes are short
BOLD = re.compile(r"\*\*(.+?)\*\*")
LINK = re.compile(r"\[(.*)\]\((https?://[^\s)]+)\)")  # one link per line, whose text may hold brackets


@dataclass(frozen=True, slots=True)
class SlackSettings:
    """Where the incoming webhook lives; its URL is the credential, so it never shows in a repr."""

    webhook: str = field(repr=False)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], environ: Mapping[str, str]) -> SlackSettings:
        """Build from a channel's config table: ``webhook_env`` (or ``webhook``)."""
        return cls(webhook=webhook_url(raw, environ))


def escape(text: str) -> str:
    """Escape Slack's three control characters so names cannot inject links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str) -> str:
    """Convert the Markdown that ``render`` writes (headings, bold, links, bullets) to Slack mrkdwn."""
    lines = []
    for line in escape(markdown).splitlines():
        line = BOLD.sub(r"*\1*", line)
        line = LINK.sub(r"<\2|\1>", line)
        if line.startswith("### "):
            line = f"*{line[4:]}*"
        elif line.startswith("- "):
            line = "• " + line[2:]
        lines.append(line)
    return "\n".join(lines)


def fit(lines: list[str], limit: int) -> str:
    """Join whole lines up to ``limit`` characters, so no link is cut in half."""
    kept: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > limit - 2:
            kept.append("…")
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)


class SlackChannel(HttpChannel[SlackSettings]):
    """Send alerts to a Slack channel as one message, saying whether a failure is worth retrying."""

    async def notify(self, alerts: Sequence[Alert]) -> Delivery:
        """Render ``alerts`` as one message and post it once."""
        message = render(alerts, self.language, self.link_base)
        response = await post(self.http, self.settings.webhook, json=self.payload(message))
        if isinstance(response, str):
            return self.failed(None, True, response)
        return self.verdict(response)

    def payload(self, message: Message) -> JsonObject:
        """Build the webhook body: plain fallback text, a header with the title, the rest as mrkdwn."""
        title = message.title if len(message.title) <= HEADER_MAX else message.title[: HEADER_MAX - 1] + "…"
        body = message.markdown.splitlines()
        if body and body[0] == f"### {message.title}":
            body = body[1:]  # the header block already says it
        return {
            "text": escape(message.text),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}},
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": fit(to_mrkdwn("\n".join(body)).splitlines(), SECTION_MAX)},
                },
            ],
        }

    def verdict(self, response: httpx.Response) -> Delivery:
        """Read Slack's answer: 2xx is sent; 408, 429 and 5xx are worth retrying; any other 4xx gives up."""
        status = response.status_code
        body = " ".join(response.text.split())[:BODY_SHOWN]
        if response.is_success:
            if body != "ok":  # a Slack-compatible server, or a proxy: the post was accepted all the same
                log.warning("alert.channel_unexpected_reply", channel=self.name, status=status, body=body)
            return SENT
        error = f"slack HTTP {status}: {body or response.reason_phrase}"
        if status == 429:
            retry_after = response.headers.get("Retry-After", "")
            return self.failed(status, True, error + (f" (Retry-After {retry_after} s)" if retry_after else ""))
        return self.failed(status, status == 408 or status >= 500, error)

    def failed(self, status: int | None, retryable: bool, error: str) -> Delivery:
        """Log a failure without the webhook URL, and return it as a Delivery."""
        log.warning("alert.channel_error", channel=self.name, status=status, error=error, retryable=retryable)
        return Delivery(sent=False, retryable=retryable, error=error)
