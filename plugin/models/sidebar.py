"""What the sidebar keeps from the helpdesk: the tickets it was opened on, and shared answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.clock import utcnow
from plugin.models.base import Base


class SeenTicket(Base):
    """A helpdesk ticket the sidebar has been opened on, and who it was about."""

    __tablename__ = "seen_tickets"
    __table_args__ = (
        UniqueConstraint("installation_id", "ticket_id"),
        # A rule replay reads the installation's tickets of the last 30 days.
        Index("ix_seen_tickets_installation_last_seen", "installation_id", "last_seen_at"),
        # The effects' repeat contact: a requester's next ticket (plugin/reports/outcomes.py).
        Index(
            "ix_seen_tickets_installation_requester",
            "installation_id",
            "requester_id",
            "first_seen_at",
        ),
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
