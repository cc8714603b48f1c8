"""XSS: a corpus of payloads in the data Regulars shows, rendered in headless Chromium; none runs.

The demo is seeded, then poisoned where outsiders and supervisors write text: customers' names
(from imports and the helpdesk), ticket subjects and tags (customers write those), persona
names and descriptions, segment guidance, catalog entries (names, descriptions, reason labels)
and rules (names, the group a ticket is routed to). The browser context bypasses the pages' CSP,
so what is tested is the escaping itself, with the CSP as a second wall. Every payload must
also show up as text somewhere: a payload that is dropped proves nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Frame, Page, expect

from plugin import db
from plugin.clock import utcnow
from plugin.customers.condition_rows import ConditionRow
from plugin.customers.persona_settings import PersonaForm, save_persona
from plugin.customers.segment_guidance import save_guidance
from plugin.demo.exceptions_seed import demo_rules_file
from plugin.demo.sample_data import build_sample_data
from plugin.demo.seed import demo_installation
from plugin.goodwill.rulebook import Author
from plugin.goodwill.transfer import import_rules
from plugin.models import Customer, DemoTicket, DemoUser
from tests.browser.conftest import seeded_demo, serving
from tests.browser.test_accessibility_browser import settle
from tests.browser.test_console_browser import open_console, wait_until_checked
from tests.seeded_demo import SeededDemos

# One worker runs the whole module: its last test checks what the others saw.
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("xss")]
APP_FRAME = 'iframe[title="Regulars app"]'

# Each payload, if it ran, would call alert() or set window.__xss.
PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "'><svg onload=alert(3)>",
    "<svg/onload=alert(4)>",
    "<img src=x onerror=window.__xss=5>",
    '<iframe src="javascript:alert(6)"></iframe>',
    "<body onload=alert(7)>",
    '<a href="javascript:alert(8)">click</a>',
    "<details open ontoggle=alert(9)>",
    "<input autofocus onfocus=alert(10)>",
    "<video><source onerror=alert(11)></video>",
    "</textarea><script>alert(12)</script>",
    "</title><script>alert(13)</script>",
    "<scr<script>ipt>alert(14)</script>",
    "<svg><script>alert(15)</script></svg>",
    '<object data="javascript:alert(16)"></object>',
    '<embed src="javascript:alert(17)">',
    "<marquee onstart=alert(18)>x</marquee>",
    "<select autofocus onfocus=alert(19)></select>",
    "<textarea autofocus onfocus=alert(20)></textarea>",
    "<form><button formaction=javascript:alert(21)>x</button></form>",
    "<img src=x:alert(alt) onerror=eval(src) alt=22>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(23)">',
    '<base href="javascript:alert(24)//">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(25)>",
    "'-alert(26)-'",
    '";alert(27);//',
    "{{constructor.constructor('alert(28)')()}}",
    "${alert(29)}",
    "<div style=\"background:url('javascript:alert(30)')\">x</div>",
    "<isindex type=image src=1 onerror=alert(31)>",
    "<keygen autofocus onfocus=alert(32)>",
    '<style>@import "javascript:alert(33)";</style>',
    '<noscript><p title="</noscript><img src=x onerror=alert(34)>">',
    "<template><img src=x onerror=alert(35)></template>",
    '<link rel=import href="data:text/html,<script>alert(36)</script>">',
]


@dataclass
class Poisoned:
    base_url: str
    tickets: list[str]
    placed: dict[str, list[str]] = field(default_factory=dict)  # payload -> where


def poison(folder: Path, seeded_demos: SeededDemos) -> Iterator[Poisoned]:
    with seeded_demo(folder, seeded_demos) as app, serving(app) as url:
        poisoned = Poisoned(url, [])
        payloads = iter(PAYLOADS * 2)

        def place(where: str) -> str:
            payload = next(payloads)
            poisoned.placed.setdefault(payload, []).append(where)
            return payload

        data = build_sample_data(datetime.now(UTC).date())
        unsolved = [t for t in data.tickets if t.status in {"new", "open", "pending"}]
        with db.database(app).sessions() as session:
            installation = demo_installation(session)
            assert installation is not None
            requesters: set[str] = set()
            for sample in unsolved:
                if sample.requester_user_id in requesters or len(poisoned.tickets) == 8:
                    continue
                requesters.add(sample.requester_user_id)
                ticket = session.scalars(
                    sa.select(DemoTicket).where(DemoTicket.external_id == sample.external_id)
                ).one()
                ticket.subject = place("ticket subject")
                ticket.tags = [*ticket.tags, place("ticket tag")]
                name = place("customer name")
                for user in session.scalars(
                    sa.select(DemoUser).where(DemoUser.external_id == sample.requester_user_id)
                ):
                    user.name = name
                for customer in session.scalars(
                    sa.select(Customer).where(Customer.helpdesk_user_id == sample.requester_user_id)
                ):
                    customer.name = name
                poisoned.tickets.append(sample.external_id)
            session.commit()
            everyone = ConditionRow("tier", "in", "low, medium, high")
            for _ in range(3):
                save_persona(
                    session,
                    installation,
                    PersonaForm(
                        name=place("persona name")[:80],
                        description=place("persona description"),
                        guidance=place("persona guidance"),
                        all=(everyone,),
                    ),
                )
            save_guidance(
                session,
                installation,
                {f"tier.{tier}": place(f"guidance for {tier}") for tier in ("high", "medium")},
            )
            rules = demo_rules_file()
            for entry in rules["exceptions"]:
                entry["name"] = place("exception name")
                entry["description"] = place("exception description")
                entry["apply_reasons"][0]["label"] = place("reason label")
            for rule in rules["rules"]:
                rule["name"] = place("rule name")
                for action in rule.get("actions", []):
                    if action["kind"] == "route_to_group":
                        action["value"] = place("group routed to")
            import_rules(
                session, installation, rules, author=Author(None, "XSS test"), now=utcnow()
            )
        yield poisoned


@pytest.fixture(scope="module")
def poisoned(
    tmp_path_factory: pytest.TempPathFactory, seeded_demos: SeededDemos
) -> Iterator[Poisoned]:
    yield from poison(tmp_path_factory.mktemp("xss"), seeded_demos)


@pytest.fixture
def exposed(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """A page without the CSP's protection, and the dialogs any script opened in it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    dialogs: list[str] = []

    def dismissed(dialog: object) -> None:
        dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.dismiss()  # type: ignore[attr-defined]

    page.on("dialog", dismissed)
    yield page, dialogs
    context.close()


SHOWN_TEXT = """() => {
  const values = Array.from(document.querySelectorAll('input, textarea, select, option'))
    .map((el) => el.value || el.textContent || '');
  const titles = Array.from(document.querySelectorAll('[title]')).map((el) => el.title);
  return [document.title, document.body ? document.body.innerText : '', ...values, ...titles]
    .join('\\n');
}"""
SEEN: set[str] = set()


def shown(frame: Frame | Page) -> str:
    # What sits behind a disclosure (the banner's details, an offer's why) is shown too.
    frame.evaluate("() => document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    text: str = frame.evaluate(SHOWN_TEXT)
    ran = frame.evaluate("() => window.__xss === undefined ? null : String(window.__xss)")
    assert ran is None, f"a payload ran and set window.__xss = {ran}"
    SEEN.update(payload for payload in PAYLOADS if payload in text)
    return text


def frames_of(page: Page) -> list[Frame]:
    """The page's frames once they have loaded, and a payload's onerror/onload had its chance."""
    settle(page)
    time.sleep(0.5)
    return list(page.frames)


def the_sidebar_shows_the_payloads_as_text(poisoned: Poisoned, page: Page) -> None:
    for ticket_id in poisoned.tickets:
        page.goto(f"{poisoned.base_url}/demo")
        page.locator(f'[data-ticket-id="{ticket_id}"]').click()
        app = page.frame_locator(APP_FRAME)
        expect(app.locator(".rg-banner, .rg-problem").first).to_be_visible(timeout=15_000)
        for frame in frames_of(page):
            shown(frame)


def the_freshdesk_page_shows_them_as_text(poisoned: Poisoned, page: Page) -> None:
    for ticket_id in poisoned.tickets[:3]:
        page.goto(f"{poisoned.base_url}/demo/freshdesk")
        page.locator(f'[data-ticket-id="{ticket_id}"]').click()
        expect(page.frame_locator(APP_FRAME).locator(".rg-banner").first).to_be_visible(
            timeout=15_000
        )
        for frame in frames_of(page):
            shown(frame)


def the_console_shows_them_as_text(poisoned: Poisoned, page: Page) -> None:
    console = open_console(page, poisoned.base_url)
    wait_until_checked(console)
    for frame in frames_of(page):
        shown(frame)


def test_every_payload_was_placed_and_shown_somewhere(
    poisoned: Poisoned, exposed: tuple[Page, list[str]]
) -> None:
    """No payload runs in the sidebar, the Freshdesk page or the console, and each is shown as
    text in one of them (all views in this one test: pytest-xdist would split a module's tests
    between processes, and what one saw the others could not count)."""
    page, dialogs = exposed
    SEEN.clear()
    the_sidebar_shows_the_payloads_as_text(poisoned, page)
    the_freshdesk_page_shows_them_as_text(poisoned, page)
    the_console_shows_them_as_text(poisoned, page)
    assert not dialogs, dialogs
    assert len(PAYLOADS) >= 30 and set(poisoned.placed) == set(PAYLOADS)
    unseen = {p: poisoned.placed[p] for p in PAYLOADS if p not in SEEN}
    assert not unseen, f"{len(unseen)} payloads were never shown: {unseen}"
