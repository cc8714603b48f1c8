"""The orders import through PostgreSQL's staging table decides every line as the Python path.

The same files (new orders, changed ones, unchanged ones, orders of unknown customers, by
company id and by email, an email several customers share, an order moving to another
customer, a file's duplicate ids and bad rows), imported in small batches on SQLite, on
PostgreSQL through the Python path and on PostgreSQL through the staging table
(`plugin.customers.staged_orders`): the reports, the orders, the order facts and the segments
are the same.
"""

from __future__ import annotations

import io
import random
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import ORMExecuteState, Session

from plugin import db
from plugin.customers import csv_batches, staged_orders
from plugin.customers.csv_import import import_csv
from plugin.customers.records import order_record
from plugin.customers.store import store_orders
from plugin.models import Customer, CustomerFact, CustomerSegment, Installation, Order
from tests.conftest import build_app, dispose_app
from tests.postgres_cluster import create_database, drop_database

MOMENT = datetime(2026, 11, 24, 12, 0)


def _customers_csv() -> str:
    lines = ["customer_id,name,email"]
    for number in range(1, 41):
        email = "shared@example.com" if number in (5, 6, 7) else f"c{number}@example.com"
        lines.append(f"C-{number},Customer {number},{email}")
    return "\n".join(lines) + "\n"


def _orders_csv(version: int, count: int) -> str:
    """Orders of known and unknown customers, by company id, by email or both, some bad.

    Version 2 keeps about half of version 1's lines as they were and changes the rest.
    """
    lines = ["order_id,customer_id,customer_email,placed_at,amount,category,status,item_count"]
    for number in range(1, count + 1):
        changed = version > 1 and random.Random(-number).random() < 0.5
        chance = random.Random(number * 10 + (version if changed else 1))
        who = chance.random()
        customer = chance.randint(1, 44)  # 41-44 are nobody
        email = "shared@example.com" if customer in (5, 6) else f"c{customer}@example.com"
        if who < 0.55:
            named = f"C-{customer},"
        elif who < 0.75:
            named = f",{email}"
        elif who < 0.85:
            named = f"C-{customer},{email}"
        elif who < 0.92:
            named = f"C-9{customer},c{customer}@example.com"  # unknown id, a known email
        else:
            named = f",nobody{customer}@example.com"
        day = f"2025-{chance.randint(1, 12):02d}-{chance.randint(1, 28):02d}"
        amount = chance.choice(["12.00", "45.50", "80.00", "n/a" if chance.random() < 0.1 else "9"])
        category = chance.choice(["Tea", "Coffee", "", "Cups"])
        status = chance.choice(["paid", "", "refunded"])
        items = chance.choice(["", "1", "3"])
        order = f"O-{number}" if chance.random() > 0.05 else f"O-{max(1, number - 3)}"
        lines.append(f"{order},{named},{day},{amount},{category},{status},{items}")
    return "\n".join(lines) + "\n"


def _snapshot(session: Session) -> dict[str, Any]:
    customers = dict(session.execute(sa.select(Customer.id, Customer.external_id)).all())
    orders = sorted(
        (
            o.external_id,
            customers[o.customer_id],
            o.placed_at,
            o.amount_cents,
            o.discount_code,
            o.category,
            o.status,
            o.fulfillment_status,
            o.tracking_url,
            o.item_count,
            o.source,
        )
        for o in session.scalars(sa.select(Order))
    )
    facts = sorted(
        (customers[f.customer_id], f.name, repr(f.value), f.source)
        for f in session.scalars(sa.select(CustomerFact))
    )
    segments = sorted(
        (customers[s.customer_id], s.tier, s.rfm_segment, s.lifecycle_stage, repr(s.behaviours))
        for s in session.scalars(sa.select(CustomerSegment))
    )
    return {"orders": orders, "facts": facts, "segments": segments}


def _report(report: Any) -> tuple[Any, ...]:
    return (report.summary(), [str(problem) for problem in report.problems])


def _scenario(url: str, folder: Path) -> list[Any]:
    """Import the customers, two orders files (the second changes, moves and adds orders) and
    the second again; the reports and what is stored after each."""
    app = build_app(url, folder / "instance")
    seen: list[Any] = []
    # Changed orders are updated through the session on every path: its hooks (the sidebar's
    # read cache) see the write.
    updates: list[str] = []

    def count_updates(state: ORMExecuteState) -> None:
        table = getattr(state.statement, "table", None)
        if state.is_update and isinstance(table, sa.Table):
            updates.append(table.name)

    sa.event.listen(Session, "do_orm_execute", count_updates)
    try:
        with db.database(app).sessions() as session:
            installation = Installation(platform="zendesk", account="acme", display_name="Acme")
            session.add(installation)
            session.commit()
            files = [
                ("customers", _customers_csv()),
                ("orders", _orders_csv(1, 90)),
                ("orders", _orders_csv(2, 130)),
                ("orders", _orders_csv(2, 130)),
            ]
            for kind, text in files:
                report = import_csv(
                    session,
                    installation.id,
                    io.StringIO(text),
                    kind=kind,  # type: ignore[arg-type]
                    now=MOMENT,
                    batch_size=13,
                )
                seen.append(_report(report))
                seen.append(_snapshot(session))
                seen.append(updates.count("orders"))
    finally:
        sa.event.remove(Session, "do_orm_execute", count_updates)
        dispose_app(app)
    return seen


@pytest.mark.postgres
def test_the_staging_table_decides_every_line_as_the_python_path(
    postgres_base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    store = staged_orders.store

    def counted(session: Session, installation_id: int, records: Any, *, source: str) -> Any:
        batches.append(len(records))
        return store(session, installation_id, records, source=source)

    monkeypatch.setattr(staged_orders, "store", counted)
    results = {}
    monkeypatch.setattr(staged_orders, "STAGED_MIN_ROWS", 10**9)
    results["sqlite"] = _scenario(f"sqlite:///{tmp_path / 'plain.sqlite3'}", tmp_path / "a")
    for name, smallest in (("postgresql, python", 10**9), ("postgresql, staged", 1)):
        monkeypatch.setattr(staged_orders, "STAGED_MIN_ROWS", smallest)
        url = create_database(postgres_base_url)
        try:
            results[name] = _scenario(url, tmp_path / name.replace(", ", "-"))
        finally:
            drop_database(postgres_base_url, url)
    assert len(batches) >= 20  # only the staged run's batches of orders
    assert results["postgresql, python"] == results["sqlite"]
    assert results["postgresql, staged"] == results["sqlite"]
    reports = [step for step in results["sqlite"] if isinstance(step, tuple)]
    # The files hold every kind of line: created, updated, unchanged and refused ones.
    assert any("no customer" in problem for problem in reports[1][1])
    assert any("is also on line" in problem for problem in reports[1][1])
    assert " 0 updated" not in reports[2][0] and " 0 unchanged" not in reports[2][0], reports
    assert ": 0 added, 0 updated" in reports[3][0], reports[3]
    assert [step for step in results["sqlite"] if isinstance(step, int)][2] > 0


def test_a_batch_naming_an_order_twice_takes_the_python_path(storage_app: Any) -> None:
    """store_orders called with the same order twice in a batch (not from a file, which
    refuses the second): the second record updates what the first created, as before."""
    with db.database(storage_app).sessions() as session:
        installation = Installation(platform="zendesk", account="acme", display_name="Acme")
        session.add(installation)
        session.flush()
        session.add(Customer(installation_id=installation.id, external_id="C-1", name="One"))
        session.commit()
        fields = {"order_id": "O-1", "customer_id": "C-1", "placed_at": "2025-01-02"}
        records = [order_record({**fields, "amount": str(amount)}) for amount in range(1, 31)]
        result = store_orders(
            session, installation.id, records, source="api", now=MOMENT, refresh=False
        )
        assert (result.created, result.updated, result.unchanged) == (1, 29, 0)
        assert session.scalars(sa.select(Order.amount_cents)).all() == [3000]


class _Broken(RuntimeError):
    pass


@pytest.mark.postgres
@pytest.mark.parametrize("where", ["storing", "reading"])
def test_an_error_during_a_staged_import_stops_it_cleanly(
    postgres_base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """An error while staged batches are stored (the store's own, or the reading's between
    two stores) ends the import with that error, no thread left and the session usable,
    nothing of the uncommitted batch kept."""
    monkeypatch.setattr(staged_orders, "STAGED_MIN_ROWS", 1)
    calls = {"store": 0, "seen": 0, "created": 0}
    store = staged_orders.store

    def failing_store(session: Session, installation_id: int, records: Any, *, source: str) -> Any:
        calls["store"] += 1
        if where == "storing" and calls["store"] == 3:
            raise _Broken("the server went away")
        fates = store(session, installation_id, records, source=source)
        calls["created"] += fates.created
        return fates

    monkeypatch.setattr(staged_orders, "store", failing_store)
    add = csv_batches.SeenIds.add

    def failing_add(self: csv_batches.SeenIds, ids: Any) -> dict[int, int]:
        calls["seen"] += 1
        if where == "reading" and calls["seen"] == 3:  # after two batches were stored
            raise _Broken("the disk went away")
        return add(self, ids)

    monkeypatch.setattr(csv_batches.SeenIds, "add", failing_add)
    url = create_database(postgres_base_url)
    app = build_app(url, tmp_path / "instance")
    try:
        with db.database(app).sessions() as session:
            installation = Installation(platform="zendesk", account="acme", display_name="Acme")
            session.add(installation)
            session.commit()
            import_csv(
                session,
                installation.id,
                io.StringIO(_customers_csv()),
                kind="customers",
                now=MOMENT,
            )
            calls["seen"] = 0  # the orders file's batches from here
            threads = threading.active_count()
            with pytest.raises(_Broken):
                import_csv(
                    session,
                    installation.id,
                    io.StringIO(_orders_csv(1, 90)),
                    kind="orders",
                    now=MOMENT,
                    batch_size=13,
                )
            assert threading.active_count() == threads
            # The two batches stored were committed (an import commits after its first batch,
            # then after as many rows again); the third's rows are not kept.
            assert session.scalar(sa.select(sa.func.count()).select_from(Order)) == calls["created"]
            assert calls["created"] > 0
            assert calls["store"] >= 2
    finally:
        dispose_app(app)
        drop_database(postgres_base_url, url)
