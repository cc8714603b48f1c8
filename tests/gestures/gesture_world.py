"""The gesture tests' world: the goodwill test world with a catalog entry bound to a gesture
and its kind turned on, a shop that gives what it is asked (or fails as scripted), and a
helpdesk that keeps the notes; helpers that run the outbox's attempts.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.clock import utcnow
from plugin.delivery import outbox
from plugin.delivery.worker import attempt
from plugin.demo.exceptions_seed import CATALOG
from plugin.gestures.interface import (
    GestureKind,
    GestureRequest,
    GivenGesture,
    ShopRefused,
    ShopUnavailable,
)
from plugin.gestures.planning import set_kind_enabled
from plugin.goodwill.catalog import save_exception_type
from plugin.helpdesks.interface import TicketChange
from plugin.models import Customer, Delivery, Gesture, Installation, Order
from tests.goodwill import world
from tests.goodwill.world import HIGH_SPENDER, NOW

POLICY = outbox.OutboxPolicy(max_failures=3, backoff_seconds=1.0, lease_seconds=10.0)
# Deliveries are due from the wall clock's now when written; the world's NOW is in the past.
# The outbox runs on the wall clock shifted as the test moves NOW; policy is read at NOW.
_WALL = utcnow() + timedelta(hours=1)


def wall(now: datetime) -> datetime:
    """The outbox's time for the world's `now`."""
    return _WALL + (now - NOW)


@dataclass
class FakeShop:
    """A shop that keeps what it gave by marker, and fails first with what is queued."""

    given: dict[str, GivenGesture] = field(default_factory=dict)
    failures: list[Exception] = field(default_factory=list)
    # Give, then fail as if the answer were lost (the gesture exists, the caller cannot know).
    give_then_lose_answer: bool = False
    refundable_left: Decimal = Decimal("1000")
    gives: int = 0
    finds: int = 0
    # Gift cards are given for this much (a shop may give less than asked).
    given_amount: Decimal | None = None

    def give(self, request: GestureRequest) -> GivenGesture:
        self.gives += 1
        if self.failures:
            raise self.failures.pop(0)
        if request.marker in self.given:
            raise ShopRefused("Code has already been taken")
        amount = self.given_amount if self.given_amount is not None else request.amount
        gift = request.kind is GestureKind.GIFT_CARD
        made = GivenGesture(
            kind=request.kind,
            shop_id=f"gid://shopify/Thing/{len(self.given) + 1}",
            amount=amount,
            currency=request.currency,
            code=request.code,
            gift_card_code="ABCD EFGH IJKL 7788" if gift else None,
            code_last4="7788" if gift else None,
            balance=amount if gift else None,
            reference="9001" if request.kind is GestureKind.REFUND else None,
            percent=request.percent,
        )
        self.given[request.marker] = made
        if self.give_then_lose_answer:
            self.give_then_lose_answer = False
            raise ShopUnavailable("timed out", kind="timeout", outcome_unknown=True)
        return made

    def find(self, request: GestureRequest) -> GivenGesture | None:
        self.finds += 1
        found = self.given.get(request.marker)
        if found is None or found.gift_card_code is None:
            return found
        return GivenGesture(**{**found.__dict__, "gift_card_code": None})

    def refundable(self, order_id: str) -> Decimal:
        return self.refundable_left


@dataclass
class Notes:
    """A helpdesk that keeps each ticket's notes."""

    bodies: dict[str, list[str]] = field(default_factory=dict)

    def add_note(
        self,
        *,
        ticket_id: str,
        body: str,
        tags: list[str],
        marker: str,
        change: TicketChange | None = None,
    ) -> None:
        self.bodies.setdefault(ticket_id, []).append(body)

    def has_note(self, *, ticket_id: str, marker: str) -> bool:
        return any(marker in body for body in self.bodies.get(ticket_id, []))


def bind(
    session: Session, inst: Installation, key: str, gesture: dict[str, Any], *, on: bool = True
) -> None:
    """Bind the demo catalog's entry to a gesture, and turn its kind on (or leave it off)."""
    entry = copy.deepcopy(next(e for e in CATALOG if e["key"] == key))
    entry["gesture"] = gesture
    save_exception_type(session, inst, entry, now=NOW)
    if on:
        set_kind_enabled(session, inst, GestureKind(gesture["kind"]), enabled=True, now=NOW)


def set_up(session: Session, account: str = "acme", **rule: Any) -> Installation:
    """The goodwill world, its customer and their latest order known to the shop."""
    inst = world.set_up(session, account, **rule)
    customer = session.scalars(
        sa.select(Customer).where(
            Customer.installation_id == inst.id, Customer.helpdesk_user_id == HIGH_SPENDER
        )
    ).one()
    customer.external_id = "shopify:4242"
    session.add(
        Order(
            installation_id=inst.id,
            customer_id=customer.id,
            external_id="shopify:5001",
            placed_at=NOW - timedelta(days=1),
            amount_cents=20_000,
            source="test",
        )
    )
    session.commit()
    return inst


def gesture(session: Session, action_id: int) -> Gesture:
    session.expire_all()
    row = session.scalars(
        sa.select(Gesture).where(
            sa.or_(Gesture.action_id == action_id, Gesture.request_action_id == action_id)
        )
    ).one()
    return row


def delivery(session: Session, action_id: int) -> Delivery:
    session.expire_all()
    row = session.get(Delivery, action_id)
    assert row is not None
    return row


def work(
    session: Session, shop: FakeShop | None, notes: Notes, *, now: datetime = NOW
) -> list[outbox.Outcome]:
    """Claim what is due at `now` and attempt each once, recording the outcomes."""
    outcomes = []
    for held in outbox.claim(session, worker_id="test", now=wall(now), policy=POLICY, limit=50):
        outcome = attempt(
            session,
            held,
            writers=lambda _s, _i: notes,
            shops=(lambda _s, _i: shop) if shop is not None else None,
            clock=lambda: now,
        )
        outbox.record(session, held, outcome, now=wall(now), policy=POLICY, rng=random.Random(3))
        outcomes.append(outcome)
    return outcomes
