"""Build request (pure): 丰桥's form fields, the msgDigest of SF's worked example, the intercept payload."""

from __future__ import annotations

import json

import pytest

from carriers.model import ParcelRef
from carriers.sf.client import (
    INTERCEPT_SERVICE,
    ROUTE_SERVICE,
    build_request,
    intercept_request_id,
    java_urlencode,
    msg_digest,
)
from carriers.sf.schema import intercept_order, route_query
from carriers.sf.settings import ReturnAddress, SFSettings
from carriers.testing.sf import CHECK_WORD, FIELDS, PARTNER, java_encode, sf_digest
from tests.carriers.payloads import sf_recorded as recorded

SETTINGS = SFSettings(partner_id=PARTNER, check_word=CHECK_WORD)
HOME = ReturnAddress("浙江省", "杭州市", "西湖区", "文三路 100 号", "仓库", "13800000000")
MONTHLY = SFSettings(PARTNER, CHECK_WORD, monthly_card_no="7551234567", intercept_pay_mode="4", return_address=HOME)
TIMESTAMP = "1762824600000"


def test_digest_reproduces_sfs_worked_example() -> None:
    example = recorded("digest_worked_example")
    assert msg_digest(example["msgData"], example["timestamp"], example["checkWord"]) == "IIKJtuLVzoFTu4kHI8M8vA=="
    assert example["msgDigest"] == "IIKJtuLVzoFTu4kHI8M8vA=="
    # The local server's independent encoder agrees, so the fetch tests check against the documented rule.
    assert sf_digest(example["msgData"], example["timestamp"], example["checkWord"]) == example["msgDigest"]


def test_digest_is_md5_of_the_url_encoded_text_not_of_the_raw_text() -> None:
    example = recorded("digest_worked_example")
    wrong_order = msg_digest(example["timestamp"] + example["msgData"], "", example["checkWord"])
    assert wrong_order != example["msgDigest"]


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("中 *~+", "%E4%B8%AD+*%7E%2B"),
        ("a.b-c_d*e", "a.b-c_d*e"),
        ("!'()&=/:,", "%21%27%28%29%26%3D%2F%3A%2C"),
        ('{"k":"粤海街道 B栋16B"}', "%7B%22k%22%3A%22%E7%B2%A4%E6%B5%B7%E8%A1%97%E9%81%93+B%E6%A0%8B16B%22%7D"),
        ("😀", "%F0%9F%98%80"),
    ],
)
def test_url_encoding_follows_java_urlencoder(text: str, encoded: str) -> None:
    assert java_urlencode(text) == encoded
    assert java_encode(text) == encoded


def test_url_encoding_agrees_with_the_reference_on_every_ascii_character() -> None:
    for code in range(128):
        assert java_urlencode(chr(code)) == java_encode(chr(code)), repr(chr(code))


def test_route_query_request_has_exactly_the_documented_fields() -> None:
    form = build_request(SETTINGS, ROUTE_SERVICE, route_query(["SF1400000000001", "SF1400000000002"]), TIMESTAMP, "r-1")
    assert tuple(form) == FIELDS
    assert form["partnerID"] == PARTNER
    assert form["requestID"] == "r-1"
    assert form["serviceCode"] == "EXP_RECE_SEARCH_ROUTES"
    assert form["timestamp"] == TIMESTAMP
    assert json.loads(form["msgData"]) == {
        "language": "0",
        "trackingType": "1",
        "trackingNumber": ["SF1400000000001", "SF1400000000002"],
        "methodType": "1",
    }
    assert form["msgDigest"] == sf_digest(form["msgData"], TIMESTAMP, CHECK_WORD)
    assert all(CHECK_WORD not in value for value in form.values())


def test_building_a_request_is_pure() -> None:
    msg = route_query(["SF1400000000001"])
    assert build_request(SETTINGS, ROUTE_SERVICE, msg, TIMESTAMP, "r-1") == build_request(
        SETTINGS, ROUTE_SERVICE, msg, TIMESTAMP, "r-1"
    )
    assert (
        build_request(SETTINGS, ROUTE_SERVICE, msg, "1762824600001", "r-1")["msgDigest"]
        != (build_request(SETTINGS, ROUTE_SERVICE, msg, TIMESTAMP, "r-1")["msgDigest"])
    )


def test_msg_data_keeps_chinese_unescaped_and_signs_it_url_encoded() -> None:
    home = ReturnAddress("浙江省", "杭州市", "西湖区", "文三路 100 号", "仓库", "13800000000")
    settings = SFSettings(
        PARTNER, CHECK_WORD, monthly_card_no="7551234567", intercept_pay_mode="4", return_address=home
    )
    form = build_request(settings, INTERCEPT_SERVICE, intercept_order(settings, ParcelRef("sf", "SF1")), TIMESTAMP, "k")
    assert "浙江省" in form["msgData"]
    assert form["msgDigest"] == sf_digest(form["msgData"], TIMESTAMP, CHECK_WORD)


def test_intercept_asks_for_a_return_to_the_sender() -> None:
    home = ReturnAddress("浙江省", "杭州市", "西湖区", "文三路 100 号", "仓库", "13800000000")
    settings = SFSettings(
        PARTNER, CHECK_WORD, monthly_card_no="7551234567", intercept_pay_mode="4", return_address=home
    )
    assert intercept_order(settings, ParcelRef("sf", "SF1400000000001", order_id="T-1")) == {
        "waybillNo": "SF1400000000001",
        "serviceCode": "2",
        "role": "1",
        "payMode": "4",
        "monthlyCardNo": "7551234567",
        "newDestAddress": {
            "province": "浙江省",
            "city": "杭州市",
            "county": "西湖区",
            "address": "文三路 100 号",
            "contact": "仓库",
            "phone": "13800000000",
        },
    }
    bare = intercept_order(SETTINGS, ParcelRef("sf", "SF1400000000001"))
    assert bare == {"waybillNo": "SF1400000000001", "serviceCode": "2", "role": "1", "payMode": "1"}


def test_intercept_request_id_is_the_idempotency_key_or_a_stable_hash_of_it() -> None:
    assert intercept_request_id("intercept-42") == "intercept-42"
    long_key = "outbox:intercept:" + "x" * 60
    assert intercept_request_id(long_key) == intercept_request_id(long_key)
    assert len(intercept_request_id(long_key)) == 40
    assert intercept_request_id("退款/42") != intercept_request_id("退款/43")
    assert intercept_request_id("退款/42").startswith("ik-")


def test_the_check_word_never_shows_in_a_repr() -> None:
    assert CHECK_WORD not in repr(SETTINGS)
    assert PARTNER in repr(SETTINGS)
