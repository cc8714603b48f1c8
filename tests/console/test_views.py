"""The admin console over HTTP: the signed POST, the admins-only check, the connection report."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from plugin.demo import signing
from plugin.models import Customer, Installation
from tests import tokens

ORIGIN = "http://localhost"
QUERY = {"origin": ORIGIN, "app_guid": "5b2e9d41-guid"}
ADMIN = "80004"  # Diane Foster, the demo's admin
AGENT = "80001"  # Sam Carter, an agent


def launch_token(app: Flask, installation: Installation, **changes: object) -> str:
    """A launch token signed with the demo's key, for its admin unless `changes` say otherwise."""
    key = signing.load_or_create_private_key(Path(app.instance_path))
    payload = tokens.claims(installation.token_audience or "") | {"sub": ADMIN} | changes
    return tokens.rs256(key, payload)


def launch(client: FlaskClient, token: str, query: dict[str, str] = QUERY) -> TestResponse:
    return client.post("/console", query_string=query, data={"token": token})


def text_of(response: TestResponse) -> str:
    return response.get_data(as_text=True).replace("&#39;", "'")


def session_token(html: str) -> str:
    match = re.search(r'data-session-token="([^"]+)"', html)
    assert match, "the console page carries its session token"
    return match.group(1)


def check(client: FlaskClient, headers: dict[str, str] | None = None) -> TestResponse:
    return client.post("/console/connection/check", headers=headers or {})


def console_session(app: Flask, client: FlaskClient, installation: Installation) -> str:
    response = launch(client, launch_token(app, installation))
    assert response.status_code == 200
    return session_token(response.get_data(as_text=True))


def test_an_admin_gets_the_console_page(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    response = launch(client, launch_token(app, demo_installation))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<h1>Regulars console</h1>" in html
    assert "Diane Foster (admin)" in html
    assert session_token(html)
    assert 'data-check-url="/console/connection/check"' in html
    # Every script is a file of the service's own: nothing inline for the CSP to refuse.
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert len(scripts) == 1
    assert re.fullmatch(r'<script src="/static/js/console\.[0-9a-f]{12}\.js" defer>', scripts[0])
    assert "style=" not in html and "<style" not in html
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


@pytest.mark.parametrize("user_id", [AGENT, "80002"])
def test_anyone_but_an_admin_gets_a_403_page_that_says_admins_only(
    app: Flask, client: FlaskClient, demo_installation: Installation, user_id: str
) -> None:
    response = launch(client, launch_token(app, demo_installation, sub=user_id))
    assert response.status_code == 403
    html = text_of(response)
    assert "The Regulars console is for admins of this helpdesk" in html
    assert "data-session-token" not in html
    assert "console.js" not in html


def test_a_user_the_helpdesk_does_not_know_gets_a_403_that_says_so(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    response = launch(client, launch_token(app, demo_installation, sub="99999"))
    assert response.status_code == 403
    html = text_of(response)
    assert "The helpdesk does not know you as a user of this account" in html
    assert "data-session-token" not in html
    assert "console.js" not in html


def test_a_token_that_names_no_user_gets_a_401(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    key = signing.load_or_create_private_key(Path(app.instance_path))
    payload = tokens.claims(demo_installation.token_audience or "")
    del payload["sub"]
    response = launch(client, tokens.rs256(key, payload))
    assert response.status_code == 401
    # Refused at the token's check since issue 22 (a launch token must carry `sub`).
    assert "has no 'sub' claim" in text_of(response)
    assert "data-session-token" not in text_of(response)


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        ("missing", "No launch token was sent"),
        ("garbage", "malformed"),
        ("alg-none", "only RS256"),
        ("hs256-public-key", "only RS256"),
        ("expired", "expired"),
        ("agent-made-admin", "signature does not match"),
        ("wrong-key", "signature does not match"),
        ("unknown-installation", "not for an installation registered here"),
    ],
)
def test_bad_launch_tokens_get_a_401_page_that_says_why(
    app: Flask, client: FlaskClient, demo_installation: Installation, attack: str, reason: str
) -> None:
    audience = demo_installation.token_audience or ""
    good = tokens.claims(audience) | {"sub": ADMIN}
    demo_key = signing.load_or_create_private_key(Path(app.instance_path))
    token = {
        "missing": lambda: "",
        "garbage": lambda: "not.a.token",
        "alg-none": lambda: tokens.unsigned(good),
        "hs256-public-key": lambda: tokens.hs256_with_public_key(demo_key, good),
        "expired": lambda: launch_token(
            app, demo_installation, exp=datetime.now(UTC) - timedelta(minutes=10)
        ),
        # An agent's genuine token, edited to name the admin: the signature no longer matches.
        "agent-made-admin": lambda: tokens.tampered(
            launch_token(app, demo_installation, sub=AGENT), sub=ADMIN
        ),
        "wrong-key": lambda: tokens.rs256(tokens.new_key(), good),
        "unknown-installation": lambda: launch_token(
            app, demo_installation, aud="https://other.zendesk.com/api/v2/apps/installations/9.json"
        ),
    }[attack]()
    response = launch(client, token)
    assert response.status_code == 401
    html = text_of(response)
    assert reason in html
    assert "data-session-token" not in html


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({}, "origin and app_guid"),
        ({"origin": ORIGIN}, "origin and app_guid"),
        ({"origin": "https://evil.example", "app_guid": "g"}, "not this installation's helpdesk"),
    ],
)
def test_launch_needs_the_helpdesks_origin_and_an_app_guid(
    app: Flask,
    client: FlaskClient,
    demo_installation: Installation,
    query: dict[str, str],
    reason: str,
) -> None:
    response = launch(client, launch_token(app, demo_installation), query=query)
    assert response.status_code == 401
    assert reason in text_of(response)


def test_the_console_is_opened_by_post_only(
    client: FlaskClient, demo_installation: Installation
) -> None:
    assert client.get("/console", query_string=QUERY).status_code == 405


def test_the_check_reports_nothing_to_connect_for_the_demo(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    token = console_session(app, client, demo_installation)
    response = check(client, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert "there is nothing to connect" in text_of(response)
    assert "<script" not in response.get_data(as_text=True)


def test_the_check_refuses_a_sidebar_session(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    # An agent's sidebar session is a valid bearer token, but it carries no role.
    sidebar = client.post(
        "/sidebar", query_string=QUERY, data={"token": launch_token(app, demo_installation)}
    )
    assert sidebar.status_code == 200
    token = session_token(sidebar.get_data(as_text=True))
    response = check(client, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert "Only an admin of this helpdesk can do this." in text_of(response)
    assert "nothing to connect" not in text_of(response)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-session"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
    ],
)
def test_the_check_needs_a_bearer_session(
    client: FlaskClient, demo_installation: Installation, headers: dict[str, str]
) -> None:
    response = check(client, headers)
    assert response.status_code == 401
    assert "nothing to connect" not in text_of(response)


def test_a_console_session_is_not_a_launch_token(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    token = console_session(app, client, demo_installation)
    assert launch(client, token).status_code == 401


def test_the_check_refuses_get(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    token = console_session(app, client, demo_installation)
    response = client.get("/console/connection/check", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 405


def upload(
    client: FlaskClient, token: str, kind: str, content: bytes, filename: str = "data.csv"
) -> TestResponse:
    return client.post(
        "/console/import",
        data={"kind": kind, "file": (io.BytesIO(content), filename)},
        headers={"Authorization": f"Bearer {token}"},
        content_type="multipart/form-data",
    )


def test_an_admin_imports_a_csv_and_sees_refused_lines(
    app: Flask, client: FlaskClient, demo_installation: Installation, session: Session
) -> None:
    token = console_session(app, client, demo_installation)
    content = (
        b"\xef\xbb\xbfcustomer_id,name,email\nX-1,New Person,new@example.com\nX-2,,x@example.com\n"
    )
    response = upload(client, token, "customers", content)
    assert response.status_code == 200
    html = text_of(response)
    assert "2 customers rows: 1 added, 0 updated, 0 unchanged, 1 refused" in html
    assert "Line 3: <code>name</code> is required" in html
    added = session.scalars(sa.select(Customer).where(Customer.external_id == "X-1")).one()
    assert added.installation_id == demo_installation.id
    again = text_of(upload(client, token, "customers", content))
    assert "0 added, 0 updated, 1 unchanged, 1 refused" in again


@pytest.mark.parametrize(
    ("kind", "content", "filename", "words"),
    [
        ("customers", b"name\nPriya\n", "bad.csv", "missing: customer_id"),
        ("pets", b"customer_id,name\n", "a.csv", "customers or orders"),
        ("customers", b"", "", "Choose a CSV file"),
        # Files in other encodings are read now (issue 20); a header that names the wrong
        # columns says how it was split.
        ("customers", b"id;full_name\nC-1;Priya\n", "semi.csv", "separated by semicolons"),
    ],
)
def test_a_file_that_cannot_be_imported_says_why(
    app: Flask,
    client: FlaskClient,
    demo_installation: Installation,
    kind: str,
    content: bytes,
    filename: str,
    words: str,
) -> None:
    token = console_session(app, client, demo_installation)
    response = upload(client, token, kind, content, filename)
    assert response.status_code == 400
    assert words in text_of(response)


def test_a_windows_file_is_read_and_check_file_writes_nothing(
    app: Flask, client: FlaskClient, demo_installation: Installation, session: Session
) -> None:
    token = console_session(app, client, demo_installation)
    content = "customer_id;name\nW-1;Zoë Müller\n".encode("cp1252")
    checked = client.post(
        "/console/import",
        data={"kind": "customers", "dry_run": "1", "file": (io.BytesIO(content), "w.csv")},
        headers={"Authorization": f"Bearer {token}"},
        content_type="multipart/form-data",
    )
    assert checked.status_code == 200
    assert "1 would be added" in text_of(checked)
    assert "Read as Windows-1252, columns separated by semicolons" in text_of(checked)
    assert session.scalar(sa.select(Customer.id).where(Customer.external_id == "W-1")) is None
    imported = upload(client, token, "customers", content)
    assert "1 added" in text_of(imported)
    name = session.scalar(sa.select(Customer.name).where(Customer.external_id == "W-1"))
    assert name == "Zoë Müller"


def test_an_upload_over_the_limit_is_a_413(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    token = console_session(app, client, demo_installation)
    settings = app.extensions["regulars.settings"]
    app.extensions["regulars.settings"] = replace(settings, max_upload_bytes=2048)
    response = upload(client, token, "customers", b"customer_id,name\n" + b"C,N\n" * 2000)
    assert response.status_code == 413


def test_the_import_refuses_sidebar_sessions(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    sidebar = client.post(
        "/sidebar", query_string=QUERY, data={"token": launch_token(app, demo_installation)}
    )
    token = session_token(sidebar.get_data(as_text=True))
    assert upload(client, token, "customers", b"customer_id,name\nC,N\n").status_code == 403
