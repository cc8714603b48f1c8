"""A big orders import on SQLite builds the history index again instead of inserting into it.

The index is dropped inside each of the import's write transactions and created again before
it commits (`plugin.customers.history_index`): what the import stores is what it stores with
the index in place; the index is there after it, as the model defines it, whether the import
ends, fails or is killed; other connections keep it meanwhile. The files are small, so the
thresholds are lowered to make them count as big.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.customers import csv_import, history_index
from plugin.customers.store import store_order_rows as real_store
from plugin.models import Customer, CustomerFact, Installation, Order
from tests.customers.test_import_repair import (
    NOW,
    Killed,
    derived,
    files,
    new_installation,
    run,
)

INDEX_SQL = sa.text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name")


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        if session.get_bind().dialect.name != "sqlite":
            pytest.skip("the history index is rebuilt on SQLite only")
        yield session


@pytest.fixture
def rebuilding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every orders import counts as big; transactions of 25 rows until the table grows."""
    monkeypatch.setattr(history_index, "REBUILD_MIN_ROWS", 0)
    monkeypatch.setattr(csv_import, "SQLITE_COMMIT_ROWS", 25)


def index_sql(session: Session) -> str | None:
    return session.execute(INDEX_SQL, {"name": history_index.NAME}).scalar()


def orders_of(session: Session, installation: Installation) -> set[tuple[Any, ...]]:
    """The installation's orders by company ids, without row ids."""
    return {
        (order.external_id, customer, order.placed_at, order.amount_cents, order.category)
        for order, customer in session.execute(
            sa.select(Order, Customer.external_id)
            .join(Customer, Customer.id == Order.customer_id)
            .where(Order.installation_id == installation.id)
        )
    }


def spy_on_batches(
    monkeypatch: pytest.MonkeyPatch, each: Any, *, die_after: int | None = None
) -> list[Any]:
    """Call `each(session)` after every batch the import stores; raise Killed after some."""
    seen: list[Any] = []

    def store(session: Session, *args: Any, **kwargs: Any) -> Any:
        if die_after is not None and len(seen) >= die_after:
            raise Killed
        stored = real_store(session, *args, **kwargs)
        seen.append(each(session))
        return stored

    monkeypatch.setattr(csv_import, "store_order_rows", store)
    return seen


def test_a_big_orders_import_drops_the_index_while_storing_and_creates_it_as_defined(
    session: Session, rebuilding: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    defined = index_sql(session)
    assert defined is not None
    installation = new_installation(session, "big")
    customers, orders = files()
    run(session, installation, "customers", customers)
    # Seen by the batch after the one whose write let the import drop it.
    present = spy_on_batches(monkeypatch, lambda s: index_sql(s) is not None)
    run(session, installation, "orders", orders)
    assert present[0] is True and False in present
    assert index_sql(session) == defined
    plan = session.execute(
        sa.text("EXPLAIN QUERY PLAN SELECT placed_at FROM orders WHERE customer_id = 1")
    ).all()
    assert history_index.NAME in str(plan)


def test_rebuilding_stores_what_inserting_into_the_index_stores(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    customers, orders = files()
    installations = []
    for account, minimum in (("inserting", 10**9), ("rebuilding", 0)):
        monkeypatch.setattr(history_index, "REBUILD_MIN_ROWS", minimum)
        installation = new_installation(session, account)
        run(session, installation, "customers", customers)
        run(session, installation, "orders", orders)
        installations.append(installation)
    inserting, rebuilt = installations
    assert orders_of(session, rebuilt) == orders_of(session, inserting)
    assert len(orders_of(session, rebuilt)) == 400
    assert derived(session, rebuilt) == derived(session, inserting)


def test_small_imports_and_dry_runs_leave_the_index_alone(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    installation = new_installation(session, "small")
    customers, orders = files()
    run(session, installation, "customers", customers)
    present = spy_on_batches(monkeypatch, lambda s: index_sql(s) is not None)
    run(session, installation, "orders", orders)  # 400 rows: under REBUILD_MIN_ROWS
    assert present and all(present)
    monkeypatch.setattr(history_index, "REBUILD_MIN_ROWS", 0)
    present.clear()
    csv_import.import_csv(
        session, installation.id, io.StringIO(orders), kind="orders", now=NOW, dry_run=True
    )
    assert present and all(present)


def test_other_connections_keep_the_index_while_the_import_runs(
    storage_app: Flask, session: Session, rebuilding: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    installation = new_installation(session, "read")
    customers, orders = files()
    run(session, installation, "customers", customers)
    database = db.database(storage_app)

    def seen_by_another_connection(own: Session) -> tuple[bool, bool, int, int]:
        with database.sessions() as other:
            plan = other.execute(
                sa.text("EXPLAIN QUERY PLAN SELECT placed_at FROM orders WHERE customer_id = 1")
            ).all()
            return (
                index_sql(own) is not None,
                history_index.NAME in str(plan),
                int(other.scalar(sa.select(sa.func.count()).select_from(Order)) or 0),
                int(own.scalar(sa.select(sa.func.count()).select_from(Order)) or 0),
            )

    seen = spy_on_batches(monkeypatch, seen_by_another_connection)
    run(session, installation, "orders", orders)
    assert any(not own for own, *_ in seen)  # dropped in the import's transaction
    assert all(other for _own, other, *_ in seen)  # never for the other connection
    # The other connection reads the last commit: not the open transaction's orders.
    assert all(theirs <= ours for *_, theirs, ours in seen)
    assert any(theirs < ours for *_, theirs, ours in seen)


@pytest.mark.parametrize("die_after", [1, 2, 7, 13])
def test_a_killed_import_leaves_the_index_and_running_it_again_gives_a_clean_runs_facts(
    session: Session, rebuilding: None, monkeypatch: pytest.MonkeyPatch, die_after: int
) -> None:
    defined = index_sql(session)
    customers, orders = files()
    crashed = new_installation(session, "crashed")
    run(session, crashed, "customers", customers)
    # The table starts empty: transactions of 25, 75, 300 rows (the rest), the first two
    # committed before the kill after 7 or 13 batches, one with the index dropped after 2.
    spy_on_batches(monkeypatch, lambda s: None, die_after=die_after)
    with pytest.raises(Killed):
        run(session, crashed, "orders", orders)
    session.rollback()  # what SQLite does with a killed process's open transaction
    assert index_sql(session) == defined
    monkeypatch.setattr(csv_import, "store_order_rows", real_store)
    run(session, crashed, "orders", orders)
    clean = new_installation(session, "clean")
    run(session, clean, "customers", customers)
    run(session, clean, "orders", orders)
    assert derived(session, crashed) == derived(session, clean)
    assert orders_of(session, crashed) == orders_of(session, clean)
    assert index_sql(session) == defined


def test_a_failed_import_rolls_the_drop_back(
    session: Session, rebuilding: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    defined = index_sql(session)
    installation = new_installation(session, "failed")
    customers, orders = files()
    run(session, installation, "customers", customers)

    def fail_once_dropped(own: Session) -> None:
        if index_sql(own) is None:
            raise RuntimeError("disk full")

    spy_on_batches(monkeypatch, fail_once_dropped)
    with pytest.raises(RuntimeError):
        run(session, installation, "orders", orders)
    assert index_sql(session) == defined


def test_unchanged_orders_stored_while_the_index_is_dropped_still_repair_stale_facts(
    session: Session, rebuilding: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their customers' facts are checked once the index is back, as they are per batch."""
    monkeypatch.setattr(history_index, "REBUILD_SHARE", 0)
    customers, orders = files()
    header, *lines = orders.splitlines(keepends=True)
    # A third of the customers' orders (a full recompute would repair everyone), a new one first.
    few = [line for line in lines if int(line.split(",")[1][2:]) < 20]
    again = header + few[0].replace(few[0].split(",")[0], "O-new", 1) + "".join(few)
    installations = []
    for account in ("clean", "stale"):
        installation = new_installation(session, account)
        run(session, installation, "customers", customers)
        run(session, installation, "orders", orders)
        installations.append(installation)
    clean, stale = installations
    # What a kill during the final refresh can leave: some customers' facts missing.
    session.execute(
        sa.delete(CustomerFact).where(
            CustomerFact.installation_id == stale.id,
            CustomerFact.customer_id.in_(
                sa.select(Customer.id).where(
                    Customer.installation_id == stale.id,
                    Customer.external_id.in_([f"C-{n}" for n in range(1, 20, 2)]),
                )
            ),
        )
    )
    session.commit()
    assert derived(session, stale) != derived(session, clean)
    present = spy_on_batches(monkeypatch, lambda s: index_sql(s) is not None)
    for installation in (clean, stale):
        run(session, installation, "orders", again)
    assert False in present
    assert derived(session, stale) == derived(session, clean)


def test_a_files_rows_are_estimated_from_its_size_and_first_lines(tmp_path: Any) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("".join(f"O-{n:06d},C-{n % 97},2026-01-01,1.00\n" for n in range(100_000)))
    with open(path, encoding="utf-8", newline="") as stream:
        assert 99_000 <= history_index.estimated_rows(stream) <= 101_000
    assert history_index.estimated_rows(io.StringIO("header\na\nb\n")) == 3
    # Neither a file nor text in memory: never counted as big.
    assert history_index.estimated_rows(io.TextIOWrapper(io.BytesIO(b"a\nb\n"))) == 0
