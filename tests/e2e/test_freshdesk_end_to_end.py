"""The service against a fake Freshdesk on 127.0.0.1, and beside a fake Zendesk: the same
customer gets the same banner through either helpdesk.

Nothing here is mocked inside the service: it makes real HTTP calls to small stand-ins
(bench/fake_freshdesk.py, bench/fake_zendesk.py) that answer in their APIs' shapes and count
the calls they get. The Freshdesk app's calls come in as Freshworks' proxy sends them: a POST
with the installation's secret in a header and the page's ids in a JSON body.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bench import fake_freshdesk, fake_zendesk
from plugin import db
from plugin.clock import utcnow
from plugin.customers.segmentation import recompute_installation
from plugin.demo.sample_data import build_sample_data
from plugin.demo.seed import insert_sample_customers
from plugin.helpdesks import helpdesk_for
from plugin.helpdesks.freshdesk import FreshdeskClient
from plugin.helpdesks.freshdesk_installations import freshdesk_installation
from plugin.helpdesks.runtime import helpdesks
from plugin.helpdesks.zendesk_installations import zendesk_installation
from tests import tokens
from tests.conftest import build_app, dispose_app

DOMAIN = "acme.freshdesk.com"
AGENT = "80001"
HIGH_VALUE_TICKET, HIGH_VALUE_REQUESTER = "1058", "90001"  # Margaret Okafor


@dataclass
class World:
    app: Flask
    client: FlaskClient
    freshdesk: fake_freshdesk.FakeFreshdeskState
    secret: str

    def banner(self, ticket_id: str, requester_hint: str | None = HIGH_VALUE_REQUESTER):
        """Ask for a ticket's banner as Freshworks' proxy sends the app's getSidebar call."""
        return self.client.post(
            "/freshdesk/sidebar",
            json={
                "ticket_id": ticket_id,
                "requester_id": requester_hint,
                "agent_id": AGENT,
                "domain": DOMAIN,
            },
            headers={"X-Regulars-Secret": self.secret, "Accept": "text/html"},
        )


def register_freshdesk(app: Flask, url: str) -> str:
    """Register the fake account with the CLI, as an admin would; return the printed secret."""
    result = app.test_cli_runner().invoke(
        args=["freshdesk", "register", "--domain", DOMAIN, "--api-base-url", url],
        env={"FRESHDESK_API_KEY": fake_freshdesk.DEFAULT_API_KEY},
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("✓") == 4
    assert fake_freshdesk.DEFAULT_API_KEY not in result.output
    match = re.search(r"rgf_[\w-]+", result.output)
    assert match
    return match.group(0)


def give_sample_customers(app: Flask, platform: str) -> None:
    """Load the demo's customers and orders into an installation and compute their segments."""
    with db.database(app).sessions() as session:
        installation = (
            freshdesk_installation(session, DOMAIN)
            if platform == "freshdesk"
            else zendesk_installation(session, "acme")
        )
        assert installation is not None
        now = utcnow()
        insert_sample_customers(session, installation.id, build_sample_data(now.date()), now=now)
        recompute_installation(session, installation, now=now)
        session.commit()


def make_world(tmp_path: Path, **settings: object) -> Iterator[World]:
    data = fake_freshdesk.from_sample_data(utcnow().date())
    with fake_freshdesk.FakeFreshdeskServer(data) as server:
        app = build_app(f"sqlite:///{tmp_path / 'e2e.sqlite3'}", tmp_path / "instance", **settings)
        try:
            secret = register_freshdesk(app, server.url)
            give_sample_customers(app, "freshdesk")
            server.app_state.reset_counts()
            yield World(
                app=app, client=app.test_client(), freshdesk=server.app_state, secret=secret
            )
        finally:
            dispose_app(app)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


def test_a_cold_view_costs_four_calls_and_a_warm_one_none(world: World) -> None:
    cold = world.banner(HIGH_VALUE_TICKET)
    html = cold.get_data(as_text=True)
    assert cold.status_code == 200, html
    assert "Margaret Okafor" in html and "High value" in html
    assert "Tickets from Freshdesk, live" in html
    # The agent check, the ticket and its requester, the requester's history.
    assert world.freshdesk.calls == {"agent": 1, "ticket": 1, "contact": 1, "tickets": 1}

    world.freshdesk.reset_counts()
    assert world.banner(HIGH_VALUE_TICKET).status_code == 200
    assert world.freshdesk.total_calls() == 0


def test_history_older_than_freshdesks_30_day_default_is_counted(world: World) -> None:
    html = world.banner(HIGH_VALUE_TICKET).get_data(as_text=True)

    tickets = [t for t in world.freshdesk.data.tickets.values() if t["requester_id"] == 90001]
    match = re.search(r"<dt>Tickets</dt>\s*<dd>(\d+)</dd>", html)
    assert match and int(match.group(1)) == len(tickets)


def test_the_ticket_from_freshdesk_decides_the_requester(world: World) -> None:
    html = world.banner(HIGH_VALUE_TICKET, requester_hint="90033").get_data(as_text=True)

    assert "Margaret Okafor" in html and "Ravi Desai" not in html


def test_mapped_contact_fields_and_tags_show_on_the_banner(world: World) -> None:
    runner = world.app.test_cli_runner()
    for source in (["--contact-field", "lifetime_value"], ["--tag", "vip"]):
        fact = "lifetime_value" if "--contact-field" in source else "vip"
        result = runner.invoke(
            args=["freshdesk", "map", "--domain", DOMAIN, *source, "--fact", fact]
        )
        assert result.exit_code == 0, result.output

    html = world.banner(HIGH_VALUE_TICKET).get_data(as_text=True)

    assert re.search(r"Lifetime value</dt>\s*<dd>.*12,345", html)
    assert re.search(r'data-fact="vip">\s*<dt>Vip</dt>\s*<dd>.*Yes', html)


def test_freshdesk_down_serves_the_cached_view_marked_stale(tmp_path: Path) -> None:
    for world in make_world(tmp_path, ticket_cache_seconds=0, history_cache_seconds=0):
        assert world.banner(HIGH_VALUE_TICKET).status_code == 200
        world.freshdesk.mode = "down"
        response = world.banner(HIGH_VALUE_TICKET)
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert "Margaret Okafor" in html and 'data-stale="helpdesk"' in html


def test_freshdesk_rate_limiting_serves_stale_and_pauses_calls(tmp_path: Path) -> None:
    for world in make_world(tmp_path, ticket_cache_seconds=0, history_cache_seconds=0):
        world.banner(HIGH_VALUE_TICKET)
        world.freshdesk.mode = "rate_limited"
        assert 'data-stale="helpdesk"' in world.banner(HIGH_VALUE_TICKET).get_data(as_text=True)
        world.freshdesk.reset_counts()
        # Retry-After is honoured: no call goes out while the account is paused.
        assert 'data-stale="helpdesk"' in world.banner(HIGH_VALUE_TICKET).get_data(as_text=True)
        assert world.freshdesk.total_calls() == 0


def test_freshdesk_hanging_with_nothing_cached_answers_503_within_the_budget(
    tmp_path: Path,
) -> None:
    for world in make_world(tmp_path, upstream_budget_ms=300, upstream_timeout_seconds=2):
        world.freshdesk.hang_seconds = 1.0
        world.freshdesk.mode = "hang"
        response = world.banner(HIGH_VALUE_TICKET)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        assert "slow to answer" in response.get_data(as_text=True)


def test_an_unknown_ticket_is_a_404(world: World) -> None:
    assert world.banner("999999").status_code == 404


def test_neither_the_api_key_nor_the_secret_is_ever_in_a_page(world: World) -> None:
    pages = [
        world.banner(HIGH_VALUE_TICKET).get_data(as_text=True),
        world.banner("999999").get_data(as_text=True),
        world.client.post("/freshdesk/sidebar", json={}).get_data(as_text=True),
    ]
    for page in pages:
        assert fake_freshdesk.DEFAULT_API_KEY not in page and world.secret not in page


def test_notes_and_tags_are_logged_back_to_the_ticket(world: World) -> None:
    with world.app.app_context(), db.database(world.app).sessions() as session:
        installation = freshdesk_installation(session, DOMAIN)
        assert installation is not None
        client = helpdesk_for(installation, session, connections=helpdesks().connections)
        assert isinstance(client, FreshdeskClient)
        client.add_private_note(ticket_id=HIGH_VALUE_TICKET, body="Waived the fee <$5>")
        client.add_tags(ticket_id=HIGH_VALUE_TICKET, tags=["regulars_waive_fee"])

    ticket = world.freshdesk.data.tickets[int(HIGH_VALUE_TICKET)]
    notes = world.freshdesk.data.notes[int(HIGH_VALUE_TICKET)]
    assert "regulars_waive_fee" in ticket["tags"] and len(ticket["tags"]) > 1
    assert [(note["body"], note["private"]) for note in notes] == [
        ("Waived the fee &lt;$5&gt;", True)
    ]


# --- The same customer through both helpdesks -------------------------------------------------


@dataclass(frozen=True)
class BannerFacts:
    """What an agent reads off a banner, whichever helpdesk framed it."""

    name: str
    tier: str
    personalization: str
    segment_chips: tuple[str, ...]
    lifecycle: str | None
    figures: tuple[str, ...]
    contact: tuple[str, ...]

    @classmethod
    def read(cls, html: str) -> BannerFacts:
        def all_of(pattern: str) -> tuple[str, ...]:
            return tuple(re.findall(pattern, html))

        name = re.search(r'<h1 id="rg-name" class="rg-name">([^<]*)</h1>', html)
        tier = re.search(r'data-tier="(\w+)" data-personalization="(\w+)"', html)
        lifecycle = re.search(r"rg-lifecycle--(\w+)", html)
        assert name and tier, html
        return cls(
            name=name.group(1),
            tier=tier.group(1),
            personalization=tier.group(2),
            segment_chips=all_of(r'data-(?:segment|behaviour|persona)="([^"]+)"'),
            lifecycle=lifecycle.group(1) if lifecycle else None,
            # The figures as shown, less their hover text (which names the data source).
            figures=all_of(r'<dd class="rg-figure[^"]*"><span[^>]*>([^<]*)<')
            + all_of(r'<dd class="rg-sub">([^<]*)</dd>'),
            contact=all_of(r"<dt>(?:Other open tickets|Last contact|Tickets)</dt>\s*<dd>([^<]*)"),
        )


def stories() -> list[tuple[str, str]]:
    """One unsolved ticket for each kind of sample customer: (story, ticket id)."""
    data = build_sample_data(utcnow().date())
    picked: dict[str, str] = {}
    for ticket in data.tickets:
        customer = next(c for c in data.customers if c.helpdesk_user_id == ticket.requester_user_id)
        if ticket.status in {"new", "open", "pending"}:
            picked.setdefault(customer.story, ticket.external_id)
    return sorted(picked.items())


@dataclass
class BothHelpdesks:
    zendesk_banner: Callable[[str], str]
    freshdesk_banner: Callable[[str], str]


@pytest.fixture
def both_helpdesks(tmp_path: Path) -> Iterator[BothHelpdesks]:
    key = tokens.new_key()
    today = utcnow().date()
    zendesk_data = fake_zendesk.from_sample_data(today, public_key_pem=tokens.public_pem(key))
    freshdesk_data = fake_freshdesk.from_sample_data(today)
    with (
        fake_zendesk.FakeZendeskServer(zendesk_data) as zendesk_server,
        fake_freshdesk.FakeFreshdeskServer(freshdesk_data) as freshdesk_server,
    ):
        app = build_app(f"sqlite:///{tmp_path / 'both.sqlite3'}", tmp_path / "instance")
        try:
            registered = app.test_cli_runner().invoke(
                args=[
                    "zendesk",
                    "register",
                    "--subdomain",
                    "acme",
                    "--app-id",
                    str(fake_zendesk.DEFAULT_APP_ID),
                    "--email",
                    fake_zendesk.ADMIN_EMAIL,
                    "--api-base-url",
                    zendesk_server.url,
                ],
                env={"ZENDESK_API_TOKEN": fake_zendesk.DEFAULT_API_TOKEN},
            )
            assert registered.exit_code == 0, registered.output
            secret = register_freshdesk(app, freshdesk_server.url)
            give_sample_customers(app, "zendesk")
            give_sample_customers(app, "freshdesk")
            client = app.test_client()
            audience = (
                f"https://acme.zendesk.com/api/v2/apps/installations/"
                f"{fake_zendesk.DEFAULT_INSTALLATION_ID}.json"
            )
            launched = client.post(
                "/sidebar",
                query_string={"origin": "https://acme.zendesk.com", "app_guid": "g-1"},
                data={"token": tokens.rs256(key, tokens.claims(audience) | {"sub": AGENT})},
            )
            session_token = re.search(
                r'data-session-token="([^"]+)"', launched.get_data(as_text=True)
            )
            assert session_token, launched.get_data(as_text=True)

            def zendesk_banner(ticket_id: str) -> str:
                response = client.get(
                    "/sidebar/banner",
                    query_string={"ticket_id": ticket_id},
                    headers={"Authorization": f"Bearer {session_token.group(1)}"},
                )
                assert response.status_code == 200
                return response.get_data(as_text=True)

            def freshdesk_banner(ticket_id: str) -> str:
                response = client.post(
                    "/freshdesk/sidebar",
                    json={"ticket_id": ticket_id, "agent_id": AGENT, "domain": DOMAIN},
                    headers={"X-Regulars-Secret": secret},
                )
                assert response.status_code == 200
                return response.get_data(as_text=True)

            yield BothHelpdesks(zendesk_banner=zendesk_banner, freshdesk_banner=freshdesk_banner)
        finally:
            dispose_app(app)


def test_every_kind_of_customer_gets_the_same_banner_through_zendesk_and_freshdesk(
    both_helpdesks: BothHelpdesks,
) -> None:
    picked = stories()
    assert len(picked) >= 8  # high, medium, low, seasonal, small business, deal seeker, ...
    seen_tiers = set()
    for story, ticket_id in picked:
        zendesk_html = both_helpdesks.zendesk_banner(ticket_id)
        freshdesk_html = both_helpdesks.freshdesk_banner(ticket_id)

        through_zendesk = BannerFacts.read(zendesk_html)
        assert BannerFacts.read(freshdesk_html) == through_zendesk, story
        assert "Tickets from Zendesk" in zendesk_html and "Tickets from Freshdesk" in freshdesk_html
        seen_tiers.add(through_zendesk.tier)
    assert seen_tiers == {"high", "medium", "low"}
