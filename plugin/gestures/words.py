"""A gesture said in words, for the ticket's note and the sidebar: what was given (the code,
the gift card's last 4 and balance, the refund's amount and id), what is still on its way, or
why nothing was given. A gift card's full code is never said here (it is shown once, apart).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.wording import N_
from plugin.gestures.interface import GestureKind
from plugin.gestures.planning import GestureStatus, percent_text
from plugin.goodwill.money import exact_amount
from plugin.models import Gesture


def gesture_of(session: Session, installation_id: int, action_id: int) -> Gesture | None:
    """The gesture an action gives (or asked for, waiting for approval), if any."""
    return session.scalars(
        sa.select(Gesture).where(
            Gesture.installation_id == installation_id,
            sa.or_(Gesture.action_id == action_id, Gesture.request_action_id == action_id),
        )
    ).first()


def _money(cents: int | None, currency: str) -> str:
    return exact_amount(cents, currency) if cents is not None else ""


def given_words(gesture: Gesture) -> str:
    """What the shop gave, in one line: "Discount code RG1A2B ($8.00 off)"."""
    currency = gesture.currency
    amount = gesture.given_cents if gesture.given_cents is not None else gesture.amount_cents
    match gesture.kind:
        case GestureKind.DISCOUNT_CODE:
            off = percent_text(gesture.percent) or _money(amount, currency)
            code = gesture.given_code or gesture.code
            return N_("Discount code %(code)s (%(off)s off)", code=code, off=off)
        case GestureKind.FREE_SHIPPING:
            return N_("Free-shipping code %(code)s", code=gesture.given_code or gesture.code)
        case GestureKind.GIFT_CARD:
            balance = _money(gesture.balance_cents, currency) or _money(amount, currency)
            return N_(
                "Gift card ending %(last4)s, balance %(balance)s",
                last4=gesture.code_last4 or "????",
                balance=balance,
            )
        case GestureKind.REFUND:
            return N_(
                "Refund of %(amount)s on order %(order)s (refund id %(id)s)",
                amount=_money(amount, currency),
                order=gesture.order_number,
                id=gesture.reference or gesture.shop_id,
            )
        case _:
            return N_(
                "Free replacement of order %(order)s (order %(id)s)",
                order=gesture.order_number,
                id=gesture.reference or gesture.shop_id,
            )


def note_line(gesture: Gesture) -> str | None:
    """The note's line about the gesture, once it is settled (None while it is not)."""
    if gesture.status == GestureStatus.GIVEN:
        return f"Given in the shop: {given_words(gesture)}"
    if gesture.status == GestureStatus.REFUSED:
        return f"Not given in the shop: {gesture.refusal or 'refused'}"
    if gesture.status == GestureStatus.WAITING_APPROVAL:
        return "In the shop: given once a supervisor approves it"
    return None
