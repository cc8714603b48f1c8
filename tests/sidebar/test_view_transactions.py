"""A sidebar view's statements run without a transaction on PostgreSQL (`db.statements_apart`).

A view reads; under READ COMMITTED each statement has its own snapshot either way, so a
transaction around them only cost a BEGIN and a ROLLBACK, two round trips of a dozen. A POST
that records an action still runs in its transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import Flask

from plugin import db
from plugin.models import RuleExposure
from tests.goodwill.test_views import MARGARET, open_ticket_of
from tests.seeded_demo import SeededDemos
from tests.sidebar.test_sync import settle
from tests.sidebar.test_views import demo_token, launch, session_token


@contextmanager
def in_transaction() -> Iterator[list[tuple[str, bool]]]:
    """Each statement this thread runs on any engine (the app's, the unsynced writes'), and
    whether a transaction was open around it."""
    engine = sa.engine.Engine
    seen: list[tuple[str, bool]] = []
    thread = threading.get_ident()

    def keep(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() != thread:
            return  # the seen-ticket writer's own session
        raw = conn.connection.driver_connection
        if conn.dialect.name == "sqlite":
            open_ = raw.in_transaction
        else:
            open_ = raw.info.transaction_status != raw.info.transaction_status.IDLE
        seen.append((" ".join(statement.split())[:80], bool(open_)))

    sa.event.listen(engine, "after_cursor_execute", keep)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "after_cursor_execute", keep)


def test_a_views_reads_run_without_a_transaction_on_postgresql(
    storage_app: Flask, seeded_demos: SeededDemos
) -> None:
    with db.database(storage_app).sessions() as session:
        installation = seeded_demos.load(storage_app, session)
    client = storage_app.test_client()
    token = session_token(launch(client, demo_token(storage_app, installation)).get_data(True))
    with in_transaction() as seen:
        answer = client.get(
            "/sidebar/view",
            query_string={"ticket_id": open_ticket_of(MARGARET)},
            headers={"Authorization": f"Bearer {token}"},
        )
        settle(storage_app)
    assert answer.status_code == 200
    assert "Margaret" in answer.get_data(True)
    selects = [(text, open_) for text, open_ in seen if text.startswith("SELECT")]
    assert len(selects) > 5, "the view read the database"
    # The rules' exposures are written after the answer, on a worker thread (`settle`).
    assert not any("rule_exposures" in text for text, _ in seen)
    with db.database(storage_app).sessions() as session:
        recorded = session.scalar(
            sa.select(sa.func.count(RuleExposure.id)).where(
                RuleExposure.installation_id == installation.id
            )
        )
    assert recorded
    if db.database(storage_app).engine.dialect.name == "sqlite":
        return  # its BEGIN costs no round trip: nothing changes
    assert [text for text, open_ in seen if open_] == []
    # Any other session (an action's, the console's) opens its transaction as before.
    with db.database(storage_app).sessions() as session, in_transaction() as seen:
        session.execute(sa.select(sa.literal(1)))
    assert [open_ for _, open_ in seen] == [True]
