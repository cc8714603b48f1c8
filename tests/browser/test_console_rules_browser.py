"""A supervisor writes a rule, tries it, replays it, publishes it and rolls it back, in Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Frame, Page, expect

from tests.browser.test_console_browser import (
    console_frame,
    screenshot,
    unexpected,
    watch_for_errors,
)

pytestmark = pytest.mark.browser


def open_as_supervisor(page: Page, live_server: str) -> Frame:
    page.goto(f"{live_server}/demo")
    page.get_by_role("button", name="Supervisor console").click()
    return console_frame(page)


def test_a_supervisor_writes_tries_replays_publishes_and_rolls_back_a_rule(
    page: Page, live_server: str, tmp_path: Path
) -> None:
    problems = watch_for_errors(page)
    page.on("dialog", lambda dialog: dialog.accept())
    frame = open_as_supervisor(page, live_server)
    expect(frame.locator(".rg-console__head")).to_contain_text("Priya Nair (supervisor)")
    # Supervisors see the rules, not the connection, the data import or the role settings.
    expect(frame.locator("#rules-title")).to_be_visible()
    expect(frame.locator("#connection")).to_have_count(0)
    expect(frame.locator("#roles")).to_have_count(0)

    rules = frame.locator("#rules")
    expect(rules.locator("[data-rule]").first).to_be_visible(timeout=15_000)
    rules.get_by_role("button", name="New rule").click()
    rules.get_by_label("Key", exact=True).fill("champions_thank_you")
    rules.get_by_label("Name", exact=True).fill("Champions thank-you")
    rules.locator("#rule-all-0-field").select_option("rfm_segment")
    rules.locator("#rule-all-0-operator").select_option("is")
    rules.locator("#rule-all-0-value").fill("Champions")
    rules.get_by_role("checkbox", name="Free sample with the next order").check()
    rules.get_by_label("At most (times)").fill("1")
    rules.get_by_label("per customer, in (days)").fill("90")

    # Try it on a customer named in the search: her latest ticket, with the why.
    rules.get_by_label("Try on a customer").fill("Margaret Okafor")
    rules.get_by_role("button", name="Try the draft").click()
    lab = rules.locator("#rule-lab")
    expect(lab).to_contain_text("Tried on Margaret Okafor", timeout=15_000)
    expect(lab.locator("[data-part=verdict]")).to_have_text("The draft applies.")
    expect(lab.locator('[data-suggested="free_sample"]')).to_contain_text("RFM segment")
    screenshot(page, tmp_path, "console-rule-try.png")

    # Replay it over the last 30 days of tickets the sidebar saw.
    rules.get_by_role("button", name="Replay the last 30 days").click()
    expect(lab).to_contain_text("Replayed over", timeout=15_000)
    expect(lab).to_contain_text("as of now")
    expect(lab.locator("[data-part=figures]")).to_contain_text("would have got a suggestion")
    expect(lab).to_contain_text("Free sample with the next order")
    screenshot(page, tmp_path, "console-rule-replay.png")

    # Publish it from the same screen.
    lab.get_by_role("button", name="Publish this draft").click()
    expect(rules.locator("[role=status]")).to_have_text(
        "Published Champions thank-you as version 1.", timeout=15_000
    )
    item = rules.locator('[data-rule="champions_thank_you"]')
    expect(item.locator("[data-part=version]")).to_have_text("Version 1")

    # A second version, then roll back to the first in one step.
    item.get_by_role("button", name="Edit").click()
    rules.get_by_label("At most (times)").fill("2")
    rules.get_by_label("What changed and why").fill("Twice a quarter")
    rules.get_by_role("button", name="Publish version 2").click()
    expect(rules.locator("[role=status]")).to_have_text(
        "Published Champions thank-you as version 2.", timeout=15_000
    )
    rules.locator('[data-rule="champions_thank_you"]').get_by_role("button", name="History").click()
    history = rules.locator('[data-version="2"]')
    expect(history).to_contain_text("Priya Nair")
    expect(history.locator(".rg-diff")).to_contain_text("Cap per customer")
    screenshot(page, tmp_path, "console-rule-history.png")
    rules.get_by_role("button", name="Roll back to version 1").click()
    expect(rules.locator("[role=status]")).to_have_text(
        "Rolled back to version 1: version 3 is now in force.", timeout=15_000
    )
    expect(rules.locator('[data-version="3"]')).to_contain_text("A copy of version 1.")
    assert problems == []


def test_a_supervisor_edits_the_catalog_and_decides_nothing_pending(
    page: Page, live_server: str, tmp_path: Path
) -> None:
    problems = watch_for_errors(page)
    frame = open_as_supervisor(page, live_server)
    catalog = frame.locator("#catalog")
    expect(catalog.locator("[data-entry]").first).to_be_visible(timeout=15_000)
    catalog.get_by_role("button", name="New entry").click()
    catalog.get_by_role("button", name="Save entry").click()
    # Every wrong field says which and why, next to it.
    expect(catalog.locator("#entry-key-error")).to_be_visible()
    expect(catalog.locator("#entry-cost_amount-error")).to_contain_text("Enter an amount")
    screenshot(page, tmp_path, "console-catalog-errors.png")
    expect(frame.locator("#budgets table")).to_contain_text("Small business")
    assert unexpected(problems) == []
