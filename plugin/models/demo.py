"""The demo helpdesk: a stand-in for a helpdesk's own users, tickets and internal notes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.clock import utcnow
from plugin.models.base import Base


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


class DemoShopState(Base):
    """The demo's fake Shopify store (plugin/demo/fake_shopify.py): its orders and what was
    given in it, as one JSON document per installation, so the demo shop survives restarts.
    """

    __tablename__ = "demo_shop_states"

    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
