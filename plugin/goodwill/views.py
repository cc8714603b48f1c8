"""The sidebar's suggestions card, and the actions agents take on it.

`GET /sidebar/suggestions` renders the ticket's ranked suggestions after the banner, reading
the ticket through the same upstream cache (so a view right after the banner costs no call to
the helpdesk). `POST /sidebar/actions` records an apply, dismiss or escalate (or the apply of
a rule's ticket handling), or within the undo window undoes one or changes its reason, and
answers with the card rendered again around the result: a form's errors beside its fields, a
refusal saying why, or what was recorded (with Undo while the outbox holds it). A JSON request
gets a JSON answer instead. Both need the sidebar's bearer session; the ticket, and so the
customer, always come from the helpdesk, not the page.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from flask import Blueprint, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue

from plugin import db
from plugin.domain.masking import FieldGroup
from plugin.gestures.card import record_only, ticket_gestures
from plugin.gestures.planning import enabled_kinds
from plugin.goodwill.actions import record_action
from plugin.goodwill.card_words import condition_words, done_line
from plugin.goodwill.errors import ActionRefused, InvalidAction, NotFound
from plugin.goodwill.money import cents_as_units, exact_money
from plugin.goodwill.suggestions import SuggestionsCard, suggestions_for
from plugin.goodwill.undo import UNDOABLE, change_reason, undo_action
from plugin.helpdesks.runtime import helpdesks
from plugin.models import Action, Installation
from plugin.sidebar.snapshot import HelpdeskSnapshot
from plugin.sidebar.ticket_state import TicketState
from plugin.sidebar.views import (
    CardRequest,
    card_to_act_on,
    card_to_show,
)
from plugin.web.after_response import later
from plugin.web.i18n import gettext, request_locale, say
from plugin.web.masking import viewer_mask
from plugin.web.settings import settings

bp = Blueprint("suggestions", __name__, url_prefix="/sidebar")

# The fields whose problems the card shows beside their inputs.
SHOWN = frozenset({"amount", "reason", "text"})

# What the undo window's forms send as their kind.
UNDO, CHANGE_REASON = "undo", "change_reason"


@dataclass(frozen=True)
class FormState:
    """The form an agent sent back with problems: which, what they typed, and what is wrong."""

    exception: str
    kind: str
    values: Mapping[str, object]
    errors: Mapping[str, str] = field(default_factory=dict)

    @property
    def other_errors(self) -> list[tuple[str, str]]:
        """The problems no input of the card shows beside itself (a stale or forged form)."""
        return [(name, message) for name, message in self.errors.items() if name not in SHOWN]


@bp.get("/suggestions")
def card() -> ResponseReturnValue:
    """Render the suggestions card for the ticket the page is showing."""
    # Showing the card may use the page's copy of the ticket (no helpdesk call); acting may not.
    opened = card_to_show(request.args, use_page_ticket=True)
    if not isinstance(opened, CardRequest):
        return opened
    actions_url = url_for("suggestions.act")
    return render_card(
        opened.installation, opened.snapshot, now=opened.now, actions_url=actions_url
    ), 200


@bp.post("/actions")
def act() -> ResponseReturnValue:
    """Record an agent's apply, dismiss or escalate, and render the card around the result."""
    as_json = request.is_json
    acting = card_to_act_on(_fields(), as_json=as_json)
    if not isinstance(acting, CardRequest):
        return acting
    return answer_action(
        acting.installation,
        acting.snapshot,
        agent_id=acting.session.user_id,
        fields=acting.fields,
        now=acting.now,
        actions_url=url_for("suggestions.act"),
        as_json=as_json,
    )


def answer_action(
    installation: Installation,
    snapshot: HelpdeskSnapshot,
    *,
    agent_id: str | None,
    fields: Mapping[str, object],
    now: datetime,
    actions_url: str,
    as_json: bool = False,
) -> ResponseReturnValue:
    """Record an agent's action on the ticket and answer with the card around the result.

    The one way every helpdesk's sidebar records an action: the ticket, and so the customer,
    come from `snapshot` (read from the helpdesk), never from the page's fields.
    """
    session = db.session()
    if fields.get("kind") in (UNDO, CHANGE_REASON):
        return _answer_change(
            installation,
            snapshot,
            agent_id=agent_id,
            fields=fields,
            now=now,
            actions_url=actions_url,
            as_json=as_json,
        )
    try:
        outcome = record_action(
            session,
            installation,
            ticket=snapshot.ticket,
            requester=snapshot.requester,
            agent_id=agent_id,
            fields=fields,
            now=now,
        )
    except InvalidAction as invalid:
        session.rollback()
        if as_json:
            return jsonify({"errors": invalid.errors}), 422
        state = FormState(
            exception=str(fields.get("exception", "")),
            kind=str(fields.get("kind", "")),
            values=fields,
            errors=invalid.errors,
        )
        return render_card(
            installation, snapshot, now=now, actions_url=actions_url, form=state
        ), 422
    except ActionRefused as refusal:
        session.rollback()
        if as_json:
            return jsonify({"refused": str(refusal)}), 409
        return render_card(
            installation, snapshot, now=now, actions_url=actions_url, refusal=said(refusal)
        ), 409
    action = outcome.action
    if as_json:
        return jsonify(
            {
                "id": action.id,
                "kind": action.kind,
                "exception": action.exception_key,
                "amount_cents": action.amount_cents,
                "rule_id": action.rule_id,
                "rule_version": action.rule_version,
                "message": outcome.message,
                "duplicate": outcome.duplicate,
            }
        ), 200
    return render_card(
        installation,
        snapshot,
        now=now,
        actions_url=actions_url,
        result=outcome.message,
        recorded=action,
    ), 200


def _answer_change(
    installation: Installation,
    snapshot: HelpdeskSnapshot,
    *,
    agent_id: str | None,
    fields: Mapping[str, object],
    now: datetime,
    actions_url: str,
    as_json: bool,
) -> ResponseReturnValue:
    """Undo the agent's action (`action_key`), or give it another `reason`, within the window."""
    session = db.session()
    key, window = str(fields.get("action_key", "")), settings().undo_seconds
    try:
        if fields.get("kind") == UNDO:
            action = undo_action(
                session,
                installation,
                idempotency_key=key,
                agent_id=agent_id,
                now=now,
                window_seconds=window,
            )
            message = gettext("Undone: nothing was sent to the ticket.")
        else:
            action = change_reason(
                session,
                installation,
                idempotency_key=key,
                agent_id=agent_id,
                reason=str(fields.get("reason", "")),
                now=now,
                window_seconds=window,
            )
            message = gettext("Reason changed before the note was sent.")
    except (ActionRefused, NotFound, InvalidAction) as refusal:
        session.rollback()
        words = (
            "; ".join(refusal.errors.values())
            if isinstance(refusal, InvalidAction)
            else str(refusal)
        )
        if as_json:
            return jsonify({"refused": words}), 409
        words = (
            "; ".join(say(error) for error in refusal.errors.values())
            if isinstance(refusal, InvalidAction)
            else said(refusal)
        )
        return render_card(
            installation, snapshot, now=now, actions_url=actions_url, refusal=words
        ), 409
    if as_json:
        undone = action.undone_at is not None
        return jsonify({"id": action.id, "undone": undone, "reason": action.reason_code}), 200
    return render_card(
        installation,
        snapshot,
        now=now,
        actions_url=actions_url,
        result=message,
        recorded=action if action.undone_at is None else None,
    ), 200


def _fields() -> dict[str, object] | None:
    """The action's fields from a JSON object or a form, as texts (amount_cents stays whole)."""
    if not request.is_json:
        return dict(request.form.items())
    raw = request.get_json(silent=True)
    if not isinstance(raw, dict):
        return None
    return {
        str(key): value if isinstance(value, str | int) and not isinstance(value, bool) else ""
        for key, value in raw.items()
    }


def render_card(
    installation: Installation,
    snapshot: HelpdeskSnapshot,
    *,
    now: datetime,
    actions_url: str,
    form: FormState | None = None,
    result: str | None = None,
    refusal: str | None = None,
    recorded: Action | None = None,
    template: str = "sidebar/_suggestions.html",
    known: TicketState | None = None,
) -> str:
    """The suggestions card for the ticket; its forms post to `actions_url`.

    `recorded`, the action just taken, gets Undo (and a choice of reason) while the undo
    window lasts. `known`: what the view read of the ticket just now (`ticket_state`).

    `template` may be one that includes the card in what a helpdesk's page expects around it.
    """
    card: SuggestionsCard = suggestions_for(
        db.session(),
        installation,
        ticket=snapshot.ticket,
        requester=snapshot.requester,
        now=now,
        reads=helpdesks().reads,
        known=known,
    )
    if viewer_mask(installation).hides(FieldGroup.MONEY):
        # The order a share is priced from is the customer's spend; the offer's own amount
        # stays, as the agent needs it to give the offer.
        card = replace(
            card,
            offers=tuple(replace(offer, priced_from=None) for offer in card.offers),
        )
    # The page's copy of a ticket is good for showing, never for deciding what to record.
    # Recorded once the answer is made (`ExposureRecords`): the agent does not wait for it.
    if card.exposures is not None and card.exposures.exposures and not snapshot.ticket_from_page:
        helpdesks().exposures.record(
            installation.id,
            ticket_id=snapshot.ticket.id,
            found=card.exposures,
            now=now,
            start=later,
        )
    window = settings().undo_seconds
    undoable = (
        recorded
        if recorded is not None
        and window > 0
        and recorded.kind in UNDOABLE
        and recorded.undone_at is None
        and now < recorded.created_at + timedelta(seconds=window)
        else None
    )
    return render_template(
        template,
        card=card,
        undoable=undoable,
        undo_seconds=window,
        form=form,
        result=result,
        refusal=refusal,
        ticket_id=snapshot.ticket.id,
        requester_id=snapshot.requester.id,
        actions_url=actions_url,
        currency=installation.currency,
        amount=lambda cents, currency: exact_money(cents, currency, request_locale()),
        units=cents_as_units,
        done_line=lambda action: say(done_line(action, card)),
        condition_words=lambda conditions: " · ".join(
            map(say, condition_words(conditions, snapshot.ticket.subject))
        ),
        new_key=lambda: secrets.token_urlsafe(18),
        now=now,
        # What the shop gives for the ticket's actions, and the offers it does not give. A
        # gesture is given for an action and on its ticket (plugin/gestures/planning.py): a
        # ticket with none recorded, every ticket's first view, has none to read.
        gestures=(
            ticket_gestures(db.session(), installation.id, snapshot.ticket.id, now=now)
            if card.done
            else []
        ),
        gestures_url=url_for("gestures.card"),
        # Shown, not acted on: the installation's kinds through the read cache (a few seconds
        # old at most on another process); giving a gesture reads them itself.
        record_only=record_only(
            [offer.suggestion.exception for offer in card.offers],
            helpdesks().reads.get(
                installation.id,
                "gesture kinds",
                lambda: enabled_kinds(db.session(), installation.id),
            ),
        ),
    )


def said(error: Exception) -> str:
    """An error's sentence in the agent's language: its Words when the service built one."""
    sentence = error.args[0] if error.args else ""
    return say(sentence) if isinstance(sentence, str) else str(error)
