"""Build request (pure): ZOP's digest of the documented worked example, headers, body bytes, intercept body."""

from __future__ import annotations

import json

from carriers.model import ParcelRef
from carriers.testing.zto import APP_KEY, APP_SECRET, zop_digest
from carriers.zto.client import (
    INTERCEPT_API,
    TRACK_API,
    build_request,
    data_digest,
    encode_body,
    intercept_request_id,
)
from carriers.zto.schema import intercept_order, track_query
from carriers.zto.settings import ZTOSettings
from tests.carriers.payloads import zto_recorded as recorded

SETTINGS = ZTOSettings(app_key=APP_KEY, app_secret=APP_SECRET, base_url="https://japi.zto.com")


def test_digest_reproduces_zops_worked_example() -> None:
    example = recorded("digest_worked_example")
    body = example["body"].encode("utf-8")
    assert data_digest(body, example["appSecret"]) == "7Ih1zjVdgQEFBzdITreegg=="
    assert example["dataDigest"] == "7Ih1zjVdgQEFBzdITreegg=="
    # The local server's own digest agrees, so the fetch tests check against the documented rule.
    assert zop_digest(body, example["appSecret"]) == example["dataDigest"]


def test_the_digest_covers_the_exact_bytes_and_the_secret_comes_last() -> None:
    example = recorded("digest_worked_example")
    body, secret = example["body"], example["appSecret"]
    assert data_digest((secret + body).encode(), "") != example["dataDigest"]
    assert data_digest(body.replace(",", ", ").encode(), secret) != example["dataDigest"]


def test_the_trace_query_is_a_signed_json_post_to_the_api_path() -> None:
    request = build_request(SETTINGS, TRACK_API, track_query("78100000000005"))
    assert request.url == "https://japi.zto.com/zto.merchant.waybill.track.query"
    assert request.body == b'{"billCode":"78100000000005"}'
    assert request.headers == {
        "Content-Type": "application/json; charset=UTF-8",
        "x-appKey": APP_KEY,
        "x-dataDigest": zop_digest(request.body, APP_SECRET),
    }
    assert APP_SECRET.encode() not in request.body


def test_chinese_is_sent_unescaped_and_signed_as_utf8() -> None:
    body = encode_body({"thirdBizNo": "退款-42"})
    assert body == '{"thirdBizNo":"退款-42"}'.encode()
    assert data_digest(body, APP_SECRET) == zop_digest(body, APP_SECRET)


def test_building_a_request_is_pure() -> None:
    first = build_request(SETTINGS, TRACK_API, track_query("78100000000005"))
    again = build_request(SETTINGS, TRACK_API, track_query("78100000000005"))
    other = build_request(SETTINGS, TRACK_API, track_query("78100000000006"))
    assert (first.url, first.body, first.headers) == (again.url, again.body, again.headers)
    assert first.headers["x-dataDigest"] != other.headers["x-dataDigest"]


def test_the_intercept_asks_for_a_return_to_the_sender_under_the_request_id() -> None:
    parcel = ParcelRef("zto", "78100000000005", order_id="T-1001")
    assert intercept_order(parcel, "refund-7788") == {
        "billCode": "78100000000005",
        "requestId": "refund-7788",
        "destinationType": 2,
        "thirdBizNo": "T-1001",
    }
    bare = intercept_order(ParcelRef("zto", "78100000000005"), "k", customer_id="GPG1576724269")
    assert bare == {"billCode": "78100000000005", "requestId": "k", "destinationType": 2, "customerId": "GPG1576724269"}
    request = build_request(SETTINGS, INTERCEPT_API, intercept_order(parcel, "refund-7788"))
    assert request.url == "https://japi.zto.com/thirdcenter.createIntercept"
    assert json.loads(request.body)["requestId"] == "refund-7788"


def test_the_request_id_is_the_idempotency_key_or_a_stable_hash_of_it() -> None:
    assert intercept_request_id("intercept-42") == "intercept-42"
    long_key = "outbox:intercept:" + "x" * 60
    assert intercept_request_id(long_key) == intercept_request_id(long_key)
    assert len(intercept_request_id(long_key)) == 40
    assert intercept_request_id("退款/42") != intercept_request_id("退款/43")
    assert intercept_request_id("退款/42").startswith("ik-")


def test_secrets_never_show_in_a_repr() -> None:
    request = build_request(SETTINGS, TRACK_API, track_query("78100000000005"))
    for text in (repr(SETTINGS), repr(request)):
        assert APP_SECRET not in text
        assert APP_KEY not in text
