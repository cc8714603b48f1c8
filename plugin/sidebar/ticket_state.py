"""What a view's cards must know of their ticket before reading it, asked in one statement.

The suggestions card reads the rule book's revision (a rule change is in force on the next
request, in every process), the ticket's actions and the customer's recent grants (for caps
and the goodwill line), and the review card the ticket's review: four round trips on
PostgreSQL, on every view. Most views, an event's new ticket's first of all, find no action,
no grant and no review: one statement tells the revision and whether each is there, and the
cards then read only what is (`TicketState`). Each part is the very query the card would run
(`revision_query`, `ticket_actions_query`, `grants_query`, `review_query`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.goodwill.action_log import grants_bound, grants_query, ticket_actions_query
from plugin.goodwill.rulebook import revision_query
from plugin.models import AccountReview, Action
from plugin.reviews.tickets import review_query


@dataclass(frozen=True)
class TicketState:
    """The installation's rule book revision; whether the ticket has actions and a review,
    and whether the customer (`customer_id`, or the requester alone) had recent grants."""

    rule_book_revision: int
    has_actions: bool
    has_review: bool
    customer_id: int | None
    has_grants: bool


def ticket_state(
    session: Session,
    installation_id: int,
    ticket_id: str,
    *,
    customer_id: int | None,
    requester_id: str,
    now: datetime,
) -> TicketState:
    bound = grants_bound(installation_id, customer_id, requester_id, now=now)
    bound["ticket_id"] = ticket_id
    query = _state_query(by_customer=customer_id is not None)
    revision, has_actions, has_review, has_grants = session.execute(query, bound).one()
    return TicketState(
        int(revision), bool(has_actions), bool(has_review), customer_id, bool(has_grants)
    )


@cache
def _state_query(*, by_customer: bool) -> sa.Select[Any]:
    """Built once, with bound values, as the queries it is made of."""
    return sa.select(
        revision_query().scalar_subquery(),
        ticket_actions_query().with_only_columns(Action.id).order_by(None).exists(),
        review_query().with_only_columns(AccountReview.id).exists(),
        grants_query(by_customer=by_customer).with_only_columns(Action.id).exists(),
    )
