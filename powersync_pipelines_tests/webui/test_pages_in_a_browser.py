"""The homeowner's page and Dagster's `battery_schedule` asset page, after one demo run, loaded in headless
chromium: the plan chart is drawn with the plan's 576 intervals and the next-actions tables have rows."""

from __future__ import annotations

import pytest

from .browser import browser_page, screenshot
from .servers import dagster_webserver, web

pytestmark = pytest.mark.timeout(1200)  # a demo run, a webserver and a browser on a shared 2-core machine


def test_homeowner_page_draws_the_plan_and_the_next_actions(demo_home):
    with web(demo_home, dagster_url="http://127.0.0.1:3000") as url, browser_page(1280, 900) as page:
        page.goto(f"{url}/")
        page.wait_for_selector("#chart-demo[data-rendered='1']")
        traces = page.evaluate("document.getElementById('chart-demo')._fullData.map(t => [t.name, t._length])")
        assert [n for n, _ in traces] == ["state of charge (%)", "charging (+ kW)", "discharging (- kW)",
                                          "import price ($/kWh)", "export price ($/kWh)"]
        assert [n for _, n in traces] == [576] * 5  # each trace drawn over the 48 h of 5-minute intervals
        assert page.locator("#chart-demo .main-svg").count() >= 1
        assert "local time (Australia/Melbourne)" in page.inner_text("#chart-demo")
        rows = page.locator("#next-actions-demo tbody tr")
        assert rows.count() >= 2
        first = rows.first.inner_text()
        assert "kW" in first and "$/kWh" in first and "%" in first
        assert "+ when charging" in page.inner_text("header")
        assert page.locator("a[href='http://127.0.0.1:3000/assets/battery_schedule']").count() == 1
        screenshot(page, "homeowner-page.png", full_page=True)


def test_dagster_asset_page_shows_the_actions_table_and_the_plan_plot(demo_home):
    with dagster_webserver(demo_home) as url, browser_page(1800, 1000) as page:
        page.goto(f"{url}/assets/battery_schedule")
        page.wait_for_selector("text=demo/next_actions")
        row = page.locator("tr", has_text="demo/next_actions")
        table = row.locator("table").first
        table.wait_for()
        assert "battery_kw" in table.inner_text() and "soc_end_pct" in table.inner_text()
        assert table.locator("tr").count() >= 3  # the header and at least two blocks of the plan
        assert "EXPORT" in table.inner_text()
        assert page.locator("tr", has_text="demo/savings_24h_AUD").count() == 1
        screenshot(page, "dagster-battery-schedule.png")
        page.locator("tr", has_text="demo/plot").get_by_text("[Show Markdown]").click()
        img = page.locator("img[alt='plan']")
        img.wait_for()
        page.wait_for_function("document.querySelector(\"img[alt='plan']\").naturalWidth > 0")
        assert page.evaluate("document.querySelector(\"img[alt='plan']\").naturalWidth") == 800
        screenshot(page, "dagster-plan-plot.png")
