"""The console's catalog, budgets and approvals over HTTP, on both databases.

Each test runs on SQLite and PostgreSQL (the module's `app` is the `storage_app`), in the demo
installation, as its supervisor (an agent with the role the admin named).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.models import (
    Action,
    ExceptionType,
    Installation,
    SegmentBudget,
)
from tests.console.test_views import text_of
from tests.customers.test_console_views import field_error
from tests.goodwill.console_world import (
    SAMPLE_ENTRY,
    SUPERVISOR,
    bearer_for,
    escalation,
)


@pytest.fixture
def app(storage_app: Flask) -> Flask:
    """Every test here on both databases."""
    return storage_app


@pytest.fixture
def supervisor(app: Flask, client: FlaskClient, demo_installation: Installation) -> dict[str, str]:
    return bearer_for(app, client, demo_installation, SUPERVISOR)


# --- Catalog ----------------------------------------------------------------------------------


def test_a_catalog_entry_is_created_edited_and_turned_off(
    client: FlaskClient,
    supervisor: dict[str, str],
    session: Session,
    demo_installation: Installation,
) -> None:
    created = client.post("/console/catalog", headers=supervisor, data=SAMPLE_ENTRY)
    assert created.status_code == 200
    assert "Saved Handwritten note." in text_of(created)
    row = session.scalars(
        sa.select(ExceptionType).where(ExceptionType.key == "handwritten_note")
    ).one()
    assert row.installation_id == demo_installation.id
    assert row.definition["cost"] == {"kind": "fixed", "cents": 250}
    assert row.definition["apply_reasons"][0] == {"code": "thanks", "label": "Say thanks"}

    form = text_of(client.get(f"/console/catalog/{row.id}", headers=supervisor))
    assert 'value="2.50"' in form and "thanks: Say thanks" in form
    edited = client.post(
        f"/console/catalog/{row.id}",
        headers=supervisor,
        data=SAMPLE_ENTRY
        | {
            "key": "renamed",  # the key of an entry does not change
            "cost_kind": "percent",
            "cost_percent": "5",
            "cost_max": "20",
            "editable": "on",
            "editable_min": "0",
            "editable_max": "25",
        },
    )
    assert edited.status_code == 200, text_of(edited)
    session.refresh(row)
    assert row.key == "handwritten_note"
    assert row.definition["cost"] == {"kind": "percent", "percent": 5, "max_cents": 2000}
    assert row.definition["editable"] == {"min_cents": 0, "max_cents": 2500}
    off = client.post(
        f"/console/catalog/{row.id}/enabled", headers=supervisor, data={"enabled": "false"}
    )
    assert "Handwritten note is off" in text_of(off)
    session.refresh(row)
    assert row.enabled is False


@pytest.mark.parametrize(
    ("changes", "input_id", "message"),
    [
        ({"key": "Bad Key"}, "entry-key", "Expected lowercase letters"),
        ({"key": "free_sample"}, "entry-key", "An entry 'free_sample' exists already."),
        ({"name": ""}, "entry-name", "Expected a non-blank text."),
        ({"cost_amount": "lots"}, "entry-cost_amount", "Enter an amount in USD"),
        ({"cost_kind": "percent", "cost_percent": "150"}, "entry-cost_percent", "at most 100"),
        ({"cost_kind": "percent", "cost_percent": "x"}, "entry-cost_percent", "Enter a percentage"),
        (
            {"editable": "on", "editable_min": "5", "editable_max": "1"},
            "entry-editable_max",
            "Must be at least min_cents.",
        ),
        (
            {"editable": "on", "editable_min": "5", "editable_max": "10"},
            "entry-cost_amount",
            "Must lie within the editable amount",
        ),
        ({"apply_reasons": ""}, "entry-apply_reasons", "Needs at least one."),
        ({"apply_reasons": "no colon here"}, "entry-apply_reasons", "Line 1: write a code"),
        (
            {"dismiss_reasons": "Bad: x"},
            "entry-dismiss_reasons",
            "Line 1, code: expected lowercase",
        ),
    ],
)
def test_a_wrong_catalog_field_is_named_with_why(
    client: FlaskClient,
    supervisor: dict[str, str],
    session: Session,
    changes: dict[str, str],
    input_id: str,
    message: str,
) -> None:
    before = session.scalar(sa.select(sa.func.count()).select_from(ExceptionType))
    response = client.post("/console/catalog", headers=supervisor, data=SAMPLE_ENTRY | changes)
    assert response.status_code == 400
    assert message in field_error(text_of(response), input_id)
    assert session.scalar(sa.select(sa.func.count()).select_from(ExceptionType)) == before


# --- Budgets ----------------------------------------------------------------------------------


def test_a_budget_is_set_and_its_spend_shown(
    client: FlaskClient,
    supervisor: dict[str, str],
    session: Session,
    demo_installation: Installation,
) -> None:
    listing = text_of(client.get("/console/budgets", headers=supervisor))
    assert "Small business" in listing and "running out" in listing
    response = client.post(
        "/console/budgets",
        headers=supervisor,
        data={"segment": "tier:medium", "monthly": "1,250.50"},
    )
    assert response.status_code == 200
    assert "Set the Medium value budget to 1,250.50 a month." in text_of(response)
    row = session.scalars(
        sa.select(SegmentBudget).where(
            SegmentBudget.field == "tier", SegmentBudget.value == "medium"
        )
    ).one()
    assert (row.installation_id, row.monthly_cents) == (demo_installation.id, 125050)
    wrong = client.post(
        "/console/budgets", headers=supervisor, data={"segment": "tier:gold", "monthly": "x"}
    )
    assert wrong.status_code == 400
    html = text_of(wrong)
    assert "Choose a segment." in field_error(html, "budget-segment")
    assert "Enter the month's budget in USD" in field_error(html, "budget-monthly")


# --- Approvals --------------------------------------------------------------------------------


def test_a_supervisor_approves_and_refuses_escalations(
    client: FlaskClient,
    supervisor: dict[str, str],
    session: Session,
    demo_installation: Installation,
) -> None:
    for key in ("pending-0001", "pending-0002"):
        session.add(escalation(demo_installation.id, key, exception="goodwill_credit"))
    session.commit()
    ids = session.scalars(
        sa.select(Action.id)
        .where(Action.idempotency_key.in_(["pending-0001", "pending-0002"]))
        .order_by(Action.id)
    ).all()
    listing = text_of(client.get("/console/escalations", headers=supervisor))
    assert (
        "10% goodwill credit, $45, for Requester 70001" in listing
        or "10% goodwill credit, $45" in listing
    )
    assert "Sam Carter on ticket #7" in listing and "Third late parcel this month" in listing

    no_reason = client.post(
        f"/console/escalations/{ids[1]}",
        headers=supervisor,
        data={"decision": "refuse", "idempotency_key": "decide-0002"},
    )
    assert no_reason.status_code == 400
    assert "Say why you refuse" in text_of(no_reason)
    approved = client.post(
        f"/console/escalations/{ids[0]}",
        headers=supervisor,
        data={"decision": "approve", "idempotency_key": "decide-0001"},
    )
    assert "Approved: $45 10% goodwill credit" in text_of(approved)
    refused = client.post(
        f"/console/escalations/{ids[1]}",
        headers=supervisor,
        data={
            "decision": "refuse",
            "text": "Credit already given",
            "idempotency_key": "decide-0003",
        },
    )
    assert "Refused: $45 10% goodwill credit" in text_of(refused)
    decisions = session.scalars(
        sa.select(Action).where(Action.escalation_id.in_(ids)).order_by(Action.id)
    ).all()
    assert [(d.kind, d.agent_id, d.text) for d in decisions] == [
        ("approved", SUPERVISOR, ""),
        ("refused", SUPERVISOR, "Credit already given"),
    ]
    assert "Nothing is waiting for approval." in text_of(
        client.get("/console/escalations", headers=supervisor)
    )
