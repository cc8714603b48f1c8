"""The Freshdesk setup page (docs/connect.md) against the fake Freshdesk on 127.0.0.1: an
admin's API key registers the account and shows its secret once; refusals store nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bench import fake_freshdesk
from plugin import db
from plugin.clock import utcnow
from plugin.console.connect_views import SETUP_ATTEMPTS
from plugin.helpdesks.freshdesk_installations import installation_for_secret
from plugin.models import Installation
from tests.conftest import build_app, dispose_app

DOMAIN = "acme.freshdesk.com"
AGENT_KEY = "fake-freshdesk-agent-key"


@dataclass
class World:
    app: Flask
    client: FlaskClient
    freshdesk: fake_freshdesk.FakeFreshdeskState

    def setup(
        self, domain: str = DOMAIN, api_key: str = fake_freshdesk.DEFAULT_API_KEY
    ) -> TestResponse:
        form = self.client.get("/setup/freshdesk")
        assert form.status_code == 200
        match = re.search(r'name="csrf_token" value="([^"]+)"', form.get_data(as_text=True))
        assert match
        return self.client.post(
            "/setup/freshdesk",
            data={"csrf_token": match.group(1), "domain": domain, "api_key": api_key},
        )

    def installations(self) -> list[Installation]:
        with db.database(self.app).sessions() as session:
            return list(session.scalars(sa.select(Installation)))


def make_world(tmp_path: Path, **settings: object) -> Iterator[World]:
    data = fake_freshdesk.from_sample_data(utcnow().date())
    agent_id = next(
        i for i, a in data.agents.items() if a["role_ids"] != [fake_freshdesk.ADMIN_ROLE_ID]
    )
    data.api_keys[AGENT_KEY] = agent_id
    with fake_freshdesk.FakeFreshdeskServer(data) as server:
        values: dict[str, object] = {"freshdesk_api_base_url": server.url} | settings
        app = build_app(f"sqlite:///{tmp_path / 'setup.sqlite3'}", tmp_path / "i", **values)
        try:
            yield World(app, app.test_client(), server.app_state)
        finally:
            dispose_app(app)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


def test_an_admins_key_sets_up_the_account_and_shows_its_secret_once(world: World) -> None:
    response = world.setup()
    html = response.get_data(as_text=True)

    assert response.status_code == 200, html
    assert response.headers["Cache-Control"] == "no-store"
    assert fake_freshdesk.DEFAULT_API_KEY not in html
    assert "Everything works." in html
    match = re.search(r'id="installation-secret">([^<]+)<', html)
    assert match
    with db.database(world.app).sessions() as session:
        found = installation_for_secret(session, match.group(1), now=utcnow())
        assert found is not None and found.account == "acme"
    # Set up once: the page does not replace the connection (nor show a secret again).
    again = world.setup()
    assert again.status_code == 403 and "set up here already" in again.get_data(as_text=True)
    assert "installation-secret" not in again.get_data(as_text=True)


def test_a_non_admins_key_is_refused(world: World) -> None:
    response = world.setup(api_key=AGENT_KEY)

    assert response.status_code == 403
    assert "not an admin" in response.get_data(as_text=True)
    assert world.installations() == []


def test_a_key_freshdesk_does_not_accept_is_refused(world: World) -> None:
    response = world.setup(api_key="wrong-key")

    assert response.status_code == 403
    assert world.installations() == []


def test_an_account_off_the_allowed_list_is_refused(tmp_path: Path) -> None:
    for world in make_world(tmp_path, allowed_accounts=("other",)):
        response = world.setup()
        assert response.status_code == 403
        assert "not allowed to connect" in response.get_data(as_text=True)
        assert world.installations() == []
        assert world.freshdesk.total_calls() == 0


def test_a_bad_address_is_refused(world: World) -> None:
    response = world.setup(domain="not a domain")

    assert response.status_code == 400
    assert world.installations() == []


def test_the_form_needs_its_csrf_token(world: World) -> None:
    response = world.client.post(
        "/setup/freshdesk", data={"domain": DOMAIN, "api_key": fake_freshdesk.DEFAULT_API_KEY}
    )

    assert response.status_code == 400
    assert world.installations() == []


def test_attempts_are_limited_per_address(world: World) -> None:
    for _ in range(SETUP_ATTEMPTS):
        assert world.setup(api_key="wrong-key").status_code == 403
    response = world.setup()

    assert response.status_code == 429
    assert world.installations() == []
