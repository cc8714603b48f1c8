"""Worker processes that read histories from the SQLite file themselves (a recompute of a large
base) write exactly the rows this process writes when it reads them and sends them over."""

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

NOW = segments_data.NOW


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> segments_data.Dataset:
    return segments_data.generate(tmp_path_factory.mktemp("data"), customers=400, orders=4_000)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    url = f"sqlite:///{tmp_path / 'workers.sqlite3'}"
    upgrade(url)
    database = Database(url)
    with database.sessions() as session:
        yield session
    database.dispose()


def _rows(session: Session) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every fact and segment row, every column (ids included), as stored."""
    facts = [
        tuple(row) for row in session.execute(sa.text("SELECT * FROM customer_facts ORDER BY id"))
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
    real = histories.file_histories

    def counted(*args: Any, **kwargs: Any) -> Any:
        source = real(*args, **kwargs)
        read.append(source is not None)
        return source

    monkeypatch.setattr(segmentation, "file_histories", counted)
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


def _stale_base(path: Path, data: segments_data.Dataset) -> tuple[Database, Session, int]:
    """A base recomputed, then a few customers' stamps lost."""
    url = f"sqlite:///{path}"
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
    tmp_path: Path, data: segments_data.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    database, session, installation_id = _stale_base(tmp_path / "one.sqlite3", data)
    installation = session.get(Installation, installation_id)
    assert installation is not None
    report = segmentation.recompute_installation(session, installation, now=NOW)
    in_process = _rows(session)
    session.close()
    database.dispose()
    assert 30 <= report.rebuilt < report.customers

    database, session, installation_id = _stale_base(tmp_path / "two.sqlite3", data)
    installation = session.get(Installation, installation_id)
    assert installation is not None
    read = _in_workers(monkeypatch)
    again = segmentation.recompute_installation(session, installation, now=NOW)
    assert read == [True]
    assert again.rebuilt == report.rebuilt
    assert _rows(session) == in_process
    session.close()
    database.dispose()


def test_workers_do_not_read_the_file_while_the_session_has_uncommitted_writes(
    session: Session, data: segments_data.Dataset
) -> None:
    installation = import_dataset(session, data)
    assert histories.file_histories(session, installation.id, stamps=False) is not None
    session.execute(sa.text("UPDATE customers SET name = 'Renamed' WHERE id = 1"))
    assert histories.file_histories(session, installation.id, stamps=False) is None
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
    assert histories.file_histories(session, installation.id, stamps=False) is None
    session.rollback()
    assert (session.scalar(sa.select(sa.func.count()).select_from(CustomerSegment)) or 0) > 0


def test_an_in_memory_database_is_read_by_this_process() -> None:
    database = Database("sqlite://")
    from plugin.models import Base

    Base.metadata.create_all(database.engine)
    with database.sessions() as session:
        assert histories.file_histories(session, 1, stamps=False) is None
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
