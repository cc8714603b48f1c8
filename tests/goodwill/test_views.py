"""The suggestions card and the actions on it, over HTTP, in the demo and against a fake Zendesk."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin import db
from plugin.clock import utcnow
from plugin.demo.exceptions_seed import demo_rules_file
from plugin.demo.sample_data import build_sample_data
from plugin.goodwill.rulebook import Author
from plugin.goodwill.transfer import import_rules
from plugin.models import Action, Installation
from tests.e2e.test_zendesk_end_to_end import HIGH_VALUE_REQUESTER, HIGH_VALUE_TICKET, make_world
from tests.sidebar.test_views import demo_token, launch, session_token


def open_ticket_of(name: str) -> str:
    """The demo's open ticket of the customer with this name."""
    data = build_sample_data(datetime.now(UTC).date())
    user = next(c.helpdesk_user_id for c in data.customers if c.name == name)
    return next(
        t.external_id
        for t in data.tickets
        if t.requester_user_id == user and t.status in {"new", "open", "pending"}
    )


MARGARET = "Margaret Okafor"  # high value, late delivery; $38 granted in the last 90 days
CAFE = "Bean There Café"  # small business, late delivery; its budget is running out
DANIEL = "Daniel Whitfield"  # high value, damaged item: a credit above the approval threshold
TYLER = "Tyler Brennan"  # deal seeker: a free sample, no credit


@pytest.fixture
def bearer(app: Flask, client: FlaskClient, demo_installation: Installation) -> dict[str, str]:
    token = session_token(launch(client, demo_token(app, demo_installation)).get_data(True))
    return {"Authorization": f"Bearer {token}"}


def suggestions(client: FlaskClient, bearer: dict[str, str], name: str):
    return client.get(
        "/sidebar/suggestions", query_string={"ticket_id": open_ticket_of(name)}, headers=bearer
    )


def form_of(html: str, exception: str, kind: str = "apply") -> dict[str, str]:
    """The hidden fields of an offer's apply (or dismiss) form, as the page would send them."""
    offer = html[html.index(f'data-exception="{exception}"') :]
    if kind == "dismiss":
        offer = offer[offer.rindex("<form", 0, offer.index('rg-dismiss"')) :]
    form = offer[offer.index("<form") : offer.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def offer_html(html: str, exception: str) -> str:
    """One offer's part of the card, up to the next offer or the end of the list."""
    offer = html[html.index(f'data-exception="{exception}"') :]
    ends = [offer.find(end, 1) for end in ('<li class="rg-offer"', "</ol>")]
    return offer[: min(end for end in ends if end > 0)]


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


def actions(session: Session) -> list[Action]:
    session.expire_all()
    return list(session.scalars(sa.select(Action).order_by(Action.id)))


def test_the_page_loads_the_card_after_the_banner(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    html = launch(client, demo_token(app, demo_installation)).get_data(True)
    assert 'data-view-url="/sidebar/view"' in html


def test_the_card_ranks_suggestions_and_says_why(
    client: FlaskClient, bearer: dict[str, str]
) -> None:
    response = suggestions(client, bearer, MARGARET)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<script" not in html and "style=" not in html  # strict CSP: no inline script, style
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    offers = re.findall(r'class="rg-offer" data-exception="([a-z_]+)"', html)
    assert offers == ["expedited_shipping", "waive_shipping_fee", "priority_handling"]
    text = text_of(html)
    assert "Expedited shipping upgrade Estimated cost: $18" in text
    assert "Why: tier is high · ticket tags include late delivery" in text
    assert "Goodwill: $38 granted in the last 90 days" in text
    assert "Cap: 2 of 2 in 90 days" in text
    assert "Budget: High value, $27 of $1,500 this month" in text
    assert "ticket subject has the word not here" in text  # of its words, those it has
    # Every input has its label.
    for input_id in re.findall(r'<(?:input|select|textarea) id="([^"]+)"', html):
        assert f'<label for="{input_id}">' in html


def test_the_card_says_when_a_budget_runs_out_and_lists_ticket_actions(
    client: FlaskClient, bearer: dict[str, str]
) -> None:
    html = suggestions(client, bearer, CAFE).get_data(as_text=True)
    text = text_of(html)
    assert "Budget running out: Small business, 80% used ($120 of $150 this month)." in text
    assert 'data-flag="running-out"' in html
    assert "Route to Experienced agents" in text and "Add tag regulars_business" in text


def test_a_credit_above_the_threshold_needs_approval(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    html = suggestions(client, bearer, DANIEL).get_data(as_text=True)
    offer = offer_html(html, "goodwill_credit")
    assert 'data-flag="needs-approval"' in offer
    assert "$5 to $75; a supervisor approves above $25." in text_of(offer)
    fields = form_of(html, "goodwill_credit") | {
        "kind": "escalate",
        "amount": "27.67",
        "reason": "service_failure",
    }
    response = client.post("/sidebar/actions", data=fields, headers=bearer)
    assert response.status_code == 200
    assert (
        "Sent for approval: $27.67 10% goodwill credit — recorded; a supervisor decides."
        in text_of(response.get_data(as_text=True))
    )
    assert actions(session)[-1].kind == "escalated"


def test_applying_records_once_and_the_card_shows_it_done(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    before = len(actions(session))
    html = suggestions(client, bearer, MARGARET).get_data(as_text=True)
    fields = form_of(html, "expedited_shipping") | {"kind": "apply", "reason": "late_delivery"}
    response = client.post("/sidebar/actions", data=fields, headers=bearer)
    assert response.status_code == 200
    card = response.get_data(as_text=True)
    assert (
        'data-result="done">Applied: $18 Expedited shipping upgrade — recorded in the action log.'
        "</p>" in card
    )
    assert 'class="rg-offer" data-exception="expedited_shipping"' not in card
    assert "Applied: $18 Expedited shipping upgrade · just now" in text_of(card)
    # A double click sends the same idempotency key: nothing more is recorded.
    again = client.post("/sidebar/actions", data=fields, headers=bearer)
    assert again.status_code == 200
    recorded = actions(session)
    assert len(recorded) == before + 1
    action = recorded[-1]
    assert (action.kind, action.exception_key, action.amount_cents, action.agent_id) == (
        "applied",
        "expedited_shipping",
        1800,
        "80001",
    )
    assert action.rule_version == 1 and action.rule_id is not None
    assert action.ticket_id == open_ticket_of(MARGARET)


def test_field_errors_say_which_field_and_why(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    before = len(actions(session))
    html = suggestions(client, bearer, DANIEL).get_data(as_text=True)
    fields = form_of(html, "goodwill_credit") | {"kind": "escalate", "amount": "80", "reason": ""}
    response = client.post("/sidebar/actions", data=fields, headers=bearer)
    assert response.status_code == 422
    card = response.get_data(as_text=True)
    assert "Amount: must be from $5 to $75" in card
    assert "Reason: choose one of: Service failure" in card
    assert re.search(r'id="rg-goodwill_credit-amount"[^>]*aria-invalid="true"', card, re.S)
    assert 'value="80"' in card  # what the agent typed is kept
    assert len(actions(session)) == before


def test_dismissing_records_the_reason_and_note(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    html = suggestions(client, bearer, TYLER).get_data(as_text=True)
    fields = form_of(html, "free_sample", "dismiss") | {
        "kind": "dismiss",
        "reason": "customer_declined",
        "text": "Only wants the promo code <fixed>",
    }
    response = client.post("/sidebar/actions", data=fields, headers=bearer)
    assert response.status_code == 200
    card = response.get_data(as_text=True)
    assert "Dismissed: Free sample with the next order (Customer declined) — recorded" in card
    action = actions(session)[-1]
    assert (action.kind, action.reason_code, action.text) == (
        "dismissed",
        "customer_declined",
        "Only wants the promo code <fixed>",
    )


def test_what_a_cap_now_forbids_is_refused_with_why(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    html = suggestions(client, bearer, MARGARET).get_data(as_text=True)
    first = form_of(html, "expedited_shipping") | {"kind": "apply", "reason": "late_delivery"}
    assert client.post("/sidebar/actions", data=first, headers=bearer).status_code == 200
    # Meanwhile another agent's page still offers it (2 of 2 in 90 days was the last one).
    again = first | {"idempotency_key": "another-agents-click"}
    response = client.post("/sidebar/actions", data=again, headers=bearer)
    assert response.status_code == 409
    assert (
        "Expedited shipping upgrade can't be given now: granted 2 times in the last 90 days; "
        "the rule allows 2 times per 90 days." in text_of(response.get_data(as_text=True))
    )


def test_json_requests_get_json_answers(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    ticket_id = open_ticket_of(TYLER)
    body = {
        "ticket_id": ticket_id,
        "exception": "free_sample",
        "kind": "apply",
        "reason": "delight",
        "idempotency_key": "json-client-0001",
    }
    response = client.post("/sidebar/actions", json=body, headers=bearer)
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["kind"] == "applied" and answer["amount_cents"] == 600
    assert answer["rule_version"] == 1 and answer["duplicate"] is False
    assert client.post("/sidebar/actions", json=body, headers=bearer).get_json()["duplicate"]
    bad = client.post("/sidebar/actions", json=body | {"idempotency_key": "x"}, headers=bearer)
    assert bad.status_code == 422
    assert bad.get_json() == {
        "errors": {"idempotency_key": "expected 8 to 64 letters, digits, _ or -"}
    }


def test_without_a_session_nothing_is_shown_or_recorded(
    client: FlaskClient, demo_installation: Installation, session: Session
) -> None:
    before = len(actions(session))
    card = client.get("/sidebar/suggestions", query_string={"ticket_id": open_ticket_of(MARGARET)})
    assert card.status_code == 401
    posted = client.post(
        "/sidebar/actions",
        data={"ticket_id": open_ticket_of(MARGARET), "exception": "expedited_shipping"},
        headers={"Authorization": "Bearer forged"},
    )
    assert posted.status_code == 401
    assert len(actions(session)) == before


def test_an_unknown_ticket_is_a_404(client: FlaskClient, bearer: dict[str, str]) -> None:
    response = client.get(
        "/sidebar/suggestions", query_string={"ticket_id": "99999"}, headers=bearer
    )
    assert response.status_code == 404
    assert client.get("/sidebar/suggestions", headers=bearer).status_code == 400


def test_the_card_after_the_banner_costs_no_helpdesk_call(tmp_path: Path) -> None:
    """Against a fake Zendesk: the card reads the ticket through the banner's warm cache."""
    for world in make_world(tmp_path):
        installation = world.installation()
        with db.database(world.app).sessions() as session:
            import_rules(
                session,
                session.merge(installation),
                demo_rules_file(),
                author=Author(None, "test"),
                now=utcnow(),
            )
        token = world.session_token()
        banner = world.banner(token, HIGH_VALUE_TICKET, HIGH_VALUE_REQUESTER)
        assert banner.status_code == 200
        world.zendesk.reset_counts()
        card = world.client.get(
            "/sidebar/suggestions",
            query_string={"ticket_id": HIGH_VALUE_TICKET, "requester_id": HIGH_VALUE_REQUESTER},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert card.status_code == 200
        assert 'data-exception="expedited_shipping"' in card.get_data(as_text=True)
        assert world.zendesk.total_calls() == 0
