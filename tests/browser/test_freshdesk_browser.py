"""The packaged Freshdesk app's page in headless Chromium, run by the demo's Freshdesk view.

The demo serves the package's own page with a stand-in for Freshworks' client
(`app.initialized`, `client.data.get`, `client.request.invokeTemplate`) and plays Freshworks'
request proxy, so what runs here is the page Freshdesk would run, under the service's strict CSP.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, Response, expect

from tests.browser.test_demo_browser import customer_and_ticket
from tests.browser.test_suggestions_browser import open_ticket_of

pytestmark = pytest.mark.browser
ARTIFACTS = Path(os.environ.get("REGULARS_ARTIFACTS", "test-artifacts"))
APP_FRAME = 'iframe[title="Regulars app"]'
INVOKE_PATH = "/demo/api/freshworks/invoke"


def watch(page: Page) -> tuple[list[str], list[Response]]:
    """Collect the page's errors and every answer it receives."""
    problems: list[str] = []
    answers: list[Response] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda answer: answers.append(answer))
    return problems, answers


def open_ticket(page: Page, base: str, ticket_id: str) -> None:
    page.goto(base)
    page.locator(f'[data-ticket-id="{ticket_id}"]').click()
    expect(page.frame_locator(APP_FRAME).locator(".rg-banner")).to_be_visible(timeout=15_000)
    # Nothing left in flight (the favicon...) for the server to drop when the page closes.
    page.wait_for_load_state("networkidle")


@pytest.mark.parametrize(
    ("story", "tier_label"),
    [("high", "High value"), ("medium", "Medium value"), ("small_business", "High value")],
)
def test_the_packaged_page_shows_the_requesters_banner(
    live_server: str, page: Page, story: str, tier_label: str
) -> None:
    problems, answers = watch(page)
    customer, ticket_id = customer_and_ticket(story)

    open_ticket(page, f"{live_server}/demo/freshdesk", ticket_id)

    banner = page.frame_locator(APP_FRAME).locator(".rg-banner")
    expect(banner.locator(".rg-name")).to_have_text(customer.name)
    expect(banner.locator(".rg-badge")).to_contain_text(tier_label)
    expect(page.locator("#app-status")).to_have_text("Connected · Freshworks client stand-in")
    # client.instance.resize reached the host: the frame grew to fit the banner.
    height = page.locator(APP_FRAME).evaluate("el => el.getBoundingClientRect().height")
    assert height > 200
    # One request-template call for the view, and the secret never reached the browser.
    assert [a.url for a in answers if a.url.endswith(INVOKE_PATH)] == [live_server + INVOKE_PATH]
    for answer in answers:
        if answer.request.resource_type in {"document", "fetch", "xhr", "script"}:
            assert "rgf_" not in answer.text(), answer.url
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"demo-freshdesk-{story}.png"))
    assert not problems, problems


def test_coming_back_to_the_app_within_a_minute_costs_no_call(live_server: str, page: Page) -> None:
    _problems, answers = watch(page)
    _customer, ticket_id = customer_and_ticket("high")
    open_ticket(page, f"{live_server}/demo/freshdesk", ticket_id)

    page.locator("#apps-toggle").click()  # hide: the app is deactivated
    page.locator("#apps-toggle").click()  # show: app.activated again
    expect(page.frame_locator(APP_FRAME).locator(".rg-banner")).to_be_visible()

    assert len([a for a in answers if a.url.endswith(INVOKE_PATH)]) == 1


def test_the_same_ticket_shows_the_same_banner_in_both_views(live_server: str, page: Page) -> None:
    _customer, ticket_id = customer_and_ticket("seasonal")
    shown = {}
    for view in ("demo", "demo/freshdesk"):
        open_ticket(page, f"{live_server}/{view}", ticket_id)
        banner = page.frame_locator(APP_FRAME).locator(".rg-banner")
        shown[view] = (
            banner.get_attribute("data-tier"),
            banner.locator(".rg-chip").all_inner_texts(),
            banner.locator(".rg-figure").all_inner_texts(),
        )

    assert shown["demo"] == shown["demo/freshdesk"]
    # Other browser tests may change the tier bars the live demo uses; there are always figures.
    assert shown["demo"][2]


def test_the_packaged_page_reads_well_at_320_px(live_server: str, page: Page) -> None:
    _customer, ticket_id = customer_and_ticket("high")
    page.set_viewport_size({"width": 360, "height": 900})

    open_ticket(page, f"{live_server}/demo/freshdesk", ticket_id)

    frame = page.locator(APP_FRAME)
    width = frame.evaluate("el => el.getBoundingClientRect().width")
    scroll = frame.evaluate(
        "el => { const d = el.contentDocument.documentElement;"
        " return d.scrollWidth - d.clientWidth; }"
    )
    assert width <= 340
    assert scroll == 0, "the banner overflows sideways at sidebar width"


def test_an_agent_dismisses_a_suggestion_through_the_packaged_page(
    live_server: str, page: Page
) -> None:
    problems, answers = watch(page)
    open_ticket(page, f"{live_server}/demo/freshdesk", open_ticket_of("Tyler Brennan"))
    app = page.frame_locator(APP_FRAME)
    offer = app.locator('.rg-offer[data-exception="free_sample"]')
    expect(offer).to_contain_text("Free sample with the next order")

    # Two clicks: open Dismiss, choose the reason's chip (the note is optional).
    offer.locator("summary").click()
    offer.get_by_label("Note (optional)").fill("Prefers the promo code")
    offer.get_by_role("button", name="Customer declined").click()

    expect(app.locator('[data-result="done"]')).to_contain_text(
        "Dismissed: Free sample with the next order (Customer declined)", timeout=10_000
    )
    # The same undo window as in Zendesk's view.
    expect(app.get_by_role("button", name="Undo")).to_be_visible()
    expect(app.locator('.rg-done [data-exception="free_sample"]')).to_be_visible()
    # The view's one call (getSidebar), then the action's (postAction): no other.
    invoked = [a for a in answers if a.url.endswith(INVOKE_PATH)]
    assert len(invoked) == 2
    templates = [(a.request.post_data_json or {}).get("template") for a in invoked]
    assert templates == ["getSidebar", "postAction"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(APP_FRAME).screenshot(path=str(ARTIFACTS / "demo-freshdesk-dismissed.png"))
    assert not problems, problems


def test_an_agent_checks_a_review_item_through_the_packaged_page(
    live_server: str, page: Page
) -> None:
    problems, answers = watch(page)
    open_ticket(page, f"{live_server}/demo/freshdesk", open_ticket_of("Margaret Okafor"))
    review = page.frame_locator(APP_FRAME).locator(".rg-review")
    expect(review).to_contain_text("Account review: High-value account review")

    review.locator(".rg-review__box").first.click()

    expect(review.locator('[data-result="done"]')).to_contain_text("Checked:", timeout=10_000)
    expect(review.locator(".rg-review__box").first).to_have_attribute("aria-checked", "true")
    templates = [
        (a.request.post_data_json or {}).get("template")
        for a in answers
        if a.url.endswith(INVOKE_PATH)
    ]
    assert templates == ["getSidebar", "postReviewCheck"]
    assert not problems, problems
