"""The suggestions card in headless Chromium: after the banner, applied by keyboard, recorded;
one click to apply, at most two to dismiss, and Undo within the window delivers nothing."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import FrameLocator, Locator, Page, ViewportSize, expect

from plugin import db
from plugin.delivery.notes import marker_for
from plugin.demo.sample_data import build_sample_data
from plugin.models import Action, Delivery, DemoNote
from tests.browser.conftest import serving
from tests.conftest import build_app, dispose_app
from tests.seeded_demo import SeededDemos

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


# Records, on the app frame's element, the border radius a selector's first element has the
# moment it is put in the page (a mutation observer runs before the page is painted again).
SEEN_AT_INSERTION = """(el, selector) => {
    const doc = el.contentDocument;
    el.seen = [];
    new MutationObserver(() => {
        const part = doc.querySelector(selector);
        if (part && !el.seen.length) {
            el.seen.push(el.contentWindow.getComputedStyle(part).borderTopLeftRadius);
        }
    }).observe(doc.body, { childList: true, subtree: true, attributes: true });
}"""


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
    requested: list[str] = []
    page.on("request", lambda r: requested.append(urlsplit(r.url).path))
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
    # With nothing clicked, the view loads none of what shows only after a click (issue 19);
    # a sent form brings the forms' script and its result the styles it declares, before it
    # shows: styled the moment it is in the page.
    expect(sidebar.locator(".rg-orders")).to_be_visible()
    assert not [path for path in requested if re.search(r"/sidebar-(more|actions)\.", path)]
    frame.evaluate(SEEN_AT_INSERTION, "[data-result]")

    # By keyboard: Enter on Apply, with the rule's reason preselected.
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
    assert frame.evaluate("el => el.seen") == ["6px"]  # .rg-result's radius, in sidebar-more.css
    assert len([path for path in requested if "/sidebar-actions." in path]) == 1
    shoot(page, "suggestions-applied")
    assert not problems, problems


@pytest.mark.parametrize(
    ("name", "shows"),
    [
        ("Bean There Café", "Budget running out"),
        ("Daniel Whitfield", "Ask a supervisor: $"),
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


# --- One screen: the top offer's button in the first 600 px of every story ------------------

FIRST_SCREEN = 600


COVERED_WORDS = """offer => {
    const go = offer.querySelector(".rg-offer__go").getBoundingClientRect();
    const words = offer.querySelectorAll(".rg-offer__more > summary span");
    return [...words].flatMap(el => [...el.getClientRects()])
        .filter(r => r.left < go.right && go.left < r.right)
        .filter(r => r.top < go.bottom && go.top < r.bottom)
        .map(r => [r.left, r.top, r.width, r.height]);
}"""


@pytest.mark.parametrize("view", ["demo", "demo/freshdesk"])
def test_every_story_shows_its_top_offer_on_the_first_screen(
    live_server: str, page: Page, view: str
) -> None:
    """At the helpdesks' sidebar size, who the customer is and what to offer need no scroll."""
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{live_server}/{view}")
    listed = page.locator("[data-ticket-id]:visible")
    tickets = [listed.nth(i).get_attribute("data-ticket-id") for i in range(listed.count())]
    frame = page.locator('iframe[title="Regulars app"]')
    sidebar = page.frame_locator('iframe[title="Regulars app"]')
    placed: dict[str, float] = {}
    for ticket in tickets:
        page.locator(f'[data-ticket-id="{ticket}"]:visible').first.click()
        expect(sidebar.locator(f'#rg-suggestions [data-ticket="{ticket}"]')).to_have_count(
            1, timeout=15_000
        )
        assert frame.evaluate("el => el.getBoundingClientRect().width") <= 320
        go = sidebar.locator('.rg-offer[data-place="top"] .rg-offer__go')
        if go.count():
            # From the top of the app's own page, whatever the desk around it scrolled.
            bottom = go.evaluate("el => el.getBoundingClientRect().bottom + window.scrollY")
            placed[str(ticket)] = bottom
            for part in (".rg-name", ".rg-badge", ".rg-since", '.rg-offer[data-place="top"] h3'):
                top = sidebar.locator(part).first
                assert top.evaluate("el => el.getBoundingClientRect().bottom") <= FIRST_SCREEN
        # A further offer's button (however wide: "Ask a supervisor: $27.67") covers none of
        # its line's words, so the line still opens where the agent clicks it.
        for line in sidebar.locator('.rg-offer[data-place="more"]').all():
            assert line.evaluate(COVERED_WORDS) == [], f"ticket {ticket}"
    assert len(placed) >= 8, f"too few stories with an offer: {placed}"
    below = {ticket: at for ticket, at in placed.items() if at > FIRST_SCREEN}
    assert not below, f"the top offer's button is below the first screen: {below}"


# --- One click to apply, two to dismiss, Undo within the window ---------------------------

UNDO_SECONDS = 6


@pytest.fixture
def demo_with_undo(tmp_path: Path, seeded_demos: SeededDemos) -> Iterator[tuple[Flask, str]]:
    """The seeded demo with its in-process outbox on and a short undo window."""
    app = build_app(
        f"sqlite:///{tmp_path / 'live.sqlite3'}",
        tmp_path / "instance",
        outbox_in_process=True,
        undo_seconds=UNDO_SECONDS,
    )
    with db.database(app).sessions() as session:
        seeded_demos.load(app, session)
    try:
        with serving(app) as url:
            yield app, url
    finally:
        from plugin.delivery.cli import stop_in_process

        stop_in_process(app)
        dispose_app(app)


class Clicks:
    """Every click the agent makes, counted."""

    def __init__(self) -> None:
        self.count = 0

    def on(self, target: Locator) -> None:
        self.count += 1
        target.click()


def test_apply_takes_one_click_and_undo_in_the_window_delivers_nothing(
    demo_with_undo: tuple[Flask, str], page: Page
) -> None:
    app, url = demo_with_undo
    sidebar = open_card(url, page, "Margaret Okafor")
    clicks = Clicks()
    offer = sidebar.locator('.rg-offer[data-exception="expedited_shipping"]')
    clicks.on(offer.get_by_role("button", name="Apply"))
    expect(sidebar.locator('[data-result="done"]')).to_have_text(
        "Applied: $18 Expedited shipping upgrade — recorded in the action log.", timeout=10_000
    )
    assert clicks.count == 1
    shoot(page, "suggestions-undo-window")
    clicks.on(sidebar.get_by_role("button", name="Undo"))
    expect(sidebar.locator('[data-result="done"]')).to_have_text(
        "Undone: nothing was sent to the ticket.", timeout=10_000
    )
    expect(sidebar.locator('.rg-offer[data-exception="expedited_shipping"]')).to_have_count(1)

    # Another offer applied and kept: its note arrives, the undone one's never does.
    clicks = Clicks()
    clicks.on(
        sidebar.locator('.rg-offer[data-exception="waive_shipping_fee"]').get_by_role(
            "button", name="Apply"
        )
    )
    expect(sidebar.locator('[data-result="done"]')).to_contain_text("Applied:", timeout=10_000)
    assert clicks.count == 1
    with db.database(app).sessions() as session:
        undone, kept = session.scalars(
            sa.select(Action).where(Action.agent_id.is_not(None)).order_by(Action.id.desc())
        ).all()[:2][::-1]
    assert undone.exception_key == "expedited_shipping" and undone.undone_at is not None

    def delivered() -> bool:
        with db.database(app).sessions() as session:
            return session.get(Delivery, kept.id).status == "delivered"  # type: ignore[union-attr]

    assert poll(delivered, seconds=UNDO_SECONDS + 20)
    with db.database(app).sessions() as session:
        notes = session.scalars(sa.select(DemoNote.body)).all()
        assert session.get(Delivery, undone.id).status == "undone"  # type: ignore[union-attr]
    assert any(marker_for(kept) in body for body in notes)
    assert not any(marker_for(undone) in body for body in notes)


def test_dismiss_takes_at_most_two_clicks(live_server: str, page: Page) -> None:
    # Not Tyler Brennan's free sample: the Freshdesk test dismisses that one on the same server.
    sidebar = open_card(live_server, page, "Carmen Vásquez")
    offer = sidebar.locator('.rg-offer[data-exception="free_sample"]')
    clicks = Clicks()
    clicks.on(offer.locator(".rg-offer__more > summary"))
    clicks.on(offer.get_by_role("button", name="Customer declined"))
    expect(sidebar.locator('[data-result="done"]')).to_contain_text(
        "Dismissed: Free sample with the next order (Customer declined)", timeout=10_000
    )
    assert clicks.count <= 2


def test_above_the_threshold_the_button_says_it_asks_a_supervisor(
    live_server: str, page: Page
) -> None:
    sidebar = open_card(live_server, page, "Daniel Whitfield")
    offer = sidebar.locator('.rg-offer[data-exception="goodwill_credit"]')
    asks = offer.get_by_role("button", name=re.compile(r"^Ask a supervisor: \$"))
    expect(asks).to_have_count(1)
    # Typed down to the threshold, the amount is the agent's own to apply; above, it asks.
    amount = offer.get_by_label("Amount (USD)")
    if not amount.is_visible():  # a further offer keeps its amount behind its line
        offer.locator(".rg-offer__more > summary").click()
    amount.fill("25")
    expect(offer.locator(".rg-offer__go")).to_have_text("Apply")
    amount.fill("40")
    expect(offer.locator(".rg-offer__go")).to_have_text("Ask a supervisor: $40")
    amount.fill("27.67")
    Clicks().on(asks)
    expect(sidebar.locator('[data-result="done"]')).to_contain_text(
        "Sent for approval:", timeout=10_000
    )


# --- Given in the shop (issue 18) ---------------------------------------------------------


def test_the_demo_agent_gives_a_discount_code_and_a_gift_card_in_the_shop(
    demo_with_undo: tuple[Flask, str], page: Page
) -> None:
    """Apply gives the gesture for real: the demo binds the waived fee to a discount code and
    the goodwill credit to a gift card, given in the demo shop once the undo window closes."""
    _, url = demo_with_undo
    sidebar = open_card(url, page, "Margaret Okafor")
    sidebar.locator('.rg-offer[data-exception="waive_shipping_fee"]').get_by_role(
        "button", name="Apply"
    ).click()
    expect(sidebar.locator('[data-result="done"]')).to_contain_text(
        "The shop will give a one-time discount code: see In the shop.", timeout=10_000
    )
    given = sidebar.locator('.rg-gesture[data-state="given"]')
    expect(given).to_contain_text(
        re.compile(r"Discount code RG[0-9A-F]+ \(\$9 off\)"), timeout=30_000
    )
    code = given.locator(".rg-gesture__copy").get_attribute("data-rg-copy")
    assert code and code.startswith("RG")

    sidebar = open_card(url, page, "Daniel Whitfield")
    credit = sidebar.locator('.rg-offer[data-exception="goodwill_credit"]')
    if not credit.get_by_label("Amount (USD)").is_visible():
        credit.locator(".rg-offer__more > summary").click()
    credit.get_by_label("Amount (USD)").fill("20")  # within what an agent gives alone
    credit.locator(".rg-offer__go").click()
    expect(sidebar.locator('[data-result="done"]')).to_contain_text(
        "Applied: $20 10% goodwill credit", timeout=10_000
    )
    card = sidebar.locator('.rg-gesture[data-state="given"]')
    expect(card).to_contain_text(
        re.compile(r"Gift card ending \w{4}, balance \$20"), timeout=30_000
    )
    full = card.locator(".rg-gesture__code code").inner_text()  # shown once, to copy
    shoot(page, "gesture-gift-card-given")

    page.goto(f"{url}/demo/shop")
    rows = page.locator("tbody tr")
    expect(rows.filter(has_text="Margaret Okafor")).to_contain_text(code)
    expect(rows.filter(has_text="Daniel Whitfield")).to_contain_text("…" + full[-4:])
    assert full not in page.content()  # the shop page shows a card's last 4 only

    # The same in Freshdesk: the packaged app asks for the list again (postGestures) until
    # the code is given.
    page.goto(f"{url}/demo/freshdesk")
    page.locator(f'[data-ticket-id="{open_ticket_of("Omar Haddad")}"]').click()
    app = page.frame_locator('iframe[title="Regulars app"]')
    app.locator('.rg-offer[data-exception="waive_shipping_fee"]').get_by_role(
        "button", name="Apply"
    ).click()
    expect(app.locator('.rg-gesture[data-state="given"]')).to_contain_text(
        re.compile(r"Discount code RG[0-9A-F]+ \(\$9 off\)"), timeout=30_000
    )
    page.goto(f"{url}/demo/shop")
    expect(page.locator("tbody tr").filter(has_text="Omar Haddad")).to_contain_text("RG")
