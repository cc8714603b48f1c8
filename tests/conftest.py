"""Fixtures: an app on a fresh database per test, the seeded demo copied into it, a throwaway
PostgreSQL cluster, and the helpdesk clients' HTTP fixtures (a strict `responses` mock, a
hand-moved clock, a session).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session

from plugin import create_app, db
from plugin.config import Settings
from plugin.helpdesks.http import new_session
from plugin.models import Base, Installation
from tests.clock import FakeClock
from tests.postgres_cluster import create_database, drop_database, throwaway_cluster
from tests.seeded_demo import SeededDemos

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
# A test's lines for the run's log (the benchmarks' figures), recorded with `record_property`:
# under pytest-xdist what a test prints stays in its worker, while its report comes back.
FOR_THE_LOG = "for_the_log"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the lines tests recorded for the run's log."""
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", None) != "call":
                continue
            for name, lines in report.user_properties:
                if name == FOR_THE_LOG:
                    terminalreporter.write_line(str(lines))


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "secret_key": TEST_SECRET,
        "database_url": database_url,
        "demo_enabled": True,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def postgres_base_url() -> Iterator[str]:
    """Start one PostgreSQL cluster for the session; in CI its absence is a failure."""
    try:
        cluster = throwaway_cluster()
        base_url = cluster.__enter__()
    except RuntimeError as missing:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {missing}")
        pytest.skip(f"PostgreSQL is not available: {missing}")
    try:
        yield base_url
    finally:
        cluster.__exit__(None, None, None)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: SQLite in a file, or a new database on the PostgreSQL cluster."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    base_url = request.getfixturevalue("postgres_base_url")
    url = create_database(base_url)
    try:
        yield url
    finally:
        drop_database(base_url, url)


def dispose_app(app: Flask) -> None:
    """Close what an app holds open: its database pool, helpdesk threads and sessions."""
    app.extensions["regulars.helpdesks"].close()
    db.database(app).dispose()


def build_app(database_url: str, instance_path: Path, **overrides: object) -> Flask:
    app = create_app(make_settings(database_url, **overrides), instance_path=str(instance_path))
    app.config["TESTING"] = True
    Base.metadata.create_all(db.database(app).engine)
    return app


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """The app on a fresh SQLite database."""
    app = build_app(f"sqlite:///{tmp_path / 'app.sqlite3'}", tmp_path / "instance")
    yield app
    dispose_app(app)


@pytest.fixture
def storage_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app on a fresh database of each kind: SQLite and PostgreSQL."""
    app = build_app(database_url, tmp_path / "instance")
    yield app
    dispose_app(app)


@pytest.fixture
def storage_session(storage_app: Flask) -> Iterator[Session]:
    """A session on a fresh database of each kind: SQLite and PostgreSQL."""
    with db.database(storage_app).sessions() as session:
        yield session


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    with db.database(app).sessions() as session:
        yield session


@pytest.fixture(scope="session")
def seeded_demos(tmp_path_factory: pytest.TempPathFactory) -> SeededDemos:
    """The demo seeded once per session (per `now` and backend), for tests to copy."""
    return SeededDemos(tmp_path_factory.mktemp("seeded-demos"))


@pytest.fixture
def demo_installation(app: Flask, session: Session, seeded_demos: SeededDemos) -> Installation:
    """The demo installation with its sample data loaded."""
    return seeded_demos.load(app, session)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    """Mocked HTTP answers; every one registered must be asked for."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """The pooled session the helpdesk clients use."""
    with new_session() as pooled:
        yield pooled
