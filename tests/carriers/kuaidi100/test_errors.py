"""Parse the error: errors in the body (HTTP 200), HTTP failures, timeouts, a closed port, unreadable answers."""

from __future__ import annotations

import httpx
import pytest

from carriers.errors import (
    CarrierAuthError,
    CarrierError,
    CarrierRateLimited,
    CarrierResponseError,
    CarrierUnavailable,
)
from carriers.model import TrackingResult
from carriers.testing.kuaidi100 import make_settings
from carriers.testing.server import closed_port
from tests.carriers.payloads import FakeKuaidi100, with_carrier
from tests.carriers.payloads import Kuaidi100Reply as Reply
from tests.carriers.payloads import kuaidi100_recorded as fixture

NUMBER = "ZT7800000000005"


def track_with(reply: Reply, **settings: object) -> TrackingResult:
    """Track one number against a server that passes the signature check and then answers ``reply``."""
    with FakeKuaidi100(force=reply) as server:
        (result,) = with_carrier(make_settings(server.base_url, **settings), lambda c: c.track([NUMBER]))
    return result


def fails_with(reply: Reply, error: type[CarrierError], **settings: object) -> CarrierError:
    with pytest.raises(error) as caught:
        track_with(reply, **settings)
    assert caught.value.carrier == "kuaidi100"
    return caught.value


@pytest.mark.parametrize(("name", "problem"), [("error_no_result", "not_found"), ("error_phone_check", "rejected")])
def test_a_number_problem_is_data_on_the_result(name: str, problem: str) -> None:
    result = track_with(Reply.recorded(name))
    assert (result.tracking_no, result.problem, result.events) == (NUMBER, problem, ())
    assert result.problem_code == fixture(name)["body"]["returnCode"]


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("error_bad_sign", CarrierAuthError),
        ("error_no_company", CarrierAuthError),
        ("error_key_expired", CarrierAuthError),
        ("error_server_busy", CarrierUnavailable),
    ],
)
def test_a_call_error_in_the_body_is_typed(name: str, error: type[CarrierError]) -> None:
    raised = fails_with(Reply.recorded(name), error)
    assert raised.code == fixture(name)["body"]["returnCode"]
    assert fixture(name)["body"]["message"] in str(raised)


def test_an_undocumented_return_code_is_a_response_error_keeping_the_body() -> None:
    body = {"result": False, "returnCode": "999", "message": "新错误"}
    raised = fails_with(Reply(200, body), CarrierResponseError)
    assert isinstance(raised, CarrierResponseError) and raised.raw == body and raised.code == "999"


def test_http_500_is_unavailable() -> None:
    raised = fails_with(Reply(500, "<html><body>500 Internal Server Error</body></html>"), CarrierUnavailable)
    assert raised.code == "500"


def test_a_timeout_is_unavailable_and_keeps_its_cause() -> None:
    raised = fails_with(
        Reply(200, fixture("query_state_5")["body"], delay=1.0), CarrierUnavailable, timeout_seconds=0.2, retries=0
    )
    assert isinstance(raised.__cause__, httpx.TimeoutException)


def test_a_closed_port_is_unavailable_and_keeps_its_cause() -> None:
    settings = make_settings(f"http://127.0.0.1:{closed_port()}", timeout_seconds=2.0)
    with pytest.raises(CarrierUnavailable) as caught:
        with_carrier(settings, lambda c: c.track([NUMBER]))
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_http_429_is_rate_limited_with_retry_after() -> None:
    # Not a documented Kuaidi100 answer (its errors come in the body); a gateway may still send it.
    raised = fails_with(Reply(429, "Too Many Requests", headers={"Retry-After": "120"}), CarrierRateLimited)
    assert isinstance(raised, CarrierRateLimited) and raised.retry_after == 120.0


def test_http_429_without_retry_after() -> None:
    raised = fails_with(Reply(429, ""), CarrierRateLimited)
    assert isinstance(raised, CarrierRateLimited) and raised.retry_after is None


@pytest.mark.parametrize(("status", "error"), [(403, CarrierAuthError), (404, CarrierResponseError)])
def test_other_http_statuses(status: int, error: type[CarrierError]) -> None:
    fails_with(Reply(status, "nope"), error)


@pytest.mark.parametrize(
    "text",
    [
        "<html>查询失败</html>",
        '{"message":"ok","state":"5","data":[{"context":"x","ftime":"2026-11-11 09:3',
        "",
        "null",
    ],
    ids=["html", "truncated", "empty", "null"],
)
def test_unreadable_json_is_a_response_error_keeping_the_text(text: str) -> None:
    raised = fails_with(Reply(200, text), CarrierResponseError)
    assert isinstance(raised, CarrierResponseError)
    assert raised.raw == (None if text == "null" else text)


@pytest.mark.parametrize(
    "body",
    [
        ["ok"],
        {"message": "ok", "status": "200", "state": "5"},
        {"message": "ok", "status": "200", "state": "5", "data": [{"context": "x", "ftime": "yesterday"}]},
        {"result": False, "message": "no code"},
        {"result": "false", "returnCode": "500", "message": "查询无结果"},
        {"result": False, "returnCode": None},
    ],
    ids=["list", "no-data", "bad-time", "no-return-code", "string-result", "null-return-code"],
)
def test_unexpected_json_is_a_response_error_never_a_wrong_status(body: object) -> None:
    raised = fails_with(Reply(200, body), CarrierResponseError)
    assert isinstance(raised, CarrierResponseError) and raised.raw == body


def test_errors_chain_to_the_carrier_error_base() -> None:
    for error in (CarrierAuthError, CarrierRateLimited, CarrierUnavailable, CarrierResponseError):
        assert issubclass(error, CarrierError)
