"""The console in a real browser: Debian's Chromium driven by Playwright, against a real daemon child process.

The daemon's store is seeded the way an ops team's would be: ``parcel-monitor replay`` of
tests/console/queue-day.jsonl into a database, users added with ``parcel-monitor user add``.
Screenshots go to ``$CONSOLE_ARTIFACTS`` (default: a temporary folder); ``CONSOLE_DOCS=1``
also refreshes the ones README.md shows (docs/console-*.png).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.daemon.process import BINARY, Daemon, signed_refund

ROOT = Path(__file__).parents[2]
#: A day with unpicked parcels and carrier exceptions: eight open tickets to work.
SCENARIO = Path(__file__).with_name("queue-day.jsonl")
PASSWORD = "correct horse 42"
USERS = {"li.lei": "operator", "wang.fang": "viewer", "zhang.wei": "operator"}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
ARTIFACTS = Path(os.environ.get("CONSOLE_ARTIFACTS") or tempfile.mkdtemp(prefix="console-shots-"))


def shifted(scenario: Path, into: Path) -> Path:
    """Write ``scenario`` moved in time so it ends an hour ago: the daemon's SLA clocks then read like a workday."""
    steps = [json.loads(line) for line in scenario.read_text(encoding="utf-8").splitlines() if line.strip()]
    end = max(datetime.fromisoformat(step["at"]) for step in steps)
    by = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1) - end
    lines = [json.dumps(step | {"at": (datetime.fromisoformat(step["at"]) + by).isoformat()}, ensure_ascii=False)
             for step in steps]  # fmt: skip
    into.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return into


def _cli(*args: str, env: dict[str, str], stdin: str | None = None) -> str:
    done = subprocess.run([str(BINARY), *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon on a store seeded by a replayed day and three accounts."""
    folder = tmp_path_factory.mktemp("console")
    url = f"sqlite:///{folder / 'monitor.db'}"
    config = folder / "monitor.toml"
    toml = f'[database]\nurl = "{url}"\n\n[polling]\ntick_seconds = 1\n\n[carriers.sandbox]\nseed = 0\n'
    config.write_text(toml, encoding="utf-8")
    env = {**os.environ, "PARCEL_MONITOR_CONFIG": str(config), "PARCEL_MONITOR_DATABASE_URL": url}
    _cli("replay", str(shifted(SCENARIO, folder / "day.jsonl")), "--database-url", url, env=env)
    for login, role in USERS.items():
        _cli("user", "add", login, "--role", role, "--password-stdin", env=env, stdin=PASSWORD + "\n")
    process = Daemon(["--config", str(config)]).wait_started()
    yield process
    process.terminate()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("no chromium on this machine (apt-get install -y chromium; .ci/run does)")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, daemon: Daemon) -> Iterator[Page]:
    context = browser.new_context(base_url=daemon.base, viewport={"width": 1360, "height": 820},
                                  locale="zh-CN")  # fmt: skip
    tab = context.new_page()
    yield tab
    context.close()


def shot(page: Page, name: str) -> None:
    """Save a screenshot as a test artifact (and as docs/console-<name>.png when CONSOLE_DOCS=1)."""
    path = ARTIFACTS / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("CONSOLE_DOCS") == "1":
        shutil.copy(path, ROOT / "docs" / path.name)


def log_in(page: Page, login: str, password: str = PASSWORD) -> None:
    page.goto("/queue")
    page.fill('input[name="login"]', login)
    page.fill('input[name="password"]', password)
    page.click('form.login button[type="submit"]')


def test_an_operator_works_the_queue_assigns_and_closes_a_ticket(page: Page) -> None:
    p = page
    log_in(p, "li.lei")
    p.wait_for_url(re.compile(r"/queue"))
    assert "工作台" in p.title()
    p.goto("/queue?view=unassigned")
    rows = p.locator("#rows tr[data-id]")
    assert rows.count() >= 2, p.content()
    assert p.locator("#counts .count").count() >= 1
    stakes = [float(s.strip("¥") or 0) for s in p.locator("#rows tr[data-id] td.num").all_inner_texts()]
    assert stakes == sorted(stakes, reverse=True)  # most money at stake first
    assert p.locator("#rows td.sla").first.inner_text()  # the SLA clock on each row
    shot(p, "queue")
    first, second = rows.nth(0).get_attribute("data-id"), rows.nth(1).get_attribute("data-id")
    p.check(f'input[name="ids"][value="{first}"]')
    p.check(f'input[name="ids"][value="{second}"]')
    p.fill('input[name="assignee"]', "li.lei")
    p.click("#bulk-assign")
    assert "已更新 2 个工单" in p.locator(".message").inner_text()
    p.goto("/queue?view=mine")
    mine = p.locator("#rows tr[data-id]").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert first in mine and second in mine
    p.check(f'input[name="ids"][value="{first}"]')
    p.select_option('select[name="outcome"]', "chased")
    p.fill('input[name="note"]', "催了快递员")
    p.click("#bulk-close")
    assert "已更新 1 个工单" in p.locator(".message").inner_text()
    left = p.locator("#rows tr[data-id]").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert first not in left and second in left


def test_a_parcel_shows_its_carrier_timeline_and_ticket_history(page: Page) -> None:
    p = page
    log_in(p, "zhang.wei")
    p.wait_for_url(re.compile(r"/queue"))
    p.goto("/queue?view=all")
    link = p.locator("#rows tr[data-id] td a").first
    tracking_no = link.inner_text().split()[-1]
    p.fill('header input[name="q"]', tracking_no)
    p.press('header input[name="q"]', "Enter")
    p.wait_for_url(re.compile(rf"/parcel/[^/]+/{tracking_no}$"))
    assert tracking_no in p.locator("#parcel-title").inner_text()
    assert p.locator("#timeline tbody tr").count() >= 1
    assert p.locator("#anomalies tbody tr[data-id]").count() >= 1
    assert p.locator("section.ticket table.history tbody tr").count() >= 1
    shot(p, "parcel")


def test_a_viewer_sees_but_is_refused_an_action(page: Page) -> None:
    p = page
    log_in(p, "wang.fang")
    p.wait_for_url(re.compile(r"/queue"))
    p.goto("/queue?view=all")
    assert p.locator("#rows tr[data-id]").count() >= 1
    assert p.locator("#bulk-close").count() == 0  # no action buttons for a viewer
    first = p.locator("#rows tr[data-id]").first.get_attribute("data-id")
    # A hand-made form (the buttons are not there): the server refuses it by role, not by the missing button.
    p.evaluate(
        """id => { const f = document.getElementById('bulk');
        for (const [k, v] of [['action', 'close'], ['ids', id]]) { const i = document.createElement('input');
        i.type = 'hidden'; i.name = k; i.value = v; f.append(i); } f.submit(); }""",
        first,
    )
    p.wait_for_selector("#refused")
    assert "viewer" in p.locator("#refused").inner_text()
    shot(p, "viewer-refused")


def test_a_forged_csrf_token_is_refused(page: Page) -> None:
    p = page
    log_in(p, "zhang.wei")
    p.wait_for_url(re.compile(r"/queue"))
    p.goto("/queue?view=all")
    before = p.locator("#rows tr[data-id]").count()
    p.locator('#bulk input[name="csrf"]').evaluate("i => i.value = 'f'.repeat(64)")
    p.locator('#rows input[name="ids"]').first.check()
    p.click("#bulk-close")
    assert "请求无效" in p.locator("#refused").inner_text()
    p.goto("/queue?view=all")
    assert p.locator("#rows tr[data-id]").count() == before  # nothing was closed


def test_lockout_after_five_failures_and_logout(page: Page) -> None:
    p = page
    for _ in range(5):
        log_in(p, "zhang.wei", "not the password")
        assert p.locator(".message").inner_text()
    log_in(p, "zhang.wei")  # the right password, but locked now
    assert "15 分钟" in p.locator(".message").inner_text()
    assert "/login" in p.url
    log_in(p, "li.lei")  # others still get in
    p.wait_for_url(re.compile(r"/queue"))
    p.click("#logout")
    p.wait_for_url(re.compile(r"/login"))
    p.goto("/queue")
    assert "/login" in p.url  # the session is over


def test_english_switch(page: Page) -> None:
    p = page
    log_in(p, "li.lei")
    p.wait_for_url(re.compile(r"/queue"))
    p.click("a.lang")
    assert "Work queue" in p.title()
    p.goto("/queue")
    assert "Work queue" in p.title()  # the choice is kept


def test_a_new_ticket_appears_without_reload(page: Page, daemon: Daemon) -> None:
    p = page
    log_in(p, "li.lei")
    p.wait_for_url(re.compile(r"/queue"))
    p.goto("/queue?view=unassigned")
    shipped = (datetime.now(UTC) - timedelta(hours=30)).isoformat()
    body = {"order_id": "TB-POLL-1", "carrier": "sandbox", "tracking_no": "SBX7990000000001", "shipped_at": shipped,
            "amount": "520.00", "shop": "数码优选店"}  # fmt: skip
    with daemon.client() as api:
        answer = api.post("/api/v1/shipments", json=body)
        assert answer.status_code in (200, 201), answer.text
        refund = signed_refund(api, {"refund_id": "RF-POLL-1", "order_id": "TB-POLL-1", "type": "refund_only"})
        assert refund.status_code == 200, refund.text  # held before pickup: a "refund" ticket for a person
    p.wait_for_selector("#rows tr.new", timeout=30_000)  # no reload: the page's poll (every 10 s) brings it
    assert "SBX7990000000001" in p.locator("#rows tr.new").first.inner_text()
    assert not p.locator("#fresh").is_hidden()
