"""The outbox's gesture step: before an action's note is written, its gesture is given in the
shop exactly once, under the policy as it stands at that moment.

Each gesture is settled in its own commits: marked as being sent (so a worker killed mid-call
leaves `outcome_unknown` behind), then given, refused or left to retry. After an unknown
outcome the next attempt asks the shop to `find` the gesture by its marker and records what it
finds instead of giving again. Before giving, the customer's cap and the month's budget are
checked again (an amount they no longer allow is refused, nothing charged), and a refund is
checked against what the order can still refund. No Flask here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.delivery.outbox import Claim, DeliveryStatus
from plugin.domain.exceptions import SegmentRef, granted_within
from plugin.gestures.interface import (
    GestureKind,
    GestureRequest,
    GestureShop,
    GivenGesture,
    ShopRefused,
    ShopUnavailable,
)
from plugin.gestures.planning import GestureStatus
from plugin.goodwill.action_log import grants_to
from plugin.goodwill.catalog import budget_statuses
from plugin.goodwill.money import exact_money
from plugin.goodwill.rulebook import rule_book
from plugin.models import Action, Delivery, Gesture, Installation

logger = logging.getLogger(__name__)

# Gives an installation its gesture shop on the worker's session; None: no shop connected.
ShopFactory = Callable[[Session, Installation], GestureShop | None]
NO_SHOP = "No shop is connected to give it in: give it in your shop by hand."
MAX_ERROR_LENGTH = 500
# The shop's own "wait": GraphQL THROTTLED and 429, each with the wait it names.
WAITS = frozenset({"throttled", "rate_limited"})
BUDGET_WAIT_SECONDS = 2.0


@dataclass(frozen=True)
class Unsettled:
    """A gesture the shop could not give now: retry later (after `retry_after` if it named one)."""

    error_kind: str
    error: str
    retry_after: float | None = None
    # A wait the shop asked for (throttled, 429, the store's call budget) is not a failure:
    # it never parks the gesture dead, as a helpdesk's 429 does not.
    counts_as_failure: bool = True


def settle_gestures(
    session: Session,
    held: Claim,
    installation: Installation,
    shops: ShopFactory | None,
    *,
    now: Callable[[], datetime],
) -> Unsettled | None:
    """Give the pending gestures of the note's actions; None once every one is settled."""
    pending = session.scalars(
        sa.select(Gesture.id)
        .where(
            Gesture.installation_id == installation.id,
            Gesture.action_id.in_(held.actions),
            Gesture.status == GestureStatus.PENDING,
        )
        .order_by(Gesture.action_id)
    ).all()
    for gesture_id in pending:
        problem = _settle(session, held, installation, gesture_id, shops, now)
        if problem is not None:
            return problem
    return None


def _settle(
    session: Session,
    held: Claim,
    installation: Installation,
    gesture_id: int,
    shops: ShopFactory | None,
    now: Callable[[], datetime],
) -> Unsettled | None:
    gesture = session.get(Gesture, gesture_id)
    assert gesture is not None
    was_unknown = gesture.outcome_unknown
    if not _mark_sending(session, held, gesture_id, now()):
        return Unsettled("lost_claim", "another worker took this delivery over")
    gesture = session.get(Gesture, gesture_id)
    assert gesture is not None
    request = request_for(gesture)
    try:
        shop = shops(session, installation) if shops is not None else None
        if shop is None:
            _refused(session, gesture_id, NO_SHOP, now())
            return None
        if was_unknown:
            found = shop.find(request)
            if found is not None:
                logger.info("gestures: %s was given before; found by its marker", gesture.marker)
                _given(session, gesture_id, found, now())
                return None
        refusal = policy_refusal(session, installation, gesture.action, now())
        if refusal is None and request.kind is GestureKind.REFUND and request.order_id:
            left = shop.refundable(request.order_id)
            if request.amount is not None and request.amount > left:
                refusal = (
                    f"Order {gesture.order_number} has only "
                    f"{exact_money(_cents(left), gesture.currency)} left to refund."
                )
        if refusal is not None:
            _refused(session, gesture_id, refusal, now())
            return None
        given = shop.give(request)
    except ShopRefused as error:
        _refused(session, gesture_id, error.reason[:MAX_ERROR_LENGTH], now())
        return None
    except ShopUnavailable as error:
        message = str(error)[:MAX_ERROR_LENGTH] or "the shop did not answer"
        # Unknown stays unknown until a find has answered: a find that failed answered nothing.
        unknown = error.outcome_unknown or was_unknown
        _unavailable(session, gesture_id, message, unknown=unknown, at=now())
        if error.kind == "budget":
            # Nothing was sent: the store's call budget is spent for now.
            wait = error.retry_after or BUDGET_WAIT_SECONDS
            return Unsettled("budget", message, wait, counts_as_failure=False)
        if error.kind in WAITS or error.retry_after is not None:
            wait = error.retry_after or BUDGET_WAIT_SECONDS
            return Unsettled("shop_throttled", message, wait, counts_as_failure=False)
        return Unsettled("shop_unavailable", f"The shop is not answering: {message}")
    except Exception as error:  # a bug must not stop the outbox; it retries and is parked
        logger.exception("gestures: giving %s failed unexpectedly", gesture.marker)
        session.rollback()
        message = f"Regulars failed while giving it: {type(error).__name__}"
        _unavailable(session, gesture_id, message, unknown=True, at=now())
        return Unsettled("internal", message)
    _given(session, gesture_id, given, now())
    return None


def request_for(gesture: Gesture) -> GestureRequest:
    """The request a gesture row stands for, the same on every attempt."""
    return GestureRequest(
        kind=GestureKind(gesture.kind),
        marker=gesture.marker,
        customer_id=gesture.customer_ref,
        currency=gesture.currency,
        amount=Decimal(gesture.amount_cents) / 100 if gesture.amount_cents is not None else None,
        percent=gesture.percent,
        order_id=gesture.order_ref,
        expires_at=gesture.expires_at,
        minimum_order=(
            Decimal(gesture.minimum_order_cents) / 100
            if gesture.minimum_order_cents is not None
            else None
        ),
        reason=gesture.reason,
        code=gesture.code,
    )


def policy_refusal(
    session: Session, installation: Installation, action: Action, now: datetime
) -> str | None:
    """Why the customer's cap or the month's budget forbids the action's gesture now; None
    when they allow it. The action itself is counted (it is a grant until refused)."""
    book = rule_book(session, installation)
    rule = next(
        (book.rules[key] for key, rid in book.rule_ids.items() if rid == action.rule_id), None
    )
    if rule is not None and rule.cap is not None:
        grants = grants_to(
            session, installation.id, action.customer_id, action.requester_id, now=now
        )
        recent = granted_within(grants, now=now, days=rule.cap.days)
        used = sum(1 for g in recent if g.exception == action.exception_key)
        if used > rule.cap.times:
            return (
                f"Not given: the customer was granted this {used - 1} times in the last "
                f"{rule.cap.days} days; the rule allows {rule.cap.describe()}."
            )
    if action.budget_field and action.budget_value:
        segment = SegmentRef(action.budget_field, action.budget_value)
        status = next(
            (
                s
                for s in budget_statuses(session, installation.id, now=now)
                if s.budget.segment == segment
            ),
            None,
        )
        if status is not None and not status.allows(0):
            return (
                f"Not given: it would pass the {segment.label} budget "
                f"({status.sentence(action.currency)})."
            )
    return None


def _cents(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _claim_holds(held: Claim) -> sa.ColumnElement[bool]:
    return (
        sa.exists()
        .where(
            Delivery.action_id == held.action_id,
            Delivery.status == DeliveryStatus.IN_FLIGHT.value,
            Delivery.claim_token == held.token,
        )
        .correlate(None)
    )


def _mark_sending(session: Session, held: Claim, gesture_id: int, at: datetime) -> bool:
    """Say, in a commit of its own, that a call may create the gesture: a worker killed during
    it leaves the outcome unknown. False when this worker's claim no longer holds."""
    updated = session.execute(
        sa.update(Gesture)
        .where(
            Gesture.id == gesture_id,
            Gesture.status == GestureStatus.PENDING,
            _claim_holds(held),
        )
        .values(attempts=Gesture.attempts + 1, outcome_unknown=True, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(updated.rowcount == 1)  # type: ignore[attr-defined]


def _finish(session: Session, gesture_id: int, values: dict[str, object]) -> None:
    # Whoever learns the truth records it, claim or not: what the shop did is a fact.
    session.execute(
        sa.update(Gesture)
        .where(Gesture.id == gesture_id, Gesture.status == GestureStatus.PENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    session.expire_all()


def _given(session: Session, gesture_id: int, given: GivenGesture, at: datetime) -> None:
    _finish(
        session,
        gesture_id,
        {
            "status": GestureStatus.GIVEN,
            "outcome_unknown": False,
            "last_error": None,
            "shop_id": given.shop_id[:255],
            "given_code": given.code,
            "code_last4": given.code_last4,
            "balance_cents": _cents(given.balance) if given.balance is not None else None,
            "reference": given.reference,
            "given_cents": _cents(given.amount) if given.amount is not None else None,
            "gift_card_code": given.gift_card_code,
            "given_at": at,
            "updated_at": at,
        },
    )


def _refused(session: Session, gesture_id: int, reason: str, at: datetime) -> None:
    _finish(
        session,
        gesture_id,
        {
            "status": GestureStatus.REFUSED,
            "outcome_unknown": False,
            "refusal": reason,
            "updated_at": at,
        },
    )


def _unavailable(
    session: Session, gesture_id: int, message: str, *, unknown: bool, at: datetime
) -> None:
    _finish(
        session,
        gesture_id,
        {"outcome_unknown": unknown, "last_error": message, "updated_at": at},
    )
