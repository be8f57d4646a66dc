"""Read Kuaidi100's push callbacks: the form body, the MD5(param + salt) signature, the results."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from structlog.testing import capture_logs

from carriers.adapter import SupportsPush
from carriers.errors import CarrierAuthError, CarrierResponseError
from carriers.kuaidi100 import Kuaidi100Carrier, push_ack
from carriers.model import Status
from carriers.testing.kuaidi100 import make_settings
from tests.carriers.payloads import kuaidi100_recorded as fixture

PUSH = fixture("push_callback")
#: A push token: with it and no salt, the push route checks ``?token=`` and the adapter reads unsigned bodies.
TOKEN = "push-token-0123456789"
ABORT = fixture("push_abort")
HEADERS = {"content-type": "application/x-www-form-urlencoded"}


def carrier(**settings: Any) -> Kuaidi100Carrier:
    return Kuaidi100Carrier(make_settings(**({"salt": PUSH["salt"]} | settings)), httpx.AsyncClient())


def form(param: str, sign: str | None) -> bytes:
    fields = {"param": param} if sign is None else {"param": param, "sign": sign}
    return urlencode(fields).encode()


def signed(param: str, salt: str = PUSH["salt"]) -> bytes:
    return form(param, hashlib.md5((param + salt).encode()).hexdigest().upper())


def test_the_adapter_supports_push() -> None:
    assert isinstance(carrier(), SupportsPush)


def test_a_signed_push_gives_the_numbers_result() -> None:
    (result,) = carrier().parse_push(form(PUSH["param"], PUSH["sign"]), HEADERS)
    assert (result.carrier, result.tracking_no, result.problem) == ("kuaidi100", "ZT7800000000003", None)
    assert [e.status for e in result.events][-2:] == [Status.OUT_FOR_DELIVERY, Status.DELIVERED]
    assert result.events[-1].raw_code == "301"
    assert len(result.events) == len(json.loads(PUSH["param"])["lastResult"]["data"])


def test_the_fixture_sign_is_upper_md5_of_param_and_salt() -> None:
    assert PUSH["sign"] == hashlib.md5((PUSH["param"] + PUSH["salt"]).encode()).hexdigest().upper()


def test_a_lower_case_sign_is_accepted() -> None:
    assert carrier().parse_push(form(PUSH["param"], PUSH["sign"].lower()), HEADERS)


@pytest.mark.parametrize(
    "body",
    [
        form(PUSH["param"], "0" * 32),
        form(PUSH["param"], None),
        form(PUSH["param"], ""),
        form(PUSH["param"].replace("ZT7800000000003", "ZT7800000000004"), PUSH["sign"]),
        signed(PUSH["param"], salt="another-salt"),
        form(PUSH["param"], "签名" * 16),
    ],
    ids=["wrong", "missing", "empty", "tampered", "other-salt", "not-ascii"],
)
def test_a_bad_signature_is_an_auth_error(body: bytes) -> None:
    with pytest.raises(CarrierAuthError):
        carrier().parse_push(body, HEADERS)


def test_without_a_salt_or_a_push_token_every_push_is_refused() -> None:
    with pytest.raises(CarrierAuthError, match="pushes are off"):
        carrier(salt=None).parse_push(form(PUSH["param"], PUSH["sign"]), HEADERS)


def test_with_a_push_token_and_no_salt_the_route_checks_the_token_and_the_body_is_read() -> None:
    (result,) = carrier(salt=None, push_token=TOKEN).parse_push(form(PUSH["param"], None), HEADERS)
    assert result.events[-1].status is Status.DELIVERED


def test_abort_is_a_problem_on_the_result() -> None:
    (result,) = carrier(company="zhongtong").parse_push(form(ABORT["param"], ABORT["sign"]), HEADERS)
    assert (result.tracking_no, result.events) == ("yuantong:YT0000000000404", ())
    assert (result.problem, result.problem_code) == ("monitoring_stopped", "abort")


def test_a_number_of_another_company_is_prefixed_like_track_reads_it() -> None:
    (result,) = carrier(company="yuantong").parse_push(form(PUSH["param"], PUSH["sign"]), HEADERS)
    assert result.tracking_no == "zhongtong:ZT7800000000003"
    (abort,) = carrier(company="yuantong").parse_push(form(ABORT["param"], ABORT["sign"]), HEADERS)
    assert abort.tracking_no == "YT0000000000404"


def test_a_corrected_company_keeps_the_number_as_subscribed() -> None:
    param = json.loads(PUSH["param"])
    param |= {"autoCheck": "1", "comOld": "yuantong", "comNew": "zhongtong"}
    text = json.dumps(param, ensure_ascii=False)
    (result,) = carrier(company="yuantong").parse_push(signed(text), HEADERS)
    assert result.tracking_no == "ZT7800000000003"


def test_an_unknown_code_in_a_push_is_kept_and_logged_once() -> None:
    param = json.loads(PUSH["param"])
    param["lastResult"]["data"][0]["statusCode"] = "999"
    body = signed(json.dumps(param, ensure_ascii=False))
    adapter = carrier()
    with capture_logs() as logs:
        for _ in range(3):
            (result,) = adapter.parse_push(body, HEADERS)
    assert result.events[-1].raw_code == "999" and result.events[-1].status is None
    assert adapter.unknown_codes["999"] == 3
    assert [entry["code"] for entry in logs if entry["event"] == "carrier.unknown_code"] == ["999"]


@pytest.mark.parametrize(
    "body",
    [
        b"param=%FF%FE&sign=x",
        b"\xff\xfe",
        b"",
        b"sign=ABC",
        form("{not json", None),
        form("[1, 2]", None),
        form(json.dumps({"status": "polling"}), None),
        form(json.dumps({"status": "polling", "lastResult": {"nu": "", "com": "", "data": []}}), None),
        form(json.dumps({"status": "polling", "lastResult": {"nu": "A1", "com": "ems", "data": "x"}}), None),
        urlencode([("param", PUSH["param"]), ("param", PUSH["param"])]).encode(),
    ],
    ids=[
        "bad-utf8-param",
        "bad-utf8",
        "empty",
        "no-param",
        "not-json",
        "list",
        "no-last-result",
        "no-nu",
        "bad-data",
        "two",
    ],
)
def test_an_unreadable_push_is_a_response_error(body: bytes) -> None:
    with pytest.raises(CarrierResponseError) as caught:
        carrier(salt=None, push_token=TOKEN).parse_push(body, HEADERS)
    assert caught.value.raw is not None


def test_push_ack_is_json_serializable_as_documented() -> None:
    assert json.loads(json.dumps(push_ack(), ensure_ascii=False)) == {
        "result": True,
        "returnCode": "200",
        "message": "成功",
    }
