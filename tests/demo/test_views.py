"""The demo helpdesk page and its launch endpoint."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from plugin.helpdesks.tokens import verify_launch_token
from plugin.models import Installation


def csrf_token(client: FlaskClient) -> str:
    html = client.get("/demo").get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match
    return match.group(1)


def test_desk_lists_the_seeded_tickets(
    client: FlaskClient, demo_installation: Installation
) -> None:
    response = client.get("/demo")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.count('data-ticket-id="') >= 60
    assert "<script>" not in html


def test_desk_without_data_says_how_to_seed(client: FlaskClient) -> None:
    response = client.get("/demo")
    assert response.status_code == 503
    assert "demo seed" in response.get_data(as_text=True)


def test_open_ticket_signs_a_token_the_sidebar_accepts(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    response = client.post(
        "/demo/api/tickets/1001/open", json={}, headers={"X-CSRFToken": csrf_token(client)}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["sidebar_path"] == "/sidebar"
    assert body["context"]["ticketId"] == 1001
    assert body["data"]["ticket.requester"]["id"] == int(body["data"]["ticket"]["requester"]["id"])
    launch = verify_launch_token(
        body["token"], find_installation=lambda _a: demo_installation, leeway=0
    )
    assert launch.installation_id == demo_installation.id


def test_open_ticket_needs_csrf(client: FlaskClient, demo_installation: Installation) -> None:
    assert client.post("/demo/api/tickets/1001/open", json={}).status_code == 400


def test_open_unknown_ticket_is_404(client: FlaskClient, demo_installation: Installation) -> None:
    response = client.post(
        "/demo/api/tickets/424242/open", json={}, headers={"X-CSRFToken": csrf_token(client)}
    )
    assert response.status_code == 404
    assert "does not exist" in response.get_json()["error"]


def test_desk_has_a_nav_button_for_the_admin_console(
    client: FlaskClient, demo_installation: Installation
) -> None:
    html = client.get("/demo").get_data(as_text=True)
    assert 'data-console-url="/demo/api/console/open"' in html
    assert 'id="nav-console"' in html and "Admin console" in html
    assert 'id="console-back"' in html


def test_open_console_signs_a_token_for_the_demos_admin(
    client: FlaskClient, demo_installation: Installation
) -> None:
    response = client.post(
        "/demo/api/console/open", json={}, headers={"X-CSRFToken": csrf_token(client)}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["console_path"] == "/console"
    assert body["user"] == {
        "id": 80004,
        "name": "Diane Foster",
        "email": "diane.foster@example.com",
        "role": "admin",
    }
    launch = verify_launch_token(
        body["token"], find_installation=lambda _a: demo_installation, leeway=0
    )
    assert launch.installation_id == demo_installation.id
    assert launch.user_id == "80004"
    assert launch.claims["iss"] == "demo.localhost"
    assert launch.claims["aud"] == demo_installation.token_audience


def test_the_console_accepts_the_demos_console_token(
    client: FlaskClient, demo_installation: Installation
) -> None:
    token = client.post(
        "/demo/api/console/open", json={}, headers={"X-CSRFToken": csrf_token(client)}
    ).get_json()["token"]
    response = client.post(
        "/console",
        query_string={"origin": "http://localhost", "app_guid": "g-1"},
        data={"token": token},
    )
    assert response.status_code == 200
    assert "signed in as Diane Foster (admin)" in response.get_data(as_text=True)


def test_open_console_needs_csrf(client: FlaskClient, demo_installation: Installation) -> None:
    assert client.post("/demo/api/console/open", json={}).status_code == 400


def test_open_console_without_data_says_how_to_seed(app: Flask, client: FlaskClient) -> None:
    app.config["WTF_CSRF_ENABLED"] = False  # the not-seeded page has no token to read
    response = client.post("/demo/api/console/open", json={})
    assert response.status_code == 503
    assert "demo seed" in response.get_json()["error"]


def test_seed_command(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert "Seeded the demo installation with" in result.output
