"""The effects report in the console, in headless Chromium: the demo's planted effect, its
interval chart and the rule without an effect, under the console's strict CSP."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_console_browser import open_console, watch_for_errors

pytestmark = pytest.mark.browser
EFFECTS_SHOT = Path("/tmp/effects.png")


def test_the_demo_effect_report_shows_its_chart(
    live_server: str, page: Page, tmp_path: Path
) -> None:
    problems = watch_for_errors(page)
    page.set_viewport_size({"width": 1300, "height": 1300})
    frame = open_console(page, live_server)
    section = frame.locator("#effects")
    paying = section.locator('[data-effect-rule="repeat_late_credit"]')
    expect(paying).to_be_visible(timeout=15_000)
    expect(paying.locator("h3")).to_contain_text("holdout 20%")
    chart = paying.locator("svg[data-effect-chart]")
    expect(chart).to_be_visible()
    expect(chart.locator('[data-effect-row="Ordered within 90 days"] circle')).to_have_class(
        "rg-chart__dot rg-chart__dot--clear"
    )
    expect(paying.locator("[data-cost-per-extra]")).to_contain_text("$")
    null = section.locator('[data-effect-rule="first_order_sample"]')
    expect(null.locator('[data-effect-row="Ordered within 90 days"] circle')).to_have_class(
        "rg-chart__dot"
    )
    paying.locator("h3").scroll_into_view_if_needed()
    shot = tmp_path / "effects.png"
    page.screenshot(path=str(shot))  # the viewport: the console scrolls inside its frame
    shutil.copy(shot, EFFECTS_SHOT)
    assert problems == []
