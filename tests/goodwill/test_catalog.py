"""Segment budgets on SQLite and PostgreSQL: a budget's spend this month counts only the grants
charged to it since the first of the month.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.goodwill import catalog
from tests.goodwill.world import NOW, act, high_value_customer, set_up


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def test_budget_spend_counts_this_months_grants_charged_to_it(session: Session) -> None:
    inst = set_up(session)
    act(session, inst, "301", now=datetime(2026, 10, 30))  # last month
    high_value_customer(session, inst, "12")
    act(session, inst, "302", requester="12", kind="dismiss", reason="not_eligible")
    act(session, inst, "303", requester="12")
    statuses = catalog.budget_statuses(session, inst.id, now=NOW)
    assert [s.spent_cents for s in statuses] == [900]
