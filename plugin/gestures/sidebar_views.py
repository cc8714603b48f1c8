"""The sidebar's gestures fragment: `GET /sidebar/gestures` renders what the shop gave (or is
giving, or refused) for the ticket, which the page fetches again while a gesture is on its way.
Authenticated by the sidebar's bearer session and scoped to its installation and the ticket,
as the other cards (`plugin.sidebar.views.card_to_show`).
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, render_template, request, url_for
from flask.typing import ResponseReturnValue

from plugin import db
from plugin.gestures.card import ticket_gestures
from plugin.models import Installation
from plugin.sidebar.views import CardRequest, card_to_show

bp = Blueprint("gestures", __name__, url_prefix="/sidebar")


@bp.get("/gestures")
def card() -> ResponseReturnValue:
    """The ticket's gestures, as the suggestions card shows them at its end."""
    opened = card_to_show(request.args, use_page_ticket=True)
    if not isinstance(opened, CardRequest):
        return opened
    return render_gesture_list(
        opened.installation,
        ticket_id=opened.snapshot.ticket.id,
        requester_id=opened.snapshot.requester.id,
        now=opened.now,
    ), 200


def render_gesture_list(
    installation: Installation, *, ticket_id: str, requester_id: str, now: datetime
) -> str:
    return render_template(
        "sidebar/_gesture_list.html",
        gestures=ticket_gestures(db.session(), installation.id, ticket_id, now=now),
        gestures_url=url_for("gestures.card"),
        ticket_id=ticket_id,
        requester_id=requester_id,
    )
