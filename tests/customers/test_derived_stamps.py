"""Derived stamps: a recompute skips a customer only when it would write the same rows."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.customers.csv_import import import_csv
from plugin.customers.derived_stamp import Stamper, code_fingerprint
from plugin.customers.orders import refresh_order_facts
from plugin.customers.records import order_record
from plugin.customers.segmentation import recompute_installation
from plugin.customers.store import store_orders
from plugin.models import CustomerSegment, Installation

NOW = datetime(2026, 11, 24, 12, 0)
SINCE = date(2024, 1, 1)


def order(at: datetime, cents: int = 1_000) -> tuple[datetime, int, bool, str | None]:
    return (at, cents, False, "Tea")


def test_a_stamp_holds_for_the_same_orders_rules_and_day_only() -> None:
    orders = [order(datetime(2026, 3, 1, 9)), order(datetime(2026, 10, 2, 9))]
    then = Stamper(rules="r1", now=NOW)
    stored = then.stamp(SINCE, orders)
    assert len(stored) <= 80  # the column's width
    later = Stamper(rules="r1", now=NOW + timedelta(hours=5))
    assert then.still_holds(stored, then.stamp(SINCE, orders), orders)
    assert later.still_holds(stored, later.stamp(SINCE, orders), orders)
    assert not then.still_holds(None, then.stamp(SINCE, orders), orders)
    other_rules = Stamper(rules="r2", now=NOW)
    assert not other_rules.still_holds(stored, other_rules.stamp(SINCE, orders), orders)
    next_day = Stamper(rules="r1", now=NOW + timedelta(days=1))
    assert not next_day.still_holds(stored, next_day.stamp(SINCE, orders), orders)
    changed = [*orders[:1], order(datetime(2026, 10, 2, 9), cents=1_001)]
    assert not then.still_holds(stored, then.stamp(SINCE, changed), changed)
    assert not then.still_holds(stored, then.stamp(date(2024, 1, 2), orders), orders)


@pytest.mark.parametrize(
    "placed_at",
    [
        NOW + timedelta(hours=1),  # placed between the two moments: counted by the later only
        NOW - timedelta(days=365) + timedelta(hours=1),  # leaves the 12 months in between
    ],
)
def test_a_stamp_does_not_hold_across_an_order_at_a_moving_bound(placed_at: datetime) -> None:
    orders = sorted([order(datetime(2026, 6, 1)), order(placed_at)])
    stored = Stamper(rules="r", now=NOW).stamp(SINCE, orders)
    later = Stamper(rules="r", now=NOW + timedelta(hours=2))
    assert not later.still_holds(stored, later.stamp(SINCE, orders), orders)
    earlier = Stamper(rules="r", now=NOW - timedelta(hours=2))
    stored_later = later.stamp(SINCE, orders)
    assert not earlier.still_holds(stored_later, earlier.stamp(SINCE, orders), orders)


def test_the_code_fingerprint_is_steady() -> None:
    assert code_fingerprint() == code_fingerprint()
    assert len(code_fingerprint()) == 16


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def imported(session: Session) -> Installation:
    installation = Installation(platform="zendesk", account="stamps", display_name="Stamps")
    session.add(installation)
    session.commit()
    customers = "customer_id,name\n" + "".join(f"C-{n},Customer {n}\n" for n in range(8))
    orders = "order_id,customer_id,placed_at,amount\n" + "".join(
        f"O-{n},C-{n % 6},2026-{n % 9 + 1:02d}-03,{n + 5}.00\n" for n in range(30)
    )
    for kind, text in (("customers", customers), ("orders", orders)):
        import_csv(session, installation.id, io.StringIO(text), kind=kind, now=NOW)  # type: ignore[arg-type]
    return installation


def stamps(session: Session, installation: Installation) -> dict[int, str | None]:
    session.expire_all()
    return dict(
        session.execute(
            sa.select(CustomerSegment.customer_id, CustomerSegment.derived_stamp).where(
                CustomerSegment.installation_id == installation.id
            )
        ).all()
    )


def test_a_pushed_order_unstamps_its_customer_whom_a_recompute_then_rebuilds(
    session: Session,
) -> None:
    installation = imported(session)
    before = stamps(session, installation)
    assert None not in before.values()  # the import recomputed everyone, stamped
    customer_id = min(before)
    pushed = order_record(
        {"order_id": "PUSHED", "customer_id": "C-0", "placed_at": "2026-11-20", "amount": "9.00"}
    )
    store_orders(session, installation.id, [pushed], source="push", now=NOW)
    session.commit()
    after = stamps(session, installation)
    assert after[customer_id] is None
    assert {k: v for k, v in after.items() if k != customer_id} == {
        k: v for k, v in before.items() if k != customer_id
    }
    report = recompute_installation(session, installation, now=NOW)
    assert report.rebuilt >= 1
    assert None not in stamps(session, installation).values()


def test_order_facts_written_outside_a_profile_pass_unstamp_the_customers(
    session: Session,
) -> None:
    installation = imported(session)
    customer_id = min(stamps(session, installation))
    refresh_order_facts(
        session, installation_id=installation.id, now=NOW, customer_ids=[customer_id]
    )
    session.commit()
    assert stamps(session, installation)[customer_id] is None
    refresh_order_facts(session, installation_id=installation.id, now=NOW)
    session.commit()
    assert set(stamps(session, installation).values()) == {None}
    assert recompute_installation(session, installation, now=NOW).rebuilt == 8


def test_migration_0029_adds_and_removes_the_stamp_column(database_url: str) -> None:
    db.upgrade(database_url)
    engine = db.create_engine(database_url)

    def columns() -> set[str]:
        with engine.connect() as connection:
            return {c["name"] for c in sa.inspect(connection).get_columns("customer_segments")}

    try:
        assert "derived_stamp" in columns()
        command.downgrade(db.alembic_config(database_url), "0028")
        assert "derived_stamp" not in columns()
        assert "computed_at" in columns()
        db.upgrade(database_url)
        assert "derived_stamp" in columns()
    finally:
        engine.dispose()


def test_the_command_says_how_many_it_profiled_and_kept(
    storage_app: Flask, session: Session
) -> None:
    imported(session)  # as of NOW, another day than the command's
    runner = storage_app.test_cli_runner()
    first = runner.invoke(args=["segments", "recompute", "--installation", "stamps"])
    assert first.exit_code == 0, first.output
    assert "Profiled 8 of 8 customers in" in first.output
    again = runner.invoke(args=["segments", "recompute", "--installation", "stamps"])
    assert again.exit_code == 0, again.output
    assert "Profiled 0 of 8 customers (8 already up to date, kept) in" in again.output
