"""The helpdesks' satisfaction survey answers, read into `ticket_ratings` for the effects report.

Each read asks the installation's helpdesk for the answers received since a little before the
latest one kept (`OVERLAP`, so an answer the helpdesk listed late is not missed), at most
`max_pages` pages (the next read goes on from there), and keeps one row per ticket: a later
answer about the same ticket replaces the earlier one. Each page is committed on its own, so
a helpdesk that fails halfway loses nothing already read; the failure is reported, not raised,
and the next read starts over from what was kept. `flask effects compute` then copies each
ticket's answer onto its exposures (`plugin/reports/outcomes.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.helpdesks.interface import Helpdesk, HelpdeskError, SatisfactionRating
from plugin.models import Installation, TicketRating

# How far before the latest answer kept a read starts again.
OVERLAP = timedelta(days=2)
# Where an installation's first read starts: the report's longest window back.
FIRST_READ_DAYS = 400
# Pages of 100 a read asks for at most (a page is one call from the account's budget).
MAX_PAGES = 50
# Answers written per commit.
COMMIT_EVERY = 100


@dataclass(frozen=True)
class RatingsRead:
    """What one installation's read did: answers kept (new or changed), since when, and the
    helpdesk's error if it stopped early."""

    installation_id: int
    since: datetime
    read: int
    kept: int
    problem: str | None = None


def read_since(session: Session, installation_id: int, *, now: datetime) -> datetime:
    """Where the installation's next read starts."""
    latest = session.scalar(
        sa.select(sa.func.max(TicketRating.rated_at)).where(
            TicketRating.installation_id == installation_id
        )
    )
    return latest - OVERLAP if latest is not None else now - timedelta(days=FIRST_READ_DAYS)


def read_ratings(
    session: Session,
    installation: Installation,
    helpdesk: Helpdesk,
    *,
    now: datetime,
    max_pages: int = MAX_PAGES,
) -> RatingsRead:
    """Read the installation's new survey answers from its helpdesk and keep them."""
    since = read_since(session, installation.id, now=now)
    read = kept = 0
    batch: list[SatisfactionRating] = []
    try:
        for rating in helpdesk.satisfaction_ratings(since=since, max_pages=max_pages):
            read += 1
            batch.append(rating)
            if len(batch) >= COMMIT_EVERY:
                kept += _keep(session, installation.id, batch, now=now)
                batch = []
    except HelpdeskError as error:
        kept += _keep(session, installation.id, batch, now=now)
        return RatingsRead(installation.id, since, read, kept, problem=str(error))
    kept += _keep(session, installation.id, batch, now=now)
    return RatingsRead(installation.id, since, read, kept)


def _keep(
    session: Session, installation_id: int, ratings: Iterable[SatisfactionRating], *, now: datetime
) -> int:
    """Write a batch of answers (the latest per ticket wins) and commit; how many changed."""
    latest: dict[str, SatisfactionRating] = {}
    for rating in ratings:
        held = latest.get(rating.ticket_id)
        if held is None or rating.created_at >= held.created_at:
            latest[rating.ticket_id] = rating
    if not latest:
        return 0
    stored = {
        row.ticket_id: row
        for row in session.scalars(
            sa.select(TicketRating).where(
                TicketRating.installation_id == installation_id,
                TicketRating.ticket_id.in_(list(latest)),
            )
        )
    }
    changed = 0
    for ticket_id, rating in latest.items():
        row = stored.get(ticket_id)
        if row is None:
            session.add(
                TicketRating(
                    installation_id=installation_id,
                    ticket_id=ticket_id,
                    rating_id=rating.rating_id[:64],
                    satisfied=rating.satisfied,
                    rated_at=rating.created_at,
                    read_at=now,
                )
            )
            changed += 1
        elif rating.created_at >= row.rated_at and (
            row.satisfied != rating.satisfied or row.rating_id != rating.rating_id[:64]
        ):
            row.rating_id, row.satisfied = rating.rating_id[:64], rating.satisfied
            row.rated_at, row.read_at = rating.created_at, now
            changed += 1
    session.commit()
    return changed
