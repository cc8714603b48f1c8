"""Review actions in the action log: their kinds, and how each reads in the ticket's note.

Checking, unchecking and completing an item are actions (`ReviewActionKind`), with the ticket,
customer, agent, time, and the template and item they concern; the outbox delivers them to the
ticket like every action (those taken close together in one note). A completed review's note
lists what was checked. Importing this module registers their sentence with the note builder.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.models import AccountReview, Action, ReviewCheck, ReviewItem, ReviewTemplate


class ReviewActionKind(StrEnum):
    """What the action log records about reviews (next to the exceptions' kinds)."""

    CHECKED = "review_checked"
    UNCHECKED = "review_unchecked"
    COMPLETED = "review_completed"


REVIEW_KINDS = tuple(kind.value for kind in ReviewActionKind)


def describe_review_action(session: Session, action: Action) -> str:
    """Say a review action in one sentence, for the ticket's note and for people reading logs.

    "Account review “High-value account review”: checked “Confirm the delivery address”." The
    template and item are read as they are now; one since removed is said to be.
    """
    template = (
        session.get(ReviewTemplate, action.review_template_id)
        if action.review_template_id is not None
        else None
    )
    if template is not None and template.installation_id != action.installation_id:
        template = None
    review = f"Account review “{template.name}”" if template else "Account review"
    item = (
        session.get(ReviewItem, action.review_item_id)
        if action.review_item_id is not None
        else None
    )
    if item is not None and item.installation_id != action.installation_id:
        item = None
    what = f"“{item.label}”" if item else "an item since removed from the checklist"
    match action.kind:
        case ReviewActionKind.CHECKED:
            return f"{review}: checked {what}."
        case ReviewActionKind.UNCHECKED:
            return f"{review}: unchecked {what}."
        case ReviewActionKind.COMPLETED:
            checked = _checked_when_completed(session, action)
            listed = f" ({'; '.join(checked)})" if checked else ""
            return f"{review} completed: every required item is checked{listed}."
        case _:
            return f"{review}: {action.kind.replace('_', ' ')}."


def _checked_when_completed(session: Session, action: Action) -> list[str]:
    """The labels of the items checked on the action's review when it was completed, in order."""
    return list(
        session.scalars(
            sa.select(ReviewItem.label)
            .join(ReviewCheck, ReviewCheck.item_id == ReviewItem.id)
            .join(AccountReview, AccountReview.id == ReviewCheck.review_id)
            .where(
                AccountReview.installation_id == action.installation_id,
                AccountReview.ticket_id == action.ticket_id,
                AccountReview.template_id == action.review_template_id,
                ReviewCheck.installation_id == action.installation_id,
                ReviewCheck.checked_at <= action.created_at,
            )
            .order_by(ReviewItem.position, ReviewItem.id)
        )
    )


def review_actions(session: Session, installation_id: int, ticket_id: str) -> Sequence[Action]:
    """The review actions on a ticket, oldest first."""
    return list(
        session.scalars(
            sa.select(Action)
            .where(
                Action.installation_id == installation_id,
                Action.ticket_id == ticket_id,
                Action.kind.in_(REVIEW_KINDS),
            )
            .order_by(Action.created_at, Action.id)
        )
    )


def _register_note_sentence() -> None:
    """Tell the outbox's note builder how review actions read on the ticket."""
    from plugin.delivery import (
        notes as delivery_notes,  # the outbox's module; imported late to keep this light
    )

    delivery_notes.register_note_sentence(REVIEW_KINDS, describe_review_action)


_register_note_sentence()
