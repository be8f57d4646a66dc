"""Fetch against a real local server that speaks Kuaidi100's format and checks the signature as Kuaidi100 does."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime

import httpx
import pytest

from carriers.errors import CarrierAuthError, CarrierUnavailable
from carriers.kuaidi100 import INFO, Kuaidi100Carrier
from carriers.model import Status
from carriers.testing.kuaidi100 import CUSTOMER, KEY, make_settings
from tests.carriers.payloads import FakeKuaidi100, with_carrier
from tests.carriers.payloads import Kuaidi100Reply as Reply
from tests.carriers.payloads import kuaidi100_recorded as fixture

TRACKS = {
    "ZT7800000000005": "query_state_5",
    "ZT7800000000003": "query_state_3",
    "ZT7800000000501": "query_state_501",
    "EM100000013CN": "query_state_13",
}


def test_track_sends_a_signed_form_and_maps_the_answer() -> None:
    with FakeKuaidi100(TRACKS) as server:
        (result,) = with_carrier(make_settings(server.base_url), lambda c: c.track(["ZT7800000000005"]))
    assert (result.carrier, result.tracking_no, result.problem) == ("kuaidi100", "ZT7800000000005", None)
    assert result.events[-1].status is Status.OUT_FOR_DELIVERY
    assert result.events[-1].time.astimezone(UTC) == datetime(2026, 11, 11, 1, 30, tzinfo=UTC)
    ((path, headers, form),) = server.forms
    assert path == "/poll/query.do"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert set(form) == {"customer", "sign", "param"}
    assert json.loads(form["param"])["num"] == "ZT7800000000005"


def test_one_query_per_number_in_order() -> None:
    numbers = ["ZT7800000000003", "ZT7800000000501", "ZT7800000000005"]
    with FakeKuaidi100(TRACKS) as server:
        results = with_carrier(make_settings(server.base_url), lambda c: c.track(numbers))
    assert [r.tracking_no for r in results] == numbers
    assert [r.events[-1].status for r in results] == [
        Status.DELIVERED,
        Status.AVAILABLE_FOR_PICKUP,
        Status.OUT_FOR_DELIVERY,
    ]
    assert [json.loads(form["param"])["num"] for _, _, form in server.forms] == numbers


def test_a_prefixed_number_is_asked_with_its_own_company() -> None:
    with FakeKuaidi100(TRACKS) as server:
        (result,) = with_carrier(make_settings(server.base_url), lambda c: c.track(["ems:EM100000013CN"]))
    assert json.loads(server.forms[0][2]["param"])["com"] == "ems"
    assert result.tracking_no == "ems:EM100000013CN"
    assert result.events[-1].tracking_no == "ems:EM100000013CN"
    assert result.events[-1].status is Status.EXCEPTION


def test_an_unknown_number_is_a_problem_not_an_error() -> None:
    with FakeKuaidi100(TRACKS) as server:
        results = with_carrier(
            make_settings(server.base_url), lambda c: c.track(["ZT0000000000000", "ZT7800000000003"])
        )
    assert (results[0].problem, results[0].problem_code, results[0].events) == ("not_found", "500", ())
    assert results[1].problem is None and results[1].events[-1].status is Status.DELIVERED


def test_the_wrong_company_finds_nothing() -> None:
    with FakeKuaidi100(TRACKS) as server:
        (result,) = with_carrier(make_settings(server.base_url), lambda c: c.track(["yuantong:ZT7800000000003"]))
    assert result.problem == "not_found"


def test_a_wrong_key_fails_the_signature_check() -> None:
    with FakeKuaidi100(TRACKS) as server:
        settings = make_settings(server.base_url, key="not-the-key")
        with pytest.raises(CarrierAuthError) as caught:
            with_carrier(settings, lambda c: c.track(["ZT7800000000005"]))
    assert caught.value.code == "503"
    assert "验证签名失败" in str(caught.value)


def test_a_wrong_customer_is_refused() -> None:
    with FakeKuaidi100(TRACKS) as server, pytest.raises(CarrierAuthError) as caught:
        with_carrier(make_settings(server.base_url, customer="SOMEONE-ELSE"), lambda c: c.track(["ZT7800000000005"]))
    assert caught.value.code == "400"


def test_the_server_checks_what_the_adapter_signs() -> None:
    """The fake server recomputes the documented signature itself; prove it rejects a one-character change."""
    with FakeKuaidi100(TRACKS) as server:
        form = {"customer": CUSTOMER, "param": '{"com":"zhongtong","num":"ZT7800000000005"}'}
        good = hashlib.md5((form["param"] + KEY + CUSTOMER).encode()).hexdigest().upper()
        with httpx.Client() as http:
            ok = http.post(server.base_url + "/poll/query.do", data={**form, "sign": good}).json()
            bad = http.post(server.base_url + "/poll/query.do", data={**form, "sign": good.lower()}).json()
    assert ok["state"] == "5"
    assert bad["returnCode"] == "503"


def test_subscribe_then_subscribe_again() -> None:
    settings_kw = {"callback_url": "https://monitor.example.com/push", "salt": "k100-salt-7c1d2f"}
    with FakeKuaidi100(TRACKS) as server:
        settings = make_settings(server.base_url, **settings_kw)

        async def twice(carrier: Kuaidi100Carrier) -> list[str]:
            return [(await carrier.subscribe("ZT7800000000005")).return_code for _ in range(2)]

        assert with_carrier(settings, twice) == ["200", "501"]
    ((path, _, form), _) = server.forms
    assert path == "/poll" and form["schema"] == "json"
    assert server.subscribed[0]["parameters"]["callbackurl"] == "https://monitor.example.com/push"
    assert server.subscribed[0]["parameters"]["salt"] == "k100-salt-7c1d2f"


def test_subscribe_a_refused_company_is_an_answer() -> None:
    with FakeKuaidi100(TRACKS, force=Reply.recorded("subscribe_refused")) as server:
        settings = make_settings(server.base_url, callback_url="https://m.example.com/p")
        answer = with_carrier(settings, lambda c: c.subscribe("ZT1"))
    assert (answer.result, answer.return_code) == (False, "701")


@pytest.mark.parametrize(
    ("name", "error"), [("subscribe_bad_key", CarrierAuthError), ("subscribe_server_error", CarrierUnavailable)]
)
def test_subscribe_errors(name: str, error: type[Exception]) -> None:
    with FakeKuaidi100(TRACKS) as server:
        key = "wrong" if name == "subscribe_bad_key" else KEY
        settings = make_settings(server.base_url, key=key, callback_url="https://m.example.com/p")
        if name == "subscribe_server_error":
            server.force = Reply.recorded(name)
        with pytest.raises(error) as caught:
            with_carrier(settings, lambda c: c.subscribe("ZT1"))
    assert caught.value.code == fixture(name)["body"]["returnCode"]


def test_the_plugin_factory_builds_a_working_adapter() -> None:
    environ = {"K100_CUSTOMER": CUSTOMER, "K100_KEY": KEY}
    with FakeKuaidi100(TRACKS) as server:
        config = {
            "company": "zhongtong",
            "customer_env": "K100_CUSTOMER",
            "key_env": "K100_KEY",
            "base_url": server.base_url,
        }

        async def main() -> list[Status | None]:
            async with httpx.AsyncClient() as http:
                carrier = INFO.factory(config, {"http": http, "environ": environ, "clock": None})
                (result,) = await carrier.track(["ZT7800000000003"])
                return [e.status for e in result.events]

        assert asyncio.run(main())[-1] is Status.DELIVERED
