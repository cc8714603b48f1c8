"""Retention: purge personal data older than the configured number of days, in a few
set-based statements (`flask data purge`, run by a scheduler).

What goes, and what stays:
- seen tickets (the sidebar's record of each ticket and its requester) last seen before the
  cut-off are deleted; the default (180 days) keeps well over what rule replays (30 days) and
  the repeat-contact outcomes (7 days after a ticket) read;
- shared cached helpdesk answers fetched before the cut-off are deleted (the service's
  processes also prune them after REGULARS_STALE_KEEP_SECONDS, whenever they write);
- actions whose note was delivered before the cut-off lose the agent's own words (`text`, which
  may name the customer; the note on the ticket keeps them) and their delivery's last error;
  kind, amount, budget, rule and dates stay, so budgets and reports still add up. An escalation
  still waiting for its decision keeps its words for the approver.
A setting of 0 days keeps that kind of data for ever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from plugin.config import Settings
from plugin.models import Action, Delivery, SeenTicket, SharedCacheEntry

DELIVERED = "delivered"
ESCALATED = "escalated"


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each kind of personal data is kept (0: for ever); see .env.example."""

    seen_ticket_days: int = 180
    cached_answer_days: int = 1
    delivered_days: int = 90

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            seen_ticket_days=settings.retention_seen_ticket_days,
            cached_answer_days=settings.retention_cached_answer_days,
            delivered_days=settings.retention_delivered_days,
        )


@dataclass
class Purged:
    """Rows purged, by kind."""

    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return "Purged: " + ", ".join(
            f"{name.replace('_', ' ')} {count}" for name, count in self.counts.items()
        )


def purge(session: Session, policy: RetentionPolicy, *, now: datetime) -> Purged:
    """Purge what the policy says is too old, across installations; the caller commits."""
    purged = Purged()
    if policy.seen_ticket_days:
        cutoff = now - timedelta(days=policy.seen_ticket_days)
        purged.counts["seen_tickets"] = _rows(
            session.execute(sa.delete(SeenTicket).where(SeenTicket.last_seen_at < cutoff))
        )
    if policy.cached_answer_days:
        cutoff = now - timedelta(days=policy.cached_answer_days)
        purged.counts["cached_answers"] = _rows(
            session.execute(sa.delete(SharedCacheEntry).where(SharedCacheEntry.fetched_at < cutoff))
        )
    if policy.delivered_days:
        purged.counts["delivered_actions"] = _purge_delivered(
            session, now - timedelta(days=policy.delivered_days)
        )
    return purged


def _purge_delivered(session: Session, cutoff: datetime) -> int:
    delivered = sa.select(Delivery.action_id).where(
        Delivery.status == DELIVERED, Delivery.delivered_at < cutoff
    )
    decision = aliased(Action)
    waiting = sa.and_(
        Action.kind == ESCALATED,
        ~sa.exists().where(decision.escalation_id == Action.id),
    )
    count = _rows(
        session.execute(
            sa.update(Action)
            .where(Action.id.in_(delivered), Action.text != "", ~waiting)
            .values(text=""),
            execution_options={"synchronize_session": False},
        )
    )
    session.execute(
        sa.update(Delivery)
        .where(
            Delivery.status == DELIVERED,
            Delivery.delivered_at < cutoff,
            Delivery.last_error.is_not(None),
        )
        .values(last_error=None),
        execution_options={"synchronize_session": False},
    )
    return count


def _rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
