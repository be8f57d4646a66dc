"""Intercepts under faults (issue 10, items 1–4, 8b, 11): the real Monitor against the kit's fake 丰桥.

Each test drives the Monitor the daemon runs (outbox, poller, watchdog) on a simulated clock, with
the SF adapter talking HTTP to :class:`carriers.testing.sf.FakeSF`, which checks the signature and
answers in 丰桥's documented format — or misbehaves as told. Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from sqlalchemy import select

from carriers.model import Status, TrackingEvent
from carriers.sf import INFO
from carriers.testing.clock import FixedClock
from carriers.testing.server import Reply
from carriers.testing.sf import CHECK_WORD, INTERCEPT, PARTNER, RETURN_ADDRESS, ROUTES, FakeSF, Seen, route_answer
from monitor.actions.intercepts import RefundRequest
from monitor.alerts.model import SENT, Alert, Delivery
from monitor.clock import SimulatedClock
from monitor.config import InterceptSettings
from monitor.intake.shipments import Shipment
from monitor.polling import Poller
from monitor.rules.ruleset import build_ruleset
from monitor.service import Monitor
from monitor.store.models import Intercept
from monitor.store.store import Store

CST = timezone(timedelta(hours=8))
START = datetime(2026, 11, 12, 10, 0, tzinfo=CST)
SHIPPED = START - timedelta(hours=20)


async def no_wait(seconds: float) -> None:
    """Stand in for asyncio.sleep in the adapter's and poller's backoff."""


class Ops:
    """An alert channel that keeps every alert with the simulated moment it went out."""

    name = "ops"

    def __init__(self, clock: SimulatedClock) -> None:
        self.clock = clock
        self.sent: list[tuple[datetime, Alert]] = []

    async def notify(self, alerts: Sequence[Alert]) -> Delivery:
        self.sent.extend((self.clock.now(), a) for a in alerts)
        return SENT

    def firing(self, rule: str) -> list[tuple[datetime, Alert]]:
        return [(at, a) for at, a in self.sent if a.rule == rule and a.state == "firing"]


def node(at: datetime, op: str, remark: str) -> dict[str, str]:
    """One 丰桥 route node, its time in SF's own zone."""
    return {"acceptTime": at.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"), "acceptAddress": "杭州",
            "remark": remark, "opCode": op}  # fmt: skip


def intercepts_seen(sf: FakeSF) -> list[Seen]:
    return [s for s in sf.seen if s.form.get("serviceCode") == INTERCEPT]


class Rig:
    """A Monitor on a simulated clock with SF on the fake, as the daemon assembles it."""

    def __init__(self, store: Store, sf: FakeSF, intercepts: InterceptSettings | None = None) -> None:
        self.store = store
        self.sf = sf
        self.clock = SimulatedClock(START)
        self.http = httpx.AsyncClient()
        settings = {"partner_id": PARTNER, "check_word_env": "SF_CHECK_WORD", "base_url": sf.url, "retries": 0,
                    "timeout_seconds": 5, "return_address": RETURN_ADDRESS}  # fmt: skip
        context = {"clock": self.clock, "http": self.http, "environ": {"SF_CHECK_WORD": CHECK_WORD},
                   "sleep": no_wait}  # fmt: skip
        self.adapter = INFO.factory(settings, context)
        self.ops = Ops(self.clock)
        self.monitor = Monitor(store, build_ruleset(None), self.clock, {"sf": self.adapter}, {"ops": self.ops},
                               intercepts=intercepts)  # fmt: skip
        self.poller = Poller(store, self.clock, {"sf": self.adapter}, self.monitor, sleep=no_wait,
                             health=self.monitor.health)  # fmt: skip
        #: Route nodes the fake answers per number (picked up and in transit unless a test adds more).
        self.routes: dict[str, list[dict[str, str]]] = {}
        sf.on(ROUTES, self._routes)

    def _routes(self, fake: FakeSF, seen: Seen) -> Reply:
        numbers = seen.msg()["trackingNumber"]
        return route_answer({n: self.routes.get(n, []) for n in numbers})

    def ship(self, numbers: Sequence[str], *, picked_up: bool = True, order: str | None = None) -> None:
        shipments = [Shipment(order or f"TB-{n}", "sf", n, SHIPPED) for n in numbers]
        assert self.monitor.add_shipments(shipments) == len(numbers)
        for n in numbers:
            self.routes[n] = [node(SHIPPED + timedelta(hours=1), "50", "顺丰速运 已收取快件"),
                              node(SHIPPED + timedelta(hours=5), "30", "快件在【杭州】已装车")]  # fmt: skip

    async def scan_in(self, numbers: Sequence[str]) -> None:
        """Feed the pickup scan we polled earlier (the store knows the parcels are picked up)."""
        at = SHIPPED + timedelta(hours=1)
        await self.monitor.ingest([TrackingEvent("sf", n, at, Status.PICKED_UP, raw_code="50") for n in numbers])

    async def refund(self, refund_id: str, order: str) -> list[Any]:
        return await self.monitor.refund(RefundRequest(refund_id, order, "refund_only"), wait=False)

    async def settle(self) -> None:
        assert await self.monitor.drain(20)

    async def minutes(self, n: int) -> None:
        """Let ``n`` simulated minutes pass as the daemon would: outbox, polls and watchdog every minute."""
        for _ in range(n):
            self.clock.advance(timedelta(minutes=1))
            await self.monitor.run_actions()
            await self.poller.poll_due()
            await self.monitor.watchdog.run()

    def intercepts(self) -> list[Any]:
        table = Intercept.__table__
        with self.store.engine.connect() as conn:
            return list(conn.execute(select(table).order_by(table.c.id)))

    def activity(self) -> list[str]:
        with self.store.begin() as uow:
            return [row.event for row in uow.activity_after(0)]

    async def close(self) -> None:
        await self.http.aclose()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- 1: an intercept belongs to the parcel ----------------------------------------------------------


def test_two_refunds_of_each_order_call_the_carrier_once_per_parcel(engine: Any) -> None:
    numbers = [f"SF14000000{i:05d}" for i in range(20)]

    async def scenario() -> None:
        store = Store(engine, threads=4)  # the daemon's store: refunds decided side by side on real connections
        with FakeSF() as sf:
            rig = Rig(store, sf)
            rig.ship(numbers)
            await rig.scan_in(numbers)
            answers = await asyncio.gather(*(rig.refund(f"R{k}-{n}", f"TB-{n}") for n in numbers for k in (1, 2)))
            await rig.settle()
            await rig.close()
            per_parcel = Counter(s.msg()["waybillNo"] for s in intercepts_seen(sf))
            assert per_parcel == dict.fromkeys(numbers, 1)
            assert len({s.form["requestID"] for s in intercepts_seen(sf)}) == 20
            with store.begin() as uow:
                keys = [a.idempotency_key for a in uow.actions() if a.kind == "intercept"]
            assert len(keys) == 20 and all(k.startswith("intercept:parcel:") and k.endswith(":1") for k in keys)
            for i in range(0, len(answers), 2):  # the two refunds of one order: one calls, one joins
                decided = sorted(d.decision for d in (*answers[i], *answers[i + 1]))
                assert decided == ["joined", "requested"]
            states = Counter(r.state for r in rig.intercepts())
            assert states == {"accepted": 20, "joined": 20}
        store.close()

    run(scenario())


# -- 2 and 4: an answer we cannot read is no answer; A1007 means the first request arrived ------


def test_garbage_then_html_then_accepted_is_retried_under_one_request_id(store: Store) -> None:
    async def scenario() -> None:
        with FakeSF() as sf:
            rig = Rig(store, sf)
            rig.ship(["SF1400000000001"])
            await rig.scan_in(["SF1400000000001"])
            is_intercept = lambda r: r.form().get("serviceCode") == INTERCEPT  # noqa: E731
            sf.fail("garbage", times=1, when=is_intercept)
            sf.fail("html", times=1, when=is_intercept)
            (decision,) = await rig.refund("R1", "TB-SF1400000000001")
            assert decision.decision == "requested"
            await rig.settle()
            await rig.minutes(3)
            await rig.close()
            seen = intercepts_seen(sf)
            assert [kind for kind, _ in sf.faulted] == ["garbage", "html"]
            assert len(seen) == 3 and len({s.form["requestID"] for s in seen}) == 1
            (intercept,) = rig.intercepts()
            assert intercept.state == "accepted"
            assert "intercept_rejected" not in rig.activity() and "intercept_failed" not in rig.activity()
            assert rig.ops.firing("intercept_failed") == []

    run(scenario())


def test_garbage_html_then_repeated_request_is_pending_and_followed_to_success(store: Store) -> None:
    async def scenario() -> None:
        with FakeSF() as sf:
            rig = Rig(store, sf)
            no = "SF1400000000002"
            rig.ship([no])
            await rig.scan_in([no])
            is_intercept = lambda r: r.form().get("serviceCode") == INTERCEPT  # noqa: E731
            sf.fail("garbage", times=1, when=is_intercept)
            sf.fail("html", times=1, when=is_intercept)
            sf.fail("repeated", times=1, when=is_intercept)
            await rig.refund("R1", f"TB-{no}")
            await rig.settle()
            await rig.minutes(2)  # garbage, html, then A1007: the first request had arrived
            (intercept,) = rig.intercepts()
            assert intercept.state == "pending"
            assert "repeated request" in intercept.reason
            # SF turns the parcel round; the next poll of the followed parcel sees it heading back
            rig.routes[no].append(node(START + timedelta(minutes=3), "99", "应客户要求，快件正在转寄中"))
            await rig.minutes(31)
            await rig.close()
            (intercept,) = rig.intercepts()
            assert intercept.state == "succeeded"
            seen = intercepts_seen(sf)
            assert len(seen) == 3 and len({s.form["requestID"] for s in seen}) == 1
            assert "intercept_failed" not in rig.activity() and rig.ops.firing("intercept_failed") == []

    run(scenario())


# -- 3: rejected credentials pause the carrier with one alert; intercepts resume by themselves ----


def test_auth_error_pauses_with_one_alert_and_the_intercept_resumes_once_fixed(store: Store) -> None:
    async def scenario() -> None:
        with FakeSF() as sf:
            rig = Rig(store, sf)
            no = "SF1400000000003"
            rig.ship([no])
            await rig.scan_in([no])
            sf.fail("auth")  # A1006 to everything until the check word is fixed
            await rig.refund("R1", f"TB-{no}")
            await rig.settle()
            await rig.minutes(20)  # probes on a backoff: each one answered A1006
            (intercept,) = rig.intercepts()
            assert intercept.state == "requested"
            assert len(rig.ops.firing("carrier_unavailable")) == 1
            (at, alert) = rig.ops.firing("carrier_unavailable")[0]
            assert (at, alert.carrier) == (START, "sf") and "A1006" in alert.detail
            calls_while_down = len(intercepts_seen(sf))
            assert 2 <= calls_while_down <= 8  # paused between probes, not hammered every minute
            sf.clear()  # credentials fixed: nobody touches the intercept
            await rig.minutes(40)
            await rig.close()
            (intercept,) = rig.intercepts()
            assert intercept.state == "accepted"
            assert len(rig.ops.firing("carrier_unavailable")) == 1
            assert [a.state for _, a in rig.ops.sent if a.rule == "carrier_unavailable"] == ["firing", "resolved"]
            assert len({s.form["requestID"] for s in intercepts_seen(sf)}) == 1

    run(scenario())


# -- the watchdog: no intercept waits unnoticed ---------------------------------------------------


def test_watchdog_alerts_once_about_an_intercept_stuck_requested(store: Store) -> None:
    async def scenario() -> None:
        with FakeSF() as sf:
            rig = Rig(store, sf, InterceptSettings(stuck_after_minutes=15, stale_after_minutes=0))
            no = "SF1400000000004"
            rig.ship([no])
            await rig.scan_in([no])
            sf.fail("5xx", when=lambda r: r.form().get("serviceCode") == INTERCEPT)  # never answers
            await rig.refund("R1", f"TB-{no}")
            await rig.settle()
            await rig.minutes(40)
            await rig.close()
            stuck = rig.ops.firing("intercept_stuck")
            assert [(at, a.tracking_no) for at, a in stuck] == [(START + timedelta(minutes=15), no)]
            assert stuck[0][1].detail.startswith("requested for 15 min")

    run(scenario())


def test_watchdog_alerts_once_about_an_intercept_stuck_pending(store: Store) -> None:
    async def scenario() -> None:
        with FakeSF() as sf:
            rig = Rig(store, sf, InterceptSettings(stuck_after_minutes=15, stale_after_minutes=0))
            no = "SF1400000000005"
            rig.ship([no])
            await rig.scan_in([no])
            is_intercept = lambda r: r.form().get("serviceCode") == INTERCEPT  # noqa: E731
            sf.fail("5xx", times=1, when=is_intercept)
            sf.fail("repeated", times=1, when=is_intercept)  # pending from the retry at minute 1, scans say nothing
            await rig.refund("R1", f"TB-{no}")
            await rig.settle()
            await rig.minutes(45)
            await rig.close()
            (intercept,) = rig.intercepts()
            assert intercept.state == "pending"
            stuck = rig.ops.firing("intercept_stuck")
            assert [at for at, _ in stuck] == [START + timedelta(minutes=16)]

    run(scenario())


# -- 8b: decide on fresh state ---------------------------------------------------------------------


def test_a_stale_parcel_is_tracked_once_then_intercepted_not_held(store: Store) -> None:
    async def scenario() -> None:
        with FakeSF() as sf:
            rig = Rig(store, sf, InterceptSettings(stale_after_minutes=5, fresh_track_seconds=2))
            no = "SF1400000000006"
            rig.ship([no])  # the store says: not picked up; SF says: picked up, in transit
            with store.begin() as uow:
                (parcel,) = uow.parcels_of_order(f"TB-{no}")
                uow.update_parcels([{"id": parcel.id, "last_polled_at": START - timedelta(hours=1)}])
            (decision,) = await rig.refund("R1", f"TB-{no}")
            await rig.settle()
            await rig.close()
            routes = [s for s in sf.seen if s.form["serviceCode"] == ROUTES]
            assert len(routes) == 1
            assert decision.decision == "requested"
            assert [s.msg()["waybillNo"] for s in intercepts_seen(sf)] == [no]
            assert "shipment_held" not in rig.activity()

    run(scenario())


def test_a_stale_parcel_whose_carrier_hangs_is_decided_on_what_we_know(store: Store) -> None:
    async def scenario() -> None:
        with FakeSF() as sf:
            rig = Rig(store, sf, InterceptSettings(stale_after_minutes=5, fresh_track_seconds=0.5))
            no = "SF1400000000007"
            rig.ship([no])
            sf.fail("hang", seconds=10, when=lambda r: r.form().get("serviceCode") == ROUTES)
            started = time.monotonic()
            (decision,) = await rig.refund("R1", f"TB-{no}")
            took = time.monotonic() - started
            sf.clear()
            await rig.settle()
            await rig.close()
            assert decision.decision == "held"  # what the store knew
            assert took < 2

    run(scenario())


# -- 11a: the webhook answers in milliseconds, the carrier call follows ----------------------------


def test_the_refund_webhook_answers_at_once_while_sf_hangs(store: Store) -> None:
    from tests.api.server import running_api

    with FakeSF() as sf:
        sf.fail("hang", seconds=30, when=lambda r: r.form().get("serviceCode") == INTERCEPT)
        http = httpx.AsyncClient()
        settings = {"partner_id": PARTNER, "check_word_env": "SF_CHECK_WORD", "base_url": sf.url,
                    "retries": 0, "timeout_seconds": 40, "return_address": RETURN_ADDRESS}  # fmt: skip
        context = {"clock": FixedClock(), "http": http, "environ": {"SF_CHECK_WORD": CHECK_WORD}}
        with running_api(store, extra_adapters={"sf": INFO.factory(settings, context)}) as api:
            shipment = {"order_id": "O1", "carrier": "sf", "tracking_no": "SF1400000000008",
                        "shipped_at": SHIPPED.isoformat()}  # fmt: skip
            with api.client() as client:
                assert client.post("/api/v1/shipments", json=shipment).status_code == 201
            api.scan("SF1400000000008", Status.PICKED_UP, SHIPPED + timedelta(hours=1), carrier="sf", raw_code="50")
            body = json.dumps({"refund_id": "R1", "order_id": "O1", "type": "refund_only"}).encode()
            started = time.monotonic()
            response = api.signed_refund(body)
            took = time.monotonic() - started
            assert response.status_code == 200, response.text
            assert [d["decision"] for d in response.json()["decisions"]] == ["intercept_requested"]
            assert took < 1.0
            deadline = time.monotonic() + 5
            while not intercepts_seen(sf) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(intercepts_seen(sf)) == 1  # the call was made at once, and is still hanging
            sf.release()
            assert api.call(api.ctx.monitor.drain(10))
            with api.client() as client:
                (intercept,) = client.get("/api/v1/intercepts").json()["items"]
            assert intercept["state"] == "accepted"
            api.call(http.aclose())
