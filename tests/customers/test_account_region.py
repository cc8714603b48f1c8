"""The default phone region taken from the helpdesk account's country at the connection check."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import requests
import responses
from sqlalchemy.orm import Session

from plugin.customers.phone_region import phone_region, set_phone_region
from plugin.domain.regions import region_of_country, region_of_time_zone
from plugin.helpdesks.credentials import CredentialsVault, generate_key
from plugin.helpdesks.freshdesk import FreshdeskCredentials
from plugin.helpdesks.freshdesk_installations import (
    check_freshdesk_connection,
    register_freshdesk,
)
from plugin.helpdesks.zendesk_connection_check import check_connection
from plugin.models import Customer, Installation
from tests.helpdesks.zendesk_account import (
    BASE,
    EMAIL,
    INSTALLATION_ID,
    INSTALLATIONS_URL,
    ME_URL,
    PUBLIC_KEY_URL,
    register,
)
from tests.tokens import new_key, public_pem

NOW = datetime(2026, 11, 24, 9, 0)
SETTINGS_URL = f"{BASE}/api/v2/account/settings.json"
FRESHDESK = "https://shop.freshdesk.com"


@pytest.fixture
def vault() -> CredentialsVault:
    return CredentialsVault([generate_key()])


def zendesk_answers(rsps: responses.RequestsMock, settings: dict[str, object] | None) -> None:
    me = {"id": 235323, "name": "Grace Hopper", "email": EMAIL, "role": "admin"}
    rsps.get(ME_URL, json={"user": me})
    rsps.get(
        INSTALLATIONS_URL,
        json={"installations": [{"id": int(INSTALLATION_ID), "app_id": 867530}]},
    )
    if settings is None:
        rsps.get(SETTINGS_URL, status=403, json={"error": "Forbidden"})
    else:
        rsps.get(SETTINGS_URL, json={"settings": settings})
    rsps.get(PUBLIC_KEY_URL, body=public_pem(new_key()), content_type="application/x-pem-file")


def zendesk_check(
    session: Session, installation: Installation, vault: CredentialsVault, http: requests.Session
) -> None:
    check_connection(session, installation, vault, http_session=http, timeout=5.0, now=NOW)


def test_zendesk_the_account_time_zone_gives_the_region_when_none_was_set(
    session: Session, vault: CredentialsVault, rsps: responses.RequestsMock, http: requests.Session
) -> None:
    installation = register(session, vault)
    session.add(Customer(installation_id=installation.id, name="Ann", phone="020 7946 0958"))
    session.flush()
    zendesk_answers(
        rsps, {"localization": {"time_zone": "London", "iana_time_zone": "Europe/London"}}
    )

    zendesk_check(session, installation, vault, http)

    assert installation.default_phone_region == "GB"
    assert phone_region(session, installation.id) == "GB"
    # A number stored while it was not one in the US is read again in the new region.
    assert session.query(Customer.phone).scalar() == "+442079460958"


def test_zendesk_a_region_the_admin_set_is_kept(
    session: Session, vault: CredentialsVault, rsps: responses.RequestsMock, http: requests.Session
) -> None:
    installation = register(session, vault)
    set_phone_region(session, installation, "DE")
    me = {"id": 235323, "name": "Grace Hopper", "email": EMAIL, "role": "admin"}
    rsps.get(ME_URL, json={"user": me})
    rsps.get(INSTALLATIONS_URL, json={"installations": [{"id": 1001, "app_id": 867530}]})
    rsps.get(PUBLIC_KEY_URL, body=public_pem(new_key()), content_type="application/x-pem-file")

    zendesk_check(session, installation, vault, http)  # settings are not even asked for

    assert installation.default_phone_region == "DE"


@pytest.mark.parametrize(
    "settings",
    [None, {}, {"localization": {"iana_time_zone": "Etc/UTC"}}, {"localization": "x"}],
    ids=["forbidden", "no localization", "no country", "unreadable"],
)
def test_zendesk_no_country_leaves_the_region_unset(
    session: Session,
    vault: CredentialsVault,
    rsps: responses.RequestsMock,
    http: requests.Session,
    settings: dict[str, object] | None,
) -> None:
    installation = register(session, vault)
    zendesk_answers(rsps, settings)

    zendesk_check(session, installation, vault, http)

    assert installation.default_phone_region is None
    assert phone_region(session, installation.id) == "US"


def freshdesk_installation(session: Session, vault: CredentialsVault) -> Installation:
    registration = register_freshdesk(
        session, vault, domain="shop", credentials=FreshdeskCredentials(api_key="k" * 20)
    )
    return registration.installation


def freshdesk_answers(
    rsps: responses.RequestsMock, account: dict[str, object], status: int
) -> None:
    rsps.get(
        f"{FRESHDESK}/api/v2/agents/me",
        json={"id": 7, "ticket_scope": 1, "contact": {"name": "Ada", "email": "ada@shop.example"}},
    )
    rsps.get(f"{FRESHDESK}/api/v2/account", json=account, status=status)


@pytest.mark.parametrize(
    ("account", "status", "region"),
    [
        ({"timezone": "London", "address": {"country": "United Kingdom"}}, 200, "GB"),
        ({"address": {"country": "India", "city": "Chennai"}}, 200, "IN"),
        ({"address": {"country": "USA"}}, 200, "US"),
        ({"address": {"country": "Narnia"}}, 200, None),
        ({"address": None}, 200, None),
        ({"code": "access_denied"}, 403, None),
    ],
)
def test_freshdesk_the_account_address_gives_the_region(
    session: Session,
    vault: CredentialsVault,
    rsps: responses.RequestsMock,
    http: requests.Session,
    account: dict[str, object],
    status: int,
    region: str | None,
) -> None:
    installation = freshdesk_installation(session, vault)
    freshdesk_answers(rsps, account, status)

    report = check_freshdesk_connection(
        installation, vault, http_session=http, timeout=5.0, now=NOW
    )

    assert report.ok
    assert installation.default_phone_region == region


def test_freshdesk_a_region_the_admin_set_is_kept(
    session: Session, vault: CredentialsVault, rsps: responses.RequestsMock, http: requests.Session
) -> None:
    installation = freshdesk_installation(session, vault)
    set_phone_region(session, installation, "FR")
    rsps.get(
        f"{FRESHDESK}/api/v2/agents/me",
        json={"id": 7, "ticket_scope": 1, "contact": {"name": "Ada", "email": "ada@shop.example"}},
    )

    check_freshdesk_connection(installation, vault, http_session=http, timeout=5.0, now=NOW)

    assert installation.default_phone_region == "FR"


@pytest.mark.parametrize(
    ("zone", "region"),
    [
        ("America/New_York", "US"),
        ("America/Toronto", "CA"),
        ("Europe/Berlin", "DE"),
        ("Asia/Kolkata", "IN"),
        ("Australia/Sydney", "AU"),
        ("Etc/UTC", None),
        ("Pacific Time (US & Canada)", None),  # a Rails name: no IANA zone, no guess
        ("", None),
        (None, None),
    ],
)
def test_time_zones_name_their_country(zone: str | None, region: str | None) -> None:
    assert region_of_time_zone(zone) == region


@pytest.mark.parametrize(
    ("name", "region"),
    [
        ("GB", "GB"),
        ("de", "DE"),
        ("United Kingdom", "GB"),
        ("  united   states ", "US"),
        ("USA", "US"),
        ("Germany", "DE"),
        ("Antigua and Barbuda", "AG"),
        ("Narnia", None),
        ("ZZ", None),
        ("", None),
    ],
)
def test_country_names_and_codes_name_their_region(name: str, region: str | None) -> None:
    assert region_of_country(name) == region


def test_without_the_time_zone_database_nothing_is_guessed(tmp_path: Path) -> None:
    assert region_of_time_zone("Europe/London", zoneinfo=tmp_path) is None
    assert region_of_country("Germany", zoneinfo=tmp_path) is None
