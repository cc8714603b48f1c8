"""SQLAlchemy models: installations and the customer data each one owns."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from plugin.clock import utcnow

# Stable constraint names so Alembic migrations read the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Installation(Base):
    """One helpdesk account that runs Regulars; every other row belongs to exactly one."""

    __tablename__ = "installations"
    __table_args__ = (UniqueConstraint("platform", "account"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    account: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255))
    # None means the platform's own API host; tests and benchmarks point it at a local fake.
    api_base_url: Mapped[str | None] = mapped_column(String(500))
    app_installation_id: Mapped[str | None] = mapped_column(String(64))
    # The app's id in the helpdesk's marketplace; Zendesk serves its public key under it.
    app_id: Mapped[str | None] = mapped_column(String(64))
    token_audience: Mapped[str | None] = mapped_column(String(500), unique=True)
    public_key_pem: Mapped[str | None] = mapped_column(Text)
    public_key_fetched_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Encrypted by the credentials store; never rendered or logged.
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    # The optional Shopify source: the store (acme.myshopify.com) and, encrypted like the
    # helpdesk credentials, its Admin API access token. Never rendered or logged.
    shopify_shop: Mapped[str | None] = mapped_column(String(255))
    shopify_credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    # SHA-256 of the token the company's own systems push customer data with.
    push_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # SHA-256 of the secret a Freshdesk installation's app sends in a header, and of the one it
    # replaced while a rotation is under way (valid until the expiry). Never the secrets.
    freshdesk_secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    freshdesk_previous_secret_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    freshdesk_previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    tier_medium_min_orders: Mapped[int] = mapped_column(Integer, default=3)
    tier_medium_min_spend_cents: Mapped[int] = mapped_column(BigInteger, default=25_000)
    tier_high_min_orders: Mapped[int] = mapped_column(Integer, default=12)
    tier_high_min_spend_cents: Mapped[int] = mapped_column(BigInteger, default=150_000)
    # The helpdesk roles (names or ids, as an admin typed them) whose users are supervisors in
    # the console; None or empty: admins only. See `plugin/console/roles.py`.
    supervisor_roles: Mapped[list[str] | None] = mapped_column(JSON)
    # Counts every committed change to what the compiled rule book is built from (rules and
    # their versions, the catalog, personas, fact mappings): see `_count_rule_book_changes`.
    rule_book_revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Installation {self.id} {self.platform}:{self.account}>"


class Customer(Base):
    """A person or business who buys from the installation's company."""

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("installation_id", "helpdesk_user_id"),
        UniqueConstraint("installation_id", "external_id"),
        Index("ix_customers_installation_email", "installation_id", "email"),
        Index("ix_customers_installation_phone", "installation_id", "phone"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), index=True
    )
    helpdesk_user_id: Mapped[str | None] = mapped_column(String(64))
    # The company's own id for the customer, as imported or pushed.
    external_id: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    customer_since: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    facts: Mapped[list[CustomerFact]] = relationship(
        back_populates="customer", cascade="all, delete-orphan"
    )


class Order(Base):
    """A purchase, as imported or pushed by a data source."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("installation_id", "external_id"),
        # A customer's history in date order, read from the index alone (no table lookups).
        Index(
            "ix_orders_customer_history",
            "customer_id",
            "placed_at",
            "amount_cents",
            "discount_code",
            "category",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    placed_at: Mapped[datetime] = mapped_column(DateTime)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    discount_code: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(32))


class CustomerFact(Base):
    """One named value about a customer, with where it came from and when it was fetched."""

    __tablename__ = "customer_facts"
    __table_args__ = (UniqueConstraint("customer_id", "name", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[Any] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(32))
    fetched_at: Mapped[datetime] = mapped_column(DateTime)

    customer: Mapped[Customer] = relationship(back_populates="facts")


class FieldMapping(Base):
    """Read one helpdesk user field, organization field or tag as a customer fact."""

    __tablename__ = "field_mappings"
    __table_args__ = (UniqueConstraint("installation_id", "kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), index=True
    )
    # "user_field", "organization_field" or "tag" (a tag maps to a true/false fact).
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    fact_name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SeenTicket(Base):
    """A helpdesk ticket the sidebar has been opened on, and who it was about."""

    __tablename__ = "seen_tickets"
    __table_args__ = (
        UniqueConstraint("installation_id", "ticket_id"),
        # A rule replay reads the installation's tickets of the last 30 days.
        Index("ix_seen_tickets_installation_last_seen", "installation_id", "last_seen_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    ticket_id: Mapped[str] = mapped_column(String(64))
    requester_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    subject: Mapped[str] = mapped_column(String(500))
    channel: Mapped[str | None] = mapped_column(String(32))
    # The ticket's fields as last seen, for replaying rules; None on rows seen before 0011.
    ticket_type: Mapped[str | None] = mapped_column(String(40))
    priority: Mapped[str | None] = mapped_column(String(20))
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    view_count: Mapped[int] = mapped_column(Integer, default=1)


# --- Segments: who each customer is to the business, and what supervisors attach to it. -------


class SegmentBaseline(Base):
    """An installation's base as segmentation last measured it: the RFM cut points."""

    __tablename__ = "segment_baselines"

    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), primary_key=True
    )
    # {"recency_days": [..4], "frequency": [..4], "monetary_cents": [..4], "base_size": n}
    rfm_cut_points: Mapped[dict[str, Any]] = mapped_column(JSON)
    customers: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(DateTime)


class CustomerSegment(Base):
    """A customer's segment profile as last computed, for reports, rules and replays."""

    __tablename__ = "customer_segments"
    __table_args__ = (
        Index("ix_customer_segments_installation_rfm", "installation_id", "rfm_segment"),
        Index("ix_customer_segments_installation_lifecycle", "installation_id", "lifecycle_stage"),
    )

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), index=True
    )
    tier: Mapped[str] = mapped_column(String(10))
    rfm_recency: Mapped[int | None] = mapped_column(Integer)
    rfm_frequency: Mapped[int | None] = mapped_column(Integer)
    rfm_monetary: Mapped[int | None] = mapped_column(Integer)
    rfm_segment: Mapped[str | None] = mapped_column(String(40))
    lifecycle_stage: Mapped[str | None] = mapped_column(String(20))
    lifecycle_since: Mapped[date | None] = mapped_column(Date)
    # [{"behaviour": "seasonal", "reason": "8 of 10 orders in Nov-Dec"}, ...]
    behaviours: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    personas: Mapped[list[str]] = mapped_column(JSON, default=list)
    computed_at: Mapped[datetime] = mapped_column(DateTime)


class Persona(Base):
    """A named micro-segment a supervisor defines with conditions over the segment profile."""

    __tablename__ = "personas"
    __table_args__ = (UniqueConstraint("installation_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    # {"all": [{"field": ..., "operator": ..., "value": ...}], "any": [...]}
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Shown to the agent with the banner when the customer matches.
    guidance: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class SegmentGuidance(Base):
    """Handling guidance a supervisor attaches to a segment: "small business: ask about ..."."""

    __tablename__ = "segment_guidance"
    __table_args__ = (UniqueConstraint("installation_id", "kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), index=True
    )
    # "tier", "rfm_segment", "lifecycle_stage" or "behaviour"
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


# --- The demo helpdesk: a stand-in for a helpdesk's own users and tickets. -----------------


class DemoUser(Base):
    """A user of the demo helpdesk: an end user (customer) or an agent."""

    __tablename__ = "demo_users"
    __table_args__ = (UniqueConstraint("installation_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DemoTicket(Base):
    """A ticket in the demo helpdesk."""

    __tablename__ = "demo_tickets"
    __table_args__ = (
        UniqueConstraint("installation_id", "external_id"),
        Index("ix_demo_tickets_requester", "installation_id", "requester_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    requester_id: Mapped[str] = mapped_column(String(64))
    assignee_id: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(20))
    ticket_type: Mapped[str] = mapped_column(String(20))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The group the ticket is routed to, by name (`plugin.helpdesks.demo.GROUPS`); None: none.
    group_name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


# --- Exceptions (issue 5): the catalog, versioned rules, segment budgets, the action log. ---


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


# --- Delivery (issue 6): the outbox that sends each action to its ticket, and demo notes. ---


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
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    action: Mapped[Action] = relationship()


class DeliveryLease(Base):
    """A named lease one worker holds at a time: on SQLite only one outbox worker runs."""

    __tablename__ = "delivery_leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)


class DemoNote(Base):
    """An internal note on a demo ticket, as the outbox delivers it to the demo helpdesk."""

    __tablename__ = "demo_notes"
    __table_args__ = (
        Index("ix_demo_notes_ticket", "installation_id", "ticket_id"),
        UniqueConstraint("installation_id", "ticket_id", "marker"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    # The demo ticket's external id, as helpdesk clients name tickets.
    ticket_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    marker: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


@event.listens_for(Session, "before_flush")
def _enqueue_new_actions(session: Session, _context: object, _instances: object) -> None:
    """Give every new action its delivery row, in the transaction that writes the action.

    An action whose installation or ticket is not set yet is left to the outbox's sweep
    (`plugin.delivery.outbox.enqueue_missing`), rather than failing the writer's transaction.
    """
    for row in list(session.new):
        if isinstance(row, Action) and row.installation_id is not None and row.ticket_id:
            session.add(
                Delivery(
                    action=row,
                    installation_id=row.installation_id,
                    ticket_id=row.ticket_id,
                    next_attempt_at=utcnow(),
                )
            )


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


# --- Account review (issue 6): checklist templates, and each ticket's review progress. ---


class ReviewTemplate(Base):
    """A checklist supervisors write for an audience (`plugin.domain.reviews.ReviewTemplate`)."""

    __tablename__ = "review_templates"
    __table_args__ = (UniqueConstraint("installation_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    # {"tier": ["high"], "rfm_segment": [...], "lifecycle_stage": [...], "persona": [...]}
    audience: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ReviewItem(Base):
    """One item of a checklist template, at its position (1 first)."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_template", "template_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    template_id: Mapped[int] = mapped_column(ForeignKey("review_templates.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200))
    help_text: Mapped[str] = mapped_column(Text, default="")
    required: Mapped[bool] = mapped_column(default=True)


class AccountReview(Base):
    """A ticket's account review: due from the moment the sidebar first showed it.

    One per ticket, on the template that fitted the customer then, so progress survives the
    customer changing segment. `completed_at`/`completed_by` are set when the last required
    item is checked, and cleared if one is unchecked again.
    """

    __tablename__ = "account_reviews"
    __table_args__ = (
        UniqueConstraint("installation_id", "ticket_id"),
        Index("ix_account_reviews_installation_started", "installation_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    ticket_id: Mapped[str] = mapped_column(String(64))
    template_id: Mapped[int] = mapped_column(ForeignKey("review_templates.id", ondelete="CASCADE"))
    requester_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_by: Mapped[str | None] = mapped_column(String(64))


class ReviewCheck(Base):
    """An item checked on a ticket's review: who checked it, and when."""

    __tablename__ = "review_checks"
    __table_args__ = (UniqueConstraint("review_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    review_id: Mapped[int] = mapped_column(ForeignKey("account_reviews.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id", ondelete="CASCADE"))
    checked_by: Mapped[str | None] = mapped_column(String(64))
    checked_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# --- Shared cache ---


class SharedCacheEntry(Base):
    """A helpdesk answer one process fetched, for the service's other processes (and hosts).

    Keyed by installation and the upstream cache's key ("requester:123"); `fetched_at` says how
    old it is, so each reader decides whether it is fresh for its purpose.
    """

    __tablename__ = "shared_cache"
    __table_args__ = (
        UniqueConstraint("installation_id", "key"),
        # Old entries are deleted by age.
        Index("ix_shared_cache_fetched_at", "fetched_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    value: Mapped[Any] = mapped_column(JSON)
    fetched_at: Mapped[datetime] = mapped_column(DateTime)


# What a compiled rule book (`plugin.goodwill.service.rule_book`) is built from.
RULE_BOOK_INPUTS = (Rule, RuleVersion, ExceptionType, Persona, FieldMapping)
