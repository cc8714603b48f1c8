"""Database engine and sessions for the app, migrations, and the `flask db` commands."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app, g
from flask.cli import AppGroup
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from plugin.resources import resource_path

MIGRATIONS_DIR = resource_path("migrations")
EXTENSION_KEY = "regulars.db"


class Database:
    """An engine and a session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._unsynced: Engine | None = None  # `unsynced_session`'s, on PostgreSQL
        self._lock = threading.Lock()
        # Sessions whose statements run one by one, without a transaction (`statements_apart`),
        # on the same pool; on SQLite the same as `sessions`.
        self.apart_sessions = (
            self.sessions
            if self.engine.dialect.name == "sqlite"
            else sessionmaker(
                self.engine.execution_options(isolation_level="AUTOCOMMIT"),
                expire_on_commit=False,
            )
        )

    def dispose(self) -> None:
        self.engine.dispose()
        if self._unsynced is not None:
            self._unsynced.dispose()

    @contextmanager
    def unsynced_session(self) -> Iterator[Session]:
        """A session whose commits return before the disk has them.

        Only for rows whose loss in a power cut or an OS crash costs nothing, such as a launch
        token's id, a replay guard for the token's few minutes. Waiting for the disk was most
        of a launch's time (0.3 ms on a quiet disk, 4 ms on a busy one), on every view. The
        database stays consistent either way: SQLite's write-ahead log is synced at its next
        checkpoint or durable commit instead (synchronous=NORMAL, for this connection's
        transactions only), PostgreSQL commits asynchronously (synchronous_commit off).

        On PostgreSQL each statement commits as it runs (AUTOCOMMIT, on a small pool of
        connections set up so): what is written this way is one statement at a time, which
        needs no BEGIN, SET LOCAL and COMMIT, three of a launch's four round trips.
        """
        if self.engine.dialect.name != "sqlite":
            with Session(bind=self._unsynced_engine(), expire_on_commit=False) as session:
                yield session
            return
        with self.engine.connect() as connection:
            durable = int(connection.exec_driver_sql("PRAGMA synchronous").scalar_one())
            connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
            connection.commit()
            try:
                with Session(bind=connection, expire_on_commit=False) as session:
                    yield session
            finally:
                connection.rollback()
                connection.exec_driver_sql(f"PRAGMA synchronous={durable}")
                connection.commit()

    def _unsynced_engine(self) -> Engine:
        """PostgreSQL connections whose commits do not wait for the disk, each statement its
        own transaction; made on first use (a process that never launches has none)."""
        with self._lock:
            if self._unsynced is None:
                url = sa.make_url(self.url)
                # The server's option, after any the URL gives (libpq's `options`).
                given = url.query.get("options", "")
                options = " ".join(
                    part
                    for part in (
                        given if isinstance(given, str) else " ".join(given),
                        "-c synchronous_commit=off",
                    )
                    if part
                )
                self._unsynced = sa.create_engine(
                    url,
                    pool_size=2,
                    max_overflow=8,
                    hide_parameters=True,
                    isolation_level="AUTOCOMMIT",
                    connect_args={"options": options},
                )
                ping_when_idle(self._unsynced, PING_AFTER_IDLE_SECONDS)
            return self._unsynced


def create_engine(url: str) -> Engine:
    """Create an engine with the settings each backend needs for a multi-threaded server."""
    if url.startswith("sqlite"):
        _create_private_sqlite_file(url)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,  # a statement's values are customer data: keep them out of logs
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "checkin", _foreign_keys_back_on)
        return engine
    engine = sa.create_engine(url, pool_size=5, max_overflow=10, hide_parameters=True)
    ping_when_idle(engine, PING_AFTER_IDLE_SECONDS)
    return engine


# A pooled connection idle longer than this is pinged before use (`ping_when_idle`).
PING_AFTER_IDLE_SECONDS = 10.0
_IDLE_SINCE = "regulars_idle_since"


def ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection before use when it sat in the pool `idle_seconds` or more.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: a round trip before each request's
    first statement (and each writer thread's), a sixth of an event's ticket's first view on a
    busy PostgreSQL. A connection handed back moments ago is used as it is; one idle long
    enough to have been dropped (a restarted server, a proxy's idle timeout) is pinged, and
    one that does not answer is replaced, as `pool_pre_ping` would (the pool retries the
    checkout on `DisconnectionError`). A server restarted within the window fails the
    statements of connections used in it, which the pool then replaces.
    """

    def fresh(_dbapi_connection: Any, record: Any, *_: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is not None and time.monotonic() - since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise sa.exc.DisconnectionError("the pooled connection did not answer") from error

    sa.event.listen(engine, "connect", fresh)
    sa.event.listen(engine, "checkin", fresh)
    sa.event.listen(engine, "checkout", checked_out)


def _create_private_sqlite_file(url: str) -> None:
    """Create the database file readable by its owner only: it holds customer data.

    SQLite gives its -wal and -shm files the database file's mode. A file that exists is left
    as its owner set it.
    """
    path = sa.engine.make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    file = Path(path)
    if file.exists() or not file.parent.is_dir():
        return
    os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o600))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# Marks a pooled SQLite connection whose foreign-key checks `foreign_keys_off` turned off.
_FOREIGN_KEYS_OFF = "regulars_foreign_keys_off"


def foreign_keys_off(session: Session) -> bool:
    """On SQLite, stop checking foreign keys on the session's connection; True if they are off.

    For a bulk write that checks its references itself, once per transaction rather than a
    B-tree probe per row. SQLite ignores the setting inside a transaction, so call it before
    the transaction's first write. They are on again when the connection returns to the pool
    (a commit or rollback returns it), before anyone else can use it, or `foreign_keys_on`.
    """
    if session.get_bind().dialect.name != "sqlite":
        return False
    connection = session.connection()
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.info[_FOREIGN_KEYS_OFF] = True
    return not connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one()


def foreign_keys_on(session: Session) -> None:
    """Check foreign keys again on a connection `foreign_keys_off` turned them off on, when
    the session keeps its connection across commits (one bound to a connection)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    connection = session.connection()
    if connection.info.pop(_FOREIGN_KEYS_OFF, False):
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def _foreign_keys_back_on(dbapi_connection: Any, record: Any) -> None:
    """On a connection's return to the pool (its transaction ended), check foreign keys again
    if a bulk write turned them off: no one else may write through it unchecked."""
    if record.info.pop(_FOREIGN_KEYS_OFF, False) and dbapi_connection is not None:
        dbapi_connection.execute("PRAGMA foreign_keys=ON")


def dialect_insert(dialect: str, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with the `ON CONFLICT` clauses of the database `dialect` names (a session's
    `get_bind().dialect.name`): SQLite's or PostgreSQL's, the two the service runs on, which
    spell them alike."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def init_app(app: Flask, url: str) -> None:
    """Bind a database to the app and register its teardown and CLI commands."""
    app.extensions[EXTENSION_KEY] = Database(url)
    app.teardown_appcontext(_close_session)
    app.cli.add_command(db_cli)


def database(app: Flask | None = None) -> Database:
    """Return the database bound to the given (or current) app."""
    db: Database = (app or current_app).extensions[EXTENSION_KEY]
    return db


def session() -> Session:
    """Return this request's session, opening it on first use."""
    if "db_session" not in g:
        found = database()
        g.db_session = found.apart_sessions() if g.get("db_statements_apart") else found.sessions()
    db_session: Session = g.db_session
    return db_session


def statements_apart() -> None:
    """Let this request's session run its statements one by one without a transaction on
    PostgreSQL (AUTOCOMMIT), for a request that reads: a sidebar view.

    Under PostgreSQL's READ COMMITTED each statement sees its own snapshot inside a
    transaction too, so the reads see what they would; what goes is the BEGIN before the
    first and the ROLLBACK after the last, two of a view's dozen round trips. What such a
    request writes is one statement at a time (caches and counts, in sessions of their own).
    The session is opened by the request's first statement, if any (a warm banner has none);
    a session opened already keeps its transactions. On SQLite nothing changes: its BEGIN
    costs no round trip.
    """
    g.db_statements_apart = True


def _close_session(_exc: BaseException | None) -> None:
    db_session: Session | None = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()


def alembic_config(url: str) -> AlembicConfig:
    """Return an Alembic configuration for the migrations shipped with the service."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to the given revision."""
    command.upgrade(alembic_config(url), revision)


@functools.cache
def head_revision() -> str | None:
    """The newest migration shipped with the service (the files do not change while it runs)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def schema_revision(engine: Engine) -> str | None:
    """The migration the database is at; None for a database never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@click.group("db", cls=AppGroup)
def db_cli() -> None:
    """Manage the database schema."""


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade_command(revision: str) -> None:
    """Apply migrations (to the latest by default)."""
    upgrade(database().url, revision)
    click.echo(f"Database is at revision {revision}.")


@db_cli.command("current")
def current_command() -> None:
    """Show the database's migration revision."""
    command.current(alembic_config(database().url))
