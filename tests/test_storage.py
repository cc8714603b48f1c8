"""Storage on both databases: migrations match the models, data stays in its installation."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from plugin import db
from plugin.customers.lookup import find_customer, match_customer, order_stats_of, stored_facts_of
from plugin.customers.orders import refresh_order_facts
from plugin.demo.seed import seed_demo
from plugin.domain.helpdesk import Person, Ticket
from plugin.domain.recognition import MatchedBy
from plugin.models import Base, Customer, CustomerFact, Installation, Order, SeenTicket
from plugin.sidebar.seen import record_seen_ticket
from tests.postgres_cluster import create_database, drop_database

NOW = datetime(2026, 11, 23, 12, 0)


def test_migrations_build_exactly_the_models(database_url: str) -> None:
    db.upgrade(database_url)
    engine = db.create_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            tables = sa.inspect(connection).get_table_names()
    finally:
        engine.dispose()
    assert {"installations", "customers", "customer_facts", "seen_tickets"} <= set(tables)


def installation(session: Session, account: str) -> Installation:
    row = Installation(platform="zendesk", account=account, display_name=account)
    session.add(row)
    session.flush()
    return row


def customer(session: Session, inst: Installation, **fields: object) -> Customer:
    row = Customer(installation_id=inst.id, name="Sam Doe", **fields)
    session.add(row)
    session.flush()
    return row


def test_customer_is_found_by_id_then_email_then_phone(storage_session: Session) -> None:
    acme = installation(storage_session, "acme")
    by_id = customer(storage_session, acme, helpdesk_user_id="11", email="a@example.com")
    by_email = customer(storage_session, acme, email="sam@example.com")
    by_phone = customer(storage_session, acme, phone="+15555550101")
    find = lambda person: find_customer(storage_session, installation_id=acme.id, person=person)  # noqa: E731
    assert find(Person(id="11", name="x", email="sam@example.com")) is by_id
    assert find(Person(id="99", name="x", email=" Sam@Example.com ")) is by_email
    assert find(Person(id="99", name="x", phone="+15555550101")) is by_phone
    # A caller id as a phone system formats it still finds the customer.
    assert find(Person(id="99", name="x", phone="+1 (555) 555-0101")) is by_phone
    assert find(Person(id="99", name="x", email="nobody@example.com")) is None


def test_a_match_says_how_the_customer_was_found(storage_session: Session) -> None:
    acme = installation(storage_session, "acme")
    by_id = customer(storage_session, acme, helpdesk_user_id="11", email="a@example.com")
    by_email = customer(storage_session, acme, email="sam@example.com")
    by_phone = customer(storage_session, acme, phone="+15555550101")
    match = lambda person: match_customer(storage_session, installation_id=acme.id, person=person)  # noqa: E731
    assert match(Person(id="11", name="x", phone="+15555550101")) == (by_id, MatchedBy.HELPDESK_ID)
    assert match(Person(id="99", name="x", email="sam@example.com")) == (by_email, MatchedBy.EMAIL)
    assert match(Person(id="99", name="x", email="no@example.com", phone="+1 555 555 0101")) == (
        by_phone,
        MatchedBy.PHONE,
    )
    assert match(Person(id="99", name="x")) is None


def test_no_installation_sees_another_installations_customers(storage_session: Session) -> None:
    acme = installation(storage_session, "acme")
    globex = installation(storage_session, "globex")
    customer(storage_session, acme, helpdesk_user_id="11", email="sam@example.com")
    person = Person(id="11", name="Sam", email="sam@example.com")
    assert find_customer(storage_session, installation_id=globex.id, person=person) is None


def test_helpdesk_user_id_is_unique_per_installation(storage_session: Session) -> None:
    acme = installation(storage_session, "acme")
    globex = installation(storage_session, "globex")
    customer(storage_session, acme, helpdesk_user_id="11")
    customer(storage_session, globex, helpdesk_user_id="11")
    with pytest.raises(IntegrityError):
        customer(storage_session, acme, helpdesk_user_id="11")


def test_order_facts_are_derived_with_source_and_time(storage_session: Session) -> None:
    acme = installation(storage_session, "acme")
    sam = customer(storage_session, acme, helpdesk_user_id="11")
    placed = [
        (NOW - timedelta(days=d), cents, cat)
        for d, cents, cat in [(10, 5_000, "Coffee"), (100, 7_000, "Coffee"), (400, 9_000, "Garden")]
    ]
    storage_session.add_all(
        Order(
            installation_id=acme.id,
            customer_id=sam.id,
            external_id=f"o{i}",
            placed_at=at,
            amount_cents=cents,
            category=cat,
            source="import",
        )
        for i, (at, cents, cat) in enumerate(placed)
    )
    assert refresh_order_facts(storage_session, installation_id=acme.id, now=NOW) == 1
    assert refresh_order_facts(storage_session, installation_id=acme.id, now=NOW) == 1
    storage_session.commit()
    stats = order_stats_of(stored_facts_of(storage_session, customer=sam))
    assert stats is not None
    assert (stats.order_count, stats.total_spend_cents) == (3, 21_000)
    assert (stats.orders_12m, stats.spend_12m_cents) == (2, 12_000)
    assert stats.first_order_at == NOW - timedelta(days=400)
    assert stats.last_order_at == NOW - timedelta(days=10)
    assert stats.top_categories == ("Coffee", "Garden")
    assert (stats.source, stats.as_of) == ("orders", NOW)
    facts = storage_session.scalars(sa.select(CustomerFact)).all()
    assert len(facts) == 7  # recomputing replaced the facts rather than adding to them

    storage_session.execute(sa.delete(Order))
    assert refresh_order_facts(storage_session, installation_id=acme.id, now=NOW) == 0
    assert order_stats_of(stored_facts_of(storage_session, customer=sam)) is None


def test_seen_ticket_is_recorded_once_and_counted(storage_session: Session) -> None:
    acme = installation(storage_session, "acme")
    ticket = Ticket(
        id="1001",
        subject="Late parcel",
        status="open",
        channel="email",
        priority="high",
        ticket_type="incident",
        tags=(),
        requester_id="11",
        created_at=NOW,
        updated_at=NOW,
    )
    for _ in range(2):
        record_seen_ticket(
            storage_session, installation_id=acme.id, ticket=ticket, customer_id=None, now=NOW
        )
    seen = storage_session.scalars(sa.select(SeenTicket)).one()
    assert (seen.ticket_id, seen.view_count, seen.subject) == ("1001", 2, "Late parcel")


def test_demo_seed_is_repeatable(storage_session: Session, tmp_path: Path) -> None:
    first = seed_demo(storage_session, instance_path=tmp_path, now=NOW)
    counts = [
        storage_session.scalar(sa.select(sa.func.count()).select_from(m))
        for m in (Customer, Order, CustomerFact)
    ]
    second = seed_demo(storage_session, instance_path=tmp_path, now=NOW)
    again = [
        storage_session.scalar(sa.select(sa.func.count()).select_from(m))
        for m in (Customer, Order, CustomerFact)
    ]
    assert first.id == second.id
    assert counts == again
    assert (counts[0] or 0) >= 30


def durability(connection: sa.Connection) -> object:
    if connection.dialect.name == "sqlite":
        return connection.exec_driver_sql("PRAGMA synchronous").scalar()
    return connection.exec_driver_sql("SHOW synchronous_commit").scalar()


def test_an_unsynced_session_commits_and_leaves_its_connection_durable(
    storage_app: Flask,
) -> None:
    database = db.database(storage_app)
    with database.engine.connect() as connection:
        durable = durability(connection)
    with database.unsynced_session() as session:
        assert durability(session.connection()) in (1, "off"), "its commits do not wait"
        session.add(Installation(platform="demo", account="unsynced", display_name="Unsynced"))
        session.commit()
        assert durability(session.connection()) in (1, "off"), "nor its next transaction's"
        session.commit()
    with database.sessions() as other:
        found = other.scalars(sa.select(Installation).where(Installation.account == "unsynced"))
        assert found.one().platform == "demo"
    # However the block ends, the pooled connections of other sessions wait for the disk.
    with pytest.raises(RuntimeError), database.unsynced_session() as session:
        session.add(Installation(platform="demo", account="flushed", display_name="Flushed"))
        session.flush()
        raise RuntimeError("the caller failed")
    for _ in range(3):
        with database.engine.connect() as connection:
            assert durability(connection) == durable
    # SQLite's session is a transaction; on PostgreSQL each statement committed as it ran.
    with database.sessions() as other:
        flushed = other.scalar(sa.select(sa.func.count()).where(Installation.account == "flushed"))
    assert flushed == (0 if database.engine.dialect.name == "sqlite" else 1)


@pytest.mark.postgres
def test_unsynced_statements_keep_the_urls_own_server_options(postgres_base_url: str) -> None:
    url = create_database(postgres_base_url)
    database = db.Database(url + "?options=-c%20statement_timeout%3D4321")
    try:
        with database.unsynced_session() as session:
            connection = session.connection()
            assert durability(connection) == "off"
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "4321ms"
            # Each statement its own transaction: none is open after one ran.
            raw = connection.connection.driver_connection
            assert (
                raw is not None and raw.info.transaction_status == raw.info.transaction_status.IDLE
            )
    finally:
        database.dispose()
        drop_database(postgres_base_url, url)


@pytest.mark.postgres
def test_a_connection_idle_in_the_pool_is_pinged_and_replaced_when_the_server_dropped_it(
    postgres_base_url: str,
) -> None:
    url = create_database(postgres_base_url)
    engine = sa.create_engine(url, pool_size=1, max_overflow=0)
    admin = sa.create_engine(url, poolclass=NullPool)
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    engine.dialect.do_ping = counted  # type: ignore[method-assign]
    db.ping_when_idle(engine, 0.3)
    try:
        with engine.connect() as connection:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with engine.connect() as connection:  # handed back moments ago: used as it is
            assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() == pid
        assert pings == []
        with admin.connect() as other:  # the server drops it while it sits in the pool
            other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        time.sleep(0.35)
        with engine.connect() as connection:  # idle long enough: pinged, found gone, replaced
            assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
        assert len(pings) == 1
    finally:
        engine.dispose()
        admin.dispose()
        drop_database(postgres_base_url, url)
