"""A warm sidebar view costs no query and no call, yet shows an edit on the next view.

The service runs against the fake Zendesk (on 127.0.0.1), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient

from bench import fake_zendesk
from bench.sidebar_views import service, session_token
from plugin import db
from plugin.clock import utcnow
from plugin.models import Installation, SeenTicket, SharedCacheEntry


class Sidebar:
    """The service with the fake's account registered, a signed-in agent, the fake's state."""

    def __init__(self, app: Flask, token: str, zendesk: fake_zendesk.FakeZendeskServer) -> None:
        self.app = app
        self.client: FlaskClient = app.test_client()
        self.token = token
        self.zendesk = zendesk
        data = zendesk.app_state.data
        tickets = sorted(data.tickets.values(), key=lambda t: int(t["id"]))
        self.ticket: dict[str, Any] = tickets[0]

    def banner(self, **page: str) -> str:
        query = {
            "ticket_id": str(self.ticket["id"]),
            "requester_id": str(self.ticket["requester_id"]),
        } | page
        response = self.client.get(
            "/sidebar/banner",
            query_string=query,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_data(as_text=True)

    def installation_id(self) -> int:
        with db.database(self.app).sessions() as session:
            found = session.scalar(
                sa.select(Installation.id).where(Installation.account == "bench")
            )
            assert found is not None
            return found


@pytest.fixture
def sidebar(database_url: str, tmp_path: Path) -> Iterator[Sidebar]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    data = fake_zendesk.from_sample_data(utcnow().date(), public_key_pem=pem)
    with (
        fake_zendesk.FakeZendeskServer(data) as zendesk,
        service(tmp_path, zendesk.url, database_url) as app,
    ):
        token = session_token(app.test_client(), key)  # fetches the app's public key
        zendesk.app_state.reset_counts()
        yield Sidebar(app, token, zendesk)


def test_a_cold_view_is_one_call_and_a_warm_view_no_call_and_no_query(sidebar: Sidebar) -> None:
    sidebar.banner()
    assert sidebar.zendesk.app_state.total_calls() == 1  # requester + history in one
    # The cold view's record of the ticket is written on a thread of its own: let it finish.
    sidebar.app.extensions["regulars.helpdesks"].seen.wait()
    statements: list[str] = []
    engine = db.database(sidebar.app).engine

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        sidebar.banner()
        sidebar.banner()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert statements == []
    assert sidebar.zendesk.app_state.total_calls() == 1


def test_a_supervisors_edit_shows_on_the_next_view(sidebar: Sidebar) -> None:
    assert 'data-tier="low"' in sidebar.banner()
    with db.database(sidebar.app).sessions() as session:
        # The console's tier thresholds: every customer with an order is high value now.
        installation = session.get(Installation, sidebar.installation_id())
        assert installation is not None
        installation.tier_medium_min_orders = installation.tier_high_min_orders = 0
        installation.tier_medium_min_spend_cents = installation.tier_high_min_spend_cents = 0
        session.commit()
    assert 'data-tier="high"' in sidebar.banner()


def test_views_are_counted_on_the_seen_ticket(sidebar: Sidebar) -> None:
    for _ in range(3):
        sidebar.banner()
    helpdesks = sidebar.app.extensions["regulars.helpdesks"]
    with db.database(sidebar.app).sessions() as session:
        helpdesks.seen.flush(session)
        row = session.scalars(sa.select(SeenTicket)).one()
        assert row.view_count == 3
        assert row.ticket_id == str(sidebar.ticket["id"])


def test_the_shared_cache_never_answers_for_another_installation(sidebar: Sidebar) -> None:
    requester = str(sidebar.ticket["requester_id"])
    with db.database(sidebar.app).sessions() as session:
        other = Installation(platform="zendesk", account="other", display_name="Other")
        session.add(other)
        session.flush()
        # Another installation's answer for the same requester id: never read for this one.
        session.add(
            SharedCacheEntry(
                installation_id=other.id,
                key=f"requester:{requester}",
                value={"requester": {"id": requester, "name": "Somebody Else"}, "tickets": []},
                fetched_at=utcnow(),
            )
        )
        session.commit()
        other_id = other.id
    html = sidebar.banner()
    assert "Somebody Else" not in html
    assert sidebar.zendesk.app_state.total_calls() == 1
    with db.database(sidebar.app).sessions() as session:
        keys = session.execute(
            sa.select(SharedCacheEntry.installation_id, SharedCacheEntry.key)
        ).all()
    assert (other_id, f"requester:{requester}") in keys
    assert sum(1 for installation_id, _key in keys if installation_id != other_id) <= 1


def test_a_ticket_the_cached_history_lacks_is_shown_from_the_page_without_a_call(
    sidebar: Sidebar,
) -> None:
    sidebar.banner()
    data = sidebar.zendesk.app_state.data
    newest = max(int(ticket_id) for ticket_id in data.tickets)
    html = sidebar.banner(
        ticket_id=str(newest + 1000),
        subject="A brand new ticket",
        status="new",
        type="question",
        priority="high",
        tags="vip new_ticket",
        channel="email",
    )
    assert "rg-card" in html
    assert sidebar.zendesk.app_state.total_calls() == 1
    helpdesks = sidebar.app.extensions["regulars.helpdesks"]
    with db.database(sidebar.app).sessions() as session:
        helpdesks.seen.flush(session)
        row = session.scalars(
            sa.select(SeenTicket).where(SeenTicket.ticket_id == str(newest + 1000))
        ).one()
    assert row.subject == "A brand new ticket" and row.tags == ["vip", "new_ticket"]
    assert row.priority == "high"
