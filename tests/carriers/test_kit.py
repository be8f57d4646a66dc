"""The kit of local fakes itself: each fault mode happens on the wire, and what each adapter makes of it today.

The wire tests use a plain httpx client against the kit's server; the adapter tests run the real SF,
ZTO and Kuaidi100 adapters (retries off, short timeouts) against the kit's fakes with one fault on.
The mapping tables record the typed error or outcome each adapter gives a fault *today*: a change
of adapter behaviour (e.g. issue 10, item 2) shows up here as a changed row.
"""

from __future__ import annotations

import asyncio
import filecmp
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from carriers.errors import CarrierAuthError, CarrierRateLimited, CarrierResponseError, CarrierUnavailable
from carriers.kuaidi100 import Kuaidi100Carrier
from carriers.model import ParcelRef
from carriers.sf import INFO as SF_INFO
from carriers.testing import kuaidi100 as k100_kit
from carriers.testing import server as kit
from carriers.testing import sf as sf_kit
from carriers.testing import zto as zto_kit
from carriers.testing.clock import FixedClock
from carriers.zto import INFO as ZTO_INFO
from monitor.daemon.transport import daemon_client
from monitor.testing import receivers
from tests.carriers.payloads import FIXTURES, FakeKuaidi100, FakeSF, FakeZTO

SF_NUMBER = "SF1400000000001"
ZTO_NUMBER = "78100000000005"


def post(url: str, timeout: float = 5.0, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, timeout=timeout, **kwargs)


@pytest.fixture
def sf() -> Iterator[FakeSF]:
    with FakeSF() as server:
        yield server


# -- the faults on the wire ------------------------------------------------------------------


def test_5xx_answers_the_status_asked_for_the_next_n_requests_then_the_usual_answer(sf: FakeSF) -> None:
    sf.fail("5xx", times=2, status=502)
    codes = [post(sf.url, data={"x": "1"}).status_code for _ in range(3)]
    assert codes == [502, 502, 200]
    assert [kind for kind, _ in sf.faulted] == ["5xx", "5xx"]
    assert len(sf.received) == 3  # faulted requests are recorded too


def test_429_carries_retry_after(sf: FakeSF) -> None:
    sf.fail("429", times=1, retry_after=7)
    answer = post(sf.url, data={})
    assert answer.status_code == 429 and answer.headers["retry-after"] == "7"


def test_garbage_is_status_200_json_typed_bytes_that_are_not_json(sf: FakeSF) -> None:
    sf.fail("garbage", times=1)
    answer = post(sf.url, data={})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    with pytest.raises(ValueError):
        json.loads(answer.content)


def test_gzip_is_a_body_its_content_encoding_does_not_decode(sf: FakeSF) -> None:
    sf.fail("gzip", times=1)
    with pytest.raises(httpx.DecodingError):
        post(sf.url, data={})
    assert post(sf.url, data={}).status_code == 200  # once


def test_html_is_a_gateway_page_with_status_200(sf: FakeSF) -> None:
    sf.fail("html", times=1)
    answer = post(sf.url, data={})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert "<html>" in answer.text and "Bad Gateway" in answer.text


def test_hang_holds_the_request_until_the_client_times_out(sf: FakeSF) -> None:
    sf.fail("hang", seconds=30)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        post(sf.url, timeout=0.3, data={})
    assert 0.3 <= time.monotonic() - started < 5
    sf.clear()
    assert post(sf.url, data={}).status_code == 200  # cleared: answered at once


def test_hang_until_released_then_answers_as_usual(sf: FakeSF) -> None:
    sf.fail("hang", times=1, seconds=30)
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(post(sf.url, data={})))
    thread.start()
    time.sleep(0.3)
    assert answers == []  # still held
    sf.release()
    thread.join(5)
    assert answers and answers[0].status_code == 200 and '"apiResultCode"' in answers[0].text


def test_drop_closes_the_connection_without_an_answer(sf: FakeSF) -> None:
    sf.fail("drop", times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        post(sf.url, data={})


def test_a_fault_until_cleared_stays_on_and_clear_switches_it_off(sf: FakeSF) -> None:
    sf.fail("5xx")
    assert [post(sf.url, data={}).status_code for _ in range(3)] == [503, 503, 503]
    sf.clear()
    assert post(sf.url, data={}).status_code == 200


def test_when_limits_a_fault_to_the_requests_it_accepts(sf: FakeSF) -> None:
    sf.fail("5xx", when=lambda request: request.form().get("serviceCode") == sf_kit.INTERCEPT)
    assert post(sf.url, data={"serviceCode": sf_kit.ROUTES}).status_code == 200
    assert post(sf.url, data={"serviceCode": sf_kit.INTERCEPT}).status_code == 503


def test_an_unknown_fault_is_refused(sf: FakeSF) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        sf.fail("slow")


@pytest.mark.parametrize(
    ("fake", "auth_code", "repeated_code"),
    [(FakeSF, "A1006", "A1007"), (FakeZTO, "S211", None), (FakeKuaidi100, "503", "501")],
    ids=["sf", "zto", "kuaidi100"],
)
def test_auth_and_repeated_answer_the_carriers_documented_bodies(
    fake: type[kit.FakeServer], auth_code: str, repeated_code: str | None
) -> None:
    with fake() as server:
        server.fail("auth", times=1)
        auth = post(server.url_for("/x"), data={}).json()
        server.fail("repeated", times=1)
        repeated = post(server.url_for("/x"), data={}).json()
    codes = {"apiResultCode", "statusCode", "returnCode"}
    assert next(auth[k] for k in codes if k in auth) == auth_code
    if repeated_code is None:  # ZOP answers a repeated requestId as the first time: no error code
        assert repeated["status"] is True
    else:
        assert next(repeated[k] for k in codes if k in repeated) == repeated_code


def test_the_receivers_take_the_faults_and_auth_answers_their_bad_token_body() -> None:
    with receivers.FakeDingTalk("tok") as ding:
        ding.fail("5xx", times=1, status=500)
        ding.fail("auth", times=1)
        first = post(ding.url, json={})
        second = post(ding.url, json={})
    assert first.status_code == 500
    assert second.json()["errcode"] == 300001  # token is not exist


def test_the_kits_default_answers_are_the_recorded_fixtures() -> None:
    """The kit ships copies of a few recorded answers as package data: they must not drift from tests/fixtures."""
    roots = [Path(kit.__file__).parent / "answers", Path(receivers.__file__).parent / "answers"]
    copies = [path for root in roots for path in sorted(root.glob("*/*.json"))]
    assert len(copies) > 20
    drifted = [str(p) for p in copies if not filecmp.cmp(p, FIXTURES / p.parent.name / p.name, shallow=False)]
    assert drifted == []


def test_closed_port_refuses_connections() -> None:
    with pytest.raises(httpx.ConnectError):
        post(f"http://127.0.0.1:{kit.closed_port()}/", data={})


# -- what the adapters make of each fault today ----------------------------------------------


async def no_wait(delay: float) -> None:
    """Retries are off; nothing to wait for."""


def sf_adapter(url: str, http: httpx.AsyncClient | None = None) -> Any:
    settings = {"partner_id": sf_kit.PARTNER, "check_word_env": "SF_CHECK_WORD", "base_url": url,
                "timeout_seconds": 0.5, "retries": 0, "return_address": sf_kit.RETURN_ADDRESS}  # fmt: skip
    context = {"clock": FixedClock(), "http": http or httpx.AsyncClient(),
               "environ": {"SF_CHECK_WORD": sf_kit.CHECK_WORD}, "sleep": no_wait}  # fmt: skip
    return SF_INFO.factory(settings, context)


def zto_adapter(url: str, http: httpx.AsyncClient | None = None) -> Any:
    settings = {"app_key_env": "K", "app_secret_env": "S", "base_url": url, "timeout_seconds": 0.5, "retries": 0}
    context = {"clock": None, "http": http or httpx.AsyncClient(),
               "environ": {"K": zto_kit.APP_KEY, "S": zto_kit.APP_SECRET}, "sleep": no_wait,
               "rand": lambda: 0.5}  # fmt: skip
    return ZTO_INFO.factory(settings, context)


def k100_adapter(url: str, http: httpx.AsyncClient | None = None) -> Kuaidi100Carrier:
    settings = k100_kit.make_settings(url, timeout_seconds=0.5, retries=0, callback_url="https://m.example.com/p")
    return Kuaidi100Carrier(settings, http or httpx.AsyncClient(), sleep=no_wait)


def outcome(call: Any) -> Any:
    """Run ``call`` and return the typed error's class, or the result."""
    try:
        return asyncio.run(call)
    except (CarrierAuthError, CarrierRateLimited, CarrierResponseError, CarrierUnavailable) as err:
        if isinstance(err, CarrierRateLimited):
            return (CarrierRateLimited, err.retry_after)
        return type(err)


TRANSPORT = {
    "5xx": CarrierUnavailable,
    "429": (CarrierRateLimited, 7.0),
    "garbage": CarrierResponseError,
    "gzip": CarrierResponseError,
    "html": CarrierResponseError,
    "hang": CarrierUnavailable,
    "drop": CarrierUnavailable,
}
SF_TRACK = {**TRANSPORT, "auth": CarrierAuthError, "repeated": CarrierResponseError}
SF_INTERCEPT = {**TRANSPORT, "auth": CarrierAuthError, "repeated": "pending (accepted=None, A1007)"}
ZTO_TRACK = {**TRANSPORT, "auth": CarrierAuthError}
ZTO_INTERCEPT = {**TRANSPORT, "auth": CarrierAuthError, "repeated": "accepted"}
K100_TRACK = {**TRANSPORT, "auth": CarrierAuthError, "repeated": CarrierUnavailable}


#: Each fault through httpx's default transport and through the daemon's (monitor/daemon/transport.py).
CLIENTS = {
    "httpx": httpx.AsyncClient,
    "daemon": lambda: daemon_client(max_connections=4, max_keepalive_connections=4),
}
BOTH_CLIENTS = pytest.mark.parametrize("client", sorted(CLIENTS))


def intercept_outcome(result: Any) -> Any:
    if isinstance(result, type | tuple):
        return result
    if result.accepted is None:
        return f"pending (accepted=None, {result.raw_code})"
    return "accepted" if result.accepted else "rejected"


def switch_on(server: kit.FakeServer, fault: str) -> None:
    server.fail(fault, times=1, retry_after=7, seconds=5)


@pytest.mark.parametrize("fault", sorted(SF_TRACK))
@BOTH_CLIENTS
def test_sf_track_maps_each_fault(fault: str, client: str) -> None:
    with FakeSF() as server:
        switch_on(server, fault)
        got = outcome(sf_adapter(server.url, CLIENTS[client]()).track([SF_NUMBER]))
    assert got == SF_TRACK[fault]


@pytest.mark.parametrize("fault", sorted(SF_INTERCEPT))
@BOTH_CLIENTS
def test_sf_intercept_maps_each_fault(fault: str, client: str) -> None:
    parcel = ParcelRef("sf", SF_NUMBER, order_id="TB1")
    with FakeSF() as server:
        switch_on(server, fault)
        adapter = sf_adapter(server.url, CLIENTS[client]())
        got = intercept_outcome(outcome(adapter.intercept(parcel, "refund_only", "kit-1")))
    assert got == SF_INTERCEPT[fault]


@pytest.mark.parametrize("fault", sorted(ZTO_TRACK))
@BOTH_CLIENTS
def test_zto_track_maps_each_fault(fault: str, client: str) -> None:
    with FakeZTO({ZTO_NUMBER: "track_delivered"}) as server:
        switch_on(server, fault)
        got = outcome(zto_adapter(server.url, CLIENTS[client]()).track([ZTO_NUMBER]))
    assert got == ZTO_TRACK[fault]


@pytest.mark.parametrize("fault", sorted(ZTO_INTERCEPT))
@BOTH_CLIENTS
def test_zto_intercept_maps_each_fault(fault: str, client: str) -> None:
    parcel = ParcelRef("zto", ZTO_NUMBER, order_id="T-1001")
    with FakeZTO() as server:
        switch_on(server, fault)
        adapter = zto_adapter(server.url, CLIENTS[client]())
        got = intercept_outcome(outcome(adapter.intercept(parcel, "refund_only", "kit-1")))
    assert got == ZTO_INTERCEPT[fault]


@pytest.mark.parametrize("fault", sorted(K100_TRACK))
@BOTH_CLIENTS
def test_kuaidi100_track_maps_each_fault(fault: str, client: str) -> None:
    with FakeKuaidi100({"ZT7800000000003": "query_state_3"}) as server:
        switch_on(server, fault)
        got = outcome(k100_adapter(server.url, CLIENTS[client]()).track(["ZT7800000000003"]))
    assert got == K100_TRACK[fault]


def test_kuaidi100_subscribe_takes_the_repeated_answer_as_subscribed() -> None:
    with FakeKuaidi100() as server:
        switch_on(server, "repeated")
        answer = outcome(k100_adapter(server.url).subscribe("ZT7800000000003"))
    assert not isinstance(answer, type | tuple) and answer.return_code == "501"


def test_kuaidi100_push_body_is_signed_as_the_adapter_checks_it() -> None:
    scans = [(FixedClock().now(), "3", "【郑州市】快件已签收")]
    body = k100_kit.push_body(k100_kit.body_for("ZT7800000000003", scans), salt="salt-1")
    settings = k100_kit.make_settings(salt="salt-1")
    (result,) = Kuaidi100Carrier(settings, httpx.AsyncClient()).parse_push(body, {})
    assert result.tracking_no == "ZT7800000000003" and result.events[-1].raw_code == "3"
