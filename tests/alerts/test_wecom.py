"""The WeCom channel against a local server that checks the webhook key and payload as WeCom does.

WeCom group robots have no signing: the key in the URL is the whole credential, so the
"signature" cases here are the key being checked, and a wrong key being refused for good.
"""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from monitor.alerts.channels.wecom import WeComChannel, WeComSettings, fit
from monitor.alerts.messages import RULE_NAMES
from monitor.alerts.model import SENT, Delivery
from monitor.clock import SimulatedClock
from monitor.testing import receivers
from monitor.testing.receivers import Receiver as ProviderServer
from tests.alerts.fakes import FIXTURES, NOW, PHONE, closed_port_url, deliver, make_alerts

KEY = "693a91f6-7b2c-4bc4-97a0-0ec2a1fa5aaa"
PATH = "/cgi-bin/webhook/send"
STAFF = "13800001111"
LINK_BASE = "https://parcel-monitor.ops.example.com/console/east-china"  # long enough to overflow a text message
MENTIONS = frozenset({"mentioned_list", "mentioned_mobile_list"})


class FakeWeCom(receivers.FakeWeCom):
    """The kit's WeCom robot for this test's key, answering from tests/fixtures/wecom."""

    def __init__(self, force: str | None = None) -> None:
        super().__init__(KEY, force=force, fixtures=FIXTURES)


def send(
    server: ProviderServer | None, count: int = 1, key: str = KEY, link_base: str = "", **settings: Any
) -> Delivery:
    path = f"{PATH}?key={key}"
    config = WeComSettings(webhook=server.url_for(path) if server else closed_port_url(path), **settings)
    clock = SimulatedClock(NOW)
    return deliver(lambda http: WeComChannel("ops-wecom", config, http, clock, "zh", link_base), make_alerts(count))


def test_success_sends_markdown_naming_rule_and_parcel_with_userid_mentions() -> None:
    with FakeWeCom() as server:
        delivery = send(server, mention_userids=("zhangsan",))
    assert delivery == SENT
    assert server.problems == []
    [request] = server.received
    content = request.body["markdown"]["content"]
    assert RULE_NAMES["zh"]["pickup_overdue"] in content and "SF100000000000" in content
    assert content.endswith("<@zhangsan>")
    assert PHONE.findall(str(request.body)) == []


def test_mobile_mentions_switch_to_one_text_message() -> None:
    with FakeWeCom() as server:
        delivery = send(server, 40, link_base=LINK_BASE, mention_userids=("zhangsan",), mention_mobiles=(STAFF,))
    assert delivery == SENT
    assert server.problems == []  # includes the 2048-byte limit of text content
    [request] = server.received
    assert request.body["msgtype"] == "text"
    assert request.body["text"]["mentioned_mobile_list"] == [STAFF]
    assert request.body["text"]["mentioned_list"] == ["zhangsan"]
    assert request.body["text"]["content"].endswith("\n…")  # cut to fit, at a line boundary
    assert set(PHONE.findall(str(request.body))) <= {STAFF}


def test_key_is_checked_and_a_wrong_key_is_given_up() -> None:
    with FakeWeCom() as server, capture_logs() as logs:
        delivery = send(server, key="00000000-0000-0000-0000-000000000000")
    assert (delivery.sent, delivery.retryable) == (False, False)
    assert delivery.error.startswith("wecom errcode 93000: invalid webhook url")
    assert [e["errcode"] for e in logs if e["event"] == "alert.channel_error"] == [93000]
    assert KEY not in str(logs)


def test_rate_limit_is_retried_later() -> None:
    with FakeWeCom(force="response_rate_limited") as server:
        delivery = send(server)
    assert (delivery.sent, delivery.retryable) == (False, True)
    assert delivery.error.startswith("wecom errcode 45009: api freq out of limit")


def test_server_down_is_retried() -> None:
    delivery = send(None)
    assert (delivery.sent, delivery.retryable) == (False, True)
    assert KEY not in delivery.error


def test_server_error_is_retried() -> None:
    with FakeWeCom(force="response_server_error") as server:
        delivery = send(server)
    assert delivery == Delivery(sent=False, retryable=True, error="HTTP 500")


def test_a_digest_of_500_alerts_is_one_request_within_the_size_limit() -> None:
    with FakeWeCom() as server:
        delivery = send(server, count=500, link_base=LINK_BASE, mention_userids=("zhangsan",))
    assert delivery == SENT
    assert len(server.received) == 1
    assert server.problems == []


def test_fit_cuts_at_a_line_and_never_splits_a_character() -> None:
    content = "\n".join(f"- 物流停滞 SF{i:012d}" for i in range(400))
    cut = fit(content, 2048)
    assert len(cut.encode()) <= 2048
    assert cut.endswith("\n…")
    assert all(line.startswith("- 物流停滞 SF") for line in cut.split("\n")[:-1])
    assert fit("short", 2048) == "short"


def test_settings_read_the_webhook_from_the_environment_and_hide_it() -> None:
    environ = {"WECOM_URL": f"https://qyapi.weixin.qq.com{PATH}?key={KEY}"}
    settings = WeComSettings.from_mapping({"webhook_env": "WECOM_URL", "mention_mobiles": [STAFF]}, environ)
    assert settings.mention_mobiles == (STAFF,)
    assert KEY not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({}, "webhook"),
        ({"webhook_env": "WECOM_URL", "webhook": "https://qyapi.weixin.qq.com"}, "webhook"),
        ({"webhook": "https://qyapi.weixin.qq.com/x", "mention_userids": ["<bad id>"]}, "mention_userids"),
        ({"webhook": "https://qyapi.weixin.qq.com/x", "mention_mobiles": ["call me"]}, "mention_mobiles"),
    ],
)
def test_bad_settings_name_the_key(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        WeComSettings.from_mapping(raw, {"WECOM_URL": f"https://qyapi.weixin.qq.com{PATH}?key={KEY}"})
