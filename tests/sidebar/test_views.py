"""The sidebar over HTTP: the signed POST, the 401 page, the session and the banner."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.demo import signing
from plugin.helpdesks.tokens import SidebarSessions
from plugin.models import Installation, Persona, SegmentGuidance
from tests import tokens

ORIGIN = "http://localhost"
QUERY = {"origin": ORIGIN, "app_guid": "3f1c6a0e-guid"}


def demo_token(app: Flask, installation: Installation, **changes: object) -> str:
    key = signing.load_or_create_private_key(Path(app.instance_path))
    payload = tokens.claims(installation.token_audience or "") | changes
    return tokens.rs256(key, payload)


def launch(client: FlaskClient, token: str, query: dict[str, str] = QUERY):
    return client.post("/sidebar", query_string=query, data={"token": token})


def session_token(html: str) -> str:
    match = re.search(r'data-session-token="([^"]+)"', html)
    assert match, "the sidebar page carries its session token"
    return match.group(1)


def test_signed_post_serves_the_sidebar_page(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    response = launch(client, demo_token(app, demo_installation))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "/static/vendor/zaf_sdk.min.js" in html
    assert re.search(r"/static/js/sidebar\.[0-9a-f]{12}\.js", html)
    assert "<script>" not in html  # no inline script
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'self' https://*.zendesk.com" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert session_token(html)


def test_each_launch_gets_its_own_session_in_its_language(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    """The page is rendered once per language and kept (`sidebar_page`); the session token
    each launch issued is the one its page carries, never another launch's."""
    agents = ["80001", "80002", "80003"]
    pages = [
        launch(client, demo_token(app, demo_installation, sub=agent)).get_data(True)
        for agent in agents
    ]
    german = launch(
        client, demo_token(app, demo_installation, sub="80004"), QUERY | {"locale": "de"}
    ).get_data(True)
    for page, agent in zip([*pages, german], [*agents, "80004"], strict=True):
        token = session_token(page)
        assert page.count(token) == 1
        assert "slot" not in page
        sidebar = sidebar_sessions_of(app).verify(token)
        assert (sidebar.installation_id, sidebar.user_id) == (demo_installation.id, agent)
    assert '<html lang="de">' in german and '<html lang="en-US">' in pages[0]
    assert "Looking up this customer" in pages[0] and "Looking up this customer" not in german


def sidebar_sessions_of(app: Flask) -> SidebarSessions:
    sessions: SidebarSessions = app.extensions["regulars.sidebar_sessions"]
    return sessions


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        ("alg-none", "only RS256"),
        ("hs256-public-key", "only RS256"),
        ("expired", "expired"),
        ("tampered", "signature does not match"),
        ("wrong-key", "signature does not match"),
        ("unknown-installation", "not for an installation registered here"),
    ],
)
def test_bad_launch_tokens_get_a_401_page_that_says_why(
    app: Flask, client: FlaskClient, demo_installation: Installation, attack: str, reason: str
) -> None:
    audience = demo_installation.token_audience or ""
    good = tokens.claims(audience)
    demo_key = signing.load_or_create_private_key(Path(app.instance_path))
    token = {
        "alg-none": lambda: tokens.unsigned(good),
        "hs256-public-key": lambda: tokens.hs256_with_public_key(demo_key, good),
        "expired": lambda: demo_token(
            app, demo_installation, exp=datetime.now(UTC) - timedelta(minutes=10)
        ),
        "tampered": lambda: tokens.tampered(demo_token(app, demo_installation), sub="80009"),
        "wrong-key": lambda: tokens.rs256(tokens.new_key(), good),
        "unknown-installation": lambda: demo_token(
            app, demo_installation, aud="https://other.zendesk.com/api/v2/apps/installations/9.json"
        ),
    }[attack]()
    response = launch(client, token)
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert reason in html.replace("&#39;", "'")
    assert "data-session-token" not in html
    assert "zaf_sdk" not in html


def test_launch_needs_origin_and_app_guid(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    response = launch(client, demo_token(app, demo_installation), query={})
    assert response.status_code == 401
    assert "origin and app_guid" in response.get_data(as_text=True)


def test_launch_refuses_a_foreign_origin(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    query = {"origin": "https://evil.example", "app_guid": "g"}
    response = launch(client, demo_token(app, demo_installation), query=query)
    assert response.status_code == 401


def open_banner(client: FlaskClient, token: str, ticket_id: str):
    return client.get(
        "/sidebar/banner",
        query_string={"ticket_id": ticket_id},
        headers={"Authorization": f"Bearer {token}"},
    )


def first_ticket_of(session: Session, installation: Installation, story_name: str) -> str:
    from plugin.demo.sample_data import build_sample_data

    data = build_sample_data(datetime.now(UTC).date())
    user_ids = {c.helpdesk_user_id for c in data.customers if c.story == story_name}
    return next(t.external_id for t in data.tickets if t.requester_user_id in user_ids)


@pytest.mark.parametrize(
    ("story", "tier"),
    [
        ("high", "high"),
        ("small_business", "high"),
        ("medium", "medium"),
        ("low", "low"),
        ("lapsed", "low"),
        ("new", "low"),
    ],
)
def test_banner_shows_the_requesters_tier(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    story: str,
    tier: str,
) -> None:
    token = session_token(launch(client, demo_token(app, demo_installation)).get_data(True))
    response = open_banner(client, token, first_ticket_of(session, demo_installation, story))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'data-tier="{tier}"' in html
    assert "Order data from demo, updated just now" in html


def test_banner_for_a_prospect_says_not_a_customer(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    token = session_token(launch(client, demo_token(app, demo_installation)).get_data(True))
    html = open_banner(
        client, token, first_ticket_of(session, demo_installation, "prospect")
    ).get_data(as_text=True)
    assert "Not a customer yet" in html
    assert "Prospect" in html and "Low value" not in html
    assert "No orders on record" in html


def test_banner_needs_a_valid_session(client: FlaskClient, demo_installation: Installation) -> None:
    assert open_banner(client, "forged", "1001").status_code == 401
    assert client.get("/sidebar/banner?ticket_id=1001").status_code == 401


def test_banner_for_a_missing_ticket_is_a_404_card(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    token = session_token(launch(client, demo_token(app, demo_installation)).get_data(True))
    response = open_banner(client, token, "999999")
    assert response.status_code == 404
    assert "was not found" in response.get_data(as_text=True)
    assert open_banner(client, token, "").status_code == 400


def banner_html(
    app: Flask, client: FlaskClient, session: Session, installation: Installation, story: str
) -> str:
    token = session_token(launch(client, demo_token(app, installation)).get_data(True))
    response = open_banner(client, token, first_ticket_of(session, installation, story))
    assert response.status_code == 200
    html: str = response.get_data(as_text=True)
    return html


def test_a_high_value_customer_gets_the_personalized_banner_with_guidance(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    session.add_all(
        [
            SegmentGuidance(
                installation_id=demo_installation.id,
                kind="behaviour",
                value="small_business",
                text="Ask about their account manager.",
            ),
            Persona(
                installation_id=demo_installation.id,
                name="Busy regular",
                conditions={
                    "all": [
                        {
                            "field": "behaviour_tags",
                            "operator": "contains",
                            "value": "small_business",
                        }
                    ]
                },
                guidance="Prefers a phone call back.",
            ),
        ]
    )
    session.commit()
    html = banner_html(app, client, session, demo_installation, "small_business")
    assert 'data-personalization="personalized"' in html
    assert 'data-part="greeting"' in html and "as the regular they are" in html
    assert 'data-behaviour="small_business"' in html and 'data-persona="Busy regular"' in html
    assert "<strong>Busy regular:</strong> Prefers a phone call back." in html
    assert "<strong>Small business:</strong> Ask about their account manager." in html
    # Every figure says where it came from: to the mouse (data-src), to a screen reader (the
    # hidden text read with it), and to the keyboard while the banner has focus (one tab stop
    # for the whole banner, issue 15, not one per figure).
    sources = re.findall(r'class="rg-src" data-src="([^"]+)"', html)
    assert any("orders from demo" in source for source in sources)
    assert any("RFM" in source for source in sources)
    assert html.count('tabindex="0"') == 1 and re.search(r'<section[^>]*tabindex="0"', html)


def test_a_low_value_customer_gets_the_generic_banner(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    html = banner_html(app, client, session, demo_installation, "low")
    assert 'data-personalization="generic"' in html
    assert 'data-part="greeting"' not in html and "rg-chips" not in html


def test_a_lapsed_customer_shows_when_they_moved(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    html = banner_html(app, client, session, demo_installation, "lapsed")
    assert re.search(r'rg-lifecycle--lapsed".*?Lapsed.*?moved \d+ (days|months) ago', html, re.S)
