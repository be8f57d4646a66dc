"""The 预测 page in a real browser, against the real daemon of tests/console/test_browser.py.

The replayed day gives the daemon's shops pickups due today and parcels pending: each shop gets
a chart. Drawn means the canvas holds more than a blank canvas of the same size would.
"""

from __future__ import annotations

from playwright.sync_api import Page

from tests.console.test_browser import browser, daemon, log_in, page, shot  # noqa: F401

BLANK_VS_DRAWN = """(canvas) => {
  const blank = document.createElement("canvas");
  blank.width = canvas.width; blank.height = canvas.height;
  return [canvas.toDataURL().length, blank.toDataURL().length];
}"""


def test_the_forecast_chart_is_drawn_with_its_table(page: Page) -> None:  # noqa: F811
    log_in(page, "wang.fang")  # a viewer may read it
    page.wait_for_url("**/queue**")
    page.click('nav a[href="/forecast"]')
    page.wait_for_url("**/forecast")
    canvas = page.locator("#chart-forecast-0 canvas").first
    canvas.wait_for(state="visible")
    drawn, blank = canvas.evaluate(BLANK_VS_DRAWN)
    assert drawn > blank * 2, (drawn, blank)
    rows = page.locator("#table-forecast-0 tbody tr")
    assert rows.count() == 7
    assert "%" in rows.first.inner_text()
    shot(page, "forecast")
