"""The generic webhook channel: one signed JSON document per notify, for systems of the customer's own.

The format and how a receiver checks the signature are documented in ``docs/webhook.md``:
POST ``{"version": "1", "status", "alerts": [...], "title", "text"}`` with the headers
``X-Parcel-Monitor-Timestamp: <unix seconds>`` and
``X-Parcel-Monitor-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``.
Any 2xx is sent; 408, 429 and 5xx (and no answer at all) are worth retrying; other statuses give up.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from monitor.alerts.channels._http import HttpChannel, JsonObject, credential, post, webhook_url
from monitor.alerts.messages import Message, render
from monitor.alerts.model import SENT, Alert, Delivery
from monitor.clock import as_utc

log = structlog.get_logger("monitor.alerts.channels.webhook")

VERSION = "1"
TIMESTAMP_HEADER = "X-Parcel-Monitor-Timestamp"
SIGNATURE_HEADER = "X-Parcel-Monitor-Signature"
RETRYABLE_4XX = frozenset({408, 429})
BODY_SHOWN = 100  # characters of a receiver's error body kept in a Delivery


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """Where to post and the key to sign with; neither shows in a repr (a URL may carry a token)."""

    webhook: str = field(repr=False)
    secret: str = field(repr=False)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], environ: Mapping[str, str]) -> WebhookSettings:
        """Build from a channel's config table: ``webhook_env`` (or ``webhook``) and ``secret_env`` (or ``secret``)."""
        return cls(webhook=webhook_url(raw, environ), secret=credential(raw, environ, "secret") or "")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the signature header value: ``sha256=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def alert_document(alert: Alert) -> JsonObject:
    """Describe one alert for machines: ids, rule, parcel, UTC ISO time, compensation in yuan."""
    return {
        "anomaly_id": alert.anomaly_id,
        "rule": alert.rule,
        "severity": alert.severity,
        "state": alert.state,
        "carrier": alert.carrier,
        "tracking_no": alert.tracking_no,
        "order_id": alert.order_id,
        "shop": alert.shop,
        "opened_at": as_utc(alert.opened_at).isoformat(),
        "compensation": None if alert.compensation_fen is None else round(alert.compensation_fen / 100, 2),
        "detail": alert.detail,
    }


class WebhookChannel(HttpChannel[WebhookSettings]):
    """Post alerts to any HTTP endpoint as one signed JSON document, saying whether a failure is worth retrying."""

    async def notify(self, alerts: Sequence[Alert]) -> Delivery:
        """Render ``alerts`` as one document, sign it with the clock's time and post it once."""
        body = self.body(alerts, render(alerts, self.language, self.link_base))
        timestamp = str(int(self.clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.settings.secret, timestamp, body),
        }
        response = await post(self.http, self.settings.webhook, content=body, headers=headers)
        if isinstance(response, str):
            return self.failed(None, True, response)
        return self.verdict(response)

    def body(self, alerts: Sequence[Alert], message: Message) -> bytes:
        """Serialize the document exactly once: these bytes are both signed and sent."""
        document = {
            "version": VERSION,
            "status": "firing" if any(a.state == "firing" for a in alerts) else "resolved",
            "alerts": [alert_document(a) for a in alerts],
            "title": message.title,
            "text": message.text,
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def verdict(self, response: httpx.Response) -> Delivery:
        """Read the status: 2xx is sent; 408, 429 and 5xx are worth retrying; anything else gives up."""
        status = response.status_code
        if response.is_success:
            return SENT
        snippet = " ".join(response.text.split())[:BODY_SHOWN]
        error = f"webhook HTTP {status}: {snippet or response.reason_phrase}"
        return self.failed(status, status in RETRYABLE_4XX or status >= 500, error)

    def failed(self, status: int | None, retryable: bool, error: str) -> Delivery:
        """Log a failure without the URL or the secret, and return it as a Delivery."""
        log.warning("alert.channel_error", channel=self.name, status=status, error=error, retryable=retryable)
        return Delivery(sent=False, retryable=retryable, error=error)
