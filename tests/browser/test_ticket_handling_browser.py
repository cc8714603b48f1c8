"""Ticket handling in headless Chromium: the demo agent applies "Raise priority" and a route
from the sidebar, by keyboard, and sees the demo ticket change as the outbox delivers them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from plugin import db
from plugin.delivery.cli import stop_in_process
from tests.browser.conftest import serving
from tests.browser.test_console_browser import watch_for_errors
from tests.browser.test_suggestions_browser import (
    ARTIFACTS,
    SHOTS,
    open_card,
    open_ticket_of,
    shoot,
)
from tests.conftest import build_app, dispose_app
from tests.seeded_demo import SeededDemos

pytestmark = pytest.mark.browser

GRACE = "Grace Mensah"  # high value, a normal-priority ticket: raise it to high
DENTAL = "Brightside Dental Studio"  # small business: to the experienced agents


@pytest.fixture
def demo_with_worker(tmp_path: Path, seeded_demos: SeededDemos) -> Iterator[str]:
    """The seeded demo served with its in-process outbox worker on, as `flask run` has it."""
    app = build_app(
        f"sqlite:///{tmp_path / 'live.sqlite3'}",
        tmp_path / "instance",
        outbox_in_process=True,
        outbox_backoff_ms=200,
    )
    with db.database(app).sessions() as session:
        seeded_demos.load(app, session)
    try:
        with serving(app) as url:
            yield url
    finally:
        stop_in_process(app)
        dispose_app(app)


def test_the_agent_raises_the_priority_and_routes_and_the_ticket_changes(
    demo_with_worker: str, page: Page
) -> None:
    problems = watch_for_errors(page)
    sidebar = open_card(demo_with_worker, page, GRACE)
    handling = sidebar.locator(".rg-ticket-actions")
    expect(handling).to_contain_text("Raise priority to high")
    ticket = page.locator("#ticket-view")
    expect(ticket.locator('[data-field="priority"]')).to_have_text("Normal priority")
    handling.scroll_into_view_if_needed()
    shoot(page, "ticket-handling-offered")

    # By keyboard: focus the button and press Enter.
    handling.get_by_role("button", name="Apply: Raise priority to high").focus()
    page.keyboard.press("Enter")
    expect(sidebar.locator('[data-result="done"]')).to_have_text(
        "Raise priority to high: recorded, and on its way to the ticket.", timeout=10_000
    )
    expect(sidebar.locator('.rg-done [data-ticket-action="raise_priority"]')).to_contain_text(
        "Raise priority to high:"
    )
    expect(sidebar.get_by_role("button", name="Apply: Raise priority to high")).to_have_count(0)
    shoot(page, "ticket-handling-applied")

    # The outbox delivers it: the desk's ticket shows the new priority and the note.
    expect(ticket.locator('[data-field="priority"]')).to_have_text("High priority", timeout=15_000)
    row = page.locator(f'[data-ticket-id="{open_ticket_of(GRACE)}"] .priority')
    expect(row).to_have_text("High priority")  # the inbox's row too
    expect(page.locator("#ticket-notes")).to_contain_text(
        "Regulars · Ticket handling: Raise priority to high."
    )
    expect(page.locator("#ticket-notes")).to_contain_text("Priority: normal → high.")
    page.locator("#ticket-notes").scroll_into_view_if_needed()
    for folder in (SHOTS, ARTIFACTS):
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / "ticket-handling-desk.png"), full_page=True)

    # Opened again, the card says it is done on the ticket and offers it no more.
    page.locator(f'[data-ticket-id="{open_ticket_of(DENTAL)}"]').click()
    sidebar = page.frame_locator('iframe[title="Regulars app"]')
    route = sidebar.get_by_role("button", name="Apply: Route to Experienced agents")
    expect(route).to_be_visible(timeout=15_000)
    expect(ticket.locator('[data-field="group"]')).to_have_text("Unassigned")
    route.focus()
    page.keyboard.press("Enter")
    expect(sidebar.locator('[data-result="done"]')).to_contain_text(
        "Route to Experienced agents: recorded", timeout=10_000
    )
    expect(ticket.locator('[data-field="group"]')).to_have_text(
        "Experienced agents", timeout=15_000
    )
    expect(ticket.locator('[data-field="tags"]')).to_contain_text("regulars_handled")

    page.locator(f'[data-ticket-id="{open_ticket_of(GRACE)}"]').click()
    sidebar = page.frame_locator('iframe[title="Regulars app"]')
    expect(sidebar.locator('.rg-done [data-ticket-action="raise_priority"]')).to_contain_text(
        "Raise priority to high: done on the ticket", timeout=15_000
    )
    expect(sidebar.locator(".rg-ticket-actions")).to_have_count(0)
    shoot(page, "ticket-handling-done")
    assert not problems, problems
