"""Build the request (pure): the signed query form, the subscription form, the push answer, the limits."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from carriers.kuaidi100 import INFO, Kuaidi100Carrier, build_query, build_subscribe, push_ack
from carriers.kuaidi100.client import RESULTV2
from carriers.kuaidi100.mapping import join_ref, split_ref
from carriers.testing.kuaidi100 import CUSTOMER, KEY, make_settings

SETTINGS = make_settings()


def test_query_form_has_customer_param_and_sign() -> None:
    form = build_query(SETTINGS, "zhongtong", "ZT7800000000001")
    assert set(form) == {"customer", "sign", "param"}
    assert form["customer"] == CUSTOMER
    assert json.loads(form["param"]) == {
        "com": "zhongtong",
        "num": "ZT7800000000001",
        "resultv2": RESULTV2,
        "show": "0",
        "order": "desc",
    }


def test_sign_is_upper_md5_of_param_key_customer_over_the_exact_string() -> None:
    form = build_query(SETTINGS, "zhongtong", "ZT7800000000001")
    expected = hashlib.md5((form["param"] + KEY + CUSTOMER).encode("utf-8")).hexdigest().upper()
    assert form["sign"] == expected
    assert len(form["sign"]) == 32
    assert form["sign"] == form["sign"].upper()


def test_sign_of_a_known_param_string() -> None:
    param = '{"com":"zhongtong","num":"ZT7800000000001","resultv2":"4","show":"0","order":"desc"}'
    assert build_query(SETTINGS, "zhongtong", "ZT7800000000001")["param"] == param
    assert build_query(SETTINGS, "zhongtong", "ZT7800000000001")["sign"] == "60804CD1447E16D4F2BCBAC2B1003B27"


def test_phone_goes_into_param_and_is_signed() -> None:
    form = build_query(SETTINGS, "shunfeng", "SF1234567890", phone="5678")
    assert json.loads(form["param"])["phone"] == "5678"
    assert form["sign"] == hashlib.md5((form["param"] + KEY + CUSTOMER).encode()).hexdigest().upper()


def test_build_query_is_pure() -> None:
    assert build_query(SETTINGS, "zhongtong", "A1") == build_query(SETTINGS, "zhongtong", "A1")


def test_subscription_form() -> None:
    settings = make_settings(callback_url="https://monitor.example.com/push", salt="s@lt")
    form = build_subscribe(settings, "yuantong", "YT123", phone="1234")
    assert form["schema"] == "json"
    assert json.loads(form["param"]) == {
        "company": "yuantong",
        "number": "YT123",
        "key": KEY,
        "parameters": {
            "callbackurl": "https://monitor.example.com/push",
            "resultv2": RESULTV2,
            "salt": "s@lt",
            "phone": "1234",
        },
    }


def test_subscription_without_salt_sends_none() -> None:
    form = build_subscribe(make_settings(callback_url="https://m.example.com/p"), "yuantong", "YT1")
    assert "salt" not in json.loads(form["param"])["parameters"]


def test_subscription_needs_a_callback_url() -> None:
    with pytest.raises(ValueError, match="callback_url"):
        build_subscribe(SETTINGS, "yuantong", "YT1")


def test_push_ack_is_the_documented_success_answer() -> None:
    assert push_ack() == {"result": True, "returnCode": "200", "message": "成功"}


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("ZT123", ("zhongtong", "ZT123")), ("shunfeng:SF123", ("shunfeng", "SF123")), ("ems:", ("ems", ""))],
)
def test_split_ref(ref: str, expected: tuple[str, str]) -> None:
    assert split_ref(ref, "zhongtong") == expected


def test_join_ref_reads_back() -> None:
    for ref in ("ZT123", "shunfeng:SF123"):
        assert join_ref(*split_ref(ref, "zhongtong"), "zhongtong") == ref


def test_limits_one_number_per_query_and_the_lock_rule() -> None:
    carrier = Kuaidi100Carrier(SETTINGS, httpx.AsyncClient())
    assert carrier.limits.batch_size == 1
    assert carrier.limits.max_queries_per_number_per_day == 48
    assert carrier.limits.extra["min_seconds_between_queries_of_a_number"] == 30 * 60
    assert carrier.limits.requests_per_second == SETTINGS.requests_per_second


def test_plugin_metadata() -> None:
    assert INFO.code == "kuaidi100"
    assert INFO.label == "快递100 Kuaidi100"
    assert INFO.capabilities == frozenset({"track", "push"})
    assert INFO.settings_type is not None and INFO.settings_type.__name__ == "Kuaidi100Settings"


def test_a_push_we_could_not_take_is_answered_as_a_failure_so_kuaidi100_retries() -> None:
    answer = push_ack(ok=False, message="签名错误")
    assert answer == {"result": False, "returnCode": "500", "message": "签名错误"}
    assert push_ack(ok=False)["message"] == "失败"
