"""Account reviews: checklist templates and their items, and each ticket's review progress."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.clock import utcnow
from plugin.models.base import Base


class ReviewTemplate(Base):
    """A checklist supervisors write for an audience (`plugin.domain.reviews.ReviewTemplate`)."""

    __tablename__ = "review_templates"
    __table_args__ = (UniqueConstraint("installation_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    # {"tier": ["high"], "rfm_segment": [...], "lifecycle_stage": [...], "persona": [...]}
    audience: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ReviewItem(Base):
    """One item of a checklist template, at its position (1 first)."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_template", "template_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    template_id: Mapped[int] = mapped_column(ForeignKey("review_templates.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200))
    help_text: Mapped[str] = mapped_column(Text, default="")
    required: Mapped[bool] = mapped_column(default=True)


class AccountReview(Base):
    """A ticket's account review: due from the moment the sidebar first showed it.

    One per ticket, on the template that fitted the customer then, so progress survives the
    customer changing segment. `completed_at`/`completed_by` are set when the last required
    item is checked, and cleared if one is unchecked again.
    """

    __tablename__ = "account_reviews"
    __table_args__ = (
        UniqueConstraint("installation_id", "ticket_id"),
        Index("ix_account_reviews_installation_started", "installation_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    ticket_id: Mapped[str] = mapped_column(String(64))
    template_id: Mapped[int] = mapped_column(ForeignKey("review_templates.id", ondelete="CASCADE"))
    requester_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_by: Mapped[str | None] = mapped_column(String(64))


class ReviewCheck(Base):
    """An item checked on a ticket's review: who checked it, and when."""

    __tablename__ = "review_checks"
    __table_args__ = (UniqueConstraint("review_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    review_id: Mapped[int] = mapped_column(ForeignKey("account_reviews.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id", ondelete="CASCADE"))
    checked_by: Mapped[str | None] = mapped_column(String(64))
    checked_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
