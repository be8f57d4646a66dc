"""The 拦截 and 快递公司 pages in a real browser, against the real daemon of tests/console/test_browser.py.

Seeded through the daemon's own API: a signed refund-only request for a parcel of the replayed
day that is in transit with ``sf`` — a carrier with no adapter here, so the intercept call is
refused (``carrier_has_no_intercept``) and fails — then, later, one for a new sandbox parcel not
yet picked up, which is held. The failed one must still be the first row.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page

from tests.console.test_browser import browser, daemon, log_in, page, shot  # noqa: F401
from tests.daemon.process import Daemon, signed_refund, wait_for

#: In transit with sf in tests/console/queue-day.jsonl (picked up, then an address exception).
FAILED_ORDER, FAILED_TRACKING = "TB202603100011", "SF71103110011"


def _states(daemon: Daemon) -> dict[str, str]:  # noqa: F811
    with daemon.client() as api:
        return {i["parcel"]["tracking_no"]: i["state"] for i in api.get("/api/v1/intercepts").json()["items"]}


def test_intercepts_page_puts_the_failed_one_first_and_carriers_page_shows_sandbox_up(
    page: Page,  # noqa: F811
    daemon: Daemon,  # noqa: F811
) -> None:
    with daemon.client() as api:
        answer = signed_refund(api, {"refund_id": "RF-OPS-1", "order_id": FAILED_ORDER, "type": "refund_only"})
        assert answer.status_code == 200, answer.text
        wait_for(lambda: _states(daemon).get(FAILED_TRACKING) == "failed")
        shipped = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
        body = {"order_id": "TB-OPS-2", "carrier": "sandbox", "tracking_no": "SBX7990000000201", "shipped_at": shipped,
                "amount": "99.00", "shop": "数码优选店"}  # fmt: skip
        assert api.post("/api/v1/shipments", json=body).status_code in (200, 201)
        answer = signed_refund(api, {"refund_id": "RF-OPS-2", "order_id": "TB-OPS-2", "type": "refund_only"})
        assert answer.status_code == 200, answer.text
    wait_for(lambda: _states(daemon).get("SBX7990000000201") == "held")
    p = page
    log_in(p, "li.lei")
    p.wait_for_url(re.compile(r"/queue"))
    p.click('header nav a[href="/intercepts"]')
    p.wait_for_url(re.compile(r"/intercepts"))
    rows = p.locator("#intercept-rows tbody tr[data-id]")
    assert rows.count() >= 2
    first = rows.nth(0)
    assert first.get_attribute("data-state") == "failed"
    assert FAILED_TRACKING in first.inner_text() and "拦截失败" in first.inner_text()
    assert "carrier_has_no_intercept" in first.inner_text()
    assert re.fullmatch(r"\d+\.\d 秒", first.locator("td.seconds").inner_text().strip())
    states = rows.evaluate_all("rows => rows.map(r => r.dataset.state)")
    assert "held" in states and states.index("held") > 0  # newer, yet after the failed one
    assert p.locator('#intercept-counts a[data-state="failed"] b').inner_text() == "1"
    shot(p, "intercepts")
    first.locator("a").click()  # each row opens its parcel
    p.wait_for_url(re.compile(rf"/parcel/sf/{FAILED_TRACKING}$"))
    p.goto("/intercepts?state=held")
    assert p.locator("#intercept-rows tbody tr[data-id]").evaluate_all("r => r.map(x => x.dataset.state)") == ["held"]
    p.click('header nav a[href="/carriers"]')
    p.wait_for_url(re.compile(r"/carriers"))
    sandbox = p.locator('#carriers tr[data-carrier="sandbox"]')
    assert sandbox.get_attribute("data-state") == "up"
    assert "正常" in sandbox.locator("td.health").inner_text() and "up" in sandbox.locator("td.health").inner_text()
    assert int(sandbox.locator("td.watched").inner_text()) >= 1
    sf = p.locator('#carriers tr[data-carrier="sf"]')  # parcels of sf, though no adapter polls them
    assert sf.get_attribute("data-state") == "unconfigured" and "未接入" in sf.inner_text()
    assert p.locator("#unknown-codes").count() == 1
    shot(p, "carriers")
