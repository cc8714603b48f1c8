"""Masking by role: the customer fields each helpdesk role's agents do not see."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.clock import utcnow
from plugin.models.base import Base

# The row that holds the mask of every role the installation does not list.
DEFAULT_ROLE = "*"


class FieldMask(Base):
    """What one helpdesk role (or, as `*`, every role not listed) is kept from seeing.

    `role` is the role as an admin typed it, casefolded: a base role ("agent", "admin"), a
    custom role's or Freshdesk role's id, or its name. `hidden` lists field group values
    (plugin/domain/masking.py); an installation without rows shows everything, as before.
    """

    __tablename__ = "field_masks"
    __table_args__ = (UniqueConstraint("installation_id", "role", name="uq_field_masks_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(64))
    hidden: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # The helpdesk user who saved it last.
    updated_by: Mapped[str | None] = mapped_column(String(64))
