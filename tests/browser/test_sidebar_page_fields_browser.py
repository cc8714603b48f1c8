"""The sidebar page sends the ticket's fields it has from the helpdesk with its requests."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser.test_demo_browser import customer_and_ticket

pytestmark = pytest.mark.browser
ARTIFACTS = Path(os.environ.get("REGULARS_ARTIFACTS", "test-artifacts"))


def test_the_view_request_carries_the_pages_ticket_fields(live_server: str, page: Page) -> None:
    """One request after the launch brings the banner and the cards (/sidebar/view)."""
    customer, ticket_id = customer_and_ticket("high")
    sidebar_requests: list[Request] = []
    page.on(
        "request",
        lambda r: sidebar_requests.append(r) if "/sidebar/" in urlparse(r.url).path else None,
    )

    page.goto(f"{live_server}/demo")
    page.locator(f'[data-ticket-id="{ticket_id}"]').click()
    sidebar = page.frame_locator('iframe[title="Regulars app"]')
    expect(sidebar.locator(".rg-banner")).to_be_visible(timeout=15_000)
    expect(sidebar.locator("#rg-suggestions .rg-suggestions")).to_be_visible()
    expect(sidebar.locator("#rg-orders .rg-orders")).to_be_visible()
    expect(sidebar.locator("#rg-review .rg-review")).to_be_visible()

    assert [urlparse(r.url).path for r in sidebar_requests] == ["/sidebar/view"]
    query = parse_qs(urlparse(sidebar_requests[-1].url).query)
    assert query["ticket_id"] == [ticket_id]
    assert query["requester_id"] == [customer.helpdesk_user_id]
    # What the helpdesk's page has of the ticket: the service shows it without an API call.
    assert query["subject"][0]
    assert "status" in query
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sidebar-page-fields.png"))
