"""The scale benchmark runs, in small, so it cannot rot; and the bulk paths it exercises agree
with the per-customer ones. Structure and row counts only, never timings."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench import segments_data, segments_scale
from plugin.customers import bulk_work, segmentation
from plugin.customers.csv_import import CustomerIds, import_csv
from plugin.customers.orders import refresh_order_facts
from plugin.db import Database, upgrade
from plugin.models import CustomerFact, CustomerSegment, Installation

CUSTOMERS = 2_000
ORDERS = 20_000


def test_a_tiny_run_imports_recomputes_and_refreshes_one_customer(tmp_path: Path) -> None:
    results = segments_scale.run(
        customers=CUSTOMERS,
        orders=ORDERS,
        databases=("sqlite",),
        separate_processes=False,
        workdir=str(tmp_path / "not" / "there" / "yet"),  # created by the bench
    )
    assert results["data"]["customers"] == CUSTOMERS
    figures = results["databases"]["sqlite"]
    imports = figures["import"]
    for kind, rows in (("customers", CUSTOMERS), ("orders", ORDERS)):
        assert imports[kind]["rows"] == imports[kind]["created"] == rows
        assert imports[kind]["refused"] == 0
        assert imports[kind]["rows_per_second"] > 0
    assert figures["recompute"]["customers"] == CUSTOMERS
    buyers = figures["recompute"]["buyers"]
    assert 0 < buyers < CUSTOMERS  # a few prospects never order
    assert figures["rows"] == {
        "customers": CUSTOMERS,
        "orders": ORDERS + 1,  # the pushed order
        "customer_facts": 7 * buyers,
        "customer_segments": CUSTOMERS,
        "segment_baselines": 1,
    }
    refresh = figures["single_refresh"]
    assert refresh["orders_created"] == 1
    assert refresh["segment_rows_changed"] == 1
    assert refresh["only_that_customer_changed"] is True
    assert refresh["segment_before"] != refresh["segment_after"]
    assert set(figures["peak_rss_mb"]) >= {"after_import_orders", "after_recompute"}
    assert figures["database_mb"] > 0


def test_the_data_is_deterministic_and_listed_by_date(tmp_path: Path) -> None:
    first = segments_data.generate(tmp_path / "a", customers=300, orders=3_000)
    second = segments_data.generate(tmp_path / "b", customers=300, orders=3_000)
    for name in ("customers_csv", "orders_csv"):
        assert Path(getattr(first, name)).read_bytes() == Path(getattr(second, name)).read_bytes()
    with open(first.orders_csv, encoding="utf-8", newline="") as stream:
        orders = list(csv.DictReader(stream))
    assert len(orders) == 3_000
    placed = [order["placed_at"] for order in orders]
    assert placed == sorted(placed)
    assert len({order["order_id"] for order in orders}) == 3_000
    assert any(order["discount_code"] for order in orders)
    assert any(order["customer_email"] and not order["customer_id"] for order in orders)


def test_order_counts_are_zipf_like_and_add_up() -> None:
    import random

    counts = segments_data.order_counts(random.Random(1), 10_000, 100_000)
    assert sum(counts) == 100_000
    buyers = sorted(count for count in counts if count)
    assert buyers[0] == 1 and buyers[len(buyers) // 2] <= 4 and buyers[-1] > 100


def test_customer_ids_keep_a_set_in_order() -> None:
    ids = CustomerIds([9, 3, 1_000, 3, 0])
    ids.update([17, 9])
    assert (list(ids), len(ids)) == ([0, 3, 9, 17, 1_000], 5)
    assert list(ids.chunks(2)) == [[0, 3], [9, 17], [1_000]]


# --- The bulk paths agree with the per-customer ones. ------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> segments_data.Dataset:
    return segments_data.generate(tmp_path_factory.mktemp("data"), customers=600, orders=6_000)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    url = f"sqlite:///{tmp_path / 'scale.sqlite3'}"
    upgrade(url)
    database = Database(url)
    with database.sessions() as session:
        yield session
    database.dispose()


def import_dataset(session: Session, data: segments_data.Dataset) -> Installation:
    installation = Installation(platform="zendesk", account="scale", display_name="Scale")
    session.add(installation)
    session.commit()
    for kind, path in (("customers", data.customers_csv), ("orders", data.orders_csv)):
        with open(path, encoding="utf-8", newline="") as stream:
            import_csv(session, installation.id, stream, kind=kind, now=segments_data.NOW)  # type: ignore[arg-type]
    return installation


def _facts(session: Session) -> dict[tuple[int, str], Any]:
    return {
        (fact.customer_id, fact.name): fact.value
        for fact in session.scalars(
            sa.select(CustomerFact).execution_options(populate_existing=True)
        )
    }


def _segments(session: Session) -> dict[int, tuple[Any, ...]]:
    columns = [c for c in CustomerSegment.__table__.columns if c.name != "computed_at"]
    return {row[0]: tuple(row) for row in session.execute(sa.select(*columns))}


def test_facts_drawn_with_the_profiles_equal_the_aggregates(
    session: Session, data: segments_data.Dataset
) -> None:
    installation = import_dataset(session, data)
    from_import = _facts(session)
    assert from_import
    refresh_order_facts(session, installation_id=installation.id, now=segments_data.NOW)
    session.commit()
    assert _facts(session) == from_import


def test_profiling_in_worker_processes_gives_the_same_rows(
    session: Session, data: segments_data.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    installation = import_dataset(session, data)
    segmentation.recompute_installation(session, installation, now=segments_data.NOW)
    in_process = _segments(session)
    monkeypatch.setattr(segmentation, "PARALLEL_MIN_CUSTOMERS", 10)
    monkeypatch.setattr(segmentation, "PROFILE_CHUNK", 50)
    with segmentation.profiling_pool(len(in_process)) as pool:
        if pool is None:
            pytest.skip("no worker processes here (one CPU, or threads running)")
    segmentation.recompute_installation(session, installation, now=segments_data.NOW)
    assert _segments(session) == in_process


def test_an_import_that_fails_midway_refreshes_what_it_committed(
    session: Session, data: segments_data.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    installation = Installation(platform="zendesk", account="scale", display_name="Scale")
    session.add(installation)
    session.commit()
    with open(data.customers_csv, encoding="utf-8", newline="") as stream:
        import_csv(session, installation.id, stream, kind="customers", now=segments_data.NOW)
    monkeypatch.setattr("plugin.customers.csv_import.COMMIT_ROWS", 1_000)
    monkeypatch.setattr("plugin.customers.csv_import.SQLITE_COMMIT_ROWS", 1_000)
    text = Path(data.orders_csv).read_text(encoding="utf-8")
    calls = 0
    real_store = __import__(
        "plugin.customers.store", fromlist=["store_order_rows"]
    ).store_order_rows

    def failing_store(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise RuntimeError("the database went away")
        return real_store(*args, **kwargs)

    monkeypatch.setattr("plugin.customers.csv_import.store_order_rows", failing_store)
    with pytest.raises(RuntimeError):
        import_csv(
            session,
            installation.id,
            io.StringIO(text),
            kind="orders",
            now=segments_data.NOW,
            batch_size=500,
        )
    # Three batches of 500 went in, two commits' worth (1,000 rows) stayed...
    stored = session.scalar(sa.text("SELECT count(*) FROM orders"))
    assert stored == 1_000
    # ...and every customer they name has order facts.
    owners = session.scalar(sa.text("SELECT count(DISTINCT customer_id) FROM orders"))
    with_facts = session.scalar(
        sa.text("SELECT count(DISTINCT customer_id) FROM customer_facts WHERE source = 'orders'")
    )
    assert owners == with_facts


def test_validating_in_worker_processes_reports_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with bulk_work.worker_pool() as pool:
        if pool is None:
            pytest.skip("no worker processes here (one CPU, or threads running)")
    path = tmp_path / "customers.csv"
    rows = [f"C-{n},Customer {n},c{n}@example.com\n" for n in range(50)]
    rows[7] = "C-7,Customer 7,not-an-email\n"
    rows[20] = ",No id,x@example.com\n"
    rows[33] = "C-33,Too,many@example.com,fields\n"
    path.write_text("customer_id,name,email\n" + "".join(rows), encoding="utf-8")
    reports = []
    for minimum in (2**40, 0):  # in this process, then in workers
        monkeypatch.setattr("plugin.customers.csv_import.PARALLEL_MIN_BYTES", minimum)
        url = f"sqlite:///{tmp_path / f'{minimum}.sqlite3'}"
        upgrade(url)
        database = Database(url)
        with database.sessions() as session:
            installation = Installation(platform="zendesk", account="a", display_name="A")
            session.add(installation)
            session.commit()
            with open(path, encoding="utf-8", newline="") as stream:
                report = import_csv(
                    session,
                    installation.id,
                    stream,
                    kind="customers",
                    now=segments_data.NOW,
                    batch_size=8,
                )
        database.dispose()
        reports.append(report)
    in_process, in_workers = reports
    assert in_workers == in_process
    assert (in_process.rows, in_process.created) == (50, 47)
    assert [problem.line for problem in in_process.problems] == [9, 22, 35]
