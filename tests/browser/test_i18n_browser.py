"""The sidebar in the agent's language (issue 21): German with euros, and Spanish.

The demo desk says the agent's locale the way Zendesk does (ZAF `currentUser.locale`, here the
browser's language), the sidebar's page passes it on with every card request, and the service
answers in it. Screenshots go to test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, expect

from plugin import db
from plugin.models import Installation
from tests.browser.conftest import seeded_demo, serving
from tests.browser.test_demo_browser import customer_and_ticket
from tests.seeded_demo import SeededDemos

pytestmark = pytest.mark.browser
ARTIFACTS = Path(os.environ.get("REGULARS_ARTIFACTS", "test-artifacts"))


@pytest.fixture(scope="module")
def euro_server(
    tmp_path_factory: pytest.TempPathFactory, seeded_demos: SeededDemos
) -> Iterator[str]:
    """The seeded demo, its installations selling in euros (this test's data, not the demo's)."""
    with seeded_demo(tmp_path_factory.mktemp("euros"), seeded_demos) as app:
        with db.database(app).sessions() as session:
            session.execute(sa.update(Installation).values(currency="EUR"))
            session.commit()
        with serving(app) as url:
            yield url


@pytest.mark.parametrize(
    ("browser_locale", "badge", "stats", "money"),
    [
        ("de-DE", "Hoher Wert", "Käufe, 12 Mon.", r"\d{1,3}(\.\d{3})*\u00a0€"),
        ("es-ES", "Valor alto", "Pedidos, 12 meses", r"\d{1,3}(\.\d{3})*\u00a0€"),
    ],
)
def test_the_sidebar_speaks_the_agents_language(
    euro_server: str, browser: Browser, browser_locale: str, badge: str, stats: str, money: str
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1100}, locale=browser_locale)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    _customer, ticket_id = customer_and_ticket("high")
    try:
        page.goto(f"{euro_server}/demo")
        page.locator(f'[data-ticket-id="{ticket_id}"]').click()
        sidebar = page.frame_locator('iframe[title="Regulars app"]')
        banner = sidebar.locator(".rg-banner")
        expect(banner).to_be_visible(timeout=15_000)
        expect(banner.locator(".rg-badge")).to_contain_text(badge)
        banner.locator("summary").first.click()
        expect(banner.locator(".rg-stats")).to_contain_text(stats)
        # "6.404 €": the figure, then its source for screen readers. The details open once their
        # styles have come, after the click: wait for that, or the figure's rendered text is "".
        figure = banner.locator(".rg-stat .rg-figure").nth(1)
        expect(figure).to_be_visible()
        spend = figure.inner_text().splitlines()[0]
        assert re.fullmatch(money, spend.strip()), spend
        # The cards after the banner are in the same language.
        suggestions = sidebar.locator(".rg-suggestions")
        expect(suggestions).to_be_visible(timeout=15_000)
        expect(sidebar.locator("html")).to_have_attribute("lang", browser_locale.split("-")[0])
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.locator('iframe[title="Regulars app"]').screenshot(
            path=str(ARTIFACTS / f"i18n-sidebar-{browser_locale}.png")
        )
        assert problems == []
    finally:
        context.close()
