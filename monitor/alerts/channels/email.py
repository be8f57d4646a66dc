"""The email channel: one text-and-HTML message per notify, over SMTP submission with STARTTLS and AUTH.

stdlib ``smtplib`` runs in a worker thread so the event loop never blocks on the mail server.
SMTP reply codes decide the verdict (RFC 5321 §4.2.1): 4xx is transient, so retry; 5xx is
permanent (535 bad credentials, 550 mailbox refused), so give up. No connection, a timeout or a
dropped session is retried. Credentials are never sent in clear to a host other than loopback.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import re
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

import structlog

from monitor.alerts.channels._http import credential
from monitor.alerts.messages import Message, render
from monitor.alerts.model import SENT, Alert, Delivery
from monitor.clock import Clock

log = structlog.get_logger("monitor.alerts.channels.email")

BOLD = re.compile(r"\*\*(.+?)\*\*")
LINK = re.compile(r"\[(.*)\]\((https?://[^\s)]+)\)")  # one link per line, whose text may hold brackets


def require(ok: bool, key: str, expected: str, got: object) -> None:
    """Raise a ValueError naming ``key`` and the bad value unless ``ok``."""
    if not ok:
        raise ValueError(f"{key}: expected {expected}, got {got!r}")


def address(value: Any, key: str) -> str:
    """Return ``value`` if it is a plain mail address, else raise naming ``key``."""
    plain = parseaddr(value)[1] if isinstance(value, str) else ""
    require("@" in plain and plain == value, key, "a mail address like ops@example.com", value)
    return plain


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` is this machine, where a password in clear never crosses a network."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """Which server to submit to, as whom, and to whom; the password never shows in a repr."""

    host: str
    from_addr: str
    to_addrs: tuple[str, ...]
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True
    timeout: float = 30.0
    #: A PEM file of CAs to trust besides the system's (an internal mail server's CA).
    ca_file: str | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], environ: Mapping[str, str]) -> EmailSettings:
        """Build from a channel's config table: host, port, username, password_env, starttls, from_addr, to_addrs."""
        host, port, username = raw.get("host"), raw.get("port", 587), raw.get("username")
        starttls, to_addrs = raw.get("starttls", True), raw.get("to_addrs")
        require(isinstance(host, str) and bool(host), "host", "the SMTP server's name", host)
        require(type(port) is int and 0 < port < 65536, "port", "a TCP port number", port)
        require(username is None or (isinstance(username, str) and bool(username)), "username", "a name", username)
        require(isinstance(starttls, bool), "starttls", "true or false", starttls)
        clear_ok = username is None or starttls or is_loopback(host)
        require(clear_ok, "starttls", "true, as false sends the password in clear (allowed on loopback only)", starttls)
        require(isinstance(to_addrs, list | tuple) and bool(to_addrs), "to_addrs", "a list of mail addresses", to_addrs)
        ca_file = raw.get("ca_file")
        ca_ok = ca_file is None or (isinstance(ca_file, str) and Path(ca_file).is_file())
        require(ca_ok, "ca_file", "a PEM file of CA certificates", ca_file)
        return cls(
            host=host,
            port=port,
            username=username,
            password=credential(raw, environ, "password", required=username is not None),
            starttls=starttls,
            from_addr=address(raw.get("from_addr"), "from_addr"),
            to_addrs=tuple(address(a, "to_addrs") for a in to_addrs),
            ca_file=ca_file,
        )


def inline(text: str) -> str:
    """Escape one line for HTML, then turn ``**bold**`` and ``[text](url)`` into tags."""
    text = BOLD.sub(r"<strong>\1</strong>", html.escape(text))
    return LINK.sub(r'<a href="\2">\1</a>', text)


def to_html(markdown: str) -> str:
    """Convert the Markdown that ``render`` writes (a heading, bold, a bullet list of links) to HTML."""
    out: list[str] = []
    in_list = False
    for line in markdown.splitlines():
        if line.startswith("- ") != in_list:
            in_list = not in_list
            out.append("<ul>" if in_list else "</ul>")
        if in_list:
            out.append(f"<li>{inline(line[2:])}</li>")
        elif line.startswith("### "):
            out.append(f"<h3>{inline(line[4:])}</h3>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    if in_list:
        out.append("</ul>")
    return '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n' + "\n".join(out) + "\n</body></html>\n"


def judge(err: OSError) -> tuple[int | None, bool, str]:
    """Return (SMTP code, retryable, error) for a failed submission: 4xx retries, 5xx and misconfiguration give up."""
    if isinstance(err, smtplib.SMTPRecipientsRefused):  # every recipient refused
        codes = sorted({code for code, _ in err.recipients.values()})
        return codes[0], any(400 <= c < 500 for c in codes), f"smtp: all recipients refused {codes}"
    if isinstance(err, smtplib.SMTPResponseException):  # greeting, auth, sender, data: the server's code decides
        reply = err.smtp_error.decode(errors="replace") if isinstance(err.smtp_error, bytes) else str(err.smtp_error)
        return err.smtp_code, 400 <= err.smtp_code < 500, f"smtp {err.smtp_code}: {' '.join(reply.split())}"
    if isinstance(err, smtplib.SMTPNotSupportedError):  # e.g. no STARTTLS offered: configuration, not bad luck
        return None, False, f"smtp: {err}"
    if isinstance(err, ssl.SSLCertVerificationError):
        return None, False, f"smtp: server certificate not trusted ({err.verify_message})"
    return None, True, f"smtp: {type(err).__name__}"  # refused, timed out, disconnected, TLS broken


class EmailChannel:
    """Mail alerts to ops staff as one message, saying whether a failure is worth retrying."""

    def __init__(
        self, name: str, settings: EmailSettings, clock: Clock, language: str = "zh", link_base: str = ""
    ) -> None:
        self.name = name
        self.settings = settings
        self.clock = clock
        self.language = language
        self.link_base = link_base
        self._sent = 0

    async def notify(self, alerts: Sequence[Alert]) -> Delivery:
        """Render ``alerts`` as one message and submit it once."""
        message = self.message(render(alerts, self.language, self.link_base))
        try:
            refused = await asyncio.to_thread(self.submit, message)
        except OSError as err:  # every smtplib error is an OSError, as are refused connections and timeouts
            status, retryable, error = judge(err)
            log.warning("alert.channel_error", channel=self.name, status=status, error=error, retryable=retryable)
            return Delivery(sent=False, retryable=retryable, error=error)
        if refused:  # some recipients took it: sent, since a retry would mail the others twice
            log.warning("alert.channel_partial", channel=self.name, refused=len(refused))
        return SENT

    def message(self, rendered: Message) -> EmailMessage:
        """Build a UTF-8 multipart/alternative message: plain text first, then the HTML rendering."""
        message = EmailMessage()
        message["Subject"] = rendered.title
        message["From"] = self.settings.from_addr
        message["To"] = ", ".join(self.settings.to_addrs)
        message["Date"] = format_datetime(self.clock.now())
        # Unique without randomness (a random id can look like a phone number to a filter):
        # the simulated or real time in microseconds plus a per-channel counter.
        self._sent += 1
        stamp = int(self.clock.now().timestamp() * 1_000_000)
        message["Message-ID"] = f"<pm.{stamp}.{self._sent}@{self.settings.from_addr.rpartition('@')[2]}>"
        # base64, not 8bit: smtplib never declares BODY=8BITMIME (RFC 6152) for ASCII addresses,
        # and a server that did not offer it may mangle raw UTF-8; encoded, any server carries it
        message.set_content(rendered.text, charset="utf-8", cte="base64")
        message.add_alternative(to_html(rendered.markdown), subtype="html", charset="utf-8", cte="base64")
        return message

    def submit(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """Connect, upgrade to TLS, log in and send; return the recipients the server refused (blocking)."""
        s = self.settings
        with smtplib.SMTP(s.host, s.port, timeout=s.timeout) as smtp:
            if s.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=s.ca_file))
            if s.username is not None:
                smtp.login(s.username, s.password or "")
            return smtp.send_message(message, s.from_addr, list(s.to_addrs))
