"""The app's shared helpdesk state: a dropped app is collected, a live one's view counts are
written at exit."""

from __future__ import annotations

import gc
import weakref
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from plugin import db
from plugin.domain.helpdesk import Ticket
from plugin.helpdesks.runtime import EXTENSION_KEY, flush_seen_at_exit
from plugin.models import Installation, SeenTicket
from tests.conftest import build_app, dispose_app

WHEN = datetime(2026, 11, 1, 9, 0)
TICKET = Ticket(
    id="1",
    subject="Where is my order?",
    status="open",
    channel="email",
    priority="normal",
    ticket_type="question",
    tags=("vip",),
    requester_id="100",
    created_at=WHEN,
    updated_at=WHEN,
)


def test_apps_that_are_dropped_are_collected_with_their_databases(tmp_path: Path) -> None:
    alive: list[weakref.ref[object]] = []
    for number in range(5):
        app = build_app(f"sqlite:///{tmp_path / f'{number}.sqlite3'}", tmp_path / f"i{number}")
        database = db.database(app)
        helpdesks = app.extensions[EXTENSION_KEY]
        alive += [weakref.ref(o) for o in (app, database, database.engine, helpdesks.seen)]
        dispose_app(app)
        del app, database, helpdesks
    for _ in range(3):  # what the first pass frees (the app's finalizers) frees the rest
        gc.collect()
    assert [ref() for ref in alive if ref() is not None] == []


def test_the_flush_at_exit_writes_the_views_a_live_app_counted(app: Flask) -> None:
    seen = app.extensions[EXTENSION_KEY].seen
    with db.database(app).sessions() as session:
        installation = Installation(platform="zendesk", account="acme", display_name="Acme")
        session.add(installation)
        session.commit()
        for seconds in range(3):
            seen.record(
                lambda: session,
                installation_id=installation.id,
                ticket=TICKET,
                customer_id=None,
                now=WHEN + timedelta(seconds=seconds),
            )
        seen.wait(timeout=10)
        count = sa.select(SeenTicket.view_count)
        assert session.scalar(count) == 1  # the first view written, the next two counted
        flush_seen_at_exit()
        assert session.scalar(count) == 3
