"""The outbox: every action in the action log reaches its ticket as one note, exactly once.

Each action gets a `Delivery` row in the transaction that writes it (see `plugin/models.py`),
and `enqueue_missing` sweeps up any action written some other way. Workers then:

1. claim due deliveries, at most one per ticket and only when no older action of that ticket
   is still on its way (so each ticket's notes arrive in order). A claim is an in-flight
   state with a lease and a token; on PostgreSQL `FOR UPDATE SKIP LOCKED` lets several
   workers claim side by side without ever taking the same row, and on SQLite one worker at a
   time holds the outbox's lease (`DeliveryLease`);
2. send the note through the helpdesk's `TicketWriter`, with the change a handled action
   makes to the ticket (a priority raised, a group, a tag). When an earlier attempt's outcome is
   unknown (it timed out, or its worker died and the lease ran out), the worker first looks
   for the action's marker on the ticket and counts the action delivered if it is there;
3. record the outcome, only if their claim still holds: delivered; retry later (5xx and
   timeouts back off exponentially with jitter, a 429 waits out its Retry-After, a spent call
   budget waits until it refills); or dead (the ticket is gone, the credentials are refused,
   or too many failures), to be retried from the console or the command line.

Delivery state is domain logic, free of Flask: the web and command-line layers pass in the
session factory, the writers and the clock.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, sessionmaker

from plugin.clock import utcnow
from plugin.config import Settings
from plugin.delivery.notes import build_note
from plugin.helpdesks import Connections, demo, freshdesk, helpdesk_for, zendesk
from plugin.helpdesks.interface import HelpdeskError, TicketNotFound, TicketWriter
from plugin.models import Action, Delivery, DeliveryLease, Installation

logger = logging.getLogger(__name__)

# The one lease row on SQLite, where a single worker delivers at a time.
OUTBOX_LEASE = "outbox"
# A 429's wait, or a spent budget's, gets up to this much more, so workers do not all resume
# in the same instant.
RATE_LIMIT_JITTER_SECONDS = 0.25
# Waiting with no error named: the budget said no without saying for how long.
DEFAULT_BUDGET_WAIT_SECONDS = 5.0
# A pending delivery this far past its time means no worker is running.
STUCK_AFTER = timedelta(minutes=10)
MAX_ERROR_LENGTH = 500
# How often a running worker sweeps for actions without a delivery row.
SWEEP_EVERY_SECONDS = 60.0


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    DEAD = "dead"


OPEN_STATUSES = (DeliveryStatus.PENDING.value, DeliveryStatus.IN_FLIGHT.value)


@dataclass(frozen=True)
class OutboxPolicy:
    """How hard and how long the outbox tries; see .env.example for the settings."""

    max_failures: int = 8
    backoff_seconds: float = 2.0
    # Retries wait at most this long, however many failures came before.
    max_backoff_seconds: float = 600.0
    lease_seconds: float = 120.0
    # After a call whose outcome is unknown (a timeout), the least wait before the marker
    # check: a helpdesk slow to answer may still be writing the note, and a check made before
    # it lands would send it twice.
    settle_seconds: float = 60.0
    concurrency: int = 4
    batch_size: int = 20
    poll_seconds: float = 1.0

    def backoff(self, failures: int, rng: random.Random) -> float:
        """The wait before retrying after the n-th failure: doubling, with half of it jitter."""
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** max(0, failures - 1))
        return rng.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class Claim:
    """A delivery a worker holds until `lease_expires_at`, by its `token`."""

    action_id: int
    installation_id: int
    ticket_id: str
    token: str
    outcome_unknown: bool
    lease_expires_at: datetime


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


WriterFactory = Callable[[Session, Installation], TicketWriter]


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
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(Delivery)
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
    """Take up to `limit` due deliveries, the oldest open one of each ticket, and commit.

    A delivery whose lease ran out is taken over with its outcome unknown: the worker that
    held it may have written the note before it died.
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
        sa.and_(Delivery.status == DeliveryStatus.PENDING.value, Delivery.next_attempt_at <= now),
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
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if updated.rowcount != 1:  # type: ignore[attr-defined]
            continue
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
            )
        )
    session.commit()
    return claims


def _same_token(token: str | None) -> sa.ColumnElement[bool]:
    if token is None:
        return Delivery.claim_token.is_(None)
    return Delivery.claim_token == token


# --- Sending ----------------------------------------------------------------------------


def attempt(session: Session, held: Claim, *, writers: WriterFactory) -> Outcome:
    """Send one claimed action's note (after a marker check when its outcome is unknown)."""
    action = session.get(Action, held.action_id)
    installation = session.get(Installation, held.installation_id)
    if action is None or installation is None:
        return Outcome(DeliveryStatus.DEAD, "gone", "the action or its installation was deleted")
    checked = False
    try:
        note = build_note(session, installation, action)
        writer = writers(session, installation)
        if held.outcome_unknown:
            if writer.has_note(ticket_id=action.ticket_id, marker=note.marker):
                return Outcome(DeliveryStatus.DELIVERED, found_on_ticket=True)
            checked = True
        writer.add_note(
            ticket_id=action.ticket_id,
            body=note.body,
            tags=note.tags,
            marker=note.marker,
            change=note.change,
        )
    except HelpdeskError as error:
        outcome = classify(error)
        # An unknown outcome stays unknown until a marker check has answered.
        still_unknown = outcome.outcome_unknown or (held.outcome_unknown and not checked)
        return Outcome(
            outcome.status,
            outcome.error_kind,
            outcome.error,
            outcome.retry_in_seconds,
            outcome.counts_as_failure,
            still_unknown,
        )
    except Exception as error:  # a bug must not stop the outbox; it retries and is parked
        logger.exception("outbox: action %s failed unexpectedly", held.action_id)
        return Outcome(
            DeliveryStatus.PENDING,
            "internal",
            f"Regulars failed while sending: {type(error).__name__}",
            counts_as_failure=True,
            outcome_unknown=True,
        )
    return Outcome(DeliveryStatus.DELIVERED)


def classify(error: HelpdeskError) -> Outcome:
    """Decide what a helpdesk error means for the delivery: wait, retry, or park it dead."""
    message = str(error)[:MAX_ERROR_LENGTH]
    if isinstance(error, TicketNotFound) or error.status == 404:
        return Outcome(DeliveryStatus.DEAD, "ticket_gone", message)
    if error.status in (401, 403):
        return Outcome(DeliveryStatus.DEAD, "credentials", message)
    if error.status == 429:
        return Outcome(
            DeliveryStatus.PENDING,
            "rate_limited",
            message,
            retry_in_seconds=error.retry_after or DEFAULT_BUDGET_WAIT_SECONDS,
        )
    if error.retryable and error.status is None and error.transport is None:
        # Not sent at all: the account's call budget is spent for now.
        return Outcome(
            DeliveryStatus.PENDING,
            "budget",
            message,
            retry_in_seconds=error.retry_after or DEFAULT_BUDGET_WAIT_SECONDS,
        )
    if not error.retryable:
        return Outcome(DeliveryStatus.DEAD, "refused", message)
    if error.transport is not None:
        # No answer: a timeout or a broken connection may have come after the write.
        unknown = error.transport in ("timeout", "broken", "connection")
        kind = "timeout" if error.transport == "timeout" else "connection"
        return Outcome(
            DeliveryStatus.PENDING,
            kind,
            message,
            counts_as_failure=True,
            outcome_unknown=unknown,
        )
    # A 5xx (or a 409 conflict). A 503 turns the call away before it is handled; after any
    # other 5xx the helpdesk may have applied part of it before failing.
    return Outcome(
        DeliveryStatus.PENDING,
        "server_error",
        message,
        counts_as_failure=True,
        outcome_unknown=error.status is not None and error.status >= 500 and error.status != 503,
    )


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
            Delivery.action_id == held.action_id,
            Delivery.status == DeliveryStatus.IN_FLIGHT.value,
            Delivery.claim_token == held.token,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if updated.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        logger.warning("outbox: lost the claim on action %s; leaving it", held.action_id)
        return False
    session.commit()
    return True


def _failures(session: Session, held: Claim) -> int:
    value = session.scalar(sa.select(Delivery.failures).where(Delivery.action_id == held.action_id))
    return int(value or 0)


# --- Writers ----------------------------------------------------------------------------


def writers_for(connections: Connections) -> WriterFactory:
    """Return the factory that gives each installation its helpdesk's ticket writer."""

    def writer(session: Session, installation: Installation) -> TicketWriter:
        client = helpdesk_for(installation, session, connections=connections)
        if isinstance(
            client, demo.DemoHelpdesk | zendesk.ZendeskClient | freshdesk.FreshdeskClient
        ):
            return client
        raise HelpdeskError(
            f"Regulars cannot write notes to {installation.platform} tickets yet",
            retryable=False,
        )

    return writer


# --- The worker -------------------------------------------------------------------------


@dataclass
class WorkerStats:
    """What one worker did, for its log line and the fault test."""

    claimed: int = 0
    delivered: int = 0
    found_on_ticket: int = 0
    retried: dict[str, int] = field(default_factory=dict)
    dead: int = 0
    lost_claims: int = 0


class OutboxWorker:
    """Claim, send and record, batch after batch, until stopped.

    `sessions` opens sessions on the service's database; `writers` gives each installation's
    ticket writer; `clock` and `rng` are the wall clock and the jitter's randomness.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        writers: WriterFactory,
        *,
        policy: OutboxPolicy,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._sessions = sessions
        self._writers = writers
        self.policy = policy
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self._clock = clock
        self._rng = rng or random.Random()
        self.stop_event = threading.Event()
        self.stats = WorkerStats()
        self._stats_lock = threading.Lock()
        self._single_worker = sessions.kw["bind"].dialect.name != "postgresql"
        self._last_sweep: datetime | None = None

    def stop(self) -> None:
        self.stop_event.set()

    def run(self, *, until_empty: bool = False) -> WorkerStats:
        """Deliver until `stop()` (or, with `until_empty`, until nothing is left to send)."""
        with ThreadPoolExecutor(
            max_workers=self.policy.concurrency, thread_name_prefix="regulars-outbox"
        ) as pool:
            while not self.stop_event.is_set():
                if not self.hold_lease():
                    self.stop_event.wait(self.policy.poll_seconds)
                    continue
                sent = self.run_once(pool)
                if sent:
                    continue
                if until_empty and not self.open_count():
                    break
                self.stop_event.wait(self.idle_wait())
        self.release_lease()
        return self.stats

    def run_once(self, pool: ThreadPoolExecutor | None = None) -> int:
        """Claim one batch and deliver it; return how many actions were attempted."""
        now = self._clock()
        with self._sessions() as session:
            if self._last_sweep is None or (now - self._last_sweep).total_seconds() >= (
                SWEEP_EVERY_SECONDS
            ):
                added = enqueue_missing(session, now=now)
                if added:
                    logger.info("outbox: queued %d actions written without a delivery", added)
                self._last_sweep = now
            claims = claim(
                session,
                worker_id=self.worker_id,
                now=now,
                policy=self.policy,
                limit=self.policy.batch_size,
            )
        with self._stats_lock:
            self.stats.claimed += len(claims)
        if pool is None or len(claims) <= 1:
            for held in claims:
                self._deliver(held)
        else:
            list(pool.map(self._deliver, claims))
        return len(claims)

    def _deliver(self, held: Claim) -> None:
        with self._sessions() as session:
            outcome = attempt(session, held, writers=self._writers)
            # No lock around this: a thread holding SQLite's write lock (the demo's note)
            # must never wait for one another thread holds while it waits for SQLite.
            # random.Random's draws are safe to share between threads.
            kept = record(
                session, held, outcome, now=self._clock(), policy=self.policy, rng=self._rng
            )
        self._count(outcome, kept=kept, action_id=held.action_id)

    def _count(self, outcome: Outcome, *, kept: bool, action_id: int) -> None:
        with self._stats_lock:
            stats = self.stats
            if not kept:
                stats.lost_claims += 1
            elif outcome.status is DeliveryStatus.DELIVERED:
                stats.delivered += 1
                stats.found_on_ticket += 1 if outcome.found_on_ticket else 0
            else:
                kind = outcome.error_kind or "unknown"
                stats.retried[kind] = stats.retried.get(kind, 0) + 1
                if outcome.status is DeliveryStatus.DEAD:
                    stats.dead += 1
                    logger.warning("outbox: action %s is dead: %s", action_id, outcome.error)

    def idle_wait(self) -> float:
        """Seconds to sleep when nothing was due: until the next retry, at most a poll."""
        with self._sessions() as session:
            next_due = session.scalar(
                sa.select(sa.func.min(Delivery.next_attempt_at)).where(
                    Delivery.status == DeliveryStatus.PENDING.value
                )
            )
        if next_due is None:
            return self.policy.poll_seconds
        wait = (next_due - self._clock()).total_seconds()
        return min(self.policy.poll_seconds, max(0.02, wait))

    def open_count(self) -> int:
        """Deliveries not yet delivered or dead."""
        with self._sessions() as session:
            return int(
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(Delivery)
                    .where(Delivery.status.in_(OPEN_STATUSES))
                )
                or 0
            )

    # One worker at a time on SQLite.

    def hold_lease(self) -> bool:
        """Take or renew the outbox's lease; always True where several workers may run."""
        if not self._single_worker:
            return True
        now = self._clock()
        expires = now + timedelta(seconds=self.policy.lease_seconds)
        with self._sessions() as session:
            insert = sqlite.insert(DeliveryLease).values(name=OUTBOX_LEASE)
            session.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
            updated = session.execute(
                sa.update(DeliveryLease)
                .where(
                    DeliveryLease.name == OUTBOX_LEASE,
                    sa.or_(
                        DeliveryLease.holder.is_(None),
                        DeliveryLease.holder == self.worker_id,
                        DeliveryLease.expires_at <= now,
                    ),
                )
                .values(holder=self.worker_id, expires_at=expires)
            )
            held = bool(updated.rowcount == 1)  # type: ignore[attr-defined]
            session.commit()
            return held

    def release_lease(self) -> None:
        if not self._single_worker:
            return
        with self._sessions() as session:
            session.execute(
                sa.update(DeliveryLease)
                .where(DeliveryLease.name == OUTBOX_LEASE, DeliveryLease.holder == self.worker_id)
                .values(holder=None, expires_at=None)
            )
            session.commit()


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
        conditions.append(Delivery.action_id.in_(list(action_ids)))
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
    )
