"""The DingTalk channel against a local server that checks token, 加签 signature and payload as DingTalk does."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from monitor.alerts.channels.dingtalk import DingTalkChannel, DingTalkSettings
from monitor.alerts.messages import RULE_NAMES
from monitor.alerts.model import SENT, Delivery
from monitor.clock import SimulatedClock
from monitor.testing import receivers
from monitor.testing.receivers import Receiver as ProviderServer
from tests.alerts.fakes import FIXTURES, NOW, PHONE, closed_port_url, deliver, make_alerts

TOKEN = "b10deee3d9e2dbc21ce57eb9f80da23a"
SECRET = "SEC1f2e3d4c5b6a798897a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5"
STAFF = "13800001111"
PATH = "/robot/send"


class FakeDingTalk(receivers.FakeDingTalk):
    """The kit's DingTalk robot for this test's token, answering from tests/fixtures/dingtalk at NOW."""

    def __init__(self, secret: str | None = None, force: str | None = None) -> None:
        super().__init__(TOKEN, secret, force=force, fixtures=FIXTURES, clock=SimulatedClock(NOW))


def send(server: ProviderServer | None, count: int = 1, secret: str | None = None, **settings: Any) -> Delivery:
    path = f"{PATH}?access_token={TOKEN}"
    webhook = server.url_for(path) if server else closed_port_url(path)
    config = DingTalkSettings(webhook=webhook, secret=secret, **settings)
    clock = SimulatedClock(NOW)
    return deliver(lambda http: DingTalkChannel("ops-dingtalk", config, http, clock), make_alerts(count))


def test_success_sends_markdown_naming_rule_and_parcel_and_mentions_only_staff() -> None:
    with FakeDingTalk() as server:
        delivery = send(server, at_mobiles=(STAFF,))
    assert delivery == SENT
    assert server.problems == []
    [request] = server.received
    text = request.body["markdown"]["text"]
    assert RULE_NAMES["zh"]["pickup_overdue"] in text
    assert "SF100000000000" in text
    assert request.body["at"] == {"atMobiles": [STAFF], "isAtAll": False}
    assert f"@{STAFF}" in text  # DingTalk only pings a mobile that is also written in the text
    assert set(PHONE.findall(str(request.body))) <= {STAFF}


def test_signed_request_is_verified_by_the_server() -> None:
    with FakeDingTalk(secret=SECRET) as server:
        delivery = send(server, secret=SECRET)
    assert delivery == SENT
    assert server.problems == []
    assert server.received[0].query["timestamp"] == str(server.now_ms)


def test_wrong_secret_is_rejected_by_the_server_and_given_up() -> None:
    with FakeDingTalk(secret=SECRET) as server, capture_logs() as logs:
        delivery = send(server, secret="SEC-not-the-robots-secret")
    assert (delivery.sent, delivery.retryable) == (False, False)
    assert "310000" in delivery.error and "sign not match" in delivery.error
    assert [e["errcode"] for e in logs if e["event"] == "alert.channel_error"] == [310000]
    assert TOKEN not in str(logs) and SECRET not in str(logs) and "not-the-robots" not in str(logs)


def test_rate_limit_is_retried_later() -> None:
    with FakeDingTalk(force="response_rate_limited") as server:
        delivery = send(server)
    assert delivery == Delivery(
        sent=False, retryable=True, error="dingtalk errcode 130101: send too fast, exceed 20 times per minute"
    )


def test_unknown_token_gives_up_naming_errcode_and_errmsg() -> None:
    with FakeDingTalk() as server:
        webhook = server.url_for(f"{PATH}?access_token=not-a-token")
        clock = SimulatedClock(NOW)
        delivery = deliver(lambda http: DingTalkChannel("d", DingTalkSettings(webhook), http, clock), make_alerts(1))
    assert delivery == Delivery(sent=False, retryable=False, error="dingtalk errcode 300001: token is not exist")


def test_a_reply_that_does_not_decode_is_retried() -> None:
    with FakeDingTalk() as server:
        server.fail("gzip", times=1)
        assert send(server) == Delivery(sent=False, retryable=True, error="undecodable reply (DecodingError)")
        assert send(server) == SENT


def test_server_down_is_retried() -> None:
    delivery = send(None)
    assert (delivery.sent, delivery.retryable) == (False, True)
    assert TOKEN not in delivery.error


def test_server_error_is_retried() -> None:
    with FakeDingTalk(force="response_server_error") as server:
        delivery = send(server)
    assert delivery == Delivery(sent=False, retryable=True, error="HTTP 502")


def test_a_digest_of_500_alerts_is_one_request() -> None:
    with FakeDingTalk(secret=SECRET) as server:
        delivery = send(server, count=500, secret=SECRET)
    assert delivery == SENT
    assert len(server.received) == 1
    assert "(500)" in server.received[0].body["markdown"]["title"]


def test_settings_read_secrets_from_the_environment_and_hide_them() -> None:
    environ = {"DT_URL": f"https://oapi.dingtalk.com{PATH}?access_token={TOKEN}", "DT_SECRET": SECRET}
    raw = {"webhook_env": "DT_URL", "secret_env": "DT_SECRET", "at_mobiles": [STAFF]}
    settings = DingTalkSettings.from_mapping(raw, environ)
    assert (settings.secret, settings.at_mobiles) == (SECRET, (STAFF,))
    assert TOKEN not in repr(settings) and SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"webhook_env": "MISSING"}, "webhook_env"),
        ({"webhook": f"oapi.dingtalk.com{PATH}?access_token={TOKEN}"}, "webhook"),
        ({"webhook": "https://oapi.dingtalk.com/robot/send", "at_mobiles": "13800001111"}, "at_mobiles"),
    ],
)
def test_bad_settings_name_the_key_without_leaking_the_token(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named) as err:
        DingTalkSettings.from_mapping(raw, {})
    assert TOKEN not in str(err.value)


def test_transport_errors_never_reach_the_log_with_the_token() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async def run() -> Delivery:
        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
            settings = DingTalkSettings(f"https://oapi.dingtalk.com{PATH}?access_token={TOKEN}", SECRET)
            return await DingTalkChannel("d", settings, http, SimulatedClock(NOW)).notify(make_alerts(1))

    with capture_logs() as logs:
        delivery = asyncio.run(run())
    assert delivery == Delivery(sent=False, retryable=True, error="transport error (ConnectError)")
    assert TOKEN not in str(logs) and SECRET not in str(logs)
