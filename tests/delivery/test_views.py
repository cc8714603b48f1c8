"""The console's delivery section, the demo desk's notes, and the `flask outbox` commands."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session

from plugin.clock import utcnow
from plugin.delivery.cli import start_in_process, stop_in_process
from plugin.models import Action, Delivery, DemoNote, DemoTicket, Installation
from tests.console.test_views import QUERY, console_session, launch, launch_token, session_token

ROUTES = [
    ("GET", "/console/deliveries"),
    ("POST", "/console/deliveries/1/retry"),
    ("POST", "/console/deliveries/retry-dead"),
]


@pytest.fixture
def bearer(app: Flask, client: FlaskClient, demo_installation: Installation) -> dict[str, str]:
    return {"Authorization": f"Bearer {console_session(app, client, demo_installation)}"}


@pytest.fixture
def other(session: Session) -> Installation:
    installation = Installation(platform="demo", account="other", display_name="Other Co")
    session.add(installation)
    session.commit()
    return installation


def dead_action(session: Session, installation: Installation, ticket_id: str, key: str) -> Action:
    """An action whose delivery was parked dead, as after a 404 from the helpdesk."""
    action = Action(
        installation_id=installation.id,
        ticket_id=ticket_id,
        requester_id="90001",
        agent_id="80001",
        kind="dismissed",
        exception_key="free_shipping",
        currency="USD",
        reason_code="not_needed",
        text="",
        idempotency_key=key,
        created_at=utcnow() - timedelta(hours=1),
    )
    session.add(action)
    session.commit()
    session.execute(
        sa.update(Delivery)
        .where(Delivery.action_id == action.id)
        .values(
            status="dead",
            attempts=1,
            failures=1,
            last_error_kind="ticket_gone",
            last_error=f"ticket {ticket_id} was not found",
        )
    )
    session.commit()
    return action


def status_of(session: Session, action: Action) -> str:
    session.expire_all()
    delivery = session.get(Delivery, action.id)
    assert delivery is not None
    return delivery.status


def test_the_console_page_has_the_delivery_section(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    html = launch(client, launch_token(app, demo_installation)).get_data(as_text=True)
    assert 'data-load-url="/console/deliveries"' in html
    assert '<a href="#deliveries-title">Delivery to tickets</a>' in html


@pytest.mark.parametrize(("method", "url"), ROUTES)
def test_every_route_needs_a_console_session(
    app: Flask, client: FlaskClient, demo_installation: Installation, method: str, url: str
) -> None:
    assert client.open(url, method=method).status_code == 401
    forged = {"Authorization": "Bearer forged"}
    assert client.open(url, method=method, headers=forged).status_code == 401
    sidebar = client.post(
        "/sidebar", query_string=QUERY, data={"token": launch_token(app, demo_installation)}
    )
    agent = {"Authorization": f"Bearer {session_token(sidebar.get_data(as_text=True))}"}
    assert client.open(url, method=method, headers=agent).status_code == 403


def test_dead_actions_are_listed_with_their_error_and_retried(
    client: FlaskClient,
    bearer: dict[str, str],
    session: Session,
    demo_installation: Installation,
) -> None:
    first = dead_action(session, demo_installation, "4040", "dead-key-0001")
    second = dead_action(session, demo_installation, "4041", "dead-key-0002")
    response = client.get("/console/deliveries", headers=bearer)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<script" not in html and "style=" not in html
    assert "Ticket gone</strong>: ticket 4040 was not found" in html
    assert "2\u00a0dead" in html  # the count and its word never split (a no-break space)
    assert "Retry all dead" in html

    retried = client.post(f"/console/deliveries/{first.id}/retry", headers=bearer)
    assert retried.status_code == 200
    assert f"Action {first.id} will be sent again" in retried.get_data(as_text=True)
    assert (status_of(session, first), status_of(session, second)) == ("pending", "dead")

    everything = client.post("/console/deliveries/retry-dead", headers=bearer)
    assert "1 action will be sent again" in everything.get_data(as_text=True)
    assert status_of(session, second) == "pending"


def test_another_installations_deliveries_are_never_shown_or_retried(
    client: FlaskClient,
    bearer: dict[str, str],
    session: Session,
    demo_installation: Installation,
    other: Installation,
) -> None:
    theirs = dead_action(session, other, "7777", "their-key-0001")
    html = client.get("/console/deliveries", headers=bearer).get_data(as_text=True)
    assert "7777" not in html
    assert client.post(f"/console/deliveries/{theirs.id}/retry", headers=bearer).status_code == 404
    client.post("/console/deliveries/retry-dead", headers=bearer)
    assert status_of(session, theirs) == "dead"


def test_the_in_process_worker_delivers_a_demo_action_as_a_note(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    ticket = session.scalars(
        sa.select(DemoTicket).where(DemoTicket.installation_id == demo_installation.id)
    ).first()
    assert ticket is not None
    action = dead_action(session, demo_installation, ticket.external_id, "note-key-0001")
    # Queued a minute ago: past the undo window, due now. Only this action: the demo's history
    # (delivered long ago) must not be queued again ahead of it.
    session.execute(
        sa.update(Delivery)
        .where(Delivery.action_id == action.id)
        .values(
            status="pending",
            next_attempt_at=utcnow(),
            created_at=utcnow() - timedelta(minutes=1),
        )
    )
    session.commit()
    worker = start_in_process(app)
    app.extensions["regulars.outbox_worker"] = worker
    try:
        for _ in range(100):
            if status_of(session, action) == "delivered":
                break
            worker.stop_event.wait(0.1)
    finally:
        stop_in_process(app)
    assert status_of(session, action) == "delivered"
    notes = session.scalars(
        sa.select(DemoNote).where(DemoNote.ticket_id == ticket.external_id)
    ).all()
    # Alone, or gathered with the ticket's other pending actions into one note.
    assert [note for note in notes if "Ref: regulars-action-note-key-0001" in note.body]

    csrf = re.search(
        r'name="csrf-token" content="([^"]+)"', client.get("/demo").get_data(as_text=True)
    )
    assert csrf
    shown = client.post(
        f"/demo/api/tickets/{ticket.external_id}/notes", headers={"X-CSRFToken": csrf.group(1)}
    )
    assert shown.status_code == 200
    assert "Regulars · " in shown.get_data(as_text=True)
    assert "Dismissed: " in shown.get_data(as_text=True)
    assert client.post(f"/demo/api/tickets/{ticket.external_id}/notes").status_code == 400


def test_the_commands_show_the_status_and_retry_the_dead(
    runner: FlaskCliRunner, session: Session, demo_installation: Installation
) -> None:
    action = dead_action(session, demo_installation, "4040", "cli-key-00001")
    status = runner.invoke(args=["outbox", "status"])
    assert status.exit_code == 0, status.output
    assert "dead 1" in status.output
    assert runner.invoke(args=["outbox", "retry"]).exit_code != 0
    retried = runner.invoke(args=["outbox", "retry", "--dead"])
    assert "1 action(s) will be sent again." in retried.output
    assert status_of(session, action) == "pending"
    worked = runner.invoke(args=["outbox", "work", "--until-empty"])
    assert worked.exit_code == 0, worked.output
    assert status_of(session, action) == "dead"  # ticket 4040 is not in the demo
