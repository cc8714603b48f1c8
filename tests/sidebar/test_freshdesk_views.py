"""The Freshdesk app's endpoint, the `flask freshdesk` commands, and the demo's Freshdesk view."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from responses import matchers
from sqlalchemy.orm import Session

from plugin import db
from plugin.clock import utcnow
from plugin.demo.seed import ISSUER as DEMO_DOMAIN
from plugin.helpdesks.credentials import EXTENSION_KEY, CredentialsVault
from plugin.helpdesks.freshdesk import FreshdeskCredentials
from plugin.helpdesks.freshdesk_installations import (
    freshdesk_installation,
    installation_for_secret,
    issue_secret,
    register_freshdesk,
    revoke_previous_secret,
    rotate_secret,
)
from plugin.models import Installation
from tests.conftest import build_app, dispose_app
from tests.demo.test_views import csrf_token
from tests.goodwill.test_views import (
    DANIEL,
    MARGARET,
    TYLER,
    actions,
    form_of,
    open_ticket_of,
    text_of,
)
from tests.helpdesks.test_freshdesk_client import freshdesk_agent
from tests.seeded_demo import SeededDemos
from tests.sidebar.test_views import demo_token, launch, session_token

BASE = "https://acme.freshdesk.com"
API_KEY = "Hq8vR2mX5tK9wL3pZ7cB"
HIGH_VALUE_TICKET, HIGH_VALUE_REQUESTER = "1058", "90001"  # Margaret Okafor
AGENT = "80001"
SIDEBAR = "/freshdesk/sidebar"


def view(ticket_id: object = HIGH_VALUE_TICKET, **changes: Any) -> dict[str, Any]:
    """The body the packaged page's getSidebar template sends."""
    body: dict[str, Any] = {
        "ticket_id": ticket_id,
        "requester_id": HIGH_VALUE_REQUESTER,
        "agent_id": AGENT,
        "domain": DEMO_DOMAIN,
    }
    body.update(changes)
    return body


@pytest.fixture
def demo_secret(session: Session, demo_installation: Installation) -> str:
    """The demo installation, seeded, with a Freshdesk-style secret."""
    secret = issue_secret(demo_installation)
    session.commit()
    return secret


def zendesk_bearer(app: Flask, client: FlaskClient, installation: Installation) -> str:
    """The sidebar session the Zendesk path's page gets at launch, for the same demo."""
    return session_token(launch(client, demo_token(app, installation)).get_data(True))


def ask(client: FlaskClient, secret: str, body: object) -> Any:
    return client.post(SIDEBAR, json=body, headers={"X-Regulars-Secret": secret})


# --- The endpoint ---------------------------------------------------------------------------


def test_the_secret_and_ids_get_the_banner_without_a_csrf_token(
    client: FlaskClient, demo_secret: str
) -> None:
    response = ask(client, demo_secret, view())

    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    assert "Margaret Okafor" in html and "High value" in html
    assert "Tickets from the demo helpdesk" in html
    assert demo_secret not in html


@pytest.mark.parametrize("secret", ["", "rgf_not-the-secret", "Bearer x", "rgf_" + "a" * 300])
def test_an_unknown_secret_is_refused_with_a_page_that_says_so(
    client: FlaskClient, demo_secret: str, secret: str
) -> None:
    response = ask(client, secret, view())

    assert response.status_code == 401
    assert "installation secret" in response.get_data(as_text=True)


def test_a_rotated_secret_works_beside_the_new_one_until_it_expires_or_is_revoked(
    app: Flask, session: Session, demo_installation: Installation, demo_secret: str
) -> None:
    now = utcnow()
    new_secret = rotate_secret(demo_installation, now=now, grace=timedelta(hours=1))
    session.commit()

    for secret in (demo_secret, new_secret):
        assert installation_for_secret(session, secret, now=now) == demo_installation
    later = now + timedelta(hours=1, seconds=1)
    assert installation_for_secret(session, demo_secret, now=later) is None
    assert installation_for_secret(session, new_secret, now=later) == demo_installation

    assert revoke_previous_secret(demo_installation)
    assert installation_for_secret(session, demo_secret, now=now) is None
    assert installation_for_secret(session, new_secret, now=now) == demo_installation


def test_only_the_secrets_hash_is_stored(session: Session, demo_installation: Installation) -> None:
    secret = issue_secret(demo_installation)
    session.commit()

    stored = demo_installation.freshdesk_secret_hash or ""
    assert len(stored) == 64 and secret not in stored


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        view(ticket_id=""),
        view(ticket_id="1058; DROP"),
        view(ticket_id=True),
        view(agent_id=None),
        view(agent_id="me"),
        view(domain=None),
        view(domain="x" * 300),
    ],
)
def test_a_body_without_usable_ids_is_a_400(
    client: FlaskClient, demo_secret: str, body: object
) -> None:
    assert ask(client, demo_secret, body).status_code == 400


def test_a_secret_used_from_another_accounts_page_is_refused(
    client: FlaskClient, demo_secret: str
) -> None:
    response = ask(client, demo_secret, view(domain="rival.freshdesk.com"))

    assert response.status_code == 403
    assert "another Freshdesk account" in response.get_data(as_text=True)


def test_the_ticket_not_the_page_decides_the_requester(
    client: FlaskClient, demo_secret: str
) -> None:
    html = ask(client, demo_secret, view(requester_id="90033")).get_data(as_text=True)

    assert "Margaret Okafor" in html and "Ravi Desai" not in html


@pytest.mark.parametrize("agent_id", [HIGH_VALUE_REQUESTER, "424242"])
def test_someone_who_is_not_an_agent_is_refused(
    client: FlaskClient, demo_secret: str, agent_id: str
) -> None:
    response = ask(client, demo_secret, view(agent_id=agent_id))

    assert response.status_code == 403
    assert "Margaret" not in response.get_data(as_text=True)


def test_an_unknown_ticket_is_a_404(client: FlaskClient, demo_secret: str) -> None:
    assert ask(client, demo_secret, view(ticket_id="424242")).status_code == 404


# --- The suggestions card in the same answer, and the actions on it ----------------------


ACTIONS = "/freshdesk/actions"


def act(client: FlaskClient, secret: str, ticket_id: str, action: object) -> Any:
    body = view(ticket_id=ticket_id, requester_id=None) | {"action": action}
    return client.post(ACTIONS, json=body, headers={"X-Regulars-Secret": secret})


def test_the_answer_has_the_same_suggestions_as_the_zendesk_paths_card(
    app: Flask, client: FlaskClient, demo_secret: str, demo_installation: Installation
) -> None:
    ticket_id = open_ticket_of(MARGARET)
    html = ask(client, demo_secret, view(ticket_id=ticket_id)).get_data(as_text=True)
    bearer = {"Authorization": f"Bearer {zendesk_bearer(app, client, demo_installation)}"}
    card = client.get(
        "/sidebar/suggestions", query_string={"ticket_id": ticket_id}, headers=bearer
    ).get_data(as_text=True)

    assert html.index('class="rg-banner') < html.index('id="rg-suggestions"')
    offers = re.compile(r'class="rg-offer" data-exception="([a-z_]+)"')
    assert (
        offers.findall(html)
        == offers.findall(card)
        == [
            "expedited_shipping",
            "waive_shipping_fee",
            "priority_handling",
        ]
    )
    assert "Goodwill: $38 granted in the last 90 days" in text_of(html)
    # The card's forms post to the Freshdesk endpoint, which the page sends through postAction.
    assert f'action="{ACTIONS}"' in html and "/sidebar/actions" not in html


def test_applying_through_freshdesk_records_once_for_the_checked_agent(
    client: FlaskClient, demo_secret: str, session: Session
) -> None:
    ticket_id = open_ticket_of(MARGARET)
    html = ask(client, demo_secret, view(ticket_id=ticket_id)).get_data(as_text=True)
    before = len(actions(session))
    fields = form_of(html, "expedited_shipping") | {"kind": "apply", "reason": "late_delivery"}

    response = act(client, demo_secret, ticket_id, fields)

    card = response.get_data(as_text=True)
    assert response.status_code == 200, card
    assert "Applied: $18 Expedited shipping upgrade — recorded in the action log." in card
    assert act(client, demo_secret, ticket_id, fields).status_code == 200  # a double click
    recorded = actions(session)
    assert len(recorded) == before + 1
    action = recorded[-1]
    assert (action.kind, action.exception_key, action.agent_id, action.ticket_id) == (
        "applied",
        "expedited_shipping",
        AGENT,
        ticket_id,
    )


def test_a_form_with_errors_comes_back_with_them_and_records_nothing(
    client: FlaskClient, demo_secret: str, session: Session
) -> None:
    ticket_id = open_ticket_of(DANIEL)
    html = ask(client, demo_secret, view(ticket_id=ticket_id)).get_data(as_text=True)
    before = len(actions(session))
    fields = form_of(html, "goodwill_credit") | {"kind": "escalate", "amount": "80", "reason": ""}

    response = act(client, demo_secret, ticket_id, fields)

    assert response.status_code == 422
    assert "Amount: must be from $5 to $75" in response.get_data(as_text=True)
    assert len(actions(session)) == before


@pytest.mark.parametrize("action", [None, "apply", [], {str(n): "x" for n in range(30)}])
def test_a_body_without_a_usable_action_is_a_400(
    client: FlaskClient, demo_secret: str, session: Session, action: object
) -> None:
    before = len(actions(session))
    assert act(client, demo_secret, open_ticket_of(MARGARET), action).status_code == 400
    assert len(actions(session)) == before


def test_an_action_with_an_unknown_secret_or_another_accounts_page_is_refused(
    client: FlaskClient, demo_secret: str, session: Session
) -> None:
    ticket_id = open_ticket_of(MARGARET)
    html = ask(client, demo_secret, view(ticket_id=ticket_id)).get_data(as_text=True)
    fields = form_of(html, "expedited_shipping") | {"kind": "apply", "reason": "late_delivery"}
    before = len(actions(session))

    assert act(client, "rgf_not-the-secret", ticket_id, fields).status_code == 401
    body = view(ticket_id=ticket_id, domain="rival.freshdesk.com") | {"action": fields}
    other = client.post(ACTIONS, json=body, headers={"X-Regulars-Secret": demo_secret})
    assert other.status_code == 403
    assert len(actions(session)) == before


def review_forms(html: str) -> list[dict[str, str]]:
    forms = re.findall(
        r'<form method="post" action="/freshdesk/review/check".*?</form>', html, re.S
    )
    return [
        dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', f)) for f in forms
    ]


def test_the_answer_has_the_same_account_review_as_the_zendesk_paths_card(
    app: Flask, client: FlaskClient, demo_secret: str, demo_installation: Installation
) -> None:
    ticket_id = open_ticket_of(MARGARET)
    html = ask(client, demo_secret, view(ticket_id=ticket_id)).get_data(as_text=True)
    bearer = {"Authorization": f"Bearer {zendesk_bearer(app, client, demo_installation)}"}
    card = client.get(
        "/sidebar/review", query_string={"ticket_id": ticket_id}, headers=bearer
    ).get_data(as_text=True)

    assert html.index('id="rg-suggestions"') < html.index('id="rg-review"')
    items = re.compile(r'data-item="(\d+)"')
    assert items.findall(html) == items.findall(card) and len(items.findall(card)) == 5
    assert "Account review: High-value account review" in text_of(html)
    assert len(review_forms(html)) == 5


def test_no_review_in_the_answer_for_a_customer_no_template_fits(
    client: FlaskClient, demo_secret: str
) -> None:
    html = ask(client, demo_secret, view(ticket_id=open_ticket_of(TYLER))).get_data(as_text=True)
    assert 'id="rg-suggestions"' in html and 'id="rg-review"' not in html


def test_checking_a_review_item_through_freshdesk_records_it_for_the_checked_agent(
    client: FlaskClient, demo_secret: str, session: Session
) -> None:
    ticket_id = open_ticket_of(MARGARET)
    html = ask(client, demo_secret, view(ticket_id=ticket_id)).get_data(as_text=True)
    form = review_forms(html)[0]
    body = view(ticket_id=ticket_id, requester_id=None) | {"action": form}

    response = client.post(
        "/freshdesk/review/check", json=body, headers={"X-Regulars-Secret": demo_secret}
    )

    card = text_of(response.get_data(as_text=True))
    assert response.status_code == 200, card
    assert "Checked: Confirm the delivery address" in card
    session.expire_all()
    checked = actions(session)[-1]
    assert (checked.kind, checked.agent_id, checked.ticket_id) == (
        "review_checked",
        AGENT,
        ticket_id,
    )
    refused = client.post(
        "/freshdesk/review/check", json=body, headers={"X-Regulars-Secret": "rgf_wrong"}
    )
    assert refused.status_code == 401


def test_the_demos_secret_stops_working_when_the_demo_is_off(
    tmp_path: Path, seeded_demos: SeededDemos
) -> None:
    app = build_app(f"sqlite:///{tmp_path / 'off.sqlite3'}", tmp_path / "i", demo_enabled=False)
    try:
        with db.database(app).sessions() as session:
            installation = seeded_demos.load(app, session)
            secret = issue_secret(installation)
            session.commit()
        assert ask(app.test_client(), secret, view()).status_code == 401
    finally:
        dispose_app(app)


# --- A Freshdesk installation: the agent is checked with Freshdesk, once a while --------------


def vault_of(app: Flask) -> CredentialsVault:
    vault: CredentialsVault = app.extensions[EXTENSION_KEY]
    return vault


@pytest.fixture
def acme_secret(app: Flask, session: Session) -> str:
    registration = register_freshdesk(
        session,
        vault_of(app),
        domain="acme.freshdesk.com",
        credentials=FreshdeskCredentials(api_key=API_KEY),
    )
    session.commit()
    assert registration.new_secret is not None
    return registration.new_secret


def acme_view(**changes: Any) -> dict[str, Any]:
    return view(domain="acme.freshdesk.com", **changes)


def test_a_contact_given_as_the_agent_is_refused_after_asking_freshdesk(
    client: FlaskClient, acme_secret: str, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{BASE}/api/v2/agents/{AGENT}", status=404, body="")
    rsps.get(f"{BASE}/api/v2/contacts/{AGENT}", json={"id": int(AGENT), "name": "Eve"})

    assert ask(client, acme_secret, acme_view()).status_code == 403


def test_freshdesk_failing_on_the_agent_check_is_a_503_not_a_refusal(
    client: FlaskClient, acme_secret: str, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{BASE}/api/v2/agents/{AGENT}", status=500, json={"code": "error"})

    response = ask(client, acme_secret, acme_view())

    assert response.status_code == 503
    assert "not answering" in response.get_data(as_text=True)


def test_the_agent_check_is_reused_by_the_next_views(
    client: FlaskClient, acme_secret: str, rsps: responses.RequestsMock
) -> None:
    rsps.get(
        f"{BASE}/api/v2/agents/{AGENT}",
        json=freshdesk_agent(int(AGENT)),
        match=[matchers.header_matcher({"Authorization": re.compile("^Basic ")})],
    )
    rsps.get(f"{BASE}/api/v2/tickets/404", status=404, body="")
    rsps.get(f"{BASE}/api/v2/tickets/405", status=404, body="")

    assert ask(client, acme_secret, acme_view(ticket_id="404")).status_code == 404
    assert ask(client, acme_secret, acme_view(ticket_id="405")).status_code == 404
    assert len([c for c in rsps.calls if "/agents/" in (c.request.url or "")]) == 1


# --- The `flask freshdesk` commands ---------------------------------------------------------


def register(runner: FlaskCliRunner, *args: str, api_key: str = API_KEY) -> Any:
    return runner.invoke(
        args=["freshdesk", "register", "--domain", "acme.freshdesk.com", *args],
        env={"FRESHDESK_API_KEY": api_key},
    )


def secret_in(output: str) -> str:
    match = re.search(r"rgf_[\w-]+", output)
    assert match, output
    return match.group(0)


def test_register_checks_the_connection_and_prints_the_secret_once(
    app: Flask, runner: FlaskCliRunner, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{BASE}/api/v2/agents/me", json=freshdesk_agent())

    first = register(runner)
    again = register(runner, "--no-check")

    assert first.exit_code == 0, first.output
    assert first.output.count("✓") == 4
    secret = secret_in(first.output)
    assert "rgf_" not in again.output  # re-registering keeps the secret
    with db.database(app).sessions() as session:
        installation = freshdesk_installation(session, "acme")
        assert installation is not None
        assert installation_for_secret(session, secret, now=utcnow()) == installation
        assert API_KEY not in (installation.credentials_encrypted or "")
    assert API_KEY not in first.output + again.output


def test_register_reports_a_refused_api_key_and_an_agent_with_narrow_scope(
    runner: FlaskCliRunner, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{BASE}/api/v2/agents/me", status=401, json={"code": "invalid_credentials"})
    rsps.get(f"{BASE}/api/v2/agents/me", json=freshdesk_agent(ticket_scope=3))

    refused = register(runner)
    narrow = runner.invoke(args=["freshdesk", "check", "--domain", "acme"])

    assert refused.exit_code == 1 and "refused the API key" in refused.output
    assert narrow.exit_code == 1 and "sees only some tickets" in narrow.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--domain", "acme.zendesk.com"], "acme.freshdesk.com"),
        (["--domain", "acme", "--api-base-url", "ftp://x"], "api_base_url"),
    ],
)
def test_register_refuses_unusable_input(
    runner: FlaskCliRunner, args: list[str], message: str
) -> None:
    result = runner.invoke(
        args=["freshdesk", "register", *args, "--no-check"], env={"FRESHDESK_API_KEY": API_KEY}
    )

    assert result.exit_code == 2 and message in result.output


def test_rotating_prints_a_new_secret_and_revoking_ends_the_old_one(
    app: Flask, runner: FlaskCliRunner
) -> None:
    old = secret_in(register(runner, "--no-check").output)

    rotated = runner.invoke(
        args=["freshdesk", "rotate-secret", "--domain", "acme", "--grace-hours", "2"]
    )
    new = secret_in(rotated.output)
    assert rotated.exit_code == 0 and new != old
    assert "the previous secret works until" in rotated.output
    with db.database(app).sessions() as session:
        assert installation_for_secret(session, old, now=utcnow()) is not None

    revoked = runner.invoke(args=["freshdesk", "revoke-previous-secret", "--domain", "acme"])
    again = runner.invoke(args=["freshdesk", "revoke-previous-secret", "--domain", "acme"])

    assert revoked.exit_code == 0 and again.exit_code == 1
    with db.database(app).sessions() as session:
        assert installation_for_secret(session, old, now=utcnow()) is None
        assert installation_for_secret(session, new, now=utcnow()) is not None
    listed = runner.invoke(args=["freshdesk", "list"]).output
    assert "acme" in listed and "rgf_" not in listed and API_KEY not in listed


def test_contact_fields_and_tags_are_mapped_listed_and_unmapped(runner: FlaskCliRunner) -> None:
    register(runner, "--no-check")
    base = ["freshdesk", "map", "--domain", "acme"]

    mapped = runner.invoke(args=[*base, "--contact-field", "lifetime_value", "--fact", "ltv"])
    tagged = runner.invoke(args=[*base, "--tag", "VIP", "--fact", "vip"])
    both = runner.invoke(args=[*base, "--tag", "a", "--contact-field", "b", "--fact", "c"])
    listed = runner.invoke(args=["freshdesk", "mappings", "--domain", "acme"]).output
    unmapped = runner.invoke(args=["freshdesk", "unmap", "--domain", "acme", "--tag", "vip"])

    assert mapped.exit_code == 0 and tagged.exit_code == 0, mapped.output + tagged.output
    assert both.exit_code == 2
    assert "contact field lifetime_value -> ltv" in listed and "contact tag vip -> vip" in listed
    assert unmapped.exit_code == 0


def test_commands_on_an_unregistered_domain_say_how_to_register(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["freshdesk", "check", "--domain", "nobody"])

    assert result.exit_code == 1 and "flask freshdesk register" in result.output


# --- The demo's Freshdesk-style view --------------------------------------------------------


def test_the_freshdesk_view_lists_the_tickets_in_freshdesks_words(
    client: FlaskClient, demo_installation: Installation
) -> None:
    response = client.get("/demo/freshdesk")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-helpdesk="freshdesk"' in html and html.count('data-ticket-id="') >= 60
    assert ">Resolved<" in html and ">Solved<" not in html
    assert "<script>" not in html


def test_the_packaged_page_is_served_with_the_stand_in_client(
    client: FlaskClient, demo_installation: Installation
) -> None:
    response = client.get("/demo/freshdesk/app/index.html")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r'<script src="/static/js/demo-freshworks\.[0-9a-f]{12}\.js"></script>', html)
    assert "{{{appclient}}}" not in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert client.get("/demo/freshdesk/app/styles/sidebar.css").mimetype == "text/css"
    assert client.get("/demo/freshdesk/app/../config/iparams.json").status_code == 404


def test_opening_a_ticket_gives_the_data_freshworks_would(
    client: FlaskClient, demo_installation: Installation
) -> None:
    response = client.post(
        "/demo/api/freshdesk/tickets/1058/open",
        json={},
        headers={"X-CSRFToken": csrf_token(client)},
    )

    body = response.get_json()
    assert response.status_code == 200
    assert body["app_url"] == "/demo/freshdesk/app/index.html"
    assert body["data"]["ticket"]["id"] == 1058
    assert body["data"]["contact"]["id"] == int(HIGH_VALUE_REQUESTER)
    assert body["data"]["loggedInUser"]["id"] == int(AGENT)
    assert body["data"]["domainName"] == DEMO_DOMAIN
    assert "rgf_" not in response.get_data(as_text=True)


def invoke(client: FlaskClient, template: str, body: object) -> Any:
    return client.post(
        "/demo/api/freshworks/invoke",
        json={"template": template, "context": {}, "body": body},
        headers={"X-CSRFToken": csrf_token(client)},
    )


def test_the_demos_proxy_fills_the_template_and_keeps_the_secret_out_of_the_page(
    client: FlaskClient, demo_installation: Installation
) -> None:
    response = invoke(
        client,
        "getSidebar",
        f'{{"ticket_id": "1058", "agent_id": "80001", "domain": "{DEMO_DOMAIN}"}}',
    )

    answer = response.get_json()
    assert response.status_code == 200
    assert answer["status"] == 200
    assert "Margaret Okafor" in answer["response"]
    assert answer["headers"]["Content-Type"].startswith("text/html")
    assert "rgf_" not in response.get_data(as_text=True)


def test_the_demos_proxy_answers_the_services_errors_as_freshworks_does(
    client: FlaskClient, demo_installation: Installation
) -> None:
    answer = invoke(client, "getSidebar", "{}").get_json()

    assert answer["status"] == 400 and "rg-problem" in answer["response"]


def test_the_demos_proxy_runs_only_declared_templates_and_needs_csrf(
    client: FlaskClient, demo_installation: Installation
) -> None:
    assert invoke(client, "getTickets", "{}").status_code == 400
    assert (
        client.post("/demo/api/freshworks/invoke", json={"template": "getSidebar"}).status_code
        == 400
    )
