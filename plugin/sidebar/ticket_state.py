"""What a view's cards must know of their ticket before reading it, asked in one statement.

The suggestions card reads the rule book's revision (a rule change is in force on the next
request, in every process), the ticket's actions, and the review card the ticket's review:
three round trips on PostgreSQL, on every view. Most views, an event's new ticket's first
of all, find no action and no review: one statement tells the revision and whether either is
there, and the cards then read only what is (`TicketState`). Each part is the very query the
card would run (`revision_query`, `ticket_actions_query`, `review_query`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.goodwill.action_log import ticket_actions_query
from plugin.goodwill.rulebook import revision_query
from plugin.models import AccountReview, Action
from plugin.reviews.tickets import review_query


@dataclass(frozen=True)
class TicketState:
    """The installation's rule book revision, and whether the ticket has actions, a review."""

    rule_book_revision: int
    has_actions: bool
    has_review: bool


def ticket_state(session: Session, installation_id: int, ticket_id: str) -> TicketState:
    bound = {"installation_id": installation_id, "ticket_id": ticket_id}
    revision, has_actions, has_review = session.execute(_state_query(), bound).one()
    return TicketState(int(revision), bool(has_actions), bool(has_review))


@cache
def _state_query() -> sa.Select[Any]:
    """Built once, with bound values, as the queries it is made of."""
    return sa.select(
        revision_query().scalar_subquery(),
        ticket_actions_query().with_only_columns(Action.id).order_by(None).exists(),
        review_query().with_only_columns(AccountReview.id).exists(),
    )
