"""What the helpdesks tell the service before an agent looks: where their events come from,
which requesters' snapshots wait to be refreshed, and the deliveries already taken."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.clock import utcnow
from plugin.models.base import Base


class EventSource(Base):
    """An installation's event deliveries: the secret they are checked with, what the service
    created in the helpdesk to send them (Zendesk's webhooks and trigger), and the last one."""

    __tablename__ = "event_sources"

    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), primary_key=True
    )
    # The signing secret (Zendesk's, fetched from its API) or the shared header secret
    # (Freshdesk's, made here), encrypted with the credentials vault.
    secret_encrypted: Mapped[str] = mapped_column(String(1000))
    # What to remove on disconnect: {"webhooks": [...ids], "triggers": [...ids]}.
    remote_ids: Mapped[Any] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_event_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_event_kind: Mapped[str | None] = mapped_column(String(40))
    events_received: Mapped[int] = mapped_column(Integer, default=0)


class SnapshotRefresh(Base):
    """A requester whose cached snapshot an event said is out of date; one row per requester,
    however many events came (a burst costs one fetch). `tickets` holds the tickets the
    events carried whole, merged without a call; `needs_fetch` says a call is still needed."""

    __tablename__ = "snapshot_refreshes"
    __table_args__ = (
        UniqueConstraint("installation_id", "requester_id"),
        Index("ix_snapshot_refreshes_queued_at", "queued_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    requester_id: Mapped[str] = mapped_column(String(64))
    needs_fetch: Mapped[bool] = mapped_column(default=False)
    tickets: Mapped[Any] = mapped_column(JSON, default=list)
    queued_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Bumped by each coalesced event, so a worker never deletes a row changed while it worked.
    version: Mapped[int] = mapped_column(Integer, default=1)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)


class EventDelivery(Base):
    """A delivery taken (its signature's digest), kept through the replay window so the same
    signed delivery sent again is refused."""

    __tablename__ = "event_deliveries"
    __table_args__ = (
        UniqueConstraint("installation_id", "digest"),
        Index("ix_event_deliveries_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
