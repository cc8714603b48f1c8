"""Smoke test for the throwaway PostgreSQL cluster helper."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from tests.postgres_cluster import create_database, drop_database, throwaway_cluster


@pytest.mark.postgres
def test_throwaway_cluster_create_query_drop() -> None:
    started = time.monotonic()
    with throwaway_cluster() as base_url:
        startup = time.monotonic() - started
        print(f"throwaway cluster started in {startup:.2f}s")
        assert base_url.startswith("postgresql+psycopg://")
        url = create_database(base_url)
        assert url != base_url
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                version = conn.execute(text("select version()")).scalar_one()
                assert "PostgreSQL" in version
        finally:
            engine.dispose()
        drop_database(base_url, url)

        admin = create_engine(base_url)
        try:
            with admin.connect() as conn:
                name = url.rsplit("/", 1)[1]
                exists = conn.execute(
                    text("select count(*) from pg_database where datname = :n"),
                    {"n": name},
                ).scalar_one()
                assert exists == 0
        finally:
            admin.dispose()
