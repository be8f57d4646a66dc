"""Settings from the ``[carriers.kuaidi100]`` table and the environment; errors name the key."""

from __future__ import annotations

from typing import Any

import pytest

from carriers.kuaidi100 import Kuaidi100Settings

ENV = {"K100_CUSTOMER": "CUST-123", "K100_KEY": "key-456", "K100_SALT": "salt-789"}
TABLE = {"company": "zhongtong", "customer_env": "K100_CUSTOMER", "key_env": "K100_KEY"}


def build(**changes: Any) -> Kuaidi100Settings:
    table = {k: v for k, v in (TABLE | changes).items() if v is not None}
    return Kuaidi100Settings.from_mapping(table, ENV)


def test_minimal_table() -> None:
    settings = build()
    assert (settings.customer, settings.key, settings.company) == ("CUST-123", "key-456", "zhongtong")
    assert settings.base_url == "https://poll.kuaidi100.com"
    assert (settings.callback_url, settings.salt, settings.timeout_seconds) == (None, None, 10.0)
    assert settings.retries == 3
    assert settings.retry_policy.attempts == 4


def test_full_table() -> None:
    settings = build(
        salt_env="K100_SALT",
        callback_url="https://monitor.example.com/push",
        base_url="http://127.0.0.1:8080/",
        timeout_seconds=3,
        retries=0,
        requests_per_second=5,
    )
    assert settings.salt == "salt-789"
    assert settings.base_url == "http://127.0.0.1:8080"
    assert (settings.timeout_seconds, settings.retries, settings.requests_per_second) == (3.0, 0, 5.0)
    assert settings.retry_policy.attempts == 1


def test_secrets_never_show_in_repr() -> None:
    text = repr(build(salt_env="K100_SALT"))
    for secret in ENV.values():
        assert secret not in text
    assert "zhongtong" in text


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"key_env": None}, "key_env"),
        ({"customer_env": None}, "customer_env"),
        ({"key_env": "MISSING_VAR"}, "key_env: environment variable MISSING_VAR"),
        ({"salt_env": "MISSING_VAR"}, "salt_env"),
        ({"key_env": 5}, "key_env"),
        ({"key": "inline-secret"}, "key: secrets are not written in the file"),
        ({"customer": "inline"}, "customer: secrets"),
        ({"company": None}, "company"),
        ({"company": "ZhongTong"}, "company"),
        ({"base_url": "poll.kuaidi100.com"}, "base_url"),
        ({"callback_url": 42}, "callback_url"),
        ({"timeout_seconds": 0}, "timeout_seconds: .* got 0"),
        ({"timeout_seconds": True}, "timeout_seconds: .* got True"),
        ({"timeout_seconds": "10"}, "timeout_seconds: .* got '10'"),
        ({"timeout_seconds": 301}, "timeout_seconds: .* got 301"),
        ({"retries": -1}, "retries: .* got -1"),
        ({"retries": 1.5}, "retries: .* got 1.5"),
        ({"retries": 11}, "retries: .* got 11"),
        ({"retries": False}, "retries: .* got False"),
        ({"timeout": 5}, "timeout: renamed to timeout_seconds"),
        ({"requests_per_second": "10"}, "requests_per_second"),
        ({"colour": "red"}, "unknown kuaidi100 setting 'colour'"),
    ],
)
def test_a_bad_value_names_its_key(changes: dict[str, Any], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        build(**changes)


def test_an_inline_secret_is_not_echoed_in_the_error() -> None:
    with pytest.raises(ValueError) as caught:
        build(key="inline-secret")
    assert "inline-secret" not in str(caught.value)
