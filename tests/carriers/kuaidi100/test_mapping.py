"""Parse the response (pure): every state fixture, the code table, the time zone, malformed payloads."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carriers.errors import CarrierResponseError
from carriers.kuaidi100.mapping import CODE_BY_NAME, REASON_BY_CODE, STATUS_BY_CODE, query_events
from carriers.model import ExceptionReason, Status
from tests.carriers.payloads import KUAIDI100_FIXTURES as FIXTURES
from tests.carriers.payloads import kuaidi100_recorded as fixture

S = Status
R = ExceptionReason
OUT = [S.PENDING, S.PICKED_UP, S.IN_TRANSIT, S.IN_TRANSIT, S.IN_TRANSIT, S.OUT_FOR_DELIVERY]
#: fixture -> statuses of its events, oldest first, and the reason of the last one.
EXPECTED: dict[str, tuple[list[Status], ExceptionReason | None]] = {
    "query_state_1": ([S.PENDING, S.PENDING, S.PICKED_UP], None),
    "query_state_0": (OUT[:-1], None),
    "query_state_5": (OUT, None),
    "query_state_501": ([*OUT, S.AVAILABLE_FOR_PICKUP], None),
    "query_state_3": ([*OUT, S.DELIVERED], None),
    "query_state_2": ([*OUT, S.DELIVERY_FAILED, S.EXCEPTION, S.EXCEPTION, S.EXCEPTION], R.OTHER),
    "query_state_14": ([*OUT, S.EXCEPTION], R.REFUSED),
    "query_state_6": ([*OUT, S.EXCEPTION, S.RETURNING], None),
    "query_state_4": ([*OUT, S.RETURNING, S.RETURNED], None),
    "query_state_7": ([*OUT[:-1], S.IN_TRANSIT], None),
    "query_state_8": ([S.PICKED_UP, S.IN_TRANSIT], None),
    "query_state_10": ([S.PICKED_UP, S.IN_TRANSIT], None),
    "query_state_11": ([S.IN_TRANSIT, S.IN_TRANSIT], None),
    "query_state_12": ([S.IN_TRANSIT, S.IN_TRANSIT], None),
    "query_state_13": ([S.IN_TRANSIT, S.EXCEPTION], R.CUSTOMS),
    "query_resultv2_1": ([S.PICKED_UP, S.PICKED_UP, S.IN_TRANSIT, S.IN_TRANSIT, S.IN_TRANSIT], None),
}


def body(name: str) -> dict[str, Any]:
    return fixture(name)["body"]


def codes_in(payload: dict[str, Any]) -> set[str]:
    found = {str(payload["state"])} if payload.get("state") not in (None, "") else set()
    return found | {str(e["statusCode"]) for e in payload["data"] if e.get("statusCode")}


def test_every_state_fixture_is_checked() -> None:
    assert {p.stem for p in FIXTURES.glob("query_*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_state_fixture_maps_to_expected_statuses(name: str) -> None:
    statuses, reason = EXPECTED[name]
    events = query_events("N1", body(name))
    assert [e.status for e in events] == statuses
    assert events[-1].reason is reason
    newest = body(name)["data"][0]
    assert events[-1].raw_code == (newest.get("statusCode") or CODE_BY_NAME[newest["status"]])


def test_state_2_sub_states_keep_their_reasons() -> None:
    events = query_events("N1", body("query_state_2"))
    assert [(e.raw_code, e.status, e.reason) for e in events[-4:]] == [
        ("204", S.DELIVERY_FAILED, None),
        ("207", S.EXCEPTION, R.ADDRESS),
        ("209", S.EXCEPTION, R.DAMAGED),
        ("2", S.EXCEPTION, R.OTHER),
    ]


def test_every_code_seen_in_the_fixtures_is_in_the_table() -> None:
    seen: set[str] = set()
    for path in FIXTURES.glob("query_*.json"):
        seen |= codes_in(json.loads(path.read_text(encoding="utf-8"))["body"])
    for path in FIXTURES.glob("push_*.json"):
        seen |= codes_in(json.loads(json.loads(path.read_text(encoding="utf-8"))["param"])["lastResult"])
    assert seen - set(STATUS_BY_CODE) == set()
    assert {"0", "1", "2", "3", "4", "5", "6", "7", "8", "10", "11", "12", "13", "14", "501"} <= seen


def test_exception_codes_and_only_those_have_a_reason() -> None:
    exceptions = {code for code, status in STATUS_BY_CODE.items() if status is Status.EXCEPTION}
    assert set(REASON_BY_CODE) == exceptions


def test_time_is_parsed_in_shanghai() -> None:
    events = query_events("N1", body("query_state_5"))
    newest = events[-1]
    assert body("query_state_5")["data"][0]["ftime"] == "2026-11-11 09:30:00"
    assert newest.time.utcoffset() == timedelta(hours=8)
    assert newest.time.astimezone(UTC) == datetime(2026, 11, 11, 1, 30, tzinfo=UTC)


def test_time_falls_back_to_time_when_ftime_is_empty() -> None:
    payload = {"state": "0", "data": [{"context": "x", "time": "2026-11-11 00:05:00", "ftime": ""}]}
    (event,) = query_events("N1", payload)
    assert event.time.astimezone(UTC) == datetime(2026, 11, 10, 16, 5, tzinfo=UTC)


def test_events_keep_carrier_number_code_text_and_location_oldest_first() -> None:
    events = query_events("ZT7800000000501", body("query_state_501"))
    assert [e.time for e in events] == sorted(e.time for e in events)
    last = events[-1]
    assert (last.carrier, last.tracking_no, last.raw_code) == ("kuaidi100", "ZT7800000000501", "501")
    assert last.raw_text.startswith("【郑州市】快件已存放至菜鸟驿站")
    assert last.location == "菜鸟驿站（郑州建设路店）"


def test_location_falls_back_to_area_name() -> None:
    (first, *_) = query_events("N1", body("query_state_0"))
    assert first.location == "浙江,杭州市"


def test_names_give_codes_when_there_is_no_status_code() -> None:
    events = query_events("N1", body("query_resultv2_1"))
    assert [e.raw_code for e in events] == ["1", "1", "0", "0", "0"]


def test_newest_event_without_a_code_takes_the_current_state() -> None:
    payload = copy.deepcopy(body("query_state_3"))
    for event in payload["data"]:
        event.pop("statusCode")
        event.pop("status")
    events = query_events("N1", payload)
    assert events[-1].raw_code == "3" and events[-1].status is Status.DELIVERED
    assert {e.status for e in events[:-1]} == {None}


def test_unknown_code_is_kept_with_status_none() -> None:
    payload = copy.deepcopy(body("query_state_5"))
    payload["data"][0]["statusCode"] = "999"
    newest = query_events("N1", payload)[-1]
    assert (newest.raw_code, newest.status, newest.reason) == ("999", None, None)
    assert newest.raw_text == payload["data"][0]["context"]


def test_empty_history_gives_no_events() -> None:
    assert query_events("N1", {"state": "0", "data": []}) == ()


def test_integer_codes_are_read_as_text() -> None:
    payload = {"state": 5, "data": [{"context": "x", "ftime": "2026-11-11 09:30:00", "statusCode": 501}]}
    assert query_events("N1", payload)[0].status is Status.AVAILABLE_FOR_PICKUP


EVENT = {"context": "x", "ftime": "2026-11-11 09:30:00"}
MALFORMED: list[object] = [
    [],
    "ok",
    None,
    {},
    {"state": "0", "data": "none"},
    {"state": "0", "data": {"context": "x"}},
    {"state": "0", "data": [1]},
    {"state": "0", "data": [{"ftime": "2026-11-11 09:30:00"}]},
    {"state": "0", "data": [{"context": "x"}]},
    {"state": "0", "data": [{"context": "x", "ftime": "", "time": ""}]},
    {"state": "0", "data": [{"context": "x", "ftime": "11/11/2026 09:30"}]},
    {"state": "0", "data": [{"context": "x", "ftime": "2026-02-30 09:30:00"}]},
    {"state": "0", "data": [{"context": "x", "ftime": "2026-11-11T09:30:00+08:00"}]},
    {"state": "0", "data": [{"context": True, "ftime": "2026-11-11 09:30:00"}]},
    {"state": "0", "data": [{**EVENT, "statusCode": {"code": "3"}}]},
    {"state": "0", "data": [{**EVENT, "statusCode": True}]},
    {"state": ["3"], "data": [EVENT]},
    {"state": "0", "data": [{**EVENT, "location": 12.5}]},
]


@pytest.mark.parametrize("payload", MALFORMED, ids=[json.dumps(p, ensure_ascii=False)[:40] for p in MALFORMED])
def test_malformed_payload_raises_with_the_raw_payload_kept(payload: object) -> None:
    with pytest.raises(CarrierResponseError) as caught:
        query_events("N1", payload)
    assert caught.value.raw is payload
    assert caught.value.carrier == "kuaidi100"
