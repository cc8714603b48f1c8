"""Reports over the action log on SQLite and PostgreSQL: exact figures from a known log."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.demo.exceptions_seed import demo_rules_file
from plugin.goodwill.rulebook import Author
from plugin.goodwill.transfer import import_rules
from plugin.models import (
    AccountReview,
    Action,
    Customer,
    CustomerSegment,
    Installation,
    ReviewTemplate,
    Rule,
)
from plugin.reports import service as reports
from plugin.reports.service import InvalidPeriod, Period

NOW = datetime(2026, 11, 20, 12, 0)
NOVEMBER = Period(date(2026, 11, 1), date(2026, 11, 30))


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def installation(session: Session, account: str) -> Installation:
    row = Installation(platform="zendesk", account=account, display_name=account)
    session.add(row)
    session.flush()
    import_rules(session, row, demo_rules_file(), author=Author(id=None, name="test"), now=NOW)
    return row


def customer(session: Session, inst: Installation, user: str, tier: str) -> Customer:
    row = Customer(installation_id=inst.id, helpdesk_user_id=user, name=f"Customer {user}")
    session.add(row)
    session.flush()
    session.add(
        CustomerSegment(
            customer_id=row.id, installation_id=inst.id, tier=tier, computed_at=NOW, behaviours=[]
        )
    )
    return row


def act(
    session: Session,
    inst: Installation,
    who: Customer,
    kind: str,
    exception: str,
    *,
    at: datetime = NOW,
    cents: int | None = None,
    reason: str | None = None,
    agent: str = "a1",
    rule: str | None = "late_delivery_high_value",
    budget: tuple[str, str] | None = ("tier", "high"),
) -> Action:
    rule_id = (
        session.query(Rule.id).filter_by(installation_id=inst.id, key=rule).scalar()
        if rule
        else None
    )
    action = Action(
        installation_id=inst.id,
        ticket_id=f"t-{who.helpdesk_user_id}",
        requester_id=who.helpdesk_user_id or "",
        customer_id=who.id,
        agent_id=agent,
        kind=kind,
        exception_key=exception,
        amount_cents=cents,
        currency="USD",
        reason_code=reason,
        text="",
        rule_id=rule_id,
        rule_version=1 if rule_id else None,
        budget_field=budget[0] if budget and kind in ("applied", "approved") else None,
        budget_value=budget[1] if budget and kind in ("applied", "approved") else None,
        idempotency_key=f"k-{session.query(Action).count():06d}",
        created_at=at,
    )
    session.add(action)
    session.flush()
    return action


def test_the_report_adds_up_a_known_log(session: Session) -> None:
    acme = installation(session, "acme")
    high = customer(session, acme, "1", "high")
    medium = customer(session, acme, "2", "medium")
    act(session, acme, high, "applied", "expedited_shipping", cents=1800, reason="late_delivery")
    act(session, acme, high, "dismissed", "waive_shipping_fee", reason="not_eligible")
    act(session, acme, medium, "dismissed", "waive_shipping_fee", reason="not_eligible", agent="a2")
    act(session, acme, medium, "dismissed", "expedited_shipping", reason="already_shipped")
    escalated = act(
        session, acme, high, "escalated", "goodwill_credit", cents=4000, reason="service_failure"
    )
    approved = act(
        session,
        acme,
        high,
        "approved",
        "goodwill_credit",
        cents=4000,
        reason="service_failure",
        agent="boss",
    )
    approved.escalation_id = escalated.id
    # Outside the range: not counted.
    act(
        session,
        acme,
        high,
        "applied",
        "expedited_shipping",
        cents=999,
        at=datetime(2026, 10, 31, 23, 59),
    )
    # Review actions are not exception actions, but count for the agent.
    template = ReviewTemplate(installation_id=acme.id, name="High", audience={"tier": ["high"]})
    session.add(template)
    session.flush()
    session.add_all(
        [
            AccountReview(
                installation_id=acme.id,
                ticket_id="t-1",
                template_id=template.id,
                requester_id="1",
                started_at=NOW,
                completed_at=NOW,
            ),
            AccountReview(
                installation_id=acme.id,
                ticket_id="t-9",
                template_id=template.id,
                requester_id="9",
                started_at=NOW,
            ),
            AccountReview(
                installation_id=acme.id,
                ticket_id="t-8",
                template_id=template.id,
                requester_id="9",
                started_at=datetime(2026, 10, 1),
            ),
        ]
    )
    for kind in ("review_checked", "review_checked", "review_completed"):
        act(session, acme, high, kind, "", rule=None, budget=None)
    session.commit()

    report = reports.build_report(session, acme, NOVEMBER)
    assert report.total.acted_on == 5  # applied, 3 dismissed, 1 escalated
    assert (report.total.applied, report.total.approved, report.total.granted) == (1, 1, 2)
    assert report.total.cost_cents == 1800 + 4000
    assert report.total.dismissed_by_reason == {"not_eligible": 2, "already_shipped": 1}
    tiers = {line.key: line.tally for line in report.by_tier}
    assert tiers["high"].acted_on == 3 and tiers["medium"].dismissed == 2
    exceptions = {line.key: line for line in report.by_exception}
    assert exceptions["waive_shipping_fee"].label == "Waived shipping fee"
    assert exceptions["waive_shipping_fee"].tally.dismissed == 2
    assert "" not in exceptions  # review actions are not an exception
    rules = {line.label: line.tally for line in report.by_rule}
    assert rules["High value, late delivery"].acted_on == 5
    budgets = {(b.segment.field, b.segment.value): b for b in report.budgets}
    high_budget = budgets[("tier", "high")]
    assert (high_budget.spent_cents, high_budget.grants) == (5800, 2)
    assert high_budget.budget_cents == 150_000  # the whole of November: one monthly budget
    assert [(r.template, r.due, r.completed) for r in report.reviews] == [("High", 2, 1)]
    agents = {a.agent_id: a for a in report.agents}
    assert agents["a1"].items_checked == 2 and agents["a1"].reviews_completed == 1
    assert agents["a2"].tally.dismissed == 1 and agents["boss"].tally.approved == 1

    exported = list(csv.DictReader(io.StringIO(reports.report_csv(report))))
    total = exported[0]
    assert (total["section"], total["acted_on"], total["cost"]) == ("total", "5", "58.00")
    assert "Not eligible: 2" in total["dismissed_by_reason"]
    assert {row["section"] for row in exported} == {
        "total",
        "tier",
        "rule",
        "exception",
        "budget",
        "review",
        "agent",
    }


def test_a_budget_is_prorated_to_the_days_of_the_range() -> None:
    half = Period(date(2026, 11, 1), date(2026, 11, 15))
    assert list(half.month_shares()) == [0.5]
    across = Period(date(2026, 10, 17), date(2026, 11, 15))  # 15 of 31 days, 15 of 30
    assert [round(s, 4) for s in across.month_shares()] == [round(15 / 31, 4), 0.5]


def test_the_range_is_checked_field_by_field() -> None:
    today = date(2026, 11, 20)
    assert reports.parse_period("", "", today=today) == Period(date(2026, 10, 22), today)
    with pytest.raises(InvalidPeriod) as bad:
        reports.parse_period("yesterday", "2026-13-01", today=today)
    assert set(bad.value.errors) == {"from", "to"}
    with pytest.raises(InvalidPeriod) as backwards:
        reports.parse_period("2026-11-10", "2026-11-01", today=today)
    assert backwards.value.errors == {"to": "must be on or after the start date"}
    with pytest.raises(InvalidPeriod) as long:
        reports.parse_period("2020-01-01", "2026-11-01", today=today)
    assert "from" in long.value.errors


def test_a_report_reads_only_its_installations_log(session: Session) -> None:
    acme = installation(session, "acme")
    globex = installation(session, "globex")
    act(
        session,
        acme,
        customer(session, acme, "1", "high"),
        "applied",
        "expedited_shipping",
        cents=1800,
        reason="late_delivery",
    )
    act(
        session,
        globex,
        customer(session, globex, "1", "high"),
        "dismissed",
        "waive_shipping_fee",
        reason="not_eligible",
        agent="spy",
    )
    session.commit()
    report = reports.build_report(session, acme, NOVEMBER)
    assert report.total.acted_on == 1 and report.total.dismissed == 0
    assert [a.agent_id for a in report.agents] == ["a1"]


def test_csv_cells_never_run_as_formulas() -> None:
    assert reports._safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert reports._safe("Plain") == "Plain"
