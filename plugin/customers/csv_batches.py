"""A CSV file's rows in batches of valid records, and what is reported of the others.

Lines are read and parsed here, or for a big file in worker processes (a block of lines
each); rows are validated into records; an id a file names twice is refused on its later
line (`SeenIds`, in bounded memory). Every line ends up in a batch or in the report.
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import operator
import os
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Generic, Literal, TextIO, TypeVar

from plugin.customers import csv_reading
from plugin.customers.bulk_work import in_order
from plugin.customers.csv_reading import DELIMITER_NAMES, failing_lines, physical_row_blocks
from plugin.customers.records import CustomerRecord, FieldProblem, OrderRow

Kind = Literal["customers", "orders"]
# A file's rows as they travel from the workers: customers as records, orders as tuples.
R = TypeVar("R", CustomerRecord, OrderRow)


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
    encoding: str = "text"  # what the file was read as ("text": given as text already)
    delimiter: str = ","
    dry_run: bool = False

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged

    def summary(self) -> str:
        added, updated = (
            ("would be added", "would be updated") if self.dry_run else ("added", "updated")
        )
        text = (
            f"{self.rows} {self.kind} rows: {self.created} {added}, {self.updated} {updated}, "
            f"{self.unchanged} unchanged, {len(self.problems)} refused"
        )
        if self.dry_run:
            text += " (a check: nothing was written)"
        if self.ignored_columns:
            text += f"; ignored columns: {', '.join(self.ignored_columns)}"
        return text

    def reading(self) -> str:
        """How the file was read: its encoding (when detected) and delimiter."""
        separated = f"olumns separated by {DELIMITER_NAMES[self.delimiter]}"
        if self.encoding == "text":
            return "C" + separated
        return f"Read as {self.encoding}, c{separated}"


class Batches:
    """The file's rows in batches of valid records with their lines; bad rows go to the report.

    A record whose id an earlier line of the file already had is refused, naming that line:
    the first one is imported. The ids seen are kept in a temporary SQLite file, not in
    memory, so a file of ten million orders is checked in bounded memory.
    """

    def __init__(
        self, text: TextIO, header: list[str], delimiter: str, report: ImportReport, size: int
    ) -> None:
        self.text = text
        self.fields = tuple(header)
        self.delimiter = delimiter
        self.report = report
        self.size = size
        self.seen = SeenIds()

    def close(self) -> None:
        self.seen.close()

    def records(
        self, build: Callable[[dict[str, object]], R], pool: Executor | None = None
    ) -> Iterator[tuple[list[R], list[int]]]:
        """With a `pool`, worker processes parse and validate the rows while this process
        stores them."""
        results: Iterator[tuple[list[R], list[int], list[LineProblem]]]
        if pool is None:
            results = map(functools.partial(_build_batch, build, self.fields), self._row_chunks())
        else:
            results = self._built_in_workers(build, pool)
        for records, lines, problems in results:
            self.report.problems.extend(problems)
            records, lines = self._first_of_each_id(records, lines)
            if records:
                yield records, lines

    def _first_of_each_id(self, records: list[R], lines: list[int]) -> tuple[list[R], list[int]]:
        ids = (
            map(operator.itemgetter(0), records)
            if records and type(records[0]) is tuple
            else map(_external_id, records)
        )
        earlier = self.seen.add(list(zip(ids, lines, strict=True)))
        if not earlier:
            return records, lines
        name = "customer_id" if self.report.kind == "customers" else "order_id"
        kept: tuple[list[R], list[int]] = ([], [])
        for record, line in zip(records, lines, strict=True):
            first = earlier.get(line)
            if first is None:
                kept[0].append(record)
                kept[1].append(line)
            else:
                self.report.problems.append(
                    LineProblem(
                        line,
                        name,
                        f"{_external_id(record)!r} is also on line {first}: "
                        f"line {first} was imported, this one refused",
                    )
                )
        return kept

    def _built_in_workers(
        self, build: Callable[[dict[str, object]], R], pool: Executor
    ) -> Iterator[tuple[list[R], list[int], list[LineProblem]]]:
        """Batches of `size` rows as records, their lines, and their rows' problems, with the
        lines parsed in the worker processes too: this process reads blocks of lines and
        sends them, which costs less than parsing them and sending the fields.

        A block whose lines are not one record each comes back unparsed (`_parsed_block`):
        from it on, the lines (those sent after it too) are read here one record at a time, as
        `_row_chunks` reads them, which defines the refusals; so is the end of text that
        stops decoding, once the blocks before it are in.
        """
        lines: Iterator[str] = iter(self.text)
        number = 2
        error: UnicodeDecodeError | None = None
        unsent: list[str] = []  # read before the text stopped decoding
        pending: deque[tuple[int, list[str], Future[_ParsedBlock[R] | None]]] = deque()
        work = functools.partial(_parsed_block, build, self.fields, self.delimiter)
        rows: list[tuple[int, R | None]] = []  # the next batch's rows (None: refused)

        def send() -> bool:
            nonlocal number, error
            block: list[str] = []
            try:
                for line in itertools.islice(lines, csv_reading.BLOCK_LINES):
                    block.append(line)
            except UnicodeDecodeError as stopped:
                error = stopped
                unsent.extend(block)
                return False
            if not block:
                return False
            pending.append((number, block, pool.submit(work, number, block)))
            number += len(block)
            return True

        more = True
        while True:
            while more and len(pending) < 3 * (os.cpu_count() or 1):
                more = send()
            if not pending:
                break
            first, block, future = pending.popleft()
            parsed = future.result()
            if parsed is None:
                for _number, _block, later in pending:
                    later.cancel()
                rest = itertools.chain(
                    block,
                    *(later_block for _number, later_block, _future in pending),
                    unsent,
                    failing_lines(error) if error is not None else lines,
                )
                yield from self._built_here(rest, first, rows, build, pool)
                return
            self.report.rows += parsed.rows
            self.report.problems.extend(parsed.problems)
            rows.extend(parsed.built)
            while len(rows) >= self.size:
                yield _batch_of(rows[: self.size])
                del rows[: self.size]
        if error is not None:
            rest = itertools.chain(unsent, failing_lines(error))
            yield from self._built_here(rest, number, rows, build, pool)
        elif rows:
            yield _batch_of(rows)

    def _built_here(
        self,
        text: Iterator[str],
        first_line: int,
        rows: list[tuple[int, R | None]],
        build: Callable[[dict[str, object]], R],
        pool: Executor,
    ) -> Iterator[tuple[list[R], list[int], list[LineProblem]]]:
        """The rest of `_built_in_workers`' batches, from the lines read one record at a time
        here (and validated in the workers), the first of them completing `rows`."""
        chunks = self._row_chunks(text, first_line, self.size - len(rows))
        work = functools.partial(_build_batch, build, self.fields)
        for records, lines, problems in in_order(pool, work, chunks):
            if rows:
                before, _lines, _problems = _batch_of(rows)
                records, lines = before + records, _lines + lines
                rows = []
            yield records, lines, problems
        if rows:
            yield _batch_of(rows)

    def _row_chunks(
        self, text: Iterable[str] | None = None, first_line: int = 2, first_size: int = 0
    ) -> Iterator[list[tuple[int, list[str]]]]:
        """Read the file's rows `size` at a time (the first chunk `first_size` if given), with
        their lines; report unreadable ones."""
        report, width = self.report, len(self.fields)
        size = first_size or self.size

        def refuse(line: int, message: str) -> None:
            field_name = "file" if "rest of the file" in message else "row"
            if field_name == "row":
                report.rows += 1
            report.problems.append(LineProblem(line, field_name, message))

        chunk: list[tuple[int, list[str]]] = []
        for block in physical_row_blocks(
            self.text if text is None else text,
            delimiter=self.delimiter,
            first_line=first_line,
            refuse=refuse,
        ):
            report.rows += len(block)
            if block and max(len(row) for _line, row in block) > width:
                kept = []
                for line, row in block:
                    if len(row) > width:
                        report.problems.append(
                            LineProblem(line, "row", "has more fields than the header")
                        )
                    else:
                        kept.append((line, row))
                block = kept
            chunk.extend(block)
            while len(chunk) >= size:
                yield chunk[:size]
                del chunk[:size]
                size = self.size
        if chunk:
            yield chunk


def _external_id(record: CustomerRecord | OrderRow) -> str:
    return record[0] if type(record) is tuple else record.external_id  # type: ignore[union-attr]


@dataclass
class _ParsedBlock(Generic[R]):
    """A block of lines parsed and validated: how many rows it held (blank lines are none),
    the problems of those refused, and its rows of no more fields than the header, in order,
    each with its record (None: refused)."""

    rows: int
    problems: list[LineProblem]
    built: list[tuple[int, R | None]]


def _parsed_block(
    build: Callable[[dict[str, object]], R],
    fields: tuple[str, ...],
    delimiter: str,
    first_line: int,
    block: list[str],
) -> _ParsedBlock[R] | None:
    """Parse and validate a block of lines; None unless each line is one record. A pure
    function, so a worker process can run it."""
    reader = csv.reader(block, delimiter=delimiter, strict=True)
    try:
        rows = list(reader)
    except csv.Error:
        return None
    if len(rows) != len(block) or reader.line_num != len(block):
        return None
    width = len(fields)
    parsed: _ParsedBlock[R] = _ParsedBlock(0, [], [])
    for line, row in zip(range(first_line, first_line + len(block)), rows, strict=True):
        if not row:
            continue
        parsed.rows += 1
        if len(row) > width:
            parsed.problems.append(LineProblem(line, "row", "has more fields than the header"))
            continue
        try:
            parsed.built.append((line, build(dict(zip(fields, row, strict=False)))))
        except FieldProblem as problem:
            parsed.problems.append(LineProblem(line, problem.field, problem.message))
            parsed.built.append((line, None))
    return parsed


def _batch_of(rows: list[tuple[int, R | None]]) -> tuple[list[R], list[int], list[LineProblem]]:
    """A batch's records and their lines, from its rows (their problems are reported)."""
    records: list[R] = []
    lines: list[int] = []
    for line, record in rows:
        if record is not None:
            records.append(record)
            lines.append(line)
    return records, lines, []


class SeenIds:
    """The ids a file has named so far and the first line of each, in a temporary SQLite file."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # "": a private temporary file, deleted on close
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE seen (id TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID;"
        )

    def add(self, ids: Sequence[tuple[str, int]]) -> dict[int, int]:
        """Remember ids with their lines; return {line: first line} for those named before."""
        earlier: dict[int, int] = {}
        new: Sequence[tuple[str, int]] = ids
        if len({external_id for external_id, _line in ids}) != len(ids):
            first_in_batch: dict[str, int] = {}
            new = []
            for external_id, line in ids:
                if external_id in first_in_batch:
                    earlier[line] = first_in_batch[external_id]
                else:
                    first_in_batch[external_id] = line
                    new.append((external_id, line))
        # One statement, one parameter (a JSON array of [id, line]), whatever the batch's size;
        # an id named before keeps its first line.
        listed = json.dumps(new)
        changes = self._db.total_changes
        self._db.execute(
            "INSERT OR IGNORE INTO seen SELECT json_extract(value, '$[0]'),"
            " json_extract(value, '$[1]') FROM json_each(?)",
            (listed,),
        )
        if self._db.total_changes - changes == len(new):
            return earlier  # every one of them new (the usual case)
        known: dict[str, int] = dict(
            self._db.execute(
                "SELECT id, line FROM seen WHERE id IN"
                " (SELECT json_extract(value, '$[0]') FROM json_each(?))",
                (listed,),
            )
        )
        for external_id, line in new:
            first = known[external_id]
            if first != line:
                earlier[line] = first
        return earlier

    def close(self) -> None:
        self._db.close()


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
