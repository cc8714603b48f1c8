"""Masking by role beyond the sidebar: the notes written back, the console's settings (admins
only, each installation its own) and the CSV exports."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.clock import utcnow
from plugin.delivery.notes import build_note
from plugin.domain.masking import FieldGroup, Mask
from plugin.masking.settings import load_role_masks, note_mask
from plugin.models import Action, FieldMask, Installation
from tests.console.test_views import launch, launch_token, session_token
from tests.masking.conftest import ADMIN, AGENT, set_masks

WORDS = "Called her on +44 20 7946 0958 and wrote to m.okafor@example.com: she spent $4,852."


def agent_action(session: Session, installation: Installation, text: str = WORDS) -> Action:
    row = Action(
        installation_id=installation.id,
        ticket_id="1058",
        requester_id="90001",
        agent_id=AGENT,
        kind="dismissed",
        exception_key="free_shipping",
        amount_cents=None,
        currency="USD",
        reason_code="not_needed",
        text=text,
        idempotency_key=f"mask-note-{installation.id}",
        created_at=utcnow() - timedelta(minutes=5),
    )
    session.add(row)
    session.commit()
    return row


def test_a_note_hides_what_any_role_hides_and_nothing_when_no_role_hides_it(
    session: Session, demo_installation: Installation
) -> None:
    action = agent_action(session, demo_installation)
    assert "m.okafor@example.com" in build_note(session, demo_installation, action).body

    # Admins see everything; agents not the email: the note, read by both, hides it.
    set_masks(session, demo_installation, {"agent": ["email"], "admin": []})
    body = build_note(session, demo_installation, action).body
    assert "m.okafor@example.com" not in body
    assert "+44 20 7946 0958" in body and "$4,852" in body
    assert "In their words: “Called her on +44 20 7946 0958 and wrote to [hidden]" in body

    set_masks(session, demo_installation, {"agent": ["phone"]}, default=["money"])
    body = build_note(session, demo_installation, action).body
    assert "7946" not in body and "4,852" not in body
    assert "m.okafor@example.com" in body


def console_bearer(
    app: Flask, client: FlaskClient, installation: Installation, user: str = ADMIN
) -> dict[str, str]:
    page = launch(client, launch_token(app, installation, sub=user))
    assert page.status_code == 200, page.get_data(as_text=True)
    return {"Authorization": f"Bearer {session_token(page.get_data(as_text=True))}"}


def test_an_admin_sets_what_each_role_sees_from_the_console(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    bearer = console_bearer(app, client, demo_installation)
    form = client.get("/console/masks", headers=bearer)
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    # Everything shows by default.
    assert re.search(r'name="default_shows" value="money"[^>]* checked>', html)

    saved = client.post(
        "/console/masks",
        headers=bearer,
        data={
            "role-0": "Agent",
            "shows-0": ["email", "order_lines"],
            "role-1": "360001",
            "shows-1": ["email", "phone", "money", "lifetime_value", "order_lines"],
            "role-2": "",
            "default_shows": ["email", "phone"],
        },
    )
    assert saved.status_code == 200, saved.get_data(as_text=True)
    assert "Saved." in saved.get_data(as_text=True)
    masks = load_role_masks(session, demo_installation.id)
    assert masks.by_role == {
        "agent": Mask(frozenset({FieldGroup.PHONE, FieldGroup.MONEY, FieldGroup.LIFETIME_VALUE})),
        "360001": Mask(),
    }
    assert masks.default == Mask(
        frozenset({FieldGroup.MONEY, FieldGroup.LIFETIME_VALUE, FieldGroup.ORDER_LINES})
    )
    again = client.get("/console/masks", headers=bearer).get_data(as_text=True)
    assert 'data-mask-role="agent"' in again and 'data-mask-role="360001"' in again

    # Clearing a role's name removes it; a role typed twice or an odd one is refused whole.
    for bad in ({"role-0": "agent", "role-1": "AGENT"}, {"role-0": "end-user"}, {"role-0": "a<b"}):
        refused = client.post("/console/masks", headers=bearer, data=bad)
        assert refused.status_code == 400
        assert "Nothing was saved" in refused.get_data(as_text=True)
    assert load_role_masks(session, demo_installation.id) == masks
    client.post("/console/masks", headers=bearer, data={"role-0": "", "default_shows": []})
    session.expire_all()
    assert load_role_masks(session, demo_installation.id).by_role == {}


def test_only_admins_see_or_change_the_masks(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    demo_installation.supervisor_roles = ["agent"]
    session.commit()
    supervisor = console_bearer(app, client, demo_installation, AGENT)
    assert client.get("/console/masks", headers=supervisor).status_code == 403
    refused = client.post(
        "/console/masks", headers=supervisor, data={"role-0": "agent", "default_shows": []}
    )
    assert refused.status_code == 403
    assert client.get("/console/masks").status_code == 401
    assert session.scalar(sa.select(sa.func.count()).select_from(FieldMask)) == 0


def test_each_installation_has_its_own_masks(
    session: Session, demo_installation: Installation
) -> None:
    other = Installation(platform="demo", account="other", display_name="Other")
    session.add(other)
    session.commit()
    set_masks(session, other, {"agent": ["email", "phone"]}, default=["money"])
    set_masks(session, demo_installation, {"admin": ["order_lines"]})

    assert load_role_masks(session, demo_installation.id).by_role == {
        "admin": Mask(frozenset({FieldGroup.ORDER_LINES}))
    }
    assert note_mask(session, demo_installation.id) == Mask(frozenset({FieldGroup.ORDER_LINES}))
    assert load_role_masks(session, other.id).default == Mask(frozenset({FieldGroup.MONEY}))


def test_the_csv_exports_carry_no_customers_contact_or_spend_to_mask(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    """The console's CSV exports count actions and costs by tier, rule, exception and agent:
    no customer's email, phone, spend or orders, for any role. Should a column of a customer's
    data ever be added, this fails and the export must take the exporter's mask."""
    bearer = console_bearer(app, client, demo_installation)
    today = utcnow().date()
    period = {"from": (today - timedelta(days=365)).isoformat(), "to": today.isoformat()}
    for path in ("/console/reports.csv", "/console/effects.csv"):
        answer = client.get(path, headers=bearer, query_string=period)
        assert answer.status_code == 200 and answer.mimetype == "text/csv"
        text = answer.get_data(as_text=True)
        assert not re.search(r"[\w.+-]+@[\w-]+\.\w+", text)
        for figure in ("5307", "5,307", "17232", "17,232", "ORD-", "Okafor", "90001"):
            assert figure not in text, (path, figure)
