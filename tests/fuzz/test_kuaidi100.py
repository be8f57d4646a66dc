"""Kuaidi100 query answers and push bodies: whatever arrives, a typed error or results.

Pushes are signed with the test salt (``sign = MD5(param + salt)``) so the fuzzed ``param`` gets
past the signature check and into the parser; unsigned and garbled bodies are fuzzed too.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

from hypothesis import example, given
from hypothesis import strategies as st

from carriers.errors import CarrierError
from carriers.kuaidi100 import Kuaidi100Carrier
from carriers.testing.kuaidi100 import make_settings
from tests.fuzz.harness import FUZZ, NO_WAIT, answering, outcome, typed
from tests.fuzz.payloads import dumps, hostile_bodies, json_values, mostly, objects, text_fields, time_fields

SALT = "fuzz-salt-5e1d"
NUMBER = "ZT7800000000003"

events = objects(
    {
        "time": time_fields,
        "ftime": time_fields,
        "context": text_fields,
        "location": text_fields,
        "areaName": text_fields,
        "status": mostly(st.sampled_from(["在途", "揽收", "签收", "派件", "疑难"]), text_fields),
        "statusCode": mostly(st.sampled_from(["0", "1", "3", "301", "5", "2", "14", "999"]), text_fields),
    }
)
tracks = objects(
    {
        "message": text_fields,
        "nu": mostly(st.just(NUMBER), text_fields),
        "com": mostly(st.just("zhongtong"), text_fields),
        "state": mostly(st.sampled_from(["0", "1", "3", "5"]), text_fields),
        "ischeck": text_fields,
        "data": mostly(st.lists(events, max_size=4), json_values),
    }
)
#: Error answers of the query (``returnCode``), which the client reads instead of a history.
failures = objects({"result": mostly(st.just(False), json_values), "returnCode": text_fields, "message": text_fields})
pushes = objects(
    {
        "status": mostly(st.sampled_from(["polling", "shutdown", "abort", "updateall"]), text_fields),
        "message": text_fields,
        "autoCheck": mostly(st.sampled_from(["0", "1"]), text_fields),
        "comOld": text_fields,
        "comNew": text_fields,
        "lastResult": mostly(tracks, json_values),
    }
)


def encoded(value: Any) -> bytes:
    return dumps(value).encode("utf-8", "surrogatepass")


def signed_form(param: str, salt: str = SALT) -> bytes:
    """A push form signed like Kuaidi100 signs it."""
    sign = hashlib.md5((param + salt).encode("utf-8", "surrogatepass")).hexdigest().upper()
    return urlencode({"param": param.encode("utf-8", "surrogatepass"), "sign": sign}).encode()


def query_body(ftime: str) -> bytes:
    """A documented query answer with one signed-for event at ``ftime``."""
    event = {"time": ftime, "ftime": ftime, "context": "已签收", "status": "签收", "statusCode": "301"}
    return encoded({"message": "ok", "nu": NUMBER, "com": "zhongtong", "state": "3", "data": [event]})


def carrier(body: bytes = b"", status: int = 200) -> Kuaidi100Carrier:
    return Kuaidi100Carrier(make_settings(salt=SALT, retries=0), answering(body, status), sleep=NO_WAIT)


@FUZZ
@given(body=mostly(st.one_of(tracks, failures).map(encoded), hostile_bodies))
@example(body=query_body("2026-11-11 15:02:00"))
@example(body=query_body("0001-01-01 00:00:00"))  # before UTC's year 1: stored later as an OverflowError
@example(body=b"[" * 100_000)  # RecursionError before the fix
def test_a_query_answer_is_results_or_a_typed_error(body: bytes) -> None:
    typed(outcome(lambda: carrier(body).track([NUMBER])))


def parse_push(body: bytes) -> Any:
    try:
        return carrier().parse_push(body, {"content-type": "application/x-www-form-urlencoded"})
    except CarrierError as err:
        return err


@FUZZ
@given(param=mostly(pushes.map(dumps), st.one_of(json_values.map(dumps), st.text(max_size=50))))
@example(param='{"status": "polling", "lastResult": ' + "[" * 100_000)  # RecursionError before the fix
def test_a_signed_push_is_results_or_a_typed_error(param: str) -> None:
    typed(parse_push(signed_form(param)))


@FUZZ
@given(body=hostile_bodies | st.binary(max_size=300).map(lambda b: b"param=" + b + b"&sign=" + b[:32]))
def test_any_push_body_is_results_or_a_typed_error(body: bytes) -> None:
    typed(parse_push(body))
