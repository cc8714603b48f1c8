"""Zendesk installations: registration, stored credentials, the connection check, mappings."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
import responses
import sqlalchemy as sa
from flask import Flask
from responses import matchers
from sqlalchemy.orm import Session
from urllib3.connection import HTTPSConnection
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

from plugin import db
from plugin.domain.helpdesk import Person
from plugin.helpdesks.credentials import CredentialsError, CredentialsVault, generate_key
from plugin.helpdesks.installations import (
    CHECK_API,
    CHECK_APP_INSTALLATION,
    CHECK_CREDENTIALS,
    CHECK_PUBLIC_KEY,
    CheckStatus,
    ConnectionReport,
    FactMapping,
    MappingError,
    RegistrationError,
    add_mapping,
    check_connection,
    list_mappings,
    mapped_facts,
    reencrypt_credentials,
    refresh_public_key,
    register_zendesk,
    remove_mapping,
    token_audience,
    zendesk_credentials,
    zendesk_installation,
    zendesk_installations,
)
from plugin.helpdesks.interface import HelpdeskError
from plugin.helpdesks.zendesk import ZendeskCredentials
from plugin.models import FieldMapping, Installation
from tests.tokens import new_key, public_pem

SUBDOMAIN = "acme"
BASE = "https://acme.zendesk.com"
APP_ID = "867530"
INSTALLATION_ID = "1001"
EMAIL = "admin@acme.example"
API_TOKEN = "Zq7tT4wL0vN2xR8yB5mC3kD9fG1hJ6pS"
OAUTH_TOKEN = "oauth-Yk3Lm9Qe2Rt7Uw4Zx8Cv6Bn1"
CREDENTIALS = ZendeskCredentials.from_api_token(email=EMAIL, api_token=API_TOKEN)
# base64 of "admin@acme.example/token:Zq7tT4wL0vN2xR8yB5mC3kD9fG1hJ6pS", worked out apart.
BASIC = "Basic YWRtaW5AYWNtZS5leGFtcGxlL3Rva2VuOlpxN3RUNHdMMHZOMnhSOHlCNW1DM2tEOWZHMWhKNnBT"
SECRETS = [API_TOKEN, OAUTH_TOKEN, BASIC, BASIC.removeprefix("Basic ")]
NOW = datetime(2026, 11, 24, 9, 0)
TIMEOUT = 5.0

ME_URL = f"{BASE}/api/v2/users/me.json"
INSTALLATIONS_URL = f"{BASE}/api/v2/apps/installations.json"
PUBLIC_KEY_URL = f"{BASE}/api/v2/apps/{APP_ID}/public_key.pem"
AUDIENCE = f"https://acme.zendesk.com/api/v2/apps/installations/{INSTALLATION_ID}.json"


@pytest.fixture
def vault() -> CredentialsVault:
    return CredentialsVault([generate_key()])


@pytest.fixture
def storage_session(storage_app: Flask) -> Iterator[Session]:
    """A session on a fresh database of each kind: SQLite and PostgreSQL."""
    with db.database(storage_app).sessions() as session:
        yield session


def register(session: Session, vault: CredentialsVault, **changes: Any) -> Installation:
    values: dict[str, Any] = {
        "subdomain": SUBDOMAIN,
        "app_id": APP_ID,
        "credentials": CREDENTIALS,
        "app_installation_id": INSTALLATION_ID,
    }
    values.update(changes)
    return register_zendesk(session, vault, **values)


# --- Registering -----------------------------------------------------------------------------


def test_registration_stores_the_installation_with_its_credentials_encrypted(
    storage_session: Session, vault: CredentialsVault
) -> None:
    installation = register(storage_session, vault, display_name="Acme Support")
    storage_session.commit()
    storage_session.expunge_all()

    stored = zendesk_installation(storage_session, SUBDOMAIN)
    assert stored is not None and stored.id == installation.id
    assert (stored.platform, stored.account, stored.display_name) == (
        "zendesk",
        "acme",
        "Acme Support",
    )
    assert (stored.app_id, stored.app_installation_id) == (APP_ID, INSTALLATION_ID)
    assert stored.token_audience == AUDIENCE
    assert stored.api_base_url is None
    assert stored.credentials_encrypted is not None
    assert all(secret not in stored.credentials_encrypted for secret in [*SECRETS, EMAIL])
    assert zendesk_credentials(stored, vault) == CREDENTIALS


def test_registration_without_an_installation_id_has_no_audience_yet(
    storage_session: Session, vault: CredentialsVault
) -> None:
    installation = register(
        storage_session, vault, subdomain="  Acme ", app_installation_id=None, display_name=None
    )

    assert installation.account == "acme"
    assert installation.display_name == "acme"
    assert installation.app_installation_id is None
    assert installation.token_audience is None


def test_registering_again_updates_the_same_installation(
    storage_session: Session, vault: CredentialsVault
) -> None:
    first = register(storage_session, vault, display_name="Acme Support")
    first.public_key_pem = public_pem(new_key())
    oauth = ZendeskCredentials.from_oauth_token(oauth_token=OAUTH_TOKEN)

    second = register(
        storage_session,
        vault,
        credentials=oauth,
        app_installation_id=None,
        api_base_url="http://127.0.0.1:8025/",
    )
    storage_session.commit()

    assert second.id == first.id
    assert zendesk_installations(storage_session) == [second]
    # Same app: the known installation, its audience and key stay; the name stays unless given.
    assert second.app_installation_id == INSTALLATION_ID
    assert second.token_audience == AUDIENCE
    assert second.public_key_pem is not None
    assert second.display_name == "Acme Support"
    assert second.api_base_url == "http://127.0.0.1:8025"
    assert zendesk_credentials(second, vault) == oauth


def test_registering_another_app_forgets_the_old_apps_installation_and_key(
    storage_session: Session, vault: CredentialsVault
) -> None:
    installation = register(storage_session, vault)
    installation.public_key_pem = public_pem(new_key())
    installation.public_key_fetched_at = NOW

    register(storage_session, vault, app_id="42", app_installation_id=None)

    stored = storage_session.get(Installation, installation.id)
    assert stored is not None and stored.app_id == "42"
    assert stored.app_installation_id is None
    assert stored.token_audience is None
    assert stored.public_key_pem is None
    assert stored.public_key_fetched_at is None


def test_installations_of_two_accounts_are_kept_apart(
    storage_session: Session, vault: CredentialsVault
) -> None:
    acme = register(storage_session, vault)
    globex = register(storage_session, vault, subdomain="globex")
    storage_session.commit()

    assert [i.account for i in zendesk_installations(storage_session)] == ["acme", "globex"]
    assert acme.token_audience != globex.token_audience
    assert globex.token_audience == token_audience("globex", INSTALLATION_ID)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"subdomain": "acme.zendesk.com"}, "subdomain"),
        ({"subdomain": ""}, "subdomain"),
        ({"subdomain": "-acme"}, "subdomain"),
        ({"subdomain": "a" * 64}, "subdomain"),
        ({"app_id": "abc"}, "app_id"),
        ({"app_id": ""}, "app_id"),
        ({"app_id": "1/../2"}, "app_id"),
        ({"app_installation_id": "1001.json"}, "app_installation_id"),
        ({"api_base_url": "ftp://acme.example"}, "api_base_url"),
        ({"api_base_url": "acme.zendesk.com"}, "api_base_url"),
        ({"api_base_url": "https://"}, "api_base_url"),
        ({"api_base_url": "https://acme.example/?x=1"}, "api_base_url"),
        ({"api_base_url": "https://user:pw@acme.example"}, "api_base_url"),
        ({"api_base_url": "https://acme.example/" + "a" * 500}, "api_base_url"),
        ({"display_name": "   "}, "display_name"),
        ({"display_name": "x" * 256}, "display_name"),
    ],
)
def test_unusable_registration_values_are_refused_naming_the_field(
    session: Session, vault: CredentialsVault, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(RegistrationError, match=field) as raised:
        register(session, vault, **changes)

    assert all(secret not in str(raised.value) for secret in SECRETS)
    assert session.scalar(sa.select(sa.func.count()).select_from(Installation)) == 0


def test_registration_logs_no_secret(
    session: Session, vault: CredentialsVault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    installation = register(session, vault)

    assert "acme" in caplog.text
    assert all(secret not in caplog.text for secret in SECRETS)
    assert all(secret not in repr(installation) for secret in SECRETS)


def test_credentials_missing_or_of_another_kind_are_clear_errors(
    session: Session, vault: CredentialsVault
) -> None:
    installation = register(session, vault)

    installation.credentials_encrypted = None
    with pytest.raises(CredentialsError, match="no stored credentials"):
        zendesk_credentials(installation, vault)

    installation.credentials_encrypted = vault.encrypt({"api_key": "freshdesk-secret"})
    with pytest.raises(CredentialsError, match="not Zendesk credentials") as raised:
        zendesk_credentials(installation, vault)
    assert "freshdesk-secret" not in str(raised.value)

    installation.credentials_encrypted = CredentialsVault([generate_key()]).encrypt({"a": "b"})
    with pytest.raises(CredentialsError, match="cannot be decrypted"):
        zendesk_credentials(installation, vault)


def test_rotation_re_encrypts_every_installations_credentials_with_the_first_key(
    storage_session: Session,
) -> None:
    old_key, new_key_ = generate_key(), generate_key()
    old = CredentialsVault([old_key])
    register(storage_session, old)
    register(storage_session, old, subdomain="globex")
    storage_session.add(Installation(platform="demo", account="demo", display_name="Demo"))
    storage_session.commit()

    count = reencrypt_credentials(storage_session, CredentialsVault([new_key_, old_key]))
    storage_session.commit()

    assert count == 2
    only_new = CredentialsVault([new_key_])
    for installation in zendesk_installations(storage_session):
        assert zendesk_credentials(installation, only_new) == CREDENTIALS
        with pytest.raises(CredentialsError):
            zendesk_credentials(installation, old)


def test_rotation_stops_at_credentials_no_key_can_decrypt_naming_the_installation(
    session: Session,
) -> None:
    key = generate_key()
    register(session, CredentialsVault([key]))
    register(session, CredentialsVault([generate_key()]), subdomain="globex")

    with pytest.raises(CredentialsError, match="zendesk:globex"):
        reencrypt_credentials(session, CredentialsVault([generate_key(), key]))


# --- The public key --------------------------------------------------------------------------


def test_refreshing_the_public_key_stores_it_and_says_when_it_changed(
    session: Session,
    vault: CredentialsVault,
    rsps: responses.RequestsMock,
    http: requests.Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    installation = register(session, vault)
    first, rotated = public_pem(new_key()), public_pem(new_key())
    rsps.get(PUBLIC_KEY_URL, body=first)
    rsps.get(PUBLIC_KEY_URL, body=first)
    rsps.get(PUBLIC_KEY_URL, body=rotated)
    later = NOW + timedelta(hours=1)

    assert refresh_public_key(session, installation, http_session=http, timeout=TIMEOUT, now=NOW)
    assert installation.public_key_pem == first
    assert installation.public_key_fetched_at == NOW
    assert not refresh_public_key(
        session, installation, http_session=http, timeout=TIMEOUT, now=later
    )
    assert installation.public_key_fetched_at == later
    assert "new public key" not in caplog.text
    assert refresh_public_key(session, installation, http_session=http, timeout=TIMEOUT, now=later)
    assert installation.public_key_pem == rotated
    assert "acme has a new public key" in caplog.text


def test_refreshing_the_public_key_calls_the_api_base_url_when_one_is_set(
    session: Session, vault: CredentialsVault, rsps: responses.RequestsMock, http: requests.Session
) -> None:
    installation = register(session, vault, api_base_url="http://127.0.0.1:8025")
    rsps.get(
        f"http://127.0.0.1:8025/api/v2/apps/{APP_ID}/public_key.pem", body=public_pem(new_key())
    )

    assert refresh_public_key(session, installation, http_session=http, timeout=TIMEOUT, now=NOW)


def test_a_failed_refresh_keeps_the_stored_key(
    session: Session, vault: CredentialsVault, rsps: responses.RequestsMock, http: requests.Session
) -> None:
    installation = register(session, vault)
    pem = public_pem(new_key())
    installation.public_key_pem, installation.public_key_fetched_at = pem, NOW
    rsps.get(PUBLIC_KEY_URL, status=503)

    with pytest.raises(HelpdeskError) as raised:
        refresh_public_key(
            session, installation, http_session=http, timeout=TIMEOUT, now=NOW + timedelta(1)
        )

    assert raised.value.retryable is True
    assert (installation.public_key_pem, installation.public_key_fetched_at) == (pem, NOW)


def test_refreshing_needs_an_app_id(
    session: Session, vault: CredentialsVault, http: requests.Session
) -> None:
    installation = register(session, vault)
    installation.app_id = None

    with pytest.raises(RegistrationError, match="app_id"):
        refresh_public_key(session, installation, http_session=http, timeout=TIMEOUT, now=NOW)


# --- The connection check --------------------------------------------------------------------


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


# --- Field mappings --------------------------------------------------------------------------


def test_mappings_are_added_listed_renamed_and_removed(
    storage_session: Session, vault: CredentialsVault
) -> None:
    acme = register(storage_session, vault)
    globex = register(storage_session, vault, subdomain="globex")

    add_mapping(storage_session, acme, kind="user_field", key="loyalty_tier", fact_name="tier")
    add_mapping(storage_session, acme, kind="tag", key=" VIP ", fact_name="vip")
    add_mapping(
        storage_session, acme, kind="organization_field", key="account_manager", fact_name="am"
    )
    renamed = add_mapping(
        storage_session, acme, kind="user_field", key="loyalty_tier", fact_name="loyalty"
    )
    storage_session.commit()

    assert renamed == FactMapping("user_field", "loyalty_tier", "loyalty")
    assert list_mappings(storage_session, acme) == [
        FactMapping("organization_field", "account_manager", "am"),
        FactMapping("tag", "vip", "vip"),
        FactMapping("user_field", "loyalty_tier", "loyalty"),
    ]
    assert list_mappings(storage_session, globex) == []

    assert remove_mapping(storage_session, acme, kind="tag", key="VIP")
    assert not remove_mapping(storage_session, acme, kind="tag", key="vip")
    assert not remove_mapping(storage_session, globex, kind="user_field", key="loyalty_tier")
    storage_session.commit()
    assert [m.key for m in list_mappings(storage_session, acme)] == [
        "account_manager",
        "loyalty_tier",
    ]


def test_one_fact_comes_from_one_field_only(session: Session, vault: CredentialsVault) -> None:
    installation = register(session, vault)
    add_mapping(session, installation, kind="user_field", key="tier", fact_name="tier")

    with pytest.raises(MappingError, match="'tier' already comes from user field 'tier'"):
        add_mapping(session, installation, kind="organization_field", key="tier", fact_name="tier")


@pytest.mark.parametrize(
    ("kind", "key", "fact_name", "expected"),
    [
        ("custom_field", "tier", "tier", "kind must be one of"),
        ("user_field", "", "tier", "field key must be"),
        ("user_field", "loyalty tier", "tier", "no spaces"),
        ("tag", "x" * 256, "big", "tag must be"),
        ("tag", "vip", "VIP", "fact name"),
        ("tag", "vip", "1st", "fact name"),
        ("tag", "vip", "vip-customer", "fact name"),
        ("tag", "vip", "v" * 101, "fact name"),
        ("tag", "vip", "", "fact name"),
    ],
)
def test_unusable_mappings_are_refused(
    session: Session,
    vault: CredentialsVault,
    kind: str,
    key: str,
    fact_name: str,
    expected: str,
) -> None:
    installation = register(session, vault)

    with pytest.raises(MappingError, match=expected):
        add_mapping(session, installation, kind=kind, key=key, fact_name=fact_name)

    assert session.scalar(sa.select(sa.func.count()).select_from(FieldMapping)) == 0


PERSON = Person(
    id="1",
    name="Ada",
    tags=("vip", "newsletter"),
    fields={"loyalty_tier": "gold", "lifetime_orders": 14, "birthday": None},
    organization_id="9",
    organization_fields={"account_manager": "Charles", "contract_tier": None},
)


def test_mapped_facts_read_tags_as_booleans_and_fields_when_set() -> None:
    mappings = [
        FactMapping("tag", "vip", "is_vip"),
        FactMapping("tag", "wholesale", "is_wholesale"),
        FactMapping("user_field", "loyalty_tier", "tier"),
        FactMapping("user_field", "lifetime_orders", "orders"),
        FactMapping("user_field", "birthday", "birthday"),
        FactMapping("user_field", "missing", "missing"),
        FactMapping("organization_field", "account_manager", "account_manager"),
        FactMapping("organization_field", "contract_tier", "contract_tier"),
    ]

    assert mapped_facts(PERSON, mappings) == {
        "is_vip": True,
        "is_wholesale": False,
        "tier": "gold",
        "orders": 14,
        "account_manager": "Charles",
    }
    assert mapped_facts(PERSON, []) == {}


def test_mapped_facts_take_stored_rows_too(session: Session, vault: CredentialsVault) -> None:
    installation = register(session, vault)
    add_mapping(session, installation, kind="tag", key="vip", fact_name="is_vip")
    rows = session.scalars(sa.select(FieldMapping)).all()

    assert mapped_facts(PERSON, rows) == {"is_vip": True}


def test_mapped_facts_refuse_a_kind_they_do_not_know() -> None:
    with pytest.raises(MappingError, match="unknown mapping kind"):
        mapped_facts(PERSON, [FactMapping("ticket_field", "x", "x")])
