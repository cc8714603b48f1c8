"""Goodwill: the catalog of gestures, versioned rules, segment budgets and the action log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from plugin.clock import utcnow
from plugin.models.base import Base
from plugin.models.customers import Persona
from plugin.models.installations import FieldMapping


class ExceptionType(Base):
    """A catalog entry: a gesture agents may grant (`plugin.domain.exceptions.ExceptionType`)."""

    __tablename__ = "exception_types"
    __table_args__ = (UniqueConstraint("installation_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(40))
    # As `parse_exception_type` validates it; the key inside equals the column.
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Rule(Base):
    """A suggestion rule; what it says is in its versions, `current_version` the one in force.

    `enabled` mirrors the current version's definition, so lists need not read the versions.
    """

    __tablename__ = "rules"
    __table_args__ = (UniqueConstraint("installation_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), index=True
    )
    # A stable name across installations and exports: "late_delivery_high_value".
    key: Mapped[str] = mapped_column(String(40))
    current_version: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RuleVersion(Base):
    """One version of a rule, never changed once written: who wrote what, when and why."""

    __tablename__ = "rule_versions"
    __table_args__ = (UniqueConstraint("rule_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), index=True
    )
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    # As `parse_rule` validates it.
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The helpdesk user who wrote it (id and name), or who ran the command line.
    author_id: Mapped[str | None] = mapped_column(String(64))
    author_name: Mapped[str] = mapped_column(String(255))
    note: Mapped[str] = mapped_column(Text, default="")
    # Set when this version is a rollback: the version it copies.
    restored_from: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SegmentBudget(Base):
    """What the gestures charged to one segment may cost in a calendar month."""

    __tablename__ = "segment_budgets"
    __table_args__ = (UniqueConstraint("installation_id", "field", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), index=True
    )
    field: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(40))
    monthly_cents: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Action(Base):
    """The action log: what an agent (or approver) did about a suggestion, written once.

    `kind` is applied, dismissed, escalated (pending approval), approved or refused; applied
    and approved actions are the grants that goodwill, caps and budgets count. An approval or
    refusal names the escalation it decides (`escalation_id`, at most one decision each).
    The grant is charged to the segment budget its rule named (`budget_field`/`budget_value`).
    A rule's ticket handling an agent applied is of kind handled: no grant, no exception (its
    exception_key is ""), and what to do to the ticket in `handling`/`handling_value`.
    """

    __tablename__ = "actions"
    __table_args__ = (
        UniqueConstraint("installation_id", "idempotency_key"),
        UniqueConstraint("escalation_id"),
        Index("ix_actions_installation_customer", "installation_id", "customer_id", "created_at"),
        Index("ix_actions_installation_requester", "installation_id", "requester_id"),
        Index("ix_actions_installation_ticket", "installation_id", "ticket_id"),
        Index(
            "ix_actions_installation_budget",
            "installation_id",
            "budget_field",
            "budget_value",
            "created_at",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    ticket_id: Mapped[str] = mapped_column(String(64))
    # The requester as the helpdesk knows them, and the customer they were matched to.
    requester_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    agent_id: Mapped[str | None] = mapped_column(String(64))
    # False when nothing the helpdesk signed says who the agent was (the Freshdesk app's page
    # names its agent itself): notes, reports and the console then say "agent not verified".
    agent_verified: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    kind: Mapped[str] = mapped_column(String(20))
    exception_key: Mapped[str] = mapped_column(String(40))
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason_code: Mapped[str | None] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text, default="")
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("rules.id", ondelete="SET NULL"))
    rule_version: Mapped[int | None] = mapped_column(Integer)
    budget_field: Mapped[str | None] = mapped_column(String(40))
    budget_value: Mapped[str | None] = mapped_column(String(40))
    escalation_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"))
    # Review actions (review_checked, review_unchecked, review_completed; plugin/reviews/)
    # name their checklist and item here; their exception_key is "" (no exception involved).
    review_template_id: Mapped[int | None] = mapped_column(
        ForeignKey("review_templates.id", ondelete="SET NULL")
    )
    review_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("review_items.id", ondelete="SET NULL")
    )
    # Handled actions: raise_priority, add_tag or route_to_group (plugin.domain.rules'
    # ActionKind), and its value: a priority, a tag or a group's name.
    handling: Mapped[str | None] = mapped_column(String(20))
    handling_value: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Taken back by the agent within the undo window, before its note was sent: kept in the
    # log, but it granted nothing and counts toward no cap, budget or report.
    undone_at: Mapped[datetime | None] = mapped_column(DateTime)


# Set in `session.info` by a request whose agent nothing signed (the Freshdesk app's page names
# its own): every action the session writes is marked `agent_verified=False`, whichever writer
# of the action log wrote it.
AGENT_NOT_VERIFIED = "regulars.agent_not_verified"


@event.listens_for(Session, "before_flush")
def _mark_unverified_agents(session: Session, _context: object, _instances: object) -> None:
    if not session.info.get(AGENT_NOT_VERIFIED):
        return
    for row in session.new:
        if isinstance(row, Action):
            row.agent_verified = False


# What a compiled rule book (`plugin.goodwill.rulebook.rule_book`) is built from.
RULE_BOOK_INPUTS = (Rule, RuleVersion, ExceptionType, Persona, FieldMapping)


@event.listens_for(Session, "before_flush")
def _count_rule_book_changes(session: Session, _context: object, _instances: object) -> None:
    """Raise the installation's `rule_book_revision` in the transaction that changes its rules.

    The UPDATE takes the installation row's lock until commit, so two such transactions commit
    in the order of their revisions: a process that reads revision N sees every change up to N.
    (Timestamps and maximum ids cannot promise that: a change that got the lower id may commit
    last.) Core on the flush's connection, so no ORM event runs again.
    """
    changed = {
        row.installation_id
        for row in (*session.new, *session.dirty, *session.deleted)
        if isinstance(row, RULE_BOOK_INPUTS) and row.installation_id is not None
    }
    if not changed:
        return
    installations = sa.table("installations", sa.column("id"), sa.column("rule_book_revision"))
    session.connection().execute(
        sa.update(installations)
        .where(installations.c.id.in_(sorted(changed)))
        .values(rule_book_revision=installations.c.rule_book_revision + 1)
    )
