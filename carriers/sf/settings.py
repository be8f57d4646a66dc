"""Settings of the SF Express (顺丰, 丰桥 open platform) carrier: the partner code and its secret check word.

The check word never sits in the config file: ``check_word_env`` names the environment variable that
holds it, and it never shows in a repr. Endpoints are from SF's API overview (公共参数: 沙箱环境地址,
生产环境地址; SF also lists ``bspgw.sf-express.com`` for production); ``base_url`` overrides them
for a proxy or a test server. ``timeout_seconds`` (default 10) bounds each request and ``retries``
(default 3) is how often a failed call is tried again (see :mod:`carriers.retry`).

The fine print of two services. The route query (EXP_RECE_SEARCH_ROUTES) answers waybills that are
not on the account's monthly card only with ``checkPhoneNo``, the last four digits of the sender's or
the recipient's phone: ``sender_phone`` is the shop's own number as printed on its waybills (never a
buyer's), and its last four digits go with every query. 截单转寄 (EXP_RECE_WANTED_INTERCEPT) sends the
parcel to ``newDestAddress``: with ``intercept`` on (the default) ``return_address`` is required, so
``check-config`` and start-up refuse an account that could not intercept; ``intercept = false``
leaves intercepts to people (each one is answered "rejected" without calling SF).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from carriers.retry import DEFAULT_RETRIES, DEFAULT_TIMEOUT_SECONDS, RetryPolicy, retries_setting, timeout_setting

SANDBOX_URL = "https://sfapi-sbox.sf-express.com/std/service"
PRODUCTION_URL = "https://sfapi.sf-express.com/std/service"
BASE_URLS = {"sandbox": SANDBOX_URL, "production": PRODUCTION_URL}
#: 截单转寄 payMode values: 1 寄方现结, 2 收方现结, 3 寄付转第三方月结, 4 寄方月结.
PAY_MODES = frozenset({"1", "2", "3", "4"})
ADDRESS_KEYS = ("province", "city", "county", "address", "contact", "phone")
KNOWN_KEYS = frozenset(
    [
        "partner_id",
        "check_word_env",
        "environment",
        "base_url",
        "monthly_card_no",
        "intercept_pay_mode",
        "return_address",
        "timeout_seconds",
        "retries",
        "intercept",
        "sender_phone",
    ]
)
#: A phone as printed on a waybill: a mobile, a fixed line with its area code, or just its last four digits.
PHONE = re.compile(r"\d{4}|1\d{10}|0\d{2,3}-?\d{7,8}")


@dataclass(frozen=True, slots=True)
class ReturnAddress:
    """Where an intercepted parcel goes back to (the 截单转寄 ``newDestAddress``)."""

    province: str
    city: str
    county: str
    address: str
    contact: str
    phone: str = field(repr=False)

    def as_payload(self) -> dict[str, str]:
        """Return the address as SF's ``newDestAddress`` object."""
        return {key: getattr(self, key) for key in ADDRESS_KEYS}


@dataclass(frozen=True, slots=True)
class SFSettings:
    """One SF partner account: 顾客编码 (``partner_id``) and 校验码 (``check_word``, secret)."""

    partner_id: str
    check_word: str = field(repr=False)
    environment: str = "sandbox"
    base_url: str = SANDBOX_URL
    monthly_card_no: str = field(default="", repr=False)
    intercept_pay_mode: str = "1"
    return_address: ReturnAddress | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    retries: int = DEFAULT_RETRIES
    intercept: bool = True
    sender_phone: str | None = field(default=None, repr=False)

    @property
    def check_phone_no(self) -> str | None:
        """Return the route query's ``checkPhoneNo``: the last four digits of the shop's phone, or None."""
        return self.sender_phone[-4:] if self.sender_phone else None

    @property
    def retry_policy(self) -> RetryPolicy:
        """Return how each call is timed out and retried."""
        return RetryPolicy.from_settings(self.retries, self.timeout_seconds)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> SFSettings:
        """Build settings from the ``[carriers.sf]`` table, raising ``ValueError`` that names the bad key."""
        environ = environ or {}
        unknown = sorted(set(raw) - KNOWN_KEYS)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown sf setting (known: {', '.join(sorted(KNOWN_KEYS))})")
        partner_id = _text(raw, "partner_id", required=True)
        variable = _text(raw, "check_word_env", required=True)
        check_word = environ.get(variable, "")
        if not check_word:
            raise ValueError(f"check_word_env: environment variable {variable} is not set or empty")
        environment = raw.get("environment", "sandbox")
        if environment not in BASE_URLS:
            raise ValueError(f"environment: expected 'sandbox' or 'production', got {environment!r}")
        base_url = _text(raw, "base_url") or BASE_URLS[environment]
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url: expected an http(s) URL, got {base_url!r}")
        card = _text(raw, "monthly_card_no")
        if card and not (card.isdigit() and len(card) == 10):
            raise ValueError("monthly_card_no: expected SF's 10-digit monthly card number")
        pay_mode = _text(raw, "intercept_pay_mode") or ("4" if card else "1")
        if pay_mode not in PAY_MODES:
            raise ValueError(f"intercept_pay_mode: expected one of {sorted(PAY_MODES)}, got {pay_mode!r}")
        if pay_mode in ("3", "4") and not card:
            raise ValueError(f"intercept_pay_mode: {pay_mode} (monthly) needs monthly_card_no")
        intercept = raw.get("intercept", True)
        if not isinstance(intercept, bool):
            raise ValueError(f"intercept: expected true or false, got {intercept!r}")
        return_address = _address(raw.get("return_address"))
        if intercept and return_address is None:
            raise ValueError("return_address: required while intercept is on (SF's 截单转寄 sends the parcel to "
                             "newDestAddress): add [carriers.sf.return_address], or set intercept = false")  # fmt: skip
        return cls(
            partner_id=partner_id,
            check_word=check_word,
            environment=environment,
            base_url=base_url,
            monthly_card_no=card,
            intercept_pay_mode=pay_mode,
            return_address=return_address,
            timeout_seconds=timeout_setting(raw),
            retries=retries_setting(raw),
            intercept=intercept,
            sender_phone=_phone(raw),
        )


def _text(raw: Mapping[str, Any], key: str, *, required: bool = False, prefix: str = "") -> str:
    """Return ``raw[key]`` as a stripped string ('' when absent and not required)."""
    value = raw.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{prefix}{key}: expected a non-empty string, got {value!r}")
    return value.strip()


def _phone(raw: Mapping[str, Any]) -> str | None:
    """Read ``sender_phone``: digits of the shop's own phone (spaces and a dash allowed)."""
    value = raw.get("sender_phone")
    if value is None:
        return None
    if not isinstance(value, str) or not PHONE.fullmatch(value.replace(" ", "")):
        raise ValueError("sender_phone: expected the shop's phone (a mobile, an area code and number, "
                         "or its last four digits), as a string")  # fmt: skip
    return value.replace(" ", "").replace("-", "")


def _address(value: object) -> ReturnAddress | None:
    """Validate the optional ``return_address`` table."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"return_address: expected a table, got {value!r}")
    extra = sorted(set(value) - set(ADDRESS_KEYS))
    if extra:
        raise ValueError(f"return_address.{extra[0]}: unknown key (known: {', '.join(ADDRESS_KEYS)})")
    fields = {key: _text(value, key, required=True, prefix="return_address.") for key in ADDRESS_KEYS}
    return ReturnAddress(**fields)
