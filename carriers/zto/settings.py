"""Settings of the ZTO Express (中通, ZOP open platform) carrier: the app key and its secret.

Both credentials come from the environment (``app_key_env``, ``app_secret_env`` name the variables),
never from the config file, and neither shows in a repr. Endpoints are the ZOP gateway hosts of the
platform's 接口地址 section (测试环境 ``japi-test.zto.com``, 正式环境 ``japi.zto.com``); the API name
is appended as the path (``/zto.merchant.waybill.track.query``). ``base_url`` overrides the host for
a proxy or a test server. ``customer_id`` (集团客户编码) is sent with intercepts when set.
``timeout_seconds`` (default 10) bounds each request; ``retries`` (default 3) is how often a failed
call is tried again (see :mod:`carriers.retry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from carriers.retry import DEFAULT_RETRIES, DEFAULT_TIMEOUT_SECONDS, RetryPolicy, retries_setting, timeout_setting

SANDBOX_URL = "https://japi-test.zto.com"
PRODUCTION_URL = "https://japi.zto.com"
BASE_URLS = {"sandbox": SANDBOX_URL, "production": PRODUCTION_URL}
#: Written inline these would leak into the file: each is named by ``<name>_env`` instead.
SECRETS = ("app_key", "app_secret")
KNOWN_KEYS = frozenset(
    {"app_key_env", "app_secret_env", "environment", "base_url", "customer_id", "timeout_seconds", "retries"}
)


@dataclass(frozen=True, slots=True)
class ZTOSettings:
    """One ZOP application: ``app_key`` (sent as ``x-appKey``) and ``app_secret`` (signs every body)."""

    app_key: str = field(repr=False)
    app_secret: str = field(repr=False)
    environment: str = "sandbox"
    base_url: str = SANDBOX_URL
    customer_id: str = ""
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    retries: int = DEFAULT_RETRIES

    @property
    def retry_policy(self) -> RetryPolicy:
        """Return how each call is timed out and retried."""
        return RetryPolicy.from_settings(self.retries, self.timeout_seconds)

    def url(self, api: str) -> str:
        """Return the gateway URL of one ZOP API, e.g. ``…/zto.merchant.waybill.track.query``."""
        return f"{self.base_url}/{api}"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> ZTOSettings:
        """Build settings from the ``[carriers.zto]`` table, raising ``ValueError`` that names the bad key."""
        environ = environ or {}
        for name in sorted(raw):
            if name in SECRETS:
                raise ValueError(f"{name}: secrets are not written in the file; set {name}_env to a variable name")
            if name not in KNOWN_KEYS:
                raise ValueError(f"{name}: unknown zto setting (known: {', '.join(sorted(KNOWN_KEYS))})")
        environment = raw.get("environment", "sandbox")
        if environment not in BASE_URLS:
            raise ValueError(f"environment: expected 'sandbox' or 'production', got {environment!r}")
        base_url = _text(raw, "base_url") or BASE_URLS[environment]
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url: expected an http(s) URL, got {base_url!r}")
        return cls(
            app_key=_secret(raw, environ, "app_key"),
            app_secret=_secret(raw, environ, "app_secret"),
            environment=environment,
            base_url=base_url.rstrip("/"),
            customer_id=_text(raw, "customer_id"),
            timeout_seconds=timeout_setting(raw),
            retries=retries_setting(raw),
        )


def _text(raw: Mapping[str, Any], key: str) -> str:
    """Return ``raw[key]`` stripped, or '' when absent."""
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key}: expected a non-empty string, got {value!r}")
    return value.strip()


def _secret(raw: Mapping[str, Any], environ: Mapping[str, str], name: str) -> str:
    """Read the credential ``name`` from the environment variable that ``<name>_env`` names."""
    key = f"{name}_env"
    variable = raw.get(key)
    if not isinstance(variable, str) or not variable.strip():
        raise ValueError(f"{key}: expected the name of the environment variable with the ZOP {name}, got {variable!r}")
    value = environ.get(variable.strip(), "")
    if not value:
        raise ValueError(f"{key}: environment variable {variable.strip()} is not set or empty")
    return value
