"""Effects: each eligible ticket a rule's suggestion was shown on or held out from, and what the
customer did next (filled in by `flask effects compute`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.models.base import Base


class RuleExposure(Base):
    """A ticket on which a rule suggested a gesture: shown to the agent, or held out.

    Written once per ticket and rule, the first time the card is built from the helpdesk's
    copy of the ticket, with the same snapshot whichever group the customer is in, so the two
    groups differ only by the suggestion. The outcomes are None until their window has passed
    (`outcomes_final` once all have); order outcomes stay None for someone not a customer.
    """

    __tablename__ = "rule_exposures"
    __table_args__ = (
        UniqueConstraint("installation_id", "ticket_id", "rule_id"),
        # The report reads one installation's exposures by rule and date.
        Index("ix_rule_exposures_installation_rule_seen", "installation_id", "rule_id", "seen_at"),
        # A requester's first ticket under a rule, which alone the report counts.
        Index(
            "ix_rule_exposures_requester",
            "installation_id",
            "rule_id",
            "requester_id",
            "seen_at",
        ),
        # The compute walks the rows not final yet, in id order.
        Index("ix_rule_exposures_pending", "outcomes_final", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    ticket_id: Mapped[str] = mapped_column(String(64))
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id", ondelete="CASCADE"))
    rule_version: Mapped[int] = mapped_column(Integer)
    requester_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    # The customer's value tier when the ticket was seen ("" for someone not a customer).
    segment: Mapped[str] = mapped_column(String(40), default="")
    held_out: Mapped[bool] = mapped_column(default=False)
    exception_key: Mapped[str] = mapped_column(String(40))
    # What the suggestion was estimated to cost (what a held-out one would have cost).
    cost_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    seen_at: Mapped[datetime] = mapped_column(DateTime)
    # Outcomes: another ticket within 7 days; an order within 30 and 90 days and what was spent
    # in 90; no order within 180 (lapsed); the helpdesk's satisfaction rating when it has one.
    repeat_contact_7d: Mapped[bool | None] = mapped_column()
    ordered_30d: Mapped[bool | None] = mapped_column()
    ordered_90d: Mapped[bool | None] = mapped_column()
    spend_90d_cents: Mapped[int | None] = mapped_column(BigInteger)
    lapsed_180d: Mapped[bool | None] = mapped_column()
    satisfied: Mapped[bool | None] = mapped_column()
    outcomes_final: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    outcomes_at: Mapped[datetime | None] = mapped_column(DateTime)


class TicketRating(Base):
    """The requester's satisfaction survey answer about one ticket, read from the helpdesk by
    `flask effects ratings` (and before each compute): an exposure's `satisfied` outcome.

    One row per ticket (a changed answer replaces it). `satisfied` None: an answer that is
    neither good nor bad (Freshdesk's neutral).
    """

    __tablename__ = "ticket_ratings"

    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), primary_key=True
    )
    ticket_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rating_id: Mapped[str] = mapped_column(String(64))
    satisfied: Mapped[bool | None] = mapped_column()
    # The rating's own time (the next read starts a little before the latest) and when read.
    rated_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    read_at: Mapped[datetime] = mapped_column(DateTime)
