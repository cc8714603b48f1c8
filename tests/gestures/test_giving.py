"""Giving a gesture through the outbox: once, before its note, under the policy at that moment;
retried when the shop does not answer, looked for after an unknown outcome, refused in words."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from plugin.gestures.interface import GestureRequest, GivenGesture, ShopRefused, ShopUnavailable
from plugin.gestures.planning import GestureStatus, marker_for
from plugin.goodwill import actions
from plugin.goodwill.catalog import budget_statuses, set_budget
from plugin.goodwill.errors import ActionRefused
from plugin.models import Customer, Gesture, Order
from tests.gestures.gesture_world import (
    FakeShop,
    Notes,
    bind,
    delivery,
    gesture,
    set_up,
    wall,
    work,
)
from tests.goodwill import world
from tests.goodwill.world import NOW, act

CODE = {"kind": "discount_code", "expires_in_days": 30}


def test_an_entry_without_a_binding_or_with_its_kind_off_is_record_only(session: Session) -> None:
    inst = set_up(session)
    bind(session, inst, "waive_shipping_fee", CODE, on=False)
    outcome = act(session, inst)
    assert outcome.action.kind == "applied"
    assert session.query(Gesture).count() == 0
    notes = Notes()
    work(session, FakeShop(), notes)
    assert delivery(session, outcome.action.id).status == "delivered"
    assert "Given in the shop" not in notes.bodies["501"][0]


def test_apply_writes_the_gesture_with_the_action_and_the_worker_gives_it_once(
    session: Session,
) -> None:
    inst = set_up(session)
    bind(session, inst, "waive_shipping_fee", CODE)
    outcome = act(session, inst)
    row = gesture(session, outcome.action.id)
    assert (row.kind, row.status, row.amount_cents) == ("discount_code", "pending", 900)
    assert row.marker == marker_for(inst.id, outcome.action.idempotency_key) == row.code
    assert row.customer_ref == "gid://shopify/Customer/4242"
    assert row.expires_at == NOW + timedelta(days=30)
    shop, notes = FakeShop(), Notes()
    work(session, shop, notes)
    row = gesture(session, outcome.action.id)
    assert row.status == "given" and row.given_code == row.marker and row.given_cents == 900
    assert shop.gives == 1
    (body,) = notes.bodies["501"]
    assert f"Given in the shop: Discount code {row.marker} ($9 off)" in body
    # Delivered: nothing is given again.
    work(session, shop, notes, now=NOW + timedelta(minutes=5))
    assert shop.gives == 1


def test_a_throttling_shop_holds_the_note_and_is_retried_after_its_wait(
    session: Session,
) -> None:
    inst = set_up(session)
    bind(session, inst, "waive_shipping_fee", CODE)
    action = act(session, inst).action
    shop, notes = FakeShop(failures=[ShopUnavailable("throttled", retry_after=30.0)]), Notes()
    (outcome,) = work(session, shop, notes)
    assert outcome.error_kind == "shop_throttled"
    state = delivery(session, action.id)
    # The shop's own wait is honoured, and is not a failure (it never parks it dead).
    assert state.status == "pending" and state.failures == 0
    assert state.next_attempt_at >= wall(NOW + timedelta(seconds=30))
    row = gesture(session, action.id)
    assert row.status == "pending" and row.last_error == "throttled" and not row.outcome_unknown
    assert notes.bodies == {}  # no note before the gesture is settled
    work(session, shop, notes, now=NOW + timedelta(seconds=31))
    assert gesture(session, action.id).status == "given" and shop.gives == 2
    assert len(notes.bodies["501"]) == 1


def test_after_an_unknown_outcome_the_next_attempt_finds_it_instead_of_giving_again(
    session: Session,
) -> None:
    inst = set_up(session)
    bind(session, inst, "waive_shipping_fee", {"kind": "gift_card"})
    action = act(session, inst).action
    shop, notes = FakeShop(give_then_lose_answer=True), Notes()
    work(session, shop, notes)
    assert gesture(session, action.id).outcome_unknown
    work(session, shop, notes, now=NOW + timedelta(seconds=5))
    row = gesture(session, action.id)
    assert (row.status, shop.gives, shop.finds, len(shop.given)) == ("given", 1, 1, 1)
    assert row.code_last4 == "7788" and row.gift_card_code is None  # found: no full code
    assert "Gift card ending 7788, balance $9" in notes.bodies["501"][0]


def test_a_worker_killed_mid_call_leaves_the_outcome_unknown_for_its_successor(
    session: Session,
) -> None:
    inst = set_up(session)
    bind(session, inst, "waive_shipping_fee", CODE)
    action = act(session, inst).action

    class Killed(BaseException):
        pass

    class DyingShop(FakeShop):
        def give(self, request: GestureRequest) -> GivenGesture:
            super().give(request)
            raise Killed  # the process dies after the shop made it

    shop, notes = DyingShop(), Notes()
    with pytest.raises(Killed):
        work(session, shop, notes)
    session.rollback()
    assert gesture(session, action.id).outcome_unknown
    later = NOW + timedelta(seconds=11)  # the lease ran out
    work(session, shop, notes, now=later)
    assert gesture(session, action.id).status == "given"
    assert (len(shop.given), shop.gives, shop.finds) == (1, 1, 1)


def test_a_refusal_gives_nothing_charges_nothing_and_is_said_in_words(session: Session) -> None:
    inst = set_up(session)
    bind(session, inst, "waive_shipping_fee", CODE)
    action = act(session, inst).action
    spent = next(s for s in budget_statuses(session, inst.id, now=NOW)).spent_cents
    assert spent == 900
    notes = Notes()
    work(session, FakeShop(failures=[ShopRefused("Code has already been taken")]), notes)
    row = gesture(session, action.id)
    assert row.status == "refused" and row.refusal == "Code has already been taken"
    assert next(s for s in budget_statuses(session, inst.id, now=NOW)).spent_cents == 0
    assert "Not given in the shop: Code has already been taken" in notes.bodies["501"][0]
    # The cap (once per 90 days) no longer counts it: the customer can be given it again.
    again = act(session, inst, "502", idempotency_key="key-again-0001")
    assert again.action.kind == "applied"


def test_the_budget_is_charged_what_the_shop_actually_gave(session: Session) -> None:
    inst = set_up(session)
    bind(session, inst, "waive_shipping_fee", {"kind": "gift_card"})
    act(session, inst)
    work(session, FakeShop(given_amount=Decimal("7.50")), Notes())
    assert next(s for s in budget_statuses(session, inst.id, now=NOW)).spent_cents == 750


def test_the_worker_checks_the_budget_again_before_giving(session: Session) -> None:
    inst = set_up(session)
    bind(session, inst, "waive_shipping_fee", CODE)
    action = act(session, inst).action
    set_budget(
        session,
        inst,
        {"segment": {"field": "tier", "value": "high"}, "monthly_cents": 500},
        now=NOW,
    )
    shop, notes = FakeShop(), Notes()
    work(session, shop, notes)
    row = gesture(session, action.id)
    assert row.status == "refused" and "High value budget" in (row.refusal or "")
    assert shop.gives == 0


def test_refunds_never_above_what_the_order_can_still_refund(session: Session) -> None:
    inst = set_up(session)
    bind(session, inst, "waive_shipping_fee", {"kind": "refund"})
    action = act(session, inst).action
    row = gesture(session, action.id)
    assert row.order_ref == "gid://shopify/Order/5001" and row.order_number == "shopify:5001"
    shop = FakeShop(refundable_left=Decimal("4.00"))
    work(session, shop, Notes())
    row = gesture(session, action.id)
    assert row.status == "refused" and "only $4 left to refund" in (row.refusal or "")
    assert shop.gives == 0


def test_order_kinds_are_refused_before_anything_is_sent(session: Session) -> None:
    inst = set_up(session)
    bind(session, inst, "waive_shipping_fee", {"kind": "refund"})
    # Another customer's order, named in the ticket.
    other = Customer(
        installation_id=inst.id, helpdesk_user_id="77", email="o@example.com", name="Other"
    )
    session.add(other)
    session.flush()
    session.add(
        Order(
            installation_id=inst.id,
            customer_id=other.id,
            external_id="ORD-99999",
            placed_at=NOW - timedelta(days=3),
            amount_cents=5_000,
            source="test",
        )
    )
    session.commit()
    with pytest.raises(ActionRefused, match="belongs to another customer"):
        actions.record_action(
            session,
            inst,
            ticket=world.ticket("601", subject="Where is ORD-99999?"),
            requester=world.person(world.HIGH_SPENDER),
            agent_id="80001",
            fields={
                "kind": "apply",
                "exception": "waive_shipping_fee",
                "reason": "late_delivery",
                "idempotency_key": "key-other-order",
            },
            now=NOW,
        )
    session.rollback()
    assert session.query(Gesture).count() == 0


def test_a_prospect_with_no_orders_gets_no_refund(session: Session) -> None:
    inst = set_up(session, conditions={"all": [world.LATE]})
    bind(session, inst, "waive_shipping_fee", {"kind": "refund"})
    for order in session.query(Order).filter(Order.installation_id == inst.id):
        session.delete(order)
    session.commit()
    with pytest.raises(ActionRefused, match="needs an order"):
        actions.record_action(
            session,
            inst,
            ticket=world.ticket("602"),
            requester=world.person(world.HIGH_SPENDER),
            agent_id="80001",
            fields={
                "kind": "apply",
                "exception": "waive_shipping_fee",
                "reason": "late_delivery",
                "idempotency_key": "key-prospect-0001",
            },
            now=NOW,
        )


def test_a_gift_card_above_its_share_of_the_order_is_refused_at_apply(session: Session) -> None:
    inst = set_up(session)
    # The latest order is $200; a gift card of at most 4 % of it is $8, under the $9 fee.
    bind(session, inst, "waive_shipping_fee", {"kind": "gift_card", "gift_card_cap_percent": 4})
    with pytest.raises(ActionRefused, match="at most \\$8"):
        act(session, inst)


def test_above_the_threshold_it_waits_for_approval_and_is_given_on_approval(
    session: Session,
) -> None:
    inst = set_up(session)
    bind(session, inst, "goodwill_credit", CODE)
    escalated = act(
        session, inst, exception="goodwill_credit", reason="service_failure", amount="30.00"
    ).action
    assert escalated.kind == "escalated"
    row = gesture(session, escalated.id)
    assert row.status == GestureStatus.WAITING_APPROVAL
    shop, notes = FakeShop(), Notes()
    work(session, shop, notes)
    assert shop.gives == 0
    assert "given once a supervisor approves it" in notes.bodies["501"][0]
    approval = actions.resolve_escalation(
        session,
        inst,
        escalated.id,
        approve=True,
        approver_id="80002",
        idempotency_key="approve-0001",
        now=NOW + timedelta(minutes=1),
    ).action
    row = gesture(session, escalated.id)
    assert row.status == "pending" and row.action_id == approval.id
    work(session, shop, notes, now=NOW + timedelta(minutes=2))
    assert gesture(session, escalated.id).status == "given" and shop.gives == 1
    assert "Given in the shop: Discount code" in notes.bodies["501"][1]


def test_a_supervisors_refusal_ends_the_gesture_with_nothing_given(session: Session) -> None:
    inst = set_up(session)
    bind(session, inst, "goodwill_credit", CODE)
    escalated = act(
        session, inst, exception="goodwill_credit", reason="service_failure", amount="30.00"
    ).action
    actions.resolve_escalation(
        session,
        inst,
        escalated.id,
        approve=False,
        approver_id="80002",
        idempotency_key="refuse-0001",
        now=NOW,
    )
    row = gesture(session, escalated.id)
    assert row.status == "refused" and "supervisor" in (row.refusal or "")


def test_dead_after_repeated_failures_then_given_on_retry(session: Session) -> None:
    from plugin.delivery import outbox

    inst = set_up(session)
    bind(session, inst, "waive_shipping_fee", CODE)
    action = act(session, inst).action
    down: list[Exception] = [ShopUnavailable("503 Service Unavailable") for _ in range(3)]
    shop, notes = FakeShop(failures=down), Notes()
    for minute in range(3):
        work(session, shop, notes, now=NOW + timedelta(minutes=minute))
    state = delivery(session, action.id)
    assert state.status == "dead" and "503" in (state.last_error or "")
    assert outbox.retry(session, now=wall(NOW), installation_id=inst.id) == 1
    work(session, shop, notes, now=NOW + timedelta(minutes=5))
    assert gesture(session, action.id).status == "given"
    assert len(shop.given) == 1


def test_an_undone_action_gives_nothing_and_its_gesture_says_so(session: Session) -> None:
    from plugin.goodwill.undo import undo_action

    inst = set_up(session)
    bind(session, inst, "waive_shipping_fee", CODE)
    action = act(session, inst).action
    undo_action(
        session,
        inst,
        idempotency_key=action.idempotency_key,
        agent_id="80001",
        now=NOW + timedelta(seconds=2),
        window_seconds=10,
    )
    row = gesture(session, action.id)
    assert row.status == "refused" and "Undone" in (row.refusal or "")
    shop = FakeShop()
    work(session, shop, Notes(), now=NOW + timedelta(minutes=1))
    assert shop.gives == 0
