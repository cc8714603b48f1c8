"""Customers, their orders and facts, and their segments with what supervisors attach to them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.clock import utcnow
from plugin.models.base import Base


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
    # The customer's installation, for scoping; no foreign key of its own: the customer's
    # cascades on delete, and a second check per row cost a bulk import seconds.
    installation_id: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    placed_at: Mapped[datetime] = mapped_column(DateTime)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    discount_code: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(32))
    # Where the order stands, when the source says (vocabularies in plugin/customers/records.py).
    status: Mapped[str | None] = mapped_column(String(24))
    fulfillment_status: Mapped[str | None] = mapped_column(String(24))
    tracking_url: Mapped[str | None] = mapped_column(String(2048))
    item_count: Mapped[int | None] = mapped_column(Integer)


class CustomerFact(Base):
    """One named value about a customer, with where it came from and when it was fetched."""

    __tablename__ = "customer_facts"
    __table_args__ = (UniqueConstraint("customer_id", "name", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The customer's installation, without a foreign key of its own, as on orders.
    installation_id: Mapped[int] = mapped_column(Integer, index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[Any] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(32))
    fetched_at: Mapped[datetime] = mapped_column(DateTime)

    customer: Mapped[Customer] = relationship(back_populates="facts")


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
    # The customer's installation, without a foreign key of its own, as on orders.
    installation_id: Mapped[int] = mapped_column(Integer, index=True)
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
    # What this row and the customer's order facts were derived from, written with them:
    # "rules|as-of moment|orders digest" (plugin.customers.derived_stamp). A recompute that
    # would derive the same skips the customer; None (a profile without its order facts, or
    # facts written since) means rebuild.
    derived_stamp: Mapped[str | None] = mapped_column(String(80))


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
