"""Worker processes that read histories from the database themselves (a recompute of a large
base), from the SQLite file or the PostgreSQL server, write exactly the rows this process writes
when it reads them and sends them over."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench import segments_data
from plugin.customers import histories, segmentation
from plugin.db import Database, upgrade
from plugin.models import CustomerFact, CustomerSegment, Installation
from tests.bench.test_segments_scale import import_dataset
from tests.postgres_cluster import create_database, drop_database

NOW = segments_data.NOW


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> segments_data.Dataset:
    return segments_data.generate(tmp_path_factory.mktemp("data"), customers=400, orders=4_000)


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    upgrade(database_url)
    database = Database(database_url)
    with database.sessions() as session:
        yield session
    database.dispose()


@pytest.fixture
def second_url(database_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Another fresh database of the same kind as `database_url`'s."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'two.sqlite3'}"
        return
    base_url = request.getfixturevalue("postgres_base_url")
    url = create_database(base_url)
    try:
        yield url
    finally:
        drop_database(base_url, url)


def _rows(session: Session) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every fact and segment row, every column, as stored; a fact's id as counted from the
    first's (PostgreSQL's sequence does not start again when the rows are deleted)."""
    facts = [
        tuple(row)
        for row in session.execute(
            sa.text(
                "SELECT id - (SELECT min(id) FROM customer_facts), installation_id, customer_id,"
                " name, value, source, fetched_at FROM customer_facts"
                " ORDER BY id"
            )
        )
    ]
    segments = [
        tuple(row)
        for row in session.execute(sa.text("SELECT * FROM customer_segments ORDER BY customer_id"))
    ]
    return facts, segments


def _in_workers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Profile small bases in workers, in small ranges; count the ranges workers read."""
    monkeypatch.setattr(segmentation, "PARALLEL_MIN_CUSTOMERS", 10)
    monkeypatch.setattr(segmentation, "PROFILE_CHUNK", 40)
    monkeypatch.setattr(segmentation, "FACT_RANGES", 3)
    with segmentation.profiling_pool(100) as pool:
        if pool is None:
            pytest.skip("no worker processes here (one CPU, or threads running)")
    read: list[int] = []
    real = histories.worker_histories

    def counted(*args: Any, **kwargs: Any) -> Any:
        source = real(*args, **kwargs)
        read.append(source is not None)
        return source

    monkeypatch.setattr(segmentation, "worker_histories", counted)
    return read


def test_a_recompute_whose_workers_read_the_file_writes_the_same_rows(
    session: Session, data: segments_data.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    installation = import_dataset(session, data)
    segmentation.recompute_installation(session, installation, now=NOW, rebuild_all=True)
    in_process = _rows(session)
    assert in_process[0] and in_process[1]
    read = _in_workers(monkeypatch)
    segmentation.recompute_installation(session, installation, now=NOW, rebuild_all=True)
    assert read == [True]
    assert _rows(session) == in_process


def test_a_category_json_escapes_is_written_after_the_last_range(
    session: Session, data: segments_data.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    installation = import_dataset(session, data)
    session.execute(sa.text("UPDATE orders SET category = 'Café \"Noir\"' WHERE id % 7 = 0"))
    session.commit()
    segmentation.recompute_installation(session, installation, now=NOW, rebuild_all=True)
    in_process = _rows(session)
    assert any("Caf" in str(row[4]) for row in in_process[0])
    _in_workers(monkeypatch)
    segmentation.recompute_installation(session, installation, now=NOW, rebuild_all=True)
    assert _rows(session) == in_process


def _stale_base(url: str, data: segments_data.Dataset) -> tuple[Database, Session, int]:
    """A base recomputed, then a few customers' stamps lost."""
    upgrade(url)
    database = Database(url)
    session = database.sessions()
    installation = import_dataset(session, data)
    segmentation.recompute_installation(session, installation, now=NOW, rebuild_all=True)
    # Some customers' stamps gone (their rows are rebuilt, the others' kept).
    session.execute(
        sa.text("UPDATE customer_segments SET derived_stamp = NULL WHERE customer_id % 9 = 0")
    )
    session.commit()
    return database, session, installation.id


def test_stamped_rows_are_kept_and_the_others_rebuilt_alike(
    database_url: str,
    second_url: str,
    data: segments_data.Dataset,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database, session, installation_id = _stale_base(database_url, data)
    installation = session.get(Installation, installation_id)
    assert installation is not None
    report = segmentation.recompute_installation(session, installation, now=NOW)
    in_process = _rows(session)
    session.close()
    database.dispose()
    assert 30 <= report.rebuilt < report.customers

    database, session, installation_id = _stale_base(second_url, data)
    installation = session.get(Installation, installation_id)
    assert installation is not None
    read = _in_workers(monkeypatch)
    again = segmentation.recompute_installation(session, installation, now=NOW)
    assert read == [True]
    assert again.rebuilt == report.rebuilt
    assert _rows(session) == in_process
    session.close()
    database.dispose()


def test_workers_do_not_read_while_the_session_has_uncommitted_writes(
    session: Session, data: segments_data.Dataset
) -> None:
    installation = import_dataset(session, data)
    assert histories.worker_histories(session, installation.id, stamps=False) is not None
    session.execute(sa.text("UPDATE customers SET name = 'Renamed' WHERE id = 1"))
    assert histories.worker_histories(session, installation.id, stamps=False) is None
    session.rollback()
    session.add(
        CustomerFact(
            installation_id=installation.id,
            customer_id=1,
            name="x",
            value=1,
            source="s",
            fetched_at=NOW,
        )
    )
    assert histories.worker_histories(session, installation.id, stamps=False) is None
    session.rollback()
    assert (session.scalar(sa.select(sa.func.count()).select_from(CustomerSegment)) or 0) > 0


def test_an_in_memory_database_is_read_by_this_process() -> None:
    database = Database("sqlite://")
    from plugin.models import Base

    Base.metadata.create_all(database.engine)
    with database.sessions() as session:
        assert histories.worker_histories(session, 1, stamps=False) is None
    database.dispose()


def test_the_segment_row_keys_are_the_rows_keys() -> None:
    from plugin.domain.order_history import CustomerHistory
    from plugin.domain.rfm import FIXED_BANDS
    from plugin.domain.segments import build_segment_profile
    from plugin.domain.tiers import TierThresholds

    profile = build_segment_profile(
        CustomerHistory(),
        thresholds=TierThresholds(
            medium_min_orders=3,
            medium_min_spend_cents=1,
            high_min_orders=9,
            high_min_spend_cents=2,
        ),
        cut_points=FIXED_BANDS,
        personas=(),
        now=NOW,
    )
    row = segmentation._row(1, 2, profile, NOW, None)
    assert tuple(row) == segmentation.SEGMENT_ROW_KEYS


def test_a_recompute_that_sends_the_workers_their_histories_writes_the_same_rows(
    session: Session, data: segments_data.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    installation = import_dataset(session, data)
    segmentation.recompute_installation(session, installation, now=NOW, rebuild_all=True)
    in_process = _rows(session)
    _in_workers(monkeypatch)
    # As when the session has uncommitted writes: this process reads and sends the histories,
    # and writes the order facts range by range meanwhile.
    monkeypatch.setattr(segmentation, "worker_histories", lambda *args, **kwargs: None)
    segmentation.recompute_installation(session, installation, now=NOW, rebuild_all=True)
    assert _rows(session) == in_process
