"""What the goodwill console's tests share: the demo's supervisor and agent, a sample rule and
catalog entry as their forms post them, a bearer for a user, another installation with data of
its own, and a snapshot of what a console request must not change.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from plugin.clock import utcnow
from plugin.goodwill.action_log import ActionKind
from plugin.goodwill.catalog import save_exception_type
from plugin.goodwill.rulebook import Author, create_rule
from plugin.models import Action, ExceptionType, Installation, Rule, RuleVersion, SegmentBudget
from tests.console.test_views import launch, launch_token, session_token, text_of

SUPERVISOR = "80005"  # Priya Nair: an agent whose role the demo's admin named as supervisors
AGENT = "80001"
CHAMPIONS_RULE = {
    "key": "champions_thank_you",
    "name": "Champions thank-you",
    "priority": "5",
    "enabled": "on",
    "all-0-field": "rfm_segment",
    "all-0-operator": "is",
    "all-0-value": "Champions",
    "suggest-free_sample": "on",
    "suggest-free_sample-priority": "1",
    "cap_times": "1",
    "cap_days": "90",
}
SAMPLE_ENTRY = {
    "key": "handwritten_note",
    "name": "Handwritten note",
    "description": "A note from the team in the next parcel.",
    "cost_kind": "fixed",
    "cost_amount": "2.50",
    "apply_reasons": "thanks: Say thanks\ndelight: A small surprise",
    "dismiss_reasons": "declined: Customer declined",
    "enabled": "on",
}


def bearer_for(
    app: Flask, client: FlaskClient, installation: Installation, user: str
) -> dict[str, str]:
    response = launch(client, launch_token(app, installation, sub=user))
    assert response.status_code == 200, text_of(response)
    return {"Authorization": f"Bearer {session_token(response.get_data(as_text=True))}"}


def add_other_installation(session: Session) -> Installation:
    """Another installation with a catalog entry, a rule and a pending escalation of its own."""
    installation = Installation(platform="zendesk", account="other", display_name="Other Co")
    session.add(installation)
    session.commit()
    now = utcnow()
    save_exception_type(session, installation, entry_definition("theirs"), now=now)
    create_rule(
        session,
        installation,
        key="their_rule",
        definition={
            "name": "Theirs",
            "conditions": {"all": [{"field": "tier", "operator": "is", "value": "high"}]},
            "suggest": [{"exception": "theirs"}],
        },
        author=Author(None, "Them"),
        now=now,
    )
    session.add(escalation(installation.id, "their-escalation"))
    session.commit()
    return installation


def entry_definition(key: str) -> dict[str, object]:
    return {
        "key": key,
        "name": key.title(),
        "currency": "USD",
        "cost": {"kind": "fixed", "cents": 500},
        "apply_reasons": [{"code": "ok", "label": "OK"}],
        "dismiss_reasons": [{"code": "no", "label": "No"}],
    }


def escalation(installation_id: int, key: str, *, exception: str = "theirs") -> Action:
    return Action(
        installation_id=installation_id,
        ticket_id="7",
        requester_id="70001",
        agent_id="80001",
        kind=ActionKind.ESCALATED.value,
        exception_key=exception,
        amount_cents=4500,
        currency="USD",
        reason_code="service_failure",
        text="Third late parcel this month",
        idempotency_key=key,
        created_at=utcnow(),
    )


def send(
    client: FlaskClient, method: str, url: str, headers: dict[str, str], data: object = None
) -> TestResponse:
    return client.open(url, method=method, headers=headers, data=data)


def snapshot(session: Session, installation_id: int) -> list[object]:
    """Everything the console could change for an installation."""
    session.expire_all()
    rows: list[object] = []
    for model in (ExceptionType, Rule, RuleVersion, SegmentBudget, Action):
        for row in session.scalars(
            sa.select(model).where(model.installation_id == installation_id).order_by(model.id)
        ):
            columns = model.__table__.columns.keys()
            rows.append({name: getattr(row, name) for name in columns})
    return rows
