"""The action log read back: the kinds of action it records and which of them are grants, what
a ticket's log holds, what a customer was granted, and each action said in a sentence.

Goodwill and caps count the applied and approved actions of the customer (or, for someone who
is not a customer yet, of the helpdesk requester). Handled actions grant nothing: they count
toward no goodwill, cap, budget or cost. No Flask here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.exceptions import ExceptionType, Grant, ReasonCode
from plugin.domain.rules import MAX_CAP_DAYS, TicketAction
from plugin.domain.rules import ActionKind as HandlingKind
from plugin.domain.wording import N_, Words
from plugin.goodwill.money import exact_amount
from plugin.models import Action, Gesture


class ActionKind(StrEnum):
    """What the action log records."""

    APPLIED = "applied"
    DISMISSED = "dismissed"
    ESCALATED = "escalated"  # waiting for a supervisor's approval
    APPROVED = "approved"
    REFUSED = "refused"
    HANDLED = "handled"  # a rule's ticket handling applied to the ticket: no grant


# The actions that granted something: what goodwill, caps and budgets count.
GRANT_KINDS = (ActionKind.APPLIED, ActionKind.APPROVED)
# A grant whose gesture the shop refused (or the policy stopped) gave nothing: it counts
# toward no cap or budget (`plugin/gestures`).
REFUSED_GESTURE = "refused"


def gave_something() -> sa.ColumnElement[bool]:
    """An action that did not end in a refused gesture."""
    return ~sa.exists().where(Gesture.action_id == Action.id, Gesture.status == REFUSED_GESTURE)


def charged_cents() -> sa.ColumnElement[int | None]:
    """What an action is charged: the amount its gesture actually gave, else its amount."""
    given = (
        sa.select(Gesture.given_cents)
        .where(Gesture.action_id == Action.id, Gesture.given_cents.is_not(None))
        .scalar_subquery()
    )
    return sa.func.coalesce(given, Action.amount_cents)


# What agents and approvers did about suggested exceptions: what reports tally.
EXCEPTION_KINDS = tuple(kind for kind in ActionKind if kind is not ActionKind.HANDLED)


def handling_of(action: Action) -> TicketAction | None:
    """The ticket handling a handled action applies; None for any other action."""
    if (
        action.kind != ActionKind.HANDLED
        or action.handling not in tuple(HandlingKind)
        or not action.handling_value
    ):
        return None
    return TicketAction(HandlingKind(action.handling), action.handling_value)


def ticket_actions(session: Session, installation_id: int, ticket_id: str) -> list[Action]:
    """What was recorded about exceptions and ticket handling on a ticket, newest first (not
    review actions)."""
    bound = {"installation_id": installation_id, "ticket_id": ticket_id}
    return list(session.scalars(ticket_actions_query(), bound))


def grants_to(
    session: Session,
    installation_id: int,
    customer_id: int | None,
    requester_id: str,
    *,
    now: datetime,
) -> tuple[Grant, ...]:
    """What was granted to the customer (or requester) within the longest cap there can be."""
    bound = grants_bound(installation_id, customer_id, requester_id, now=now)
    rows = session.execute(grants_query(by_customer=customer_id is not None), bound)
    return tuple(Grant(key, int(amount or 0), at) for key, amount, at in rows)


def grants_bound(
    installation_id: int, customer_id: int | None, requester_id: str, *, now: datetime
) -> dict[str, object]:
    """`grants_query`'s values: whose grants, since when."""
    bound: dict[str, object] = {
        "installation_id": installation_id,
        "requester_id": requester_id,
        "since": now - timedelta(days=MAX_CAP_DAYS),
    }
    if customer_id is not None:
        bound["customer_id"] = customer_id
    return bound


# The sidebar's cards run these on every view: built once, with bound values, because building
# a statement costs SQLAlchemy more than running it.


@cache
def ticket_actions_query() -> sa.Select[Action]:
    return (
        sa.select(Action)
        .where(
            Action.installation_id == sa.bindparam("installation_id"),
            Action.ticket_id == sa.bindparam("ticket_id"),
            Action.kind.in_(tuple(ActionKind)),
        )
        .order_by(Action.created_at.desc(), Action.id.desc())
    )


@cache
def grants_query(*, by_customer: bool) -> sa.Select[str, int | None, datetime]:
    installation = Action.installation_id == sa.bindparam("installation_id")
    requester = sa.and_(installation, Action.requester_id == sa.bindparam("requester_id"))
    # Each side of the OR names the installation, so each has its index (SQLite then reads
    # both and joins them, rather than walking every action of the installation).
    who = (
        sa.or_(sa.and_(installation, Action.customer_id == sa.bindparam("customer_id")), requester)
        if by_customer
        else requester
    )
    return sa.select(Action.exception_key, charged_cents(), Action.created_at).where(
        Action.kind.in_(GRANT_KINDS),
        Action.undone_at.is_(None),
        gave_something(),
        who,
        Action.created_at > sa.bindparam("since"),
    )


def describe_action(action: Action, catalog: Mapping[str, ExceptionType]) -> str:
    """Say what was recorded: "Applied: $15 Waived shipping fee — recorded; ..."."""
    handling = handling_of(action)
    if handling is not None:
        return N_("Ticket handling: %(action)s.", action=handling.describe())
    entry = catalog.get(action.exception_key)
    name = entry.name if entry else action.exception_key
    reason = _reason_label(entry, action) if entry else action.reason_code
    # Delivery to the ticket as a note comes with the action outbox; until then, say only this.
    if action.kind == ActionKind.DISMISSED or action.kind not in _RECORDED:
        return N_(
            "Dismissed: %(name)s (%(reason)s) — recorded in the action log.",
            name=name,
            reason=reason,
        )
    if action.amount_cents is None:
        return Words(_RECORDED[ActionKind(action.kind)][1], {"name": name})
    shown = exact_amount(action.amount_cents, action.currency)
    return Words(_RECORDED[ActionKind(action.kind)][0], {"amount": shown, "name": name})


# What was recorded, with an amount and without: the agent's answer and the note's headline.
_RECORDED = {
    ActionKind.APPLIED: (
        N_("Applied: %(amount)s %(name)s — recorded in the action log."),
        N_("Applied: %(name)s — recorded in the action log."),
    ),
    ActionKind.ESCALATED: (
        N_("Sent for approval: %(amount)s %(name)s — recorded; a supervisor decides."),
        N_("Sent for approval: %(name)s — recorded; a supervisor decides."),
    ),
    ActionKind.APPROVED: (
        N_("Approved: %(amount)s %(name)s — recorded in the action log."),
        N_("Approved: %(name)s — recorded in the action log."),
    ),
    ActionKind.REFUSED: (
        N_("Refused: %(amount)s %(name)s — recorded in the action log."),
        N_("Refused: %(name)s — recorded in the action log."),
    ),
}


def _reason_label(entry: ExceptionType, action: Action) -> str | None:
    reasons: Iterable[ReasonCode] = (*entry.apply_reasons, *entry.dismiss_reasons)
    return next((r.label for r in reasons if r.code == action.reason_code), action.reason_code)
