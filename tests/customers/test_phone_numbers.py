"""Phone numbers matched as numbers: imports, the push API, Shopify and callers alike.

A number is stored in E.164, read in the installation's default phone region when it has no
leading +; one that is not a possible number is refused with its reason, never guessed.
Runs on SQLite and PostgreSQL where it stores.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session

from plugin import db
from plugin.customers import push_tokens
from plugin.customers.csv_import import ImportReport, import_csv
from plugin.customers.forget import Identifier
from plugin.customers.lookup import match_customer
from plugin.customers.shopify import sync_customer
from plugin.customers.shopify_client import ShopifyCustomer
from plugin.domain.helpdesk import Person
from plugin.domain.recognition import MatchedBy
from plugin.models import Customer, Installation

NOW = datetime(2026, 11, 24, 12, 0)
WAYS_OF_WRITING = ("+1 555-555-0101", "(555) 555-0101", "001 555 555 0101", "555 555 0101")


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def make_installation(session: Session, account: str, region: str | None = None) -> Installation:
    row = Installation(
        platform="zendesk", account=account, display_name=account, default_phone_region=region
    )
    session.add(row)
    session.commit()
    return row


def import_customers(session: Session, installation: Installation, text: str) -> ImportReport:
    return import_csv(session, installation.id, io.StringIO(text), kind="customers", now=NOW)


def caller(phone: str) -> Person:
    return Person(id="unknown-to-the-shop", name="Caller", phone=phone)


def phones(session: Session) -> dict[str | None, str | None]:
    session.expire_all()
    rows = session.execute(sa.select(Customer.external_id, Customer.phone))
    return {external_id: phone for external_id, phone in rows}


@pytest.mark.parametrize("stored_as", WAYS_OF_WRITING)
def test_every_way_of_writing_a_number_finds_the_one_customer(
    session: Session, stored_as: str
) -> None:
    acme = make_installation(session, "acme")
    report = import_customers(session, acme, f"customer_id,name,phone\nC-1,Priya,{stored_as}\n")
    assert report.problems == [] and report.created == 1
    assert phones(session) == {"C-1": "+15555550101"}
    priya = session.scalars(sa.select(Customer)).one()
    for calls_from in WAYS_OF_WRITING:
        assert match_customer(session, installation_id=acme.id, person=caller(calls_from)) == (
            priya,
            MatchedBy.PHONE,
        ), calls_from


def test_the_same_number_written_another_way_is_the_same_customer_on_import(
    session: Session,
) -> None:
    acme = make_installation(session, "acme")
    import_customers(session, acme, "customer_id,name,phone\nC-1,Priya,(555) 555-0101\n")
    again = import_customers(session, acme, "customer_id,name,phone\nC-1,Priya,001 555 555 0101\n")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)


def test_national_numbers_are_read_in_the_installations_region(session: Session) -> None:
    london = make_installation(session, "london", region="GB")
    report = import_customers(
        session,
        london,
        "customer_id,name,phone\nC-1,Ada,020 7946 0958\nC-2,Sam,+1 555-555-0101\n",
    )
    assert report.problems == []
    assert phones(session) == {"C-1": "+442079460958", "C-2": "+15555550101"}
    ada, sam = session.scalars(sa.select(Customer).order_by(Customer.external_id)).all()
    find = lambda phone: match_customer(session, installation_id=london.id, person=caller(phone))  # noqa: E731
    assert find("+44 20 7946 0958") == (ada, MatchedBy.PHONE)
    assert find("0044 20 7946 0958") == (ada, MatchedBy.PHONE)
    assert find("020 7946 0958") == (ada, MatchedBy.PHONE)
    # With a leading +, another region's number is that region's, wherever the shop is.
    assert find("+1 (555) 555-0101") == (sam, MatchedBy.PHONE)
    # Without it, the same digits are a British number: not Sam's.
    assert find("(555) 555-0101") is None


def test_an_unreadable_number_is_refused_with_its_line_and_reason(session: Session) -> None:
    acme = make_installation(session, "acme")
    report = import_customers(
        session,
        acme,
        "customer_id,name,phone\nC-1,Priya,+1 555 555 0101\nC-2,Walter,12\nC-3,Ana,555 555 0103\n",
    )
    assert [(p.line, p.field, p.message) for p in report.problems] == [
        (3, "phone", "'12' is not a phone number in region US")
    ]
    assert phones(session) == {"C-1": "+15555550101", "C-3": "+15555550103"}


def test_a_caller_whose_number_is_not_a_number_matches_nobody_by_phone(session: Session) -> None:
    acme = make_installation(session, "acme")
    # What the re-keying leaves as it was: text that is not a number in the region.
    session.add(Customer(installation_id=acme.id, external_id="C-9", name="Old", phone="12"))
    session.commit()
    assert match_customer(session, installation_id=acme.id, person=caller("12")) is None
    assert match_customer(session, installation_id=acme.id, person=caller("anonymous")) is None


def test_shopify_customers_are_keyed_and_merged_by_number(session: Session) -> None:
    acme = make_installation(session, "acme")
    import_customers(session, acme, "customer_id,name,phone\nC-1,Priya,(555) 555-0101\n")
    shopify = ShopifyCustomer(
        id="207119551",
        name="Priya Raman",
        email=None,
        phone="+1 555-555-0101",
        created_at=datetime(2021, 4, 5, 10, 0),
        number_of_orders=0,
        amount_spent_cents=0,
        currency="USD",
    )
    customer_id = sync_customer(session, acme, shopify, now=NOW)
    session.commit()
    stored = session.scalars(sa.select(Customer)).one()
    assert (stored.id, stored.external_id, stored.phone) == (customer_id, "C-1", "+15555550101")


def test_a_shopify_number_that_is_not_one_is_dropped_not_stored(session: Session) -> None:
    acme = make_installation(session, "acme")
    shopify = ShopifyCustomer(
        id="1",
        name="Ana",
        email="ana@example.com",
        phone="12",
        created_at=datetime(2021, 4, 5, 10, 0),
        number_of_orders=0,
        amount_spent_cents=0,
        currency="USD",
    )
    sync_customer(session, acme, shopify, now=NOW)
    session.commit()
    assert phones(session) == {"shopify:1": None}


def test_the_push_api_refuses_an_unreadable_number_by_field(
    client: FlaskClient, app: Flask
) -> None:
    with db.database(app).sessions() as session:
        acme = make_installation(session, "acme", region="DE")
        token = push_tokens.issue(acme)
        session.commit()
    body = {
        "customers": [
            {"customer_id": "C-1", "name": "Jonas", "phone": "030 123456"},
            {"customer_id": "C-2", "name": "Walter", "phone": "12"},
        ]
    }
    headers = {"Authorization": f"Bearer {token}"}
    refused = client.post("/api/v1/customers", json=body, headers=headers)
    assert refused.status_code == 422
    assert refused.get_json()["problems"] == [
        {"index": 1, "field": "phone", "message": "'12' is not a phone number in region DE"}
    ]
    body["customers"].pop()
    assert client.post("/api/v1/customers", json=body, headers=headers).status_code == 200
    with db.database(app).sessions() as session:
        assert phones(session) == {"C-1": "+4930123456"}


def test_admins_set_the_region_and_stored_numbers_are_read_again(
    runner: FlaskCliRunner, app: Flask
) -> None:
    with db.database(app).sessions() as session:
        acme = make_installation(session, "acme")
        session.add_all(
            [
                Customer(
                    installation_id=acme.id, external_id="C-1", name="A", phone="+15555550101"
                ),
                # Left by the re-keying: not a number in the US, a London number in GB.
                Customer(installation_id=acme.id, external_id="C-2", name="B", phone="02079460958"),
                Customer(installation_id=acme.id, external_id="C-3", name="C", phone="12"),
            ]
        )
        session.commit()
    shown = runner.invoke(args=["data", "phone-region", "--installation", "acme"])
    assert shown.exit_code == 0 and shown.output == "US\n"
    refused = runner.invoke(args=["data", "phone-region", "--installation", "acme", "XX"])
    assert refused.exit_code == 2 and "not a region code" in refused.output
    done = runner.invoke(args=["data", "phone-region", "--installation", "acme", "gb"])
    assert done.exit_code == 0, done.output
    assert done.output == (
        "Phone numbers are read in region GB.\n"
        "1 stored numbers re-read as phone numbers there.\n"
        "1 stored numbers are not phone numbers there (left as they are).\n"
    )
    with db.database(app).sessions() as session:
        assert session.scalars(sa.select(Installation.default_phone_region)).one() == "GB"
        assert phones(session) == {"C-1": "+15555550101", "C-2": "+442079460958", "C-3": "12"}


def test_the_migration_rekeys_stored_numbers_and_leaves_unreadable_ones(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db.upgrade(database_url, "0024")
    engine = db.create_engine(database_url)
    # How 0024 stored them: `+` and digits as typed, or whatever an old row held.
    stored = {
        "C-1": "+15555550101",
        "C-2": "5555550102",
        "C-3": "0015555550103",
        "C-4": "12",
        "C-5": None,
        "C-6": "15555550106",
    }
    try:
        with engine.begin() as connection:
            installation_id = connection.execute(
                sa.text(
                    "INSERT INTO installations (platform, account, display_name, currency, "
                    "tier_medium_min_orders, tier_medium_min_spend_cents, tier_high_min_orders, "
                    "tier_high_min_spend_cents, created_at) VALUES ('zendesk', 'acme', 'Acme', "
                    "'USD', 3, 25000, 12, 150000, :now) RETURNING id"
                ),
                {"now": NOW},
            ).scalar_one()
            connection.execute(
                sa.text(
                    "INSERT INTO customers (installation_id, external_id, name, phone, "
                    "created_at, updated_at) VALUES (:installation, :id, 'Name', :phone, "
                    ":now, :now)"
                ),
                [
                    {"installation": installation_id, "id": id_, "phone": phone, "now": NOW}
                    for id_, phone in stored.items()
                ],
            )
        with caplog.at_level("INFO", logger="alembic.runtime.migration"):
            db.upgrade(database_url)
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT external_id, phone FROM customers"))
            after = {external_id: phone for external_id, phone in rows}
            region = connection.execute(
                sa.text("SELECT default_phone_region FROM installations")
            ).scalar_one()
    finally:
        engine.dispose()
    assert after == {
        "C-1": "+15555550101",
        "C-2": "+15555550102",
        "C-3": "+15555550103",
        "C-4": "12",
        "C-5": None,
        "C-6": "+15555550106",
    }
    assert region is None  # read as "US" until an admin sets one
    assert "Phone numbers re-keyed to E.164: 3" in caplog.text
    assert f"Installation {installation_id}: 1 stored phone numbers are not" in caplog.text
    assert "5555550102" not in caplog.text  # counts, never the numbers


def test_forgetting_by_phone_reads_the_number_as_stored() -> None:
    assert Identifier.of("phone", "(555) 555-0101", phone_region="US").value == "+15555550101"
    assert Identifier.of("phone", "020 7946 0958", phone_region="GB").value == "+442079460958"
    # A number the re-keying left as it was is still found by its exact text.
    assert Identifier.of("phone", " 12 ", phone_region="US").value == "12"
