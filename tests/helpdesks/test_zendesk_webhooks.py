"""Zendesk's webhooks: created (two webhooks, their secrets, the trigger) and removed through
the API, undone when a step fails, and the signature check itself."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy.orm import Session

from plugin import db
from plugin.helpdesks.credentials import EXTENSION_KEY, CredentialsVault
from plugin.helpdesks.interface import HelpdeskError
from plugin.helpdesks.zendesk import ZendeskCredentials
from plugin.helpdesks.zendesk_installations import register_zendesk
from plugin.helpdesks.zendesk_webhooks import (
    RemoteWebhooks,
    SignatureError,
    ZendeskWebhooksApi,
    check_signature,
    connect_events,
    disconnect_events,
    signature_for,
)
from plugin.models import Installation
from plugin.models.events import EventSource
from tests.conftest import build_app, dispose_app

BASE = "https://acme.zendesk.com"
CREDENTIALS = ZendeskCredentials.from_api_token(email="admin@acme.example", api_token="t0k3n")
NOW = datetime(2026, 12, 4, 12, 0, 0)
WINDOW = timedelta(minutes=5)


def test_zendesks_documented_example_signature() -> None:
    # The example on Zendesk's "Verifying webhook authenticity" page, recomputed here.
    secret = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="
    signature = signature_for(secret, "2021-07-25T10:00:00Z", b'{"say": "hello"}')
    checked = check_signature(
        [secret],
        signature=signature,
        timestamp="2021-07-25T10:00:00Z",
        body=b'{"say": "hello"}',
        now=datetime(2021, 7, 25, 10, 2),
        window=WINDOW,
    )
    assert checked == datetime(2021, 7, 25, 10, 0)


@pytest.mark.parametrize(
    ("signature", "timestamp", "secrets", "why"),
    [
        (None, "2026-12-04T12:00:00Z", ["s"], "not signed"),
        ("x", None, ["s"], "not signed"),
        ("wrong", "2026-12-04T12:00:00Z", ["s"], "does not match"),
        ("good", "2026-12-04T11:54:00Z", ["s"], "replay window"),
        ("good", "2026-12-04T12:06:00Z", ["s"], "replay window"),
        ("good", "2026-12-04T12:00:00Z", ["other"], "does not match"),
        ("good", "2026-12-04T12:00:00Z", [], "does not match"),
    ],
)
def test_bad_signatures(
    signature: str | None, timestamp: str | None, secrets: list[str], why: str
) -> None:
    if signature == "good":
        assert timestamp is not None
        signature = signature_for("s", timestamp, b"{}")
    with pytest.raises(SignatureError, match=why):
        check_signature(
            secrets, signature=signature, timestamp=timestamp, body=b"{}", now=NOW, window=WINDOW
        )


def test_a_signature_with_an_offset_timestamp_is_read_in_utc() -> None:
    timestamp = "2026-12-04T13:01:00+01:00"
    signature = signature_for("s", timestamp, b"{}")
    assert check_signature(
        ["a", "s"], signature=signature, timestamp=timestamp, body=b"{}", now=NOW, window=WINDOW
    ) == datetime(2026, 12, 4, 12, 1)


def api(http: requests.Session) -> ZendeskWebhooksApi:
    return ZendeskWebhooksApi(session=http, base_url=BASE, credentials=CREDENTIALS, timeout=5)


def expect_install(rsps: responses.RequestsMock) -> None:
    for webhook in ("11", "12"):
        rsps.post(f"{BASE}/api/v2/webhooks", json={"webhook": {"id": webhook}}, status=201)
        rsps.get(
            f"{BASE}/api/v2/webhooks/{webhook}/signing_secret",
            json={"signing_secret": {"algorithm": "SHA256", "secret": f"secret-{webhook}"}},
        )
    rsps.post(f"{BASE}/api/v2/triggers", json={"trigger": {"id": 31}}, status=201)


def test_install_creates_two_webhooks_and_a_trigger_calling_the_first(
    rsps: responses.RequestsMock, http: requests.Session
) -> None:
    expect_install(rsps)
    remote, secrets = api(http).install("https://svc.example/events/zendesk/1", name="Regulars")
    assert remote == RemoteWebhooks(webhooks=["11", "12"], triggers=["31"])
    assert secrets == {"11": "secret-11", "12": "secret-12"}
    bodies = [json.loads(call.request.body or b"{}") for call in rsps.calls]
    tickets_hook, users_hook, trigger = bodies[0], bodies[2], bodies[4]
    assert tickets_hook["webhook"]["subscriptions"] == ["conditional_ticket_events"]
    assert tickets_hook["webhook"]["endpoint"] == "https://svc.example/events/zendesk/1"
    assert "zen:event-type:user.deleted" in users_hook["webhook"]["subscriptions"]
    [action] = trigger["trigger"]["actions"]
    assert action["field"] == "notification_webhook" and action["value"][0] == "11"
    assert json.loads(action["value"][1])["ticket"]["requester_id"] == "{{ticket.requester.id}}"
    assert all(c.request.headers["Authorization"].startswith("Basic ") for c in rsps.calls)


def test_a_failed_install_removes_what_it_created(
    rsps: responses.RequestsMock, http: requests.Session
) -> None:
    rsps.post(f"{BASE}/api/v2/webhooks", json={"webhook": {"id": "11"}}, status=201)
    rsps.get(f"{BASE}/api/v2/webhooks/11/signing_secret", status=403, json={})
    rsps.delete(f"{BASE}/api/v2/webhooks/11", status=204)
    with pytest.raises(HelpdeskError):
        api(http).install("https://svc.example/events/zendesk/1", name="Regulars")


def test_remove_counts_a_404_as_removed_and_reports_the_rest(
    rsps: responses.RequestsMock, http: requests.Session
) -> None:
    rsps.delete(f"{BASE}/api/v2/triggers/31", status=404)
    rsps.delete(f"{BASE}/api/v2/webhooks/11", status=204)
    rsps.delete(f"{BASE}/api/v2/webhooks/12", status=403)
    left = api(http).remove(RemoteWebhooks(webhooks=["11", "12"], triggers=["31"]))
    assert len(left) == 1 and left[0].startswith("webhook 12")


def registered(app: Flask, session: Session) -> Installation:
    vault: CredentialsVault = app.extensions[EXTENSION_KEY]
    found = register_zendesk(
        session, vault, subdomain="acme", app_id="867530", credentials=CREDENTIALS
    )
    session.commit()
    return found


def test_connect_stores_the_secrets_and_disconnect_forgets_them(
    app: Flask, session: Session, rsps: responses.RequestsMock, http: requests.Session
) -> None:
    vault: CredentialsVault = app.extensions[EXTENSION_KEY]
    installation = registered(app, session)
    expect_install(rsps)
    connect_events(
        session,
        installation,
        vault,
        http_session=http,
        public_url="https://svc.example",
        timeout=5,
    )
    session.commit()
    source = session.get(EventSource, installation.id)
    assert source is not None
    assert vault.decrypt(source.secret_encrypted) == {"11": "secret-11", "12": "secret-12"}
    assert "secret-11" not in source.secret_encrypted
    for path in ("triggers/31", "webhooks/11", "webhooks/12"):
        rsps.delete(f"{BASE}/api/v2/{path}", status=204)
    assert disconnect_events(session, installation, vault, http_session=http, timeout=5) == []
    session.commit()
    assert session.get(EventSource, installation.id) is None


def test_the_cli_installs_and_removes(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("cli")
    app = build_app(
        f"sqlite:///{path / 'app.sqlite3'}", path / "instance", public_url="https://svc.example"
    )
    try:
        with db.database(app).sessions() as session:
            installation = registered(app, session)
            installation_id = installation.id
        runner: FlaskCliRunner = app.test_cli_runner()
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            expect_install(rsps)
            result = runner.invoke(args=["zendesk", "webhooks", "install", "--subdomain", "acme"])
            assert result.exit_code == 0, result.output
            assert "Created webhooks 11, 12 and trigger 31" in result.output
            endpoint = json.loads(rsps.calls[0].request.body or b"{}")["webhook"]["endpoint"]
            assert endpoint == f"https://svc.example/events/zendesk/{installation_id}"
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            for item in ("triggers/31", "webhooks/11", "webhooks/12"):
                rsps.delete(f"{BASE}/api/v2/{item}", status=204)
            result = runner.invoke(args=["zendesk", "webhooks", "remove", "--subdomain", "acme"])
            assert result.exit_code == 0, result.output
    finally:
        dispose_app(app)


def test_the_cli_needs_the_public_url(app: Flask, session: Session, runner: FlaskCliRunner) -> None:
    registered(app, session)
    result = runner.invoke(args=["zendesk", "webhooks", "install", "--subdomain", "acme"])
    assert result.exit_code != 0 and "REGULARS_PUBLIC_URL" in result.output
