"""The seeded demo for tests: seeded once per session (per `now` and per backend), then copied
into each test's own database, so a test gets the real seed at the cost of a file copy.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from plugin import db
from plugin.clock import utcnow
from plugin.demo.seed import ensure_demo_installation, seed_demo
from plugin.demo.signing import KEY_FILE
from plugin.models import Base, Installation
from tests.postgres_cluster import clone_database, create_database, drop_database

# A seed on the wall clock is copied for this long only, so that a test sees it as it saw the
# seed it made itself a moment before: the sidebar says "updated just now" of data seeded in
# the last 90 seconds, and the seed counts what falls in rolling windows (tickets of the last
# 30 days, orders of the last year) as of its `now`.
LIVE_SEED_MAX_AGE_SECONDS = 30.0


@dataclass(frozen=True)
class _Template:
    url: str
    instance: Path
    built_at: float  # time.monotonic()


class SeededDemos:
    """Seeded demo databases, one per `now` and backend, each built at first use.

    They live as long as the session's temporary folder and its throwaway PostgreSQL cluster.
    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._templates: dict[tuple[str, date | datetime], _Template] = {}
        self._builds = 0

    def load(self, app: Flask, session: Session, *, now: datetime | None = None) -> Installation:
        """Fill the app's new database with the demo as seeded at `now` (None: the wall clock).

        The database is replaced whole, so the app must not have written to it yet. Return the
        demo installation in `session`.
        """
        database = db.database(app)
        template = self._template(database.url, now)
        instance = Path(app.instance_path)
        if database.url.startswith("sqlite"):
            copy_sqlite(_sqlite_file(template.url), _sqlite_file(database.url))
        else:
            database.dispose()  # a database with open connections cannot be replaced
            clone_database(_cluster_url(database.url), template.url, database.url)
        # The demo installation holds the public half of the key the demo signs launches with.
        if not (instance / KEY_FILE).exists():
            instance.mkdir(parents=True, exist_ok=True)
            shutil.copy(template.instance / KEY_FILE, instance / KEY_FILE)
        return ensure_demo_installation(session, instance_path=instance)

    def _template(self, url: str, now: datetime | None) -> _Template:
        backend = _cluster_url(url) if not url.startswith("sqlite") else "sqlite"
        live = now is None
        seeded_at = utcnow() if now is None else now
        key = (backend, seeded_at.date() if live else seeded_at)
        template = self._templates.get(key)
        if template is not None and not (
            live and time.monotonic() - template.built_at > LIVE_SEED_MAX_AGE_SECONDS
        ):
            return template
        if template is not None and not template.url.startswith("sqlite"):
            drop_database(_cluster_url(template.url), template.url)
        template = self._build(backend, seeded_at)
        self._templates[key] = template
        return template

    def _build(self, backend: str, now: datetime) -> _Template:
        self._builds += 1
        folder = self._folder / f"seed-{self._builds}"
        instance = folder / "instance"
        instance.mkdir(parents=True)
        url = (
            f"sqlite:///{folder / 'demo.sqlite3'}"
            if backend == "sqlite"
            else create_database(backend)
        )
        # The schema and the seed as a test's app makes them (tests.conftest.build_app).
        database = db.Database(url)
        try:
            Base.metadata.create_all(database.engine)
            with database.sessions() as session:
                seed_demo(session, instance_path=instance, now=now)
                session.commit()
        finally:
            database.dispose()  # PostgreSQL copies a template only with nobody connected
        return _Template(url=url, instance=instance, built_at=time.monotonic())


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a SQLite database over another with SQLite's own backup (safe with WAL files and
    connections about)."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _sqlite_file(url: str) -> Path:
    path = make_url(url).database
    assert path, f"not a SQLite database in a file: {url}"
    return Path(path)


def _cluster_url(url: str) -> str:
    """The cluster's maintenance database, from which databases are made and dropped."""
    rendered: str = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    return rendered
