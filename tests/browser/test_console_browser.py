"""The admin console in headless Chromium, opened from the demo desk's nav bar as Zendesk does."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import Frame, Page, expect

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/shots")  # copies to look at by hand
CONSOLE_FRAME = 'iframe[title="Regulars admin console"]'


def watch_for_errors(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def console_frame(page: Page) -> Frame:
    frame = page.frame_locator(CONSOLE_FRAME)
    expect(frame.locator("h1")).to_have_text("Regulars console", timeout=15_000)
    handle = page.locator(CONSOLE_FRAME).element_handle()
    assert handle is not None
    content = handle.content_frame()
    assert content is not None
    return content


def wait_until_checked(frame: Frame, timeout: float = 15.0) -> None:
    """Poll the connection section (the strict CSP rules out Playwright's wait_for_function)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if frame.evaluate("document.getElementById('connection').getAttribute('aria-busy')") == (
            "false"
        ):
            return
        time.sleep(0.1)
    raise AssertionError("the connection check did not finish")


def screenshot(page: Page, folder: Path, name: str) -> Path:
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / name)
    return path


def open_console(page: Page, live_server: str) -> Frame:
    page.goto(f"{live_server}/demo")
    page.get_by_role("button", name="Admin console").click()
    return console_frame(page)


def test_the_admin_console_opens_from_the_nav_bar(
    live_server: str, page: Page, tmp_path: Path
) -> None:
    problems = watch_for_errors(page)
    frame = open_console(page, live_server)

    wait_until_checked(frame)
    connection = frame.locator("#connection")
    expect(connection).to_contain_text("there is nothing to connect")
    expect(frame.locator(".rg-console__head")).to_contain_text("Diane Foster (admin)")
    expect(frame.get_by_role("button", name="Check again")).to_be_enabled()
    # The console replaces the ticket workspace and spans the page.
    expect(page.locator("#workspace")).to_be_hidden()
    expect(page.locator("#console-as")).to_contain_text("Opened as Diane Foster (admin)")
    expect(page.get_by_role("button", name="Admin console")).to_have_attribute(
        "aria-current", "page"
    )
    width = page.locator(CONSOLE_FRAME).evaluate("el => el.getBoundingClientRect().width")
    assert width >= 1200
    height = page.locator(CONSOLE_FRAME).evaluate("el => el.getBoundingClientRect().height")
    assert height >= 500
    assert page.title() == "Admin console · Demo helpdesk"
    screenshot(page, tmp_path, "console-desktop.png")

    # "Check again" runs the check once more.
    frame.get_by_role("button", name="Check again").click()
    wait_until_checked(frame)
    expect(connection).to_contain_text("there is nothing to connect")
    assert not problems, problems


def test_back_to_tickets_restores_the_open_ticket_and_its_sidebar(
    live_server: str, page: Page
) -> None:
    problems = watch_for_errors(page)
    page.goto(f"{live_server}/demo")
    page.locator("button.ticket-item").first.click()
    sidebar = page.frame_locator('iframe[title="Regulars app"]')
    expect(sidebar.locator(".rg-banner")).to_be_visible(timeout=15_000)
    subject = page.locator("#ticket-subject").inner_text()

    page.get_by_role("button", name="Admin console").click()
    console_frame(page)
    page.get_by_role("button", name="Back to tickets").click()

    expect(page.locator(CONSOLE_FRAME)).to_have_count(0)
    expect(page.locator("#console-view")).to_be_hidden()
    expect(page.locator("#ticket-subject")).to_have_text(subject)
    expect(sidebar.locator(".rg-banner")).to_be_visible()
    expect(page.get_by_role("button", name="Admin console")).to_be_focused()
    expect(page.get_by_role("button", name="Tickets", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    assert page.title().endswith("· Demo helpdesk") and "Admin console" not in page.title()
    assert not problems, problems


def test_the_console_works_from_the_keyboard(live_server: str, page: Page) -> None:
    problems = watch_for_errors(page)
    page.goto(f"{live_server}/demo")
    button = page.get_by_role("button", name="Admin console")
    button.focus()
    page.keyboard.press("Enter")
    frame = console_frame(page)
    wait_until_checked(frame)
    # Focus moved to the console's heading; the back button is the next stop before it.
    expect(page.locator("#console-view-title")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Back to tickets")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#workspace")).to_be_visible()
    expect(button).to_be_focused()
    assert not problems, problems


def test_the_console_reads_well_at_400_px(live_server: str, page: Page, tmp_path: Path) -> None:
    problems = watch_for_errors(page)
    page.set_viewport_size({"width": 400, "height": 860})
    frame = open_console(page, live_server)
    wait_until_checked(frame)
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(overflow) == 0, "the desk overflows sideways"
    assert frame.evaluate(overflow) == 0, "the console overflows sideways"
    width = page.locator(CONSOLE_FRAME).evaluate("el => el.getBoundingClientRect().width")
    assert width == 400
    screenshot(page, tmp_path, "console-400.png")
    assert not problems, problems


def test_a_failed_launch_says_why_and_leads_back(live_server: str, page: Page) -> None:
    page.route(
        "**/demo/api/console/open",
        lambda route: route.fulfill(status=503, json={"error": "The demo has no admin."}),
    )
    page.goto(f"{live_server}/demo")
    page.get_by_role("button", name="Admin console").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Could not open the admin console. The demo has no admin."
    )
    expect(page.locator(CONSOLE_FRAME)).to_have_count(0)
    expect(page.locator("#console-loading")).to_be_hidden()
    page.get_by_role("button", name="Back to tickets").click()
    expect(page.locator("#workspace")).to_be_visible()
