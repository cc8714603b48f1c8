"""Crash-safe derived data: an import killed at any point, run again, gives a clean run's facts.

A kill is simulated by a BaseException (what a kill leaves: no except Exception clean-up
runs) after a given batch, or during the final refresh. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.customers import csv_import, segmentation
from plugin.customers.bulk_writes import insert_rows as real_insert_rows
from plugin.customers.segmentation import recompute_installation
from plugin.customers.segmentation import refresh_customers as real_refresh
from plugin.customers.store import store_order_rows as real_store
from plugin.models import CustomerFact, CustomerSegment, Installation

NOW = datetime(2026, 11, 24, 12, 0)
CUSTOMERS = 60
ORDERS = 400


class Killed(BaseException):
    """Stands for kill -9: no `except Exception` handler sees it."""


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def files() -> tuple[str, str]:
    rng = random.Random(7)
    customers = "customer_id,name\n" + "".join(f"C-{n},Customer {n}\n" for n in range(CUSTOMERS))
    orders = "order_id,customer_id,placed_at,amount,category\n" + "".join(
        f"O-{n},C-{rng.randrange(CUSTOMERS)},2026-{rng.randrange(1, 11):02d}-"
        f"{rng.randrange(1, 28):02d},{rng.randrange(1, 300)}.00,{rng.choice('ABC')}\n"
        for n in range(ORDERS)
    )
    return customers, orders


def new_installation(session: Session, account: str) -> Installation:
    installation = Installation(platform="zendesk", account=account, display_name=account)
    session.add(installation)
    session.commit()
    return installation


def run(session: Session, installation: Installation, kind: str, text: str) -> None:
    csv_import.import_csv(
        session,
        installation.id,
        io.StringIO(text),
        kind=kind,  # type: ignore[arg-type]
        now=NOW,
        batch_size=25,
    )


def derived(session: Session, installation: Installation) -> tuple[set[Any], set[Any]]:
    """The installation's order facts and segments, by company id, without timestamps."""
    session.expire_all()
    facts = {
        (row.customer.external_id, row.name, str(row.value))
        for row in session.scalars(
            sa.select(CustomerFact).where(CustomerFact.installation_id == installation.id)
        )
    }
    segments = {
        (s.customer_id - min_id(session, installation), s.tier, s.rfm_segment, s.lifecycle_stage)
        for s in session.scalars(
            sa.select(CustomerSegment).where(CustomerSegment.installation_id == installation.id)
        )
    }
    return facts, segments


def min_id(session: Session, installation: Installation) -> int:
    return int(
        session.scalar(
            sa.select(sa.func.min(CustomerSegment.customer_id)).where(
                CustomerSegment.installation_id == installation.id
            )
        )
        or 0
    )


def clean(session: Session) -> tuple[set[Any], set[Any]]:
    installation = new_installation(session, "clean")
    customers, orders = files()
    run(session, installation, "customers", customers)
    run(session, installation, "orders", orders)
    return derived(session, installation)


@pytest.mark.parametrize("kill_after", [1, 5, 11])
def test_an_orders_import_killed_after_a_batch_is_repaired_by_running_it_again(
    session: Session, monkeypatch: pytest.MonkeyPatch, kill_after: int
) -> None:
    expected = clean(session)
    installation = new_installation(session, "crashed")
    customers, orders = files()
    run(session, installation, "customers", customers)
    monkeypatch.setattr(csv_import, "COMMIT_ROWS", 25)
    monkeypatch.setattr(csv_import, "SQLITE_COMMIT_ROWS", 25)
    batches = 0

    def store_then_die(*args: Any, **kwargs: Any) -> Any:
        nonlocal batches
        batches += 1
        if batches > kill_after:
            raise Killed
        return real_store(*args, **kwargs)

    monkeypatch.setattr(csv_import, "store_order_rows", store_then_die)
    with pytest.raises(Killed):
        run(session, installation, "orders", orders)
    session.rollback()
    assert derived(session, installation) != expected  # the kill left facts missing
    monkeypatch.setattr(csv_import, "store_order_rows", real_store)
    run(session, installation, "orders", orders)
    assert derived(session, installation) == expected


def test_a_kill_during_the_final_refresh_is_repaired_by_a_rerun_or_a_recompute(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The refresh of the customers touched, chunk by chunk (a file naming fewer than half
    # of them; here every file, the clean run's too).
    monkeypatch.setattr(csv_import, "RECOMPUTE_SHARE", 2.0)
    expected = clean(session)
    customers, orders = files()
    half = orders.splitlines(keepends=True)
    first_half = "".join(half[: ORDERS // 2 + 1])
    for account, repair in (("rerun", "import"), ("recompute", "recompute")):
        installation = new_installation(session, account)
        run(session, installation, "customers", customers)
        run(session, installation, "orders", first_half)  # facts of half the orders
        monkeypatch.setattr(csv_import, "REFRESH_CHUNK", 10)
        chunks = 0

        def refresh_then_die(*args: Any, **kwargs: Any) -> Any:
            nonlocal chunks
            chunks += 1
            if chunks > 2:
                raise Killed
            return real_refresh(*args, **kwargs)

        monkeypatch.setattr(csv_import, "refresh_customers", refresh_then_die)
        with pytest.raises(Killed):
            run(session, installation, "orders", orders)
        session.rollback()
        monkeypatch.setattr(csv_import, "refresh_customers", real_refresh)
        assert derived(session, installation) != expected  # counts from half the orders
        if repair == "import":
            run(session, installation, "orders", orders)
            assert derived(session, installation) == expected
        else:
            recompute_installation(session, installation, now=NOW)
            # A recompute measures the base anew (its own cut points), so compare the facts.
            assert derived(session, installation)[0] == expected[0]


@pytest.mark.parametrize("kill_at_write", [1, 2, 3])
def test_a_kill_during_the_imports_full_recompute_is_repaired_by_a_rerun_or_a_recompute(
    session: Session, monkeypatch: pytest.MonkeyPatch, kill_at_write: int
) -> None:
    """A file naming most customers ends with a full recompute (one transaction): killed
    while it writes, the rerun recomputes as the clean run did, rebuilding the rows whose
    stamps no longer hold (the first half's), and gives the clean run's facts and segments."""
    expected = clean(session)
    customers, orders = files()
    half = orders.splitlines(keepends=True)
    first_half = "".join(half[: ORDERS // 2 + 1])
    for account, repair in (("rerun", "import"), ("recompute", "recompute")):
        installation = new_installation(session, f"{account}-{kill_at_write}")
        run(session, installation, "customers", customers)
        run(session, installation, "orders", first_half)  # stamped rows of the first half
        writes = 0

        def write_then_die(*args: Any, **kwargs: Any) -> Any:
            nonlocal writes
            writes += 1
            if writes >= kill_at_write:
                raise Killed
            return real_insert_rows(*args, **kwargs)

        monkeypatch.setattr(segmentation, "WRITE_BATCH", 10)
        monkeypatch.setattr(segmentation, "insert_rows", write_then_die)
        with pytest.raises(Killed):
            run(session, installation, "orders", orders)
        session.rollback()
        monkeypatch.setattr(segmentation, "insert_rows", real_insert_rows)
        assert derived(session, installation) != expected  # from half the orders
        if repair == "import":
            run(session, installation, "orders", orders)
            assert derived(session, installation) == expected
        else:
            recompute_installation(session, installation, now=NOW)
            assert derived(session, installation) == expected


def test_a_recompute_keeps_only_rows_whose_stamps_hold(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an import that recomputed, a recompute derives nobody again; after an order is
    added, a tier bar changed or with rebuild_all, it derives again who it must, and the rows
    are what a recompute deriving everyone writes."""
    installation = new_installation(session, "stamps")
    customers, orders = files()
    run(session, installation, "customers", customers)
    run(session, installation, "orders", orders)
    kept = recompute_installation(session, installation, now=NOW)
    assert (kept.customers, kept.rebuilt) == (CUSTOMERS, 0)
    later = recompute_installation(session, installation, now=NOW.replace(hour=18))
    assert later.rebuilt < CUSTOMERS  # the same day: only those with an order near a bound
    expected = derived(session, installation)
    assert recompute_installation(session, installation, now=NOW, rebuild_all=True).rebuilt == (
        CUSTOMERS
    )
    assert derived(session, installation) == expected
    next_day = recompute_installation(session, installation, now=NOW.replace(day=25))
    assert next_day.rebuilt == CUSTOMERS
    # One more order: its customer (and, if the cut points moved, everyone) derived again.
    run(session, installation, "orders", orders + "O-NEW,C-3,2026-11-20,12.00,A\n")
    quiet = recompute_installation(session, installation, now=NOW)
    assert quiet.rebuilt == 0  # the import's refresh recomputed, as of the same moment
    installation.tier_medium_min_orders += 1
    session.commit()
    bars = recompute_installation(session, installation, now=NOW)
    assert bars.rebuilt == CUSTOMERS
    stamps = session.scalars(
        sa.select(CustomerSegment.derived_stamp).where(
            CustomerSegment.installation_id == installation.id
        )
    ).all()
    assert len(stamps) == CUSTOMERS and None not in stamps
