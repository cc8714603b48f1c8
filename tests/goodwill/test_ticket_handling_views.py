"""Applying a rule's ticket handling from the sidebar's card, over HTTP, in the demo: the form,
once-only recording, refusals, and the outbox changing the demo ticket.

(Against fake Zendesk and Freshdesk accounts: tests/e2e/test_ticket_handling_end_to_end.py.)
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.delivery.cli import worker_for
from plugin.models import Action, Delivery, DemoNote, DemoTicket, Installation
from tests.demo.test_views import csrf_token
from tests.goodwill.test_views import CAFE, actions, open_ticket_of, suggestions, text_of
from tests.sidebar.test_views import demo_token, launch, session_token

ROUTE = "Route to Experienced agents"


def handling_form(html: str, what: str) -> dict[str, str]:
    """The fields of the Apply form of a ticket action, as the page sends them."""
    item = html[html.index(f"<strong>{what}</strong>") :]
    form = item[item.index("<form") : item.index("</form>")]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    button = re.search(r'<button type="submit" name="kind" value="([a-z]+)"', form)
    assert button is not None
    return fields | {"kind": button.group(1)}


def handled(session: Session) -> list[Action]:
    return [a for a in actions(session) if a.kind == "handled"]


@pytest.fixture
def bearer(app: Flask, client: FlaskClient, demo_installation: Installation) -> dict[str, str]:
    token = session_token(launch(client, demo_token(app, demo_installation)).get_data(True))
    return {"Authorization": f"Bearer {token}"}


def test_each_ticket_action_has_an_apply_button_that_says_what_it_applies(
    client: FlaskClient, bearer: dict[str, str]
) -> None:
    html = suggestions(client, bearer, CAFE).get_data(as_text=True)
    assert "<script" not in html and "style=" not in html
    for what, kind, value in (
        (ROUTE, "route_to_group", "Experienced agents"),
        ("Add tag regulars_business", "add_tag", "regulars_business"),
    ):
        fields = handling_form(html, what)
        assert fields["kind"] == "handle"
        assert (fields["handling"], fields["handling_value"]) == (kind, value)
        assert fields["ticket_id"] == open_ticket_of(CAFE)
        assert re.fullmatch(r"[A-Za-z0-9_\-]{8,64}", fields["idempotency_key"])
    # The button's name says which one it applies; "Apply" is what it shows.
    assert f'class="rg-button" aria-label="Apply: {ROUTE}">Apply</button>' in html


def test_applying_records_once_and_the_card_shows_it_on_its_way(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    html = suggestions(client, bearer, CAFE).get_data(as_text=True)
    fields = handling_form(html, ROUTE)
    first = client.post("/sidebar/actions", data=fields, headers=bearer)
    again = client.post("/sidebar/actions", data=fields, headers=bearer)  # a double submit
    assert first.status_code == again.status_code == 200
    card = text_of(first.get_data(as_text=True))
    assert f"{ROUTE}: recorded, and on its way to the ticket." in card
    assert f"Done on this ticket {ROUTE}: on its way to the ticket" in card
    assert f"<strong>{ROUTE}</strong>" not in first.get_data(as_text=True)  # no second Apply
    assert "Add tag regulars_business" in card  # the rest is still offered
    (row,) = handled(session)
    assert (row.handling, row.handling_value, row.agent_id) == (
        "route_to_group",
        "Experienced agents",
        "80001",
    )
    # The same form from a card shown before, with a new key: refused, nothing more recorded.
    stale = client.post(
        "/sidebar/actions", data=fields | {"idempotency_key": "another-key-1"}, headers=bearer
    )
    assert stale.status_code == 409
    assert f"{ROUTE}: done on this ticket already." in text_of(stale.get_data(as_text=True))
    assert len(handled(session)) == 1


def test_a_forged_handling_is_refused_with_why_and_nothing_recorded(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    html = suggestions(client, bearer, CAFE).get_data(as_text=True)
    forged = handling_form(html, ROUTE) | {"handling_value": "Billing"}
    response = client.post("/sidebar/actions", data=forged, headers=bearer)
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert 'data-result="refused"' in page
    assert (
        "Route to Billing is not suggested for this ticket now, so nothing was recorded."
        in text_of(page)
    )
    as_json = client.post(
        "/sidebar/actions",
        json=forged | {"handling": "close_ticket", "idempotency_key": "forged-json-1"},
        headers=bearer,
    )
    assert as_json.status_code == 422
    assert set(as_json.get_json()["errors"]) == {"handling"}
    assert handled(session) == []


def test_a_json_apply_answers_what_was_recorded(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    html = suggestions(client, bearer, CAFE).get_data(as_text=True)
    answer = client.post(
        "/sidebar/actions", json=handling_form(html, "Add tag regulars_business"), headers=bearer
    )
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["kind"] == "handled" and body["duplicate"] is False
    assert body["message"] == "Add tag regulars_business: recorded, and on its way to the ticket."
    assert [a.id for a in handled(session)] == [body["id"]]


def test_the_outbox_changes_the_demo_ticket_and_the_card_says_it_is_done(
    app: Flask, client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    ticket_id = open_ticket_of(CAFE)
    html = suggestions(client, bearer, CAFE).get_data(as_text=True)
    for what in (ROUTE, "Add tag regulars_business"):
        assert client.post("/sidebar/actions", data=handling_form(html, what), headers=bearer)
    worker_for(app).run(until_empty=True)
    session.expire_all()
    ticket = session.scalars(sa.select(DemoTicket).where(DemoTicket.external_id == ticket_id)).one()
    assert ticket.group_name == "Experienced agents"
    assert {"regulars_business", "regulars_handled"} <= set(ticket.tags)
    notes = session.scalars(
        sa.select(DemoNote.body).where(DemoNote.ticket_id == ticket_id).order_by(DemoNote.id)
    ).all()
    # Taken within the undo window of each other, both arrive as one note.
    (note,) = notes
    assert note.splitlines()[0] == "Regulars · 2 actions on this ticket"
    assert f"1. Ticket handling: {ROUTE}." in note.splitlines()
    assert {d.status for d in session.scalars(sa.select(Delivery))} == {"delivered"}
    card = text_of(suggestions(client, bearer, CAFE).get_data(as_text=True))
    assert f"{ROUTE}: done on the ticket" in card
    assert "Add tag regulars_business: done on the ticket" in card
    assert "Ticket handling Raise" not in card and "Apply:" not in card
    # The demo desk's ticket pane shows the new group and tags with the notes.
    pane = client.post(
        f"/demo/api/tickets/{ticket_id}/notes",
        headers={"X-CSRFToken": csrf_token(client)},
    ).get_data(as_text=True)
    assert 'data-group="Experienced agents"' in pane and "regulars_business" in pane
