"""Connecting a Zendesk account from the app (docs/connect.md), against the fake Zendesk on
127.0.0.1: the first launch, the Connect page, OAuth and API-token connects, and refusals.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bench import fake_zendesk
from plugin import db
from plugin.clock import utcnow
from plugin.helpdesks.connect import account_allowed, parse_audience
from plugin.helpdesks.credentials import EXTENSION_KEY as VAULT_KEY
from plugin.helpdesks.zendesk import ZendeskCredentials
from plugin.helpdesks.zendesk_installations import register_zendesk
from plugin.models import Installation, OAuthConnectState
from tests import tokens
from tests.conftest import build_app, dispose_app

SUBDOMAIN = "acme"
ORIGIN = f"https://{SUBDOMAIN}.zendesk.com"
AUDIENCE = f"{ORIGIN}/api/v2/apps/installations/{fake_zendesk.DEFAULT_INSTALLATION_ID}.json"
AGENT, ADMIN = "80001", "80004"

AGENT_TOKEN = "fake-agent-api-token"


@dataclass
class World:
    app: Flask
    client: FlaskClient
    zendesk: fake_zendesk.FakeZendeskState
    key: RSAPrivateKey
    agent_email: str
    zendesk_url: str

    def launch(
        self, path: str = "/console", *, user: str = ADMIN, key: RSAPrivateKey | None = None
    ) -> TestResponse:
        token = tokens.rs256(key or self.key, tokens.claims(AUDIENCE) | {"sub": user})
        return self.client.post(
            path, query_string={"origin": ORIGIN, "app_guid": "guid-1"}, data={"token": token}
        )

    def connect_token(self, *, user: str = ADMIN) -> str:
        response = self.launch(user=user)
        html = response.get_data(as_text=True)
        assert response.status_code == 200, html
        match = re.search(r'name="connect_token" value="([^"]+)"', html)
        assert match
        return match.group(1)

    def installations(self) -> list[Installation]:
        with db.database(self.app).sessions() as session:
            rows = list(session.scalars(sa.select(Installation)))
            session.expunge_all()
            return rows

    def states(self) -> int:
        with db.database(self.app).sessions() as session:
            return len(list(session.scalars(sa.select(OAuthConnectState))))


def make_world(tmp_path: Path, **settings: object) -> Iterator[World]:
    key = tokens.new_key()
    data = fake_zendesk.from_sample_data(utcnow().date(), public_key_pem=tokens.public_pem(key))
    agent = data.users[int(AGENT)]
    data.api_tokens[str(agent["email"]).lower()] = AGENT_TOKEN
    with fake_zendesk.FakeZendeskServer(data) as server:
        values: dict[str, object] = {
            "zendesk_app_id": str(fake_zendesk.DEFAULT_APP_ID),
            "zendesk_api_base_url": server.url,
            "zendesk_oauth_client_id": fake_zendesk.DEFAULT_OAUTH_CLIENT_ID,
            "zendesk_oauth_client_secret": fake_zendesk.DEFAULT_OAUTH_CLIENT_SECRET,
        }
        values.update(settings)
        app = build_app(f"sqlite:///{tmp_path / 'connect.sqlite3'}", tmp_path / "i", **values)
        try:
            yield World(
                app, app.test_client(), server.app_state, key, str(agent["email"]), server.url
            )
        finally:
            dispose_app(app)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


def connect_by_token(world: World, connect_token: str, email: str, api_token: str) -> TestResponse:
    return world.client.post(
        "/connect/zendesk/token",
        data={"connect_token": connect_token, "email": email, "api_token": api_token},
    )


def authorize(world: World, connect_token: str) -> str:
    """Start OAuth, let the fake's signed-in user allow it; return the callback's path+query."""
    started = world.client.post("/connect/zendesk/oauth", data={"connect_token": connect_token})
    html = started.get_data(as_text=True)
    assert started.status_code == 200, html
    match = re.search(r'id="continue" href="([^"]+)"', html)
    assert match
    url = match.group(1).replace("&amp;", "&")
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    return f"{back.path}?{back.query}"


def connected(world: World) -> bool:
    return all(row.credentials_encrypted for row in world.installations())


# --- Pure parts ----------------------------------------------------------------------------------


def test_the_allowed_list_names_accounts_or_hosts() -> None:
    assert account_allowed((), "zendesk", "acme")
    assert account_allowed(("acme",), "zendesk", "acme")
    assert account_allowed(("acme.zendesk.com",), "zendesk", "acme")
    assert not account_allowed(("acme.freshdesk.com",), "zendesk", "acme")
    assert not account_allowed(("other",), "zendesk", "acme")


def test_only_zendesk_audiences_start_a_first_launch() -> None:
    assert parse_audience(AUDIENCE) == ("acme", str(fake_zendesk.DEFAULT_INSTALLATION_ID))
    assert parse_audience("https://evil.example/api/v2/apps/installations/1.json") is None
    assert parse_audience(AUDIENCE + "?x") is None


# --- The first launch ----------------------------------------------------------------------------


def test_an_admins_first_launch_shows_the_connect_page_and_keeps_an_unconnected_installation(
    world: World,
) -> None:
    response = world.launch()
    html = response.get_data(as_text=True)

    assert response.status_code == 200, html
    assert "Connect Regulars" in html and "Connect with Zendesk" in html
    assert response.headers["Cache-Control"] == "no-store"
    assert "<script>" not in html
    (row,) = world.installations()
    assert row.account == SUBDOMAIN and row.token_audience == AUDIENCE
    assert row.app_id == str(fake_zendesk.DEFAULT_APP_ID)
    assert row.credentials_encrypted is None
    assert world.zendesk.calls["public_key"] == 1


def test_an_agent_of_an_unconnected_account_is_told_an_admin_must_connect(world: World) -> None:
    response = world.launch("/sidebar", user=AGENT)

    assert "An admin needs to connect Regulars" in response.get_data(as_text=True)
    assert "data-session-token" not in response.get_data(as_text=True)


def test_a_token_signed_by_another_key_stores_nothing(world: World) -> None:
    response = world.launch(key=tokens.new_key())

    assert response.status_code == 401
    assert world.installations() == []


def test_forged_first_launches_fetch_the_accounts_key_once_a_minute(world: World) -> None:
    for _ in range(3):
        assert world.launch(key=tokens.new_key()).status_code == 401

    assert world.zendesk.calls["public_key"] == 1
    assert world.installations() == []


def test_without_the_app_id_an_unknown_launch_is_refused_and_nothing_is_fetched(
    tmp_path: Path,
) -> None:
    for world in make_world(tmp_path, zendesk_app_id=""):
        assert world.launch().status_code == 401
        assert world.installations() == []
        assert world.zendesk.calls["public_key"] == 0


def test_an_account_off_the_allowed_list_is_refused_with_a_page_saying_so(tmp_path: Path) -> None:
    for world in make_world(tmp_path, allowed_accounts=("other",)):
        response = world.launch()
        assert response.status_code == 401
        assert "not allowed to connect" in response.get_data(as_text=True)
        assert world.installations() == []
        assert world.zendesk.calls["public_key"] == 0


def test_a_rotated_key_is_fetched_again_once(world: World) -> None:
    assert world.launch().status_code == 200
    new_key = tokens.new_key()
    world.zendesk.rotate_key(tokens.public_pem(new_key))
    world.zendesk.reset_counts()
    with db.database(world.app).sessions() as session:  # fetched over a minute ago, as today
        when = utcnow() - timedelta(minutes=2)
        session.execute(sa.update(Installation).values(public_key_fetched_at=when))
        session.commit()

    assert world.launch(key=new_key).status_code == 200
    assert world.zendesk.calls["public_key"] == 1


def test_a_replayed_first_launch_token_is_refused(world: World) -> None:
    token = tokens.rs256(world.key, tokens.claims(AUDIENCE) | {"sub": ADMIN, "jti": "once"})
    query = {"origin": ORIGIN, "app_guid": "g"}
    assert (
        world.client.post("/console", query_string=query, data={"token": token}).status_code == 200
    )
    again = world.client.post("/console", query_string=query, data={"token": token})
    assert again.status_code == 401


# --- Connecting by API token ---------------------------------------------------------------------


def test_an_admins_own_api_token_connects_and_the_check_passes(world: World) -> None:
    response = connect_by_token(
        world, world.connect_token(), fake_zendesk.ADMIN_EMAIL, fake_zendesk.DEFAULT_API_TOKEN
    )
    html = response.get_data(as_text=True)

    assert response.status_code == 200, html
    assert "Regulars is connected" in html and "Everything works." in html
    assert fake_zendesk.DEFAULT_API_TOKEN not in html
    (row,) = world.installations()
    assert row.credentials_encrypted
    assert fake_zendesk.DEFAULT_API_TOKEN not in row.credentials_encrypted
    sidebar = world.launch("/sidebar", user=AGENT)
    assert sidebar.status_code == 200 and "data-session-token" in sidebar.get_data(as_text=True)


def test_a_non_admins_api_token_is_refused(world: World) -> None:
    response = connect_by_token(
        world, world.connect_token(user=AGENT), world.agent_email, AGENT_TOKEN
    )

    assert response.status_code == 403
    assert "Only an admin" in response.get_data(as_text=True)
    assert not connected(world)


def test_another_users_api_token_is_refused(world: World) -> None:
    response = connect_by_token(world, world.connect_token(), world.agent_email, AGENT_TOKEN)

    assert response.status_code == 403
    assert "another user" in response.get_data(as_text=True)
    assert not connected(world)


def test_a_token_zendesk_does_not_accept_is_refused(world: World) -> None:
    response = connect_by_token(world, world.connect_token(), fake_zendesk.ADMIN_EMAIL, "wrong")

    assert response.status_code == 403
    assert "did not accept" in response.get_data(as_text=True)
    assert not connected(world)


def test_a_forged_connect_token_is_refused(world: World) -> None:
    world.connect_token()
    response = connect_by_token(
        world, "forged", fake_zendesk.ADMIN_EMAIL, fake_zendesk.DEFAULT_API_TOKEN
    )

    assert response.status_code == 403
    assert not connected(world)


# --- Connecting by OAuth -------------------------------------------------------------------------


def test_oauth_connects_the_launching_admin_and_the_check_passes(world: World) -> None:
    callback = authorize(world, world.connect_token())
    response = world.client.get(callback)
    html = response.get_data(as_text=True)

    assert response.status_code == 200, html
    assert "Regulars is connected" in html and "Everything works." in html
    assert response.headers["Cache-Control"] == "no-store"
    assert connected(world)
    assert world.states() == 0


def test_a_replayed_state_is_refused(world: World) -> None:
    callback = authorize(world, world.connect_token())
    assert world.client.get(callback).status_code == 200
    with db.database(world.app).sessions() as session:
        session.execute(sa.update(Installation).values(credentials_encrypted=None))
        session.commit()

    again = world.client.get(callback)
    assert again.status_code == 400
    assert "already used" in again.get_data(as_text=True)
    assert not connected(world)


def test_a_wrong_state_is_refused_and_stores_nothing(world: World) -> None:
    callback = authorize(world, world.connect_token())
    forged = re.sub(r"state=[^&]+", "state=not-the-state", callback)

    assert world.client.get(forged).status_code == 400
    assert not connected(world)


def test_oauth_by_a_non_admin_is_refused(world: World) -> None:
    world.zendesk.data.signed_in_user = int(AGENT)
    callback = authorize(world, world.connect_token(user=AGENT))

    response = world.client.get(callback)
    assert response.status_code == 403
    assert "Only an admin" in response.get_data(as_text=True)
    assert not connected(world)


def test_oauth_by_another_user_than_the_launching_admin_is_refused(world: World) -> None:
    callback = authorize(world, world.connect_token())
    world.zendesk.data.signed_in_user = int(AGENT)  # too late: the code is the admin's
    world.zendesk.data.oauth_codes = {
        code: grant | {"user_id": int(AGENT)}
        for code, grant in world.zendesk.data.oauth_codes.items()
    }

    response = world.client.get(callback)
    assert response.status_code == 403
    assert "another user" in response.get_data(as_text=True)
    assert not connected(world)


def test_an_account_registered_without_its_app_installation_gets_it_from_its_first_launch(
    tmp_path: Path,
) -> None:
    for world in make_world(tmp_path, zendesk_api_base_url=""):
        fake_url = world.zendesk_url
        with db.database(world.app).sessions() as session:
            register_zendesk(
                session,
                world.app.extensions[VAULT_KEY],
                subdomain=SUBDOMAIN,
                app_id=str(fake_zendesk.DEFAULT_APP_ID),
                credentials=ZendeskCredentials.from_api_token(
                    email=fake_zendesk.ADMIN_EMAIL, api_token=fake_zendesk.DEFAULT_API_TOKEN
                ),
                api_base_url=fake_url,
            )
            session.commit()

        response = world.launch("/sidebar", user=AGENT)

        assert response.status_code == 200, response.get_data(as_text=True)
        (row,) = world.installations()
        assert row.token_audience == AUDIENCE and row.api_base_url == fake_url


def test_an_expired_state_is_refused_and_used_up(world: World) -> None:
    callback = authorize(world, world.connect_token())
    with db.database(world.app).sessions() as session:
        past = utcnow() - timedelta(seconds=1)
        session.execute(sa.update(OAuthConnectState).values(expires_at=past))
        session.commit()

    response = world.client.get(callback)
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert world.states() == 0
    assert not connected(world)
