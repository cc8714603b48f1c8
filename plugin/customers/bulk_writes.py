"""Write and select rows in bulk, as fast as each database allows: COPY on PostgreSQL,
executemany on the sqlite3 cursor; one parameter for a long IN list."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import QueryableAttribute, Session


def one_of(
    session: Session,
    column: QueryableAttribute[Any] | sa.ColumnElement[Any],
    values: Iterable[Any],
) -> sa.ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column IN (SELECT unnest(array))`, one parameter.

    psycopg rewrites each placeholder of a statement in Python, and a batch's IN list has
    thousands; an array is one. `= ANY(array)` would be shorter, but once psycopg prepares the
    statement its generic plan may filter a whole table through the array row by row;
    unnest is joined against the index instead (or hashed, for a small table).
    """
    values = list(values)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        array = sa.bindparam(None, values, type_=postgresql.ARRAY(column.type))
        return column.in_(sa.select(sa.func.unnest(array)))
    if dialect == "sqlite" and len(values) > 50 and all(type(v) in (int, str) for v in values):
        # One JSON parameter instead of thousands that SQLAlchemy expands and binds one by one.
        listed = sa.func.json_each(sa.bindparam(None, json.dumps(values), type_=sa.String))
        return column.in_(sa.select(sa.column("value")).select_from(listed))
    return column.in_(values)


def plain_rows(session: Session, statement: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """A select's rows as tuples; on SQLite through the sqlite3 cursor when every column and
    parameter is a whole number or text, which SQLite gives and takes as they are: no
    SQLAlchemy row a result (a batch's lookup of 10,000 customers is 10,000 rows)."""
    connection = session.connection()
    plain = (sa.Integer, sa.String)
    if connection.dialect.name == "sqlite" and all(
        isinstance(column.type, plain) for column in statement.selected_columns
    ):
        compiled = statement.compile(
            dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
        )
        given = compiled.construct_params()
        parameters = [given[name] for name in compiled.positiontup or ()]
        driver = connection.connection.driver_connection
        if driver is not None and all(type(value) in (int, str) for value in parameters):
            return driver.execute(str(compiled), parameters).fetchall()  # type: ignore[no-any-return]
    return [tuple(row) for row in connection.execute(statement)]


def unindexed(column: QueryableAttribute[int] | sa.ColumnElement[int]) -> sa.ColumnElement[int]:
    """`column + 0`: the same value, but no index on the column can answer a test of it.

    For a test that only double-checks rows found by a narrower key: given `installation_id
    = ? AND customer_id IN (...)`, SQLite without statistics walks the installation's index,
    every fact of every customer, rather than look the few customers up.
    """
    return column + 0


def insert_rows(session: Session, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert many rows that name the same columns: COPY on PostgreSQL, executemany elsewhere.

    psycopg sends an executemany as one statement per row; COPY streams the rows in one go,
    several times faster. Column defaults are not applied, so give every column a value.
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        _sqlite_insert(connection, table, rows)
        return
    if connection.dialect.name != "postgresql" or connection.dialect.driver != "psycopg":
        session.execute(sa.insert(table), rows)
        return
    from psycopg import sql

    columns = list(rows[0])
    json_columns = [isinstance(table.c[name].type, sa.JSON) for name in columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                [
                    # JSON as text, which the server parses: psycopg's Json wrapper and
                    # dumper cost more than the rest of the row (a profile of a recompute).
                    json_text(row[name]) if is_json else row[name]
                    for name, is_json in zip(columns, json_columns, strict=True)
                ]
            )


def _sqlite_insert(
    connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """executemany on the sqlite3 cursor, values converted as SQLAlchemy's SQLite types store
    them: SQLAlchemy's own executemany builds and processes a parameter dict per row, which
    cost more than SQLite's work (a profile of a million orders: nearly half the import).
    """
    statement, columns = sqlite_insert_statement(connection.dialect, table, tuple(rows[0]))
    insert_sqlite_values(connection, statement, sqlite_values(table, columns, rows))


def sqlite_insert_statement(
    dialect: sa.Dialect, table: sa.Table, keys: Sequence[str]
) -> tuple[str, tuple[str, ...]]:
    """`INSERT INTO table (columns) VALUES (?, ...)` for rows with these keys, and the columns
    in the statement's order (what `sqlite_values` lists)."""
    compiled = sa.insert(table).compile(dialect=dialect, column_keys=list(keys))
    return str(compiled), tuple(compiled.positiontup or ())


def sqlite_values(
    table: sa.Table, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]
) -> list[Sequence[Any]]:
    """Rows' values in the columns' order, converted as SQLAlchemy stores them on SQLite; a
    pure function, so a worker process can prepare rows this process only inserts."""
    pick = operator.itemgetter(*columns)
    if len(columns) == 1:
        return _sqlite_converted(table, columns, ((pick(row),) for row in rows))
    return _sqlite_converted(table, columns, map(pick, rows))


def insert_tuples(
    session: Session, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """`insert_rows` for rows given as tuples of the `columns`' values: no dict a row."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        insert_rows(session, table, [dict(zip(columns, row, strict=True)) for row in rows])
        return
    statement, order = sqlite_insert_statement(connection.dialect, table, columns)
    if set(order) != set(columns):
        raise ValueError(f"give every column with a default a value: {sorted(order)}")
    if tuple(order) != tuple(columns):
        rows = list(map(operator.itemgetter(*map(list(columns).index, order)), rows))
    insert_sqlite_values(connection, statement, _sqlite_converted(table, order, rows))


def _sqlite_converted(
    table: sa.Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> list[Sequence[Any]]:
    """Tuples of the columns' values, converted as SQLAlchemy stores them on SQLite."""
    convert = [_sqlite_converter(table.c[name].type) for name in columns]
    special = [(index, to) for index, to in enumerate(convert) if to is not None]
    if not special:
        return list(rows)
    parameters: list[Sequence[Any]] = []
    for values in rows:
        values = list(values)
        for index, to in special:
            if values[index] is not None:
                values[index] = to(values[index])
        parameters.append(values)
    return parameters


def insert_sqlite_values(
    connection: sa.Connection, statement: str, parameters: Sequence[Sequence[Any]]
) -> None:
    """executemany of `sqlite_insert_statement`'s statement with `sqlite_values`' rows."""
    if not parameters:
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        cursor.executemany(statement, parameters)
    finally:
        cursor.close()


def _sqlite_converter(column_type: sa.types.TypeEngine[Any]) -> Callable[[Any], Any] | None:
    """How a value of this column type is stored by SQLAlchemy on SQLite; None: as it is."""
    if isinstance(column_type, sa.JSON):
        return json_text
    if isinstance(column_type, sa.DateTime):
        return _datetime_text()
    if isinstance(column_type, sa.Date):
        return lambda day: day.isoformat()
    if isinstance(column_type, sa.Boolean):
        return int
    return None


def _datetime_text() -> Callable[[datetime], str]:
    """A datetime as SQLAlchemy stores it on SQLite, the last one remembered: a batch of facts
    or segments is stamped with one moment, converted once rather than once a row."""
    last: list[Any] = [None, ""]

    def text(moment: datetime) -> str:
        if moment is not last[0]:
            last[:] = [moment, moment.isoformat(" ", "microseconds")]
        return str(last[1])

    return text


def json_text(value: Any) -> str:
    """json.dumps, with shortcuts for what most facts and segments hold: whole numbers (counts
    and cents), plain ASCII strings (dates, names) and lists of them, often empty."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is str and _plain(value):
        return f'"{value}"'
    if kind is list and all(type(item) is str and _plain(item) for item in value):
        return "[" + ", ".join(f'"{item}"' for item in value) + "]"
    return json.dumps(value)


def _plain(text: str) -> bool:
    """True if json.dumps would write this string as it is, between quotes."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text
