"""The Feishu channel against a local server that checks hook token, signature and payload as Feishu does."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from monitor.alerts.channels.feishu import FeishuChannel, FeishuSettings
from monitor.alerts.messages import RULE_NAMES
from monitor.alerts.model import SENT, Delivery
from monitor.clock import SimulatedClock
from monitor.testing import receivers
from monitor.testing.receivers import Receiver as ProviderServer
from tests.alerts.fakes import FIXTURES, NOW, PHONE, closed_port_url, deliver, make_alerts

TOKEN = "b43e7bea-88fd-436e-9a3c-5d2f8e1c0a77"
SECRET = "zs0TqJ3kM9vXnB2w"
PATH = f"/open-apis/bot/v2/hook/{TOKEN}"
EXAMPLE_BY_MSG_TYPE = {"interactive": "request_card", "text": "request_text"}


class FakeFeishu(receivers.FakeFeishu):
    """The kit's Feishu bot for this test's token, answering from tests/fixtures/feishu at NOW."""

    def __init__(self, secret: str | None = None, force: str | None = None, ok: str = "response_ok") -> None:
        super().__init__(TOKEN, secret, ok, force=force, fixtures=FIXTURES, clock=SimulatedClock(NOW))


def send(server: ProviderServer | None, count: int = 1, **settings: Any) -> Delivery:
    config = FeishuSettings(webhook=server.url_for(PATH) if server else closed_port_url(PATH), **settings)
    clock = SimulatedClock(NOW)
    return deliver(lambda http: FeishuChannel("ops-feishu", config, http, clock), make_alerts(count))


def test_success_sends_a_card_naming_rule_and_parcel() -> None:
    with FakeFeishu() as server:
        delivery = send(server)
    assert delivery == SENT
    assert server.problems == []
    [request] = server.received
    card = request.body["card"]
    assert card["header"]["title"]["content"].endswith(RULE_NAMES["zh"]["pickup_overdue"])
    assert card["header"]["template"] == "red"  # the one alert is critical
    content = card["elements"][0]["text"]["content"]
    assert "SF100000000000" in content and not content.startswith("#")
    assert PHONE.findall(str(request.body)) == []


def test_text_message_and_the_older_status_code_reply() -> None:
    with FakeFeishu(ok="response_ok_legacy") as server:
        delivery = send(server, msg_type="text")
    assert delivery == SENT
    assert server.problems == []
    assert "SF100000000000" in server.received[0].body["content"]["text"]


def test_signed_request_is_verified_by_the_server() -> None:
    with FakeFeishu(secret=SECRET) as server:
        delivery = send(server, secret=SECRET)
    assert delivery == SENT
    assert server.problems == []
    assert server.received[0].body["timestamp"] == str(server.now_s)


def test_wrong_secret_is_rejected_by_the_server_and_given_up() -> None:
    with FakeFeishu(secret=SECRET) as server, capture_logs() as logs:
        delivery = send(server, secret="not-the-bot-secret")
    assert delivery == Delivery(
        sent=False,
        retryable=False,
        error="feishu code 19021: sign match fail or timestamp is not within one hour from current time",
    )
    assert [e["errcode"] for e in logs if e["event"] == "alert.channel_error"] == [19021]
    assert TOKEN not in str(logs) and SECRET not in str(logs) and "not-the-bot" not in str(logs)


@pytest.mark.parametrize("reply", ["response_rate_limited", "response_frequency_limited"])
def test_rate_limit_is_retried_later(reply: str) -> None:
    with FakeFeishu(force=reply) as server:
        delivery = send(server)
    assert (delivery.sent, delivery.retryable) == (False, True)


def test_bad_request_is_given_up() -> None:
    with FakeFeishu(force="response_bad_request") as server:
        delivery = send(server)
    assert delivery == Delivery(sent=False, retryable=False, error="feishu code 9499: Bad Request")


def test_bad_hook_token_is_given_up() -> None:
    with FakeFeishu() as server:
        config = FeishuSettings(webhook=server.url_for("/open-apis/bot/v2/hook/not-a-token"))
        clock = SimulatedClock(NOW)
        delivery = deliver(lambda http: FeishuChannel("f", config, http, clock), make_alerts(1))
    assert delivery == Delivery(
        sent=False, retryable=False, error="feishu code 19001: param invalid: incoming webhook access token invalid"
    )


def test_server_down_is_retried() -> None:
    delivery = send(None)
    assert (delivery.sent, delivery.retryable) == (False, True)
    assert TOKEN not in delivery.error


def test_server_error_is_retried() -> None:
    with FakeFeishu(force="response_server_error") as server:
        delivery = send(server)
    assert delivery == Delivery(sent=False, retryable=True, error="HTTP 503")


def test_a_digest_of_500_alerts_is_one_small_request() -> None:
    with FakeFeishu(secret=SECRET) as server:
        delivery = send(server, count=500, secret=SECRET)
    assert delivery == SENT
    assert len(server.received) == 1
    assert len(str(server.received[0].body).encode()) < 20 * 1024  # Feishu's limit on the request body


def test_settings_read_secrets_from_the_environment_and_hide_them() -> None:
    environ = {"FS_URL": f"https://open.feishu.cn{PATH}", "FS_SECRET": SECRET}
    settings = FeishuSettings.from_mapping({"webhook_env": "FS_URL", "secret_env": "FS_SECRET"}, environ)
    assert (settings.secret, settings.msg_type) == (SECRET, "interactive")
    assert TOKEN not in repr(settings) and SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"webhook_env": "FS_URL", "secret_env": "UNSET"}, "secret_env"),
        ({"webhook_env": "FS_URL", "msg_type": "post"}, "msg_type"),
        ({"webhook": f"ftp://open.feishu.cn{PATH}"}, "webhook"),
    ],
)
def test_bad_settings_name_the_key_without_leaking_the_token(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named) as err:
        FeishuSettings.from_mapping(raw, {"FS_URL": f"https://open.feishu.cn{PATH}"})
    assert TOKEN not in str(err.value)
