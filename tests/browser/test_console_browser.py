"""The admin console in headless Chromium, opened from the demo desk's nav bar as Zendesk does."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import Frame, Locator, Page, expect

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


def test_an_admin_can_tick_what_each_role_sees(live_server: str, page: Page) -> None:
    # The masks table sits in a scrolling region inside a form: its boxes must be on screen and
    # take a click (a wrapper without width once hid the whole table). Nothing is saved.
    problems = watch_for_errors(page)
    frame = open_console(page, live_server)
    wait_until_checked(frame)
    frame.get_by_role("link", name="What each role sees").click()
    money = frame.locator('input[name="default_shows"][value="money"]')
    expect(money).to_be_checked()
    money.uncheck()
    expect(money).not_to_be_checked()
    money.check()
    assert frame.locator("form.rg-masks .rg-scroll").evaluate("e => e.clientWidth") > 300
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


def unexpected(problems: list[str]) -> list[str]:
    """Drop Chromium's note of a 400: a form answered with its field errors is expected."""
    return [p for p in problems if "status of 400 (BAD REQUEST)" not in p]


def wait_until_loaded(frame: Frame, region: str, timeout: float = 15.0) -> None:
    """Poll a console section until its last fetch has been put in place (strict CSP)."""
    deadline = time.monotonic() + timeout
    script = f"document.getElementById('{region}').getAttribute('aria-busy')"
    while time.monotonic() < deadline:
        if frame.evaluate(script) == "false":
            return
        time.sleep(0.1)
    raise AssertionError(f"the {region} section did not finish loading")


def test_an_admin_creates_a_persona_and_sees_it_listed(
    live_server: str, page: Page, tmp_path: Path
) -> None:
    problems = watch_for_errors(page)
    page.set_viewport_size({"width": 1280, "height": 2000})  # tall, for whole sections in shots
    frame = open_console(page, live_server)
    wait_until_loaded(frame, "personas")
    personas = frame.locator("#personas")

    personas.get_by_role("button", name="New persona").click()
    wait_until_loaded(frame, "personas")
    expect(personas.get_by_role("heading", name="New persona")).to_be_focused()

    # Saving without a name says so next to the field, and moves focus there.
    personas.get_by_role("button", name="Save persona").click()
    wait_until_loaded(frame, "personas")
    name = personas.get_by_label("Name", exact=True)
    expect(name).to_be_focused()
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(personas.locator("#persona-name-error")).to_have_text("Give the persona a name.")
    expect(personas.locator("#persona-conditions-error")).to_have_text(
        "Add at least one condition."
    )

    name.fill("Busy regulars")
    field = personas.get_by_label("Field for condition 1 of all")
    field.select_option(label="Value tier")
    # Choosing the field offers only its comparisons and picks the first.
    operator = personas.get_by_label("Comparison for condition 1 of all")
    expect(operator).to_have_value("is")
    expect(operator.locator('option[value="gte"]')).to_be_disabled()
    personas.get_by_label("Value for condition 1 of all").fill("high")
    personas.get_by_role("button", name="Add a condition to any of these").click()
    added = personas.get_by_label("Field for condition 1 of any")
    expect(added).to_be_focused()
    personas.get_by_role("button", name="Remove condition 1 of any").click()
    personas.get_by_label("Guidance for agents").fill("Expert user: skip the basics.")
    screenshot_element(personas, tmp_path, "console-persona-form-desktop.png")
    personas.get_by_role("button", name="Save persona").click()
    wait_until_loaded(frame, "personas")

    expect(personas.locator(".rg-status")).to_have_text("Saved Busy regulars.")
    listed = personas.locator('[data-persona="Busy regulars"]')
    expect(listed).to_contain_text("Value tier is High")
    expect(listed.locator('[data-part="matches"]')).to_have_text(
        re.compile(r"^[1-9]\d* customers? match")
    )
    expect(listed).to_contain_text("Expert user: skip the basics.")
    screenshot_element(personas, tmp_path, "console-personas-desktop.png")

    # Deleting asks first; it also leaves the shared demo as the other tests expect it.
    page.once("dialog", lambda dialog: dialog.accept())
    listed.get_by_role("button", name="Delete Busy regulars").click()
    wait_until_loaded(frame, "personas")
    expect(personas.locator(".rg-status")).to_have_text("Deleted Busy regulars.")
    expect(personas.locator('[data-persona="Busy regulars"]')).to_have_count(0)
    assert not unexpected(problems), problems


def test_use_suggestion_fills_the_bars_and_saving_recomputes(live_server: str, page: Page) -> None:
    problems = watch_for_errors(page)
    frame = open_console(page, live_server)
    wait_until_loaded(frame, "tiers")
    tiers = frame.locator("#tiers")
    medium_orders = tiers.get_by_label("Orders a year, at least").first
    suggested = medium_orders.get_attribute("data-suggestion")
    assert suggested and suggested.isdigit()
    bars = tiers.locator("input[data-suggestion]")
    before = [bars.nth(i).input_value() for i in range(bars.count())]

    tiers.get_by_role("button", name="Use suggestion").click()
    expect(medium_orders).to_have_value(suggested)
    expect(tiers.get_by_role("button", name="Save thresholds")).to_be_focused()
    expect(tiers.locator("[data-suggestion-status]")).to_have_text(
        "Suggested values filled in. Save to apply them."
    )
    page.keyboard.press("Enter")
    wait_until_loaded(frame, "tiers")
    expect(tiers.locator(".rg-status")).to_have_text("Saved the tier thresholds.")
    expect(tiers.locator(".rg-note")).to_contain_text("Segments recomputed for")
    expect(medium_orders).to_have_value(suggested)

    # Put the demo's bars back for the tests that read its banners.
    for i, value in enumerate(before):
        bars.nth(i).fill(value)
    tiers.get_by_role("button", name="Save thresholds").click()
    wait_until_loaded(frame, "tiers")
    expect(tiers.locator(".rg-status")).to_have_text("Saved the tier thresholds.")
    assert not unexpected(problems), problems


def test_the_segment_sections_read_well_at_400_px(
    live_server: str, page: Page, tmp_path: Path
) -> None:
    problems = watch_for_errors(page)
    page.set_viewport_size({"width": 400, "height": 2400})  # tall, for whole sections in shots
    frame = open_console(page, live_server)
    for region in ("tiers", "personas", "guidance"):
        wait_until_loaded(frame, region)
    personas = frame.locator("#personas")
    personas.get_by_role("button", name="New persona").click()
    wait_until_loaded(frame, "personas")
    personas.get_by_role("button", name="Save persona").click()
    wait_until_loaded(frame, "personas")
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert frame.evaluate(overflow) == 0, "the console overflows sideways"
    screenshot_element(frame.locator("#tiers"), tmp_path, "console-tiers-400.png")
    screenshot_element(personas, tmp_path, "console-persona-form-400.png")
    screenshot_element(frame.locator("#guidance"), tmp_path, "console-guidance-400.png")
    assert not unexpected(problems), problems


def screenshot_element(locator: Locator, folder: Path, name: str) -> Path:
    """Screenshot one section of the console (the page's full-page shot clips the iframe)."""
    path = folder / name
    locator.locator("xpath=..").screenshot(path=str(path))
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / name)
    return path
