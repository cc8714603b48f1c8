"""Short leases renewed by a heartbeat: a running worker keeps its work however long a call
takes, a worker that stops heartbeating loses it within seconds, and a waiting worker says,
once, what it waits for."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from plugin import db
from plugin.clock import utcnow
from plugin.delivery import outbox
from plugin.delivery.worker import OutboxWorker
from plugin.helpdesks.interface import TicketChange
from plugin.models import Action, Delivery, Installation
from tests.delivery.test_outbox import ScriptedWriter, writers

LEASE = 1.0
POLICY = outbox.OutboxPolicy(lease_seconds=LEASE, poll_seconds=0.05, concurrency=1)


@pytest.fixture
def sessions(storage_app: Flask) -> sessionmaker[Session]:
    return db.database(storage_app).sessions


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


def an_action(session: Session, n: int = 1) -> int:
    inst = Installation(platform="demo", account=f"lease{n}", display_name="Lease")
    session.add(inst)
    session.flush()
    row = Action(
        installation_id=inst.id,
        ticket_id=f"t{n}",
        requester_id="9",
        agent_id="8",
        kind="dismissed",
        exception_key="x",
        currency="USD",
        reason_code="no",
        text="",
        idempotency_key=f"lease-key-{n:04d}",
        created_at=utcnow() - timedelta(minutes=1),
    )
    session.add(row)
    session.commit()
    return row.id


def test_a_worker_that_stops_heartbeating_loses_the_outbox_and_its_work_within_seconds(
    sessions: sessionmaker[Session], session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    action_id = an_action(session)
    dead = OutboxWorker(sessions, writers(ScriptedWriter()), policy=POLICY, worker_id="dead")
    # It took the outbox and a note, then died: no heartbeat renews either.
    assert dead.hold_lease()
    (held,) = outbox.claim(session, worker_id="dead", now=utcnow(), policy=POLICY, limit=5)
    writer = ScriptedWriter()
    replacement = OutboxWorker(sessions, writers(writer), policy=POLICY, worker_id="next")
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="plugin.delivery.worker"):
        replacement.run(until_empty=True)
    took = time.monotonic() - started
    assert took < 5 * LEASE
    session.expire_all()
    state = session.get(Delivery, action_id)
    assert state is not None and state.status == "delivered"
    assert writer.checks == 1  # taken over with its outcome unknown: the marker looked for
    if sessions.kw["bind"].dialect.name != "postgresql":
        waits = [r for r in caplog.records if "waits for the outbox's lease" in r.getMessage()]
        assert len(waits) == 1 and "held by dead until" in waits[0].getMessage()
    assert held.token != state.claim_token


class SlowWriter(ScriptedWriter):
    """A helpdesk that takes several leases' time to answer."""

    def add_note(
        self,
        *,
        ticket_id: str,
        body: str,
        tags: list[str],
        marker: str,
        change: TicketChange | None = None,
    ) -> None:
        time.sleep(3 * LEASE)
        super().add_note(ticket_id=ticket_id, body=body, tags=tags, marker=marker, change=change)


def test_a_running_worker_keeps_its_work_through_a_long_call(
    sessions: sessionmaker[Session], session: Session
) -> None:
    action_id = an_action(session)
    writer = SlowWriter()
    slow = OutboxWorker(sessions, writers(writer), policy=POLICY, worker_id="slow")
    thread = threading.Thread(target=slow.run, kwargs={"until_empty": True})
    thread.start()
    try:
        time.sleep(LEASE / 2)
        rival_writer = ScriptedWriter()
        rival = OutboxWorker(sessions, writers(rival_writer), policy=POLICY, worker_id="rival")
        deadline = time.monotonic() + 2 * LEASE
        while time.monotonic() < deadline:
            if rival.hold_lease():
                rival.run_once()
            time.sleep(0.1)
        assert rival.stats.claimed == 0 and rival_writer.notes == {}
    finally:
        thread.join(timeout=10)
    session.expire_all()
    state = session.get(Delivery, action_id)
    assert state is not None and state.status == "delivered"
    assert sum(len(n) for n in writer.notes.values()) == 1
