"""The Slack channel against a local server that checks the hook path and Block Kit payload as Slack does."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from monitor.alerts.channels.slack import SlackChannel, SlackSettings, to_mrkdwn
from monitor.alerts.messages import RULE_NAMES
from monitor.alerts.model import SENT, Delivery
from monitor.clock import SimulatedClock
from monitor.testing import receivers
from monitor.testing.receivers import Receiver as WebServer
from tests.alerts.fakes import FIXTURES, NOW, PHONE, closed_port_url, deliver, make_alerts
from tests.alerts.fakes import fixture as recorded

HOOK = "/services/T0PARCEL1/B0ALERTS2/x7Yq2wN4vK9sL3mP8rT5uZ1a"
LINK_BASE = "https://monitor.example.com"


class FakeSlack(receivers.FakeSlack):
    """The kit's Slack incoming webhook for this test's hook, answering from tests/fixtures/slack."""

    def __init__(self, force: str | None = None) -> None:
        super().__init__(HOOK, force=force, fixtures=FIXTURES)


def send(server: WebServer | None, count: int = 1, link_base: str = LINK_BASE, language: str = "zh") -> Delivery:
    webhook = server.url_for(HOOK) if server else closed_port_url(HOOK)
    clock = SimulatedClock(NOW)
    return deliver(
        lambda http: SlackChannel("ops-slack", SlackSettings(webhook), http, clock, language, link_base),
        make_alerts(count),
    )


def test_success_posts_fallback_text_and_blocks_in_mrkdwn() -> None:
    with FakeSlack() as server:
        delivery = send(server)
    assert delivery == SENT
    assert server.problems == []
    [request] = server.received
    body = request.json()
    assert RULE_NAMES["zh"]["pickup_overdue"] in body["blocks"][0]["text"]["text"]
    assert RULE_NAMES["zh"]["pickup_overdue"] in body["text"]
    section = body["blocks"][1]["text"]["text"]
    assert "*赔付风险: ¥5.00*" in section and "**" not in section
    assert f"<{LINK_BASE}/api/v1/parcels/SF/SF100000000000|[严重] 24小时未揽收 · SF SF100000000000" in section
    assert "](" not in section
    assert PHONE.findall(request.raw.decode()) == []


def test_markdown_becomes_slack_mrkdwn_with_control_characters_escaped() -> None:
    markdown = "### title\n**at stake: ¥1.00**\n- [[WARN] a <b> & c](https://x.example/p?a=1&b=2)\n- plain"
    assert to_mrkdwn(markdown) == (
        "*title*\n*at stake: ¥1.00*\n• <https://x.example/p?a=1&amp;b=2|[WARN] a &lt;b&gt; &amp; c>\n• plain"
    )


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ("response_invalid_payload", 400),
        ("response_invalid_token", 403),
        ("response_action_prohibited", 403),
        ("response_channel_not_found", 404),
        ("response_channel_is_archived", 410),
    ],
)
def test_slack_errors_give_up_naming_the_error(reply: str, status: int) -> None:
    with FakeSlack(force=reply) as server, capture_logs() as logs:
        delivery = send(server)
    code = recorded("slack", reply)["body"]
    assert delivery == Delivery(sent=False, retryable=False, error=f"slack HTTP {status}: {code}")
    assert [(e["status"], e["retryable"]) for e in logs if e["event"] == "alert.channel_error"] == [(status, False)]
    assert HOOK not in str(logs)


def test_unknown_hook_gives_up_with_no_service() -> None:
    with FakeSlack() as server:
        clock = SimulatedClock(NOW)
        settings = SlackSettings(server.url_for("/services/T0PARCEL1/B0ALERTS2/revoked"))
        delivery = deliver(lambda http: SlackChannel("s", settings, http, clock), make_alerts(1))
    assert delivery == Delivery(sent=False, retryable=False, error="slack HTTP 404: no_service")


def test_rate_limit_is_retried_and_says_when() -> None:
    with FakeSlack(force="response_rate_limited") as server:
        delivery = send(server)
    assert delivery == Delivery(sent=False, retryable=True, error="slack HTTP 429: rate_limited (Retry-After 30 s)")


def test_server_error_is_retried() -> None:
    with FakeSlack(force="response_server_error") as server:
        delivery = send(server)
    assert delivery == Delivery(sent=False, retryable=True, error="slack HTTP 500: rollup_error")


def test_a_reply_that_does_not_decode_is_retried() -> None:
    with FakeSlack() as server:
        server.fail("gzip", times=1)
        assert send(server) == Delivery(sent=False, retryable=True, error="undecodable reply (DecodingError)")
        assert send(server) == SENT


def test_server_down_is_retried_without_leaking_the_hook() -> None:
    with capture_logs() as logs:
        delivery = send(None)
    assert delivery == Delivery(sent=False, retryable=True, error="transport error (ConnectError)")
    assert HOOK not in str(logs)


def test_timeout_is_retried() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async def run() -> Delivery:
        async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as http:
            channel = SlackChannel("s", SlackSettings(f"https://hooks.slack.com{HOOK}"), http, SimulatedClock(NOW))
            return await channel.notify(make_alerts(1))

    assert asyncio.run(run()) == Delivery(sent=False, retryable=True, error="timeout (ReadTimeout)")


def test_a_digest_of_500_alerts_is_one_request_within_block_limits() -> None:
    with FakeSlack() as server:
        delivery = send(server, count=500, link_base=LINK_BASE + "/" + "x" * 400)
    assert delivery == SENT
    assert server.problems == []
    assert len(server.received) == 1
    body = server.received[0].json()
    assert "(500)" in body["blocks"][0]["text"]["text"]
    assert body["blocks"][1]["text"]["text"].endswith("\n…")  # cut at a line, not inside a link
    assert PHONE.findall(server.received[0].raw.decode()) == []


def test_settings_read_the_webhook_from_the_environment_and_hide_it() -> None:
    settings = SlackSettings.from_mapping({"webhook_env": "SLACK_URL"}, {"SLACK_URL": f"https://hooks.slack.com{HOOK}"})
    assert settings.webhook == f"https://hooks.slack.com{HOOK}"
    assert HOOK not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "named"),
    [({"webhook_env": "MISSING"}, "webhook_env"), ({"webhook": f"hooks.slack.com{HOOK}"}, "webhook"), ({}, "webhook")],
)
def test_bad_settings_name_the_key_without_leaking_the_hook(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named) as err:
        SlackSettings.from_mapping(raw, {})
    assert HOOK not in str(err.value)
