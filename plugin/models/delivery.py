"""Delivery: the outbox's row per action on its way to its ticket, and its single-worker lease."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, event, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from plugin.clock import utcnow
from plugin.models.base import Base
from plugin.models.goodwill import Action


class Delivery(Base):
    """Where one action stands on its way to its ticket as an internal note with tags.

    One row per action, written in the same transaction as the action itself (see
    `_enqueue_new_actions`), so no writer of the action log has to remember delivery.
    `status` is pending, in_flight (a worker holds it until `lease_expires_at`), delivered or
    dead (parked after too many failures, or an error no retry can fix). `outcome_unknown`
    says a call may have written the note without the worker learning it (a timeout, a worker
    killed mid-call): the next attempt looks for the note's marker on the ticket first.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        # Per ticket in action order: "is an older action of this ticket still on its way?"
        Index("ix_deliveries_ticket_order", "installation_id", "ticket_id", "action_id"),
        # The worker's claim: due pending rows, and in-flight rows whose lease ran out.
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )

    action_id: Mapped[int] = mapped_column(
        ForeignKey("actions.id", ondelete="CASCADE"), primary_key=True
    )
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    ticket_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    # Calls started (claims), and the failures among them that count towards parking it dead.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Names the claim holding the lease, so a worker whose lease ran out cannot finish it.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    outcome_unknown: Mapped[bool] = mapped_column(default=False)
    # A short cause (server_error, timeout, rate_limited, ...) and a message with no secrets.
    last_error_kind: Mapped[str | None] = mapped_column(String(20))
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The first action of the note this one is gathered into (its own id when it leads): set
    # when the note is first claimed, so every retry sends the same actions under one marker.
    note_action_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    action: Mapped[Action] = relationship()


class DeliveryLease(Base):
    """A named lease one worker holds at a time: on SQLite only one outbox worker runs."""

    __tablename__ = "delivery_leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)


@event.listens_for(Session, "before_flush")
def _enqueue_new_actions(session: Session, _context: object, _instances: object) -> None:
    """Give every new action its delivery row, in the transaction that writes the action.

    An action whose installation or ticket is not set yet is left to the outbox's sweep
    (`plugin.delivery.outbox.enqueue_missing`), rather than failing the writer's transaction.
    """
    new_actions = [
        row
        for row in list(session.new)
        if isinstance(row, Action) and row.installation_id is not None and row.ticket_id
    ]
    _hold_ticket_order(session, {(row.installation_id, row.ticket_id) for row in new_actions})
    for row in new_actions:
        session.add(
            Delivery(
                action=row,
                installation_id=row.installation_id,
                ticket_id=row.ticket_id,
                next_attempt_at=utcnow(),
            )
        )


def _hold_ticket_order(session: Session, tickets: set[tuple[int, str]]) -> None:
    """Make each ticket's actions commit in the order of their ids, until this transaction ends.

    The outbox sends a ticket's notes in action id order and holds a note back while an older
    action of its ticket is open; an older action must not become visible after a newer one.
    On PostgreSQL an id comes from a sequence at insert, and two writers' transactions can
    commit the other way round, so a transaction-scoped advisory lock per ticket (a hash of its
    name, taken in a fixed order; a rare collision only makes two tickets wait for each other)
    is held from before the insert to the commit. On SQLite one writer at a time already does.
    """
    if not tickets or session.get_bind().dialect.name != "postgresql":
        return
    for installation_id, ticket_id in sorted(tickets):
        key = f"regulars action order {installation_id} {ticket_id}"
        session.connection().execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))
