"""One click to apply, two to dismiss, and Undo within the window, over HTTP in the demo.

The card's forms are sent as the page sends them: the inputs as rendered (the preselected
reason included) and the clicked button's name and value. Nothing is sent to the ticket before
the undo window ends, and an action undone in it never is.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.clock import utcnow
from plugin.delivery import outbox as delivery
from plugin.delivery.outbox import OutboxPolicy
from plugin.models import Delivery, Installation
from tests.goodwill.test_views import DANIEL, MARGARET, TYLER, actions, suggestions, text_of
from tests.sidebar.test_views import demo_token, launch, session_token


@pytest.fixture
def bearer(app: Flask, client: FlaskClient, demo_installation: Installation) -> dict[str, str]:
    token = session_token(launch(client, demo_token(app, demo_installation)).get_data(True))
    return {"Authorization": f"Bearer {token}"}


def sent_form(html: str, marker: str, button: str) -> dict[str, str]:
    """The fields a click on `button` (its visible text) sends: the form's inputs as rendered,
    each select's selected option, and the button's own name and value."""
    start = html.index(marker)
    form_start = html.rindex("<form", 0, html.index(f">{button}</button>", start))
    form = html[form_start : html.index("</form>", form_start)]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        fields[name] = chosen.group(1) if chosen else ""
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"[^>]*>', form):
        fields.setdefault(name, value)
    clicked = re.search(
        rf'<button type="submit" name="([^"]+)" value="([^"]*)"[^>]*>{re.escape(button)}</button>',
        form,
    )
    assert clicked is not None, f"no {button!r} button"
    return fields | {clicked.group(1): clicked.group(2)}


def deliveries(session: Session) -> dict[int, str]:
    session.expire_all()
    return dict(session.execute(sa.select(Delivery.action_id, Delivery.status)).all())


def test_apply_is_one_click_with_the_first_reason_preselected(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    html = suggestions(client, bearer, MARGARET).get_data(as_text=True)
    fields = sent_form(html, 'data-exception="expedited_shipping"', "Apply")
    response = client.post("/sidebar/actions", data=fields, headers=bearer)
    assert response.status_code == 200
    card = response.get_data(as_text=True)
    assert "Applied: $18 Expedited shipping upgrade" in text_of(card)
    applied = actions(session)[-1]
    assert (applied.kind, applied.reason_code) == ("applied", "late_delivery")
    assert "Nothing is sent to the ticket for 10 seconds." in text_of(card)


def test_dismiss_is_two_clicks_a_reason_chip_sends_it(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    html = suggestions(client, bearer, TYLER).get_data(as_text=True)
    offer = html[html.index('data-exception="free_sample"') :]
    dismiss = offer[offer.index('class="rg-dismiss"') :]
    assert dismiss.index("<summary>") < dismiss.index('class="rg-button rg-chip"')
    fields = sent_form(offer, 'class="rg-dismiss"', "Customer declined")
    response = client.post("/sidebar/actions", data=fields, headers=bearer)
    assert response.status_code == 200
    dismissed = actions(session)[-1]
    assert (dismissed.kind, dismissed.reason_code) == ("dismissed", "customer_declined")


def test_above_the_threshold_the_button_asks_a_supervisor(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    html = suggestions(client, bearer, DANIEL).get_data(as_text=True)
    offer = html[html.index('data-exception="goodwill_credit"') :]
    offer = offer[: offer.index('class="rg-dismiss"')]
    asks = re.search(r"Ask a supervisor: \$[\d.,]+", text_of(offer))
    assert asks is not None
    fields = sent_form(offer, "<form", asks.group(0))
    assert client.post("/sidebar/actions", data=fields, headers=bearer).status_code == 200
    assert actions(session)[-1].kind == "escalated"


def test_undo_within_the_window_takes_it_back_and_nothing_is_delivered(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    html = suggestions(client, bearer, MARGARET).get_data(as_text=True)
    card = client.post(
        "/sidebar/actions",
        data=sent_form(html, 'data-exception="expedited_shipping"', "Apply"),
        headers=bearer,
    ).get_data(as_text=True)
    applied = actions(session)[-1]
    response = client.post(
        "/sidebar/actions", data=sent_form(card, "rg-undo", "Undo"), headers=bearer
    )
    assert response.status_code == 200
    after = response.get_data(as_text=True)
    assert "Undone: nothing was sent to the ticket." in text_of(after)
    # The offer is back, and the log keeps the action, undone.
    assert 'class="rg-offer" data-exception="expedited_shipping"' in after
    assert "Undone (applied): $18 Expedited shipping upgrade" in text_of(after)
    assert actions(session)[-1].undone_at is not None
    assert deliveries(session)[applied.id] == "undone"
    later = utcnow() + timedelta(minutes=10)
    policy = OutboxPolicy(hold_seconds=10)
    claims = delivery.claim(session, worker_id="t", now=later, policy=policy, limit=50)
    assert applied.id not in {action_id for held in claims for action_id in held.actions}


def test_the_reason_can_be_changed_within_the_window(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    html = suggestions(client, bearer, TYLER).get_data(as_text=True)
    offer = html[html.index('data-exception="free_sample"') :]
    card = client.post(
        "/sidebar/actions",
        data=sent_form(offer, 'class="rg-dismiss"', "Customer declined"),
        headers=bearer,
    ).get_data(as_text=True)
    fields = sent_form(card, "rg-undo__reason", "Change reason")
    other = next(
        code for code in re.findall(r'<option value="([a-z_]+)"', card) if code != fields["reason"]
    )
    response = client.post("/sidebar/actions", data=fields | {"reason": other}, headers=bearer)
    assert response.status_code == 200
    assert actions(session)[-1].reason_code == other


def test_undo_after_the_window_is_refused_and_the_note_still_goes(
    app: Flask, client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    html = suggestions(client, bearer, MARGARET).get_data(as_text=True)
    card = client.post(
        "/sidebar/actions",
        data=sent_form(html, 'data-exception="expedited_shipping"', "Apply"),
        headers=bearer,
    ).get_data(as_text=True)
    applied = actions(session)[-1]
    applied.created_at -= timedelta(seconds=11)
    session.commit()
    response = client.post(
        "/sidebar/actions", data=sent_form(card, "rg-undo", "Undo"), headers=bearer
    )
    assert response.status_code == 409
    assert "Too late to change" in text_of(response.get_data(as_text=True))
    assert actions(session)[-1].undone_at is None
    assert deliveries(session)[applied.id] == "pending"


def test_another_agent_cannot_undo_it(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    html = suggestions(client, bearer, MARGARET).get_data(as_text=True)
    card = client.post(
        "/sidebar/actions",
        data=sent_form(html, 'data-exception="expedited_shipping"', "Apply"),
        headers=bearer,
    ).get_data(as_text=True)
    applied = actions(session)[-1]
    applied.agent_id = "someone-else"
    session.commit()
    response = client.post(
        "/sidebar/actions", data=sent_form(card, "rg-undo", "Undo"), headers=bearer
    )
    assert response.status_code == 409
    assert deliveries(session)[applied.id] == "pending"
