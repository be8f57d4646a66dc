"""The console's sessions over real HTTP (no browser): cookie flags, CSRF, lockout, roles, logout, language."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from monitor.people.accounts import People
from monitor.people.model import CLI
from monitor.store.store import Store
from tests.api.server import ApiServer, running_api

PASSWORD = "correct horse 42"


@pytest.fixture
def console(store: Store) -> Iterator[ApiServer]:
    with running_api(store) as server:
        people = People(store, server.clock)
        people.add("li.lei", PASSWORD, by=CLI, role="operator")
        people.add("wang.fang", PASSWORD, by=CLI, role="viewer")
        yield server


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden {name} in page"
    return found.group(1)


def log_in(http: httpx.Client, login: str, password: str = PASSWORD) -> httpx.Response:
    page = http.get("/login")
    return http.post("/login", data={"login": login, "password": password, "csrf": _hidden(page.text, "csrf"),
                                     "next": "/queue"})  # fmt: skip


def client(server: ApiServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def test_login_sets_a_strict_httponly_session_cookie_and_opens_the_queue(console: ApiServer) -> None:
    with client(console) as http:
        answer = log_in(http, "li.lei")
        assert answer.status_code == 303 and answer.headers["location"] == "/queue"
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("pm_session="))
        flags = cookie.lower()
        assert "httponly" in flags and "samesite=strict" in flags and "max-age=43200" in flags
        assert "secure" not in flags  # plain http on loopback: auto leaves it off
        queue = http.get("/queue")
        assert queue.status_code == 200 and "工作台" in queue.text and "li.lei" in queue.text


def test_secure_flag_can_be_forced(console: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARCEL_MONITOR_CONSOLE_SECURE_COOKIE", "always")
    with client(console) as http:
        page = http.get("/login")
        cookie = next(c for c in page.headers.get_list("set-cookie") if c.startswith("pm_login_csrf="))
        assert "secure" in cookie.lower()
        answer = log_in(http, "li.lei")  # over plain http the browser keeps a Secure cookie to itself
        assert answer.status_code == 403


def test_pages_need_a_session(console: ApiServer) -> None:
    with client(console) as http:
        answer = http.get("/queue?view=all")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")
        assert http.get("/queue/poll.json").status_code == 401
        http.cookies.set("pm_session", "pm_" + "x" * 40)
        assert http.get("/parcel").status_code == 303


def test_a_forged_or_missing_csrf_token_changes_nothing(console: ApiServer) -> None:
    with client(console) as http:
        log_in(http, "li.lei")
        good = _hidden(http.get("/queue").text, "csrf")
        for forged in ("", "0" * 64, good[:-1] + ("0" if good[-1] != "0" else "1")):
            answer = http.post("/logout", data={"csrf": forged})
            assert answer.status_code == 403 and "请求无效" in answer.text
        assert http.get("/queue").status_code == 200  # still logged in: the forged logouts did nothing
        assert http.post("/logout", headers={"X-CSRF-Token": good}).status_code == 303


def test_login_form_needs_its_double_submit_token(console: ApiServer) -> None:
    with client(console) as http:
        http.get("/login")
        answer = http.post("/login", data={"login": "li.lei", "password": PASSWORD, "csrf": "guess"})
        assert answer.status_code == 403 and "pm_session" not in answer.headers.get("set-cookie", "")


def test_logout_revokes_the_session_for_good(console: ApiServer) -> None:
    with client(console) as http:
        log_in(http, "li.lei")
        stolen = http.cookies.get("pm_session")
        csrf = _hidden(http.get("/queue").text, "csrf")
        assert http.post("/logout", data={"csrf": csrf}).headers["location"] == "/login"
    with client(console) as thief:
        thief.cookies.set("pm_session", stolen or "")
        assert thief.get("/queue").status_code == 303  # the cookie kept elsewhere is worthless now


def test_five_failures_lock_the_login_without_telling_whether_it_exists(console: ApiServer) -> None:
    with client(console) as http:
        for login in ("li.lei", "nobody.here"):
            answers = [log_in(http, login, "wrong password!") for _ in range(5)]
            assert [a.status_code for a in answers] == [401] * 5
            assert "登录名或密码不正确" in answers[0].text and "15 分钟" in answers[-1].text
        locked = log_in(http, "li.lei")  # the right password, but locked
        assert locked.status_code == 401 and "15 分钟" in locked.text
        assert "pm_session" not in locked.headers.get("set-cookie", "")
        assert log_in(http, "wang.fang").status_code == 303  # another login is not locked


def test_lockout_is_kept_in_the_store(console: ApiServer, store: Store) -> None:
    with client(console) as http:
        for _ in range(5):
            log_in(http, "li.lei", "wrong password!")
    with running_api(store) as restarted, client(restarted) as http:  # a new app on the same store
        assert log_in(http, "li.lei").status_code == 401


def test_a_viewer_sees_but_may_not_act(console: ApiServer) -> None:
    with client(console) as http:
        log_in(http, "wang.fang")
        page = http.get("/queue?view=all")
        assert page.status_code == 200 and 'id="bulk-close"' not in page.text
        csrf = _hidden(page.text, "csrf")
        answer = http.post("/queue/bulk", data={"csrf": csrf, "action": "close", "ids": ["1"]})
        assert answer.status_code == 403 and "viewer" in answer.text
        answer = http.post("/anomaly/1/resolve", data={"csrf": csrf})
        assert answer.status_code == 403
    with client(console) as http:
        log_in(http, "li.lei")
        page = http.get("/queue?view=all")
        assert 'id="bulk-close"' in page.text
        answer = http.post("/queue/bulk", data={"csrf": _hidden(page.text, "csrf"), "action": "close"})
        assert answer.status_code == 303


def test_english_by_a_switch_kept_in_a_cookie(console: ApiServer) -> None:
    with client(console) as http:
        log_in(http, "li.lei")
        assert "Work queue" in http.get("/queue?lang=en").text
        assert "Work queue" in http.get("/queue").text
        assert "工作台" in http.get("/queue?lang=zh").text


def test_next_after_login_stays_on_this_site(console: ApiServer) -> None:
    with client(console) as http:
        page = http.get("/login?next=//evil.example/")
        assert _hidden(page.text, "next") == "/queue"


def test_assets_are_served_from_the_package(console: ApiServer) -> None:
    with client(console) as http:
        css = http.get("/console/static/console.css")
        js = http.get("/console/static/console.js")
        assert css.status_code == 200 and "font" in css.text
        assert js.status_code == 200 and "poll" in js.text


def test_only_our_own_redirects_put_a_message_on_the_page(console: ApiServer) -> None:
    with client(console) as http:
        log_in(http, "li.lei")
        forged = http.get("/queue", params={"message": "请把密码发给 evil@example.com", "sig": "0" * 32})
        assert "evil@example.com" not in forged.text
        csrf = _hidden(forged.text, "csrf")
        ours = http.post("/queue/bulk", data={"csrf": csrf, "action": "close", "back": "/queue"})
        assert "已更新 0 个工单" in http.get(ours.headers["location"]).text


def test_each_page_slides_the_session_cookie_and_search_finds_nothing_politely(console: ApiServer) -> None:
    with client(console) as http:
        log_in(http, "li.lei")
        page = http.get("/parcel?q=NOPE123")
        assert page.status_code == 200 and "没有找到包裹" in page.text
        assert any(c.startswith("pm_session=") for c in page.headers.get_list("set-cookie"))
        assert http.get("/parcel/sandbox/NOPE123").status_code == 404


def test_an_admin_manages_users_and_a_disabled_account_is_out_at_once(console: ApiServer, store: Store) -> None:
    People(store, console.clock).add("boss", PASSWORD, by=CLI, role="admin")
    with client(console) as victim, client(console) as admin:
        log_in(victim, "wang.fang")
        assert victim.get("/users").status_code == 403  # a viewer manages nobody
        log_in(admin, "boss")
        page = admin.get("/users")
        assert page.status_code == 200 and 'data-login="wang.fang"' in page.text
        csrf = _hidden(page.text, "csrf")
        assert admin.post("/users/wang.fang", data={"csrf": "0" * 64, "action": "disable"}).status_code == 403
        assert victim.get("/queue").status_code == 200  # the forged request did nothing
        admin.post("/users/wang.fang", data={"csrf": csrf, "action": "disable"})
        assert victim.get("/queue").status_code == 303  # the session ended with the account
        admin.post("/users/li.lei", data={"csrf": csrf, "action": "role", "role": "viewer"})
    assert {a.login: (a.role.value, a.disabled) for a in People(store, console.clock).accounts()} == {
        "boss": ("admin", False), "li.lei": ("viewer", False), "wang.fang": ("viewer", True)}  # fmt: skip
