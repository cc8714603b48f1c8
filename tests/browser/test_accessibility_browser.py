"""axe-core over what agents, supervisors and admins see: no WCAG 2.1 A/AA violations.

axe-core comes from npm (package-lock.json); it is put into each page by Playwright, which
needs the browser context to bypass the page's CSP for that (the service's own scripts still
come only from itself). Each check runs on a page as its user leaves it: the demo desk, the
sidebar for each kind of customer (banner and suggestions card), the packaged Freshdesk page,
and the console with its sections loaded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Frame, Page, expect
from playwright.sync_api import Error as PlaywrightError

from tests.browser.conftest import REPO
from tests.browser.test_console_browser import open_console, wait_until_checked
from tests.browser.test_demo_browser import customer_and_ticket

pytestmark = pytest.mark.browser
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
APP_FRAME = 'iframe[title="Regulars app"]'
# WCAG 2.0 and 2.1, levels A and AA.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
RUN_AXE = """async (tags) => {
  const result = await window.axe.run(document, {runOnly: {type: 'tag', values: tags}});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' :: ' + n.failureSummary),
  }));
}"""


@pytest.fixture
def audited(browser: Browser) -> Iterator[Page]:
    """A page whose context lets Playwright add axe-core's script despite the strict CSP."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run scripts/setup.sh (npm ci)")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


def violations(frame: Frame | Page) -> list[dict[str, object]]:
    frame.add_script_tag(path=str(AXE))
    found: list[dict[str, object]] = frame.evaluate(RUN_AXE, TAGS)
    return found


def readable(found: list[dict[str, object]]) -> str:
    return json.dumps(found, indent=2)


def app_frame(page: Page, path_part: str) -> Frame:
    """The Regulars frame, once its page (its URL has `path_part`) has loaded."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for frame in page.frames:
            if path_part in frame.url:
                return frame
        time.sleep(0.1)
    raise AssertionError(f"no frame at {path_part}")


def settle(page: Page) -> None:
    """Wait until no region of any frame is busy loading, then for the last swap's resize."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(busy(frame) for frame in page.frames):
        time.sleep(0.1)
    time.sleep(0.3)


def busy(frame: Frame) -> bool:
    try:
        return bool(frame.evaluate("() => !!document.querySelector('[aria-busy=\"true\"]')"))
    except PlaywrightError:  # a frame navigating away
        return True


def test_the_demo_desk_itself(live_server: str, audited: Page) -> None:
    audited.goto(f"{live_server}/demo")
    settle(audited)
    found = violations(audited)
    assert not found, readable(found)


def test_the_demo_shop_page(live_server: str, audited: Page) -> None:
    audited.goto(f"{live_server}/demo/shop")
    found = violations(audited)
    assert not found, readable(found)


@pytest.mark.parametrize("story", ["high", "medium", "low", "small_business", "lapsed", "prospect"])
def test_the_sidebar_for_each_kind_of_customer(live_server: str, audited: Page, story: str) -> None:
    _customer, ticket_id = customer_and_ticket(story)
    audited.goto(f"{live_server}/demo")
    audited.locator(f'[data-ticket-id="{ticket_id}"]').click()
    app = audited.frame_locator(APP_FRAME)
    expect(app.locator(".rg-banner, .rg-problem, .rg-prospect").first).to_be_visible(timeout=15_000)
    settle(audited)
    found = violations(app_frame(audited, "/sidebar"))
    assert not found, readable(found)


def test_the_sidebar_with_its_orders_card(live_server: str, audited: Page) -> None:
    """The orders card with the ticket's order marked and tracking links, once it has loaded."""
    from datetime import UTC, datetime

    from plugin.demo.sample_data import build_sample_data

    data = build_sample_data(datetime.now(UTC).date())
    ticket = next(t for t in data.tickets if t.subject.startswith("Espresso beans order"))
    audited.goto(f"{live_server}/demo")
    audited.locator(f'[data-ticket-id="{ticket.external_id}"]').click()
    orders = audited.frame_locator(APP_FRAME).locator(".rg-orders [data-tracking]")
    expect(orders.first).to_be_visible(timeout=15_000)
    settle(audited)
    found = violations(app_frame(audited, "/sidebar"))
    assert not found, readable(found)


def test_the_packaged_freshdesk_page(live_server: str, audited: Page) -> None:
    _customer, ticket_id = customer_and_ticket("high")
    audited.goto(f"{live_server}/demo/freshdesk")
    audited.locator(f'[data-ticket-id="{ticket_id}"]').click()
    expect(audited.frame_locator(APP_FRAME).locator(".rg-banner")).to_be_visible(timeout=15_000)
    settle(audited)
    found = violations(app_frame(audited, "/freshdesk/app/"))
    assert not found, readable(found)


def test_the_console_with_its_sections_loaded(live_server: str, audited: Page) -> None:
    console = open_console(audited, live_server)
    wait_until_checked(console)
    settle(audited)
    found = violations(console)
    assert not found, readable(found)


def test_axe_finds_what_it_should(audited: Page, tmp_path: Path) -> None:
    """The check can fail: a page with an unlabelled input and an image without text."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!doctype html><html lang="en"><head><title>Bad</title></head><body><main>'
        '<input type="text"><img src="x.png"></main></body></html>'
    )
    audited.goto(page.as_uri())
    found = {str(v["id"]) for v in violations(audited)}
    assert {"label", "image-alt"} <= found
