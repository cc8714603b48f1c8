"""The console's personas, guidance and tier sections over HTTP, in the demo installation."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from plugin.clock import utcnow
from plugin.customers import segment_refresh, tier_settings
from plugin.customers.segment_refresh import BaseSize
from plugin.models import CustomerSegment, Installation, Persona, SegmentGuidance
from tests.console.test_views import (
    QUERY,
    console_session,
    launch,
    launch_token,
    session_token,
    text_of,
)

ROUTES = [
    ("GET", "/console/personas"),
    ("GET", "/console/personas/new"),
    ("POST", "/console/personas"),
    ("GET", "/console/guidance"),
    ("POST", "/console/guidance"),
    ("GET", "/console/tiers"),
    ("POST", "/console/tiers"),
]
BUSY_REGULARS = {
    "name": "Busy regulars",
    "priority": "1",
    "enabled": "on",
    "all-0-field": "tier",
    "all-0-operator": "is",
    "all-0-value": "high",
    "guidance": "Expert user: skip the basics.",
}


@pytest.fixture
def bearer(app: Flask, client: FlaskClient, demo_installation: Installation) -> dict[str, str]:
    return {"Authorization": f"Bearer {console_session(app, client, demo_installation)}"}


@pytest.fixture
def other(session: Session) -> Installation:
    installation = Installation(platform="zendesk", account="other", display_name="Other Co")
    session.add(installation)
    session.commit()
    return installation


def send(
    client: FlaskClient, method: str, url: str, headers: dict[str, str], data: object = None
) -> TestResponse:
    return client.open(url, method=method, headers=headers, data=data)


def field_error(html: str, input_id: str) -> str:
    """The message shown next to an input, checking the input points at it."""
    match = re.search(rf'<p class="rg-field-error" id="{input_id}-error">([^<]*)</p>', html)
    assert match, f"no error shown for #{input_id}"
    tag = re.search(rf'<(?:input|select|textarea|fieldset)[^>]*\bid="{input_id}"[^>]*>', html)
    assert tag, f"no input #{input_id}"
    assert re.search(rf'aria-describedby="[^"]*\b{input_id}-error\b', tag.group(0)), tag.group(0)
    assert 'aria-invalid="true"' in tag.group(0)
    return match.group(1).replace("&#39;", "'")


def high_tier_customers(session: Session, installation: Installation) -> int:
    query = sa.select(sa.func.count()).where(
        CustomerSegment.installation_id == installation.id, CustomerSegment.tier == "high"
    )
    return int(session.scalar(query) or 0)


def test_the_console_page_has_the_segment_sections(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    html = launch(client, launch_token(app, demo_installation)).get_data(as_text=True)
    for url in ("/console/tiers", "/console/personas", "/console/guidance"):
        assert f'data-load-url="{url}"' in html
    assert '<a href="#personas-title">Personas</a>' in html


@pytest.mark.parametrize(("method", "url"), ROUTES)
def test_every_section_needs_a_console_session(
    app: Flask,
    client: FlaskClient,
    demo_installation: Installation,
    method: str,
    url: str,
) -> None:
    assert send(client, method, url, {}).status_code == 401
    assert send(client, method, url, {"Authorization": "Bearer forged"}).status_code == 401
    # An agent's sidebar session is a valid bearer token, but not an admin's.
    sidebar = client.post(
        "/sidebar", query_string=QUERY, data={"token": launch_token(app, demo_installation)}
    )
    agent = {"Authorization": f"Bearer {session_token(sidebar.get_data(as_text=True))}"}
    refused = send(client, method, url, agent, data=BUSY_REGULARS)
    assert refused.status_code == 403
    assert "Supervisors and admins only." in text_of(refused)


@pytest.mark.parametrize(("method", "url"), [r for r in ROUTES if r[0] == "GET"])
def test_each_section_renders_a_partial_without_scripts_or_styles(
    client: FlaskClient, bearer: dict[str, str], method: str, url: str
) -> None:
    response = send(client, method, url, bearer)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and "<script" not in html and "style=" not in html
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    inputs = set(
        re.findall(r'<(?:input|select|textarea)\b(?![^>]*type="hidden")[^>]*\bid="([^"]+)"', html)
    )
    assert inputs <= labelled, f"inputs without a label: {inputs - labelled}"


def test_a_new_persona_is_listed_with_how_many_customers_match(
    client: FlaskClient, bearer: dict[str, str], session: Session, demo_installation: Installation
) -> None:
    response = client.post("/console/personas", headers=bearer, data=BUSY_REGULARS)

    assert response.status_code == 200
    html = text_of(response)
    assert "Saved Busy regulars." in html
    assert "Segments recomputed for 32 customers" in html
    expected = high_tier_customers(session, demo_installation)
    assert expected > 0
    assert f"<strong>{expected}</strong> customers match" in html
    assert "Value tier is High" in html
    assert "Expert user: skip the basics." in html
    stored = session.scalars(sa.select(Persona)).one()
    assert stored.installation_id == demo_installation.id
    # The list reads the same when loaded afresh.
    again = text_of(client.get("/console/personas", headers=bearer))
    assert f"<strong>{expected}</strong> customers match" in again


@pytest.mark.parametrize(
    ("changes", "input_id", "message"),
    [
        ({"name": ""}, "persona-name", "Give the persona a name."),
        ({"name": "n" * 101}, "persona-name", "101 characters; at most 100."),
        ({"priority": "soon"}, "persona-priority", "Enter a whole number, such as 0 or 10."),
        ({"guidance": "g" * 1001}, "persona-guidance", "1,001 characters; at most 1,000."),
        ({"description": "d" * 501}, "persona-description", "501 characters; at most 500."),
        ({"all-0-field": "", "all-0-value": ""}, "persona-all-0-field", "Choose a field."),
        ({"all-0-value": "gold"}, "persona-all-0-value", "Expected one of low, medium, high."),
        (
            {"all-0-operator": "gte"},
            "persona-all-0-operator",
            "“is at least” does not apply to Value tier",
        ),
        (
            # An operator of the rules' language that personas do not offer.
            {"all-0-operator": "contains_word"},
            "persona-all-0-operator",
            "Contains_word does not apply to tier",
        ),
        (
            {"all-0-field": "", "all-0-operator": "", "all-0-value": ""},
            "persona-conditions",
            "Add at least one condition.",
        ),
        (
            # Row numbers in the form need not be consecutive; errors follow the rows shown.
            {"any-7-field": "orders_12m", "any-7-operator": "gte", "any-7-value": "many"},
            "persona-any-0-value",
            "Expected a number.",
        ),
    ],
)
def test_a_wrong_field_gets_a_400_with_the_message_next_to_it(
    client: FlaskClient,
    bearer: dict[str, str],
    session: Session,
    changes: dict[str, str],
    input_id: str,
    message: str,
) -> None:
    response = client.post("/console/personas", headers=bearer, data=BUSY_REGULARS | changes)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in field_error(html, input_id)
    assert "Nothing was saved." in html
    assert session.scalars(sa.select(Persona)).first() is None


def test_a_name_already_used_is_refused(client: FlaskClient, bearer: dict[str, str]) -> None:
    assert client.post("/console/personas", headers=bearer, data=BUSY_REGULARS).status_code == 200
    again = client.post(
        "/console/personas", headers=bearer, data=BUSY_REGULARS | {"name": "busy regulars"}
    )
    assert again.status_code == 400
    assert "already called 'busy regulars'" in field_error(text_of(again), "persona-name")


def test_the_form_comes_back_as_typed_after_an_error(
    client: FlaskClient, bearer: dict[str, str]
) -> None:
    data = BUSY_REGULARS | {
        "name": "",
        "all-0-field": "spend_12m_cents",
        "all-0-operator": "gte",
        "all-0-value": "1,500",
        "any-1-field": "behaviour_tags",
        "any-1-operator": "contains",
        "any-1-value": "seasonal",
    }
    html = client.post("/console/personas", headers=bearer, data=data).get_data(as_text=True)
    assert re.search(r'<option value="spend_12m_cents"[^>]*selected>Spend, past year \(USD\)', html)
    assert 'name="all-0-value" type="text" value="1,500"' in html
    assert re.search(r'<option value="behaviour_tags"[^>]*selected>', html)
    assert 'name="any-0-value" type="text" value="seasonal"' in html
    assert "Expert user: skip the basics." in html


def test_a_persona_is_edited_turned_off_and_deleted(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    client.post("/console/personas", headers=bearer, data=BUSY_REGULARS)
    persona = session.scalars(sa.select(Persona)).one()

    form = client.get(f"/console/personas/{persona.id}", headers=bearer)
    assert form.status_code == 200
    assert 'value="Busy regulars"' in form.get_data(as_text=True)
    assert f'action="/console/personas/{persona.id}"' in form.get_data(as_text=True)

    renamed = client.post(
        f"/console/personas/{persona.id}",
        headers=bearer,
        data=BUSY_REGULARS | {"name": "Big spenders", "all-0-value": "medium"},
    )
    assert renamed.status_code == 200
    assert "Saved Big spenders." in text_of(renamed)
    assert "Value tier is Medium" in text_of(renamed)

    reworded = client.post(
        f"/console/personas/{persona.id}",
        headers=bearer,
        data=BUSY_REGULARS | {"name": "Big spenders", "all-0-value": "medium", "guidance": "Hi."},
    )
    assert "Saved Big spenders." in text_of(reworded)
    assert "recomputed" not in text_of(reworded)  # guidance does not change who matches

    off = client.post(
        f"/console/personas/{persona.id}/enabled", headers=bearer, data={"enabled": "false"}
    )
    assert "Big spenders is off." in text_of(off)
    assert "Off: matches nobody" in text_of(off)
    session.refresh(persona)
    assert not persona.enabled

    gone = client.post(f"/console/personas/{persona.id}/delete", headers=bearer)
    assert gone.status_code == 200
    assert "Deleted Big spenders." in text_of(gone)
    assert "No personas yet." in text_of(gone)
    assert session.scalars(sa.select(Persona)).first() is None


def test_another_installations_persona_is_a_404(
    client: FlaskClient, bearer: dict[str, str], session: Session, other: Installation
) -> None:
    theirs = Persona(
        installation_id=other.id,
        name="Theirs",
        conditions={"all": [{"field": "tier", "operator": "is", "value": "high"}]},
    )
    session.add(theirs)
    session.commit()
    for method, url, data in [
        ("GET", f"/console/personas/{theirs.id}", None),
        ("POST", f"/console/personas/{theirs.id}", BUSY_REGULARS),
        ("POST", f"/console/personas/{theirs.id}/enabled", {"enabled": "false"}),
        ("POST", f"/console/personas/{theirs.id}/delete", None),
    ]:
        response = send(client, method, url, bearer, data)
        assert response.status_code == 404, url
        assert "That persona does not exist here" in text_of(response)
        assert "Theirs" not in text_of(response)
    session.refresh(theirs)
    assert (theirs.name, theirs.enabled, theirs.installation_id) == ("Theirs", True, other.id)
    assert "Theirs" not in text_of(client.get("/console/personas", headers=bearer))


def test_a_broken_persona_is_marked_and_its_form_shows_where(
    client: FlaskClient, bearer: dict[str, str], session: Session, demo_installation: Installation
) -> None:
    broken = Persona(
        installation_id=demo_installation.id,
        name="Old rule",
        conditions={"all": [{"field": "shoe_size", "operator": "is", "value": "9"}]},
    )
    session.add(broken)
    session.commit()
    listed = text_of(client.get("/console/personas", headers=bearer))
    assert 'data-part="broken">Broken<' in listed
    assert "Broken: matches nobody" in listed
    form = text_of(client.get(f"/console/personas/{broken.id}", headers=bearer))
    assert "Unknown field 'shoe_size'." in field_error(form, "persona-all-0-field")
    assert '<option value="shoe_size" selected>shoe_size (no longer exists)</option>' in form


def test_a_large_base_is_not_recomputed_and_the_admin_is_told_the_command(
    client: FlaskClient,
    bearer: dict[str, str],
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(segment_refresh, "RECOMPUTE_WHILE_WAITING", BaseSize(10, 10))
    response = client.post("/console/personas", headers=bearer, data=BUSY_REGULARS)
    html = text_of(response)
    assert response.status_code == 200
    assert "not recomputed yet" in html
    assert "<code>flask segments recompute --installation demo:demo</code>" in html
    assert "Changed since the count" in html
    assert "<strong>0</strong> customers match" in html


def test_names_and_texts_are_escaped(client: FlaskClient, bearer: dict[str, str]) -> None:
    attack = "<img src=x onerror=alert(1)>"
    response = client.post(
        "/console/personas",
        headers=bearer,
        data=BUSY_REGULARS | {"name": attack, "guidance": attack},
    )
    html = response.get_data(as_text=True)
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


# Guidance ---------------------------------------------------------------------------------


def test_guidance_is_saved_per_segment_and_shown_again(
    client: FlaskClient, bearer: dict[str, str], session: Session, demo_installation: Installation
) -> None:
    form = text_of(client.get("/console/guidance", headers=bearer))
    for label in ("High value", "Champions", "At risk", "Small business"):
        assert f">{label}</label>" in form
    response = client.post(
        "/console/guidance",
        headers=bearer,
        data={
            "tier.high": "Thank them by name.",
            "behaviour.small_business": "Ask about their account manager.",
            "lifecycle_stage.lapsed": "",
        },
    )
    assert response.status_code == 200
    html = text_of(response)
    assert "Saved. 2 segments now carry guidance." in html
    assert ">Ask about their account manager.</textarea>" in html
    stored = session.scalars(
        sa.select(SegmentGuidance).where(SegmentGuidance.installation_id == demo_installation.id)
    ).all()
    assert {(g.kind, g.value, g.text) for g in stored} == {
        ("tier", "high", "Thank them by name."),
        ("behaviour", "small_business", "Ask about their account manager."),
    }


def test_too_long_guidance_is_a_400_next_to_its_box(
    client: FlaskClient, bearer: dict[str, str], session: Session
) -> None:
    response = client.post(
        "/console/guidance",
        headers=bearer,
        data={"tier.high": "Fine.", "rfm_segment.at_risk": "x" * 1001},
    )
    assert response.status_code == 400
    html = text_of(response)
    message = field_error(html, "guidance-rfm_segment-at_risk")
    assert message == "1,001 characters; at most 1,000."
    # The group holding the error is open, and what was typed is kept.
    assert re.search(r'data-guidance-kind="rfm_segment" open', html)
    assert ">Fine.</textarea>" in html
    assert session.scalars(sa.select(SegmentGuidance)).first() is None


# Tier thresholds --------------------------------------------------------------------------


def test_the_tier_section_shows_the_bars_in_currency_and_the_suggestion(
    client: FlaskClient, bearer: dict[str, str], session: Session, demo_installation: Installation
) -> None:
    html = text_of(client.get("/console/tiers", headers=bearer))
    assert 'name="medium_min_spend" type="text" inputmode="numeric" value="250"' in html
    assert 'name="high_min_spend" type="text" inputmode="numeric" value="1500"' in html
    suggestion = tier_settings.suggest_tiers(session, demo_installation.id, now=utcnow())
    assert f"From the {suggestion.buyers} customers who bought in the last 12 months" in html
    assert "Use suggestion" in html
    assert f"{high_tier_customers(session, demo_installation)} high</span>" in html


def test_saving_bars_recomputes_the_tiers(
    client: FlaskClient, bearer: dict[str, str], session: Session, demo_installation: Installation
) -> None:
    before = high_tier_customers(session, demo_installation)
    response = client.post(
        "/console/tiers",
        headers=bearer,
        data={
            "medium_min_orders": "2",
            "medium_min_spend": "100",
            "high_min_orders": "3",
            "high_min_spend": "1,000",
        },
    )
    assert response.status_code == 200
    html = text_of(response)
    assert "Saved the tier thresholds." in html
    assert "Segments recomputed for 32 customers" in html
    session.refresh(demo_installation)
    assert demo_installation.tier_high_min_spend_cents == 1_000_00
    assert demo_installation.tier_medium_min_spend_cents == 100_00
    after = high_tier_customers(session, demo_installation)
    assert after > before
    assert f"{after} high</span>" in html


@pytest.mark.parametrize(
    ("changes", "input_id", "message"),
    [
        ({"medium_min_orders": ""}, "tier-medium-min-orders", "Enter a whole number of 1 or more."),
        ({"medium_min_spend": "99.5"}, "tier-medium-min-spend", "'99.5' is not a whole number."),
        ({"high_min_orders": "0"}, "tier-high-min-orders", "Must be at least 1."),
        (
            {"high_min_spend": "100"},
            "tier-high-min-spend",
            "Must be at least the medium bar (250): high customers reach both.",
        ),
    ],
)
def test_a_wrong_bar_gets_a_400_with_the_message_next_to_it(
    client: FlaskClient,
    bearer: dict[str, str],
    session: Session,
    demo_installation: Installation,
    changes: dict[str, str],
    input_id: str,
    message: str,
) -> None:
    data = {
        "medium_min_orders": "3",
        "medium_min_spend": "250",
        "high_min_orders": "12",
        "high_min_spend": "1500",
    } | changes
    response = client.post("/console/tiers", headers=bearer, data=data)
    assert response.status_code == 400
    assert field_error(text_of(response), input_id) == message
    session.refresh(demo_installation)
    assert demo_installation.tier_high_min_spend_cents == 150_000
