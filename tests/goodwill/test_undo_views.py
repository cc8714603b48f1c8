"""One click to apply, two to dismiss, and Undo within the window, over HTTP in the demo.

The card's forms are sent as the page sends them: the inputs as rendered (the preselected
reason included) and the clicked button's name and value. Nothing is sent to the ticket before
the undo window ends, and an action undone in it never is.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.clock import utcnow
from plugin.delivery import outbox as delivery
from plugin.delivery.outbox import OutboxPolicy
from plugin.models import Delivery, Installation
from tests.goodwill.test_views import (
    DANIEL,
    MARGARET,
    TYLER,
    actions,
    offer_html,
    suggestions,
    text_of,
)
from tests.sidebar.test_views import demo_token, launch, session_token


@pytest.fixture
def bearer(app: Flask, client: FlaskClient, demo_installation: Installation) -> dict[str, str]:
    token = session_token(launch(client, demo_token(app, demo_installation)).get_data(True))
    return {"Authorization": f"Bearer {token}"}


class _Controls(HTMLParser):
    """Every form control with the form it belongs to: its `form` attribute, else the form
    around it, as a browser decides; buttons with their visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str]] = []
        self._forms: list[str] = []
        self._open: dict[str, str] | None = None  # the select or button being read
        self._unnamed = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._unnamed += 1
            self._forms.append(found.get("id") or f"#form{self._unnamed}")
            return
        if tag not in {"input", "select", "button", "option", "textarea"}:
            return
        if tag == "option" and self._open is not None:
            if "selected" in found or "value" not in self._open:
                self._open["value"] = found.get("value", "")
            return
        owner = found.get("form") or (self._forms[-1] if self._forms else "")
        control = found | {"tag": tag, "owner": owner, "text": ""}
        if tag == "select":
            control.pop("value", None)
        self.controls.append(control)
        if tag in {"select", "button"}:
            self._open = control

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._forms:
            self._forms.pop()
        if tag in {"select", "button"}:
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None and self._open["tag"] == "button":
            self._open["text"] += data


def sent_form(html: str, marker: str, button: str) -> dict[str, str]:
    """The fields a click on `button` (its visible text, the first such after `marker`) sends:
    its form's controls as rendered (wherever they sit on the page: a control joins a form by
    its form attribute), each select's selected option, and the button's own name and value."""
    parser = _Controls()
    parser.feed(html[html.index(marker) :])
    clicked = next(
        (c for c in parser.controls if c["tag"] == "button" and c["text"].strip() == button), None
    )
    assert clicked is not None, f"no {button!r} button"
    fields = {
        control["name"]: control.get("value", "")
        for control in parser.controls
        if control["owner"] == clicked["owner"]
        and control["tag"] in {"input", "select"}
        and control.get("name")
    }
    return fields | {clicked["name"]: clicked["value"]}


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
    offer = offer_html(html, "free_sample")
    # One click opens the offer's disclosure; the chip inside is the second.
    assert offer.index("<summary>") < offer.index('class="rg-button rg-chip"')
    assert offer.count("<summary>") == 1
    fields = sent_form(offer, 'rg-dismiss"', "Customer declined")
    response = client.post("/sidebar/actions", data=fields, headers=bearer)
    assert response.status_code == 200
    dismissed = actions(session)[-1]
    assert (dismissed.kind, dismissed.reason_code) == ("dismissed", "customer_declined")


def test_above_the_threshold_the_button_asks_a_supervisor(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    html = suggestions(client, bearer, DANIEL).get_data(as_text=True)
    offer = offer_html(html, "goodwill_credit")
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
        data=sent_form(offer, 'rg-dismiss"', "Customer declined"),
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
