"""丰桥 route and intercept answers: whatever SF (or a gateway in front of it) answers, a typed error or results."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from carriers.model import ParcelRef
from carriers.sf.client import SFCarrier
from carriers.sf.settings import SFSettings
from carriers.testing.clock import FixedClock
from carriers.testing.sf import CHECK_WORD, PARTNER
from tests.fuzz.harness import FUZZ, NO_WAIT, answering, outcome, typed
from tests.fuzz.payloads import dumps, hostile_bodies, json_values, mostly, objects, text_fields, time_fields

SETTINGS = SFSettings(PARTNER, CHECK_WORD, base_url="http://sf.test/std/service", retries=0)
NUMBERS = ["SF1400000000001", "SF1400000000002"]

routes = objects(
    {"acceptTime": time_fields, "acceptAddress": text_fields, "remark": text_fields, "opCode": text_fields}
)
route_resps = objects(
    {"mailNo": mostly(st.sampled_from(NUMBERS), text_fields), "routes": st.lists(routes, max_size=4) | json_values}
)
msg_data = objects({"routeResps": mostly(st.lists(route_resps, max_size=3), json_values)})


def biz(data: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The business answer inside ``apiResultData``, with ``data`` as its msgData."""
    return objects(
        {
            "success": mostly(st.just(True), st.just(False) | json_values),
            "errorCode": text_fields,
            "errorMsg": text_fields,
            "msgData": data,
        }
    )


def envelopes(data: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """SF's envelope around a business answer, as a JSON string (documented), an object, or anything."""
    inner = biz(data)
    envelope = objects(
        {
            "apiResultCode": mostly(st.just("A1000"), st.sampled_from(["A1001", "A1006", "A1007"]) | text_fields),
            "apiErrorMsg": text_fields,
            "apiResponseID": text_fields,
            "apiResultData": mostly(
                inner.map(dumps), st.one_of(inner, json_values, st.integers(1, 5000).map(lambda n: "[" * n))
            ),
        }
    )
    return envelope.map(lambda e: dumps(e).encode("utf-8", "surrogatepass"))


def route_body(accept_time: str = "2026-11-11 09:30:00", result_data: str | None = None) -> bytes:
    """A documented route answer for NUMBERS[0] with one node at ``accept_time``."""
    node = {"acceptTime": accept_time, "acceptAddress": "深圳", "remark": "顺丰已收件", "opCode": "50"}
    data = {
        "success": True,
        "errorCode": "S0000",
        "msgData": {"routeResps": [{"mailNo": NUMBERS[0], "routes": [node]}]},
    }
    envelope = {"apiResultCode": "A1000", "apiErrorMsg": "", "apiResultData": result_data or dumps(data)}
    return dumps(envelope).encode()


def carrier(body: bytes, status: int = 200) -> SFCarrier:
    return SFCarrier(SETTINGS, answering(body, status), FixedClock(), sleep=NO_WAIT)


@FUZZ
@given(body=mostly(envelopes(mostly(msg_data, json_values)), hostile_bodies))
@example(body=route_body())
@example(body=route_body("0001-01-01 00:00:00"))  # before UTC's year 1: OverflowError before the fix
@example(body=route_body(result_data="[" * 100_000))  # RecursionError before the fix
@example(body=b"[" * 100_000)
def test_a_route_answer_is_results_or_a_typed_error(body: bytes) -> None:
    typed(outcome(lambda: carrier(body).track(NUMBERS)))


@FUZZ
@given(body=mostly(envelopes(json_values), hostile_bodies), status=st.sampled_from([200, 200, 200, 400, 404, 429, 502]))
def test_an_intercept_answer_is_a_verdict_or_a_typed_error(body: bytes, status: int) -> None:
    parcel = ParcelRef("sf", NUMBERS[0], order_id="TB1")
    typed(outcome(lambda: carrier(body, status).intercept(parcel, "refund_only", "intercept:1")))
