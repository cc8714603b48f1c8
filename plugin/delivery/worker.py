"""The outbox's worker: sends each claimed note (one action's, or a ticket's gathered actions')
to its ticket, batch after batch.

The queue's states (claiming, recording outcomes, retrying) are in `plugin/delivery/outbox.py`;
this module sends through the helpdesk's `TicketWriter`, with the change a handled action makes
to the ticket (a priority raised, a group, a tag), and says what each helpdesk error means for
the delivery. When an earlier attempt's outcome is unknown (it timed out, or its worker died and
the lease ran out), the worker first looks for the action's marker on the ticket and counts the
action delivered if it is there. On SQLite one worker at a time holds the outbox's lease.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session, sessionmaker

from plugin.clock import utcnow
from plugin.delivery.notes import build_gathered_note
from plugin.delivery.outbox import (
    OPEN_STATUSES,
    Claim,
    DeliveryStatus,
    OutboxPolicy,
    Outcome,
    claim,
    enqueue_missing,
    record,
)
from plugin.gestures.giving import ShopFactory, settle_gestures
from plugin.helpdesks import Connections, demo, freshdesk, helpdesk_for, zendesk
from plugin.helpdesks.interface import HelpdeskError, TicketNotFound, TicketWriter
from plugin.models import Action, Delivery, DeliveryLease, Installation

logger = logging.getLogger(__name__)

# The one lease row on SQLite, where a single worker delivers at a time.
OUTBOX_LEASE = "outbox"
# Waiting with no error named: the budget said no without saying for how long.
DEFAULT_BUDGET_WAIT_SECONDS = 5.0
MAX_ERROR_LENGTH = 500
# How often a running worker sweeps for actions without a delivery row.
SWEEP_EVERY_SECONDS = 60.0

# Gives an installation its helpdesk's ticket writer, on the worker's session.
WriterFactory = Callable[[Session, Installation], TicketWriter]


# --- Sending ----------------------------------------------------------------------------


def attempt(
    session: Session,
    held: Claim,
    *,
    writers: WriterFactory,
    shops: ShopFactory | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Outcome:
    """Give the note's gestures in the shop, then send the note (after a marker check when its
    outcome is unknown). The note is written only once every gesture is settled, so it says
    what was given or refused; a shop that does not answer sends the note back to wait."""
    found = session.scalars(
        sa.select(Action)
        .where(Action.id.in_(held.actions), Action.installation_id == held.installation_id)
        .order_by(Action.id)
    ).all()
    installation = session.get(Installation, held.installation_id)
    if len(found) != len(held.actions) or installation is None:
        return Outcome(DeliveryStatus.DEAD, "gone", "the action or its installation was deleted")
    action = found[0]
    unsettled = settle_gestures(session, held, installation, shops, now=clock)
    if unsettled is not None:
        return Outcome(
            DeliveryStatus.PENDING,
            unsettled.error_kind,
            unsettled.error,
            retry_in_seconds=unsettled.retry_after or 0.0,
            counts_as_failure=unsettled.counts_as_failure,
            # No note is ever sent before its gestures are settled: none can be on the ticket.
            outcome_unknown=False,
        )
    checked = False
    try:
        note = build_gathered_note(session, installation, found)
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
        shops: ShopFactory | None = None,
    ) -> None:
        self._sessions = sessions
        self._writers = writers
        self._shops = shops
        self.policy = policy
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self._clock = clock
        self._rng = rng or random.Random()
        self.stop_event = threading.Event()
        self.stats = WorkerStats()
        self._stats_lock = threading.Lock()
        self._single_worker = sessions.kw["bind"].dialect.name != "postgresql"
        self._last_sweep: datetime | None = None
        # The claims in hand, whose leases the heartbeat renews while they are worked on.
        self._held_tokens: set[str] = set()
        self._waiting_logged = False

    def stop(self) -> None:
        self.stop_event.set()

    def run(self, *, until_empty: bool = False) -> WorkerStats:
        """Deliver until `stop()` (or, with `until_empty`, until nothing is left to send)."""
        heartbeat = threading.Thread(
            target=self._beat, name=f"regulars-outbox-heartbeat-{self.worker_id}", daemon=True
        )
        heartbeat.start()
        try:
            with ThreadPoolExecutor(
                max_workers=self.policy.concurrency, thread_name_prefix="regulars-outbox"
            ) as pool:
                while not self.stop_event.is_set():
                    if not self.hold_lease():
                        self._say_waiting()
                        self.stop_event.wait(self.policy.poll_seconds)
                        continue
                    sent = self.run_once(pool)
                    if sent:
                        continue
                    if until_empty and not self.open_count():
                        break
                    self.stop_event.wait(self.idle_wait())
        finally:
            self.stop_event.set()
            heartbeat.join(timeout=5)
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
            self._held_tokens.update(held.token for held in claims)
        if pool is None or len(claims) <= 1:
            for held in claims:
                self._deliver(held)
        else:
            list(pool.map(self._deliver, claims))
        return len(claims)

    def _deliver(self, held: Claim) -> None:
        try:
            with self._sessions() as session:
                outcome = attempt(
                    session, held, writers=self._writers, shops=self._shops, clock=self._clock
                )
                # No lock around this: a thread holding SQLite's write lock (the demo's note)
                # must never wait for one another thread holds while it waits for SQLite.
                # random.Random's draws are safe to share between threads.
                kept = record(
                    session, held, outcome, now=self._clock(), policy=self.policy, rng=self._rng
                )
        finally:
            with self._stats_lock:
                self._held_tokens.discard(held.token)
        self._count(outcome, kept=kept, held=held)

    def _count(self, outcome: Outcome, *, kept: bool, held: Claim) -> None:
        action_id = held.action_id
        with self._stats_lock:
            stats = self.stats
            if not kept:
                stats.lost_claims += 1
            elif outcome.status is DeliveryStatus.DELIVERED:
                # Counted in actions, as the action log counts them; a note may carry several.
                stats.delivered += len(held.actions)
                stats.found_on_ticket += len(held.actions) if outcome.found_on_ticket else 0
            else:
                kind = outcome.error_kind or "unknown"
                stats.retried[kind] = stats.retried.get(kind, 0) + 1
                if outcome.status is DeliveryStatus.DEAD:
                    stats.dead += 1
                    logger.warning("outbox: action %s is dead: %s", action_id, outcome.error)

    def idle_wait(self) -> float:
        """Seconds to sleep when nothing was due: until the next retry, at most a poll."""
        pending = Delivery.status == DeliveryStatus.PENDING.value
        with self._sessions() as session:
            next_due = session.scalar(
                sa.select(sa.func.min(Delivery.next_attempt_at)).where(pending)
            )
            held_since = session.scalar(
                sa.select(sa.func.min(Delivery.created_at)).where(
                    pending, Delivery.note_action_id.is_(None)
                )
            )
        if next_due is not None and held_since is not None and self.policy.hold_seconds > 0:
            # A new action waits out its undo window however early it was due.
            next_due = max(next_due, held_since + timedelta(seconds=self.policy.hold_seconds))
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

    # The heartbeat: short leases, renewed while the worker runs.

    def _beat(self) -> None:
        """Renew this worker's leases (the outbox's on SQLite, and its claims') a few times per
        lease, until stopped: a worker that dies stops renewing, and a replacement takes over
        within one lease, seconds rather than minutes."""
        every = max(0.05, self.policy.lease_seconds / 3)
        while not self.stop_event.wait(every):
            try:
                self.heartbeat()
            except Exception:  # a database hiccup: the next beat tries again
                logger.warning("outbox: %s could not renew its leases", self.worker_id)

    def heartbeat(self) -> None:
        """Renew the leases this worker holds now (the outbox's, its claims')."""
        now = self._clock()
        expires = now + timedelta(seconds=self.policy.lease_seconds)
        with self._stats_lock:
            tokens = sorted(self._held_tokens)
        with self._sessions() as session:
            if self._single_worker:
                session.execute(
                    sa.update(DeliveryLease)
                    .where(
                        DeliveryLease.name == OUTBOX_LEASE,
                        DeliveryLease.holder == self.worker_id,
                    )
                    .values(expires_at=expires)
                )
            if tokens:
                session.execute(
                    sa.update(Delivery)
                    .where(
                        Delivery.claim_token.in_(tokens),
                        Delivery.status == DeliveryStatus.IN_FLIGHT.value,
                    )
                    .values(lease_expires_at=expires)
                    .execution_options(synchronize_session=False)
                )
            session.commit()

    def _say_waiting(self) -> None:
        """Log, once per wait, which worker holds the outbox and until when."""
        if self._waiting_logged:
            return
        with self._sessions() as session:
            lease = session.get(DeliveryLease, OUTBOX_LEASE)
            holder, until = (lease.holder, lease.expires_at) if lease else (None, None)
        logger.info(
            "outbox: %s waits for the outbox's lease, held by %s until %s UTC (renewed while "
            "it runs; taken over once it lapses)",
            self.worker_id,
            holder or "nobody",
            f"{until:%H:%M:%S}" if until else "now",
        )
        self._waiting_logged = True

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
        if held and self._waiting_logged:
            logger.info("outbox: %s holds the outbox's lease now", self.worker_id)
        self._waiting_logged = self._waiting_logged and not held
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
