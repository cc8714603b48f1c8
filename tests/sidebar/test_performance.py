"""A warm sidebar view costs no query and no call, yet shows an edit on the next view.

The service runs against the fake Zendesk (on 127.0.0.1), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from plugin import db
from plugin.clock import utcnow
from plugin.models import Installation, SeenTicket, SharedCacheEntry
from tests.sidebar.conftest import Sidebar


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
