"""Import customers or orders from a CSV file: bad rows are reported by line, the rest stored.

Rows are read and stored in batches, so memory stays bounded whatever the file's size, and
committed every `COMMIT_ROWS` rows (`SQLITE_COMMIT_ROWS` on SQLite; a commit is a disk sync:
one per batch would be one every couple of thousand rows), sooner at first. Importing the
same file again changes nothing.

The customers a file touches get their order facts and segments refreshed once, after the
last batch, not after every batch: an orders file listed by date names most customers in
many batches, and refreshing them batch by batch would profile each of them again and again.
Until then only which customers were touched is kept, as one bit per customer id.
"""

from __future__ import annotations

import csv
import functools
import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, TextIO

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers import history_index
from plugin.customers.bulk_work import few_collections, worker_pool
from plugin.customers.bulk_writes import one_of
from plugin.customers.csv_batches import Batches
from plugin.customers.csv_batches import ImportReport as ImportReport
from plugin.customers.csv_batches import Kind as Kind
from plugin.customers.csv_batches import LineProblem as LineProblem
from plugin.customers.csv_reading import (
    DELIMITER_NAMES,
    sniff_delimiter,
    text_of,
)
from plugin.customers.orders import customers_with_stale_facts
from plugin.customers.phone_region import phone_region
from plugin.customers.records import customer_record, order_row
from plugin.customers.segmentation import (
    profiling_pool,
    recompute_installation,
    refresh_customers,
)
from plugin.customers.store import StoreResult, store_customers, store_order_rows
from plugin.db import foreign_keys_off, foreign_keys_on
from plugin.models import Customer, Installation

SOURCE = "csv"
# Rows validated and stored together. Each batch looks its customers and existing orders up
# at once; PostgreSQL answers the customers' lookup with a scan of the installation's
# customers whatever the batch's size, so fewer, larger batches cost less (30k customers
# and 300k orders: 3.1 s of lookups at 2,000 rows a batch, 1.5 s at 10,000).
BATCH_SIZE = 10_000
# Fewer, larger transactions: at each commit SQLite writes every page the batches dirtied to
# its log, and orders land all over the customers' history index (1M orders on SQLite: 21.1 s
# of CPU storing them at 20,000 rows a commit, 18.8 s at 100,000).
COMMIT_ROWS = 100_000
# On SQLite, ten times as many: once the history index outgrows the page cache, each order
# dirties a page of its own, so a commit writes (to the log, then at the checkpoint to the
# file) about a page per row. 3M orders onto 300k customers: 4.4 GB written and 8.4 s of
# commits at 100,000 rows a commit, 1.5 GB and 2.3 s at 1,000,000. A killed import loses at
# most these rows, which running it again stores. An import that rebuilds the history index
# (`_Progress`) commits once it has written REBUILD_GROWTH times the rows the table held, if
# that is more.
SQLITE_COMMIT_ROWS = 1_000_000
# Each build of the history index sorts every order stored, so a transaction that rebuilds it
# writes this many times the orders the table held when it began: at 1M customers / 10M
# orders, growth 3 (transactions of 1M, 3M, 6M rows) imported them in 211.7 s (building 17.1 s,
# written 9.3 GB) against 240.3 s with growth 1 (1M, 1M, 2M, 4M, 2M: 28.5 s, 14.1 GB), storing
# no slower. A kill loses at most the open transaction: up to three quarters of the rows.
REBUILD_GROWTH = 3
# ...except at first: a commit after the first batch, then after as many rows again as are
# committed (10,000, 20,000, 40,000...), so `analyze_as_they_grow` measures an installation's
# rows early. Until it does, PostgreSQL judges a batch's lookups by statistics from before the
# import, which on a table other installations fill say this one has no rows: 100,000
# customers of a third installation (200,000 in the table) took 375 s to import instead of 13.
# From a file this big on, lines are parsed and validated in worker processes
# (`bulk_work.worker_pool`, `csv_batches.Batches`).
PARALLEL_MIN_BYTES = 4 * 2**20
# The customers an orders import's transaction wrote orders for are checked to exist this
# many at a time before it commits (`_Progress.commit`).
CHECKED_CUSTOMERS = 50_000
# Customers of unchanged orders checked for stale facts this many at a time, once a
# transaction that dropped the history index has built it again (`_Progress.commit`).
CHECKED_FACTS = 10_000
# Touched customers are refreshed this many at a time after the import, each chunk committed.
REFRESH_CHUNK = 10_000
# An orders file that names at least this share of the installation's customers is followed
# by a full recompute rather than a refresh of the customers it touched (see refresh_touched).
RECOMPUTE_SHARE = 0.5
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


class CustomerDeletedError(RuntimeError):
    """A customer that orders were written for was deleted while the import ran: the rows
    since the last commit were not kept (running the import again stores them or refuses
    their lines)."""


def import_csv(
    session: Session,
    installation_id: int,
    stream: IO[bytes] | TextIO,
    *,
    kind: Kind,
    now: datetime,
    batch_size: int = BATCH_SIZE,
    dry_run: bool = False,
    on_progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Import one CSV file of customers or orders into an installation, committing as it goes.

    A binary stream's encoding is detected (`csv_reading.text_of`), the delimiter sniffed
    from the header. The customers it touched have their order facts and segments refreshed
    at the end. With `dry_run`, every row is read, checked and matched as it would be, and
    nothing is kept (each batch is rolled back). `on_progress` is called after each batch.
    """
    with few_collections():
        return _import(
            session,
            installation_id,
            stream,
            kind=kind,
            now=now,
            batch_size=batch_size,
            dry_run=dry_run,
            on_progress=on_progress,
        )


def _import(
    session: Session,
    installation_id: int,
    stream: IO[bytes] | TextIO,
    *,
    kind: Kind,
    now: datetime,
    batch_size: int,
    dry_run: bool,
    on_progress: Callable[[ImportReport], None] | None,
) -> ImportReport:
    text, encoding = text_of(stream)
    try:
        header, delimiter = _header(text, kind)
    except ImportFileError:
        _let_go(text, stream)
        raise
    required, optional = COLUMNS[kind]
    report = ImportReport(
        kind=kind,
        ignored_columns=tuple(sorted(set(header) - required - optional)),
        encoding=encoding,
        delimiter=delimiter,
        dry_run=dry_run,
    )
    fast_bulk_writes(session)
    progress = _Progress(
        session,
        ("customers",) if kind == "customers" else ("orders",),
        commit_rows=(
            SQLITE_COMMIT_ROWS if session.get_bind().dialect.name == "sqlite" else COMMIT_ROWS
        ),
        installation_id=installation_id,
        rebuild=(
            kind == "orders" and not dry_run and history_index.worth_rebuilding(session, text)
        ),
    )
    batches = Batches(text, header, delimiter, report, batch_size)

    def refresh() -> None:
        """Profile the customers the rows stored so far touched (all of them, after a big file)."""
        refresh_touched(
            session,
            installation_id,
            progress.touched,
            orders=kind == "orders",
            now=now,
            named=len(progress.named),
        )

    try:
        # A big file's rows are validated in worker processes while this one stores them.
        with worker_pool(_size(text) >= PARALLEL_MIN_BYTES) as pool:
            if kind == "customers":
                # A partial of a module's function: it travels to the worker processes.
                build = functools.partial(
                    customer_record, phone_region=phone_region(session, installation_id)
                )
                for customers, lines in batches.records(build, pool):
                    stored = store_customers(
                        session, installation_id, customers, now=now, refresh=False
                    )
                    _count(report, stored, lines)
                    progress.stored(stored, len(customers), dry_run=dry_run)
                    if on_progress is not None:
                        on_progress(report)
            else:
                for orders, lines in batches.records(order_row, pool):
                    if not progress.rows and not dry_run:
                        # Before the transaction's first write, which SQLite requires.
                        progress.unchecked = foreign_keys_off(session)
                    stored = store_order_rows(
                        session,
                        installation_id,
                        orders,
                        source=SOURCE,
                        now=now,
                        refresh=False,
                        check_stale=not progress.dropped,
                    )
                    _count(report, stored, lines)
                    progress.stored(stored, len(orders), dry_run=dry_run)
                    if on_progress is not None:
                        on_progress(report)
        progress.commit(dry_run=dry_run)
    except Exception:
        # What was committed stays; its customers are refreshed before the error goes on.
        session.rollback()
        foreign_keys_on(session)
        refresh()
        raise
    finally:
        batches.close()
        _let_go(text, stream)
    foreign_keys_on(session)
    refresh()
    report.problems.sort(key=lambda problem: problem.line)
    return report


def _let_go(text: TextIO, stream: IO[bytes] | TextIO) -> None:
    """Detach the text wrapper made around the caller's stream: it stays theirs to close."""
    if text is not stream and isinstance(text, io.TextIOWrapper):
        text.detach()


def fast_bulk_writes(session: Session) -> None:
    """On SQLite, sync the write-ahead log at checkpoints only, and keep more pages cached.

    With WAL (plugin.db sets it), synchronous=NORMAL cannot corrupt the database; a power
    cut may lose the last commits, which re-running the import writes again.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(sa.text("PRAGMA synchronous=NORMAL"))
        session.execute(sa.text("PRAGMA cache_size=-65536"))  # 64 MiB


@dataclass
class _Progress:
    """Commits every `commit_rows` rows (sooner at first), and the customers that committed
    rows touched (and that the file named, touched or not).

    With `rebuild` (a big orders import on SQLite, `history_index.worth_rebuilding`), each
    transaction drops the orders' history index after its first write and creates it again
    before it commits; such a transaction commits once it has written REBUILD_GROWTH times
    the rows the table held when it began, since each creation sorts them all again (the
    table quadrupling a transaction, sorting costs about 4/3 of the orders' count in all).
    """

    session: Session
    tables: tuple[str, ...]
    commit_rows: int
    installation_id: int = 0
    rebuild: bool = False
    # The history index is dropped in the current transaction; it commits at `dropped_rows`.
    dropped: bool = False
    dropped_rows: int = 0
    # Customers of unchanged orders stored while the index was dropped, to check for stale
    # facts once it is built again (`store_order_rows`' `check_stale`).
    unchecked_facts: CustomerIds = field(default_factory=lambda: CustomerIds())
    touched: CustomerIds = field(default_factory=lambda: CustomerIds())
    named: CustomerIds = field(default_factory=lambda: CustomerIds())
    # A bitmap too: a million rows a transaction can touch most of a million customers.
    pending: CustomerIds = field(default_factory=lambda: CustomerIds())
    rows: int = 0
    commits: int = 0
    committed: int = 0
    # Foreign keys are off for this transaction (orders on SQLite): its customers are checked
    # at once before it commits. Per row, SQLite's check probed the customers' table at
    # random, a page read per order once the table and the history index outgrow the page
    # cache (3M orders onto 300k customers: 8 s of 58 s storing them).
    unchecked: bool = False

    def stored(self, result: StoreResult, rows: int, *, dry_run: bool = False) -> None:
        if dry_run:
            self.session.rollback()
            return
        self.pending.update(result.customer_ids)
        self.named.update(result.customers_named)
        self.unchecked_facts.update(result.unchecked_customers)
        self.rows += rows
        if self.rebuild and not self.dropped:
            # After the transaction's first write: a DROP before it would commit on its own.
            self.dropped = history_index.drop(self.session)
            if self.dropped:
                began = history_index.stored_orders(self.session) - self.rows
                self.dropped_rows = max(self.commit_rows, REBUILD_GROWTH * began)
        if self.dropped:
            if self.rows >= self.dropped_rows:
                self.commit()
        elif self.rows >= min(self.commit_rows, max(self.committed, 1)):
            self.commit()

    def commit(self, *, dry_run: bool = False) -> None:
        if dry_run:
            self.session.rollback()
            return
        if self.unchecked:
            # After the transaction's first write no one else can delete a customer before it
            # commits; one deleted between a batch's lookup and that write is found here.
            _require_customers(self.session, self.pending)
            self.unchecked = False
        if self.dropped:
            history_index.create(self.session)
            self.dropped = False
            self._check_facts()
        self.session.commit()
        self.touched.update(self.pending)
        self.pending = CustomerIds()
        self.committed += self.rows
        self.rows = 0
        self.commits += 1
        analyze_as_they_grow(self.session, self.commits, self.tables)

    def _check_facts(self) -> None:
        """Add the customers of unchanged orders whose facts are stale to those touched, as
        `store_order_rows` does when the index is there (facts change only after the import,
        and these customers' orders have not changed since)."""
        for chunk in self.unchecked_facts.chunks(CHECKED_FACTS):
            self.pending.update(
                customers_with_stale_facts(
                    self.session,
                    self.installation_id,
                    [customer_id for customer_id in chunk if customer_id not in self.pending],
                )
            )
        self.unchecked_facts = CustomerIds()


def _require_customers(session: Session, customer_ids: CustomerIds) -> None:
    """Raise CustomerDeletedError unless every one of these customers exists."""
    for chunk in customer_ids.chunks(CHECKED_CUSTOMERS):
        found = session.scalar(
            sa.select(sa.func.count())
            .select_from(Customer)
            .where(one_of(session, Customer.id, chunk))
        )
        if found != len(chunk):
            raise CustomerDeletedError(
                "a customer was deleted during the import; the rows since its last commit were"
                " not kept: run it again"
            )


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

    def __contains__(self, customer_id: object) -> bool:
        if not isinstance(customer_id, int):
            return False
        index, bit = divmod(customer_id, 8)
        return index < len(self._bits) and bool(self._bits[index] >> bit & 1)

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
    named: int = 0,
) -> None:
    """Refresh touched customers' order facts (after orders) and segments, chunk by chunk.

    After an orders file that `named` (or touched) at least RECOMPUTE_SHARE of the
    installation's customers, the refresh is a full recompute instead
    (`recompute_installation`: the cut points measured again, one transaction). It costs
    about the same as refreshing them and leaves the base as `segments recompute` would,
    stamped, so a recompute run next keeps every customer's rows instead of profiling
    everyone again. Named, not only touched: the same file run again after a kill during
    that recompute touches only the customers left stale, and must recompute as a clean run
    of it does (the customers whose rows still hold are kept, not profiled again).
    """
    if orders and _most_of_the_base(session, installation_id, max(named, len(customer_ids))):
        installation = session.get(Installation, installation_id)
        assert installation is not None
        recompute_installation(session, installation, now=now)
        analyze_as_they_grow(session, 1, ("customer_facts", "customer_segments"))
        return
    tables = ("customer_facts", "customer_segments") if orders else ("customer_segments",)
    with profiling_pool(len(customer_ids)) as pool:
        for number, chunk in enumerate(customer_ids.chunks(REFRESH_CHUNK), start=1):
            # Order facts come from the same read of the orders as the profiles.
            refresh_customers(
                session, installation_id, chunk, now=now, pool=pool, order_facts=orders
            )
            session.commit()
            analyze_as_they_grow(session, number, tables)


def _most_of_the_base(session: Session, installation_id: int, customers: int) -> bool:
    if not customers:
        return False
    count = session.scalar(
        sa.select(sa.func.count())
        .select_from(Customer)
        .where(Customer.installation_id == installation_id)
    )
    return customers >= RECOMPUTE_SHARE * int(count or 0)


def _count(report: ImportReport, result: StoreResult, lines: Sequence[int]) -> None:
    report.created += result.created
    report.updated += result.updated
    report.unchanged += result.unchanged
    report.problems.extend(
        LineProblem(lines[index], problem.field, problem.message)
        for index, problem in result.problems
    )


def _header(text: TextIO, kind: Kind) -> tuple[list[str], str]:
    """The file's column names and delimiter, from its first line; ImportFileError if unusable."""
    try:
        first = text.readline()
    except UnicodeDecodeError as error:
        raise ImportFileError(f"the header line is not {error.encoding.upper()} text") from None
    first = first.lstrip("\ufeff")  # a byte order mark read as text
    delimiter = sniff_delimiter(first)
    try:
        header = [name.strip() for name in next(csv.reader([first], delimiter=delimiter), [])]
    except csv.Error as error:
        raise ImportFileError(f"the header line is not valid CSV: {error}") from None
    if not header:
        raise ImportFileError("the file is empty: it needs a header line naming the columns")
    required, _optional = COLUMNS[kind]
    missing = sorted(required - set(header))
    if missing:
        raise ImportFileError(
            f"a {kind} file needs the columns {', '.join(sorted(required))}; "
            f"missing: {', '.join(missing)} (the header line was read as separated by "
            f"{DELIMITER_NAMES[delimiter]})"
        )
    if kind == "orders" and not {"customer_id", "customer_email"} & set(header):
        raise ImportFileError("an orders file needs a customer_id or a customer_email column")
    if kind == "orders" and not {"amount", "amount_cents"} & set(header):
        raise ImportFileError("an orders file needs an amount or an amount_cents column")
    return header, delimiter
