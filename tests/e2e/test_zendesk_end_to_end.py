"""The service against a fake Zendesk on 127.0.0.1: register, check, launch, banner, console.

Nothing here is mocked inside the service: it makes real HTTP calls to a small Zendesk
stand-in (bench/fake_zendesk.py) that answers with Zendesk's documented shapes and counts
the calls it gets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import responses
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from flask import Flask
from flask.testing import FlaskClient

from bench import fake_zendesk
from plugin import db
from plugin.clock import utcnow
from plugin.customers.shopify_connection import connect_shopify
from plugin.demo.sample_data import build_sample_data
from plugin.demo.seed import insert_sample_customers
from plugin.helpdesks import zendesk_installations
from plugin.helpdesks.runtime import EXTENSION_KEY
from plugin.models import Installation
from tests import tokens
from tests.conftest import build_app, dispose_app
from tests.customers import test_shopify as shop

SUBDOMAIN = "acme"
ORIGIN = f"https://{SUBDOMAIN}.zendesk.com"
AUDIENCE = f"{ORIGIN}/api/v2/apps/installations/{fake_zendesk.DEFAULT_INSTALLATION_ID}.json"
AGENT = "80001"
ADMIN = "80004"
HIGH_VALUE_TICKET, HIGH_VALUE_REQUESTER = "1058", "90001"  # Margaret Okafor


@dataclass
class World:
    app: Flask
    client: FlaskClient
    zendesk: fake_zendesk.FakeZendeskState
    key: RSAPrivateKey
    zendesk_url: str

    def installation(self) -> Installation:
        with db.database(self.app).sessions() as session:
            found = zendesk_installations.zendesk_installation(session, SUBDOMAIN)
            assert found is not None
            session.expunge(found)
            return found

    def launch(
        self, path: str = "/sidebar", *, user: str = AGENT, key: RSAPrivateKey | None = None
    ):
        token = tokens.rs256(key or self.key, tokens.claims(AUDIENCE) | {"sub": user})
        return self.client.post(
            path, query_string={"origin": ORIGIN, "app_guid": "guid-1"}, data={"token": token}
        )

    def session_token(self, path: str = "/sidebar", *, user: str = AGENT) -> str:
        response = self.launch(path, user=user)
        assert response.status_code == 200, response.get_data(as_text=True)
        match = re.search(r'data-session-token="([^"]+)"', response.get_data(as_text=True))
        assert match
        return match.group(1)

    def banner(self, session_token: str, ticket_id: str, requester_hint: str | None = None):
        query = {"ticket_id": ticket_id}
        if requester_hint:
            query["requester_id"] = requester_hint
        return self.client.get(
            "/sidebar/banner",
            query_string=query,
            headers={"Authorization": f"Bearer {session_token}"},
        )


def make_world(tmp_path: Path, **settings: object) -> Iterator[World]:
    key = tokens.new_key()
    data = fake_zendesk.from_sample_data(utcnow().date(), public_key_pem=tokens.public_pem(key))
    with fake_zendesk.FakeZendeskServer(data) as server:
        app = build_app(f"sqlite:///{tmp_path / 'e2e.sqlite3'}", tmp_path / "instance", **settings)
        try:
            runner = app.test_cli_runner()
            result = runner.invoke(
                args=[
                    "zendesk",
                    "register",
                    "--subdomain",
                    SUBDOMAIN,
                    "--app-id",
                    str(fake_zendesk.DEFAULT_APP_ID),
                    "--email",
                    fake_zendesk.ADMIN_EMAIL,
                    "--api-base-url",
                    server.url,
                ],
                env={"ZENDESK_API_TOKEN": fake_zendesk.DEFAULT_API_TOKEN},
            )
            assert result.exit_code == 0, result.output
            assert fake_zendesk.DEFAULT_API_TOKEN not in result.output
            with db.database(app).sessions() as session:
                installation = zendesk_installations.zendesk_installation(session, SUBDOMAIN)
                assert installation is not None
                now = utcnow()
                insert_sample_customers(
                    session, installation.id, build_sample_data(now.date()), now=now
                )
                session.commit()
            server.app_state.reset_counts()
            yield World(
                app=app,
                client=app.test_client(),
                zendesk=server.app_state,
                key=key,
                zendesk_url=server.url,
            )
        finally:
            dispose_app(app)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


def test_registration_checked_the_connection_and_stored_what_it_found(world: World) -> None:
    installation = world.installation()
    assert installation.app_installation_id == str(fake_zendesk.DEFAULT_INSTALLATION_ID)
    assert installation.token_audience == AUDIENCE
    assert installation.public_key_pem == tokens.public_pem(world.key)
    assert installation.credentials_encrypted
    assert fake_zendesk.DEFAULT_API_TOKEN not in installation.credentials_encrypted


def test_the_check_command_reports_each_step(world: World) -> None:
    result = world.app.test_cli_runner().invoke(args=["zendesk", "check", "--subdomain", SUBDOMAIN])
    assert result.exit_code == 0, result.output
    assert result.output.count("✓") == 4


def test_cold_view_is_one_call_and_a_warm_view_reads_nothing(
    world: World,
) -> None:
    session_token = world.session_token()
    cold = world.banner(session_token, HIGH_VALUE_TICKET, HIGH_VALUE_REQUESTER)
    html = cold.get_data(as_text=True)
    assert cold.status_code == 200, html
    assert "Margaret Okafor" in html and "High value" in html
    assert "Tickets from Zendesk, live" in html
    # With the requester hint, the requester's tickets (the open one among them, with the
    # requester included) answer the whole view.
    assert world.zendesk.calls == {"requested": 1}

    world.zendesk.reset_counts()
    warm = world.banner(session_token, HIGH_VALUE_TICKET, HIGH_VALUE_REQUESTER)
    assert warm.status_code == 200
    assert world.zendesk.total_calls() == 0


def test_the_ticket_from_zendesk_decides_the_requester(world: World) -> None:
    session_token = world.session_token()
    # A page that claims another requester gets the ticket's real requester, not its claim.
    response = world.banner(session_token, HIGH_VALUE_TICKET, requester_hint="90033")
    html = response.get_data(as_text=True)
    assert "Margaret Okafor" in html and "Ravi Desai" not in html


def test_mapped_zendesk_fields_show_on_the_banner(world: World) -> None:
    result = world.app.test_cli_runner().invoke(
        args=[
            "zendesk",
            "map",
            "--subdomain",
            SUBDOMAIN,
            "--user-field",
            "lifetime_value",
            "--fact",
            "lifetime_value",
        ]
    )
    assert result.exit_code == 0, result.output
    html = world.banner(world.session_token(), HIGH_VALUE_TICKET).get_data(as_text=True)
    assert re.search(r"Lifetime value</dt>\s*<dd>.*12,345", html)


def test_zendesk_down_serves_the_cached_view_marked_stale(tmp_path: Path) -> None:
    for world in make_world(tmp_path, ticket_cache_seconds=0, history_cache_seconds=0):
        session_token = world.session_token()
        assert world.banner(session_token, HIGH_VALUE_TICKET).status_code == 200
        world.zendesk.mode = "down"
        response = world.banner(session_token, HIGH_VALUE_TICKET)
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert "Margaret Okafor" in html and 'data-stale="helpdesk"' in html


def test_zendesk_rate_limiting_serves_stale_and_pauses_calls(tmp_path: Path) -> None:
    for world in make_world(tmp_path, ticket_cache_seconds=0, history_cache_seconds=0):
        session_token = world.session_token()
        world.banner(session_token, HIGH_VALUE_TICKET)
        world.zendesk.mode = "rate_limited"
        assert 'data-stale="helpdesk"' in world.banner(session_token, HIGH_VALUE_TICKET).get_data(
            as_text=True
        )
        world.zendesk.reset_counts()
        # Retry-After is honoured: no call goes out while the account is paused.
        assert 'data-stale="helpdesk"' in world.banner(session_token, HIGH_VALUE_TICKET).get_data(
            as_text=True
        )
        assert world.zendesk.total_calls() == 0


def test_zendesk_hanging_with_nothing_cached_answers_503_within_the_budget(
    tmp_path: Path,
) -> None:
    for world in make_world(tmp_path, upstream_budget_ms=300, upstream_timeout_seconds=2):
        world.zendesk.hang_seconds = 1.0
        world.zendesk.mode = "hang"
        response = world.banner(world.session_token(), HIGH_VALUE_TICKET)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        assert "slow to answer" in response.get_data(as_text=True)


def test_unknown_ticket_is_a_404(world: World) -> None:
    response = world.banner(world.session_token(), "999999")
    assert response.status_code == 404


def test_a_rotated_key_is_fetched_again_but_at_most_once_a_minute(world: World) -> None:
    new_key = tokens.new_key()
    world.zendesk.rotate_key(tokens.public_pem(new_key))
    # The key was fetched moments ago, at registration: a token with another key is refused.
    assert world.launch(key=new_key).status_code == 401
    assert world.zendesk.calls["public_key"] == 0
    with db.database(world.app).sessions() as session:
        installation = zendesk_installations.zendesk_installation(session, SUBDOMAIN)
        assert installation is not None
        installation.public_key_fetched_at = utcnow() - timedelta(minutes=2)
        session.commit()
    assert world.launch(key=new_key).status_code == 200
    assert world.zendesk.calls["public_key"] == 1
    assert world.launch(key=world.key).status_code == 401  # the old key no longer works


def _behind_the_cache(world: World, **values: object) -> None:
    """Change the installation's row as another process would: no write this process sees,
    so its read cache keeps the copy it has."""
    with db.database(world.app).engine.begin() as connection:
        table = sa.table("installations", *(sa.column(name) for name in values))
        connection.execute(sa.update(table).values(**values))


def test_a_sidebar_launch_takes_its_installation_from_the_read_cache(world: World) -> None:
    assert world.launch().status_code == 200
    read: list[str] = []

    def count(_c: object, _cursor: object, statement: str, *_: object) -> None:
        if "FROM installations" in statement:
            read.append(statement)

    engine = db.database(world.app).engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        assert world.launch().status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert read == []
    # The console reads the row itself.
    assert world.launch("/console", user=AGENT).status_code == 403


def test_what_a_cached_installation_cannot_decide_the_row_decides(world: World) -> None:
    assert world.launch().status_code == 200  # the installation is in the read cache
    # Another process fetched a rotated key: the cached copy's key refuses the token, the row's
    # verifies it (no fetch: the row's key is a minute old at most).
    new_key = tokens.new_key()
    world.zendesk.rotate_key(tokens.public_pem(new_key))
    _behind_the_cache(
        world, public_key_pem=tokens.public_pem(new_key), public_key_fetched_at=utcnow()
    )
    assert world.launch(key=new_key).status_code == 200
    assert world.zendesk.calls["public_key"] == 0
    # A copy from before the installation was connected: the row says it is.
    credentials = world.installation().credentials_encrypted
    _behind_the_cache(world, credentials_encrypted=None)
    world.app.extensions[EXTENSION_KEY].reads.clear()
    refused = world.launch(key=new_key)
    assert refused.status_code == 401 and "connect" in refused.get_data(as_text=True).lower()
    _behind_the_cache(world, credentials_encrypted=credentials)
    assert world.launch(key=new_key).status_code == 200
    # A replayed token is refused on the cached path too.
    token = tokens.rs256(new_key, tokens.claims(AUDIENCE) | {"sub": AGENT, "jti": "once"})
    query = {"origin": ORIGIN, "app_guid": "guid-1"}
    first = world.client.post("/sidebar", query_string=query, data={"token": token})
    again = world.client.post("/sidebar", query_string=query, data={"token": token})
    assert (first.status_code, again.status_code) == (200, 401)


def test_the_console_lets_admins_in_and_runs_the_check(world: World) -> None:
    assert world.launch("/console", user=AGENT).status_code == 403
    session_token = world.session_token("/console", user=ADMIN)
    response = world.client.post(
        "/console/connection/check", headers={"Authorization": f"Bearer {session_token}"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Everything works." in html and html.count('class="rg-check rg-check--ok"') == 4


def _name_supervisor_roles(world: World, roles: list[str]) -> None:
    with db.database(world.app).sessions() as session:
        installation = zendesk_installations.zendesk_installation(session, SUBDOMAIN)
        assert installation is not None
        installation.supervisor_roles = roles
        session.commit()


def test_a_custom_role_named_by_its_name_makes_a_supervisor(world: World) -> None:
    team_lead = str(fake_zendesk.TEAM_LEAD_USER_ID)
    assert world.launch("/console", user=team_lead).status_code == 403  # nobody named yet
    _name_supervisor_roles(world, ["team lead"])
    world.zendesk.reset_counts()
    page = world.launch("/console", user=team_lead)
    assert page.status_code == 200 and "(supervisor)" in page.get_data(as_text=True)
    assert world.zendesk.calls["custom_role"] == 1  # Zendesk named the user's custom role
    # An agent without a custom role costs no such call, and stays out.
    assert world.launch("/console", user=AGENT).status_code == 403
    assert world.zendesk.calls["custom_role"] == 1
    # Named by id, the role decides without asking Zendesk its name.
    _name_supervisor_roles(world, [str(fake_zendesk.TEAM_LEAD_ROLE_ID)])
    assert world.launch("/console", user=team_lead).status_code == 200
    assert world.zendesk.calls["custom_role"] == 1


def test_credentials_are_never_in_a_page(world: World) -> None:
    session_token = world.session_token("/console", user=ADMIN)
    pages = [
        world.launch("/console", user=ADMIN).get_data(as_text=True),
        world.client.post(
            "/console/connection/check", headers={"Authorization": f"Bearer {session_token}"}
        ).get_data(as_text=True),
        world.banner(world.session_token(), HIGH_VALUE_TICKET).get_data(as_text=True),
    ]
    for page in pages:
        assert fake_zendesk.DEFAULT_API_TOKEN not in page


def test_the_signed_post_exactly_as_zendesk_sends_it(world: World) -> None:
    """A form-encoded POST with the JWT in `token`; origin and app_guid in the query string."""
    token = tokens.rs256(world.key, tokens.claims(AUDIENCE) | {"sub": AGENT})
    response = world.client.open(
        f"/sidebar?origin={ORIGIN}&app_guid=5a0b6f3c-1e2d-4c5b-9a8f-7e6d5c4b3a21",
        method="POST",
        data=f"token={token}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "data-session-token" in response.get_data(as_text=True)


def test_settings_never_show_their_secrets(world: World) -> None:
    settings = repr(world.app.extensions["regulars.settings"])
    assert "secret_key=" not in settings and "test-secret" not in settings


def test_a_connected_shop_turns_a_prospect_into_a_known_customer(world: World) -> None:
    prospect = world.zendesk.data.users[90033]  # Ravi Desai: no orders on record here
    ticket_id = next(
        str(t["id"]) for t in world.zendesk.data.tickets.values() if t["requester_id"] == 90033
    )
    with db.database(world.app).sessions() as session:
        installation = zendesk_installations.zendesk_installation(session, SUBDOMAIN)
        assert installation is not None
        connect_shopify(
            session,
            installation,
            world.app.extensions["regulars.vault"],
            shop=shop.SHOP,
            access_token=shop.TOKEN,
        )
        session.commit()
    answer = shop.customers_answer(
        shop.customer_node(
            displayName=prospect["name"],
            defaultEmailAddress={"emailAddress": prospect["email"]},
            defaultPhoneNumber=None,
        )
    )
    session_token = world.session_token()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.add_passthru(world.zendesk_url)
        rsps.post(shop.URL, json=answer)
        # The view stores nothing: it says the shop has news, and the page asks to store it.
        shown = world.banner(session_token, ticket_id).get_data(as_text=True)
        assert 'data-sync="due"' in shown and "Not a customer yet" in shown
        first = world.client.post(
            "/sidebar/sync",
            data={"ticket_id": ticket_id},
            headers={"Authorization": f"Bearer {session_token}"},
        ).get_data(as_text=True)
        # Within the shop's freshness the next view asks the shop nothing more.
        second = world.banner(session_token, ticket_id).get_data(as_text=True)
        assert len([c for c in rsps.calls if c.request.url == shop.URL]) == 1
    for html in (first, second):
        assert "Not a customer yet" not in html
        assert "Order data from shopify" in html
        assert 'data-sync="due"' not in html


def test_a_shop_that_is_down_leaves_the_banner_as_it_was(world: World) -> None:
    with db.database(world.app).sessions() as session:
        installation = zendesk_installations.zendesk_installation(session, SUBDOMAIN)
        assert installation is not None
        connect_shopify(
            session,
            installation,
            world.app.extensions["regulars.vault"],
            shop=shop.SHOP,
            access_token=shop.TOKEN,
        )
        session.commit()
    session_token = world.session_token()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.add_passthru(world.zendesk_url)
        rsps.post(shop.URL, status=503)
        response = world.banner(session_token, HIGH_VALUE_TICKET)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Margaret Okafor" in html and "High value" in html
