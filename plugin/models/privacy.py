"""Privacy: the audit record of each customer the service was asked to forget (never who)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from plugin.clock import utcnow
from plugin.models.base import Base


class DataErasure(Base):
    """One "forget this customer": who asked, how, when, and how many rows it touched.

    It holds no personal data: the identifier asked for is kept only as a keyed one-way hash
    (`identifier_hash`, HMAC-SHA256 with the service's secret key), so an admin can answer
    "was this address forgotten?" by hashing it again, and nobody can read it back.
    """

    __tablename__ = "data_erasures"
    __table_args__ = (
        Index("ix_data_erasures_installation_created", "installation_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    # console, cli or helpdesk (a helpdesk's user deletion event).
    via: Mapped[str] = mapped_column(String(20))
    # The helpdesk user (by id) or the command line's operating-system user.
    requested_by: Mapped[str] = mapped_column(String(255))
    # company_id, email or phone: which kind of identifier was asked for.
    identifier_kind: Mapped[str] = mapped_column(String(20))
    identifier_hash: Mapped[str] = mapped_column(String(64))
    # Rows removed or made anonymous, by what they were: {"customers": 1, "orders": 7, ...}
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
