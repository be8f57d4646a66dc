"""设置 in a real browser: an admin adds a user, who then logs in (fixtures shared with test_browser.py)."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Page

from monitor.testing.daemon import Daemon
from tests.console.test_browser import PASSWORD, _cli, browser, daemon, log_in, page, shot  # noqa: F401

ADMIN = "chen.admin"


@pytest.fixture(scope="module")
def admin(daemon: Daemon) -> str:  # noqa: F811
    """An admin account, added the way an install gets its first one: ``parcel-monitor user add --role admin``."""
    args = list(daemon.proc.args)  # type: ignore[arg-type]
    config = args[args.index("--config") + 1]
    env = {**os.environ, "PARCEL_MONITOR_CONFIG": config}
    _cli("user", "add", ADMIN, "--role", "admin", "--password-stdin", env=env, stdin=PASSWORD + "\n")
    return ADMIN


def test_an_admin_adds_a_user_who_then_logs_in(page: Page, admin: str) -> None:  # noqa: F811
    p = page
    log_in(p, admin)
    p.wait_for_url(re.compile(r"/queue"))
    p.click('header nav a[href="/users"]')
    p.wait_for_url(re.compile(r"/users"))
    p.fill('#add-user input[name="login"]', "sun.li")
    p.fill('#add-user input[name="display_name"]', "孙丽")
    p.select_option('#add-user select[name="role"]', "operator")
    p.click("#add-user-submit")  # no password typed: one is generated and shown once
    password = p.locator("#new-password").inner_text().strip()
    assert len(password) >= 16
    assert p.locator('#users tr[data-login="sun.li"]').count() == 1
    shot(p, "users")
    p.click('header nav a[href="/settings"]')
    p.wait_for_url(re.compile(r"/settings"))
    assert p.locator("table.settings").count() >= 1
    p.click("#logout")
    p.wait_for_url(re.compile(r"/login"))
    log_in(p, "sun.li", password)
    p.wait_for_url(re.compile(r"/queue"))
    assert "sun.li · operator" in p.locator("header .who").inner_text()
