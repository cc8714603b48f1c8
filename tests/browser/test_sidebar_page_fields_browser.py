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


def test_the_banner_request_carries_the_pages_ticket_fields(live_server: str, page: Page) -> None:
    customer, ticket_id = customer_and_ticket("high")
    banners: list[Request] = []
    page.on("request", lambda r: banners.append(r) if "/sidebar/banner" in r.url else None)

    page.goto(f"{live_server}/demo")
    page.locator(f'[data-ticket-id="{ticket_id}"]').click()
    banner = page.frame_locator('iframe[title="Regulars app"]').locator(".rg-banner")
    expect(banner).to_be_visible(timeout=15_000)

    query = parse_qs(urlparse(banners[-1].url).query)
    assert query["ticket_id"] == [ticket_id]
    assert query["requester_id"] == [customer.helpdesk_user_id]
    # What the helpdesk's page has of the ticket: the service shows it without an API call.
    assert query["subject"][0]
    assert "status" in query
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sidebar-page-fields.png"))
