"""Zendesk installations: registration, stored credentials and their re-encryption, the app's
public key.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
import requests
import responses
import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.helpdesks.credentials import CredentialsError, CredentialsVault, generate_key
from plugin.helpdesks.installations import RegistrationError, reencrypt_credentials
from plugin.helpdesks.interface import HelpdeskError
from plugin.helpdesks.zendesk import ZendeskCredentials
from plugin.helpdesks.zendesk_installations import (
    refresh_public_key,
    token_audience,
    zendesk_credentials,
    zendesk_installation,
    zendesk_installations,
)
from plugin.models import Installation
from tests.helpdesks.zendesk_account import (
    APP_ID,
    AUDIENCE,
    CREDENTIALS,
    EMAIL,
    INSTALLATION_ID,
    NOW,
    OAUTH_TOKEN,
    PUBLIC_KEY_URL,
    SECRETS,
    SUBDOMAIN,
    TIMEOUT,
    register,
)
from tests.tokens import new_key, public_pem

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
