"""Settings and plugin metadata of the ZTO adapter: secrets from the environment, errors naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from carriers.adapter import INTERCEPT, TRACK, CarrierAdapter, SupportsIntercept
from carriers.testing.zto import APP_KEY, APP_SECRET
from carriers.zto import INFO, ZTOCarrier
from carriers.zto.settings import PRODUCTION_URL, SANDBOX_URL, ZTOSettings

ENV = {"ZTO_APP_KEY": APP_KEY, "ZTO_APP_SECRET": APP_SECRET}
BASE = {"app_key_env": "ZTO_APP_KEY", "app_secret_env": "ZTO_APP_SECRET"}
ROOT = Path(__file__).parents[3]


def test_sandbox_is_the_default_and_the_credentials_come_from_the_environment() -> None:
    settings = ZTOSettings.from_mapping(BASE, ENV)
    assert settings.base_url == SANDBOX_URL == "https://japi-test.zto.com"
    assert (settings.app_key, settings.app_secret) == (APP_KEY, APP_SECRET)
    assert (settings.timeout_seconds, settings.retries, settings.customer_id) == (10.0, 3, "")
    assert settings.retry_policy.attempts == 4
    assert (
        settings.url("zto.merchant.waybill.track.query") == "https://japi-test.zto.com/zto.merchant.waybill.track.query"
    )


def test_production_and_options() -> None:
    raw = {**BASE, "environment": "production", "customer_id": "GPG1576724269", "timeout_seconds": 4, "retries": 1}
    settings = ZTOSettings.from_mapping(raw, ENV)
    assert settings.base_url == PRODUCTION_URL == "https://japi.zto.com"
    assert (settings.customer_id, settings.timeout_seconds, settings.retries) == ("GPG1576724269", 4.0, 1)
    assert ZTOSettings.from_mapping({**BASE, "base_url": "http://127.0.0.1:9/"}, ENV).base_url == "http://127.0.0.1:9"


def test_secrets_never_show_in_a_repr() -> None:
    text = repr(ZTOSettings.from_mapping(BASE, ENV))
    assert APP_SECRET not in text
    assert APP_KEY not in text
    assert "japi-test.zto.com" in text


@pytest.mark.parametrize(
    ("raw", "environ", "key"),
    [
        ({"app_secret_env": "ZTO_APP_SECRET"}, ENV, "app_key_env"),
        ({"app_key_env": "ZTO_APP_KEY"}, ENV, "app_secret_env"),
        ({**BASE, "app_secret_env": ""}, ENV, "app_secret_env"),
        ({**BASE, "app_secret_env": 7}, ENV, "app_secret_env"),
        (BASE, {"ZTO_APP_KEY": APP_KEY}, "app_secret_env"),
        (BASE, {**ENV, "ZTO_APP_SECRET": ""}, "app_secret_env"),
        ({**BASE, "app_secret": APP_SECRET}, ENV, "app_secret"),
        ({**BASE, "app_key": APP_KEY}, ENV, "app_key"),
        ({**BASE, "environment": "prod"}, ENV, "environment"),
        ({**BASE, "base_url": "ftp://japi.zto.com"}, ENV, "base_url"),
        ({**BASE, "customer_id": ""}, ENV, "customer_id"),
        ({**BASE, "timeout_seconds": 0}, ENV, "timeout_seconds"),
        ({**BASE, "timeout_seconds": "10"}, ENV, "timeout_seconds"),
        ({**BASE, "retries": -1}, ENV, "retries"),
        ({**BASE, "retries": True}, ENV, "retries"),
        ({**BASE, "colour": "red"}, ENV, "colour"),
    ],
)
def test_bad_settings_name_the_key(raw: dict[str, Any], environ: dict[str, str], key: str) -> None:
    with pytest.raises(ValueError) as caught:
        ZTOSettings.from_mapping(raw, environ)
    assert str(caught.value).startswith(f"{key}:")
    assert APP_SECRET not in str(caught.value)


@pytest.mark.parametrize(("key", "value"), [("timeout_seconds", -2.5), ("retries", 2.0)])
def test_a_bad_timeout_or_retries_names_the_value_too(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{key}: .*{value!r}"):
        ZTOSettings.from_mapping({**BASE, key: value}, ENV)


def test_the_plugin_metadata() -> None:
    assert INFO.code == "zto"
    assert INFO.label == "中通快递 ZTO Express"
    assert INFO.capabilities == frozenset({TRACK, INTERCEPT})
    assert INFO.settings_type is ZTOSettings
    assert INFO.timezone == "Asia/Shanghai"


def test_the_factory_builds_an_adapter_from_the_service_context() -> None:
    carrier = INFO.factory(BASE, {"clock": None, "http": httpx.AsyncClient(), "environ": ENV})
    assert isinstance(carrier, ZTOCarrier)
    assert isinstance(carrier, CarrierAdapter)
    assert isinstance(carrier, SupportsIntercept)
    assert carrier.code == "zto"
    assert carrier.limits.batch_size == 1
    assert 0 < carrier.limits.requests_per_second <= 10


def test_the_adapter_imports_nothing_from_monitor_nor_a_web_framework() -> None:
    code = (
        "import sys, carriers.zto, carriers.retry; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "{'monitor', 'fastapi', 'starlette', 'django', 'flask', 'sqlmodel', 'sqlalchemy'}]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
