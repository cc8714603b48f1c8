"""Order facts written set-based are the rows the profiles draw in Python, byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.customers.bulk_writes import insert_rows
from plugin.customers.orders import fact_rows, insert_order_facts, order_facts
from plugin.models import Customer, CustomerFact, Installation, Order

NOW = datetime(2026, 11, 24, 12, 0, 0, 250_000)
# Names that rank differently by code point than by a locale, ties, and names JSON escapes.
CATEGORIES = ["Tea", "tea", "Äpfel", "Zebra", 'Say "hi"', "back\\slash", "", None, "Ω", "b", "a"]
# Only names JSON writes as they are: the facts need no second look at the top categories.
PLAIN_CATEGORIES = ["Tea", "tea", "Zebra", "", None, "b", "a", "Cups & mugs"]


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def stored_facts(session: Session) -> list[tuple[Any, ...]]:
    """Every fact row as the database holds it (the value as its text), in insertion order."""
    if session.get_bind().dialect.name == "postgresql":
        query = (
            "SELECT installation_id, customer_id, name, value::text, source, fetched_at::text"
            " FROM customer_facts ORDER BY id"
        )
    else:
        query = (
            "SELECT installation_id, customer_id, name, value, typeof(value), source, fetched_at"
            " FROM customer_facts ORDER BY id"
        )
    return [tuple(row) for row in session.connection().exec_driver_sql(query)]


@pytest.mark.parametrize("categories", [CATEGORIES, PLAIN_CATEGORIES], ids=["escaped", "plain"])
def test_facts_written_at_once_are_those_drawn_customer_by_customer(
    session: Session, categories: list[str | None]
) -> None:
    installations = [
        Installation(platform="zendesk", account=f"facts-{n}", display_name="Facts")
        for n in range(2)
    ]
    session.add_all(installations)
    session.flush()
    installation_id = installations[0].id
    customers = [
        Customer(installation_id=i.id, name=f"C{n}") for i in installations for n in range(40)
    ]
    session.add_all(customers)
    session.flush()
    orders: list[dict[str, Any]] = []
    for n, customer in enumerate(customers):
        for k in range(n % 9):
            orders.append(
                {
                    "installation_id": customer.installation_id,
                    "customer_id": customer.id,
                    "external_id": f"O-{customer.id}-{k}",
                    # Some with microseconds, some a year ago to the second, some after now.
                    "placed_at": NOW
                    - timedelta(days=365)
                    + timedelta(days=(n * 37 + k * 91) % 500 - 120, microseconds=k % 2 * 1_234),
                    "amount_cents": 100 * n + k,
                    "discount_code": None,
                    "category": categories[(n + k * k) % len(categories)],
                    "source": "csv",
                    "status": None,
                    "fulfillment_status": None,
                    "tracking_url": None,
                    "item_count": None,
                }
            )
    orders.append({**orders[0], "external_id": "O-edge", "placed_at": NOW - timedelta(days=365)})
    insert_rows(session, Order.__table__, orders)  # type: ignore[arg-type]
    drawn: list[dict[str, Any]] = []
    buyers = 0
    for customer in customers:
        if customer.installation_id != installation_id:
            continue
        history = [
            (o["placed_at"], o["amount_cents"], o["category"])
            for o in orders
            if o["customer_id"] == customer.id
        ]
        facts = order_facts(history, now=NOW)
        buyers += bool(facts)
        drawn.extend(fact_rows(installation_id, customer.id, facts, now=NOW))
    insert_rows(session, CustomerFact.__table__, drawn)  # type: ignore[arg-type]
    expected = stored_facts(session)
    escapes = any('\\"' in str(row) or "\\u" in str(row) for row in expected)
    assert escapes == (categories is CATEGORIES)
    session.execute(sa.delete(CustomerFact))

    insert_order_facts(session, installation_id=installation_id, now=NOW)
    assert stored_facts(session) == expected
    assert len(expected) == 7 * buyers
