"""ZOP trace and intercept answers: whatever ZTO (or a gateway in front of it) answers, a typed error or results."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from carriers.model import ParcelRef
from carriers.testing.zto import APP_KEY, APP_SECRET
from carriers.zto.client import ZTOCarrier
from carriers.zto.settings import ZTOSettings
from tests.fuzz.harness import FUZZ, NO_WAIT, answering, outcome, typed
from tests.fuzz.payloads import dumps, hostile_bodies, json_values, mostly, objects, text_fields, time_fields

SETTINGS = ZTOSettings(app_key=APP_KEY, app_secret=APP_SECRET, base_url="http://zto.test", retries=0)
NUMBER = "ZT7800000000003"

sites = objects({"name": text_fields, "code": text_fields, "prov": text_fields, "city": text_fields})
scans = objects(
    {
        "billCode": mostly(st.just(NUMBER), text_fields),
        "scanType": mostly(st.sampled_from(["收件", "发件", "到件", "派件", "签收", "问题件", "ARRIVAL"]), text_fields),
        "scanDate": time_fields,
        "desc": text_fields,
        "scanSite": mostly(sites, json_values),
    }
)


def answers(result: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """ZOP's common answer around ``result`` (sometimes under ``data``, as one client reads it)."""
    answer = objects(
        {
            "status": mostly(st.just(True), st.just(False) | json_values),
            "statusCode": text_fields,
            "message": text_fields,
            "result": result,
        }
    )
    return answer.map(lambda a: dumps(a).encode("utf-8", "surrogatepass"))


def trace_body(scan_date: Any) -> bytes:
    """A documented trace answer with one 收件 scan at ``scan_date``."""
    scan = {
        "billCode": NUMBER,
        "scanType": "收件",
        "scanDate": scan_date,
        "desc": "已揽收",
        "scanSite": {"name": "杭州"},
    }
    return dumps({"status": True, "statusCode": "0", "message": "", "result": [scan]}).encode()


def carrier(body: bytes, status: int = 200) -> ZTOCarrier:
    return ZTOCarrier(SETTINGS, answering(body, status), sleep=NO_WAIT)


@FUZZ
@given(body=mostly(answers(mostly(st.lists(scans, max_size=4), json_values)), hostile_bodies))
@example(body=trace_body("2026-11-11 09:30:00"))
@example(body=trace_body(10**30))  # milliseconds past year 9999: OverflowError before the fix
@example(body=trace_body("0001-01-01 00:00:00"))  # before UTC's year 1: OverflowError before the fix
@example(body=b'{"status": true, "result": ' + b"[" * 100_000)  # RecursionError before the fix
def test_a_trace_answer_is_results_or_a_typed_error(body: bytes) -> None:
    typed(outcome(lambda: carrier(body).track([NUMBER])))


@FUZZ
@given(body=mostly(answers(json_values), hostile_bodies), status=st.sampled_from([200, 200, 200, 400, 429, 502]))
def test_an_intercept_answer_is_a_verdict_or_a_typed_error(body: bytes, status: int) -> None:
    parcel = ParcelRef("zto", NUMBER, order_id="TB1")
    typed(outcome(lambda: carrier(body, status).intercept(parcel, "refund_only", "intercept:1")))
