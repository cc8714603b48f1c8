"""Connecting from the helpdesk in headless Chromium (issue 22, docs/connect.md): a service with
no installations and a fake Zendesk (OAuth and public-key endpoints) or fake Freshdesk on
127.0.0.1. No CLI is called: the admin connects from the pages, then an agent sees a banner.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from flask import Flask
from playwright.sync_api import Page, expect

from bench import fake_freshdesk, fake_zendesk
from plugin import db
from plugin.clock import utcnow
from plugin.demo.sample_data import build_sample_data
from plugin.demo.seed import insert_sample_customers
from plugin.models import Installation
from tests import tokens
from tests.browser.conftest import serving
from tests.conftest import build_app, dispose_app

pytestmark = pytest.mark.browser
ORIGIN = "https://acme.zendesk.com"
AUDIENCE = f"{ORIGIN}/api/v2/apps/installations/{fake_zendesk.DEFAULT_INSTALLATION_ID}.json"
AGENT, ADMIN = "80001", "80004"
HIGH_VALUE_TICKET = "1058"  # Margaret Okafor's


@dataclass
class Service:
    app: Flask
    url: str
    key: RSAPrivateKey


@contextmanager
def zendesk_service(folder: Path) -> Iterator[Service]:
    """A service with no installations, its operator settings pointing at a fake Zendesk."""
    key = tokens.new_key()
    data = fake_zendesk.from_sample_data(utcnow().date(), public_key_pem=tokens.public_pem(key))
    with fake_zendesk.FakeZendeskServer(data) as zendesk:
        app = build_app(
            f"sqlite:///{folder / 'connect.sqlite3'}",
            folder / "instance",
            demo_enabled=False,
            zendesk_app_id=str(fake_zendesk.DEFAULT_APP_ID),
            zendesk_api_base_url=zendesk.url,
            zendesk_oauth_client_id=fake_zendesk.DEFAULT_OAUTH_CLIENT_ID,
            zendesk_oauth_client_secret=fake_zendesk.DEFAULT_OAUTH_CLIENT_SECRET,
        )
        try:
            with db.database(app).sessions() as session:
                assert session.query(Installation).count() == 0
            with serving(app) as url:
                yield Service(app, url, key)
        finally:
            dispose_app(app)


def launch(page: Page, service: Service, path: str, user: str) -> None:
    """Post a signed launch as Zendesk does when it opens the app (here in the top window)."""
    token = tokens.rs256(service.key, tokens.claims(AUDIENCE) | {"sub": user})
    action = f"{service.url}{path}?origin={ORIGIN}&app_guid=guid-1"
    page.set_content(
        f'<form method="post" action="{html.escape(action)}">'
        f'<input type="hidden" name="token" value="{token}"></form>'
    )
    with page.expect_navigation():
        page.locator("form").evaluate("form => form.submit()")


def give_customers(service: Service) -> None:
    """The account's customers, as an import would add them (not the CLI)."""
    with db.database(service.app).sessions() as session:
        installation = session.query(Installation).one()
        now = utcnow()
        insert_sample_customers(session, installation.id, build_sample_data(now.date()), now=now)
        session.commit()


def agent_sees_the_banner(page: Page, service: Service) -> None:
    """The agent's sidebar opens with a session, and its banner shows the requester."""
    launch(page, service, "/sidebar", AGENT)
    token = page.locator("body").get_attribute("data-session-token")
    assert token, page.content()
    page.set_extra_http_headers({"Authorization": f"Bearer {token}"})
    page.goto(f"{service.url}/sidebar/banner?ticket_id={HIGH_VALUE_TICKET}")
    expect(page.locator(".rg-banner")).to_be_visible()
    expect(page.locator(".rg-banner")).to_contain_text("Margaret Okafor")


def test_an_admin_connects_zendesk_by_oauth_then_an_agent_sees_the_banner(
    page: Page, tmp_path: Path
) -> None:
    with zendesk_service(tmp_path) as service:
        launch(page, service, "/sidebar", AGENT)
        expect(page.locator("body")).to_contain_text("An admin needs to connect Regulars")

        launch(page, service, "/console", ADMIN)
        expect(page.get_by_role("heading", name="Connect Regulars")).to_be_visible()
        with page.expect_popup() as opened:
            page.get_by_role("button", name="Connect with Zendesk").click()
        result = opened.value
        expect(result.get_by_role("heading", name="Regulars is connected")).to_be_visible(
            timeout=15_000
        )
        expect(result.locator("#connection")).to_contain_text("Everything works.")
        result.close()

        give_customers(service)
        agent_sees_the_banner(page, service)


def test_an_admin_connects_zendesk_by_api_token_then_an_agent_sees_the_banner(
    page: Page, tmp_path: Path
) -> None:
    with zendesk_service(tmp_path) as service:
        launch(page, service, "/console", ADMIN)
        page.get_by_label("Your email").fill(fake_zendesk.ADMIN_EMAIL)
        page.get_by_label("API token", exact=True).fill(fake_zendesk.DEFAULT_API_TOKEN)
        page.get_by_role("button", name="Connect with an API token").click()
        expect(page.get_by_role("heading", name="Regulars is connected")).to_be_visible()
        expect(page.locator("#connection")).to_contain_text("Everything works.")
        assert fake_zendesk.DEFAULT_API_TOKEN not in page.content()

        give_customers(service)
        agent_sees_the_banner(page, service)


def test_an_admin_sets_up_freshdesk_then_an_agent_sees_the_banner(
    page: Page, tmp_path: Path
) -> None:
    data = fake_freshdesk.from_sample_data(utcnow().date())
    with fake_freshdesk.FakeFreshdeskServer(data) as freshdesk:
        app = build_app(
            f"sqlite:///{tmp_path / 'setup.sqlite3'}",
            tmp_path / "instance",
            demo_enabled=False,
            freshdesk_api_base_url=freshdesk.url,
        )
        try:
            with serving(app) as url:
                service = Service(app, url, tokens.new_key())
                page.goto(f"{url}/setup/freshdesk")
                page.get_by_label("Freshdesk address").fill("acme.freshdesk.com")
                page.get_by_label("Your API key (an admin's)").fill(fake_freshdesk.DEFAULT_API_KEY)
                page.get_by_role("button", name="Set up").click()
                expect(page.locator("#connection")).to_contain_text("Everything works.")
                secret = page.locator("#installation-secret").inner_text()
                assert re.fullmatch(r"rgf_[\w-]+", secret), secret

                give_customers(service)
                # The packaged app's call through Freshworks' proxy, with the pasted secret.
                answer = page.request.post(
                    f"{url}/freshdesk/sidebar",
                    headers={"X-Regulars-Secret": secret, "Accept": "text/html"},
                    data={
                        "ticket_id": HIGH_VALUE_TICKET,
                        "agent_id": AGENT,
                        "domain": "acme.freshdesk.com",
                    },
                )
                assert answer.status == 200, answer.text()
                page.set_content(answer.text())
                expect(page.locator(".rg-banner")).to_contain_text("Margaret Okafor")
        finally:
            dispose_app(app)
