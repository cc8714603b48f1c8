"""The ticket's gestures as the sidebar shows them: "Giving…" while the shop is asked (and
that it is not answering, when the last attempt failed), then what was given with the value to
copy, or why nothing was given. A gift card's full code is shown once, then cleared. No Flask.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.delivery.outbox import DeliveryStatus
from plugin.domain.exceptions import ExceptionType
from plugin.domain.gesture_binding import KIND_NAMES, RECORD_ONLY
from plugin.domain.wording import N_
from plugin.gestures.interface import GestureKind
from plugin.gestures.planning import GestureStatus, active_binding
from plugin.gestures.words import given_words
from plugin.models import Delivery, Gesture

# The newest gestures of a ticket the card lists.
SHOWN = 5


@dataclass(frozen=True)
class GestureView:
    """One gesture on the card."""

    id: int
    kind: str
    # giving, waiting, given, refused or dead: what the card's style and the poll follow.
    state: str
    words: str
    # What the Copy button copies (a code, a refund id); None: no button.
    copy: str | None = None
    copy_label: str = "Copy"
    # A gift card's full code, on the one render that shows it.
    full_code: str | None = None

    @property
    def in_progress(self) -> bool:
        return self.state in ("giving", "waiting")


def ticket_gestures(
    session: Session, installation_id: int, ticket_id: str, *, now: datetime
) -> list[GestureView]:
    """The ticket's newest gestures, newest first; a gift card's code is taken (cleared) by
    the render that shows it, and committed, so no later render shows it again."""
    bound = {"installation_id": installation_id, "ticket_id": ticket_id}
    rows = session.execute(_ticket_gestures_query(), bound).all()
    views = [_view(session, gesture, delivery_status, now) for gesture, delivery_status in rows]
    return views


@cache
def _ticket_gestures_query() -> sa.Select[Gesture, str]:
    """Built once, with bound values: every suggestions card runs it, and building it cost
    SQLAlchemy more than running it."""
    return (
        sa.select(Gesture, Delivery.status)
        .outerjoin(Delivery, Delivery.action_id == Gesture.action_id)
        .where(
            Gesture.installation_id == sa.bindparam("installation_id"),
            Gesture.ticket_id == sa.bindparam("ticket_id"),
        )
        .order_by(Gesture.id.desc())
        .limit(SHOWN)
    )


# What a gesture waiting for approval is, at the start of its line.
KIND_TITLES = {
    GestureKind.DISCOUNT_CODE: N_("A one-time discount code"),
    GestureKind.GIFT_CARD: N_("A gift card"),
    GestureKind.REFUND: N_("A refund on the order"),
    GestureKind.REPLACEMENT: N_("A free replacement of the order"),
    GestureKind.FREE_SHIPPING: N_("A free-shipping code"),
}


def _view(
    session: Session, gesture: Gesture, delivery_status: str | None, now: datetime
) -> GestureView:
    kind = KIND_TITLES.get(GestureKind(gesture.kind)) or KIND_NAMES.get(
        GestureKind(gesture.kind), gesture.kind
    )
    if gesture.status == GestureStatus.WAITING_APPROVAL:
        return GestureView(
            gesture.id, gesture.kind, "waiting", N_("%(kind)s: given once approved.", kind=kind)
        )
    if gesture.status == GestureStatus.REFUSED:
        # The shop's own refusal stays as it said it.
        why = gesture.refusal or N_("refused")
        return GestureView(gesture.id, gesture.kind, "refused", N_("Not given: %(why)s", why=why))
    if gesture.status == GestureStatus.PENDING:
        if delivery_status == DeliveryStatus.DEAD.value:
            return GestureView(
                gesture.id,
                gesture.kind,
                "dead",
                N_(
                    "Not given: the shop did not answer (%(error)s). "
                    "An admin can retry it from the console's delivery page.",
                    error=gesture.last_error or N_("no answer"),
                ),
            )
        words = N_("Giving…")
        if gesture.last_error:
            words = N_("Giving… (the shop is not answering, will retry)")
        return GestureView(gesture.id, gesture.kind, "giving", words)
    full_code = _take_full_code(session, gesture, now)
    copy, label = None, N_("Copy")
    if gesture.kind in (GestureKind.DISCOUNT_CODE, GestureKind.FREE_SHIPPING):
        copy, label = gesture.given_code or gesture.code, N_("Copy code")
    elif gesture.kind == GestureKind.GIFT_CARD and full_code:
        copy, label = full_code, N_("Copy gift card code")
    elif gesture.kind == GestureKind.REFUND:
        copy, label = gesture.reference or gesture.shop_id, N_("Copy refund id")
    return GestureView(
        gesture.id,
        gesture.kind,
        "given",
        N_("Given: %(what)s", what=given_words(gesture)),
        copy=copy,
        copy_label=label,
        full_code=full_code,
    )


def _take_full_code(session: Session, gesture: Gesture, now: datetime) -> str | None:
    """The gift card's full code if this render is the one to show it (then it is cleared)."""
    code = gesture.gift_card_code
    if not code:
        return None
    taken = session.execute(
        sa.update(Gesture)
        .where(Gesture.id == gesture.id, Gesture.gift_card_code.is_not(None))
        .values(gift_card_code=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return code if taken.rowcount == 1 else None  # type: ignore[attr-defined]


def record_only(entries: list[ExceptionType], kinds: Iterable[GestureKind]) -> list[str]:
    """The names of the entries the shop does not give (no binding, or its kind off among the
    installation's `enabled_kinds`)."""
    given = frozenset(kinds)
    return [entry.name for entry in entries if active_binding(entry, given) is None]


__all__ = ["RECORD_ONLY", "GestureView", "record_only", "ticket_gestures"]
