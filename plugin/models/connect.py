"""OAuth connects under way: the single-use `state` of each, bound to an installation and user."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from plugin.models.base import Base


class OAuthConnectState(Base):
    """One admin's OAuth connect, from the Connect page to Zendesk's callback.

    Only the SHA-256 of the `state` is kept; the PKCE verifier is encrypted like credentials.
    The row is deleted when the callback uses it, so a `state` works once.
    """

    __tablename__ = "oauth_connect_states"
    __table_args__ = (Index("ix_oauth_connect_states_expires_at", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The helpdesk user who launched the app and started the connect: only they may finish it.
    user_id: Mapped[str] = mapped_column(String(64))
    code_verifier_encrypted: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
