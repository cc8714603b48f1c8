"""Rows written in bulk read back as the values given, whatever characters they hold."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.customers.bulk_writes import insert_rows, insert_tuples, one_of, plain_rows
from plugin.models import Customer, CustomerSegment, Installation

AWKWARD = ["tab\there", "line\nbreak", "back\\slash\\N", "carriage\rreturn", 'é "quoted"', ""]


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def test_values_with_copy_escapes_read_back_as_written(session: Session) -> None:
    installation = Installation(platform="zendesk", account="bulk", display_name="Bulk")
    session.add(installation)
    session.flush()
    customers = [Customer(installation_id=installation.id, name=n) for n in AWKWARD]
    session.add_all(customers)
    session.flush()
    rows: list[dict[str, Any]] = [
        {
            "customer_id": customer.id,
            "installation_id": installation.id,
            "tier": "low",
            "rfm_recency": None if n % 2 else n,
            "rfm_frequency": 3,
            "rfm_monetary": None,
            "rfm_segment": text,
            "lifecycle_stage": None,
            "lifecycle_since": date(2026, 1, n + 1),
            "behaviours": [{"behaviour": text, "reason": "\\\t\n"}],
            "personas": [text, "plain"],
            "computed_at": datetime(2026, 11, 24, 12, 0, n, n * 1_000),
            "derived_stamp": None if n % 2 else text,
        }
        for n, (customer, text) in enumerate(zip(customers, AWKWARD, strict=True))
    ]
    insert_rows(session, CustomerSegment.__table__, rows)  # type: ignore[arg-type]
    session.expire_all()
    stored = session.execute(
        sa.select(*(CustomerSegment.__table__.c[name] for name in rows[0])).order_by(
            CustomerSegment.customer_id
        )
    )
    assert [dict(row._mapping) for row in stored] == rows


def test_tuples_in_any_column_order_read_back_as_written(session: Session) -> None:
    installation = Installation(platform="zendesk", account="tuples", display_name="Tuples")
    session.add(installation)
    session.flush()
    customers = [Customer(installation_id=installation.id, name=n) for n in AWKWARD]
    session.add_all(customers)
    session.flush()
    # Not the table's order: the values are put in the INSERT's order on SQLite.
    columns = (
        *("rfm_segment", "computed_at", "personas", "customer_id", "installation_id"),
        *("tier", "behaviours"),
    )
    rows = [
        (
            *(text, datetime(2026, 11, 24, 12, 0, n, n), [text], customer.id, installation.id),
            *("low", [{"behaviour": text}]),
        )
        for n, (customer, text) in enumerate(zip(customers, AWKWARD, strict=True))
    ]
    insert_tuples(session, CustomerSegment.__table__, columns, rows)  # type: ignore[arg-type]
    session.expire_all()
    stored = session.execute(
        sa.select(*(CustomerSegment.__table__.c[name] for name in columns)).order_by(
            CustomerSegment.customer_id
        )
    )
    assert [tuple(row) for row in stored] == rows


@pytest.mark.parametrize("count", [3, 60])  # an IN list, and one JSON parameter on SQLite
def test_plain_rows_are_the_rows_the_session_reads(session: Session, count: int) -> None:
    installation = Installation(platform="zendesk", account="plain", display_name="Plain")
    session.add(installation)
    session.flush()
    session.add_all(
        Customer(installation_id=installation.id, name=f"n{n}", external_id=f"C{n}", email=text)
        for n, text in enumerate(AWKWARD * 12)
    )
    session.flush()
    wanted = [f"C{n}" for n in range(0, 2 * count, 2)]
    table = Customer.__table__
    statement = sa.select(table.c.external_id, table.c.id, table.c.email).where(
        table.c.installation_id == installation.id,
        one_of(session, table.c.external_id, wanted),
    )
    expected = sorted(tuple(row) for row in session.execute(statement))
    assert len(expected) == min(count, len(AWKWARD) * 6)
    assert sorted(plain_rows(session, statement)) == expected
