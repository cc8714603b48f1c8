"""Gestures: what the shop is to give for an action (and what it gave or refused), and which
gesture kinds each installation has turned on."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.clock import utcnow
from plugin.models.base import Base
from plugin.models.goodwill import Action


class Gesture(Base):
    """One gesture to give in the shop for an action, written in the action's transaction.

    `action_id` is the action whose delivery gives it: the applied action, or the approval of
    an escalated one (`request_action_id` stays the action the agent took; the marker comes
    from it). `status`: waiting_approval, pending, given, refused (the shop or the policy said
    no: nothing given, nothing charged) or dead (the shop never answered usefully).
    `outcome_unknown` says an attempt may have created it without learning so: the next
    attempt looks for it by its marker before giving again.
    """

    __tablename__ = "gestures"
    __table_args__ = (
        UniqueConstraint("installation_id", "marker"),
        UniqueConstraint("action_id"),
        Index("ix_gestures_installation_ticket", "installation_id", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"))
    request_action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"))
    ticket_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    # The request, the same on every attempt.
    marker: Mapped[str] = mapped_column(String(64))
    code: Mapped[str | None] = mapped_column(String(64))
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    percent: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    currency: Mapped[str] = mapped_column(String(3))
    customer_ref: Mapped[str | None] = mapped_column(String(100))
    order_ref: Mapped[str | None] = mapped_column(String(100))
    order_number: Mapped[str | None] = mapped_column(String(64))
    # A gift card may be worth at most this (its cap as a share of the named order).
    cap_cents: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    minimum_order_cents: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    outcome_unknown: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The last attempt's failure (unavailable), or why it is dead.
    last_error: Mapped[str | None] = mapped_column(Text)
    # What was given.
    shop_id: Mapped[str | None] = mapped_column(String(255))
    given_code: Mapped[str | None] = mapped_column(String(255))
    code_last4: Mapped[str | None] = mapped_column(String(4))
    balance_cents: Mapped[int | None] = mapped_column(BigInteger)
    reference: Mapped[str | None] = mapped_column(String(255))
    given_cents: Mapped[int | None] = mapped_column(BigInteger)
    given_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The gift card's full code, held only until the agent has been shown it once.
    gift_card_code: Mapped[str | None] = mapped_column(String(255))
    # The refusal in the shop's (or the policy's) words.
    refusal: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    action: Mapped[Action] = relationship(foreign_keys=[action_id])
    request_action: Mapped[Action] = relationship(foreign_keys=[request_action_id])

    def __repr__(self) -> str:  # never the gift card's code
        return f"<Gesture {self.id} {self.kind} {self.status} action={self.action_id}>"


class GestureKindSetting(Base):
    """Whether an installation gives one gesture kind in its shop (off until an admin turns
    it on)."""

    __tablename__ = "gesture_kinds"

    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
