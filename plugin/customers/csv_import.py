"""Import customers or orders from a CSV file: bad rows are reported by line, the rest stored.

Rows are read and stored in batches, so memory stays bounded whatever the file's size, and
committed every `COMMIT_ROWS` rows (a commit is a disk sync: one per batch would be one every
couple of thousand rows). Importing the same file again changes nothing.

The customers a file touches get their order facts and segments refreshed once, after the
last batch, not after every batch: an orders file listed by date names most customers in
many batches, and refreshing them batch by batch would profile each of them again and again.
Until then only which customers were touched is kept, as one bit per customer id.
"""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, TextIO, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers.records import (
    CustomerRecord,
    FieldProblem,
    OrderRecord,
    customer_record,
    order_record,
)
from plugin.customers.segmentation import in_order, profiling_pool, refresh_customers, worker_pool
from plugin.customers.store import StoreResult, store_customers, store_orders

Kind = Literal["customers", "orders"]
R = TypeVar("R", CustomerRecord, OrderRecord)

SOURCE = "csv"
BATCH_SIZE = 2000
COMMIT_ROWS = 20_000
# From a file this big on, rows are validated in worker processes (see worker_pool).
PARALLEL_MIN_BYTES = 4 * 2**20
# Touched customers are refreshed this many at a time after the import, each chunk committed.
REFRESH_CHUNK = 10_000
COLUMNS: dict[Kind, tuple[frozenset[str], frozenset[str]]] = {
    # (required, optional)
    "customers": (
        frozenset({"customer_id", "name"}),
        frozenset({"email", "phone", "helpdesk_user_id", "customer_since"}),
    ),
    "orders": (
        frozenset({"order_id", "placed_at"}),
        frozenset(
            {
                *("customer_id", "customer_email", "amount", "amount_cents"),
                *("discount_code", "category"),
                *("status", "fulfillment_status", "tracking_url", "item_count"),
            }
        ),
    ),
}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (wrong columns, not UTF-8 text): nothing was."""


@dataclass(frozen=True)
class LineProblem:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass
class ImportReport:
    kind: Kind
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[LineProblem] = field(default_factory=list)
    ignored_columns: tuple[str, ...] = ()

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged

    def summary(self) -> str:
        text = (
            f"{self.rows} {self.kind} rows: {self.created} added, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.problems)} refused"
        )
        if self.ignored_columns:
            text += f"; ignored columns: {', '.join(self.ignored_columns)}"
        return text


def import_csv(
    session: Session,
    installation_id: int,
    stream: TextIO,
    *,
    kind: Kind,
    now: datetime,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Import one CSV file of customers or orders into an installation, committing as it goes.

    The customers it touched have their order facts and segments refreshed at the end.
    """
    reader = csv.DictReader(stream, restkey="\x00extra")
    header = _header(reader, kind)
    required, optional = COLUMNS[kind]
    report = ImportReport(
        kind=kind, ignored_columns=tuple(sorted(set(header) - required - optional))
    )

    progress = _Progress(session, ("customers",) if kind == "customers" else ("orders",))
    try:
        # A big file's rows are validated in worker processes while this one stores them.
        with worker_pool(_size(stream) >= PARALLEL_MIN_BYTES) as pool:
            if kind == "customers":
                for customers, lines in _batches(reader, customer_record, report, batch_size, pool):
                    stored = store_customers(
                        session, installation_id, customers, now=now, refresh=False
                    )
                    _count(report, stored, lines)
                    progress.stored(stored, len(customers))
            else:
                for orders, lines in _batches(reader, order_record, report, batch_size, pool):
                    stored = store_orders(
                        session, installation_id, orders, source=SOURCE, now=now, refresh=False
                    )
                    _count(report, stored, lines)
                    progress.stored(stored, len(orders))
        progress.commit()
    except Exception:
        # What was committed stays; its customers are refreshed before the error goes on.
        session.rollback()
        refresh_touched(
            session, installation_id, progress.touched, orders=kind == "orders", now=now
        )
        raise
    refresh_touched(session, installation_id, progress.touched, orders=kind == "orders", now=now)
    report.problems.sort(key=lambda problem: problem.line)
    return report


@dataclass
class _Progress:
    """Commits every COMMIT_ROWS rows, and the customers that committed rows touched."""

    session: Session
    tables: tuple[str, ...]
    touched: CustomerIds = field(default_factory=lambda: CustomerIds())
    pending: set[int] = field(default_factory=set)
    rows: int = 0
    commits: int = 0

    def stored(self, result: StoreResult, rows: int) -> None:
        self.pending |= result.customer_ids
        self.rows += rows
        if self.rows >= COMMIT_ROWS:
            self.commit()

    def commit(self) -> None:
        self.session.commit()
        self.touched.update(self.pending)
        self.pending.clear()
        self.rows = 0
        self.commits += 1
        analyze_as_they_grow(self.session, self.commits, self.tables)


def _size(stream: TextIO) -> int:
    """The size of the file behind a stream, in bytes; 0 when it is not a file."""
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        return 0


def analyze_as_they_grow(session: Session, commits: int, tables: Sequence[str]) -> None:
    """On PostgreSQL, ANALYZE tables a bulk load is filling, after 1, 2, 4, 8... commits.

    Autovacuum gets to a growing table in its own time; until it does, the planner judges a
    batch's lookups by statistics from when the table was a fraction of its size, and can
    pick a plan that compares every row with every key. Doubling keeps it to a few dozen
    quick ANALYZEs (each reads a sample) for millions of rows.
    """
    if commits & (commits - 1) or session.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        session.execute(sa.text(f"ANALYZE {table}"))
    session.commit()


class CustomerIds:
    """A set of customer ids as a bitmap: a million customers fit in 125 kB, kept in order."""

    def __init__(self, ids: Iterable[int] = ()) -> None:
        self._bits = bytearray()
        self.count = 0
        self.update(ids)

    def update(self, ids: Iterable[int]) -> None:
        bits = self._bits
        for customer_id in ids:
            index, bit = divmod(customer_id, 8)
            if index >= len(bits):
                bits.extend(bytes(max(index + 1 - len(bits), len(bits) // 2)))
            if not bits[index] >> bit & 1:
                bits[index] |= 1 << bit
                self.count += 1

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[int]:
        for index, byte in enumerate(self._bits):
            if byte:
                base = index * 8
                for bit in range(8):
                    if byte >> bit & 1:
                        yield base + bit

    def chunks(self, size: int) -> Iterator[list[int]]:
        """The ids in ascending order, `size` at a time."""
        chunk: list[int] = []
        for customer_id in self:
            chunk.append(customer_id)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def refresh_touched(
    session: Session,
    installation_id: int,
    customer_ids: CustomerIds,
    *,
    orders: bool,
    now: datetime,
) -> None:
    """Refresh touched customers' order facts (after orders) and segments, chunk by chunk."""
    tables = ("customer_facts", "customer_segments") if orders else ("customer_segments",)
    with profiling_pool(len(customer_ids)) as pool:
        for number, chunk in enumerate(customer_ids.chunks(REFRESH_CHUNK), start=1):
            # Order facts come from the same read of the orders as the profiles.
            refresh_customers(
                session, installation_id, chunk, now=now, pool=pool, order_facts=orders
            )
            session.commit()
            analyze_as_they_grow(session, number, tables)


def _count(report: ImportReport, result: StoreResult, lines: Sequence[int]) -> None:
    report.created += result.created
    report.updated += result.updated
    report.unchanged += result.unchanged
    report.problems.extend(
        LineProblem(lines[index], problem.field, problem.message)
        for index, problem in result.problems
    )


def _header(reader: csv.DictReader[str], kind: Kind) -> list[str]:
    try:
        header = [name.strip() for name in reader.fieldnames or []]
    except UnicodeDecodeError:
        raise ImportFileError("the file is not UTF-8 text") from None
    except csv.Error as error:
        raise ImportFileError(f"the header line is not valid CSV: {error}") from None
    if not header:
        raise ImportFileError("the file is empty: it needs a header line naming the columns")
    reader.fieldnames = header
    required, _optional = COLUMNS[kind]
    missing = sorted(required - set(header))
    if missing:
        raise ImportFileError(
            f"a {kind} file needs the columns {', '.join(sorted(required))}; "
            f"missing: {', '.join(missing)}"
        )
    if kind == "orders" and not {"customer_id", "customer_email"} & set(header):
        raise ImportFileError("an orders file needs a customer_id or a customer_email column")
    if kind == "orders" and not {"amount", "amount_cents"} & set(header):
        raise ImportFileError("an orders file needs an amount or an amount_cents column")
    return header


def _batches(
    reader: csv.DictReader[str],
    build: Callable[[dict[str, object]], R],
    report: ImportReport,
    batch_size: int,
    pool: Executor | None = None,
) -> Iterator[tuple[list[R], list[int]]]:
    """Yield batches of valid records with their line numbers; record bad rows in the report.

    Rows come from the DictReader's own csv reader, zipped with the header: the same fields
    as the DictReader's rows (a short row lacks the missing ones), for less work per row.
    With a `pool`, worker processes validate the rows while this process stores batches.
    """
    fields = tuple(reader.fieldnames or ())
    chunks = _row_chunks(reader.reader, len(fields), report, batch_size)
    work = functools.partial(_build_batch, build, fields)
    results = map(work, chunks) if pool is None else in_order(pool, work, chunks)
    for records, lines, problems in results:
        report.problems.extend(problems)
        if records:
            yield records, lines


class _Rows(Protocol):
    """A csv reader: rows, and the line the last one ended on."""

    line_num: int

    def __next__(self) -> list[str]: ...


def _row_chunks(
    rows: _Rows, width: int, report: ImportReport, size: int
) -> Iterator[list[tuple[int, list[str]]]]:
    """Read the file's rows `size` at a time, with their line numbers; report unreadable ones."""
    chunk: list[tuple[int, list[str]]] = []
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except UnicodeDecodeError:
            # Nothing after this point can be read; what came before is imported.
            report.problems.append(
                LineProblem(
                    rows.line_num + 1,
                    "file",
                    "is not UTF-8 text from here on; the rest of the file was not read",
                )
            )
            break
        except csv.Error as error:
            report.rows += 1
            report.problems.append(LineProblem(rows.line_num, "row", f"not valid CSV: {error}"))
            continue
        if not row:
            continue  # a blank line, which DictReader skips too
        report.rows += 1
        if len(row) > width:
            report.problems.append(
                LineProblem(rows.line_num, "row", "has more fields than the header")
            )
            continue
        chunk.append((rows.line_num, row))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _build_batch(
    build: Callable[[dict[str, object]], R],
    fields: tuple[str, ...],
    rows: list[tuple[int, list[str]]],
) -> tuple[list[R], list[int], list[LineProblem]]:
    """Validate rows into records; a pure function, so a worker process can run it."""
    records: list[R] = []
    lines: list[int] = []
    problems: list[LineProblem] = []
    for line, row in rows:
        try:
            records.append(build(dict(zip(fields, row, strict=False))))
        except FieldProblem as problem:
            problems.append(LineProblem(line, problem.field, problem.message))
            continue
        lines.append(line)
    return records, lines, problems
