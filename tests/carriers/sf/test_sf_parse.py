"""Parse response and parse error: recorded 丰桥 answers, read through the adapter on httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from carriers.errors import CarrierResponseError
from carriers.model import ExceptionReason, Status, TrackingResult
from carriers.sf.client import SFCarrier
from carriers.sf.mapping import STATUS_BY_CODE, parse_accept_time
from carriers.sf.settings import SFSettings
from carriers.testing.clock import FixedClock
from carriers.testing.sf import CHECK_WORD, PARTNER
from tests.carriers.payloads import SF_FIXTURES as FIXTURES
from tests.carriers.payloads import sf_recorded as recorded

SETTINGS = SFSettings(PARTNER, CHECK_WORD, base_url="http://sf.test/std/service")
PU, IT, OD, DL = Status.PICKED_UP, Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY, Status.DELIVERED


def answering(status: int, body: str) -> SFCarrier:
    """An adapter whose every call is answered with ``status`` and the raw ``body``."""
    transport = httpx.MockTransport(lambda request: httpx.Response(status, text=body))
    return SFCarrier(SETTINGS, httpx.AsyncClient(transport=transport), FixedClock())


def body_of(name: str) -> str:
    return json.dumps(recorded(name)["body"], ensure_ascii=False)


def track_fixture(name: str, numbers: list[str], carrier: SFCarrier | None = None) -> list[TrackingResult]:
    carrier = carrier or answering(recorded(name)["status"], body_of(name))
    return asyncio.run(carrier.track(numbers))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_delivered_route_keeps_raw_beside_normalized() -> None:
    first, second = track_fixture("route_delivered", ["SF1400000000001", "SF1400000000002"])

    assert [e.status for e in first.events] == [PU, IT, IT, IT, IT, OD, OD, DL, DL]
    assert [e.raw_code for e in first.events] == ["50", "30", "36", "31", "3036", "44", "204", "80", "8000"]
    signed = first.events[7]
    assert signed.carrier == "sf"
    assert signed.tracking_no == "SF1400000000001"
    assert signed.time == utc(2026, 11, 11, 1, 30)
    assert signed.location == "上海市"
    assert signed.raw_text.startswith("您的快件已签收")
    assert first.problem is None
    assert [e.status for e in second.events] == [PU, IT]


def test_accept_time_is_read_in_shanghai_and_stored_in_utc() -> None:
    (result,) = track_fixture("route_delivered", ["SF1400000000001"])
    arrived, next_hop = result.events[3], result.events[4]
    # 23:59:59 and 00:30 in Shanghai fall on the same UTC day, 8 hours earlier.
    assert arrived.time == utc(2026, 11, 10, 15, 59, 59)
    assert next_hop.time == utc(2026, 11, 10, 16, 30)
    assert next_hop.time.utcoffset() is not None
    assert parse_accept_time("2026-11-11 09:30:00") == utc(2026, 11, 11, 1, 30)
    with pytest.raises(ValueError):
        parse_accept_time("2026/11/11 09:30")


def test_failed_delivery_and_exception_codes() -> None:
    (result,) = track_fixture("route_station_and_failure", ["SF1400000000003"])
    assert [e.status for e in result.events] == [PU, IT, IT, IT, OD, Status.DELIVERY_FAILED, Status.EXCEPTION]
    assert result.events[-1].reason is ExceptionReason.OTHER
    assert result.events[-2].reason is None


def test_a_forwarded_parcel_reads_as_returning() -> None:
    (result,) = track_fixture("route_returned", ["SF1400000000004"])
    assert [e.status for e in result.events][-2:] == [Status.RETURNING, Status.RETURNING]
    assert "SF1400000009999" in result.events[-1].raw_text


def test_numbers_sf_does_not_know_are_problems_not_errors() -> None:
    results = track_fixture("route_unknown_numbers", ["SF1499999999999", "SF1488888888888"])
    assert [(r.tracking_no, r.problem, r.events) for r in results] == [
        ("SF1499999999999", "no_routes", ()),
        ("SF1488888888888", "not_found", ()),
    ]


def test_an_unknown_opcode_is_kept_counted_and_logged_once() -> None:
    carrier = answering(200, body_of("route_unknown_opcode"))
    with capture_logs() as logs:
        (result,) = track_fixture("route_unknown_opcode", ["SF1400000000005"], carrier)
        track_fixture("route_unknown_opcode", ["SF1400000000005"], carrier)
    unknown = result.events[-1]
    assert unknown.status is None
    assert (unknown.raw_code, unknown.raw_text) == ("631", "快件已退回")
    assert carrier.unknown_codes == {"631": 2}
    assert [log["code"] for log in logs if log["event"] == "carrier.unknown_code"] == ["631"]


def route_fixtures() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("route_*.json") if p.stem != "route_unknown_opcode")


def opcodes_in(name: str) -> set[str]:
    data = json.loads(recorded(name)["body"]["apiResultData"])
    resps = (data.get("msgData") or {}).get("routeResps", [])
    return {node["opCode"] for resp in resps for node in resp["routes"]}


def test_every_opcode_in_the_fixtures_is_in_the_table_and_every_mapped_code_has_a_fixture() -> None:
    seen = set().union(*(opcodes_in(name) for name in route_fixtures()))
    assert seen - set(STATUS_BY_CODE) == set()
    assert set(STATUS_BY_CODE) - seen == set()


def test_a_business_refusal_is_a_response_error_with_sfs_code() -> None:
    with pytest.raises(CarrierResponseError) as caught:
        track_fixture("route_refused_8003", ["SF1400000000001"])
    assert caught.value.code == "8003"
    assert caught.value.raw == body_of("route_refused_8003")


def envelope(data: Any, code: str = "A1000") -> str:
    raw = data if isinstance(data, str) or data is None else json.dumps(data, ensure_ascii=False)
    return json.dumps({"apiErrorMsg": "", "apiResponseID": "X", "apiResultCode": code, "apiResultData": raw})


def routes(nodes: Any) -> dict[str, Any]:
    return {"success": True, "errorCode": "S0000", "msgData": {"routeResps": [{"mailNo": "SF1", "routes": nodes}]}}


GOOD_NODE = {"acceptTime": "2026-11-11 09:30:00", "acceptAddress": "上海市", "remark": "已签收", "opCode": "80"}
MALFORMED = {
    "truncated": body_of("route_delivered")[:137],
    "empty": "",
    "html": "<html><body>502 Bad Gateway</body></html>",
    "json list": "[]",
    "no apiResultCode": json.dumps({"apiResultData": None}),
    "apiResultData missing": envelope(None),
    "apiResultData not JSON": envelope('{"success":true,"msgData":{"routeResps":[{"mailNo"'),
    "apiResultData a number": json.dumps({"apiResultCode": "A1000", "apiResultData": 7}),
    "success missing": envelope({"errorCode": "S0000", "msgData": {"routeResps": []}}),
    "routeResps missing": envelope({"success": True, "msgData": {}}),
    "routes a string": envelope(routes("80")),
    "opCode missing": envelope(routes([{k: v for k, v in GOOD_NODE.items() if k != "opCode"}])),
    "opCode a number": envelope(routes([{**GOOD_NODE, "opCode": 80}])),
    "acceptTime malformed": envelope(routes([{**GOOD_NODE, "acceptTime": "2026/11/11 09:30"}])),
    "acceptTime null": envelope(routes([{**GOOD_NODE, "acceptTime": None}])),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_answers_are_response_errors_keeping_the_raw_body(body: str) -> None:
    with pytest.raises(CarrierResponseError) as caught:
        asyncio.run(answering(200, body).track(["SF1"]))
    assert caught.value.raw == body
    assert caught.value.carrier == "sf"


def test_a_well_formed_node_parses() -> None:
    (result,) = asyncio.run(answering(200, envelope(routes([GOOD_NODE]))).track(["SF1"]))
    assert result.events[0].status is Status.DELIVERED
