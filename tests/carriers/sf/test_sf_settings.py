"""Settings and plugin metadata of the SF adapter: secrets from the environment, errors naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from carriers.adapter import INTERCEPT, TRACK, CarrierAdapter, SupportsIntercept
from carriers.sf import INFO, SFCarrier
from carriers.sf.settings import PRODUCTION_URL, SANDBOX_URL, SFSettings
from carriers.testing.clock import FixedClock
from carriers.testing.sf import CHECK_WORD, RETURN_ADDRESS

ENV = {"SF_CHECK_WORD": CHECK_WORD}
BASE = {"partner_id": "QIAO_TEST_0001", "check_word_env": "SF_CHECK_WORD", "return_address": RETURN_ADDRESS}
ROOT = Path(__file__).parents[3]


def test_sandbox_is_the_default_and_the_secret_comes_from_the_environment() -> None:
    settings = SFSettings.from_mapping(BASE, ENV)
    assert settings.base_url == SANDBOX_URL == "https://sfapi-sbox.sf-express.com/std/service"
    assert settings.check_word == CHECK_WORD
    assert CHECK_WORD not in repr(settings)
    assert settings.intercept_pay_mode == "1"
    assert (settings.timeout_seconds, settings.retries) == (10.0, 3)
    assert settings.retry_policy.attempts == 4
    assert settings.retry_policy.timeout == 10.0


def test_timeout_and_retries_are_optional_settings() -> None:
    settings = SFSettings.from_mapping({**BASE, "timeout_seconds": 2.5, "retries": 0}, ENV)
    assert (settings.timeout_seconds, settings.retries) == (2.5, 0)
    assert settings.retry_policy.attempts == 1


def test_production_and_intercept_options() -> None:
    raw = {
        **BASE,
        "environment": "production",
        "monthly_card_no": "7551234567",
        "return_address": {
            "province": "浙江省",
            "city": "杭州市",
            "county": "西湖区",
            "address": "文三路 100 号",
            "contact": "仓库",
            "phone": "13800000000",
        },
    }
    settings = SFSettings.from_mapping(raw, ENV)
    assert settings.base_url == PRODUCTION_URL == "https://sfapi.sf-express.com/std/service"
    assert settings.intercept_pay_mode == "4"
    assert settings.return_address is not None
    assert settings.return_address.city == "杭州市"
    assert "13800000000" not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "environ", "key"),
    [
        ({"check_word_env": "SF_CHECK_WORD"}, ENV, "partner_id"),
        ({**BASE, "partner_id": ""}, ENV, "partner_id"),
        ({"partner_id": "P"}, ENV, "check_word_env"),
        (BASE, {}, "check_word_env"),
        (BASE, {"SF_CHECK_WORD": ""}, "check_word_env"),
        ({**BASE, "environment": "prod"}, ENV, "environment"),
        ({**BASE, "base_url": "ftp://example.com"}, ENV, "base_url"),
        ({**BASE, "monthly_card_no": "12345"}, ENV, "monthly_card_no"),
        ({**BASE, "intercept_pay_mode": "9"}, ENV, "intercept_pay_mode"),
        ({**BASE, "intercept_pay_mode": "3"}, ENV, "intercept_pay_mode"),
        ({**BASE, "return_address": "杭州"}, ENV, "return_address"),
        ({**BASE, "return_address": {"province": "浙江省"}}, ENV, "return_address.city"),
        ({**BASE, "check_word": CHECK_WORD}, ENV, "check_word"),
        ({**BASE, "timeout_seconds": 0}, ENV, "timeout_seconds"),
        ({**BASE, "timeout_seconds": "10"}, ENV, "timeout_seconds"),
        ({**BASE, "timeout_seconds": True}, ENV, "timeout_seconds"),
        ({**BASE, "retries": -1}, ENV, "retries"),
        ({**BASE, "retries": 2.0}, ENV, "retries"),
        ({**BASE, "retries": 99}, ENV, "retries"),
    ],
)
def test_bad_settings_name_the_key(raw: dict[str, Any], environ: dict[str, str], key: str) -> None:
    with pytest.raises(ValueError) as caught:
        SFSettings.from_mapping(raw, environ)
    assert str(caught.value).startswith(f"{key}:")
    assert CHECK_WORD not in str(caught.value)


def test_the_plugin_metadata() -> None:
    assert INFO.code == "sf"
    assert INFO.label == "顺丰速运 SF Express"
    assert INFO.capabilities == frozenset({TRACK, INTERCEPT})
    assert INFO.settings_type is SFSettings
    assert INFO.timezone == "Asia/Shanghai"


def test_the_factory_builds_an_adapter_from_the_service_context() -> None:
    context = {"clock": FixedClock(), "http": httpx.AsyncClient(), "environ": ENV}
    carrier = INFO.factory(BASE, context)
    assert isinstance(carrier, SFCarrier)
    assert isinstance(carrier, CarrierAdapter)
    assert isinstance(carrier, SupportsIntercept)
    assert carrier.code == "sf"
    assert carrier.limits.batch_size == 10
    assert 0 < carrier.limits.requests_per_second <= 30


def test_the_adapter_imports_nothing_from_monitor_nor_a_web_framework() -> None:
    code = (
        "import sys, carriers.sf; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "{'monitor', 'fastapi', 'starlette', 'django', 'flask', 'sqlmodel', 'sqlalchemy'}]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(("key", "value"), [("timeout_seconds", -3), ("retries", "three")])
def test_a_bad_timeout_or_retries_names_the_key_and_the_value(key: str, value: object) -> None:
    with pytest.raises(ValueError) as caught:
        SFSettings.from_mapping({**BASE, key: value}, ENV)
    assert str(caught.value).startswith(f"{key}:")
    assert repr(value) in str(caught.value)
