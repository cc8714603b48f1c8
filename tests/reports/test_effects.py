"""The effects of rules: holdouts on the card, outcomes computed in SQL, and the report over
HTTP on the seeded demo (the planted effect found, the null one not claimed)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin import db
from plugin.clock import utcnow
from plugin.demo.exceptions_seed import demo_rules_file
from plugin.domain.effects import is_held_out
from plugin.goodwill.holdouts import (
    Exposure,
    TicketExposures,
    customer_key,
    record_exposures,
)
from plugin.goodwill.rulebook import Author
from plugin.goodwill.transfer import import_rules
from plugin.models import Customer, Installation, Order, Rule, RuleExposure, SeenTicket
from plugin.reports import effects
from plugin.reports.outcomes import compute_outcomes
from tests.console.test_views import console_session
from tests.customers.test_console_views import field_error
from tests.reports.exposures import exposure
from tests.seeded_demo import SeededDemos

NOW = datetime(2026, 11, 20, 12, 0)


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def _installation(session: Session) -> tuple[Installation, int]:
    row = Installation(platform="zendesk", account="effects", display_name="Effects")
    session.add(row)
    session.flush()
    import_rules(session, row, demo_rules_file(), author=Author(id=None, name="t"), now=NOW)
    rule_id = session.query(Rule.id).filter_by(installation_id=row.id, key="win_back_lapsed")
    return row, int(rule_id.scalar())


def test_an_exposure_is_recorded_once_per_ticket_and_rule(session: Session) -> None:
    installation, rule_id = _installation(session)
    found = TicketExposures(
        "r1", None, "", (Exposure(rule_id, 1, "goodwill_credit", 900, held_out=True),)
    )
    for _ in range(2):
        record_exposures(session, installation.id, ticket_id="t1", found=found, now=NOW)
    rows = session.query(RuleExposure).filter_by(installation_id=installation.id).all()
    assert [(r.ticket_id, r.held_out, r.cost_cents) for r in rows] == [("t1", True, 900)]


def test_outcomes_are_computed_when_their_windows_have_passed(session: Session) -> None:
    installation, rule_id = _installation(session)
    buyer = Customer(installation_id=installation.id, helpdesk_user_id="u1", name="Buyer")
    quiet = Customer(installation_id=installation.id, helpdesk_user_id="u2", name="Quiet")
    session.add_all([buyer, quiet])
    session.flush()
    seen = NOW - timedelta(days=200)
    young = NOW - timedelta(days=40)
    for ticket, customer, at in (("t1", buyer, seen), ("t2", quiet, seen), ("t3", buyer, young)):
        session.add(
            exposure(
                installation.id,
                rule_id,
                ticket,
                requester_id=str(customer.helpdesk_user_id),
                customer_id=customer.id,
                seen_at=at,
            )
        )
    session.add_all(
        [
            Order(
                installation_id=installation.id,
                customer_id=buyer.id,
                external_id="o1",
                placed_at=seen + timedelta(days=20),
                amount_cents=4000,
                source="csv",
            ),
            Order(
                installation_id=installation.id,
                customer_id=buyer.id,
                external_id="o2",
                placed_at=seen + timedelta(days=60),
                amount_cents=2500,
                source="csv",
            ),
            SeenTicket(
                installation_id=installation.id,
                ticket_id="t9",
                requester_id="u2",
                subject="again",
                first_seen_at=seen + timedelta(days=3),
                last_seen_at=seen + timedelta(days=3),
            ),
        ]
    )
    session.commit()
    run = compute_outcomes(session, now=NOW, batch_size=2)
    assert run.rows == 3 and run.batches == 2 and run.finalised == 2
    rows = {
        r.ticket_id: r
        for r in session.query(RuleExposure).filter_by(installation_id=installation.id)
    }
    t1, t2, t3 = rows["t1"], rows["t2"], rows["t3"]
    assert (t1.ordered_30d, t1.ordered_90d, t1.spend_90d_cents, t1.lapsed_180d) == (
        True,
        True,
        6500,
        False,
    )
    assert (t1.repeat_contact_7d, t2.repeat_contact_7d) == (False, True)
    assert (t2.ordered_90d, t2.spend_90d_cents, t2.lapsed_180d) == (False, 0, True)
    assert t1.outcomes_final and t2.outcomes_final
    # 40 days old: the 7- and 30-day outcomes are known, the longer ones not yet.
    assert t3.ordered_30d is False and t3.repeat_contact_7d is False
    assert t3.ordered_90d is None and t3.lapsed_180d is None and not t3.outcomes_final
    # Final rows are not read again; the young one is.
    again = compute_outcomes(session, now=NOW, batch_size=2)
    assert again.rows == 1


def test_the_holdout_split_keeps_a_customer_in_one_group() -> None:
    held = [
        customer_key(i, "r") for i in range(400) if is_held_out(1, "late", customer_key(i, "r"), 20)
    ]
    assert 50 < len(held) < 110
    assert customer_key(None, "r9") == "requester:r9"


@pytest.fixture
def world(
    storage_app: Flask, seeded_demos: SeededDemos
) -> Iterator[tuple[FlaskClient, Session, Installation]]:
    with db.database(storage_app).sessions() as session:
        installation = seeded_demos.load(storage_app, session)
        yield storage_app.test_client(), session, installation


@pytest.fixture
def bearer(storage_app: Flask, world: tuple[FlaskClient, Session, Installation]) -> dict[str, str]:
    client, _session, installation = world
    return {"Authorization": f"Bearer {console_session(storage_app, client, installation)}"}


def test_the_demo_shows_the_planted_effect_and_no_effect_where_there_is_none(
    world: tuple[FlaskClient, Session, Installation], bearer: dict[str, str]
) -> None:
    client, session, installation = world
    built = effects.build_effects(session, installation, effects.default_period(utcnow().date()))
    by_key = {rule.key: rule for rule in built.rules}
    paying, null = by_key["repeat_late_credit"], by_key["first_order_sample"]
    assert paying.causal and null.causal
    ordered = paying.overall.line("ordered_90d").comparison
    assert ordered.significant and ordered.interval is not None and ordered.interval.low > 0
    assert paying.overall.cost_per_extra_cents is not None
    assert not null.overall.line("ordered_90d").comparison.significant
    assert null.overall.cost_per_extra_cents is None
    # The rule without a holdout: applied against dismissed, not causal.
    plain = by_key["medium_late_delivery"]
    assert not plain.causal and plain.overall.treated_n > 200 and plain.overall.control_n > 100

    assert client.get("/console/effects").status_code == 401
    response = client.get("/console/effects", headers=bearer)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<script" not in html and "style=" not in html  # strict CSP
    assert 'data-effect-rule="repeat_late_credit"' in html and "data-effect-chart" in html
    assert 'role="img"' in html and "holdout 20%" in html
    assert "not causal: applied vs dismissed" in html


def test_the_effects_csv_and_wrong_dates(
    world: tuple[FlaskClient, Session, Installation], bearer: dict[str, str]
) -> None:
    client, _session, _installation = world
    response = client.get("/console/effects.csv", headers=bearer)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    paying = [
        r for r in rows if r["rule"] == "repeat_late_credit" and r["segment"] == "All customers"
    ]
    ordered = next(r for r in paying if r["outcome"] == "ordered_90d")
    assert float(ordered["ci_low"]) > 0 and ordered["comparison"] == "shown vs held out"
    assert (
        client.get("/console/effects.csv", query_string={"from": "x"}, headers=bearer).status_code
        == 400
    )
    wrong = client.post("/console/effects", data={"from": "2026-02-30", "to": ""}, headers=bearer)
    assert wrong.status_code == 400
    assert field_error(wrong.get_data(as_text=True), "effects-from") == (
        "expected a date such as 2026-11-01"
    )


def test_segments_below_the_minimum_say_not_enough_data(
    world: tuple[FlaskClient, Session, Installation], bearer: dict[str, str]
) -> None:
    client, _session, _installation = world
    today = utcnow().date()
    # A month of the planted history: too few held-out tickets in each segment.
    response = client.post(
        "/console/effects",
        data={
            "from": (today - timedelta(days=230)).isoformat(),
            "to": (today - timedelta(days=200)).isoformat(),
        },
        headers=bearer,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "not enough data yet" in html and "data-not-enough" in html


def test_a_requester_counts_once_per_rule_at_their_first_ticket(session: Session) -> None:
    installation, rule_id = _installation(session)
    for ticket, requester, days_ago, ordered in (
        ("t1", "r1", 300, True),
        ("t2", "r1", 250, False),  # r1 again: not counted
        ("t3", "r2", 260, False),
    ):
        session.add(
            exposure(
                installation.id,
                rule_id,
                ticket,
                requester_id=requester,
                seen_at=NOW - timedelta(days=days_ago),
                held_out=True,
                ordered_90d=ordered,
                outcomes_final=True,
            )
        )
    session.commit()
    period = effects.default_period(NOW.date())
    built = effects.build_effects(session, installation, period)
    (rule,) = built.rules
    found = rule.overall.line("ordered_90d").comparison
    assert rule.causal and (found.control_n, found.control) == (2, 0.5)
    assert found.shortfall.startswith("not enough data yet")
