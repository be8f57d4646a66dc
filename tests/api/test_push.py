"""POST /api/v1/carriers/{carrier}/push: the Kuaidi100 adapter reads the push, we store and acknowledge.

Every push route is authenticated, never open by default: the carrier's signature (a salt) or a
token in the callback URL; with neither configured the route is off.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from carriers.errors import CarrierAuthError, CarrierResponseError
from carriers.kuaidi100 import Kuaidi100Carrier, Kuaidi100Settings, build_subscribe
from carriers.model import Status, TrackingEvent, TrackingResult
from carriers.testing.kuaidi100 import make_settings
from monitor.store.models import Parcel
from monitor.store.store import Store
from tests.api.server import SALT, ApiServer, running_api, stored
from tests.carriers.payloads import kuaidi100_recorded as fixture
from tests.helpers import CLI

PUSH = fixture("push_callback")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
KUAIDI100_ACK = {"result": True, "returnCode": "200", "message": "成功"}


def form(param: str, sign: str | None) -> bytes:
    return urlencode({"param": param} | ({"sign": sign} if sign is not None else {})).encode()


def signed(param: str, salt: str = SALT) -> bytes:
    return form(param, hashlib.md5((param + salt).encode()).hexdigest().upper())


def ship_kuaidi100(api: ApiServer, no: str = "ZT7800000000003") -> None:
    body = {"order_id": "O1", "carrier": "kuaidi100", "tracking_no": no, "shipped_at": "2026-11-10T18:00:00+08:00"}
    with api.client() as http:
        assert http.post("/api/v1/shipments", json=body).status_code == 201


def push(api: ApiServer, body: bytes, carrier: str = "kuaidi100") -> Any:
    with api.client(token=None) as http:  # a carrier has no bearer token
        return http.post(f"/api/v1/carriers/{carrier}/push", content=body, headers=FORM)


def test_a_signed_push_stores_the_events_and_answers_kuaidi100s_ack(api: ApiServer) -> None:
    ship_kuaidi100(api)
    response = push(api, form(PUSH["param"], PUSH["sign"]))
    assert response.status_code == 200
    assert response.json() == KUAIDI100_ACK
    with api.client() as http:
        detail = http.get("/api/v1/parcels/kuaidi100/ZT7800000000003").json()
    pushed = json.loads(PUSH["param"])["lastResult"]["data"]
    assert len(detail["timeline"]) == len(pushed)
    last = detail["timeline"][-1]
    assert (last["status"], last["raw_code"], last["raw_text"]) == ("delivered", "301", pushed[0]["context"])
    assert last["time"] == "2026-11-11T07:02:00Z"  # 15:02 in Shanghai
    assert detail["parcel"]["status"] == "delivered"


def test_a_push_repeated_stores_each_event_once(api: ApiServer) -> None:
    ship_kuaidi100(api)
    push(api, form(PUSH["param"], PUSH["sign"]))
    before = stored(api.store)["tracking_event"]
    assert push(api, form(PUSH["param"], PUSH["sign"])).json() == KUAIDI100_ACK
    assert stored(api.store)["tracking_event"] == before


def test_a_push_for_a_number_we_do_not_watch_is_acknowledged_and_stores_nothing(api: ApiServer) -> None:
    response = push(api, form(PUSH["param"], PUSH["sign"]))
    assert response.json() == KUAIDI100_ACK
    assert stored(api.store)["tracking_event"] == 0


def test_an_exception_push_opens_a_carrier_exception_anomaly(api: ApiServer) -> None:
    ship_kuaidi100(api)
    param = json.loads(PUSH["param"])
    param["lastResult"]["state"] = "2"
    param["lastResult"]["data"] = [
        {"time": "2026-11-11 12:00:00", "ftime": "2026-11-11 12:00:00", "context": "【郑州市】地址不详，联系不上收件人",
         "status": "疑难", "statusCode": "2"},
        {"time": "2026-11-11 08:00:00", "ftime": "2026-11-11 08:00:00", "context": "【杭州市】已揽收", "status": "揽收",
         "statusCode": "1"},
    ]  # fmt: skip
    assert push(api, signed(json.dumps(param, ensure_ascii=False))).json() == KUAIDI100_ACK
    with api.client() as http:
        (anomaly,) = http.get("/api/v1/anomalies", params={"rule": "carrier_exception"}).json()["items"]
    assert anomaly["parcel"]["tracking_no"] == "ZT7800000000003"


@pytest.mark.parametrize(
    "body",
    [form(PUSH["param"], "0" * 32), form(PUSH["param"], None), signed(PUSH["param"], salt="guessed")],
    ids=["wrong-sign", "no-sign", "other-salt"],
)
def test_a_badly_signed_push_is_401_and_stores_nothing(api: ApiServer, body: bytes) -> None:
    ship_kuaidi100(api)
    before = stored(api.store)
    response = push(api, body)
    assert response.status_code == 401
    assert response.json() == {
        "result": False,
        "returnCode": "500",
        "message": "kuaidi100: push signature does not match",
    }
    assert stored(api.store) == before


def test_an_unreadable_push_is_400(api: ApiServer) -> None:
    response = push(api, signed("{not json"))
    assert response.status_code == 400
    assert (response.json()["result"], response.json()["returnCode"]) == (False, "500")  # Kuaidi100 retries it
    assert "not JSON" in response.json()["message"]


def test_an_unknown_carrier_is_404_without_listing_the_configured_ones(api: ApiServer) -> None:
    response = push(api, b"x", carrier="yunda")
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["field"]) == (404, "unknown_carrier", "carrier")
    assert "allowed" not in error
    assert "kuaidi100" not in response.text and "sandbox" not in response.text


def test_a_carrier_without_push_is_501(api: ApiServer) -> None:
    response = push(api, b"x", carrier="sandbox")
    assert response.status_code == 501
    assert response.json()["error"]["code"] == "push_not_supported"


def test_the_push_body_and_sign_are_never_logged(api: ApiServer) -> None:
    ship_kuaidi100(api)
    with capture_logs() as logs:
        push(api, form(PUSH["param"], PUSH["sign"]))
        push(api, form(PUSH["param"], "0" * 32))
    (received,) = [e for e in logs if e["event"] == "push.received"]
    pushed = len(json.loads(PUSH["param"])["lastResult"]["data"])
    assert (received["carrier"], received["results"], received["events"]) == ("kuaidi100", 1, pushed)
    text = repr(logs)
    assert PUSH["sign"] not in text and "0" * 32 not in text and "郑州" not in text


# -- adapters with and without an acknowledgement of their own --------------------------------


class AckingCarrier:
    """A carrier that answers pushes in its own format, failures included."""

    code = "acking"
    push_signed = True  # parse_push checks the X-Token header itself

    def parse_push(self, body: bytes, headers: Mapping[str, str]) -> list[TrackingResult]:
        if headers.get("x-token") != "ok":
            raise CarrierAuthError("acking: bad token", carrier=self.code)
        if body == b"garbage":
            raise CarrierResponseError("acking: unreadable", carrier=self.code, raw=body)
        if body == b"bug":
            raise KeyError("a mapping bug")  # an adapter bug must fail loudly, not be acknowledged
        when = datetime(2026, 11, 11, 3, 0, tzinfo=UTC)
        event = TrackingEvent(self.code, body.decode(), when, Status.PICKED_UP, raw_code="PU", raw_text="picked up")
        return [TrackingResult(self.code, body.decode(), (event,))]

    def push_ack(self, ok: bool = True, message: str = "") -> dict[str, Any]:
        return {"code": 0 if ok else 1, "msg": message or "success"}


class PlainCarrier(AckingCarrier):
    """A carrier that expects no particular answer."""

    code = "plain"
    push_ack = None  # type: ignore[assignment]


@pytest.fixture
def api_with_fakes(store: Store) -> Iterator[ApiServer]:
    with running_api(store, extra_adapters={"acking": AckingCarrier(), "plain": PlainCarrier()}) as server:
        yield server


def test_an_adapters_own_ack_answers_success_and_failure(api_with_fakes: ApiServer) -> None:
    api = api_with_fakes
    body = {"order_id": "O1", "carrier": "acking", "tracking_no": "A1", "shipped_at": "2026-11-11T09:00:00+08:00"}
    with api.client() as http:
        http.post("/api/v1/shipments", json=body)
    with api.client(token=None) as http:
        ok = http.post("/api/v1/carriers/acking/push", content=b"A1", headers={"X-Token": "ok"})
        refused = http.post("/api/v1/carriers/acking/push", content=b"A1", headers={"X-Token": "no"})
        unreadable = http.post("/api/v1/carriers/acking/push", content=b"garbage", headers={"X-Token": "ok"})
    assert (ok.status_code, ok.json()) == (200, {"code": 0, "msg": "success"})
    assert (refused.status_code, refused.json()) == (401, {"code": 1, "msg": "acking: bad token"})
    assert (unreadable.status_code, unreadable.json()) == (400, {"code": 1, "msg": "acking: unreadable"})
    with api.client() as http:
        assert http.get("/api/v1/parcels/acking/A1").json()["parcel"]["status"] == "picked_up"


def test_an_adapter_without_an_ack_gets_ok_true(api_with_fakes: ApiServer) -> None:
    with api_with_fakes.client(token=None) as http:
        ok = http.post("/api/v1/carriers/plain/push", content=b"P1", headers={"X-Token": "ok"})
        refused = http.post("/api/v1/carriers/plain/push", content=b"P1", headers={"X-Token": "no"})
    assert (ok.status_code, ok.json()) == (200, {"ok": True})
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "bad_signature")


def test_an_adapter_bug_is_a_500_in_the_one_shape_and_the_server_goes_on(api_with_fakes: ApiServer) -> None:
    with api_with_fakes.client(token=None) as http:
        broken = http.post("/api/v1/carriers/acking/push", content=b"bug", headers={"X-Token": "ok"})
        after = http.get("/healthz")
    assert broken.status_code == 500
    assert broken.json()["error"]["code"] == "internal_error"
    assert "mapping bug" not in broken.text
    assert after.status_code == 200


# -- no salt, no token: the route is off; a token in the callback URL turns it on ---------------

TOKEN = "push-token-3c9e1b7a5d"
TRANSIT = datetime(2026, 11, 11, 8, 0, tzinfo=UTC)


def forged_delivered(no: str = "ZT7800000000003") -> bytes:
    """A Kuaidi100-shaped "delivered" push signed by nobody (anyone can write one)."""
    param = json.loads(PUSH["param"])
    param["lastResult"]["nu"] = no
    param["lastResult"]["state"] = "3"
    param["lastResult"]["data"] = [
        {"time": "2026-11-11 18:00:00", "ftime": "2026-11-11 18:00:00", "context": "已签收", "status": "签收",
         "statusCode": "301"},
    ]  # fmt: skip
    return form(json.dumps(param, ensure_ascii=False), None)


def next_poll(api: ApiServer, no: str = "ZT7800000000003") -> datetime | None:
    column = Parcel.__table__.c
    with api.store.engine.connect() as conn:
        return conn.execute(select(column.next_poll_at).where(column.tracking_no == no)).scalar()


def serve_kuaidi100(store: Store, **settings: Any) -> Iterator[ApiServer]:
    """Serve the API with a Kuaidi100 adapter of these settings (no salt unless given)."""
    http = httpx.AsyncClient()
    adapter = Kuaidi100Carrier(make_settings(**settings), http)
    with running_api(store, extra_adapters={"kuaidi100": adapter}) as server:
        yield server
        server.call(http.aclose())


@pytest.fixture
def unsigned_api(store: Store) -> Iterator[ApiServer]:
    """The API with Kuaidi100 configured without salt and without push token (the old open default)."""
    yield from serve_kuaidi100(store)


@pytest.fixture
def token_api(store: Store) -> Iterator[ApiServer]:
    """The API with Kuaidi100 authenticated by a token in the callback URL only."""
    yield from serve_kuaidi100(store, push_token=TOKEN)


def test_a_forged_delivered_push_without_salt_is_refused_and_changes_nothing(unsigned_api: ApiServer) -> None:
    api = unsigned_api
    ship_kuaidi100(api)
    api.scan("ZT7800000000003", Status.IN_TRANSIT, TRANSIT, carrier="kuaidi100", raw_code="0")
    polling = next_poll(api)
    before = stored(api.store)
    with capture_logs() as logs:
        response = push(api, forged_delivered())
    assert response.status_code == 404
    assert response.json() == {
        "result": False,
        "returnCode": "500",
        "message": "push callbacks are off for this carrier",
    }
    assert stored(api.store) == before
    with api.client() as http:
        parcel = http.get("/api/v1/parcels/kuaidi100/ZT7800000000003").json()["parcel"]
    assert (parcel["status"], parcel["delivered_at"]) == ("in_transit", None)
    assert polling is not None and next_poll(api) == polling  # polling goes on
    (disabled,) = [e for e in logs if e["event"] == "push.disabled"]
    assert disabled["carrier"] == "kuaidi100" and "no push token" in disabled["reason"]


def test_the_adapter_itself_refuses_pushes_with_neither_salt_nor_token() -> None:
    adapter = Kuaidi100Carrier(make_settings(), httpx.AsyncClient())
    assert (adapter.push_signed, adapter.push_token) == (False, None)
    with pytest.raises(CarrierAuthError, match="pushes are off"):
        adapter.parse_push(forged_delivered(), {})


def test_a_push_with_the_callback_token_is_accepted(token_api: ApiServer) -> None:
    api = token_api
    ship_kuaidi100(api)
    with api.client(token=None) as http:
        response = http.post(f"/api/v1/carriers/kuaidi100/push?token={TOKEN}", content=forged_delivered(), headers=FORM)
    assert (response.status_code, response.json()) == (200, KUAIDI100_ACK)
    with api.client() as http:
        assert http.get("/api/v1/parcels/kuaidi100/ZT7800000000003").json()["parcel"]["status"] == "delivered"


@pytest.mark.parametrize("query", ["", "?token=", "?token=push-token-3c9e1b7a5e", f"?token={TOKEN}x"])
def test_a_push_without_the_right_token_is_401_and_stores_nothing(token_api: ApiServer, query: str) -> None:
    api = token_api
    ship_kuaidi100(api)
    before = stored(api.store)
    with api.client(token=None) as http:
        response = http.post(f"/api/v1/carriers/kuaidi100/push{query}", content=forged_delivered(), headers=FORM)
    assert response.status_code == 401
    assert response.json() == {
        "result": False,
        "returnCode": "500",
        "message": "the callback URL's token does not match",
    }
    assert stored(api.store) == before


def test_salt_and_token_together_need_both(store: Store) -> None:
    for api in serve_kuaidi100(store, salt=SALT, push_token=TOKEN):
        ship_kuaidi100(api)
        signed_form = form(PUSH["param"], PUSH["sign"])
        with api.client(token=None) as http:
            unsigned = http.post(
                f"/api/v1/carriers/kuaidi100/push?token={TOKEN}", content=forged_delivered(), headers=FORM
            )
            no_token = http.post("/api/v1/carriers/kuaidi100/push", content=signed_form, headers=FORM)
            both = http.post(f"/api/v1/carriers/kuaidi100/push?token={TOKEN}", content=signed_form, headers=FORM)
        assert (unsigned.status_code, no_token.status_code, both.status_code) == (401, 401, 200)


def test_the_subscription_gives_kuaidi100_the_callback_url_with_the_token() -> None:
    settings = make_settings(
        callback_url="https://monitor.example.com/api/v1/carriers/kuaidi100/push", push_token=TOKEN
    )
    param = json.loads(build_subscribe(settings, "zhongtong", "ZT1")["param"])
    url = urlsplit(param["parameters"]["callbackurl"])
    assert (url.path, parse_qs(url.query)) == ("/api/v1/carriers/kuaidi100/push", {"token": [TOKEN]})


def test_a_short_push_token_is_refused_by_the_settings() -> None:
    table = {"company": "zhongtong", "customer_env": "C", "key_env": "K", "push_token_env": "T"}
    with pytest.raises(ValueError, match="push_token_env: the token must be at least 16 characters"):
        Kuaidi100Settings.from_mapping(table, {"C": "c", "K": "k", "T": "short"})
    settings = Kuaidi100Settings.from_mapping(table, {"C": "c", "K": "k", "T": TOKEN})
    assert settings.push_token == TOKEN and TOKEN not in repr(settings)


@pytest.mark.parametrize(
    ("extra", "env", "line"),
    [
        ("", {}, "  push: kuaidi100 off (no salt_env or push_token_env: pushes are refused; queries only)\n"),
        ('salt_env = "K100_SALT"\n', {"K100_SALT": "s"}, "  push: kuaidi100 on (signed with the salt)\n"),
        ('push_token_env = "K100_PUSH"\n', {"K100_PUSH": TOKEN}, "  push: kuaidi100 on (token in the URL)\n"),
    ],
    ids=["off", "salt", "token"],
)
def test_check_config_says_in_one_line_whether_pushes_are_on(
    tmp_path: Path, extra: str, env: dict[str, str], line: str
) -> None:
    config = tmp_path / "settings.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/m.db"\n[carriers.kuaidi100]\ncompany = "zhongtong"\n'
        f'customer_env = "K100_CUSTOMER"\nkey_env = "K100_KEY"\n{extra}',
        encoding="utf-8",
    )
    environ = os.environ | {"K100_CUSTOMER": "c", "K100_KEY": "k"} | env
    result = subprocess.run([CLI, "check-config", "--config", str(config)], capture_output=True, text=True, env=environ)
    assert result.returncode == 0, result.stderr
    assert line in result.stdout
    assert TOKEN not in result.stdout
