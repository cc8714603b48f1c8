"""The console's account review checklists over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin import db
from plugin.models import Installation, ReviewItem, ReviewTemplate
from plugin.reviews import checklists
from tests.console.test_views import QUERY, console_session, launch_token, session_token
from tests.customers.test_console_views import field_error
from tests.seeded_demo import SeededDemos

ROUTES = [
    ("GET", "/console/reviews"),
    ("GET", "/console/reviews/new"),
    ("POST", "/console/reviews"),
    ("GET", "/console/reviews/1"),
    ("POST", "/console/reviews/1"),
    ("POST", "/console/reviews/1/enabled"),
]
WIN_BACK = {
    "name": "Win-back check",
    "priority": "5",
    "enabled": "on",
    "audience-lifecycle_stage": ["at_risk", "lapsed"],
    "items-0-label": "Ask what changed since their last order",
    "items-0-required": "on",
    "items-1-label": "Mention what is new in their favourite category",
    "items-1-help": "Top categories are in the banner.",
    "items-2-label": "",
}


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


def template_id(session: Session, name: str) -> int:
    session.expire_all()
    found = session.scalar(sa.select(ReviewTemplate.id).where(ReviewTemplate.name == name))
    assert found is not None
    return found


@pytest.mark.parametrize(("method", "url"), ROUTES)
def test_every_route_needs_the_console_session(
    world: tuple[FlaskClient, Session, Installation], method: str, url: str
) -> None:
    client, _session, _installation = world
    assert client.open(url, method=method).status_code == 401


def test_the_demo_checklist_is_listed_and_the_page_links_the_section(
    storage_app: Flask, world: tuple[FlaskClient, Session, Installation], bearer: dict[str, str]
) -> None:
    client, _session, _installation = world
    html = client.get("/console/reviews", headers=bearer).get_data(as_text=True)
    assert "High-value account review" in html
    assert "For tier high or RFM segment can&#39;t lose them" in html
    assert "Confirm the delivery address and preferred carrier" in html


def test_create_edit_reorder_and_disable_a_checklist(
    world: tuple[FlaskClient, Session, Installation], bearer: dict[str, str]
) -> None:
    client, session, installation = world
    created = client.post("/console/reviews", data=WIN_BACK, headers=bearer)
    assert created.status_code == 200, created.get_data(as_text=True)
    assert "Saved Win-back check." in created.get_data(as_text=True)
    new_id = template_id(session, "Win-back check")
    template = checklists.template_of(session, installation.id, new_id)
    assert [i.label for i in template.items] == [
        "Ask what changed since their last order",
        "Mention what is new in their favourite category",
    ]
    assert [i.required for i in template.items] == [True, False]

    form = client.get(f"/console/reviews/{new_id}", headers=bearer).get_data(as_text=True)
    ids = re.findall(r'name="items-(\d+)-id" value="(\d+)"', form)
    assert len(ids) == 2
    # Move the second item first, rename it; the item keeps its id (and so its checks).
    first_id, second_id = ids[0][1], ids[1][1]
    edited = {
        "name": "Win-back check",
        "priority": "5",
        "enabled": "on",
        "audience-lifecycle_stage": ["lapsed"],
        "items-0-id": first_id,
        "items-0-label": "Ask what changed since their last order",
        "items-0-required": "on",
        "items-0-position": "2",
        "items-1-id": second_id,
        "items-1-label": "Say what is new in their favourite category",
        "items-1-position": "1",
        "items-2-label": "Offer the win-back credit if the rules suggest it",
        "items-2-required": "on",
    }
    saved = client.post(f"/console/reviews/{new_id}", data=edited, headers=bearer)
    assert saved.status_code == 200
    template = checklists.template_of(session, installation.id, new_id)
    assert [(i.item_id, i.label) for i in template.items][:2] == [
        (int(second_id), "Say what is new in their favourite category"),
        (int(first_id), "Ask what changed since their last order"),
    ]
    assert len(template.items) == 3 and template.audience.lifecycle_stages == {"lapsed"}

    # Remove an item.
    removed = edited | {"items-2-label": "", "items-2-required": "", "items-0-remove": "on"}
    assert (
        client.post(f"/console/reviews/{new_id}", data=removed, headers=bearer).status_code == 200
    )
    template = checklists.template_of(session, installation.id, new_id)
    assert [i.item_id for i in template.items] == [int(second_id)]

    off = client.post(
        f"/console/reviews/{new_id}/enabled", data={"enabled": "false"}, headers=bearer
    )
    assert "Win-back check is off." in off.get_data(as_text=True)
    assert checklists.template_of(session, installation.id, new_id).enabled is False


def test_each_wrong_field_gets_its_message(
    world: tuple[FlaskClient, Session, Installation], bearer: dict[str, str]
) -> None:
    client, _session, _installation = world
    bad = {
        "name": "High-value account review",  # taken
        "priority": "soon",
        "audience-tier": ["platinum"],
        "items-0-label": "",
        "items-0-help": "help with no label",
        "items-1-label": "Same",
        "items-2-label": "same",
        "items-2-position": "99",
    }
    response = client.post("/console/reviews", data=bad, headers=bearer)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "fields need a change" in html
    assert field_error(html, "review-name") == "another checklist has this name"
    assert field_error(html, "review-priority").startswith("expected a whole number")
    assert field_error(html, "review-audience-tier") == "not a tier: platinum"
    assert field_error(html, "review-item-0-label") == "enter what the agent checks"
    assert field_error(html, "review-item-2-label") == "the same as item 2"
    assert field_error(html, "review-item-2-position").startswith("expected a whole number")
    assert 'value="help with no label"' in html  # what was typed is kept


def test_the_name_clash_is_reported_on_the_name(
    world: tuple[FlaskClient, Session, Installation], bearer: dict[str, str]
) -> None:
    client, _session, _installation = world
    clash = WIN_BACK | {"name": "High-value account review"}
    response = client.post("/console/reviews", data=clash, headers=bearer)
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "review-name") == (
        "another checklist has this name"
    )


def test_another_installations_checklists_are_not_found(
    storage_app: Flask, world: tuple[FlaskClient, Session, Installation], bearer: dict[str, str]
) -> None:
    client, session, _installation = world
    other = Installation(platform="zendesk", account="other", display_name="Other Co")
    session.add(other)
    session.commit()
    theirs = ReviewTemplate(
        installation_id=other.id, name="Theirs", audience={"tier": ["high"]}, priority=0
    )
    session.add(theirs)
    session.flush()
    session.add(
        ReviewItem(installation_id=other.id, template_id=theirs.id, position=1, label="Secret")
    )
    session.commit()
    listing = client.get("/console/reviews", headers=bearer).get_data(as_text=True)
    assert "Theirs" not in listing and "Secret" not in listing
    assert client.get(f"/console/reviews/{theirs.id}", headers=bearer).status_code == 404
    changed = client.post(f"/console/reviews/{theirs.id}", data=WIN_BACK, headers=bearer)
    assert changed.status_code == 404
    off = client.post(
        f"/console/reviews/{theirs.id}/enabled", data={"enabled": "false"}, headers=bearer
    )
    assert off.status_code == 404
    # Their item id in this installation's template form is refused, not moved over.
    ours = template_id(session, "High-value account review")
    their_item = session.scalar(sa.select(ReviewItem.id).where(ReviewItem.template_id == theirs.id))
    stolen = WIN_BACK | {"name": "High-value account review", "items-0-id": str(their_item)}
    assert client.post(f"/console/reviews/{ours}", data=stolen, headers=bearer).status_code == 400
    session.expire_all()
    assert session.get(ReviewTemplate, theirs.id).name == "Theirs"  # type: ignore[union-attr]
    assert session.get(ReviewItem, their_item).template_id == theirs.id  # type: ignore[union-attr]


def test_an_agents_sidebar_session_is_refused(
    storage_app: Flask, world: tuple[FlaskClient, Session, Installation]
) -> None:
    client, _session, installation = world
    sidebar = client.post(
        "/sidebar", query_string=QUERY, data={"token": launch_token(storage_app, installation)}
    )
    agent = {"Authorization": f"Bearer {session_token(sidebar.get_data(as_text=True))}"}
    for method, url in (*ROUTES, ("GET", "/console/reports"), ("GET", "/console/reports.csv")):
        assert client.open(url, method=method, headers=agent, data=WIN_BACK).status_code == 403
