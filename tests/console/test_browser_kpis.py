"""指标 in a real browser: the charts are drawn (their canvases hold pixels) from the daemon's own rollup.

Reuses the daemon of test_browser.py: a store seeded by replaying tests/console/queue-day.jsonl (moved
to end an hour ago, so its shipments fall on yesterday), on which the daemon rolls up the last days
when it starts.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page

from tests.console.test_browser import browser, daemon, log_in, page, shot  # noqa: F401

#: How many pixels of a chart's canvas are painted (not transparent), next to a blank canvas of its size.
PAINTED = """sel => {
  const canvas = document.querySelector(sel);
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
  const blank = document.createElement("canvas");
  blank.width = canvas.width; blank.height = canvas.height;
  return {painted, url: canvas.toDataURL().length, blank: blank.toDataURL().length};
}"""


def test_a_viewer_sees_the_kpi_charts_drawn_from_the_rollup(page: Page) -> None:  # noqa: F811
    p = page
    log_in(p, "wang.fang")  # a viewer: the figures are for everyone
    p.wait_for_url(re.compile(r"/queue"))
    p.click('header nav a[href="/kpis"]')
    p.wait_for_url(re.compile(r"/kpis"))
    today = p.locator("h1 small").inner_text().split(" – ")[1][:10]
    past = p.locator("#table-pickup tbody tr:not(.empty) td:first-child")
    for _ in range(50):  # the start-up rollup runs beside the first requests: give it a moment
        if [day for day in past.all_inner_texts() if day != today]:
            break
        p.wait_for_timeout(200)
        p.reload()
    assert [day for day in past.all_inner_texts() if day != today], p.locator("#table-pickup").inner_html()
    assert "指标" in p.title()
    for name in ("pickup", "anomalies"):
        p.wait_for_selector(f"#chart-{name} canvas")
        drawn = p.evaluate(PAINTED, f"#chart-{name} canvas")
        assert drawn["painted"] > 500 and drawn["url"] > drawn["blank"] * 2, drawn
    assert p.locator("#kpi-pickup a.csv").get_attribute("href", timeout=1000).startswith("/kpis.csv?")
    shot(p, "kpis")
