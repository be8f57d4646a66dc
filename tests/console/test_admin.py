"""设置 and the queue's missing actions over real HTTP (no browser): users, the masked configuration,
the severity filter, bulk acknowledge, intercept now, and the purge of ended sessions."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from monitor.config import load
from monitor.console import sessions
from monitor.console.sessions import purge_sessions
from monitor.people.accounts import People
from monitor.people.model import CLI
from monitor.people.store import TOK
from monitor.store.store import ACT, AN, I, Store
from tests.api.server import ApiServer
from tests.console.test_actions import desk, operator, ticket_ids  # noqa: F401
from tests.console.test_sessions import PASSWORD, _hidden, log_in

ADMIN = "root.admin"


@pytest.fixture
def admin_desk(desk: ApiServer, store: Store) -> ApiServer:  # noqa: F811
    People(store, desk.clock).add(ADMIN, PASSWORD, by=CLI, role="admin")
    People(store, desk.clock).add("wang.fang", PASSWORD, by=CLI, role="viewer")
    return desk


@contextmanager
def as_user(api: ApiServer, login: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as http:
        assert log_in(http, login, password).status_code == 303, f"{login} could not log in"
        yield http


def csrf(http: httpx.Client, path: str = "/queue") -> str:
    return _hidden(http.get(path).text, "csrf")


# -- users ---------------------------------------------------------------------------------


def test_an_admin_adds_a_user_who_then_logs_in_and_a_generated_password_is_shown_once(
    admin_desk: ApiServer, store: Store
) -> None:
    with as_user(admin_desk, ADMIN) as http:
        token = csrf(http, "/users")
        typed = http.post("/users", data={"csrf": token, "login": "Zhao.Min", "display_name": "赵敏",
                                          "role": "operator", "password": "typed password 9"})  # fmt: skip
        assert typed.status_code == 303
        page = http.get("/users")
        assert 'data-login="zhao.min"' in page.text and "typed password 9" not in page.text
        generated = http.post("/users", data={"csrf": token, "login": "qian.li", "role": "viewer", "password": ""})
        assert generated.status_code == 201 and generated.headers["cache-control"] == "no-store"
        shown = re.search(r'<code id="new-password">([^<]+)</code>', generated.text)
        assert shown is not None and len(shown.group(1)) >= 16
        assert 'id="new-password"' not in http.get("/users").text  # shown that once only
        refused = http.post("/users", data={"csrf": token, "login": "zhao.min", "password": "another one 99"})
        assert refused.status_code == 422 and "zhao.min" in refused.text  # the login is taken: named
    with as_user(admin_desk, "zhao.min", "typed password 9") as http:
        assert 'data-role="operator"' in http.get("/queue").text
    with as_user(admin_desk, "qian.li", shown.group(1)) as http:
        assert 'data-role="viewer"' in http.get("/queue").text
    with store.begin() as uow:
        rows = list(uow.conn.execute(select(ACT.c.data).where(ACT.c.event == "account_added")))
    added = [json.loads(r.data) for r in rows if json.loads(r.data)["account"] in ("zhao.min", "qian.li")]
    assert [a["actor"]["login"] for a in added] == [ADMIN, ADMIN]


def test_resetting_a_password_revokes_the_users_sessions(admin_desk: ApiServer) -> None:
    with as_user(admin_desk, "li.lei") as victim, as_user(admin_desk, ADMIN) as admin:
        assert victim.get("/queue").status_code == 200
        answer = admin.post("/users/li.lei", data={"csrf": csrf(admin, "/users"), "action": "reset", "password": ""})
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
        new = re.search(r'<code id="new-password">([^<]+)</code>', answer.text)
        assert new is not None
        gone = victim.get("/queue")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
        with httpx.Client(base_url=admin_desk.url, timeout=30) as http:
            assert log_in(http, "li.lei").status_code == 401  # the old password is no more
        with as_user(admin_desk, "li.lei", new.group(1)) as http:
            assert http.get("/queue").status_code == 200
        typed = admin.post("/users/li.lei", data={"csrf": csrf(admin, "/users"), "action": "reset",
                                                  "password": "chosen by admin 1"})  # fmt: skip
        assert typed.status_code == 303
        own = admin.post(f"/users/{ADMIN}", data={"csrf": csrf(admin, "/users"), "action": "reset", "password": ""})
        assert "message=" in own.headers["location"] and admin.get("/users").status_code == 200  # refused, kept
    with as_user(admin_desk, "li.lei", "chosen by admin 1") as http:
        assert http.get("/queue").status_code == 200


def test_users_changes_need_an_admin_and_the_csrf_token(admin_desk: ApiServer, store: Store) -> None:
    with as_user(admin_desk, "li.lei") as http:
        token = csrf(http)
        assert http.post("/users", data={"csrf": token, "login": "evil", "password": "x" * 12}).status_code == 403
        answer = http.post("/users/wang.fang", data={"csrf": token, "action": "reset", "password": "x" * 12})
        assert answer.status_code == 403
    with as_user(admin_desk, ADMIN) as http:
        assert http.post("/users", data={"csrf": "0" * 64, "login": "evil", "password": "x" * 12}).status_code == 403
    assert "evil" not in {a.login for a in People(store, admin_desk.clock).accounts()}


# -- settings ------------------------------------------------------------------------------

SECRETS = {
    "DB_PW": "pg-pass-Z9q8w7",
    "API_TOKEN": "api-token-7f3e1c9d2b",
    "REFUND_KEY": "refund-hmac-4a4b4c4d",
    "DING_HOOK": "https://oapi.dingtalk.com/robot/send?access_token=ding-access-0123456789abcdef",
    "DING_SECRET": "SECding-sign-secret-5566",
    "KD100_KEY": "kd100-key-AbCdEf123",
    "KD100_SALT": "kd100-salt-998877",
}
INLINE = {"wecom": "wecom-key-inline-31415", "smtp": "smtp-pass-inline-27182"}


def test_settings_show_the_effective_configuration_with_no_secret(admin_desk: ApiServer, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"""
[api]
token_env = "API_TOKEN"
refund_secret_env = "REFUND_KEY"

[carriers.kuaidi100]
customer = "CUSTOMER-1"
key_env = "KD100_KEY"
salt_env = "KD100_SALT"

[[alerts.channels]]
type = "dingtalk"
name = "ops-ding"
webhook_env = "DING_HOOK"
secret_env = "DING_SECRET"

[[alerts.channels]]
type = "wecom"
webhook = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={INLINE['wecom']}"

[[alerts.channels]]
type = "email"
host = "smtp.example.com"
username = "alerts@example.com"
password = "{INLINE['smtp']}"
from_addr = "alerts@example.com"
to_addrs = ["ops@example.com"]
""", encoding="utf-8")  # fmt: skip
    environ = SECRETS | {"PARCEL_MONITOR_DATABASE_URL": f"postgresql://monitor:{SECRETS['DB_PW']}@db.internal/pm"}
    settings = load(config, environ)
    admin_desk.ctx.config = settings
    with as_user(admin_desk, ADMIN) as http:
        page = http.get("/settings")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    html = page.text
    for secret in [*SECRETS.values(), *INLINE.values(), "ding-access-0123456789abcdef"]:
        assert secret not in html, f"secret shown: {secret[:6]}…"
    for shown in ("API_TOKEN", "REFUND_KEY", "DING_HOOK", "KD100_KEY", "db.internal", "CUSTOMER-1", "ops-ding",
                  "smtp.example.com", "qyapi.weixin.qq.com", "stuck_after_minutes", "Asia/Shanghai"):  # fmt: skip
        assert shown in html, f"{shown} missing from the settings page"
    assert "••••••" in html


def test_settings_are_for_admins_only(admin_desk: ApiServer) -> None:
    admin_desk.ctx.config = load(None, {})
    for login in ("li.lei", "wang.fang"):
        with as_user(admin_desk, login) as http:
            answer = http.get("/settings")
            assert answer.status_code == 403 and "timezone" not in answer.text
    with httpx.Client(base_url=admin_desk.url, timeout=30) as http:
        assert http.get("/settings").status_code == 303  # no session: to the login page
    with as_user(admin_desk, ADMIN) as http:
        assert "timezone" in http.get("/settings").text


# -- the queue -----------------------------------------------------------------------------


def test_the_severity_filter_and_chinese_rule_names(admin_desk: ApiServer) -> None:
    with operator(admin_desk) as http:  # pickup_overdue is critical in the Tmall preset
        critical = http.get("/queue?view=all&severity=critical")
        assert len(ticket_ids(critical.text)) == 3 and "24小时未揽收" in critical.text
        assert ticket_ids(http.get("/queue?view=all&severity=warning").text) == []
        assert len(ticket_ids(http.get("/queue?view=all&severity=bogus").text)) == 3  # not offered: no filter
        poll = http.get("/queue/poll.json?view=all").json()
        assert poll["labels"]["pickup_overdue"] == "24小时未揽收"


def test_bulk_acknowledge_acknowledges_the_anomalies_behind_the_tickets(admin_desk: ApiServer, store: Store) -> None:
    with operator(admin_desk) as http:
        page = http.get("/queue?view=all")
        ids = ticket_ids(page.text)
        form = {"csrf": _hidden(page.text, "csrf"), "action": "acknowledge", "ids": [str(i) for i in ids[:2]],
                "back": "/queue?view=all"}  # fmt: skip
        answer = http.post("/queue/bulk", data=form)
        assert answer.status_code == 303 and "2" in http.get(answer.headers["location"]).text
    with store.begin() as uow:
        states = sorted(r.state for r in uow.conn.execute(select(AN.c.state)))
        acks = [
            json.loads(r.data)
            for r in uow.conn.execute(select(ACT.c.data).where(ACT.c.event == "anomaly_acknowledged"))
        ]
    assert states == ["acknowledged", "acknowledged", "open"]
    assert [a["actor"]["login"] for a in acks] == ["li.lei", "li.lei"]
    with as_user(admin_desk, "wang.fang") as viewer:
        refused = viewer.post("/queue/bulk", data=form | {"csrf": csrf(viewer), "ids": [str(ids[2])]})
        assert refused.status_code == 403


# -- intercept now -------------------------------------------------------------------------


def test_intercept_now_makes_exactly_one_intercept_when_clicked_twice(admin_desk: ApiServer, store: Store) -> None:
    with operator(admin_desk) as http:
        page = http.get("/parcel/sandbox/SB1")
        assert 'id="intercept-now"' in page.text
        token = _hidden(page.text, "csrf")
        first = http.post("/parcel/sandbox/SB1/intercept", data={"csrf": token})
        assert first.status_code == 303
        assert "held" in http.get(first.headers["location"]).text  # not picked up: the shipment is held
        second = http.post("/parcel/sandbox/SB1/intercept", data={"csrf": token})
        assert "已有进行中的拦截" in http.get(second.headers["location"]).text
    with store.begin() as uow:
        intercepts = list(uow.conn.execute(select(I)))
        noted = [
            json.loads(r.data) for r in uow.conn.execute(select(ACT.c.data).where(ACT.c.event == "intercept_by_hand"))
        ]
    assert [(i.state, i.refund_id.startswith("manual:")) for i in intercepts] == [("held", True)]
    assert [n["login"] for n in noted] == ["li.lei"]
    with as_user(admin_desk, "wang.fang") as viewer:
        assert 'id="intercept-now"' not in viewer.get("/parcel/sandbox/SB2").text
        refused = viewer.post("/parcel/sandbox/SB2/intercept", data={"csrf": csrf(viewer)})
        assert refused.status_code == 403
    with store.begin() as uow:
        assert uow.conn.execute(select(func.count()).select_from(I)).scalar_one() == 1


# -- token purge ---------------------------------------------------------------------------


def test_the_purge_deletes_ended_sessions_and_keeps_live_ones(store: Store) -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    People(store, _At(now)).add("li.lei", PASSWORD, by=CLI, role="operator")
    idle = sessions.log_in(store, "li.lei", PASSWORD, now - sessions.IDLE - timedelta(minutes=5))
    live = sessions.log_in(store, "li.lei", PASSWORD, now - timedelta(minutes=3))
    out = sessions.log_in(store, "li.lei", PASSWORD, now - timedelta(hours=1))
    assert out.principal is not None and idle.principal is not None and live.principal is not None
    session = sessions.check(store, out.token or "", now - timedelta(hours=1))
    assert session is not None
    sessions.log_out(store, session, now - timedelta(minutes=30))
    api_token = People(store, _At(now - timedelta(days=30))).issue_token("li.lei", by=CLI, label="")
    assert purge_sessions(store, now) == 2
    with store.begin() as uow:
        left = {r.token_id for r in uow.conn.execute(select(TOK.c.token_id))}
    assert left == {live.principal.token_id, api_token.token_id}
    assert sessions.check(store, live.token or "", now) is not None


class _At:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at
