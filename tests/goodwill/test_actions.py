"""The action log on SQLite and PostgreSQL: each action recorded once with the rule version that
suggested it, caps and budgets checked again when applying, approvals decided once, field
errors, and no installation reaching another's rules or actions.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.goodwill import action_log, actions, catalog, rulebook, suggestions
from plugin.goodwill.errors import ActionRefused, InvalidAction, NotFound
from plugin.models import Action, Installation, RuleVersion
from tests.goodwill.world import (
    BOB,
    HIGH_SPENDER,
    NOW,
    act,
    card,
    high_value_customer,
    late_rule,
    offered,
    person,
    set_up,
    ticket,
)


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def test_every_action_records_the_rule_version_that_suggested_it(session: Session) -> None:
    inst = set_up(session)
    rule = rulebook.find_rule(session, inst.id, "late_high")
    rulebook.update_rule(session, inst, rule.id, late_rule(priority=1), author=BOB, now=NOW)
    outcome = act(session, inst)
    assert (outcome.action.rule_id, outcome.action.rule_version) == (rule.id, 2)
    assert outcome.action.kind == "applied"
    assert outcome.message == ("Applied: $9 Waived shipping fee — recorded in the action log.")


def test_a_double_click_is_recorded_once(session: Session) -> None:
    inst = set_up(session)
    first = act(session, inst, idempotency_key="double-click-1")
    second = act(session, inst, idempotency_key="double-click-1")
    assert not first.duplicate and second.duplicate
    assert second.action.id == first.action.id
    assert session.scalar(sa.select(sa.func.count()).select_from(Action)) == 1


def test_the_cap_is_checked_again_when_applying(session: Session) -> None:
    inst = set_up(session)
    assert "waive_shipping_fee" in offered(session, inst, "502")
    act(session, inst, "501")
    # On another ticket the card still showed it, but the cap (once per 90 days) now forbids it.
    with pytest.raises(ActionRefused) as refused:
        act(session, inst, "502")
    assert str(refused.value) == (
        "Waived shipping fee can't be given now: granted once in the last 90 days; "
        "the rule allows once per 90 days."
    )
    assert "waive_shipping_fee" not in offered(session, inst, "502")
    # The ticket it was applied on shows it as done, not as an offer.
    done = card(session, inst, "501")
    assert [a.exception_key for a in done.done] == ["waive_shipping_fee"]
    # 91 days later the cap allows it again, and goodwill counts it.
    later = NOW + timedelta(days=91)
    assert "waive_shipping_fee" in offered(session, inst, "503", now=later)


def test_the_budget_is_checked_again_when_applying(session: Session) -> None:
    inst = set_up(session)  # $100 a month for the high tier

    def credit(ticket_id: str, requester: str, amount: str, kind: str = "apply") -> None:
        act(
            session,
            inst,
            ticket_id,
            requester=requester,
            exception="goodwill_credit",
            reason="service_failure",
            amount=amount,
            kind=kind,
        )

    credit("501", HIGH_SPENDER, "20.00")
    for customer, ticket_id, amount in (("12", "601", "24"), ("13", "701", "25")):
        high_value_customer(session, inst, customer)
        credit(ticket_id, customer, amount)
    high_value_customer(session, inst, "14")
    # An agent's editable amount may not pass what is left, even to ask for approval.
    with pytest.raises(ActionRefused) as refused:
        credit("801", "14", "75", kind="escalate")
    assert str(refused.value) == "$75 would pass the High value budget: $69 of $100 this month."
    credit("801", "14", "24")
    statuses = catalog.budget_statuses(session, inst.id, now=NOW)
    assert [(s.budget.segment.value, s.spent_cents) for s in statuses] == [("high", 9300)]
    # $93 of $100: the $9 waiver no longer fits, so it is neither offered nor accepted.
    assert "waive_shipping_fee" not in [
        o.key
        for o in suggestions.suggestions_for(
            session, inst, ticket=ticket("802", "14"), requester=person("14"), now=NOW
        ).offers
    ]
    with pytest.raises(ActionRefused, match=r"would pass the High value budget: \$93 of \$100"):
        act(session, inst, "802", requester="14")


def test_above_the_approval_threshold_is_escalated_then_decided_once(session: Session) -> None:
    inst = set_up(session)
    outcome = act(session, inst, exception="goodwill_credit", amount="30", reason="service_failure")
    assert outcome.action.kind == "escalated"
    assert outcome.message == (
        "Sent for approval: $30 10% goodwill credit — recorded; a supervisor decides."
    )
    # Waiting for approval is no grant: goodwill and budgets do not count it yet.
    assert catalog.budget_statuses(session, inst.id, now=NOW)[0].spent_cents == 0
    assert actions.pending_escalations(session, inst.id) == [outcome.action]
    approved = actions.resolve_escalation(
        session,
        inst,
        outcome.action.id,
        approve=True,
        approver_id="80002",
        idempotency_key="approve-1-abc",
        now=NOW,
    )
    assert approved.action.kind == "approved" and approved.action.escalation_id == outcome.action.id
    assert catalog.budget_statuses(session, inst.id, now=NOW)[0].spent_cents == 3000
    assert actions.pending_escalations(session, inst.id) == []
    with pytest.raises(ActionRefused, match="approved already"):
        actions.resolve_escalation(
            session,
            inst,
            outcome.action.id,
            approve=False,
            approver_id="80002",
            idempotency_key="refuse-1-abc",
            now=NOW,
        )
    # Within the threshold it is applied at once.
    assert act(session, inst, "777", exception="waive_shipping_fee").action.kind == "applied"


def test_an_approval_that_the_cap_now_forbids_is_refused(session: Session) -> None:
    inst = set_up(session)
    first = act(session, inst, exception="goodwill_credit", kind="escalate", reason="loyalty")
    second = act(
        session, inst, "502", exception="goodwill_credit", kind="escalate", reason="loyalty"
    )
    actions.resolve_escalation(
        session,
        inst,
        first.action.id,
        approve=True,
        approver_id="9",
        idempotency_key="approve-a-1",
        now=NOW,
    )
    with pytest.raises(ActionRefused, match="the rule allows once per 90 days"):
        actions.resolve_escalation(
            session,
            inst,
            second.action.id,
            approve=True,
            approver_id="9",
            idempotency_key="approve-b-1",
            now=NOW,
        )


def test_field_errors_name_the_field_and_say_why(session: Session) -> None:
    inst = set_up(session)
    with pytest.raises(InvalidAction) as raised:
        act(session, inst, exception="goodwill_credit", amount="80", reason="because")
    assert raised.value.errors == {
        "reason": "choose one of: Service failure, Win back a lapsed customer, Loyalty thank-you",
        "amount": "must be from $5 to $75",
    }
    with pytest.raises(InvalidAction) as raised:
        act(session, inst, exception="goodwill_credit", amount="12.345", reason="loyalty")
    assert raised.value.errors == {"amount": "expected an amount in whole cents, from $5 to $75"}
    with pytest.raises(InvalidAction) as raised:
        act(session, inst, exception="free_pony", kind="grant", idempotency_key="x")
    assert set(raised.value.errors) == {"idempotency_key"}
    with pytest.raises(InvalidAction) as raised:
        act(session, inst, exception="free_pony", kind="grant")
    assert raised.value.errors == {
        "kind": "expected apply, dismiss or escalate",
        "exception": "not in this helpdesk's catalog",
    }
    with pytest.raises(InvalidAction) as raised:
        act(session, inst, kind="dismiss", reason="late_delivery", text="x" * 1001)
    assert set(raised.value.errors) == {"reason", "text"}
    assert session.scalar(sa.select(sa.func.count()).select_from(Action)) == 0


def test_a_dismissal_records_the_reason_and_text(session: Session) -> None:
    inst = set_up(session)
    outcome = act(session, inst, kind="dismiss", reason="customer_declined", text="Wants a refund")
    action = outcome.action
    assert (action.kind, action.reason_code, action.text, action.amount_cents) == (
        "dismissed",
        "customer_declined",
        "Wants a refund",
        None,
    )
    assert action.budget_field is None
    assert outcome.message == (
        "Dismissed: Waived shipping fee (Customer declined) — recorded in the action log."
    )


def test_what_no_rule_suggests_cannot_be_applied(session: Session) -> None:
    inst = set_up(session)
    with pytest.raises(ActionRefused, match="not suggested for this ticket"):
        act(session, inst, exception="free_sample", reason="delight")


def test_no_installation_reaches_anothers_rules_or_actions(session: Session) -> None:
    acme = set_up(session, "acme")
    globex = set_up(session, "globex")
    acme_rule = rulebook.find_rule(session, acme.id, "late_high")
    with pytest.raises(NotFound):
        rulebook.update_rule(session, globex, acme_rule.id, late_rule(), author=BOB, now=NOW)
    with pytest.raises(NotFound):
        rulebook.rollback_rule(session, globex, acme_rule.id, to_version=1, author=BOB, now=NOW)
    with pytest.raises(NotFound):
        rulebook.rule_history(session, globex.id, acme_rule.id)
    escalated = act(session, acme, exception="goodwill_credit", kind="escalate", reason="loyalty")
    with pytest.raises(NotFound):
        actions.resolve_escalation(
            session,
            globex,
            escalated.action.id,
            approve=True,
            approver_id="1",
            idempotency_key="approve-x-1",
            now=NOW,
        )
    # The same idempotency key in two installations is two actions; grants and budgets stay put.
    acme_done = act(session, acme, "900", idempotency_key="shared-key-1")
    globex_done = act(session, globex, "900", idempotency_key="shared-key-1")
    assert not globex_done.duplicate and globex_done.action.id != acme_done.action.id
    assert catalog.budget_statuses(session, globex.id, now=NOW)[0].spent_cents == 900
    assert [a.id for a in action_log.ticket_actions(session, globex.id, "900")] == [
        globex_done.action.id
    ]
    versions = session.scalars(
        sa.select(RuleVersion).where(RuleVersion.installation_id == globex.id)
    )
    assert {v.rule_id for v in versions} == {rulebook.find_rule(session, globex.id, "late_high").id}


def test_two_agents_at_once_cannot_both_take_the_last_grant(
    storage_app: Flask, session: Session
) -> None:
    inst = set_up(session)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def agent(number: int) -> None:
        with db.database(storage_app).sessions() as own:
            mine = own.get(Installation, inst.id)
            assert mine is not None
            barrier.wait()
            try:
                act(own, mine, f"50{number}", idempotency_key=f"agent-{number}-click")
                outcomes.append("applied")
            except ActionRefused:
                outcomes.append("refused")

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["applied", "refused", "refused", "refused"]
