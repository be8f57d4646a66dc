"""Settings of the Kuaidi100 (快递100) adapter: credentials from the environment, never from the file.

``timeout_seconds`` (default 10) bounds each request and ``retries`` (default 3) is how often a failed
query is tried again (see :mod:`carriers.retry`). The key was called ``timeout`` before; that name is
refused with a message naming the new one, so an old config fails loudly instead of being ignored.

``sender_phone`` is the shop's own phone as printed on its waybills (a mobile, a fixed line, or
just its last four digits). Kuaidi100's 实时快递查询 (api.kuaidi100.com/document/5f0ffb5ebc8da837cbd8aefc)
needs ``phone`` — the sender's or the recipient's — for 顺丰速运, 顺丰快运 and 中通快递 numbers and
accepts the last four digits; the adapter sends those four for those companies only, never a buyer's.
An account whose ``company`` is SF's must set it, or every query would come back rejected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from carriers.retry import DEFAULT_RETRIES, DEFAULT_TIMEOUT_SECONDS, RetryPolicy, retries_setting, timeout_setting

DEFAULT_BASE_URL = "https://poll.kuaidi100.com"
#: Kuaidi100 company codes are lower-case letters and digits (yuantong, zhongtong, shunfeng, ems...).
COMPANY = re.compile(r"[a-z0-9]{2,40}")
#: Secrets are named by an environment variable (``key_env = "KUAIDI100_KEY"``), never written inline.
SECRETS = ("customer", "key", "salt", "push_token")
#: Shortest push token accepted: it is all that guards the push route when no salt is set.
MIN_PUSH_TOKEN = 16
PLAIN = ("company", "base_url", "callback_url", "timeout_seconds", "retries", "requests_per_second", "sender_phone")
#: Companies whose numbers Kuaidi100 queries only with a phone (shunfeng, shunfengkuaiyun: always refused without).
PHONE_COMPANIES = frozenset({"shunfeng", "shunfengkuaiyun", "zhongtong"})
MUST_HAVE_PHONE = frozenset({"shunfeng", "shunfengkuaiyun"})
#: A phone as written on a waybill: a mobile, a fixed line with its area code (no extension), or its last four digits.
PHONE = re.compile(r"\d{4}|1\d{10}|0\d{2,3}-?\d{7,8}")
RENAMED = {"timeout": "timeout_seconds"}
KNOWN = frozenset({f"{name}_env" for name in SECRETS} | set(PLAIN))


@dataclass(frozen=True, slots=True)
class Kuaidi100Settings:
    """One Kuaidi100 enterprise account; ``customer``, ``key`` and ``salt`` never show in a repr.

    ``company`` is the Kuaidi100 company code used for a plain tracking number; a number written
    ``<company>:<number>`` (``shunfeng:SF1234567890``) names its own. Pushes are accepted only when
    authenticated: ``salt`` makes Kuaidi100 sign each push (``sign = MD5(param + salt)``), and
    ``push_token`` is a secret the callback URL carries (``?token=``); with neither, pushes are off.
    """

    customer: str = field(repr=False)
    key: str = field(repr=False)
    company: str
    base_url: str = DEFAULT_BASE_URL
    callback_url: str | None = None
    salt: str | None = field(default=None, repr=False)
    push_token: str | None = field(default=None, repr=False)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    retries: int = DEFAULT_RETRIES
    requests_per_second: float = 10.0
    sender_phone: str | None = field(default=None, repr=False)

    def phone_for(self, company: str) -> str | None:
        """Return the ``phone`` to send for a number of ``company``: the sender phone's last four digits, or None."""
        if company not in PHONE_COMPANIES or not self.sender_phone:
            return None
        return self.sender_phone[-4:]

    @property
    def push_auth(self) -> str:
        """Say how pushes are authenticated, in words for ``check-config`` (no secret in it)."""
        ways = [w for w, on in (("signed with the salt", self.salt), ("token in the URL", self.push_token)) if on]
        if not ways:
            return "off (no salt_env or push_token_env: pushes are refused; queries only)"
        return "on (" + ", ".join(ways) + ")"

    @property
    def retry_policy(self) -> RetryPolicy:
        """Return how each query is timed out and retried."""
        return RetryPolicy.from_settings(self.retries, self.timeout_seconds)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], environ: Mapping[str, str]) -> Kuaidi100Settings:
        """Build settings from the ``[carriers.kuaidi100]`` table, naming the key of any bad value."""
        for name in raw:
            if name in RENAMED:
                raise ValueError(f"{name}: renamed to {RENAMED[name]}, got {raw[name]!r}")
            if name in SECRETS:
                raise ValueError(f"{name}: secrets are not written in the file; set {name}_env to a variable name")
            if name not in KNOWN:
                raise ValueError(f"unknown kuaidi100 setting {name!r} (known: {', '.join(sorted(KNOWN))})")
        company = raw.get("company")
        if not isinstance(company, str) or not COMPANY.fullmatch(company):
            raise ValueError(f"company: expected a Kuaidi100 company code such as 'zhongtong', got {company!r}")
        return cls(
            customer=_secret(raw, environ, "customer"),
            key=_secret(raw, environ, "key"),
            company=company,
            base_url=_url(raw, "base_url") or DEFAULT_BASE_URL,
            callback_url=_url(raw, "callback_url"),
            salt=_secret(raw, environ, "salt", required=False),
            push_token=_push_token(raw, environ),
            timeout_seconds=timeout_setting(raw),
            retries=retries_setting(raw),
            requests_per_second=_positive(raw, "requests_per_second", 10.0),
            sender_phone=_sender_phone(raw, company),
        )


def _sender_phone(raw: Mapping[str, Any], company: str) -> str | None:
    """Read the shop's sender phone; an SF account cannot query without one."""
    value = raw.get("sender_phone")
    if value is None:
        if company in MUST_HAVE_PHONE:
            raise ValueError(f"sender_phone: required when company is {company!r} (Kuaidi100 refuses SF numbers "
                             "without a phone; the shop's own number, or its last four digits)")  # fmt: skip
        return None
    if not isinstance(value, str) or not PHONE.fullmatch(value.replace(" ", "")):
        raise ValueError("sender_phone: expected the shop's phone (a mobile, an area code and number, "
                         "or its last four digits), as a string")  # fmt: skip
    return value.replace(" ", "").replace("-", "")


def _secret(raw: Mapping[str, Any], environ: Mapping[str, str], name: str, required: bool = True) -> str | None:
    """Read the secret ``name`` from the environment variable that ``<name>_env`` names."""
    key = f"{name}_env"
    variable = raw.get(key)
    if variable is None:
        if required:
            raise ValueError(f"{key}: required (the environment variable holding the Kuaidi100 {name})")
        return None
    if not isinstance(variable, str) or not variable:
        raise ValueError(f"{key}: expected an environment variable name, got {variable!r}")
    value = environ.get(variable)
    if not value:
        raise ValueError(f"{key}: environment variable {variable} is not set")
    return value


def _push_token(raw: Mapping[str, Any], environ: Mapping[str, str]) -> str | None:
    """Read the push token, refusing one short enough to guess."""
    token = _secret(raw, environ, "push_token", required=False)
    if token is not None and len(token) < MIN_PUSH_TOKEN:
        raise ValueError(f"push_token_env: the token must be at least {MIN_PUSH_TOKEN} characters")
    return token


def _url(raw: Mapping[str, Any], key: str) -> str | None:
    """Return an http(s) URL without a trailing slash, or None when the key is absent."""
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ValueError(f"{key}: expected an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _positive(raw: Mapping[str, Any], key: str, default: float) -> float:
    """Return a positive number of seconds or requests."""
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{key}: expected a positive number, got {value!r}")
    return float(value)
