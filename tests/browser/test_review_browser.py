"""Account reviews and reports in headless Chromium: an agent works through the checklist in
the sidebar; a supervisor reads the report, its chart, and downloads the CSV."""

from __future__ import annotations

import csv
import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_console_browser import open_console, watch_for_errors
from tests.browser.test_suggestions_browser import VIEWPORT, open_ticket_of, poll

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/shots")
SIDEBAR = 'iframe[title="Regulars app"]'


def keep(path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def test_an_agent_completes_the_account_review(
    live_server: str, page: Page, tmp_path: Path
) -> None:
    problems = watch_for_errors(page)
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{live_server}/demo")
    page.locator(f'[data-ticket-id="{open_ticket_of("Daniel Whitfield")}"]').click()
    sidebar = page.frame_locator(SIDEBAR)
    review = sidebar.locator(".rg-review")
    expect(review).to_be_visible(timeout=15_000)
    expect(review.locator("h2")).to_have_text("Account review: High-value account review")
    expect(review.locator('[data-part="review-progress"]')).to_contain_text(
        "0 of 3 required items checked"
    )
    boxes = review.get_by_role("checkbox")
    expect(boxes).to_have_count(5)

    # The first item by mouse, the rest by keyboard (the box is a button: Space activates it).
    boxes.nth(0).click()
    expect(review.locator('[data-result="done"]')).to_contain_text("Checked: Confirm the delivery")
    expect(review.get_by_role("checkbox").nth(0)).to_have_attribute("aria-checked", "true")
    expect(review.locator("[data-item]").nth(0)).to_contain_text("checked by Sam Carter")
    for index in (1, 2):
        box = sidebar.locator(".rg-review").get_by_role("checkbox").nth(index)
        box.focus()
        page.keyboard.press("Space")
        expect(sidebar.locator(".rg-review").get_by_role("checkbox").nth(index)).to_have_attribute(
            "aria-checked", "true"
        )
    done = sidebar.locator('[data-part="review-complete"]')
    expect(done).to_contain_text("Review complete")
    expect(sidebar.locator('[data-result="done"]')).to_contain_text("Review complete.")

    frame = page.locator(SIDEBAR)
    overflow = frame.evaluate(
        "el => { const d = el.contentDocument.documentElement;"
        " return d.scrollWidth - d.clientWidth; }"
    )
    assert overflow == 0, "the review card overflows sideways at sidebar width"
    assert poll(lambda: frame.evaluate("el => el.getBoundingClientRect().height") > 700)
    shot = tmp_path / "review-card.png"
    sidebar.locator(".rg-review").screenshot(path=str(shot))
    keep(shot)
    frame_shot = tmp_path / "review-sidebar.png"
    frame.screenshot(path=str(frame_shot))
    keep(frame_shot)

    # Reopening the ticket shows the same progress, with who checked what.
    page.reload()
    page.locator(f'[data-ticket-id="{open_ticket_of("Daniel Whitfield")}"]').click()
    again = page.frame_locator(SIDEBAR).locator(".rg-review")
    expect(again.locator('[data-part="review-complete"]')).to_be_visible(timeout=15_000)
    expect(again.locator("[data-item]").nth(2)).to_contain_text("checked by Sam Carter")
    assert problems == []


def test_a_supervisor_reads_the_report_and_downloads_it(
    live_server: str, page: Page, tmp_path: Path
) -> None:
    problems = watch_for_errors(page)
    page.set_viewport_size({"width": 1280, "height": 1000})
    frame = open_console(page, live_server)
    reports = frame.locator("#reports")
    expect(reports.locator(".rg-report-totals")).to_be_visible(timeout=15_000)
    today = datetime.now(UTC).date()
    reports.get_by_label("From", exact=True).fill((today - timedelta(days=179)).isoformat())
    reports.get_by_role("button", name="Show report").click()
    expect(reports.locator(".rg-report__title")).to_contain_text("(180 days, UTC)")
    chart = reports.get_by_role("img", name="Cost against budget per segment")
    expect(chart).to_be_visible()
    expect(reports.locator('[data-bar="High value"]')).to_have_count(1)
    expect(reports.locator("#report-reviews")).to_contain_text("High-value account review")
    expect(reports.locator("#report-agents")).to_contain_text("Sam Carter")

    with page.expect_download() as waiting:
        reports.get_by_role("button", name="Download CSV").click()
    download = waiting.value
    assert download.suggested_filename == (
        f"regulars-report-{today - timedelta(days=179)}-to-{today}.csv"
    )
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert rows[0]["section"] == "total" and int(rows[0]["acted_on"]) > 20

    # A wrong date is explained beside its field.
    reports.get_by_label("To", exact=True).fill("")
    reports.get_by_label("From", exact=True).fill(today.isoformat())
    reports.get_by_label("To", exact=True).fill((today - timedelta(days=3)).isoformat())
    reports.get_by_role("button", name="Show report").click()
    expect(reports.locator("#report-to-error")).to_have_text("must be on or after the start date")

    reports.get_by_label("From", exact=True).fill((today - timedelta(days=179)).isoformat())
    reports.get_by_label("To", exact=True).fill(today.isoformat())
    reports.get_by_role("button", name="Show report").click()
    expect(chart).to_be_visible()
    shot = tmp_path / "reports-section.png"
    frame.locator("section[aria-labelledby='reports-title']").screenshot(path=str(shot))
    keep(shot)
    checklists = tmp_path / "review-checklists.png"
    frame.locator("section[aria-labelledby='reviews-title']").screenshot(path=str(checklists))
    keep(checklists)
    # The wrong dates' answer is a 400, which the browser logs; nothing else went wrong.
    assert [p for p in problems if "status of 400" not in p] == []


def test_the_orders_card_shows_status_and_tracking_at_320_px(
    live_server: str, page: Page, tmp_path: Path
) -> None:
    """Margaret's "Espresso beans order ORD-… still not here": her order marked and tracked."""
    from plugin.demo.sample_data import build_sample_data

    data = build_sample_data(datetime.now(UTC).date())
    ticket = next(t for t in data.tickets if t.subject.startswith("Espresso beans order"))
    number = ticket.subject.split()[3]
    problems = watch_for_errors(page)
    page.set_viewport_size({"width": 360, "height": 900})
    page.goto(f"{live_server}/demo")
    page.locator(f'[data-ticket-id="{ticket.external_id}"]').click()
    orders = page.frame_locator(SIDEBAR).locator(".rg-orders")
    expect(orders).to_be_visible(timeout=15_000)
    expect(orders.locator("h2")).to_have_text("Recent orders")
    named = orders.locator(".rg-order--named")
    expect(named).to_have_count(1)
    expect(named).to_have_attribute("data-order", number)
    expect(named).to_contain_text("This ticket's order")
    expect(named.locator(".rg-order__status")).to_contain_text("Paid · Shipped")
    track = named.get_by_role("link", name=f"Track order {number}")
    expect(track).to_have_attribute("href", f"https://tracking.example.com/{number}")
    expect(track).to_have_attribute("target", "_blank")
    expect(track).to_have_attribute("rel", "noopener noreferrer")
    frame = page.locator(SIDEBAR)
    assert frame.evaluate("el => el.getBoundingClientRect().width") <= 340
    overflow = frame.evaluate(
        "el => { const d = el.contentDocument.documentElement;"
        " return d.scrollWidth - d.clientWidth; }"
    )
    assert overflow == 0, "the orders card overflows sideways at sidebar width"
    shot = tmp_path / "orders-card-320.png"
    page.frame_locator(SIDEBAR).locator(".rg-orders").screenshot(path=str(shot))
    keep(shot)
    assert problems == []
