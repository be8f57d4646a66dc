"""The generic webhook channel against a local receiver that verifies the signature as docs/webhook.md tells one to."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from monitor.alerts.channels.webhook import WebhookChannel, WebhookSettings, sign
from monitor.alerts.model import SENT, Alert, Delivery
from monitor.clock import SimulatedClock
from monitor.testing import receivers
from monitor.testing.receivers import Receiver as WebServer
from tests.alerts.fakes import FIXTURES, NOW, PHONE, closed_port_url, deliver, make_alerts
from tests.alerts.fakes import fixture as recorded

SECRET = "whsec_5f1e9a0c7b3d4e2f8a6b1c9d0e7f3a2b"
PATH = "/hooks/parcel-monitor"


class Receiver(receivers.FakeWebhook):
    """The kit's webhook receiver for this test's secret and path, answering from tests/fixtures/webhook at NOW."""

    def __init__(self, secret: str = SECRET, force: str | None = None) -> None:
        super().__init__(secret, PATH, force=force, fixtures=FIXTURES, clock=SimulatedClock(NOW))


def send(server: WebServer | None, alerts: list[Alert] | None = None, secret: str = SECRET) -> Delivery:
    url = server.url_for(PATH) if server else closed_port_url(PATH)
    clock = SimulatedClock(NOW)
    settings = WebhookSettings(url, secret)
    return deliver(lambda http: WebhookChannel("ops-hook", settings, http, clock), alerts or make_alerts(1))


def test_success_posts_a_signed_document_in_the_documented_shape() -> None:
    with Receiver() as server:
        delivery = send(server)
    assert delivery == SENT
    assert server.problems == []
    [request] = server.received
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-parcel-monitor-timestamp"] == str(int(NOW.timestamp()))
    document = request.json()
    assert (document["version"], document["status"]) == ("1", "firing")
    [alert] = document["alerts"]
    assert alert == {
        "anomaly_id": 1,
        "rule": "pickup_overdue",
        "severity": "critical",
        "state": "firing",
        "carrier": "SF",
        "tracking_no": "SF100000000000",
        "order_id": "TB900000",
        "shop": "旗舰店",
        "opened_at": "2026-11-09T20:30:00+00:00",
        "compensation": 5.0,
        "detail": "",
    }
    assert "旗舰店".encode() in request.raw  # UTF-8 on the wire, not \\u escapes
    assert PHONE.findall(request.raw.decode()) == []


def test_the_verification_snippet_in_the_docs_accepts_a_real_request_and_nothing_else() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "webhook.md").read_text(encoding="utf-8")
    namespace: dict[str, Any] = {}
    exec(doc.split("```python\n")[1].split("```")[0], namespace)
    verify = namespace["verify"]
    with Receiver() as server:
        assert send(server) == SENT
    [request] = server.received
    timestamp, signature = request.headers["x-parcel-monitor-timestamp"], request.headers["x-parcel-monitor-signature"]
    forever = 10**10  # the snippet checks freshness against the wall clock; the request was signed at NOW
    assert verify(SECRET, timestamp, signature, request.raw, tolerance=forever)
    assert not verify(SECRET, timestamp, signature, request.raw + b" ", tolerance=forever)
    assert not verify(SECRET, str(int(timestamp) + 1), signature, request.raw, tolerance=forever)
    assert not verify("whsec_other", timestamp, signature, request.raw, tolerance=forever)
    now = int(time.time())  # the snippet's own clock
    fresh, stale = str(now), str(now - 600)
    assert verify(SECRET, fresh, sign(SECRET, fresh, request.raw), request.raw)
    assert not verify(SECRET, stale, sign(SECRET, stale, request.raw), request.raw)


def test_resolved_only_alerts_say_resolved_and_null_compensation_is_null() -> None:
    alerts = [replace(a, state="resolved", compensation_fen=None) for a in make_alerts(2)]
    with Receiver() as server:
        assert send(server, alerts) == SENT
    document = server.received[0].json()
    assert document["status"] == "resolved"
    assert [a["compensation"] for a in document["alerts"]] == [None, None]


def test_wrong_secret_is_refused_by_the_receiver_and_given_up_without_logging_it() -> None:
    with Receiver() as server, capture_logs() as logs:
        delivery = send(server, secret="whsec_not_the_shared_one")
    assert delivery == Delivery(sent=False, retryable=False, error='webhook HTTP 401: {"error": "invalid signature"}')
    assert [(e["status"], e["retryable"]) for e in logs if e["event"] == "alert.channel_error"] == [(401, False)]
    assert SECRET not in str(logs) and "not_the_shared" not in str(logs)


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [
        ("response_no_content", None),
        ("response_bad_request", False),
        ("response_request_timeout", True),
        ("response_rate_limited", True),
        ("response_server_error", True),
    ],
)
def test_each_answer_maps_to_the_right_verdict(reply: str, retryable: bool | None) -> None:
    with Receiver(force=reply) as server:
        delivery = send(server)
    status = recorded("webhook", reply)["status"]
    if retryable is None:
        assert delivery == SENT
    else:
        assert (delivery.sent, delivery.retryable) == (False, retryable)
        assert delivery.error.startswith(f"webhook HTTP {status}: ")


def test_wrong_path_gives_up() -> None:
    with Receiver() as server:
        clock = SimulatedClock(NOW)
        settings = WebhookSettings(server.url_for("/nowhere"), SECRET)
        delivery = deliver(lambda http: WebhookChannel("h", settings, http, clock), make_alerts(1))
    assert delivery == Delivery(sent=False, retryable=False, error="webhook HTTP 404: 404 page not found")


def test_a_reply_that_does_not_decode_is_retried() -> None:
    with Receiver() as server:
        server.fail("gzip", times=1)  # Content-Encoding: gzip on a body that is not
        assert send(server) == Delivery(sent=False, retryable=True, error="undecodable reply (DecodingError)")
        assert send(server) == SENT


def test_server_down_is_retried() -> None:
    assert send(None) == Delivery(sent=False, retryable=True, error="transport error (ConnectError)")


def test_timeout_is_retried() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow", request=request)

    async def run() -> Delivery:
        async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as http:
            channel = WebhookChannel(
                "h", WebhookSettings("https://hooks.example.com/x", SECRET), http, SimulatedClock(NOW)
            )
            return await channel.notify(make_alerts(1))

    assert asyncio.run(run()) == Delivery(sent=False, retryable=True, error="timeout (ConnectTimeout)")


def test_a_digest_of_500_alerts_is_one_signed_request_carrying_them_all() -> None:
    with Receiver() as server:
        delivery = send(server, make_alerts(500))
    assert delivery == SENT
    assert server.problems == []
    assert len(server.received) == 1
    document = server.received[0].json()
    assert len(document["alerts"]) == 500 and "(500)" in document["title"]
    assert PHONE.findall(server.received[0].raw.decode()) == []


def test_settings_read_url_and_secret_from_the_environment_and_hide_them() -> None:
    environ = {"HOOK_URL": "https://erp.example.com/hooks?token=abc123", "HOOK_SECRET": SECRET}
    settings = WebhookSettings.from_mapping({"webhook_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}, environ)
    assert (settings.webhook, settings.secret) == (environ["HOOK_URL"], SECRET)
    assert "abc123" not in repr(settings) and SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"secret": SECRET}, "webhook"),
        ({"webhook": "ftp://erp.example.com/hooks", "secret": SECRET}, "webhook"),
        ({"webhook": "https://erp.example.com/hooks"}, "secret"),
        ({"webhook": "https://erp.example.com/hooks", "secret_env": "MISSING"}, "secret_env"),
    ],
)
def test_bad_settings_name_the_key_without_leaking_the_secret(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named) as err:
        WebhookSettings.from_mapping(raw, {})
    assert SECRET not in str(err.value)
