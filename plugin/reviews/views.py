"""The sidebar's account review card, and the checks agents make on it.

`GET /sidebar/review` renders the ticket's review checklist (starting the review when a
template fits the customer), or answers 204 when the customer calls for none. `POST
/sidebar/review/check` checks or unchecks an item and answers with the card again around the
result. A JSON request gets a JSON answer. Both need the sidebar's bearer session, as the
suggestions card does; the ticket, and so the customer, always come from the helpdesk, and the
agent from the session, never from the page.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime

from flask import Blueprint, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue

from plugin import db
from plugin.helpdesks.runtime import helpdesks
from plugin.models import Installation
from plugin.reviews import tickets as reviews
from plugin.reviews.tickets import InvalidCheck, ReviewCard, ReviewNotFound
from plugin.sidebar.snapshot import HelpdeskSnapshot
from plugin.sidebar.views import (
    CardRequest,
    card_to_act_on,
    card_to_show,
    json_or_html,
    problem,
)
from plugin.web.i18n import gettext, say

bp = Blueprint("reviews", __name__, url_prefix="/sidebar")


@bp.get("/review")
def card() -> ResponseReturnValue:
    """Render the review card for the ticket the page is showing; 204 when none is called for."""
    opened = card_to_show(request.args)
    if not isinstance(opened, CardRequest):
        return opened
    review = reviews.review_card(
        db.session(),
        opened.installation,
        ticket_id=opened.snapshot.ticket.id,
        requester=opened.snapshot.requester,
        now=opened.now,
        reads=helpdesks().reads,
    )
    if review is None:
        return "", 204
    requester_id = opened.snapshot.requester.id
    return render_review(review, requester_id=requester_id, check_url=_check_url()), 200


@bp.post("/review/check")
def check() -> ResponseReturnValue:
    """Check or uncheck an item of the ticket's review; answer with the card around the result."""
    as_json = request.is_json
    acting = card_to_act_on(_fields(), as_json=as_json)
    if not isinstance(acting, CardRequest):
        return acting
    return answer_check(
        acting.installation,
        acting.snapshot,
        agent_id=acting.session.user_id,
        fields=acting.fields,
        now=acting.now,
        check_url=_check_url(),
        as_json=as_json,
    )


def answer_check(
    installation: Installation,
    snapshot: HelpdeskSnapshot,
    *,
    agent_id: str | None,
    fields: Mapping[str, object],
    now: datetime,
    check_url: str,
    as_json: bool = False,
) -> ResponseReturnValue:
    """Record a check on the ticket's review and answer with the card around the result.

    The one way every helpdesk's sidebar records a check: the ticket comes from `snapshot`.
    """
    session = db.session()
    requester_id = snapshot.requester.id
    try:
        outcome = reviews.check_item(
            session,
            installation,
            ticket_id=snapshot.ticket.id,
            requester=snapshot.requester,
            agent_id=agent_id,
            fields=fields,
            now=now,
        )
    except ReviewNotFound:
        session.rollback()
        message = "This ticket has no account review. Reload the app."
        return json_or_html(as_json, problem(gettext(message), 404), {"error": message})
    except InvalidCheck as invalid:
        session.rollback()
        if as_json:
            return jsonify({"errors": invalid.errors}), 422
        review = reviews.review_card(
            session,
            installation,
            ticket_id=snapshot.ticket.id,
            requester=snapshot.requester,
            now=now,
        )
        if review is None:
            return problem(gettext("This ticket has no account review. Reload the app."), 404)
        problems = " ".join(
            f"{name.replace('_', ' ').capitalize()}: {say(message)}."
            for name, message in invalid.errors.items()
        )
        return render_review(
            review, requester_id=requester_id, check_url=check_url, refusal=problems
        ), 422
    if as_json:
        return jsonify(
            {
                "review_id": outcome.card.review_id,
                "complete": outcome.card.progress.complete,
                "progress": outcome.card.progress.describe(),
                "checked": [item.item_id for item in outcome.card.items if item.checked],
                "message": outcome.message,
                "duplicate": outcome.duplicate,
            }
        ), 200
    return render_review(
        outcome.card, requester_id=requester_id, check_url=check_url, result=outcome.message
    ), 200


def render_review(
    review: ReviewCard,
    *,
    requester_id: str,
    check_url: str,
    result: str | None = None,
    refusal: str | None = None,
    template: str = "sidebar/_review.html",
) -> str:
    """The review card; its forms post to `check_url` (another helpdesk's route may differ)."""
    return render_template(
        template,
        review=review,
        requester_id=requester_id,
        check_url=check_url,
        result=result,
        refusal=refusal,
        new_key=lambda: secrets.token_urlsafe(18),
    )


def _check_url() -> str:
    return url_for("reviews.check")


def _fields() -> dict[str, object]:
    """The check's fields from a JSON object or a form, as texts."""
    if not request.is_json:
        return dict(request.form.items())
    raw = request.get_json(silent=True)
    if not isinstance(raw, dict):
        return {}
    return {
        str(key): str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in raw.items()
        if isinstance(value, str | int | bool)
    }
