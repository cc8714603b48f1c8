"""The suggestions card in headless Chromium: after the banner, applied by keyboard, recorded."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import FrameLocator, Page, ViewportSize, expect

from plugin.demo.sample_data import build_sample_data

pytestmark = pytest.mark.browser
ARTIFACTS = Path(os.environ.get("REGULARS_ARTIFACTS", "test-artifacts"))
SHOTS = Path(os.environ.get("REGULARS_SHOTS", "/tmp/shots"))
# At this width the demo's apps column is the helpdesks' 320 px.
VIEWPORT: ViewportSize = {"width": 1100, "height": 1400}


def open_ticket_of(name: str) -> str:
    data = build_sample_data(datetime.now(UTC).date())
    user = next(c.helpdesk_user_id for c in data.customers if c.name == name)
    return next(
        t.external_id
        for t in data.tickets
        if t.requester_user_id == user and t.status in {"new", "open", "pending"}
    )


def open_card(live_server: str, page: Page, name: str) -> FrameLocator:
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{live_server}/demo")
    page.locator(f'[data-ticket-id="{open_ticket_of(name)}"]').click()
    sidebar = page.frame_locator('iframe[title="Regulars app"]')
    expect(sidebar.locator(".rg-banner")).to_be_visible(timeout=15_000)
    expect(sidebar.locator(".rg-suggestions")).to_be_visible(timeout=15_000)
    return sidebar


def shoot(page: Page, name: str) -> None:
    """The app's frame as agents see it, at sidebar width, and the whole card."""
    frame = page.locator('iframe[title="Regulars app"]')
    card = page.frame_locator('iframe[title="Regulars app"]').locator(".rg-suggestions")
    for folder in (SHOTS, ARTIFACTS):
        folder.mkdir(parents=True, exist_ok=True)
        frame.screenshot(path=str(folder / f"{name}.png"))
        card.screenshot(path=str(folder / f"{name}-card.png"))


def poll(check: object, *, seconds: float = 10.0) -> object:
    """Poll a condition from Python (the strict CSP forbids wait_for_function's eval)."""
    assert callable(check)
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_an_agent_applies_a_suggestion_and_sees_it_recorded(live_server: str, page: Page) -> None:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    sidebar = open_card(live_server, page, "Margaret Okafor")
    offer = sidebar.locator('.rg-offer[data-exception="expedited_shipping"]')
    expect(offer).to_contain_text("Goodwill: $38 granted in the last 90 days")
    expect(offer.locator('[data-why="budget"]')).to_contain_text("Budget: High value")
    frame = page.locator('iframe[title="Regulars app"]')
    width = frame.evaluate("el => el.getBoundingClientRect().width")
    overflow = frame.evaluate(
        "el => { const d = el.contentDocument.documentElement;"
        " return d.scrollWidth - d.clientWidth; }"
    )
    assert width <= 320
    assert overflow == 0, "the card overflows sideways at sidebar width"
    # The frame grew to fit the card below the banner.
    assert poll(lambda: frame.evaluate("el => el.getBoundingClientRect().height") > 600)
    shoot(page, "suggestions-margaret")

    # By keyboard: choose the reason, then press Enter on Apply.
    offer.get_by_label("Reason").select_option("late_delivery")
    offer.get_by_role("button", name="Apply").focus()
    page.keyboard.press("Enter")

    result = sidebar.locator('[data-result="done"]')
    expect(result).to_have_text(
        "Applied: $18 Expedited shipping upgrade — recorded in the action log.",
        timeout=10_000,
    )
    expect(sidebar.locator('.rg-done [data-exception="expedited_shipping"]')).to_contain_text(
        "Applied: $18 Expedited shipping upgrade"
    )
    expect(sidebar.locator('.rg-offer[data-exception="expedited_shipping"]')).to_have_count(0)
    # The result takes the focus, so a screen reader says it and the keyboard goes on from it.
    focused = poll(
        lambda: frame.evaluate("el => el.contentDocument.activeElement.getAttribute('data-result')")
    )
    assert focused == "done"
    shoot(page, "suggestions-applied")
    assert not problems, problems


@pytest.mark.parametrize(
    ("name", "shows"),
    [
        ("Bean There Café", "Budget running out"),
        ("Daniel Whitfield", "Needs approval"),
        ("Walter Huang", "10% goodwill credit"),
    ],
)
def test_the_card_reads_well_at_sidebar_width(
    live_server: str, page: Page, name: str, shows: str
) -> None:
    sidebar = open_card(live_server, page, name)
    expect(sidebar.locator(".rg-suggestions")).to_contain_text(shows)
    overflow = page.locator('iframe[title="Regulars app"]').evaluate(
        "el => { const d = el.contentDocument.documentElement;"
        " return d.scrollWidth - d.clientWidth; }"
    )
    assert overflow == 0
    shoot(page, "suggestions-" + name.split()[0].lower())
