"""Retention: `flask data purge` removes what is older than its settings, and nothing else."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin.clock import utcnow
from plugin.customers.retention import RetentionPolicy, purge
from plugin.models import Action, Delivery, Installation, SeenTicket, SharedCacheEntry

NOW = datetime(2026, 12, 4, 12, 0)
POLICY = RetentionPolicy(seen_ticket_days=180, cached_answer_days=1, delivered_days=90)


def seen(installation: Installation, ticket: str, last_seen: datetime) -> SeenTicket:
    return SeenTicket(
        installation_id=installation.id,
        ticket_id=ticket,
        requester_id="7001",
        subject="Where is my parcel, says Ann Lee",
        first_seen_at=last_seen,
        last_seen_at=last_seen,
    )


def cached(installation: Installation, key: str, fetched_at: datetime) -> SharedCacheEntry:
    return SharedCacheEntry(
        installation_id=installation.id,
        key=key,
        value={"requester": {"id": "7001", "name": "Ann Lee"}},
        fetched_at=fetched_at,
    )


def action(
    installation: Installation, key: str, *, kind: str = "applied", escalation_id: int | None = None
) -> Action:
    return Action(
        installation_id=installation.id,
        ticket_id="5001",
        requester_id="7001",
        agent_id="80001",
        kind=kind,
        exception_key="shipping_refund",
        amount_cents=500,
        currency="USD",
        text="Ann Lee was upset",
        idempotency_key=key,
        escalation_id=escalation_id,
        created_at=NOW - timedelta(days=200),
    )


def world(session: Session) -> Installation:
    installation = Installation(platform="zendesk", account="acme", display_name="Acme")
    session.add(installation)
    session.flush()
    day = timedelta(days=1)
    session.add_all(
        [
            seen(installation, "old", NOW - 181 * day),
            seen(installation, "kept", NOW - 179 * day),
            cached(installation, "requester:old", NOW - 2 * day),
            cached(installation, "requester:fresh", NOW - timedelta(hours=3)),
        ]
    )
    delivered_long_ago = action(installation, "delivered-long-ago")
    delivered_lately = action(installation, "delivered-lately")
    pending = action(installation, "pending")
    waiting = action(installation, "waiting-escalation", kind="escalated")
    session.add_all([delivered_long_ago, delivered_lately, pending, waiting])
    session.flush()
    for row, delivered_at in (
        (delivered_long_ago, NOW - 91 * day),
        (delivered_lately, NOW - 89 * day),
        (waiting, NOW - 120 * day),
    ):
        delivery = session.get(Delivery, row.id)
        assert delivery is not None
        delivery.status, delivery.delivered_at = "delivered", delivered_at
        delivery.last_error = "a 503 once"
    session.commit()
    return installation


def texts(session: Session) -> dict[str, str]:
    return dict(session.execute(sa.select(Action.idempotency_key, Action.text)).all())


def test_the_purge_removes_what_is_too_old_and_nothing_else(session: Session) -> None:
    world(session)

    purged = purge(session, POLICY, now=NOW)
    session.commit()

    session.expire_all()
    assert set(session.scalars(sa.select(SeenTicket.ticket_id))) == {"kept"}
    assert set(session.scalars(sa.select(SharedCacheEntry.key))) == {"requester:fresh"}
    assert texts(session) == {
        "delivered-long-ago": "",
        "delivered-lately": "Ann Lee was upset",
        "pending": "Ann Lee was upset",  # not delivered: its note still needs its words
        "waiting-escalation": "Ann Lee was upset",  # the approver still reads them
    }
    assert session.scalar(sa.select(sa.func.count()).select_from(Action)) == 4
    errors = dict(
        session.execute(
            sa.select(Action.idempotency_key, Delivery.last_error).join(
                Delivery, Delivery.action_id == Action.id
            )
        ).all()
    )
    assert errors["delivered-long-ago"] is None and errors["delivered-lately"] == "a 503 once"
    assert purged.counts == {"seen_tickets": 1, "cached_answers": 1, "delivered_actions": 1}


def test_zero_days_keeps_that_kind_for_ever(session: Session) -> None:
    world(session)
    purge(session, RetentionPolicy(0, 0, 0), now=NOW + timedelta(days=3650))
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(SeenTicket)) == 2
    assert session.scalar(sa.select(sa.func.count()).select_from(SharedCacheEntry)) == 2
    assert "" not in texts(session).values()


def test_the_command_purges_with_the_settings(app: Flask, session: Session) -> None:
    installation = Installation(platform="zendesk", account="acme", display_name="Acme")
    session.add(installation)
    session.flush()
    session.add_all(
        [
            seen(installation, "old", utcnow() - timedelta(days=400)),
            seen(installation, "new", utcnow()),
        ]
    )
    session.commit()
    result = app.test_cli_runner().invoke(args=["data", "purge"])
    assert result.exit_code == 0, result.output
    assert "seen tickets 1" in result.output
    session.expire_all()
    assert list(session.scalars(sa.select(SeenTicket.ticket_id))) == ["new"]
