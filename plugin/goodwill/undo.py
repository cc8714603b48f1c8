"""Taking an action back, or changing its reason, within the undo window before its note leaves.

An agent's action waits in the outbox for the undo window (`REGULARS_UNDO_SECONDS`). Until a
worker claims it, the agent who took it may undo it (it stays in the log, marked undone, and
counts toward no cap, budget or report; its note is never sent) or pick another of the entry's
reasons. The delivery row is changed conditionally, so an undo and a claim never both win.
No Flask here; every query is scoped to one installation.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.delivery.outbox import DeliveryStatus
from plugin.domain.wording import N_
from plugin.gestures import planning as gestures
from plugin.goodwill.action_log import ActionKind
from plugin.goodwill.errors import ActionRefused, InvalidAction, NotFound
from plugin.goodwill.rulebook import rule_book
from plugin.models import Action, Delivery, Installation

# What an agent may take back: their own actions from the card, not a supervisor's decision.
UNDOABLE = (ActionKind.APPLIED, ActionKind.DISMISSED, ActionKind.ESCALATED, ActionKind.HANDLED)
TOO_LATE = N_("Too late to change: the note is on its way to the ticket.")


def undo_action(
    session: Session,
    installation: Installation,
    *,
    idempotency_key: str,
    agent_id: str | None,
    now: datetime,
    window_seconds: float,
) -> Action:
    """Mark the agent's action undone so its note is never sent; commit and return it.

    Undoing twice is harmless. ActionRefused once the window has passed or a worker has the
    note; NotFound for another installation's action or another agent's.
    """
    action = _own_action(session, installation, idempotency_key, agent_id)
    if action.undone_at is not None:
        return action
    _still_open(action, now=now, window_seconds=window_seconds)
    _hold_unsent_delivery(
        session, installation, action, status=DeliveryStatus.UNDONE.value, updated_at=now
    )
    action.undone_at = now
    # Its gesture was never sent (the note, which gives it, was held): it is not given.
    gestures.on_undo(session, action)
    session.commit()
    return action


def change_reason(
    session: Session,
    installation: Installation,
    *,
    idempotency_key: str,
    agent_id: str | None,
    reason: str,
    now: datetime,
    window_seconds: float,
) -> Action:
    """Give the agent's action another of its entry's reasons before its note leaves; commit.

    InvalidAction for a reason the entry does not offer; ActionRefused when it is too late.
    """
    action = _own_action(session, installation, idempotency_key, agent_id)
    if action.undone_at is not None:
        raise ActionRefused(N_("This action was undone."))
    entry = rule_book(session, installation).catalog.get(action.exception_key)
    if entry is None or action.kind == ActionKind.HANDLED:
        raise InvalidAction({"reason": N_("this action has no reason to change")})
    reasons = entry.dismiss_reasons if action.kind == ActionKind.DISMISSED else entry.apply_reasons
    if not any(r.code == reason for r in reasons):
        listed = ", ".join(r.label for r in reasons)
        raise InvalidAction({"reason": N_("choose one of: %(reasons)s", reasons=listed)})
    _still_open(action, now=now, window_seconds=window_seconds)
    # Locks the delivery row until commit: a worker claiming it now waits, then sends this.
    _hold_unsent_delivery(session, installation, action, updated_at=now)
    action.reason_code = reason
    session.commit()
    return action


def _hold_unsent_delivery(
    session: Session, installation: Installation, action: Action, **values: object
) -> None:
    """Update the action's delivery while nothing of it can be on the ticket yet: pending, not
    gathered into a note, never attempted (an attempt's outcome may be unknown). Else roll back
    and refuse: the note may already say what the agent wants to change."""
    held = session.execute(
        sa.update(Delivery)
        .where(
            Delivery.action_id == action.id,
            Delivery.installation_id == installation.id,
            Delivery.status == DeliveryStatus.PENDING.value,
            Delivery.note_action_id.is_(None),
            Delivery.attempts == 0,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if held.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise ActionRefused(TOO_LATE)


def _own_action(
    session: Session, installation: Installation, key: str, agent_id: str | None
) -> Action:
    action = session.scalars(
        sa.select(Action).where(
            Action.installation_id == installation.id,
            Action.idempotency_key == key,
            Action.kind.in_(UNDOABLE),
        )
    ).first()
    if action is None or (action.agent_id is not None and action.agent_id != agent_id):
        raise NotFound(N_("There is no such action of yours on this helpdesk."))
    return action


def _still_open(action: Action, *, now: datetime, window_seconds: float) -> None:
    if now > action.created_at + timedelta(seconds=window_seconds):
        raise ActionRefused(TOO_LATE)
