"""The API dependency: bearer token → principal, a viewer refused every write, the actor on the activity log.

The routers are the real ones (shipments, anomalies) wired the way app.py will wire them
(``current_principal`` in place of ``require_token``), plus two probe routes: one only an
admin may call, one writing an activity row on the store's threads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import Engine, func, select

from carriers.sandbox import SandboxCarrier
from monitor.api import anomalies, errors, parcels, shipments
from monitor.api.context import ApiContext, Ctx
from monitor.api.principal import Who, allowed, current_principal
from monitor.clock import SimulatedClock
from monitor.config import ApiSettings
from monitor.metrics import Metrics
from monitor.people.accounts import People
from monitor.people.audit import ACTOR, stamp
from monitor.people.model import CLI
from monitor.people.passwords import Passwords
from monitor.people.roles import Permission
from monitor.rules.ruleset import build_ruleset
from monitor.service import Monitor
from monitor.store.models import Activity, Anomaly, Parcel
from monitor.store.store import Store
from tests.people.conftest import CHEAP

SERVICE_TOKEN = "service-token-7a1b"
ACT = Activity.__table__
SHIPMENT = {"order_id": "O1", "carrier": "sandbox", "tracking_no": "SB1", "shipped_at": "2026-11-11T09:00:00+08:00"}

probe = APIRouter()


@probe.post("/people-probe", dependencies=[allowed(Permission.USERS)])
async def admin_only(principal: Who) -> dict[str, Any]:
    """Answer who called, if an admin."""
    return {"login": principal.login}


@probe.post("/activity-probe")
async def write_activity(ctx: Ctx) -> dict[str, Any]:
    """Write one activity row the way the store's callers do, on the store's threads."""
    await ctx.store.transact(lambda uow: uow.record(stamp([{"at": ctx.clock.now(), "event": "probe", "data": {}}])))
    return {}


@asynccontextmanager
async def serving(store: Store, clock: SimulatedClock, token: str | None = SERVICE_TOKEN) -> AsyncIterator[Any]:
    adapters = {"sandbox": SandboxCarrier(clock)}
    monitor = Monitor(store, build_ruleset(None), clock, adapters, {})
    ctx = ApiContext(monitor=monitor, store=store, clock=clock, settings=ApiSettings(token=token),
                     adapters=adapters, metrics=Metrics(store))  # fmt: skip
    app = FastAPI()
    app.state.ctx = ctx
    errors.install(app)
    for router in (shipments.router, parcels.router, anomalies.router, probe):
        app.include_router(router, prefix="/api/v1", dependencies=[Depends(current_principal)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http, monitor, app


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.fixture
def threaded(engine: Engine) -> Iterator[Store]:
    """A store running its work on threads of its own, as the daemon's does."""
    store = Store(engine, threads=2)
    yield store
    store.close()


@pytest.fixture
def tokens(threaded: Store, clock: SimulatedClock) -> dict[str, str]:
    people = People(threaded, clock, Passwords(CHEAP))
    made = {}
    for role in ("viewer", "operator", "admin"):
        people.add(f"{role}.one", "password-1", by=CLI, role=role)
        made[role] = people.issue_token(f"{role}.one", by=CLI).token
    people.add("gone", "password-1", by=CLI, role="admin")
    made["disabled"] = people.issue_token("gone", by=CLI).token
    people.set_disabled("gone", True, by=CLI)
    return made


def test_a_viewer_reads_and_changes_nothing(threaded: Store, clock: SimulatedClock, tokens: dict[str, str]) -> None:
    async def go() -> None:
        async with serving(threaded, clock) as (http, monitor, _app):
            refused = await http.post("/api/v1/shipments", json=SHIPMENT, headers=bearer(tokens["viewer"]))
            assert refused.status_code == 403
            assert refused.json()["error"] | {"message": ""} == {"code": "forbidden", "field": "role",
                                                                 "value": "viewer", "message": ""}  # fmt: skip
            assert count(threaded.engine, Parcel.__table__) == 0
            shipped = await http.post("/api/v1/shipments", json=SHIPMENT, headers=bearer(tokens["operator"]))
            assert shipped.status_code == 201
            clock.advance(timedelta(hours=25))
            assert await monitor.tick() > 0
            listed = await http.get("/api/v1/anomalies", headers=bearer(tokens["viewer"]))
            assert listed.status_code == 200
            anomaly_id = listed.json()["items"][0]["id"]
            ack = f"/api/v1/anomalies/{anomaly_id}/acknowledge"
            assert (await http.post(ack, headers=bearer(tokens["viewer"]))).status_code == 403
            with threaded.engine.connect() as conn:
                assert conn.execute(select(Anomaly.__table__.c.state)).scalar_one() == "open"
            done = await http.post(ack, headers=bearer(tokens["operator"]))
            assert done.status_code == 200 and done.json()["state"] == "acknowledged"

    asyncio.run(go())


def test_who_may_call(threaded: Store, clock: SimulatedClock, tokens: dict[str, str]) -> None:
    async def go() -> None:
        async with serving(threaded, clock) as (http, _monitor, _app):
            answers = {}
            for who, token in [*tokens.items(), ("service", SERVICE_TOKEN), ("wrong", "pm_" + "x" * 43)]:
                answers[who] = (await http.get("/api/v1/parcels", headers=bearer(token))).status_code
            answers["none"] = (await http.get("/api/v1/parcels")).status_code
            assert answers == {"viewer": 200, "operator": 200, "admin": 200, "service": 200,
                               "disabled": 401, "wrong": 401, "none": 401}  # fmt: skip
            admin_only = {}
            for who, token in [*tokens.items(), ("service", SERVICE_TOKEN)]:
                answer = await http.post("/api/v1/people-probe", headers=bearer(token))
                admin_only[who] = answer.status_code, answer.json().get("login")
            assert admin_only == {"viewer": (403, None), "operator": (403, None), "admin": (200, "admin.one"),
                                  "disabled": (401, None), "service": (200, "service")}  # fmt: skip

    asyncio.run(go())


def test_without_a_service_token_user_tokens_still_work(threaded: Store, clock: SimulatedClock,
                                                        tokens: dict[str, str]) -> None:  # fmt: skip
    async def go() -> None:
        async with serving(threaded, clock, token=None) as (http, _monitor, _app):
            assert (await http.get("/api/v1/parcels", headers=bearer(tokens["viewer"]))).status_code == 200
            unset = await http.get("/api/v1/parcels", headers=bearer("anything"))
            assert unset.status_code == 503 and "PARCEL_MONITOR_API_TOKEN" in unset.json()["error"]["message"]

    asyncio.run(go())


def test_writes_name_who_did_them(threaded: Store, clock: SimulatedClock, tokens: dict[str, str]) -> None:
    async def go() -> None:
        async with serving(threaded, clock) as (http, _monitor, app):
            for token in (tokens["operator"], SERVICE_TOKEN):
                assert (await http.post("/api/v1/activity-probe", headers=bearer(token))).status_code == 200
            assert ACTOR.get() is None  # the request's actor does not outlive it
            await app.state.token_auth.drain()

    asyncio.run(go())
    with threaded.engine.connect() as conn:
        rows = conn.execute(select(ACT.c.data).where(ACT.c.event == "probe").order_by(ACT.c.id)).scalars()
        actors = [json.loads(data)["actor"] for data in rows]
    operator_id = next(a for a in People(threaded, clock).accounts() if a.login == "operator.one").id
    assert actors == [
        {"login": "operator.one", "account_id": operator_id, "token_id": tokens["operator"][3:11]},
        {"login": "service", "account_id": None},
    ]
    assert all(t not in json.dumps(actors) for t in tokens.values())


def test_real_writes_record_their_caller(threaded: Store, clock: SimulatedClock, tokens: dict[str, str]) -> None:
    """Adding shipments and acknowledging an anomaly through the API leave an activity line naming who."""
    shipment = {"order_id": "TB-ACT-1", "carrier": "sandbox", "tracking_no": "SBACT1",
                "shipped_at": "2026-11-11T09:00:00+08:00"}  # fmt: skip

    async def go() -> None:
        async with serving(threaded, clock) as (http, monitor, app):
            added = await http.post("/api/v1/shipments", json=shipment, headers=bearer(tokens["operator"]))
            assert added.status_code == 201, added.text
            clock.advance(timedelta(hours=25))
            assert await monitor.tick() >= 1
            (anomaly,) = (await http.get("/api/v1/anomalies", headers=bearer(tokens["viewer"]))).json()["items"]
            seen = await http.post(f"/api/v1/anomalies/{anomaly['id']}/acknowledge", headers=bearer(SERVICE_TOKEN))
            assert seen.status_code == 200, seen.text
            await app.state.token_auth.drain()

    asyncio.run(go())
    with threaded.engine.connect() as conn:
        rows = conn.execute(select(ACT.c.event, ACT.c.data).order_by(ACT.c.id)).all()
    actors = {event: json.loads(data).get("actor", {}).get("login") for event, data in rows}
    assert actors["shipments_received"] == "operator.one"
    assert actors["anomaly_acknowledged"] == "service"
    assert actors["anomaly_opened"] is None  # the rules did that, not a request
