"""The sidebar's account review card over HTTP, on the demo, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin import db
from plugin.models import AccountReview, Action, Installation, ReviewCheck
from plugin.reviews.actions import REVIEW_KINDS, describe_review_action
from tests.goodwill.test_views import MARGARET, TYLER, open_ticket_of, text_of
from tests.seeded_demo import SeededDemos
from tests.sidebar.test_views import demo_token, launch, session_token


@pytest.fixture
def world(
    storage_app: Flask, seeded_demos: SeededDemos
) -> Iterator[tuple[FlaskClient, Session, Installation]]:
    """The demo seeded on each database: a client, a session, and the demo installation."""
    with db.database(storage_app).sessions() as session:
        installation = seeded_demos.load(storage_app, session)
        yield storage_app.test_client(), session, installation


def bearer_for(app: Flask, client: FlaskClient, installation: Installation) -> dict[str, str]:
    token = session_token(launch(client, demo_token(app, installation)).get_data(True))
    return {"Authorization": f"Bearer {token}"}


def card(client: FlaskClient, bearer: dict[str, str], name: str):
    return client.get(
        "/sidebar/review", query_string={"ticket_id": open_ticket_of(name)}, headers=bearer
    )


def item_forms(html: str) -> list[dict[str, str]]:
    forms = re.findall(r'<form method="post" action="/sidebar/review/check".*?</form>', html, re.S)
    return [
        dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', f)) for f in forms
    ]


def test_a_high_value_customer_gets_the_checklist_and_it_completes(
    storage_app: Flask, world: tuple[FlaskClient, Session, Installation]
) -> None:
    client, session, installation = world
    bearer = bearer_for(storage_app, client, installation)
    page = launch(client, demo_token(storage_app, installation)).get_data(True)
    assert 'data-view-url="/sidebar/view"' in page

    response = card(client, bearer, MARGARET)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<script" not in html and "style=" not in html
    text = text_of(html)
    assert "Account review: High-value account review" in text
    assert "0 of 3 required items checked" in text
    forms = item_forms(html)
    assert len(forms) == 5 and all(f["checked"] == "true" for f in forms)

    # Check the three required items, one by one; the first twice with the same key.
    first = client.post("/sidebar/review/check", data=forms[0], headers=bearer)
    assert first.status_code == 200
    assert "Checked: Confirm the delivery address" in text_of(first.get_data(as_text=True))
    again = client.post("/sidebar/review/check", data=forms[0], headers=bearer)
    assert again.status_code == 200 and "Already recorded." in again.get_data(as_text=True)
    for form in forms[1:3]:
        answer = client.post("/sidebar/review/check", data=form, headers=bearer)
    done = text_of(answer.get_data(as_text=True))
    assert "Review complete" in done and "Complete: 3 of 5 items checked" in done
    assert "checked by Sam Carter" in done  # the demo agent the token names

    ticket = open_ticket_of(MARGARET)
    session.expire_all()
    logged = session.scalars(
        sa.select(Action)
        .where(Action.ticket_id == ticket, Action.kind.in_(REVIEW_KINDS))
        .order_by(Action.id)
    ).all()
    assert [a.kind for a in logged] == ["review_checked"] * 3 + ["review_completed"]
    assert all(a.installation_id == installation.id and a.agent_id for a in logged)
    assert logged[0].review_item_id is not None and logged[0].review_template_id is not None
    assert describe_review_action(session, logged[-1]).startswith(
        "Account review “High-value account review” completed"
    )
    # The completed review's note lists what was checked, in the checklist's order.
    completed = describe_review_action(session, logged[-1])
    assert completed.count("; ") == 2
    assert "checked (Confirm the delivery address and preferred carrier; " in completed

    # A colleague reopening the ticket sees the same progress; unchecking reopens the review.
    reopened = card(client, bearer, MARGARET).get_data(as_text=True)
    assert "Review complete" in text_of(reopened)
    uncheck = item_forms(reopened)[1]
    assert uncheck["checked"] == "false"
    answer = client.post("/sidebar/review/check", data=uncheck, headers=bearer)
    assert "The review is open again." in text_of(answer.get_data(as_text=True))
    session.expire_all()
    review = session.scalars(
        sa.select(AccountReview).where(AccountReview.ticket_id == ticket)
    ).one()
    assert review.completed_at is None


def test_no_card_for_a_customer_no_template_fits(
    storage_app: Flask, world: tuple[FlaskClient, Session, Installation]
) -> None:
    client, session, installation = world
    bearer = bearer_for(storage_app, client, installation)
    response = card(client, bearer, TYLER)
    assert response.status_code == 204
    assert (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(AccountReview)
            .where(AccountReview.ticket_id == open_ticket_of(TYLER))
        )
        == 0
    )


def test_json_checks_and_field_errors(
    storage_app: Flask, world: tuple[FlaskClient, Session, Installation]
) -> None:
    client, _session, installation = world
    bearer = bearer_for(storage_app, client, installation)
    forms = item_forms(card(client, bearer, MARGARET).get_data(as_text=True))
    bad = client.post(
        "/sidebar/review/check",
        json={"ticket_id": forms[0]["ticket_id"], "item": "x", "checked": "maybe"},
        headers=bearer,
    )
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) == {"item", "checked", "idempotency_key"}
    good = client.post(
        "/sidebar/review/check",
        json={
            "ticket_id": forms[0]["ticket_id"],
            "item": int(forms[3]["item"]),
            "checked": True,
            "idempotency_key": "json-check-0001",
        },
        headers=bearer,
    )
    assert good.status_code == 200
    body = good.get_json()
    assert body["complete"] is False and body["checked"] == [int(forms[3]["item"])]
    # The form version says which field is wrong, beside the card.
    html_bad = client.post(
        "/sidebar/review/check", data=forms[0] | {"checked": "perhaps"}, headers=bearer
    )
    assert html_bad.status_code == 422
    assert "Checked: expected true or false." in text_of(html_bad.get_data(as_text=True))


def test_a_session_never_reads_or_writes_another_installations_review(
    storage_app: Flask, world: tuple[FlaskClient, Session, Installation]
) -> None:
    client, session, installation = world
    bearer = bearer_for(storage_app, client, installation)
    forms = item_forms(card(client, bearer, MARGARET).get_data(as_text=True))
    other = Installation(
        platform="demo",
        account="other",
        display_name="Other",
        app_installation_id="2",
        token_audience="https://demo.localhost/api/v2/apps/installations/2.json",
        public_key_pem=installation.public_key_pem,
    )
    session.add(other)
    session.commit()
    other_bearer = bearer_for(storage_app, client, other)
    # The other installation's session, with this installation's ticket and item ids.
    posted = client.post(
        "/sidebar/review/check",
        data=forms[0] | {"idempotency_key": "other-install-1"},
        headers=other_bearer,
    )
    assert posted.status_code in {404, 422}
    # ... and reading: this installation's ticket shows no card to the other one.
    assert card(client, other_bearer, MARGARET).status_code in {204, 404}
    session.expire_all()
    assert (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(ReviewCheck)
            .join(AccountReview, AccountReview.id == ReviewCheck.review_id)
            .where(AccountReview.ticket_id == open_ticket_of(MARGARET))
        )
        == 0
    )
    assert (
        session.scalar(
            sa.select(sa.func.count()).select_from(Action).where(Action.installation_id == other.id)
        )
        == 0
    )


def test_the_card_needs_the_sidebar_session(
    world: tuple[FlaskClient, Session, Installation],
) -> None:
    client, _session, _installation = world
    assert client.get("/sidebar/review", query_string={"ticket_id": "1"}).status_code == 401
    posted = client.post("/sidebar/review/check", data={"ticket_id": "1", "item": "1"})
    assert posted.status_code == 401
