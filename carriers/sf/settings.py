"""Settings of the SF Express (顺丰, 丰桥 open platform) carrier: the partner code and its secret check word.

The check word never sits in the config file: ``check_word_env`` names the environment variable that
holds it, and it never shows in a repr. Endpoints are from SF's API overview (公共参数: 沙箱环境地址,
生产环境地址; SF also lists ``bspgw.sf-express.com`` for production); ``base_url`` overrides them
for a proxy or a test server. ``timeout_seconds`` (default 10) bounds each request and ``retries``
(default 3) is how often a failed call is tried again (see :mod:`carriers.retry`).
"""

from __future__ import annotations

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
    ]
)


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
        return cls(
            partner_id=partner_id,
            check_word=check_word,
            environment=environment,
            base_url=base_url,
            monthly_card_no=card,
            intercept_pay_mode=pay_mode,
            return_address=_address(raw.get("return_address")),
            timeout_seconds=timeout_setting(raw),
            retries=retries_setting(raw),
        )


def _text(raw: Mapping[str, Any], key: str, *, required: bool = False, prefix: str = "") -> str:
    """Return ``raw[key]`` as a stripped string ('' when absent and not required)."""
    value = raw.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{prefix}{key}: expected a non-empty string, got {value!r}")
    return value.strip()


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
