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
from plugin.customers.bulk_writes import insert_rows
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
