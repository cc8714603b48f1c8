"""The outbox's hold: an action waits out the agent's undo window, a ticket's actions taken
close together leave as one note, and an action undone in time is never sent.

Runs on SQLite and PostgreSQL (the `storage_app` fixture), with a scripted helpdesk.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from plugin import db
from plugin.delivery import outbox as delivery
from plugin.delivery.notes import marker_for
from plugin.delivery.outbox import Claim, OutboxPolicy
from plugin.delivery.worker import attempt
from plugin.goodwill.errors import ActionRefused
from plugin.goodwill.undo import undo_action
from plugin.helpdesks.interface import HelpdeskError
from plugin.models import Action, Delivery, Installation
from plugin.reviews.actions import ReviewActionKind
from tests.delivery.test_outbox import ScriptedWriter, writers

HOLD = OutboxPolicy(max_failures=3, lease_seconds=30.0, hold_seconds=10.0, gather_seconds=120.0)


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    sessions: sessionmaker[Session] = db.database(storage_app).sessions
    with sessions() as session:
        yield session


class Visit:
    """An agent's visit to tickets: actions taken at given seconds after the visit starts."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.inst = Installation(platform="demo", account="acme", display_name="Acme")
        session.add(self.inst)
        session.commit()
        self.start = datetime(2026, 12, 1, 9, 0, 0)
        self.count = 0

    def act(self, ticket_id: str, at: float, *, kind: str = "dismissed") -> Action:
        self.count += 1
        when = self.start + timedelta(seconds=at)
        row = Action(
            installation_id=self.inst.id,
            ticket_id=ticket_id,
            requester_id="90001",
            agent_id="80001",
            kind=kind,
            exception_key="free_shipping" if not kind.startswith("review") else "",
            amount_cents=None,
            currency="USD",
            reason_code="not_needed" if not kind.startswith("review") else None,
            text="",
            idempotency_key=f"visit-{ticket_id}-{self.count:04d}",
            created_at=when,
        )
        self.session.add(row)
        self.session.commit()
        # The outbox holds from when the action was queued: the same moment here.
        self.session.execute(
            sa.update(Delivery)
            .where(Delivery.action_id == row.id)
            .values(created_at=when, next_attempt_at=when)
        )
        self.session.commit()
        return row

    def at(self, seconds: float) -> datetime:
        return self.start + timedelta(seconds=seconds)

    def claim(self, seconds: float) -> list[Claim]:
        return delivery.claim(
            self.session, worker_id="test", now=self.at(seconds), policy=HOLD, limit=50
        )

    def send(self, held: Claim, writer: ScriptedWriter, seconds: float) -> None:
        outcome = attempt(self.session, held, writers=writers(writer))
        delivery.record(
            self.session, held, outcome, now=self.at(seconds), policy=HOLD, rng=random.Random(1)
        )

    def statuses(self, *actions: Action) -> list[str]:
        self.session.expire_all()
        return [self.session.get(Delivery, a.id).status for a in actions]  # type: ignore[union-attr]


def test_a_visit_with_three_actions_and_a_completed_review_makes_one_note_each(
    session: Session,
) -> None:
    visit, writer = Visit(session), ScriptedWriter()
    applied = [visit.act("1001", at) for at in (0, 4, 8)]
    assert visit.claim(17) == [], "the last action's undo window still holds the ticket"
    (note,) = visit.claim(18)
    assert note.actions == tuple(a.id for a in applied)
    visit.send(note, writer, 18)
    assert writer.notes == {"1001": [marker_for(applied[0])]}
    assert visit.statuses(*applied) == ["delivered"] * 3

    review = [
        visit.act("1001", 60 + at, kind=kind)
        for at, kind in (
            (0, ReviewActionKind.CHECKED),
            (3, ReviewActionKind.CHECKED),
            (6, ReviewActionKind.CHECKED),
            (7, ReviewActionKind.COMPLETED),
        )
    ]
    (note,) = visit.claim(80)
    assert note.actions == tuple(a.id for a in review)
    visit.send(note, writer, 80)
    assert writer.notes["1001"] == [marker_for(applied[0]), marker_for(review[0])]
    assert visit.statuses(*review) == ["delivered"] * 4


def test_a_gathered_note_lists_each_action_under_one_heading(session: Session) -> None:
    from plugin.delivery.notes import build_gathered_note

    visit = Visit(session)
    actions = [visit.act("1001", at) for at in (0, 2, 4)]
    note = build_gathered_note(session, visit.inst, actions)
    assert note.body.startswith("Regulars · 3 actions on this ticket\n")
    assert note.marker == marker_for(actions[0])
    for action in actions:
        assert note.body.count(marker_for(action)) == 1
    assert note.tags == ["regulars", "regulars_dismissed"]


def test_a_busy_ticket_is_held_at_most_the_gathering_bound(session: Session) -> None:
    visit = Visit(session)
    first = visit.act("1001", 0)
    for at in range(5, 130, 5):
        visit.act("1001", at)
    assert visit.claim(119) == []
    (note,) = visit.claim(120)
    assert note.action_id == first.id
    # Only those whose own undo window is over go: the newest may still be undone.
    assert len(note.actions) == len(range(5, 111, 5)) + 1


def test_other_tickets_are_not_held_by_a_busy_one(session: Session) -> None:
    visit = Visit(session)
    visit.act("1001", 0)
    quiet = visit.act("2002", 0)
    visit.act("1001", 9)
    claims = visit.claim(11)
    assert [c.action_id for c in claims] == [quiet.id]


def test_undo_within_the_window_delivers_nothing(session: Session) -> None:
    visit, writer = Visit(session), ScriptedWriter()
    kept = visit.act("1001", 0)
    undone = visit.act("1001", 2)
    taken_back = undo_action(
        session,
        visit.inst,
        idempotency_key=undone.idempotency_key,
        agent_id="80001",
        now=visit.at(5),
        window_seconds=10,
    )
    assert taken_back.undone_at == visit.at(5)
    (note,) = visit.claim(12)
    assert note.actions == (kept.id,)
    visit.send(note, writer, 12)
    assert visit.claim(300) == []
    assert visit.statuses(kept, undone) == ["delivered", "undone"]
    assert writer.notes == {"1001": [marker_for(kept)]}
    assert delivery.counts(session, now=visit.at(300)).pending == 0


def test_undo_is_refused_once_the_window_passed_or_the_note_left(session: Session) -> None:
    visit = Visit(session)
    late = visit.act("1001", 0)
    with pytest.raises(ActionRefused):
        undo_action(
            session,
            visit.inst,
            idempotency_key=late.idempotency_key,
            agent_id="80001",
            now=visit.at(11),
            window_seconds=10,
        )
    claimed = visit.act("2002", 100)
    held = visit.claim(111)
    assert {c.action_id for c in held} == {late.id, claimed.id}
    with pytest.raises(ActionRefused):
        undo_action(
            session,
            visit.inst,
            idempotency_key=claimed.idempotency_key,
            agent_id="80001",
            now=visit.at(105),  # a clock behind the worker's: the claim still wins
            window_seconds=10,
        )
    assert visit.statuses(claimed) == ["in_flight"]


def test_a_gathered_note_retried_after_a_timeout_is_found_by_its_one_marker(
    session: Session,
) -> None:
    visit = Visit(session)
    writer = ScriptedWriter(write_then_timeout=True)
    actions = [visit.act("1001", at) for at in (0, 3)]
    (first,) = visit.claim(13)
    visit.send(first, writer, 13)
    assert visit.statuses(*actions) == ["pending", "pending"]
    # A newer action waits for the next note: the retried one carries the same two.
    later = visit.act("1001", 20)
    (again,) = visit.claim(13 + HOLD.settle_seconds + 60)
    assert again.actions == first.actions
    visit.send(again, writer, 200)
    assert writer.checks == 1
    assert writer.notes == {"1001": [marker_for(actions[0])]}
    assert visit.statuses(*actions, later) == ["delivered", "delivered", "pending"]
    (rest,) = visit.claim(201)
    assert rest.actions == (later.id,)


def test_a_dead_note_is_retried_whole(session: Session) -> None:
    visit = Visit(session)
    writer = ScriptedWriter(errors=[HelpdeskError("refused", retryable=False, status=422)])
    actions = [visit.act("1001", at) for at in (0, 3)]
    (held,) = visit.claim(13)
    visit.send(held, writer, 13)
    assert visit.statuses(*actions) == ["dead", "dead"]
    assert delivery.retry(session, now=visit.at(20), action_ids=[actions[1].id]) == 2
    (again,) = visit.claim(20)
    assert again.actions == held.actions
