"""Launch tokens already used: their ids, kept per installation until the token expires."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.models.base import Base


class LaunchTokenUse(Base):
    """A launch token's `jti`, seen once: the same id again is a replay until `expires_at`."""

    __tablename__ = "launch_token_uses"
    __table_args__ = (
        UniqueConstraint("installation_id", "jti"),
        Index("ix_launch_token_uses_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    jti: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(DateTime)
