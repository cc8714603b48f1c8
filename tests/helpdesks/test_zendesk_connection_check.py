"""The Zendesk connection check: each step, and each failure said in words an admin can act on."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
import requests
import responses
from responses import matchers
from sqlalchemy.orm import Session
from urllib3.connection import HTTPSConnection
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

from plugin.helpdesks.credentials import CredentialsError, CredentialsVault, generate_key
from plugin.helpdesks.installations import CheckStatus, ConnectionReport
from plugin.helpdesks.zendesk import ZendeskCredentials
from plugin.helpdesks.zendesk_connection_check import (
    CHECK_API,
    CHECK_APP_INSTALLATION,
    CHECK_CREDENTIALS,
    CHECK_PUBLIC_KEY,
    check_connection,
)
from plugin.models import Installation
from tests.helpdesks.zendesk_account import (
    API_TOKEN,
    APP_ID,
    AUDIENCE,
    BASIC,
    EMAIL,
    INSTALLATION_ID,
    INSTALLATIONS_URL,
    ME_URL,
    NOW,
    OAUTH_TOKEN,
    PUBLIC_KEY_URL,
    SECRETS,
    TIMEOUT,
    register,
)
from tests.tokens import new_key, public_pem


def answer_me(rsps: responses.RequestsMock, **user: Any) -> None:
    me = {"id": 235323, "name": "Grace Hopper", "email": EMAIL, "role": "admin", **user}
    rsps.get(ME_URL, json={"user": me}, match=[matchers.header_matcher({"Authorization": BASIC})])


def answer_installations(rsps: responses.RequestsMock, *ids: str) -> None:
    others = [{"id": 7, "app_id": 42, "enabled": True}]
    rsps.get(
        INSTALLATIONS_URL,
        json={
            "installations": [{"id": int(i), "app_id": int(APP_ID), "enabled": True} for i in ids]
            + others
        },
        match=[matchers.header_matcher({"Authorization": BASIC})],
    )


def answer_public_key(rsps: responses.RequestsMock, pem: str | None = None) -> str:
    pem = pem or public_pem(new_key())
    rsps.get(PUBLIC_KEY_URL, body=pem, content_type="application/x-pem-file")
    return pem


def check(
    session: Session, installation: Installation, vault: CredentialsVault, http: requests.Session
) -> ConnectionReport:
    return check_connection(
        session, installation, vault, http_session=http, timeout=TIMEOUT, now=NOW
    )


def statuses(report: ConnectionReport) -> dict[str, CheckStatus]:
    return {c.name: c.status for c in report.checks}


def message(report: ConnectionReport, name: str) -> str:
    return next(c.message for c in report.checks if c.name == name)


OK, FAILED, SKIPPED = CheckStatus.OK, CheckStatus.FAILED, CheckStatus.SKIPPED


def test_a_working_installation_passes_every_check(
    session: Session, vault: CredentialsVault, rsps: responses.RequestsMock, http: requests.Session
) -> None:
    installation = register(session, vault)
    answer_me(rsps)
    answer_installations(rsps, INSTALLATION_ID)
    pem = answer_public_key(rsps)

    report = check(session, installation, vault, http)

    assert report.ok
    assert [c.name for c in report.checks] == [
        CHECK_API,
        CHECK_CREDENTIALS,
        CHECK_APP_INSTALLATION,
        CHECK_PUBLIC_KEY,
    ]
    assert set(statuses(report).values()) == {OK}
    assert "Grace Hopper" in message(report, CHECK_CREDENTIALS)
    assert installation.public_key_pem == pem
    assert installation.public_key_fetched_at == NOW


def test_the_check_finds_and_saves_the_only_installation_of_the_app(
    session: Session, vault: CredentialsVault, rsps: responses.RequestsMock, http: requests.Session
) -> None:
    installation = register(session, vault, app_installation_id=None)
    answer_me(rsps, role="agent")
    answer_installations(rsps, INSTALLATION_ID)
    answer_public_key(rsps)

    report = check(session, installation, vault, http)

    assert report.ok
    assert "Found installation 1001" in message(report, CHECK_APP_INSTALLATION)
    assert installation.app_installation_id == INSTALLATION_ID
    assert installation.token_audience == AUDIENCE


@pytest.mark.parametrize(
    ("known", "listed", "expected"),
    [
        (None, [], "not installed in acme"),
        (None, ["1001", "1003"], "installed 2 times in acme (1001, 1003)"),
        ("1002", ["1001"], "no installation 1002 in acme (installed: 1001)"),
        ("1002", [], "(installed: none)"),
    ],
)
def test_the_check_says_what_is_wrong_with_the_app_installation(
    session: Session,
    vault: CredentialsVault,
    rsps: responses.RequestsMock,
    http: requests.Session,
    known: str | None,
    listed: list[str],
    expected: str,
) -> None:
    installation = register(session, vault, app_installation_id=known)
    answer_me(rsps)
    answer_installations(rsps, *listed)
    answer_public_key(rsps)

    report = check(session, installation, vault, http)

    assert not report.ok
    assert statuses(report)[CHECK_APP_INSTALLATION] is FAILED
    assert expected in message(report, CHECK_APP_INSTALLATION)
    assert statuses(report)[CHECK_PUBLIC_KEY] is OK
    assert installation.app_installation_id == known


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 401, "json": {"error": "Couldn't authenticate you"}},
        {"json": {"user": {"id": None, "name": "Anonymous user", "role": "end-user"}}},
    ],
    ids=["401", "anonymous"],
)
def test_refused_credentials_fail_their_check_and_skip_the_installation_check(
    session: Session,
    vault: CredentialsVault,
    rsps: responses.RequestsMock,
    http: requests.Session,
    answer: dict[str, Any],
) -> None:
    installation = register(session, vault)
    rsps.get(ME_URL, **answer)
    answer_public_key(rsps)  # anonymous: it does not need the credentials

    report = check(session, installation, vault, http)

    assert statuses(report) == {
        CHECK_API: OK,
        CHECK_CREDENTIALS: FAILED,
        CHECK_APP_INSTALLATION: SKIPPED,
        CHECK_PUBLIC_KEY: OK,
    }
    assert "The API token or email is wrong" in message(report, CHECK_CREDENTIALS)
    assert "needs valid credentials" in message(report, CHECK_APP_INSTALLATION)


def test_a_refused_oauth_token_is_named_as_such(
    session: Session, vault: CredentialsVault, rsps: responses.RequestsMock, http: requests.Session
) -> None:
    oauth = ZendeskCredentials.from_oauth_token(oauth_token=OAUTH_TOKEN)
    installation = register(session, vault, credentials=oauth)
    rsps.get(
        ME_URL,
        status=401,
        match=[matchers.header_matcher({"Authorization": f"Bearer {OAUTH_TOKEN}"})],
    )
    answer_public_key(rsps)

    report = check(session, installation, vault, http)

    assert "OAuth token" in message(report, CHECK_CREDENTIALS)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"status": 403, "json": {"error": "Forbidden"}}, "lacks permission"),
        ({"status": 404, "json": {"error": "NotFound"}}, "no Zendesk API at https://acme"),
        (
            {"status": 429, "headers": {"Retry-After": "30"}},
            "rate-limiting this account (429): try again in 30 s",
        ),
        ({"status": 500}, "try again later"),
        ({"status": 422, "json": {"error": "Odd"}}, "refused the call (422)"),
        ({"body": "<html>Help Center closed</html>"}, "does not answer like the Zendesk API"),
        (
            {"json": {"user": {"id": 5, "name": "Sam", "role": "end-user"}}},
            "Sam, who is an end user",
        ),
        ({"json": {"user": {"id": 5, "name": "Bot", "role": None}}}, "not an agent (role unknown)"),
    ],
)
def test_credential_check_failures_say_what_to_do(
    session: Session,
    vault: CredentialsVault,
    rsps: responses.RequestsMock,
    http: requests.Session,
    answer: dict[str, Any],
    expected: str,
) -> None:
    installation = register(session, vault)
    rsps.get(ME_URL, **answer)
    answer_public_key(rsps)

    report = check(session, installation, vault, http)

    assert statuses(report)[CHECK_API] is OK
    assert statuses(report)[CHECK_CREDENTIALS] is FAILED
    assert expected in message(report, CHECK_CREDENTIALS)
    assert statuses(report)[CHECK_APP_INSTALLATION] is SKIPPED


def refused() -> requests.ConnectionError:
    reason = NewConnectionError(HTTPSConnection("acme.zendesk.com"), "refused")
    reason.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return requests.ConnectionError(MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def unresolved() -> requests.ConnectionError:
    gaierror = socket.gaierror(-2, "Name or service not known")
    reason = NameResolutionError("acme.zendesk.com", HTTPSConnection("acme.zendesk.com"), gaierror)
    return requests.ConnectionError(MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (requests.exceptions.ConnectTimeout(), "acme.zendesk.com did not answer within 5 s"),
        (requests.exceptions.ReadTimeout(), "did not answer within 5 s"),
        (refused(), "acme.zendesk.com refused the connection"),
        (unresolved(), "The host name acme.zendesk.com does not resolve: check the subdomain"),
        (requests.exceptions.SSLError(), "secure connection to acme.zendesk.com failed"),
        (requests.exceptions.ConnectionError(), "Could not connect to acme.zendesk.com"),
    ],
)
def test_an_unreachable_api_fails_the_first_check_and_skips_the_rest(
    session: Session,
    vault: CredentialsVault,
    rsps: responses.RequestsMock,
    http: requests.Session,
    failure: Exception,
    expected: str,
) -> None:
    installation = register(session, vault)
    rsps.get(ME_URL, body=failure)

    report = check(session, installation, vault, http)

    assert statuses(report) == {
        CHECK_API: FAILED,
        CHECK_CREDENTIALS: SKIPPED,
        CHECK_APP_INSTALLATION: SKIPPED,
        CHECK_PUBLIC_KEY: SKIPPED,
    }
    assert expected in message(report, CHECK_API)
    assert "API is not reachable" in message(report, CHECK_PUBLIC_KEY)


def test_an_unusable_api_base_url_fails_the_first_check(
    session: Session, vault: CredentialsVault, http: requests.Session
) -> None:
    installation = register(session, vault)
    installation.api_base_url = "https://exa mple.com:port"  # stored before validation existed

    report = check(session, installation, vault, http)

    assert "is not usable" in message(report, CHECK_API)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            {"status": 404, "body": "Not Found"},
            "no app 867530 (404 for its public key): check the app id",
        ),
        ({"body": "<html>not a key</html>"}, "not an RSA public key"),
        ({"body": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}, "not an RSA"),
        ({"status": 503}, "try again later"),
        ({"status": 403}, "refused to serve app 867530's public key (403)"),
        ({"status": 429, "headers": {"Retry-After": "12"}}, "try again in 12 s"),
        ({"body": requests.exceptions.ReadTimeout()}, "did not answer within 5 s"),
    ],
)
def test_public_key_failures_say_what_to_do(
    session: Session,
    vault: CredentialsVault,
    rsps: responses.RequestsMock,
    http: requests.Session,
    answer: dict[str, Any],
    expected: str,
) -> None:
    installation = register(session, vault)
    answer_me(rsps)
    answer_installations(rsps, INSTALLATION_ID)
    rsps.get(PUBLIC_KEY_URL, **answer)

    report = check(session, installation, vault, http)

    assert not report.ok
    assert statuses(report)[CHECK_PUBLIC_KEY] is FAILED
    assert expected in message(report, CHECK_PUBLIC_KEY)
    assert installation.public_key_pem is None


def test_the_check_reports_a_changed_public_key(
    session: Session, vault: CredentialsVault, rsps: responses.RequestsMock, http: requests.Session
) -> None:
    installation = register(session, vault)
    installation.public_key_pem = public_pem(new_key())
    answer_me(rsps)
    answer_installations(rsps, INSTALLATION_ID)
    rotated = answer_public_key(rsps)

    report = check(session, installation, vault, http)

    assert "it has changed" in message(report, CHECK_PUBLIC_KEY)
    assert installation.public_key_pem == rotated


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"status": 403}, "lacks permission to list app installations (403)"),
        ({"status": 429, "headers": {"Retry-After": "9"}}, "try again in 9 s"),
        ({"json": {"installations": [{"app_id": 867530}]}}, "does not answer like the Zendesk"),
    ],
)
def test_installation_listing_failures_say_what_to_do(
    session: Session,
    vault: CredentialsVault,
    rsps: responses.RequestsMock,
    http: requests.Session,
    answer: dict[str, Any],
    expected: str,
) -> None:
    installation = register(session, vault, app_installation_id=None)
    answer_me(rsps)
    rsps.get(INSTALLATIONS_URL, **answer)
    answer_public_key(rsps)

    report = check(session, installation, vault, http)

    assert expected in message(report, CHECK_APP_INSTALLATION)


def test_undecryptable_credentials_stop_the_check(
    session: Session, vault: CredentialsVault, http: requests.Session
) -> None:
    installation = register(session, vault)

    with pytest.raises(CredentialsError, match="cannot be decrypted"):
        check(session, installation, CredentialsVault([generate_key()]), http)


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 401},
        {"status": 403},
        {"status": 500},
        {"body": requests.exceptions.ReadTimeout(f"timed out sending {BASIC}")},
        {"body": requests.exceptions.ConnectionError(f"refused {API_TOKEN}")},
        {"body": "not json"},
    ],
)
def test_no_check_message_or_log_line_carries_a_secret(
    session: Session,
    vault: CredentialsVault,
    rsps: responses.RequestsMock,
    http: requests.Session,
    caplog: pytest.LogCaptureFixture,
    failure: dict[str, Any],
) -> None:
    caplog.set_level(logging.DEBUG)
    installation = register(session, vault, app_installation_id=None)
    rsps.get(ME_URL, **failure)
    rsps.get(PUBLIC_KEY_URL, status=404)
    rsps.assert_all_requests_are_fired = False  # the key is not fetched when nothing answers

    report = check(session, installation, vault, http)

    texts = [c.message for c in report.checks] + [caplog.text, repr(report)]
    assert not report.ok
    assert all(secret not in text for secret in SECRETS for text in texts)
