"""The sidebar's view in one answer: the banner, then the cards the page would ask for.

The page's first request for a ticket (`static/js/sidebar.js`) gets the banner with the
suggestions, the recent orders and the account review after it, each in its holder: one round
trip from the agent's browser instead of two, and one process reads the customer for all of
them (the cards' own requests may land on another worker, which reads the customer again).
Freshdesk's one answer (`plugin.sidebar.freshdesk_views`) is made the same way.

When the banner asks for a write (`sync_due`: the shop or the helpdesk gave something not
stored yet), the page posts it (`POST /sidebar/sync`) and shows the view that answers, built
from what is then stored, in place of the first. A card that fails shows its failure in its
holder; the banner and the other cards still show.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from flask import Blueprint, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from plugin import db
from plugin.domain.wording import N_
from plugin.goodwill.views import render_card
from plugin.helpdesks.runtime import helpdesks
from plugin.helpdesks.tokens import InvalidToken
from plugin.models import Installation
from plugin.observability import time_part
from plugin.reviews import tickets as reviews
from plugin.reviews.views import render_review
from plugin.sidebar.orders_views import read_orders, render_orders
from plugin.sidebar.recognition import customer_id_of
from plugin.sidebar.snapshot import HelpdeskSnapshot
from plugin.sidebar.ticket_state import TicketState, ticket_state
from plugin.sidebar.views import (
    CardsAfterBanner,
    banner_response,
    posted_fields,
    problem,
    shown_banner,
    ticket_args,
)
from plugin.web.auth import current_sidebar_session
from plugin.web.masking import use_session_viewer

logger = logging.getLogger(__name__)

bp = Blueprint("view", __name__, url_prefix="/sidebar")

# Each card's holder, in the page's order: the page replaces a holder's content with the card
# an action on it answers (`data-rg-holder`).
SUGGESTIONS, ORDERS, REVIEW = "rg-suggestions", "rg-orders", "rg-review"
FAILED = {
    SUGGESTIONS: N_("Suggestions could not be loaded."),
    ORDERS: N_("Recent orders could not be loaded."),
    REVIEW: N_("The account review could not be loaded."),
}


@bp.get("/view")
def view() -> ResponseReturnValue:
    """The banner for the ticket the page is showing, and its cards."""
    return shown_banner(cards=zendesk_cards)


@bp.post("/sync")
def sync() -> ResponseReturnValue:
    """Store what the banner read and has not stored yet; answer the view built again.

    The page posts here when the banner says so (`data-sync="due"`), since the view's GET
    writes nothing but caches. The ticket is read from the helpdesk (never the page's copy),
    in the session's installation; storing what is stored already writes nothing.
    """
    try:
        session, installation = current_sidebar_session()
    except InvalidToken as refused:
        return problem(str(refused), 401)
    use_session_viewer(
        installation, session, deadline=time.monotonic() + helpdesks().policy.budget_seconds
    )
    ticket_id, requester_hint = ticket_args(posted_fields())
    if ticket_id is None:
        return problem(N_("No ticket to show."), 400)
    return banner_response(
        installation,
        ticket_id=ticket_id,
        requester_hint=requester_hint,
        store=True,
        cards=zendesk_cards,
    )


def cards_posting_to(actions: str, check: str) -> CardsAfterBanner:
    """The cards after a banner, their forms posting to these endpoints (a helpdesk's page's
    own): all of them, whether or not the banner asks for a write, since the page then posts
    it and shows the whole view the write answers in their place."""

    def cards(installation: Installation, snapshot: HelpdeskSnapshot, now: datetime) -> str:
        return cards_after_banner(
            installation,
            snapshot,
            now=now,
            actions_url=url_for(actions),
            check_url=url_for(check),
        )

    return cards


# The Zendesk page's (static/js/sidebar.js).
zendesk_cards = cards_posting_to("suggestions.act", "reviews.check")


def cards_after_banner(
    installation: Installation,
    snapshot: HelpdeskSnapshot,
    *,
    now: datetime,
    actions_url: str,
    check_url: str,
) -> str:
    """The suggestions card, the recent orders (when there are some) and the account review
    (when the customer's segment calls for one) for the banner's snapshot, in their holders.

    What the cards must know of the ticket first (the rule book's revision, whether it has
    actions, a review) is read once for them (`ticket_state`)."""
    started = time.perf_counter()
    known = _ticket_state(installation, snapshot, now)
    time_part("state", started)

    def orders() -> str:
        found = read_orders(installation, snapshot, now=now)
        return render_orders(installation, found) if found is not None and found.orders else ""

    def review() -> str:
        card = reviews.review_card(
            db.session(),
            installation,
            ticket_id=snapshot.ticket.id,
            requester=snapshot.requester,
            now=now,
            reads=helpdesks().reads,
            has_review=known is None or known.has_review,
        )
        if card is None:
            return ""
        return render_review(card, requester_id=snapshot.requester.id, check_url=check_url)

    parts: tuple[tuple[str, Callable[[], str]], ...] = (
        (
            SUGGESTIONS,
            lambda: render_card(
                installation, snapshot, now=now, actions_url=actions_url, known=known
            ),
        ),
        (ORDERS, orders),
        (REVIEW, review),
    )
    return "".join(_held(holder, render, installation) for holder, render in parts)


def _ticket_state(
    installation: Installation, snapshot: HelpdeskSnapshot, now: datetime
) -> TicketState | None:
    """What the cards must know of the ticket; None when it cannot be read (each card then
    reads what it needs, and shows its own failure)."""
    session, requester = db.session(), snapshot.requester
    try:
        return ticket_state(
            session,
            installation.id,
            snapshot.ticket.id,
            customer_id=customer_id_of(
                session, installation.id, requester, reads=helpdesks().reads
            ),
            requester_id=requester.id,
            now=now,
        )
    except SQLAlchemyError:
        logger.exception("the ticket state of installation %s could not be read", installation.id)
        db.session().rollback()
        return None


def _held(holder: str, render: Callable[[], str], installation: Installation) -> str:
    """One card in its holder (none for a card with nothing to show); its failure, logged, in
    its place when it cannot be rendered."""
    started = time.perf_counter()
    try:
        html = render()
    except Exception:  # one card's failure must not take the banner and the others with it
        logger.exception("the %s card of installation %s failed", holder, installation.id)
        db.session().rollback()
        html = render_template("sidebar/_problem.html", message=FAILED[holder], retrying=False)
    time_part(holder.removeprefix("rg-"), started)
    if not html:
        return ""  # no orders, no review called for: no holder
    # The card comes from an autoescaped template, and the holder's id is one of the above.
    return f'<div id="{holder}" class="rg-suggestions-holder" aria-live="polite">{html}</div>\n'
