"""The outbox: every action in the action log reaches its ticket as one note, exactly once.

This module is the queue's state machine; the worker that sends the notes and runs the loop is
`plugin/delivery/worker.py`. Each action gets a `Delivery` row in the transaction that writes it
(see `plugin/models/delivery.py`), and `enqueue_missing` sweeps up any action written some other
way. Then:

1. workers claim due deliveries, at most one note per ticket and only when no older action of
   that ticket is still on its way (so each ticket's notes arrive in order). A new action is
   held for the undo window (`hold_seconds`, the agent may still take it back) and holds its
   ticket's other pending actions with it, at most `gather_seconds` from the first: then all
   of them leave as one note, under the first one's marker (`note_action_id` keeps the group
   together through retries). A claim is an in-flight
   state with a lease and a token; on PostgreSQL `FOR UPDATE SKIP LOCKED` lets several
   workers claim side by side without ever taking the same row, and on SQLite one worker at a
   time holds the outbox's lease (`DeliveryLease`);
2. a worker sends the note through the helpdesk's `TicketWriter` (`plugin.delivery.worker`);
3. the worker records the outcome, only if its claim still holds: delivered; retry later (5xx
   and timeouts back off exponentially with jitter, a 429 waits out its Retry-After, a spent
   call budget waits until it refills); or dead (the ticket is gone, the credentials are
   refused, or too many failures), to be retried from the console or the command line
   (`counts`, `problems` and `retry`).

Delivery state is domain logic, free of Flask: the web and command-line layers pass in the
session factory, the writers and the clock.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from plugin import db
from plugin.config import Settings
from plugin.models import Action, Delivery

logger = logging.getLogger(__name__)

# A 429's wait, or a spent budget's, gets up to this much more, so workers do not all resume
# in the same instant.
RATE_LIMIT_JITTER_SECONDS = 0.25
# A pending delivery this far past its time means no worker is running.
STUCK_AFTER = timedelta(minutes=10)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    DEAD = "dead"
    # Taken back by the agent within the undo window: never sent.
    UNDONE = "undone"


OPEN_STATUSES = (DeliveryStatus.PENDING.value, DeliveryStatus.IN_FLIGHT.value)


@dataclass(frozen=True)
class OutboxPolicy:
    """How hard and how long the outbox tries; see .env.example for the settings."""

    max_failures: int = 8
    backoff_seconds: float = 2.0
    # Retries wait at most this long, however many failures came before.
    max_backoff_seconds: float = 600.0
    # Renewed by the worker's heartbeat while it runs (`OutboxWorker.heartbeat`).
    lease_seconds: float = 10.0
    # After a call whose outcome is unknown (a timeout), the least wait before the marker
    # check: a helpdesk slow to answer may still be writing the note, and a check made before
    # it lands would send it twice.
    settle_seconds: float = 60.0
    concurrency: int = 4
    batch_size: int = 20
    poll_seconds: float = 1.0
    # A new action waits this long before it is sent (the agent's undo window), and keeps its
    # ticket's other pending actions waiting with it, so they leave as one note; never more
    # than `gather_seconds` after the first of them.
    hold_seconds: float = 0.0
    gather_seconds: float = 120.0

    def backoff(self, failures: int, rng: random.Random) -> float:
        """The wait before retrying after the n-th failure: doubling, with half of it jitter."""
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** max(0, failures - 1))
        return rng.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class Claim:
    """A note a worker holds until `lease_expires_at`, by its `token`.

    `action_id` leads the note and names its marker; `action_ids` are every action the note
    carries, the lead first (empty means the lead alone).
    """

    action_id: int
    installation_id: int
    ticket_id: str
    token: str
    outcome_unknown: bool
    lease_expires_at: datetime
    action_ids: tuple[int, ...] = ()

    @property
    def actions(self) -> tuple[int, ...]:
        """The actions this note carries, its lead first."""
        return self.action_ids or (self.action_id,)


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt, as the worker records it."""

    status: DeliveryStatus
    # The cause when it did not arrive: server_error, timeout, rate_limited, budget, ...
    error_kind: str | None = None
    error: str | None = None
    retry_in_seconds: float = 0.0
    counts_as_failure: bool = False
    # The note may be on the ticket now: check before the next attempt sends it again.
    outcome_unknown: bool = False
    # Delivered by finding the marker already on the ticket, not by sending it now.
    found_on_ticket: bool = False


# --- Enqueueing -------------------------------------------------------------------------


def enqueue_missing(session: Session, *, now: datetime) -> int:
    """Give a delivery row to every action that has none; return how many were added.

    Actions written through the ORM have theirs already; this catches the rest (rows written
    by raw SQL, and actions from before the outbox existed). Two sweeps at once are harmless.
    """
    missing = (
        sa.select(
            Action.id,
            Action.installation_id,
            Action.ticket_id,
            sa.literal(DeliveryStatus.PENDING.value),
            sa.literal(0),
            sa.literal(0),
            sa.literal(now),
            sa.false(),
            sa.literal(now),
            sa.literal(now),
        )
        .where(~sa.exists().where(Delivery.action_id == Action.id))
        .order_by(Action.id)
    )
    columns = [
        "action_id",
        "installation_id",
        "ticket_id",
        "status",
        "attempts",
        "failures",
        "next_attempt_at",
        "outcome_unknown",
        "created_at",
        "updated_at",
    ]
    statement = (
        db.dialect_insert(session.get_bind().dialect.name, Delivery)
        .from_select(columns, missing)
        .on_conflict_do_nothing(index_elements=["action_id"])
    )
    added = len(session.execute(statement.returning(Delivery.action_id)).all())
    session.commit()
    return added


# --- Claiming ---------------------------------------------------------------------------


def claim(
    session: Session, *, worker_id: str, now: datetime, policy: OutboxPolicy, limit: int
) -> list[Claim]:
    """Take up to `limit` due notes, the oldest open action of each ticket leading, and commit.

    A first claim gathers the ticket's pending actions whose hold is over; a retry carries the
    same ones. A note whose lease ran out is taken over with its outcome unknown: the worker
    that held it may have written it before it died.
    """
    older = aliased(Delivery)
    older_still_open = (
        sa.exists()
        .where(
            older.installation_id == Delivery.installation_id,
            older.ticket_id == Delivery.ticket_id,
            older.action_id < Delivery.action_id,
            older.status.in_(OPEN_STATUSES),
        )
        .correlate(Delivery)
    )
    due = sa.or_(
        sa.and_(
            Delivery.status == DeliveryStatus.PENDING.value,
            Delivery.next_attempt_at <= now,
            _hold_over(now, policy),
        ),
        sa.and_(
            Delivery.status == DeliveryStatus.IN_FLIGHT.value, Delivery.lease_expires_at <= now
        ),
    )
    query = (
        sa.select(
            Delivery.action_id,
            Delivery.installation_id,
            Delivery.ticket_id,
            Delivery.status,
            Delivery.claim_token,
            Delivery.outcome_unknown,
            Delivery.note_action_id,
        )
        .where(due, ~older_still_open)
        .order_by(Delivery.next_attempt_at, Delivery.action_id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Rows another worker is claiming right now are skipped, never waited for or shared.
        query = query.with_for_update(skip_locked=True, of=Delivery)
    lease_expires_at = now + timedelta(seconds=policy.lease_seconds)
    claims: list[Claim] = []
    seen_tickets: set[tuple[int, str]] = set()
    for row in session.execute(query).all():
        ticket = (row.installation_id, row.ticket_id)
        if ticket in seen_tickets:
            continue  # the older one of the same ticket goes first
        seen_tickets.add(ticket)
        taken_over = row.status == DeliveryStatus.IN_FLIGHT.value
        token = uuid.uuid4().hex
        unknown = bool(row.outcome_unknown) or taken_over
        # Conditional on the state just read: on SQLite, the guard against a second claimer.
        updated = session.execute(
            sa.update(Delivery)
            .where(
                Delivery.action_id == row.action_id,
                Delivery.status == row.status,
                _same_token(row.claim_token),
            )
            .values(
                status=DeliveryStatus.IN_FLIGHT.value,
                claim_token=token,
                lease_expires_at=lease_expires_at,
                attempts=Delivery.attempts + 1,
                outcome_unknown=unknown,
                note_action_id=row.action_id,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if updated.rowcount != 1:  # type: ignore[attr-defined]
            continue
        action_ids = _take_the_rest(session, row, token, lease_expires_at, unknown, now, policy)
        if taken_over:
            logger.warning(
                "outbox: action %s's lease ran out; %s takes it over", row.action_id, worker_id
            )
        claims.append(
            Claim(
                action_id=row.action_id,
                installation_id=row.installation_id,
                ticket_id=row.ticket_id,
                token=token,
                outcome_unknown=unknown,
                lease_expires_at=lease_expires_at,
                action_ids=action_ids,
            )
        )
    session.commit()
    return claims


# A due delivery as `claim` reads it: action, installation, ticket, status, token, unknown, note.
_DueRow = sa.Row[int, int, str, str, str | None, bool, int | None]


def _hold_over(now: datetime, policy: OutboxPolicy) -> sa.ColumnElement[bool]:
    """A pending action's hold is over: its undo window has passed, and no newer action of its
    ticket is still in its own, or the ticket waited `gather_seconds`. Retries do not wait."""
    if policy.hold_seconds <= 0:
        return sa.true()
    in_window = now - timedelta(seconds=policy.hold_seconds)
    newer = aliased(Delivery)
    newer_in_window = (
        sa.exists()
        .where(
            newer.installation_id == Delivery.installation_id,
            newer.ticket_id == Delivery.ticket_id,
            newer.status == DeliveryStatus.PENDING.value,
            newer.note_action_id.is_(None),
            newer.created_at > in_window,
        )
        .correlate(Delivery)
    )
    return sa.or_(
        Delivery.note_action_id.is_not(None),
        sa.and_(
            Delivery.created_at <= in_window,
            sa.or_(
                ~newer_in_window,
                Delivery.created_at <= now - timedelta(seconds=policy.gather_seconds),
            ),
        ),
    )


def _take_the_rest(
    session: Session,
    lead: _DueRow,
    token: str,
    lease_expires_at: datetime,
    unknown: bool,
    now: datetime,
    policy: OutboxPolicy,
) -> tuple[int, ...]:
    """Claim the other actions of the lead's note with it; return all of them, lead first.

    The first claim gathers the ticket's pending actions whose hold is over (one undone is not
    pending any more); later claims take the same ones again."""
    if lead.note_action_id is not None:
        members = sa.and_(
            Delivery.note_action_id == lead.action_id,
            Delivery.status.in_(OPEN_STATUSES),
        )
    elif lead.status == DeliveryStatus.PENDING.value and policy.hold_seconds > 0:
        members = sa.and_(
            Delivery.status == DeliveryStatus.PENDING.value,
            Delivery.note_action_id.is_(None),
            Delivery.next_attempt_at <= now,
            Delivery.created_at <= now - timedelta(seconds=max(0.0, policy.hold_seconds)),
        )
    else:  # no hold, nothing to gather; or taken over from before notes were gathered
        return (lead.action_id,)
    session.execute(
        sa.update(Delivery)
        .where(
            Delivery.installation_id == lead.installation_id,
            Delivery.ticket_id == lead.ticket_id,
            Delivery.action_id > lead.action_id,
            members,
        )
        .values(
            status=DeliveryStatus.IN_FLIGHT.value,
            claim_token=token,
            lease_expires_at=lease_expires_at,
            attempts=Delivery.attempts + 1,
            outcome_unknown=unknown,
            note_action_id=lead.action_id,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    taken = session.scalars(
        sa.select(Delivery.action_id)
        .where(
            Delivery.installation_id == lead.installation_id,
            Delivery.ticket_id == lead.ticket_id,
            Delivery.claim_token == token,
        )
        .order_by(Delivery.action_id)
    ).all()
    return tuple(taken)


def _same_token(token: str | None) -> sa.ColumnElement[bool]:
    if token is None:
        return Delivery.claim_token.is_(None)
    return Delivery.claim_token == token


# --- Recording outcomes -----------------------------------------------------------------


def record(
    session: Session,
    held: Claim,
    outcome: Outcome,
    *,
    now: datetime,
    policy: OutboxPolicy,
    rng: random.Random,
) -> bool:
    """Write the outcome if the claim still holds and commit; False if another took it over.

    A worker whose lease ran out must not overwrite its successor's state; its work is
    rolled back (which on the demo helpdesk also undoes the note it stored).
    """
    values: dict[str, object] = {
        "claim_token": None,
        "lease_expires_at": None,
        "updated_at": now,
    }
    if outcome.status is DeliveryStatus.DELIVERED:
        values |= {
            "status": DeliveryStatus.DELIVERED.value,
            "delivered_at": now,
            "outcome_unknown": False,
        }
    elif outcome.status is DeliveryStatus.DEAD:
        values |= {
            "status": DeliveryStatus.DEAD.value,
            "last_error_kind": outcome.error_kind,
            "last_error": outcome.error,
            "failures": Delivery.failures + 1,
            "outcome_unknown": outcome.outcome_unknown,
        }
    else:
        failures = _failures(session, held) + (1 if outcome.counts_as_failure else 0)
        if outcome.counts_as_failure and failures >= policy.max_failures:
            status, wait = DeliveryStatus.DEAD, 0.0
        elif outcome.counts_as_failure:
            status, wait = DeliveryStatus.PENDING, policy.backoff(failures, rng)
            if outcome.outcome_unknown:
                wait = max(wait, policy.settle_seconds)
            # A shop that names its wait (a 429's Retry-After, a throttle) gets at least that.
            wait = max(wait, outcome.retry_in_seconds)
        else:
            status = DeliveryStatus.PENDING
            wait = outcome.retry_in_seconds + rng.uniform(0, RATE_LIMIT_JITTER_SECONDS)
        if outcome.error_kind == "budget":
            # Nothing was sent: the claim was not an attempt.
            values["attempts"] = Delivery.attempts - 1
        values |= {
            "status": status.value,
            "failures": failures,
            "next_attempt_at": now + timedelta(seconds=wait),
            "last_error_kind": outcome.error_kind,
            "last_error": outcome.error,
            "outcome_unknown": outcome.outcome_unknown,
        }
    updated = session.execute(
        sa.update(Delivery)
        .where(
            Delivery.action_id.in_(held.actions),
            Delivery.status == DeliveryStatus.IN_FLIGHT.value,
            Delivery.claim_token == held.token,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if updated.rowcount != len(held.actions):  # type: ignore[attr-defined]
        session.rollback()
        logger.warning("outbox: lost the claim on action %s; leaving it", held.action_id)
        return False
    session.commit()
    return True


def _failures(session: Session, held: Claim) -> int:
    value = session.scalar(sa.select(Delivery.failures).where(Delivery.action_id == held.action_id))
    return int(value or 0)


# --- Looking and retrying ---------------------------------------------------------------


@dataclass(frozen=True)
class OutboxCounts:
    pending: int
    in_flight: int
    delivered: int
    dead: int
    # Pending ones that have failed at least once, and open ones that no worker is moving.
    retrying: int
    stuck: int


def counts(session: Session, *, now: datetime, installation_id: int | None = None) -> OutboxCounts:
    """Count deliveries by state, for one installation or (command line) all of them."""
    scope = [] if installation_id is None else [Delivery.installation_id == installation_id]
    by_status = dict(
        session.execute(
            sa.select(Delivery.status, sa.func.count()).where(*scope).group_by(Delivery.status)
        ).all()
    )
    retrying = session.scalar(
        sa.select(sa.func.count()).where(
            *scope, Delivery.status == DeliveryStatus.PENDING.value, Delivery.failures > 0
        )
    )
    stuck = session.scalar(sa.select(sa.func.count()).where(*scope, _stuck(now)))
    return OutboxCounts(
        pending=int(by_status.get(DeliveryStatus.PENDING.value, 0)),
        in_flight=int(by_status.get(DeliveryStatus.IN_FLIGHT.value, 0)),
        delivered=int(by_status.get(DeliveryStatus.DELIVERED.value, 0)),
        dead=int(by_status.get(DeliveryStatus.DEAD.value, 0)),
        retrying=int(retrying or 0),
        stuck=int(stuck or 0),
    )


def _stuck(now: datetime) -> sa.ColumnElement[bool]:
    """Open deliveries no worker is moving: long overdue, or held past an expired lease."""
    return sa.or_(
        sa.and_(
            Delivery.status == DeliveryStatus.PENDING.value,
            Delivery.next_attempt_at <= now - STUCK_AFTER,
        ),
        sa.and_(
            Delivery.status == DeliveryStatus.IN_FLIGHT.value,
            Delivery.lease_expires_at <= now - STUCK_AFTER,
        ),
    )


@dataclass(frozen=True)
class Problem:
    """A delivery the console shows: dead, retrying or stuck, with its action."""

    delivery: Delivery
    action: Action
    stuck: bool


def problems(
    session: Session, installation_id: int, *, now: datetime, limit: int = 50
) -> list[Problem]:
    """The installation's dead deliveries and those failing or stuck, oldest action first."""
    stuck = _stuck(now)
    rows = session.execute(
        sa.select(Delivery, Action, stuck.label("stuck"))
        .join(Action, Action.id == Delivery.action_id)
        .where(
            Delivery.installation_id == installation_id,
            sa.or_(
                Delivery.status == DeliveryStatus.DEAD.value,
                sa.and_(Delivery.status.in_(OPEN_STATUSES), Delivery.failures > 0),
                stuck,
            ),
        )
        # Dead first: they wait for someone; the others may still get through on their own.
        .order_by(Delivery.status != DeliveryStatus.DEAD.value, Delivery.action_id)
        .limit(limit)
    ).all()
    return [Problem(delivery, action, bool(is_stuck)) for delivery, action, is_stuck in rows]


def retry(
    session: Session,
    *,
    now: datetime,
    installation_id: int | None = None,
    action_ids: Sequence[int] | None = None,
    dead_only: bool = True,
) -> int:
    """Send dead (or, with `dead_only=False`, waiting) deliveries again now; return how many.

    The failure count starts over; an unknown outcome stays unknown, so the marker is still
    checked first. Scoped to one installation whenever one is given.
    """
    statuses = [DeliveryStatus.DEAD.value]
    if not dead_only:
        statuses.append(DeliveryStatus.PENDING.value)
    conditions: list[sa.ColumnElement[bool]] = [Delivery.status.in_(statuses)]
    if installation_id is not None:
        conditions.append(Delivery.installation_id == installation_id)
    if action_ids is not None:
        # A note goes again whole: the other actions it carries come with the one named.
        notes = sa.select(Delivery.note_action_id).where(
            Delivery.action_id.in_(list(action_ids)), Delivery.note_action_id.is_not(None)
        )
        conditions.append(
            sa.or_(Delivery.action_id.in_(list(action_ids)), Delivery.note_action_id.in_(notes))
        )
    updated = session.execute(
        sa.update(Delivery)
        .where(*conditions)
        .values(
            status=DeliveryStatus.PENDING.value,
            failures=0,
            next_attempt_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    count = int(updated.rowcount or 0)  # type: ignore[attr-defined]
    session.commit()
    return count


def policy_from(settings: Settings) -> OutboxPolicy:
    """Build the policy from the service's settings."""
    return OutboxPolicy(
        max_failures=settings.outbox_max_failures,
        backoff_seconds=settings.outbox_backoff_ms / 1000,
        max_backoff_seconds=float(settings.outbox_backoff_max_seconds),
        lease_seconds=float(settings.outbox_lease_seconds),
        settle_seconds=float(settings.outbox_settle_seconds),
        concurrency=settings.outbox_concurrency,
        hold_seconds=float(settings.undo_seconds),
        gather_seconds=float(settings.outbox_gather_seconds),
    )
