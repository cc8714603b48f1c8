"""The action log's outbox: enqueueing, order per ticket, backoff, dead, retry, leases, markers.

Runs on SQLite and PostgreSQL (the `storage_app` fixture); the helpdesk is a scripted writer
that records notes and fails as told, except where the demo helpdesk's own writer is tested.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from plugin import db
from plugin.clock import utcnow
from plugin.delivery import outbox as delivery
from plugin.delivery.notes import build_note, marker_for, register_note_sentence
from plugin.delivery.outbox import Claim, OutboxPolicy
from plugin.delivery.worker import OutboxWorker, WriterFactory, attempt
from plugin.helpdesks.demo import DemoHelpdesk
from plugin.helpdesks.interface import HelpdeskError, TicketChange, TicketNotFound
from plugin.models import Action, Delivery, DemoNote, DemoTicket, Installation

# Later than any action's queueing: the tests' "now".
T0 = utcnow().replace(microsecond=0) + timedelta(hours=1)
POLICY = OutboxPolicy(max_failures=3, backoff_seconds=2.0, lease_seconds=30.0, concurrency=1)


@dataclass
class ScriptedWriter:
    """A helpdesk that records notes, and raises the errors queued for it first."""

    notes: dict[str, list[str]] = field(default_factory=dict)
    errors: list[HelpdeskError] = field(default_factory=list)
    checks: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Write the note and then fail as if the answer timed out.
    write_then_timeout: bool = False

    def add_note(
        self,
        *,
        ticket_id: str,
        body: str,
        tags: list[str],
        marker: str,
        change: TicketChange | None = None,
    ) -> None:
        with self.lock:
            if self.write_then_timeout:
                self.write_then_timeout = False
                self.notes.setdefault(ticket_id, []).append(marker)
                raise HelpdeskError("timed out", retryable=True, transport="timeout")
            if self.errors:
                raise self.errors.pop(0)
            self.notes.setdefault(ticket_id, []).append(marker)

    def has_note(self, *, ticket_id: str, marker: str) -> bool:
        with self.lock:
            self.checks += 1
            return marker in self.notes.get(ticket_id, [])


@pytest.fixture
def sessions(storage_app: Flask) -> sessionmaker[Session]:
    return db.database(storage_app).sessions


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


def installation(session: Session, account: str = "acme") -> Installation:
    row = Installation(platform="demo", account=account, display_name=account.title())
    session.add(row)
    session.commit()
    return row


def action(
    session: Session,
    inst: Installation,
    ticket_id: str,
    n: int,
    *,
    kind: str = "dismissed",
    commit: bool = True,
) -> Action:
    """An action on the ticket, committed (or only flushed: its id taken, its transaction
    still open)."""
    row = Action(
        installation_id=inst.id,
        ticket_id=ticket_id,
        requester_id="90001",
        agent_id="80001",
        kind=kind,
        exception_key="free_shipping",
        amount_cents=None,
        currency="USD",
        reason_code="not_needed",
        text="",
        idempotency_key=f"key-{inst.id}-{ticket_id}-{n:04d}",
        created_at=T0 - timedelta(minutes=5) + timedelta(seconds=n),
    )
    session.add(row)
    if commit:
        session.commit()
    else:
        session.flush()
    return row


def writers(writer: ScriptedWriter) -> WriterFactory:
    return lambda _session, _installation: writer


def claim(session: Session, now: datetime = T0, limit: int = 50) -> list[Claim]:
    return delivery.claim(session, worker_id="test", now=now, policy=POLICY, limit=limit)


def run(session: Session, held: Claim, writer: ScriptedWriter, now: datetime = T0) -> bool:
    outcome = attempt(session, held, writers=writers(writer))
    return delivery.record(session, held, outcome, now=now, policy=POLICY, rng=random.Random(1))


def state(session: Session, action_id: int) -> Delivery:
    session.expire_all()
    row = session.get(Delivery, action_id)
    assert row is not None
    return row


def test_every_new_action_gets_a_delivery_in_its_own_transaction(session: Session) -> None:
    inst = installation(session)
    written = action(session, inst, "1001", 1)
    row = state(session, written.id)
    assert (row.status, row.ticket_id, row.installation_id) == ("pending", "1001", inst.id)


def test_the_sweep_queues_actions_written_without_one(session: Session) -> None:
    inst = installation(session)
    written = action(session, inst, "1001", 1)
    session.execute(sa.delete(Delivery))
    session.commit()
    assert delivery.enqueue_missing(session, now=T0) == 1
    assert delivery.enqueue_missing(session, now=T0) == 0
    assert state(session, written.id).status == "pending"


def test_each_ticket_gets_its_actions_in_order(session: Session) -> None:
    inst = installation(session)
    a1, a2, a3 = (action(session, inst, "1001", n) for n in (1, 2, 3))
    b1 = action(session, inst, "2002", 4)
    writer = ScriptedWriter()

    first = claim(session)
    assert {c.action_id for c in first} == {a1.id, b1.id}
    for held in first:
        run(session, held, writer)
    assert [c.action_id for c in claim(session)] == [a2.id]
    assert writer.notes["1001"] == [marker_for(a1)]
    # a2 is in flight: a3 waits for it.
    assert claim(session) == []
    assert a3.id not in {c.action_id for c in claim(session)}


def test_a_tickets_actions_commit_in_the_order_of_their_ids(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    """Two writers on one ticket, the first slow to commit: the second's action must not be
    claimable while the first's is still being written, or its note would go out first.

    On SQLite one writer at a time holds the whole database (and a worker's claim waits for
    it): only PostgreSQL's writers can overlap."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time")
    with sessions() as setup:
        inst = installation(setup)
        other_ticket = action(setup, inst, "2002", 0)
    with sessions() as slow:
        first = action(slow, inst, "1001", 1, commit=False)  # its transaction still open
        written: list[int] = []

        def write_the_second() -> None:
            with sessions() as fast:
                written.append(action(fast, inst, "1001", 9).id)

        second = threading.Thread(target=write_the_second, daemon=True)
        second.start()
        second.join(timeout=1.0)
        with sessions() as worker:
            claimed = {c.action_id for c in claim(worker)}
        # Another ticket's action is not held up.
        assert other_ticket.id in claimed
        assert not (set(written) & claimed)
        slow.commit()
    second.join(timeout=10)
    assert written and written[0] > first.id
    with sessions() as worker:
        worker.execute(
            sa.update(Delivery)
            .where(Delivery.action_id == other_ticket.id)
            .values(status="delivered")
        )
        worker.commit()
        assert [c.action_id for c in claim(worker)] == [first.id]


def test_a_failing_action_holds_back_its_ticket_until_it_is_dead(session: Session) -> None:
    inst = installation(session)
    a1, a2 = action(session, inst, "1001", 1), action(session, inst, "1001", 2)
    writer = ScriptedWriter(errors=[HelpdeskError("503", retryable=True, status=503)] * 3)
    now = T0
    for _ in range(POLICY.max_failures):
        (held,) = claim(session, now)
        assert held.action_id == a1.id
        run(session, held, writer, now)
        now = state(session, a1.id).next_attempt_at
    dead = state(session, a1.id)
    assert (dead.status, dead.failures, dead.last_error_kind) == ("dead", 3, "server_error")
    assert dead.last_error == "503"
    (held,) = claim(session, now)
    assert held.action_id == a2.id


def test_retries_back_off_with_jitter(session: Session) -> None:
    inst = installation(session)
    a1 = action(session, inst, "1001", 1)
    # A 503 turns the call away unhandled: nothing can have been written, so no settling.
    writer = ScriptedWriter(errors=[HelpdeskError("503", retryable=True, status=503)] * 2)
    (held,) = claim(session)
    run(session, held, writer)
    wait = (state(session, a1.id).next_attempt_at - T0).total_seconds()
    assert POLICY.backoff_seconds / 2 <= wait <= POLICY.backoff_seconds
    later = T0 + timedelta(seconds=wait)
    assert claim(session, later - timedelta(milliseconds=1)) == []
    (held,) = claim(session, later)
    run(session, held, writer, later)
    second = (state(session, a1.id).next_attempt_at - later).total_seconds()
    assert POLICY.backoff_seconds <= second <= 2 * POLICY.backoff_seconds


@pytest.mark.parametrize(
    "error",
    [
        HelpdeskError("timed out", retryable=True, transport="timeout"),
        HelpdeskError("502", retryable=True, status=502),
    ],
    ids=["timeout", "502"],
)
def test_after_an_unknown_outcome_the_marker_check_waits_for_a_late_write_to_land(
    session: Session, error: HelpdeskError
) -> None:
    inst = installation(session)
    a1 = action(session, inst, "1001", 1)
    writer = ScriptedWriter(errors=[error])
    (held,) = claim(session)
    run(session, held, writer)
    row = state(session, a1.id)
    assert row.outcome_unknown
    assert (row.next_attempt_at - T0).total_seconds() >= POLICY.settle_seconds > 0


def test_a_429_waits_out_retry_after_without_counting_a_failure(session: Session) -> None:
    inst = installation(session)
    a1 = action(session, inst, "1001", 1)
    limited = HelpdeskError("429", retryable=True, status=429, retry_after=30.0)
    (held,) = claim(session)
    run(session, held, ScriptedWriter(errors=[limited]))
    row = state(session, a1.id)
    assert (row.status, row.failures, row.last_error_kind) == ("pending", 0, "rate_limited")
    assert 30 <= (row.next_attempt_at - T0).total_seconds() <= 31


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TicketNotFound("1001"), "ticket_gone"),
        (HelpdeskError("401", retryable=False, status=401), "credentials"),
        (HelpdeskError("403", retryable=False, status=403), "credentials"),
        (HelpdeskError("422", retryable=False, status=422), "refused"),
    ],
)
def test_errors_no_retry_can_fix_park_the_action_dead_at_once(
    session: Session, error: HelpdeskError, kind: str
) -> None:
    inst = installation(session)
    a1 = action(session, inst, "1001", 1)
    (held,) = claim(session)
    run(session, held, ScriptedWriter(errors=[error]))
    row = state(session, a1.id)
    assert (row.status, row.last_error_kind) == ("dead", kind)


def test_retry_sends_dead_actions_again_within_one_installation(session: Session) -> None:
    mine, theirs = installation(session, "acme"), installation(session, "other")
    a1, b1 = action(session, mine, "1001", 1), action(session, theirs, "1001", 2)
    gone = TicketNotFound("1001")
    for held in claim(session):
        run(session, held, ScriptedWriter(errors=[gone]))
    assert delivery.retry(session, now=T0, installation_id=mine.id) == 1
    assert (state(session, a1.id).status, state(session, b1.id).status) == ("pending", "dead")
    assert delivery.retry(session, now=T0, action_ids=[b1.id]) == 1
    assert state(session, b1.id).failures == 0


def test_a_timeout_makes_the_next_attempt_look_for_the_marker_first(session: Session) -> None:
    inst = installation(session)
    a1 = action(session, inst, "1001", 1)
    writer = ScriptedWriter(write_then_timeout=True)
    (held,) = claim(session)
    run(session, held, writer)
    row = state(session, a1.id)
    assert (row.status, row.outcome_unknown, row.last_error_kind) == ("pending", True, "timeout")
    (held,) = claim(session, row.next_attempt_at)
    assert held.outcome_unknown
    run(session, held, writer, row.next_attempt_at)
    assert state(session, a1.id).status == "delivered"
    assert writer.notes["1001"] == [marker_for(a1)]  # found, not written twice
    assert writer.checks == 1


def test_an_expired_lease_is_taken_over_and_the_old_claim_cannot_finish(session: Session) -> None:
    inst = installation(session)
    a1 = action(session, inst, "1001", 1)
    writer = ScriptedWriter()
    (dead_workers,) = claim(session)
    # The worker wrote the note and was killed before recording it.
    writer.notes["1001"] = [marker_for(a1)]
    assert claim(session, T0 + timedelta(seconds=POLICY.lease_seconds - 1)) == []
    later = T0 + timedelta(seconds=POLICY.lease_seconds)
    (taken,) = claim(session, later)
    assert taken.outcome_unknown and taken.token != dead_workers.token
    assert run(session, taken, writer, later)
    assert writer.notes["1001"] == [marker_for(a1)]
    assert state(session, a1.id).attempts == 2
    # The first claim's late answer changes nothing.
    assert not run(session, dead_workers, writer, later)
    assert state(session, a1.id).status == "delivered"


def test_several_workers_never_deliver_one_action_twice(
    sessions: sessionmaker[Session], session: Session, database_url: str
) -> None:
    """On PostgreSQL four workers claim at once (SKIP LOCKED); on SQLite they take turns."""
    inst = installation(session)
    actions = [action(session, inst, str(1000 + n % 25), n) for n in range(200)]
    writer = ScriptedWriter()
    workers = [
        OutboxWorker(
            sessions,
            writers(writer),
            policy=OutboxPolicy(lease_seconds=60, concurrency=2, batch_size=5, poll_seconds=0.01),
            worker_id=f"w{n}",
        )
        for n in range(4)
    ]
    threads = [threading.Thread(target=w.run, kwargs={"until_empty": True}) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    markers = Counter(m for notes in writer.notes.values() for m in notes)
    assert set(markers) == {marker_for(a) for a in actions}
    assert max(markers.values()) == 1
    claimed = [w.stats.claimed for w in workers]
    assert sum(claimed) == 200
    if database_url.startswith("postgresql"):
        assert sum(1 for n in claimed if n) >= 2, claimed  # they really worked side by side
    for ticket_notes in writer.notes.values():
        assert ticket_notes == sorted(ticket_notes)  # each ticket's notes in action order


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # PostgreSQL: side by side
def test_on_sqlite_one_worker_holds_the_outbox_at_a_time(sessions: sessionmaker[Session]) -> None:
    now = [T0]
    first, second = (
        OutboxWorker(
            sessions, writers(ScriptedWriter()), policy=POLICY, worker_id=name, clock=lambda: now[0]
        )
        for name in ("first", "second")
    )
    assert first.hold_lease()
    assert not second.hold_lease()
    assert first.hold_lease()  # renewing
    now[0] = T0 + timedelta(seconds=POLICY.lease_seconds)
    assert second.hold_lease()  # the first stopped renewing: it died
    second.release_lease()
    assert first.hold_lease()


def test_the_demo_helpdesk_stores_the_note_once_with_tags(session: Session) -> None:
    inst = installation(session)
    session.add(
        DemoTicket(
            installation_id=inst.id,
            external_id="1001",
            requester_id="90001",
            subject="Late parcel",
            description="Where is it?",
            channel="email",
            status="open",
            priority="normal",
            ticket_type="question",
            tags=["vip"],
            created_at=T0,
            updated_at=T0,
        )
    )
    session.commit()
    a1 = action(session, inst, "1001", 1, kind="applied")
    a2 = action(session, inst, "4040", 2)  # no such demo ticket

    def demo_writer(s: Session, i: Installation) -> DemoHelpdesk:
        return DemoHelpdesk(s, installation_id=i.id)

    for held in claim(session):
        outcome = attempt(session, held, writers=demo_writer)
        delivery.record(session, held, outcome, now=T0, policy=POLICY, rng=random.Random(1))
    note = session.scalars(sa.select(DemoNote)).one()
    assert note.marker == marker_for(a1)
    assert note.body.startswith("Regulars · Applied:")
    assert note.body.endswith(f"Ref: {marker_for(a1)}")
    ticket = session.scalars(sa.select(DemoTicket)).one()
    assert ticket.tags == ["vip", "regulars", "regulars_applied"]
    assert state(session, a2.id).last_error_kind == "ticket_gone"
    helpdesk = DemoHelpdesk(session, installation_id=inst.id)
    helpdesk.add_note(ticket_id="1001", body="again", tags=[], marker=marker_for(a1))
    assert len(helpdesk.notes(ticket_id="1001")) == 1


def test_notes_say_what_why_who_and_when_for_any_kind(session: Session) -> None:
    inst = installation(session)
    unknown = action(session, inst, "1001", 1, kind="review_item_checked")
    unknown.text = "Checked the address on file"
    note = build_note(session, inst, unknown)
    assert note.body.splitlines()[0] == "Regulars · Review item checked: free shipping."
    assert "In their words: “Checked the address on file”" in note.body
    assert "By: agent user 80001" in note.body
    assert f"When: {unknown.created_at:%Y-%m-%d %H:%M} UTC" in note.body
    assert note.tags == ["regulars", "regulars_review_item_checked"]

    register_note_sentence(
        ["review_completed"], lambda _s, a: f"Review completed on {a.ticket_id}."
    )
    done = action(session, inst, "1001", 2, kind="review_completed")
    assert build_note(session, inst, done).body.startswith("Regulars · Review completed on 1001.")
    with pytest.raises(ValueError, match="exception kind"):
        register_note_sentence(["applied"], lambda _s, _a: "")
