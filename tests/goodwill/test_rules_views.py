"""The console's rules, roles and access over HTTP, on both databases: who gets in, another
installation's data out of reach, rules written, versioned, exported and imported, and drafts
tried and replayed.

Each test runs on SQLite and PostgreSQL (the module's `app` is the `storage_app`), in the demo
installation, as its admin, its supervisor (an agent with the role the admin named) or an agent.
"""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.clock import utcnow
from plugin.goodwill.action_log import ActionKind
from plugin.goodwill.rulebook import rule_version
from plugin.goodwill.transfer import EXPORT_FORMAT
from plugin.models import (
    Action,
    ExceptionType,
    Installation,
    Rule,
    RuleVersion,
    SeenTicket,
)
from tests.console.test_views import QUERY, launch, launch_token, session_token, text_of
from tests.customers.test_console_views import field_error
from tests.goodwill.console_world import (
    AGENT,
    CHAMPIONS_RULE,
    SAMPLE_ENTRY,
    SUPERVISOR,
    add_other_installation,
    bearer_for,
    escalation,
    send,
    snapshot,
)

ID_ROUTES = [
    ("GET", "/console/catalog/{entry}"),
    ("POST", "/console/catalog/{entry}"),
    ("POST", "/console/catalog/{entry}/enabled"),
    ("GET", "/console/rules/{rule}"),
    ("POST", "/console/rules/{rule}"),
    ("POST", "/console/rules/{rule}/enabled"),
    ("GET", "/console/rules/{rule}/history"),
    ("POST", "/console/rules/{rule}/rollback"),
    ("POST", "/console/escalations/{escalation}"),
]
SUPERVISOR_ROUTES = [
    ("GET", "/console/rules"),
    ("GET", "/console/rules/new"),
    ("POST", "/console/rules"),
    ("POST", "/console/rules/try"),
    ("POST", "/console/rules/replay"),
    ("GET", "/console/rules/export"),
    ("POST", "/console/rules/import"),
    ("GET", "/console/catalog"),
    ("GET", "/console/catalog/new"),
    ("POST", "/console/catalog"),
    ("GET", "/console/budgets"),
    ("POST", "/console/budgets"),
    ("GET", "/console/escalations"),
    ("GET", "/console/personas"),
    ("GET", "/console/tiers"),
    ("GET", "/console/guidance"),
]
ADMIN_ROUTES = [
    ("GET", "/console/roles"),
    ("POST", "/console/roles"),
    ("POST", "/console/connection/check"),
    ("POST", "/console/import"),
]


@pytest.fixture
def app(storage_app: Flask) -> Flask:
    """Every test here on both databases."""
    return storage_app


@pytest.fixture
def supervisor(app: Flask, client: FlaskClient, demo_installation: Installation) -> dict[str, str]:
    return bearer_for(app, client, demo_installation, SUPERVISOR)


@pytest.fixture
def admin(app: Flask, client: FlaskClient, demo_installation: Installation) -> dict[str, str]:
    return bearer_for(app, client, demo_installation, "80004")


@pytest.fixture
def other(session: Session) -> Installation:
    """Another installation with a catalog entry, a rule and a pending escalation of its own."""
    return add_other_installation(session)


# --- Who gets in ------------------------------------------------------------------------------


def test_a_supervisor_gets_the_console_without_the_admin_sections(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    response = launch(client, launch_token(app, demo_installation, sub=SUPERVISOR))
    assert response.status_code == 200
    html = text_of(response)
    assert "Priya Nair (supervisor)" in html
    for section in ("rules", "catalog", "budgets", "escalations", "personas", "tiers"):
        assert f'id="{section}"' in html
    for admin_only in ('id="connection"', 'id="import-form"', 'id="roles"', "mappings-title"):
        assert admin_only not in html


def test_the_admin_sees_everything(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    html = text_of(launch(client, launch_token(app, demo_installation)))
    for section in ('id="connection"', 'id="import-form"', 'id="roles"', 'id="rules"'):
        assert section in html


def test_without_the_role_named_the_supervisor_is_an_agent_again(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    demo_installation.supervisor_roles = None
    session.commit()
    response = launch(client, launch_token(app, demo_installation, sub=SUPERVISOR))
    assert response.status_code == 403
    assert "admins of this helpdesk and the supervisors they name" in text_of(response)


@pytest.mark.parametrize(("method", "url"), SUPERVISOR_ROUTES + ADMIN_ROUTES)
def test_agents_and_strangers_are_refused_everywhere(
    app: Flask, client: FlaskClient, demo_installation: Installation, method: str, url: str
) -> None:
    assert send(client, method, url, {}).status_code == 401
    assert send(client, method, url, {"Authorization": "Bearer forged"}).status_code == 401
    # An agent's sidebar session is a valid bearer token, but carries no console role.
    sidebar = client.post(
        "/sidebar",
        query_string=QUERY,
        data={"token": launch_token(app, demo_installation, sub=AGENT)},
    )
    agent = {"Authorization": f"Bearer {session_token(sidebar.get_data(as_text=True))}"}
    refused = send(client, method, url, agent)
    assert refused.status_code == 403
    # And an agent cannot launch the console at all.
    assert launch(client, launch_token(app, demo_installation, sub=AGENT)).status_code == 403


@pytest.mark.parametrize(("method", "url"), ADMIN_ROUTES)
def test_supervisors_do_not_reach_the_admin_settings(
    client: FlaskClient, supervisor: dict[str, str], method: str, url: str
) -> None:
    response = send(client, method, url, supervisor, data={"supervisor_roles": "agent"})
    assert response.status_code == 403
    assert "Only an admin of this helpdesk can do this." in text_of(response)


def test_the_admin_names_the_supervisor_roles(
    client: FlaskClient, admin: dict[str, str], session: Session, demo_installation: Installation
) -> None:
    assert "supervisor" in text_of(client.get("/console/roles", headers=admin))
    saved = client.post(
        "/console/roles", headers=admin, data={"supervisor_roles": "360001, Team leads"}
    )
    assert saved.status_code == 200
    assert "Users with the role 360001, Team leads are supervisors" in text_of(saved)
    session.refresh(demo_installation)
    assert demo_installation.supervisor_roles == ["360001", "Team leads"]
    wrong = client.post("/console/roles", headers=admin, data={"supervisor_roles": "end-user"})
    assert wrong.status_code == 400
    assert "End users cannot be supervisors." in field_error(
        text_of(wrong), "roles-supervisor_roles"
    )


# --- Another installation's data --------------------------------------------------------------


@pytest.mark.parametrize(("method", "template"), ID_ROUTES)
def test_another_installations_ids_are_404_and_change_nothing(
    client: FlaskClient,
    supervisor: dict[str, str],
    session: Session,
    other: Installation,
    method: str,
    template: str,
) -> None:
    entry = session.scalars(
        sa.select(ExceptionType.id).where(ExceptionType.installation_id == other.id)
    ).one()
    rule = session.scalars(sa.select(Rule.id).where(Rule.installation_id == other.id)).one()
    escalation = session.scalars(
        sa.select(Action.id).where(Action.installation_id == other.id)
    ).one()
    before = snapshot(session, other.id)
    url = template.format(entry=entry, rule=rule, escalation=escalation)
    data = {
        **CHAMPIONS_RULE,
        **SAMPLE_ENTRY,
        "enabled": "false",
        "to_version": "1",
        "decision": "approve",
        "idempotency_key": "steal-0001",
    }
    response = send(client, method, url, supervisor, data=data)
    assert response.status_code == 404, text_of(response)
    assert snapshot(session, other.id) == before


def test_lists_exports_and_replays_show_only_this_installations_data(
    client: FlaskClient, supervisor: dict[str, str], other: Installation
) -> None:
    for url in ("/console/rules", "/console/catalog", "/console/escalations", "/console/budgets"):
        html = text_of(client.get(url, headers=supervisor))
        assert "their_rule" not in html and "Theirs" not in html and "Third late parcel" not in html
    exported = client.get("/console/rules/export", headers=supervisor).get_json()
    assert "their_rule" not in {rule["key"] for rule in exported["rules"]}
    assert "theirs" not in {entry["key"] for entry in exported["exceptions"]}


# --- Rules ------------------------------------------------------------------------------------


def test_a_rule_is_published_listed_and_versioned(
    client: FlaskClient,
    supervisor: dict[str, str],
    session: Session,
    demo_installation: Installation,
) -> None:
    created = client.post("/console/rules", headers=supervisor, data=CHAMPIONS_RULE)
    assert created.status_code == 200, text_of(created)
    html = text_of(created)
    assert "Published Champions thank-you as version 1." in html
    assert "RFM segment is Champions" in html and "At most once per 90 days per customer" in html
    rule = session.scalars(sa.select(Rule).where(Rule.key == "champions_thank_you")).one()
    version = session.scalars(sa.select(RuleVersion).where(RuleVersion.rule_id == rule.id)).one()
    assert rule.installation_id == demo_installation.id
    assert version.author_id == SUPERVISOR and version.author_name == "Priya Nair"
    assert version.definition == {
        "name": "Champions thank-you",
        "enabled": True,
        "priority": 5,
        "conditions": {
            "all": [{"field": "rfm_segment", "operator": "is", "value": "champions"}],
            "any": [],
        },
        "suggest": [{"exception": "free_sample", "priority": 1}],
        "cap": {"times": 1, "days": 90},
    }
    # The form shows the stored version as typed.
    form = text_of(client.get(f"/console/rules/{rule.id}", headers=supervisor))
    assert 'value="Champions"' in form and "Publish version 2" in form

    same = client.post(f"/console/rules/{rule.id}", headers=supervisor, data=CHAMPIONS_RULE)
    assert "No change: Champions thank-you is as it was." in text_of(same)
    changed = CHAMPIONS_RULE | {"cap_times": "2", "note": "Twice a quarter", "budget": "tier:high"}
    second = client.post(f"/console/rules/{rule.id}", headers=supervisor, data=changed)
    assert "Published Champions thank-you as version 2." in text_of(second)
    off = client.post(
        f"/console/rules/{rule.id}/enabled", headers=supervisor, data={"enabled": "false"}
    )
    assert "Champions thank-you is off." in text_of(off)
    session.refresh(rule)
    assert (rule.current_version, rule.enabled) == (3, False)

    history = text_of(client.get(f"/console/rules/{rule.id}/history", headers=supervisor))
    assert "Twice a quarter" in history and "Turned off" in history and "Priya Nair" in history
    assert "Cap per customer" in history and "Budget segment" in history
    rolled = client.post(
        f"/console/rules/{rule.id}/rollback", headers=supervisor, data={"to_version": "1"}
    )
    assert "Rolled back to version 1: version 4 is now in force." in text_of(rolled)
    session.refresh(rule)
    current = rule_version(session, demo_installation.id, rule.id, 4)
    assert (rule.enabled, current.restored_from, current.definition["cap"]) == (
        True,
        1,
        {"times": 1, "days": 90},
    )


@pytest.mark.parametrize(
    ("changes", "input_id", "message"),
    [
        (
            {"key": "late_delivery_high_value"},
            "rule-key",
            "A rule 'late_delivery_high_value' already exists.",
        ),
        ({"key": "Not A Key"}, "rule-key", "Expected lowercase letters"),
        ({"name": ""}, "rule-name", "Expected a non-blank text."),
        ({"priority": "soon"}, "rule-priority", "Enter a whole number"),
        ({"all-0-value": "Royalty"}, "rule-all-0-value", "Expected one of"),
        (
            {"all-0-operator": "gte"},
            "rule-all-0-operator",
            "“is at least” does not apply to RFM segment",
        ),
        ({"all-0-field": "shoe_size"}, "rule-all-0-field", "Unknown field"),
        (
            {"suggest-free_sample": ""},
            "rule-suggest",
            "Suggest at least one exception or ticket action.",
        ),
        (
            {"suggest-free_sample-priority": "first"},
            "rule-suggest-free_sample-priority",
            "Enter a whole number",
        ),
        ({"cap_days": "9999"}, "rule-cap_days", "Must be from 1 to 3,650."),
        ({"cap_times": "x"}, "rule-cap_times", "Enter how many times"),
        ({"approval_threshold": "lots"}, "rule-approval_threshold", "Enter an amount"),
        ({"add_tags": "VIP customer"}, "rule-add_tags", "Expected one word"),
        ({"budget": "tier:gold"}, "rule-budget", "Expected one of low, medium, high."),
    ],
)
def test_a_wrong_rule_field_is_named_with_why(
    client: FlaskClient,
    supervisor: dict[str, str],
    session: Session,
    changes: dict[str, str],
    input_id: str,
    message: str,
) -> None:
    before = snapshot(session, 1)
    response = client.post("/console/rules", headers=supervisor, data=CHAMPIONS_RULE | changes)
    assert response.status_code == 400, text_of(response)
    html = text_of(response)
    assert message in field_error(html, input_id)
    assert "Nothing was saved." in html
    assert snapshot(session, 1) == before


def test_rules_go_out_as_json_and_come_back_with_a_report_per_item(
    client: FlaskClient, supervisor: dict[str, str], session: Session
) -> None:
    exported = client.get("/console/rules/export", headers=supervisor)
    assert exported.status_code == 200
    assert exported.headers["Content-Disposition"].startswith("attachment; filename=")
    data = exported.get_json()
    assert data["format"] == EXPORT_FORMAT
    data["rules"][0]["priority"] = 77
    data["rules"].append(
        {
            "key": "new_from_git",
            "name": "From git",
            "conditions": {"all": [{"field": "tier", "operator": "is", "value": "high"}]},
            "suggest": [{"exception": "free_sample"}],
        }
    )
    upload = {"file": (io.BytesIO(json.dumps(data).encode()), "rules.json")}
    imported = client.post("/console/rules/import", headers=supervisor, data=upload)
    assert imported.status_code == 200, text_of(imported)
    html = text_of(imported)
    assert "rules.json: imported." in html
    assert re.search(r"Rules added</dt><dd><code>new_from_git</code>", html)
    assert re.search(
        rf"Rules with a new version</dt><dd><code>{data['rules'][0]['key']}</code>", html
    )
    assert "Rules unchanged" in html

    data["rules"][1]["conditions"] = {"all": [{"field": "tier", "operator": "is", "value": "gold"}]}
    data["budgets"][0]["monthly_cents"] = "a lot"
    before = snapshot(session, 1)
    bad = {"file": (io.BytesIO(json.dumps(data).encode()), "rules.json")}
    refused = client.post("/console/rules/import", headers=supervisor, data=bad)
    assert refused.status_code == 400
    html = text_of(refused)
    assert "nothing was imported" in html
    assert "<code>rules[1].conditions.all[0].value</code>" in html
    assert "<code>budgets[0].monthly_cents</code>" in html
    assert snapshot(session, 1) == before
    garbage = {"file": (io.BytesIO(b"{not json"), "rules.json")}
    assert "is not JSON" in text_of(
        client.post("/console/rules/import", headers=supervisor, data=garbage)
    )


# --- Try and replay ---------------------------------------------------------------------------


def test_a_draft_is_tried_on_a_named_customer_without_publishing_it(
    client: FlaskClient, supervisor: dict[str, str], session: Session
) -> None:
    before = snapshot(session, 1)
    several = text_of(
        client.post(
            "/console/rules/try", headers=supervisor, data=CHAMPIONS_RULE | {"try_customer": "an"}
        )
    )
    assert "customers match “an”" in several and 'name="try_customer_id"' in several
    nobody = text_of(
        client.post(
            "/console/rules/try", headers=supervisor, data=CHAMPIONS_RULE | {"try_customer": "zzz"}
        )
    )
    assert "No customer matches “zzz”." in nobody

    tried = client.post(
        "/console/rules/try",
        headers=supervisor,
        data=CHAMPIONS_RULE | {"try_customer": "Margaret Okafor"},
    )
    assert tried.status_code == 200
    html = text_of(tried)
    assert "Tried on Margaret Okafor" in html and "their latest ticket the sidebar saw" in html
    assert "The draft applies." in html
    assert 'data-suggested="free_sample"' in html and "Why: RFM segment is Champions" in html
    # A lapsed customer does not match; a described ticket replaces the latest one.
    walter = text_of(
        client.post(
            "/console/rules/try",
            headers=supervisor,
            data=CHAMPIONS_RULE | {"try_customer": "Walter Huang"},
        )
    )
    assert "The draft does not apply" in walter
    described = CHAMPIONS_RULE | {
        "all-1-field": "ticket_tags",
        "all-1-operator": "contains",
        "all-1-value": "gift",
        "try_customer": "Margaret Okafor",
        "try_describe": "on",
        "try_subject": "A gift for my mother",
        "try_tags": "Gift",
    }
    assert "The draft applies." in text_of(
        client.post("/console/rules/try", headers=supervisor, data=described)
    )
    invalid = client.post(
        "/console/rules/try", headers=supervisor, data=CHAMPIONS_RULE | {"name": ""}
    )
    assert invalid.status_code == 400
    assert "Name: Expected a non-blank text." in text_of(invalid)
    assert snapshot(session, 1) == before


def test_a_try_names_what_a_cap_withholds(
    client: FlaskClient,
    supervisor: dict[str, str],
    session: Session,
    demo_installation: Installation,
) -> None:
    # Margaret had a free sample a week ago: the draft's cap withholds another.
    customer_id = session.scalar(
        sa.text("select id from customers where name = 'Margaret Okafor' and installation_id = :i"),
        {"i": demo_installation.id},
    )
    action = escalation(demo_installation.id, "seed-grant-1", exception="free_sample")
    action.kind, action.customer_id = ActionKind.APPLIED.value, customer_id
    action.created_at = utcnow() - timedelta(days=7)
    session.add(action)
    session.commit()
    html = text_of(
        client.post(
            "/console/rules/try",
            headers=supervisor,
            data=CHAMPIONS_RULE | {"try_customer": "Margaret Okafor"},
        )
    )
    assert "Withheld" in html and "the rule allows once per 90 days" in html


def test_a_draft_is_replayed_over_the_last_30_days(
    client: FlaskClient,
    supervisor: dict[str, str],
    session: Session,
    demo_installation: Installation,
) -> None:
    seen = session.scalar(
        sa.select(sa.func.count()).where(SeenTicket.installation_id == demo_installation.id)
    )
    before = snapshot(session, demo_installation.id)
    replayed = client.post("/console/rules/replay", headers=supervisor, data=CHAMPIONS_RULE)
    assert replayed.status_code == 200, text_of(replayed)
    html = text_of(replayed)
    assert f"Replayed over {seen} tickets" in html
    assert "profile <strong>as of now</strong>" in html
    assert "Free sample with the next order" in html and "would have got a suggestion" in html
    assert "Publish this draft" in html
    assert snapshot(session, demo_installation.id) == before
    # A condition on the ticket's fields: rows that lack them are counted and not matched.
    session.execute(
        sa.update(SeenTicket)
        .values(tags=None)
        .where(SeenTicket.installation_id == demo_installation.id)
    )
    session.commit()
    on_tags = CHAMPIONS_RULE | {
        "all-1-field": "ticket_tags",
        "all-1-operator": "contains",
        "all-1-value": "gift",
    }
    html = text_of(client.post("/console/rules/replay", headers=supervisor, data=on_tags))
    assert f"{seen} tickets did not carry a field the conditions test" in html
