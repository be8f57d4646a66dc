"""Parse response and parse error: ZOP answers read through the adapter on httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from carriers.errors import CarrierError, CarrierResponseError
from carriers.model import ExceptionReason, Status, TrackingResult
from carriers.testing.zto import APP_KEY, APP_SECRET
from carriers.zto.client import ZTOCarrier
from carriers.zto.mapping import STATUS_BY_CODE, parse_scan_date
from carriers.zto.settings import ZTOSettings
from tests.carriers.payloads import ZTO_FIXTURES as FIXTURES
from tests.carriers.payloads import zto_recorded as recorded

SETTINGS = ZTOSettings(app_key=APP_KEY, app_secret=APP_SECRET, base_url="http://zto.test", retries=0)
PU, IT, OD, AP = Status.PICKED_UP, Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY, Status.AVAILABLE_FOR_PICKUP
DL, EX, RG, RD = Status.DELIVERED, Status.EXCEPTION, Status.RETURNING, Status.RETURNED
JOURNEY = [PU, IT, IT, IT, IT, IT, IT, OD]


def answering(status: int, body: str) -> ZTOCarrier:
    """An adapter whose every call is answered with ``status`` and the raw ``body``."""
    transport = httpx.MockTransport(lambda request: httpx.Response(status, text=body))
    return ZTOCarrier(SETTINGS, httpx.AsyncClient(transport=transport))


def body_of(name: str) -> str:
    return json.dumps(recorded(name)["body"], ensure_ascii=False)


def number_of(name: str) -> str:
    result = recorded(name)["body"]["result"]
    return result[0]["billCode"] if result else "78100000000099"


def track_fixture(name: str, carrier: ZTOCarrier | None = None) -> TrackingResult:
    carrier = carrier or answering(recorded(name)["status"], body_of(name))
    (result,) = asyncio.run(carrier.track([number_of(name)]))
    return result


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "statuses"),
    [
        ("track_picked_up", [PU]),
        ("track_departed", [PU, IT]),
        ("track_arrived", [PU, IT, IT]),
        ("track_out_for_delivery", JOURNEY),
        ("track_delivered", [*JOURNEY, DL]),
        ("track_locker_in", [*JOURNEY, AP]),
        ("track_locker_out", [*JOURNEY, AP, DL]),
        ("track_third_party_signed", [*JOURNEY, DL]),
        ("track_problem", [*JOURNEY, EX]),
        ("track_returning", [*JOURNEY, EX, RG]),
        ("track_returned", [*JOURNEY, RG, RD]),
    ],
)
def test_each_scan_type_maps_to_its_status(name: str, statuses: list[Status]) -> None:
    result = track_fixture(name)
    assert result.problem is None
    assert [e.status for e in result.events] == statuses


def test_a_delivered_history_keeps_raw_beside_normalized() -> None:
    result = track_fixture("track_delivered")
    signed = result.events[-1]
    assert (signed.carrier, signed.tracking_no) == ("zto", "78100000000005")
    assert (signed.raw_code, signed.status) == ("签收", DL)
    assert signed.raw_text.startswith("【上海市】快件已由【本人】签收")
    assert signed.location == "上海市 上海浦东康桥"
    assert signed.time == utc(2026, 11, 11, 1, 30)
    assert [e.raw_code for e in result.events][:3] == ["收件", "发件", "到件"]


def test_epoch_milliseconds_and_shanghai_local_times_agree() -> None:
    millis = track_fixture("track_arrived")
    text = track_fixture("track_text_time")
    assert [e.time for e in millis.events] == [e.time for e in text.events]
    # 23:59:59 in Shanghai is 15:59:59 UTC the same day; a stored time is always aware
    assert text.events[2].time == utc(2026, 11, 10, 15, 59, 59)
    assert text.events[2].time.utcoffset() is not None
    assert parse_scan_date("2026-11-11 09:30:00") == utc(2026, 11, 11, 1, 30)
    assert parse_scan_date("1794360600000") == utc(2026, 11, 11, 1, 30)
    with pytest.raises(ValueError):
        parse_scan_date("2026/11/11 09:30")


def test_scans_listed_newest_first_come_out_oldest_first() -> None:
    result = track_fixture("track_returned")
    times = [e.time for e in result.events]
    assert times == sorted(times)
    assert result.events[-1].raw_code == "退件签收"


def test_a_problem_parcel_is_an_exception_with_a_reason() -> None:
    problem = track_fixture("track_problem").events[-1]
    assert (problem.status, problem.reason) == (EX, ExceptionReason.OTHER)
    assert "无人接听" in problem.raw_text
    assert track_fixture("track_delivered").events[-1].reason is None


def test_a_number_with_no_scan_is_a_problem_not_an_error() -> None:
    result = track_fixture("track_empty")
    assert (result.problem, result.problem_code, result.events) == ("no_routes", "empty_result", ())
    body = json.dumps({"status": True, "statusCode": "SYS000", "message": "ok", "result": None})
    (null,) = asyncio.run(answering(200, body).track(["78100000000099"]))
    assert null.problem == "no_routes"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("error_e404", "not_authorized"),
        ("error_e409", "phone_mismatch"),
        ("error_e413", "phone_required"),
        ("error_e416", "invalid_number"),
        ("error_e418", "not_authorized"),
    ],
)
def test_data_authorization_codes_are_problems_of_the_number(name: str, problem: str) -> None:
    (result,) = asyncio.run(answering(200, body_of(name)).track(["78100000000005"]))
    assert (result.tracking_no, result.problem, result.events) == ("78100000000005", problem, ())
    assert result.problem_code == name.removeprefix("error_").upper()


def test_an_unknown_scan_type_is_kept_counted_and_logged_once() -> None:
    carrier = answering(200, body_of("track_unknown_scan_type"))
    with capture_logs() as logs:
        result = track_fixture("track_unknown_scan_type", carrier)
        track_fixture("track_unknown_scan_type", carrier)
    unknown = result.events[-1]
    assert (unknown.status, unknown.raw_code) == (None, "INBOUND")
    assert unknown.raw_text == "【杭州市】快件已入库【杭州中转部】"
    assert carrier.unknown_codes == {"INBOUND": 2}
    assert [e["code"] for e in logs if e["event"] == "carrier.unknown_code"] == ["INBOUND"]


def scan_types_in(name: str) -> set[str]:
    return {node["scanType"] for node in recorded(name)["body"]["result"] or []}


def test_every_scan_type_in_the_fixtures_is_in_the_table_and_every_mapped_type_has_a_fixture() -> None:
    names = sorted(p.stem for p in FIXTURES.glob("track_*.json") if p.stem != "track_unknown_scan_type")
    seen = set().union(*(scan_types_in(name) for name in names))
    assert seen - set(STATUS_BY_CODE) == set()
    assert set(STATUS_BY_CODE) - seen == set()


def test_an_undocumented_refusal_of_the_query_is_a_response_error_with_its_code() -> None:
    body = json.dumps({"status": False, "statusCode": "E999", "message": "新错误", "result": None}, ensure_ascii=False)
    with pytest.raises(CarrierResponseError) as caught:
        asyncio.run(answering(200, body).track(["78100000000005"]))
    assert (caught.value.code, caught.value.raw) == ("E999", body)


def answer(result: Any) -> str:
    return json.dumps({"status": True, "statusCode": "SYS000", "message": "ok", "result": result}, ensure_ascii=False)


GOOD = recorded("track_delivered")["body"]["result"][-1]
MALFORMED = {
    "truncated": body_of("track_delivered")[:211],
    "empty": "",
    "html": "<html><body>502 Bad Gateway</body></html>",
    "json list": "[]",
    "json null": "null",
    "status missing": json.dumps({"statusCode": "SYS000", "result": []}),
    "status a string": json.dumps({"status": "true", "result": []}),
    "statusCode a number": json.dumps({"status": False, "statusCode": 211, "message": "x"}),
    "result an object": answer({"billCode": "78100000000005"}),
    "result a string": answer("[]"),
    "scan not an object": answer(["签收"]),
    "scanType missing": answer([{k: v for k, v in GOOD.items() if k != "scanType"}]),
    "scanType a number": answer([{**GOOD, "scanType": 3}]),
    "scanType empty": answer([{**GOOD, "scanType": " "}]),
    "scanDate missing": answer([{k: v for k, v in GOOD.items() if k != "scanDate"}]),
    "scanDate malformed": answer([{**GOOD, "scanDate": "2026/11/11 09:30"}]),
    "scanDate a boolean": answer([{**GOOD, "scanDate": True}]),
    "scanSite a list": answer([{**GOOD, "scanSite": ["上海"]}]),
    "another number": answer([{**GOOD, "billCode": "78199999999999"}]),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_answers_are_response_errors_keeping_the_raw_body(body: str) -> None:
    with pytest.raises(CarrierResponseError) as caught:
        asyncio.run(answering(200, body).track(["78100000000005"]))
    assert caught.value.raw == body
    assert caught.value.carrier == "zto"


def test_a_well_formed_scan_parses_and_millis_may_be_a_number() -> None:
    (result,) = asyncio.run(answering(200, answer([{**GOOD, "scanDate": 1794360600000}])).track(["78100000000005"]))
    assert result.events[0].status is DL
    assert result.events[0].time == utc(2026, 11, 11, 1, 30)


@pytest.mark.parametrize("status", [400, 404, 302])
def test_other_http_statuses_are_response_errors(status: int) -> None:
    with pytest.raises(CarrierError) as caught:
        asyncio.run(answering(status, "<html>nope</html>").track(["78100000000005"]))
    assert type(caught.value) is CarrierResponseError
    assert caught.value.raw == "<html>nope</html>"
