"""The email channel against a real local SMTP server (aiosmtpd) that requires AUTH and records what it gets.

No TLS library is installed to make a certificate, so the server offers no STARTTLS: these tests run
with ``starttls=False`` and AUTH over plain text on 127.0.0.1, plus one test that a channel told to
use STARTTLS refuses to log in to a server that does not offer it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from carriers.testing.server import closed_port
from monitor.alerts.channels.email import EmailChannel, EmailSettings, to_html
from monitor.alerts.messages import RULE_NAMES, Message
from monitor.alerts.model import SENT, Delivery
from monitor.clock import SimulatedClock
from monitor.testing.smtp import LocalSMTP, MailRecorder
from tests.alerts.fakes import NOW, PHONE, make_alerts

USER = "alerts@shop.example.com"
PASSWORD = "pw-7Kq2xV9mZ3"
TO = ("ops@shop.example.com", "oncall@shop.example.com")
LINK_BASE = "https://monitor.example.com"


@pytest.fixture
def recorder() -> MailRecorder:
    return MailRecorder()


@pytest.fixture
def smtp(recorder: MailRecorder) -> Iterator[LocalSMTP]:
    server = LocalSMTP(recorder, USER, PASSWORD)
    server.start()
    yield server
    server.stop()


def settings(server: LocalSMTP | None, **changes: Any) -> EmailSettings:
    port = server.port if server else closed_port()
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "username": USER,
        "password": PASSWORD,
        "starttls": False,
        "from_addr": USER,
        "to_addrs": TO,
        "timeout": 5.0,
    }
    return EmailSettings(**(values | changes))


def send(config: EmailSettings, count: int = 1, language: str = "zh") -> Delivery:
    channel = EmailChannel("ops-mail", config, SimulatedClock(NOW), language, LINK_BASE)
    return asyncio.run(channel.notify(make_alerts(count)))


def test_success_sends_one_utf8_text_and_html_message_to_every_recipient(
    smtp: LocalSMTP, recorder: MailRecorder
) -> None:
    assert send(settings(smtp)) == SENT
    [(envelope, message)] = recorder.messages
    assert (envelope.mail_from, envelope.rcpt_tos) == (USER, list(TO))
    rule = RULE_NAMES["zh"]["pickup_overdue"]
    assert message["Subject"] == f"[严重] {rule}"
    assert message["Date"] == "Wed, 11 Nov 2026 02:30:00 +0000"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert rule in text.get_content() and "SF100000000000" in text.get_content()
    assert f'<a href="{LINK_BASE}/api/v1/parcels/SF/SF100000000000">[严重] {rule}' in html.get_content()
    assert "<strong>赔付风险: ¥5.00</strong>" in html.get_content()
    assert PHONE.findall(text.get_content() + html.get_content()) == []


def test_wrong_password_is_refused_with_535_and_given_up_without_logging_it(
    smtp: LocalSMTP, recorder: MailRecorder
) -> None:
    with capture_logs() as logs:
        delivery = send(settings(smtp, password="not-the-password"))
    assert (delivery.sent, delivery.retryable) == (False, False)
    assert delivery.error.startswith("smtp 535")
    assert [(e["status"], e["retryable"]) for e in logs if e["event"] == "alert.channel_error"] == [(535, False)]
    assert "not-the-password" not in str(logs) and PASSWORD not in str(logs)
    assert recorder.messages == []


def test_recipient_refused_with_550_is_given_up(smtp: LocalSMTP, recorder: MailRecorder) -> None:
    recorder.rcpt_reply = "550 5.1.1 No such mailbox"
    assert send(settings(smtp)) == Delivery(sent=False, retryable=False, error="smtp: all recipients refused [550]")


def test_recipient_deferred_with_450_is_retried(smtp: LocalSMTP, recorder: MailRecorder) -> None:
    recorder.rcpt_reply = "450 4.2.1 Mailbox busy, try later"
    assert send(settings(smtp)) == Delivery(sent=False, retryable=True, error="smtp: all recipients refused [450]")


def test_data_deferred_with_451_is_retried(smtp: LocalSMTP, recorder: MailRecorder) -> None:
    recorder.data_reply = "451 4.3.0 Local error in processing"
    assert send(settings(smtp)) == Delivery(
        sent=False, retryable=True, error="smtp 451: 4.3.0 Local error in processing"
    )


def test_starttls_required_but_not_offered_gives_up_before_sending_the_password(
    smtp: LocalSMTP, recorder: MailRecorder
) -> None:
    delivery = send(settings(smtp, starttls=True))
    assert (delivery.sent, delivery.retryable) == (False, False)
    assert "STARTTLS" in delivery.error
    assert recorder.messages == []


def test_without_login_the_server_refuses_and_it_is_given_up(smtp: LocalSMTP, recorder: MailRecorder) -> None:
    delivery = send(settings(smtp, username=None, password=None))
    assert delivery == Delivery(sent=False, retryable=False, error="smtp: all recipients refused [530]")
    assert recorder.messages == []


def test_server_down_is_retried() -> None:
    assert send(settings(None)) == Delivery(sent=False, retryable=True, error="smtp: ConnectionRefusedError")


def test_a_digest_of_500_alerts_is_one_message(smtp: LocalSMTP, recorder: MailRecorder) -> None:
    assert send(settings(smtp), count=500, language="en") == SENT
    [(_, message)] = recorder.messages
    assert message["Subject"].startswith("Parcel alerts (500)")
    assert PHONE.findall(message.as_string()) == []


def test_html_is_escaped_and_keeps_only_what_render_writes() -> None:
    page = to_html("### a <b>\n**x & y**\n- [[W] s](https://e.example/p?a=1&b=2)\n- plain\nafter")
    assert "<h3>a &lt;b&gt;</h3>" in page and "<p><strong>x &amp; y</strong></p>" in page
    assert (
        '<ul>\n<li><a href="https://e.example/p?a=1&amp;b=2">[W] s</a></li>\n<li>plain</li>\n</ul>\n<p>after</p>'
        in page
    )


def test_settings_read_the_password_from_the_environment_and_hide_it() -> None:
    raw = {
        "host": "smtp.example.com",
        "username": USER,
        "password_env": "SMTP_PW",
        "from_addr": USER,
        "to_addrs": list(TO),
    }
    config = EmailSettings.from_mapping(raw, {"SMTP_PW": PASSWORD})
    assert (config.port, config.starttls, config.password, config.to_addrs) == (587, True, PASSWORD, TO)
    assert PASSWORD not in repr(config)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"host": ""}, "host"),
        ({"port": "587"}, "port"),
        ({"port": True}, "port"),
        ({"starttls": "yes"}, "starttls"),
        ({"starttls": False}, "starttls"),  # a password in clear to a remote host
        ({"password_env": "MISSING"}, "password_env"),
        ({"from_addr": "alerts"}, "from_addr"),
        ({"to_addrs": []}, "to_addrs"),
        ({"to_addrs": ["ops@shop.example.com", "Ops <x"]}, "to_addrs"),
    ],
)
def test_bad_settings_name_the_key_without_leaking_the_password(changes: dict[str, Any], named: str) -> None:
    raw = {"host": "smtp.example.com", "username": USER, "password": PASSWORD, "from_addr": USER, "to_addrs": list(TO)}
    with pytest.raises(ValueError, match=named) as err:
        EmailSettings.from_mapping(raw | changes, {})
    assert PASSWORD not in str(err.value)


def test_plain_text_auth_is_allowed_on_loopback_only() -> None:
    raw = {
        "host": "127.0.0.1",
        "username": USER,
        "password": PASSWORD,
        "starttls": False,
        "from_addr": USER,
        "to_addrs": [TO[0]],
    }
    assert EmailSettings.from_mapping(raw, {}).starttls is False


def test_an_8bit_body_is_never_sent_undeclared(smtp: LocalSMTP, recorder: MailRecorder) -> None:
    """RFC 6152: raw UTF-8 needs BODY=8BITMIME, which smtplib does not declare; so the parts are encoded."""
    channel = EmailChannel("ops-mail", settings(smtp), SimulatedClock(NOW), "zh", LINK_BASE)
    short_lines = "旗舰店\n24小时未揽收\nSF100000000000\n"  # short UTF-8 lines: what the email package sends as 8bit
    channel.submit(channel.message(Message(title="[严重] 24小时未揽收", markdown=short_lines, text=short_lines)))
    [(envelope, message)] = recorder.messages
    declared = "BODY=8BITMIME" in [option.upper() for option in envelope.mail_options]
    assert declared or envelope.original_content.isascii()
    text = message.get_body(("plain",))
    assert text is not None and text.get_content() == short_lines
