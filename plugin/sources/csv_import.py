"""Import customers or orders from a CSV file: bad rows are reported by line, the rest stored.

Rows are read and stored in batches, so memory stays bounded whatever the file's size, and
each batch is committed. Importing the same file again changes nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TextIO, TypeVar

from sqlalchemy.orm import Session

from plugin.sources.records import (
    CustomerRecord,
    FieldProblem,
    OrderRecord,
    customer_record,
    order_record,
)
from plugin.sources.store import StoreResult, store_customers, store_orders

Kind = Literal["customers", "orders"]
R = TypeVar("R", CustomerRecord, OrderRecord)

SOURCE = "csv"
BATCH_SIZE = 2000
COLUMNS: dict[Kind, tuple[frozenset[str], frozenset[str]]] = {
    # (required, optional)
    "customers": (
        frozenset({"customer_id", "name"}),
        frozenset({"email", "phone", "helpdesk_user_id", "customer_since"}),
    ),
    "orders": (
        frozenset({"order_id", "placed_at"}),
        frozenset(
            {"customer_id", "customer_email", "amount", "amount_cents", "discount_code", "category"}
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
    """Import one CSV file of customers or orders into an installation; commits per batch."""
    reader = csv.DictReader(stream, restkey="\x00extra")
    header = _header(reader, kind)
    required, optional = COLUMNS[kind]
    report = ImportReport(
        kind=kind, ignored_columns=tuple(sorted(set(header) - required - optional))
    )

    if kind == "customers":
        for customers, lines in _batches(reader, customer_record, report, batch_size):
            stored = store_customers(session, installation_id, customers, now=now)
            _count(report, stored, lines)
            session.commit()
    else:
        for orders, lines in _batches(reader, order_record, report, batch_size):
            stored = store_orders(session, installation_id, orders, source=SOURCE, now=now)
            _count(report, stored, lines)
            session.commit()
    report.problems.sort(key=lambda problem: problem.line)
    return report


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
) -> Iterator[tuple[list[R], list[int]]]:
    """Yield batches of valid records with their line numbers; record bad rows in the report."""
    batch: list[R] = []
    lines: list[int] = []
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except UnicodeDecodeError:
            # Nothing after this point can be read; what came before is imported.
            report.problems.append(
                LineProblem(
                    reader.line_num + 1,
                    "file",
                    "is not UTF-8 text from here on; the rest of the file was not read",
                )
            )
            break
        except csv.Error as error:
            report.rows += 1
            report.problems.append(LineProblem(reader.line_num, "row", f"not valid CSV: {error}"))
            continue
        report.rows += 1
        line = reader.line_num
        if "\x00extra" in row:
            report.problems.append(LineProblem(line, "row", "has more fields than the header"))
            continue
        try:
            record = build({key: value for key, value in row.items() if value is not None})
        except FieldProblem as problem:
            report.problems.append(LineProblem(line, problem.field, problem.message))
            continue
        batch.append(record)
        lines.append(line)
        if len(batch) >= batch_size:
            yield batch, lines
            batch, lines = [], []
    if batch:
        yield batch, lines
