"""The exceptions service on SQLite and PostgreSQL: versioned rules, import/export, suggestions
for a ticket, and the action log with its idempotency, caps, budgets and approvals."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.demo.exceptions_seed import CATALOG, demo_rules_file
from plugin.domain.helpdesk import Person, Ticket
from plugin.domain.rules import InvalidRule
from plugin.goodwill import service as exceptions_service
from plugin.goodwill.service import ActionRefused, Author, InvalidAction, InvalidImport, NotFound
from plugin.models import Action, Customer, Installation, Order, Persona, RuleVersion

NOW = datetime(2026, 11, 23, 12, 0)
ALICE = Author(id="80001", name="Alice Supervisor")
BOB = Author(id="80002", name="Bob Lead")
HIGH_SPENDER = "11"
LATE = {"field": "ticket_tags", "operator": "contains", "value": "late_delivery"}


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def installation(session: Session, account: str) -> Installation:
    row = Installation(platform="zendesk", account=account, display_name=account)
    session.add(row)
    session.commit()
    return row


def high_value_customer(session: Session, inst: Installation, helpdesk_id: str) -> Customer:
    """Fourteen orders of $150 every 15 days: high value by the default tier bars."""
    customer = Customer(
        installation_id=inst.id,
        helpdesk_user_id=helpdesk_id,
        email=f"{helpdesk_id}@example.com",
        name=f"Customer {helpdesk_id}",
    )
    session.add(customer)
    session.flush()
    for i in range(14):
        session.add(
            Order(
                installation_id=inst.id,
                customer_id=customer.id,
                external_id=f"ORD-{inst.account}-{helpdesk_id}-{i}",
                placed_at=NOW - timedelta(days=15 * i + 2),
                amount_cents=15_000 if i else 20_000,  # the latest order is $200
                source="test",
            )
        )
    session.commit()
    return customer


def person(helpdesk_id: str) -> Person:
    return Person(
        id=helpdesk_id, name=f"Customer {helpdesk_id}", email=f"{helpdesk_id}@example.com"
    )


def ticket(ticket_id: str, requester: str = HIGH_SPENDER, subject: str = "Order is late") -> Ticket:
    return Ticket(
        id=ticket_id,
        subject=subject,
        status="open",
        channel="email",
        priority="normal",
        ticket_type="incident",
        tags=("late_delivery",),
        requester_id=requester,
        created_at=NOW,
        updated_at=NOW,
    )


def catalog(session: Session, inst: Installation) -> None:
    for entry in CATALOG:
        exceptions_service.save_exception_type(session, inst, entry, now=NOW)


def late_rule(**changes: Any) -> dict[str, Any]:
    """High value and late: a goodwill credit, once per 90 days, charged to the high tier."""
    return {
        "name": "High value, late delivery",
        "conditions": {"all": [{"field": "tier", "operator": "is", "value": "high"}, LATE]},
        "suggest": [{"exception": "goodwill_credit"}, {"exception": "waive_shipping_fee"}],
        "cap": {"times": 1, "days": 90},
        "approval_threshold_cents": 2500,
        "budget": {"field": "tier", "value": "high"},
    } | changes


def set_up(session: Session, account: str = "acme", **rule: Any) -> Installation:
    """An installation with the demo catalog, a high-tier budget, one rule and one customer."""
    inst = installation(session, account)
    catalog(session, inst)
    exceptions_service.set_budget(
        session,
        inst,
        {"segment": {"field": "tier", "value": "high"}, "monthly_cents": 10_000},
        now=NOW,
    )
    exceptions_service.create_rule(
        session, inst, key="late_high", definition=late_rule(**rule), author=ALICE, now=NOW
    )
    high_value_customer(session, inst, HIGH_SPENDER)
    return inst


def act(
    session: Session,
    inst: Installation,
    ticket_id: str = "501",
    *,
    now: datetime = NOW,
    requester: str = HIGH_SPENDER,
    **fields: object,
) -> exceptions_service.ActionOutcome:
    values: dict[str, object] = {
        "kind": "apply",
        "exception": "waive_shipping_fee",
        "reason": "late_delivery",
        "idempotency_key": f"key-{ticket_id}-{fields.get('exception', 'waive')}-{now:%f%S}",
    } | fields
    return exceptions_service.record_action(
        session,
        inst,
        ticket=ticket(ticket_id, requester),
        requester=person(requester),
        agent_id="80001",
        fields=values,
        now=now,
    )


def card(session: Session, inst: Installation, ticket_id: str = "501", *, now: datetime = NOW):
    return exceptions_service.suggestions_for(
        session, inst, ticket=ticket(ticket_id), requester=person(HIGH_SPENDER), now=now
    )


def offered(session: Session, inst: Installation, ticket_id: str = "501", **kw: Any) -> list[str]:
    return [offer.key for offer in card(session, inst, ticket_id, **kw).offers]


# Versions -----------------------------------------------------------------------------------


def test_every_change_is_a_new_version_with_who_when_and_why(session: Session) -> None:
    inst = set_up(session)
    rule = exceptions_service.find_rule(session, inst.id, "late_high")
    assert rule.current_version == 1
    later = NOW + timedelta(hours=1)
    v2 = exceptions_service.update_rule(
        session, inst, rule.id, late_rule(priority=3), author=BOB, note="rank it first", now=later
    )
    assert v2 is not None and v2.version == 2
    # Saving the same definition again writes nothing.
    assert (
        exceptions_service.update_rule(
            session, inst, rule.id, late_rule(priority=3), author=BOB, now=later
        )
        is None
    )
    history = exceptions_service.rule_history(session, inst.id, rule.id)
    assert [(v.version, v.author_name, v.author_id, v.note) for v in history] == [
        (1, "Alice Supervisor", "80001", ""),
        (2, "Bob Lead", "80002", "rank it first"),
    ]
    assert history[1].created_at == later
    old = exceptions_service.rule_version(session, inst.id, rule.id, 1)
    assert "priority" not in old.definition  # the old version reads as it was written
    # Disabling is a version too, and the rule's flag follows it.
    exceptions_service.update_rule(
        session, inst, rule.id, late_rule(priority=3, enabled=False), author=BOB, now=later
    )
    assert exceptions_service.get_rule(session, inst.id, rule.id).enabled is False
    assert offered(session, inst) == []


def test_an_invalid_rule_says_which_condition_is_wrong(session: Session) -> None:
    inst = set_up(session)
    bad = late_rule(conditions={"all": [{"field": "tier", "operator": "is", "value": "gold"}]})
    with pytest.raises(InvalidRule) as raised:
        exceptions_service.create_rule(
            session, inst, key="bad", definition=bad, author=ALICE, now=NOW
        )
    assert [e.path for e in raised.value.errors] == ["conditions.all[0].value"]
    with pytest.raises(InvalidRule, match="already exists"):
        exceptions_service.create_rule(
            session, inst, key="late_high", definition=late_rule(), author=ALICE, now=NOW
        )


def test_rollback_is_one_step_and_a_new_version_copying_the_old(session: Session) -> None:
    inst = set_up(session)
    rule = exceptions_service.find_rule(session, inst.id, "late_high")
    exceptions_service.update_rule(
        session,
        inst,
        rule.id,
        late_rule(suggest=[{"exception": "free_sample"}]),
        author=BOB,
        now=NOW,
    )
    assert offered(session, inst) == ["free_sample"]
    v3 = exceptions_service.rollback_rule(
        session, inst, rule.id, to_version=1, author=ALICE, now=NOW
    )
    assert (v3.version, v3.restored_from, v3.note) == (3, 1, "Rolled back to version 1")
    assert v3.definition == exceptions_service.rule_version(session, inst.id, rule.id, 1).definition
    found = card(session, inst)
    # Of one rule's suggestions of equal priority, the cheaper ranks first.
    assert [o.key for o in found.offers] == ["waive_shipping_fee", "goodwill_credit"]
    assert {o.suggestion.rule.version for o in found.offers} == {3}
    with pytest.raises(ValueError, match="already the rule's current version"):
        exceptions_service.rollback_rule(
            session, inst, rule.id, to_version=3, author=ALICE, now=NOW
        )
    with pytest.raises(NotFound, match="no version 9"):
        exceptions_service.rollback_rule(
            session, inst, rule.id, to_version=9, author=ALICE, now=NOW
        )


def test_every_action_records_the_rule_version_that_suggested_it(session: Session) -> None:
    inst = set_up(session)
    rule = exceptions_service.find_rule(session, inst.id, "late_high")
    exceptions_service.update_rule(
        session, inst, rule.id, late_rule(priority=1), author=BOB, now=NOW
    )
    outcome = act(session, inst)
    assert (outcome.action.rule_id, outcome.action.rule_version) == (rule.id, 2)
    assert outcome.action.kind == "applied"
    assert outcome.message == ("Applied: $9 Waived shipping fee — recorded in the action log.")


# Import and export ----------------------------------------------------------------------------


def test_export_and_import_round_trip(session: Session) -> None:
    acme = installation(session, "acme")
    report = exceptions_service.import_rules(
        session, acme, demo_rules_file(), author=ALICE, now=NOW
    )
    assert len(report.rules_created) == len(demo_rules_file()["rules"])
    exported = exceptions_service.export_rules(session, acme)
    # Through a JSON file, into another installation: the same catalog, budgets and rules.
    globex = installation(session, "globex")
    exceptions_service.import_rules(
        session, globex, json.loads(json.dumps(exported)), author=BOB, now=NOW
    )
    assert exceptions_service.export_rules(session, globex) == exported
    # Importing the export again changes nothing and writes no version.
    again = exceptions_service.import_rules(session, acme, exported, author=BOB, now=NOW)
    assert not again.changed and len(again.rules_unchanged) == len(exported["rules"])
    # An edited file versions only the rules it changed.
    exported["rules"][0]["priority"] = 77
    edited = exceptions_service.import_rules(
        session, acme, exported, author=BOB, note="git 1a2b", now=NOW
    )
    assert edited.rules_versioned == (exported["rules"][0]["key"],)
    rule = exceptions_service.find_rule(session, acme.id, exported["rules"][0]["key"])
    assert rule.current_version == 2
    assert exceptions_service.rule_version(session, acme.id, rule.id, 2).note == "git 1a2b"


def test_import_reports_every_problem_at_its_path_and_writes_nothing(session: Session) -> None:
    inst = installation(session, "acme")
    broken = demo_rules_file()
    broken["exceptions"][2] = dict(broken["exceptions"][2], cost={"kind": "percent", "percent": 0})
    broken["budgets"][0] = {"segment": {"field": "tier", "value": "gold"}, "monthly_cents": 1}
    broken["rules"][1] = dict(broken["rules"][1], cap={"times": 0, "days": 90})
    broken["rules"][2] = dict(broken["rules"][2], suggest=[{"exception": "free_pony"}])
    broken["rules"][3] = dict(broken["rules"][3], key=broken["rules"][0]["key"])
    broken["rules"].append({"key": "Bad Key", "name": "x", "conditions": {"all": [LATE]}})
    with pytest.raises(InvalidImport) as raised:
        exceptions_service.import_rules(session, inst, broken, author=ALICE, now=NOW)
    paths = [e.path for e in raised.value.errors]
    assert paths == [
        "exceptions[2].cost.percent",
        "budgets[0].segment.value",
        "rules[1].cap.times",
        "rules[2].suggest[0].exception",
        "rules[3].key",
        "rules[8].key",
        "rules[8].suggest",
    ]
    assert "listed twice" in raised.value.errors[4].message
    assert exceptions_service.export_rules(session, inst)["rules"] == []
    assert exceptions_service.catalog_rows(session, inst.id) == []


def test_the_rules_command_line_exports_imports_and_rolls_back(
    storage_app: Flask, session: Session, tmp_path: Path
) -> None:
    inst = set_up(session)
    runner = storage_app.test_cli_runner()
    out = tmp_path / "rules.json"
    result = runner.invoke(args=["rules", "export", "--installation", "acme", "--output", str(out)])
    assert result.exit_code == 0, result.output
    exported = json.loads(out.read_text())
    exported["rules"][0]["priority"] = 9
    out.write_text(json.dumps(exported))
    result = runner.invoke(
        args=[
            "rules",
            "import",
            str(out),
            "--installation",
            "acme",
            "--author",
            "ci",
            "--note",
            "bump",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "New rule versions: late_high" in result.output
    result = runner.invoke(
        args=["rules", "history", "--installation", "acme", "--rule", "late_high"]
    )
    assert "v2 (current)" in result.output and "by ci: bump" in result.output
    result = runner.invoke(
        args=[
            "rules",
            "rollback",
            "--installation",
            "acme",
            "--rule",
            "late_high",
            "--to-version",
            "1",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "version 3, a copy of version 1" in result.output
    exported["rules"][0]["conditions"]["all"][0]["value"] = "gold"
    out.write_text(json.dumps(exported))
    result = runner.invoke(args=["rules", "import", str(out), "--installation", "acme"])
    assert result.exit_code != 0
    assert "rules[0].conditions.all[0].value: expected one of" in result.output
    assert "Nothing imported: 1 problem." in result.output
    rule = exceptions_service.find_rule(session, inst.id, "late_high")
    session.refresh(rule)
    assert rule.current_version == 3


# Suggestions --------------------------------------------------------------------------------


def test_suggestions_say_why_with_goodwill_cap_and_budget(session: Session) -> None:
    inst = set_up(session)
    act(session, inst, "400", now=NOW - timedelta(days=20))  # a $9 waiver on an earlier ticket
    found = card(session, inst)
    offer = next(o for o in found.offers if o.key == "goodwill_credit")
    first = offer.suggestion
    assert first.cost_cents == 2000  # 10% of the latest order, $200
    assert found.order_value is not None and "latest order" in found.order_value.description
    assert offer.priced_from == (
        "10% of the order, at least $5, at most $50 — of the latest order, "
        f"ORD-acme-{HIGH_SPENDER}-0 ($200)"
    )
    assert first.why.condition_words == ("tier is high", "ticket_tags include late_delivery")
    assert first.why.goodwill == "$9 granted in the last 90 days"
    assert first.why.cap == "1 of 1 in 90 days"
    assert first.why.budget == "$9 of $100 this month"  # the waiver was this month
    assert offer.approval_threshold_cents == 2500
    # The waiver's cap (once per 90 days) withholds it, and says so.
    assert [o.key for o in found.offers] == ["goodwill_credit"]
    assert [(w.exception.key, w.explanation) for w in found.withheld] == [
        (
            "waive_shipping_fee",
            "granted once in the last 90 days; the rule allows once per 90 days",
        )
    ]


def test_an_order_named_in_the_subject_prices_a_share(session: Session) -> None:
    inst = set_up(session)
    named = f"ORD-acme-{HIGH_SPENDER}-5"
    found = exceptions_service.suggestions_for(
        session,
        inst,
        ticket=ticket("501", subject=f"Order {named} is late"),
        requester=person(HIGH_SPENDER),
        now=NOW,
    )
    assert found.order_value is not None
    assert found.order_value.description == f"order {named}, named in the subject"
    assert {o.key: o.suggestion.cost_cents for o in found.offers}["goodwill_credit"] == 1500


def test_the_compiled_rules_are_rebuilt_only_when_something_changed(session: Session) -> None:
    inst = set_up(session)
    first = exceptions_service.rule_book(session, inst)
    assert exceptions_service.rule_book(session, inst) is first
    card(session, inst)
    assert exceptions_service.rule_book(session, inst) is first
    rule = exceptions_service.find_rule(session, inst.id, "late_high")
    exceptions_service.update_rule(
        session, inst, rule.id, late_rule(priority=2), author=BOB, now=NOW
    )
    second = exceptions_service.rule_book(session, inst)
    assert second is not first and second.rules["late_high"].priority == 2
    # A change made elsewhere (another process, the console) is seen through the database.
    session.add(
        Persona(installation_id=inst.id, name="VIP", conditions={"all": [LATE]}, updated_at=NOW)
    )
    session.commit()
    assert exceptions_service.rule_book(session, inst) is not second


def test_a_rule_that_no_longer_validates_is_set_aside_not_fatal(session: Session) -> None:
    inst = set_up(session)
    session.add(Persona(installation_id=inst.id, name="VIP", conditions={"all": [LATE]}))
    session.commit()
    vip = {"field": "personas", "operator": "contains", "value": "VIP"}
    exceptions_service.create_rule(
        session,
        inst,
        key="vip",
        definition={
            "name": "VIP",
            "conditions": {"all": [vip]},
            "suggest": [{"exception": "free_sample"}],
        },
        author=ALICE,
        now=NOW,
    )
    session.execute(sa.delete(Persona).where(Persona.installation_id == inst.id))
    session.commit()
    book = exceptions_service.rule_book(session, inst)
    assert [what for what, _ in book.broken] == ["rule vip"]
    assert "late_high" in book.rules


# Actions ------------------------------------------------------------------------------------


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
    statuses = exceptions_service.budget_statuses(session, inst.id, now=NOW)
    assert [(s.budget.segment.value, s.spent_cents) for s in statuses] == [("high", 9300)]
    # $93 of $100: the $9 waiver no longer fits, so it is neither offered nor accepted.
    assert "waive_shipping_fee" not in [
        o.key
        for o in exceptions_service.suggestions_for(
            session, inst, ticket=ticket("802", "14"), requester=person("14"), now=NOW
        ).offers
    ]
    with pytest.raises(ActionRefused, match=r"would pass the High value budget: \$93 of \$100"):
        act(session, inst, "802", requester="14")


def test_budget_spend_counts_this_months_grants_charged_to_it(session: Session) -> None:
    inst = set_up(session)
    act(session, inst, "301", now=datetime(2026, 10, 30))  # last month
    high_value_customer(session, inst, "12")
    act(session, inst, "302", requester="12", kind="dismiss", reason="not_eligible")
    act(session, inst, "303", requester="12")
    statuses = exceptions_service.budget_statuses(session, inst.id, now=NOW)
    assert [s.spent_cents for s in statuses] == [900]


def test_above_the_approval_threshold_is_escalated_then_decided_once(session: Session) -> None:
    inst = set_up(session)
    outcome = act(session, inst, exception="goodwill_credit", amount="30", reason="service_failure")
    assert outcome.action.kind == "escalated"
    assert outcome.message == (
        "Sent for approval: $30 10% goodwill credit — recorded; a supervisor decides."
    )
    # Waiting for approval is no grant: goodwill and budgets do not count it yet.
    assert exceptions_service.budget_statuses(session, inst.id, now=NOW)[0].spent_cents == 0
    assert exceptions_service.pending_escalations(session, inst.id) == [outcome.action]
    approved = exceptions_service.resolve_escalation(
        session,
        inst,
        outcome.action.id,
        approve=True,
        approver_id="80002",
        idempotency_key="approve-1-abc",
        now=NOW,
    )
    assert approved.action.kind == "approved" and approved.action.escalation_id == outcome.action.id
    assert exceptions_service.budget_statuses(session, inst.id, now=NOW)[0].spent_cents == 3000
    assert exceptions_service.pending_escalations(session, inst.id) == []
    with pytest.raises(ActionRefused, match="approved already"):
        exceptions_service.resolve_escalation(
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
    exceptions_service.resolve_escalation(
        session,
        inst,
        first.action.id,
        approve=True,
        approver_id="9",
        idempotency_key="approve-a-1",
        now=NOW,
    )
    with pytest.raises(ActionRefused, match="the rule allows once per 90 days"):
        exceptions_service.resolve_escalation(
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


# Installations ------------------------------------------------------------------------------


def test_no_installation_reaches_anothers_rules_or_actions(session: Session) -> None:
    acme = set_up(session, "acme")
    globex = set_up(session, "globex")
    acme_rule = exceptions_service.find_rule(session, acme.id, "late_high")
    with pytest.raises(NotFound):
        exceptions_service.update_rule(
            session, globex, acme_rule.id, late_rule(), author=BOB, now=NOW
        )
    with pytest.raises(NotFound):
        exceptions_service.rollback_rule(
            session, globex, acme_rule.id, to_version=1, author=BOB, now=NOW
        )
    with pytest.raises(NotFound):
        exceptions_service.rule_history(session, globex.id, acme_rule.id)
    escalated = act(session, acme, exception="goodwill_credit", kind="escalate", reason="loyalty")
    with pytest.raises(NotFound):
        exceptions_service.resolve_escalation(
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
    assert exceptions_service.budget_statuses(session, globex.id, now=NOW)[0].spent_cents == 900
    assert [a.id for a in exceptions_service.ticket_actions(session, globex.id, "900")] == [
        globex_done.action.id
    ]
    versions = session.scalars(
        sa.select(RuleVersion).where(RuleVersion.installation_id == globex.id)
    )
    assert {v.rule_id for v in versions} == {
        exceptions_service.find_rule(session, globex.id, "late_high").id
    }


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
