"""Which gesture kinds an installation gives in its shop, and the gesture an agent's Apply asks
for: checked before anything is sent (a prospect for an order kind, an order of another
customer, an amount above the order or the gift card's cap) and written as a `gestures` row in
the action's own transaction. No Flask here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers.recent_orders import named_stored_order
from plugin.domain.exceptions import ExceptionType, PercentCost
from plugin.domain.gesture_binding import KIND_NAMES, GestureBinding, GestureValue
from plugin.domain.helpdesk import Ticket
from plugin.domain.order_numbers import comparable, order_numbers
from plugin.gestures.interface import GestureKind
from plugin.gestures.shops import shop_customer_id, shop_order_id
from plugin.goodwill.errors import ActionRefused
from plugin.goodwill.money import exact_money
from plugin.models import Action, Customer, Gesture, GestureKindSetting, Installation, Order


class GestureStatus:
    """Where a gesture stands (`Gesture.status`)."""

    WAITING_APPROVAL = "waiting_approval"
    PENDING = "pending"
    GIVEN = "given"
    REFUSED = "refused"
    # Shown, not stored: a pending gesture whose delivery the outbox parked dead.
    DEAD = "dead"


SUPERVISOR_REFUSED = "A supervisor did not approve it, so nothing was given."
UNDONE = "Undone by the agent before it was sent, so nothing was given."


# Kinds on and off ------------------------------------------------------------------------


def enabled_kinds(session: Session, installation_id: int) -> frozenset[GestureKind]:
    """The gesture kinds the installation gives in its shop (none until an admin turns one on)."""
    rows = session.scalars(
        sa.select(GestureKindSetting.kind).where(
            GestureKindSetting.installation_id == installation_id,
            GestureKindSetting.enabled.is_(True),
        )
    )
    return frozenset(GestureKind(kind) for kind in rows if kind in tuple(GestureKind))


def set_kind_enabled(
    session: Session, installation: Installation, kind: GestureKind, *, enabled: bool, now: datetime
) -> None:
    """Turn one gesture kind on or off for the installation, and commit."""
    row = session.get(GestureKindSetting, (installation.id, kind.value))
    if row is None:
        session.add(
            GestureKindSetting(
                installation_id=installation.id, kind=kind.value, enabled=enabled, updated_at=now
            )
        )
    elif row.enabled != enabled:
        row.enabled, row.updated_at = enabled, now
    session.commit()


def active_binding(entry: ExceptionType, kinds: Iterable[GestureKind]) -> GestureBinding | None:
    """The entry's binding when its kind is on; None means record only."""
    binding = entry.gesture
    return binding if binding is not None and binding.kind in set(kinds) else None


# The gesture an Apply asks for --------------------------------------------------------------


def marker_for(installation_id: int, idempotency_key: str) -> str:
    """The gesture's marker and discount code: the same for the same action on every attempt,
    unique per installation, letters and digits only (a code the customer types)."""
    digest = hashlib.sha256(f"{installation_id}:{idempotency_key}".encode()).hexdigest()
    return "RG" + digest[:14].upper()


def plan_gesture(
    session: Session,
    installation: Installation,
    *,
    action: Action,
    entry: ExceptionType,
    customer: Customer | None,
    ticket: Ticket,
    reason: str,
    now: datetime,
) -> Gesture | None:
    """The gesture row for an applied or escalated action whose entry is bound to a kind that
    is on; None when it stays record only. Added to the session with the action (one commit).

    Raises ActionRefused, before anything is sent, when it cannot be given: an order kind
    for someone with no orders, an order of another customer, an amount above the order's or
    above the gift card's cap, a customer or order the shop does not know.
    """
    binding = active_binding(entry, enabled_kinds(session, installation.id))
    if binding is None:
        return None
    what = KIND_NAMES[binding.kind]
    order = _order_for(session, installation, customer, ticket, binding, what, now=now)
    amount = action.amount_cents
    percent = None
    if (
        binding.kind is GestureKind.DISCOUNT_CODE
        and binding.value is GestureValue.PERCENT
        and isinstance(entry.cost, PercentCost)
    ):
        percent, amount = entry.cost.percent, None
    elif binding.kind is not GestureKind.REPLACEMENT and not amount:
        raise ActionRefused(f"{entry.name} has no amount to give as {what}.")
    cap = None
    if order is not None and binding.kind is GestureKind.GIFT_CARD:
        cap = order.amount_cents * binding.gift_card_cap_percent // 100
    elif order is not None and binding.kind is GestureKind.REFUND:
        cap = order.amount_cents
    if cap is not None and amount is not None and amount > cap:
        raise ActionRefused(
            f"{exact_money(amount, entry.currency)} is above what {what} may be for order "
            f"{order.external_id if order else ''}: at most {exact_money(cap, entry.currency)}."
        )
    customer_ref = shop_customer_id(session, installation, customer) if customer else None
    if customer_ref is None and binding.kind in (
        GestureKind.DISCOUNT_CODE,
        GestureKind.GIFT_CARD,
        GestureKind.FREE_SHIPPING,
    ):
        raise ActionRefused(f"The shop does not know this customer, so {what} cannot be given.")
    order_ref = shop_order_id(installation, order) if order is not None else None
    if order is not None and order_ref is None:
        raise ActionRefused(f"Order {order.external_id} is not in the shop: give it there by hand.")
    marker = marker_for(installation.id, action.idempotency_key)
    codes = (GestureKind.DISCOUNT_CODE, GestureKind.FREE_SHIPPING)
    gesture = Gesture(
        installation_id=installation.id,
        ticket_id=action.ticket_id,
        kind=binding.kind.value,
        status=(
            GestureStatus.WAITING_APPROVAL if action.kind == "escalated" else GestureStatus.PENDING
        ),
        marker=marker,
        code=marker if binding.kind in codes else None,
        amount_cents=amount,
        percent=percent,
        currency=entry.currency,
        customer_ref=customer_ref,
        order_ref=order_ref,
        order_number=order.external_id if order is not None else None,
        cap_cents=cap,
        expires_at=(
            now + timedelta(days=binding.expires_in_days) if binding.expires_in_days else None
        ),
        minimum_order_cents=binding.minimum_order_cents,
        reason=reason,
        outcome_unknown=False,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    gesture.action = action
    gesture.request_action = action
    session.add(gesture)
    return gesture


def _order_for(
    session: Session,
    installation: Installation,
    customer: Customer | None,
    ticket: Ticket,
    binding: GestureBinding,
    what: str,
    *,
    now: datetime,
) -> Order | None:
    """The order the gesture is about: the one the ticket names, else the customer's latest.

    Required for refunds and replacements; a gift card's cap is a share of it when there is one.
    """
    named = None
    if customer is not None:
        named = named_stored_order(
            session, installation.id, customer.id, ticket_text=ticket.order_text, now=now
        )
    if named is None and binding.needs_order:
        others = _named_elsewhere(session, installation.id, customer, ticket.order_text)
        if others is not None:
            raise ActionRefused(
                f"Order {others} belongs to another customer: {what} is given only on this "
                "customer's own orders."
            )
    if named is not None or customer is None:
        if named is None and binding.needs_order:
            raise ActionRefused(
                f"{what.capitalize()} needs an order, and this requester has none with us."
            )
        return named
    latest = session.scalars(
        sa.select(Order)
        .where(
            Order.installation_id == installation.id,
            Order.customer_id == customer.id,
            Order.placed_at <= now,
        )
        .order_by(Order.placed_at.desc(), Order.id.desc())
        .limit(1)
    ).first()
    if latest is None and binding.needs_order:
        raise ActionRefused(
            f"{what.capitalize()} needs an order, and this customer has none with us yet."
        )
    return latest


def _named_elsewhere(
    session: Session, installation_id: int, customer: Customer | None, text: str
) -> str | None:
    """An order number the ticket names that is another customer's, if any."""
    numbers = order_numbers(text)[:10]
    if not numbers:
        return None
    spellings = {s for n in numbers for b in (n.lstrip("#"),) for s in (b, b.upper(), f"#{b}")}
    query = sa.select(Order.external_id).where(
        Order.installation_id == installation_id, Order.external_id.in_(sorted(spellings))
    )
    if customer is not None:
        query = query.where(Order.customer_id != customer.id)
    found = session.scalars(query.limit(1)).first()
    wanted = {comparable(n) for n in numbers}
    return found if found is not None and comparable(found) in wanted else None


def on_approval(session: Session, escalation: Action, decision: Action) -> None:
    """Move the escalated action's gesture to its decision, uncommitted: an approval gives it
    (its delivery carries it), a refusal ends it with nothing given."""
    gesture = session.scalars(
        sa.select(Gesture).where(
            Gesture.installation_id == escalation.installation_id,
            Gesture.action_id == escalation.id,
            Gesture.status == GestureStatus.WAITING_APPROVAL,
        )
    ).first()
    if gesture is None:
        return
    gesture.action = decision
    if decision.kind == "approved":
        gesture.status = GestureStatus.PENDING
    else:
        gesture.status, gesture.refusal = GestureStatus.REFUSED, SUPERVISOR_REFUSED
    gesture.updated_at = decision.created_at


def on_undo(session: Session, action: Action) -> None:
    """End an undone action's gesture, uncommitted: its note (which gives it) is never sent."""
    session.execute(
        sa.update(Gesture)
        .where(
            Gesture.installation_id == action.installation_id,
            Gesture.action_id == action.id,
            Gesture.status.in_((GestureStatus.PENDING, GestureStatus.WAITING_APPROVAL)),
        )
        .values(status=GestureStatus.REFUSED, refusal=UNDONE, updated_at=action.undone_at)
        .execution_options(synchronize_session=False)
    )


def percent_text(percent: Decimal | None) -> str:
    return f"{percent.normalize():f} %" if percent is not None else ""
