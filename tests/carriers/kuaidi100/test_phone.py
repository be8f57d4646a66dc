"""Kuaidi100's fine print: SF numbers are queried with the shop's own phone, other numbers without one.

The kit's FakeKuaidi100 refuses a ``shunfeng`` query without ``phone`` as Kuaidi100 does
(returnCode 408), so a query that forgets it comes back ``rejected``.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from carriers.kuaidi100 import Kuaidi100Settings
from carriers.testing.kuaidi100 import CST, CUSTOMER, KEY, body_for, make_settings
from tests.carriers.payloads import FakeKuaidi100, with_carrier
from tests.carriers.payloads import Kuaidi100Reply as Reply

SF_NUMBER = "SF1400000000001"
PICKED_UP = [(datetime(2026, 11, 11, 9, 0, tzinfo=CST), "1", "【杭州市】顺丰速运 已收取快件")]


def sf_answer() -> Reply:
    return Reply(200, body_for(SF_NUMBER, PICKED_UP, company="shunfeng"))


def test_an_sf_number_is_queried_with_the_last_four_digits_of_the_shop_phone() -> None:
    with FakeKuaidi100() as server:
        server.script.append(sf_answer())
        settings = make_settings(server.base_url, sender_phone="057188886666")
        (result,) = with_carrier(settings, lambda c: c.track([f"shunfeng:{SF_NUMBER}"]))
    assert result.problem is None and result.events
    ((_, _, form),) = server.forms
    param = json.loads(form["param"])
    assert (param["com"], param["num"], param["phone"]) == ("shunfeng", SF_NUMBER, "6666")


def test_without_a_phone_kuaidi100_rejects_every_sf_number() -> None:
    with FakeKuaidi100() as server:
        server.script.append(sf_answer())
        (result,) = with_carrier(make_settings(server.base_url), lambda c: c.track([f"shunfeng:{SF_NUMBER}"]))
    assert (result.problem, result.problem_code) == ("rejected", "408")


def test_other_companies_are_queried_without_the_phone() -> None:
    with FakeKuaidi100({"ZT7800000000005": "query_state_5"}) as server:
        server.script.append(Reply(200, body_for("YT100", PICKED_UP, company="yuantong")))
        settings = make_settings(server.base_url, sender_phone="057188886666")
        with_carrier(settings, lambda c: c.track(["yuantong:YT100"]))
    ((_, _, form),) = server.forms
    assert "phone" not in json.loads(form["param"])


def test_an_sf_account_needs_a_sender_phone() -> None:
    environ = {"K100_CUSTOMER": CUSTOMER, "K100_KEY": KEY}
    table = {"customer_env": "K100_CUSTOMER", "key_env": "K100_KEY", "company": "shunfeng"}
    with pytest.raises(ValueError, match="sender_phone: required when company is 'shunfeng'"):
        Kuaidi100Settings.from_mapping(table, environ)
    settings = Kuaidi100Settings.from_mapping(table | {"sender_phone": "0571-8888 6666"}, environ)
    assert settings.phone_for("shunfeng") == "6666" and settings.phone_for("yuantong") is None
    assert "6666" not in repr(settings)  # never printed with the settings
    with pytest.raises(ValueError, match="sender_phone: expected the shop's phone"):
        Kuaidi100Settings.from_mapping(table | {"sender_phone": "call us"}, environ)
