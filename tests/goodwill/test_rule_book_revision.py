"""The compiled rule book notices every committed change, whatever order the changes commit in.

Two supervisors save at the same moment through two processes; a third process builds its book
between the two commits. With only ids and timestamps to go by, the change that got the lower
id but committed last went unnoticed until the next change or a restart. The installation's
`rule_book_revision`, raised under the row's lock in each change's transaction, orders them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from plugin import db
from plugin.clock import utcnow
from plugin.goodwill import rulebook
from plugin.models import Installation
from tests.conftest import build_app, dispose_app
from tests.seeded_demo import SeededDemos

AUTHOR = rulebook.Author(id=None, name="Priya Nair")


@pytest.fixture
def world(
    database_url: str, tmp_path: Path, seeded_demos: SeededDemos
) -> Iterator[tuple[Flask, sessionmaker[Session], int]]:
    app = build_app(database_url, tmp_path / "instance")
    sessions = db.database(app).sessions
    with sessions() as session:
        installation = seeded_demos.load(app, session)
        session.commit()
        installation_id = installation.id
    yield app, sessions, installation_id
    dispose_app(app)


def _revision(sessions: sessionmaker[Session], installation_id: int) -> int:
    with sessions() as session:
        installation = session.get(Installation, installation_id)
        assert installation is not None
        return installation.rule_book_revision


def _rename(session: Session, installation_id: int, rule_id: int, name: str) -> None:
    installation = session.get(Installation, installation_id)
    assert installation is not None
    rule = rulebook.get_rule(session, installation_id, rule_id)
    definition = dict(
        rulebook.rule_version(session, installation_id, rule_id, rule.current_version).definition
    )
    rulebook.update_rule(
        session, installation, rule_id, {**definition, "name": name}, author=AUTHOR, now=utcnow()
    )


def test_every_change_to_what_the_book_reads_raises_the_revision(
    world: tuple[Flask, sessionmaker[Session], int],
) -> None:
    _app, sessions, installation_id = world
    before = _revision(sessions, installation_id)
    with sessions() as session:
        (rule, _version), *_ = rulebook.current_rules(session, installation_id)
        _rename(session, installation_id, rule.id, "Renamed once")
    assert _revision(sessions, installation_id) > before


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_change_that_commits_last_is_seen_even_with_the_lower_id(
    world: tuple[Flask, sessionmaker[Session], int],
) -> None:
    _app, sessions, installation_id = world
    with sessions() as session:
        (first, _v1), (second, _v2), *_ = rulebook.current_rules(session, installation_id)
        first_key, second_key = first.key, second.key
        first_id, second_id = first.id, second.id

    # Supervisor A saves first (the lower ids and timestamps) but has not committed yet.
    a = sessions()
    a_commit = a.commit
    a.commit = a.flush  # type: ignore[method-assign]
    _rename(a, installation_id, first_id, "Edited by A")

    # Supervisor B saves a moment later, in another connection: it must wait for A.
    b_done = threading.Event()

    def supervisor_b() -> None:
        with sessions() as b:
            _rename(b, installation_id, second_id, "Edited by B")
        b_done.set()

    b_thread = threading.Thread(target=supervisor_b)
    b_thread.start()
    assert not b_done.wait(0.5), "B committed while A's change was open: nothing orders them"

    # Process C serves a card between the two: neither change is committed.
    with sessions() as c:
        installation = c.get(Installation, installation_id)
        assert installation is not None
        book = rulebook.rule_book(c, installation)
    assert book.rules[first_key].name != "Edited by A"

    a_commit()
    a.close()
    b_thread.join(timeout=30)
    assert b_done.is_set()

    # C's next card has both, however the ids and timestamps fell.
    with sessions() as c:
        installation = c.get(Installation, installation_id)
        assert installation is not None
        later = rulebook.rule_book(c, installation)
    assert later is not book
    assert later.rules[first_key].name == "Edited by A"
    assert later.rules[second_key].name == "Edited by B"
