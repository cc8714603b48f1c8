"""Derive a customer's order facts (counts, spend, dates, categories) from stored orders."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.models import CustomerFact, Order

SOURCE = "orders"
FACT_NAMES = (
    "order_count",
    "total_spend_cents",
    "orders_12m",
    "spend_12m_cents",
    "first_order_at",
    "last_order_at",
    "top_categories",
)
TOP_CATEGORY_COUNT = 3


def refresh_order_facts(
    session: Session,
    *,
    installation_id: int,
    now: datetime,
    customer_ids: Collection[int] | None = None,
) -> int:
    """Recompute order facts for an installation's customers; return how many were updated."""
    cutoff = now - timedelta(days=365)
    scope = [Order.installation_id == installation_id]
    if customer_ids is not None:
        scope.append(Order.customer_id.in_(customer_ids))
    in_year = Order.placed_at > cutoff
    totals = session.execute(
        sa.select(
            Order.customer_id,
            sa.func.count(),
            sa.func.sum(Order.amount_cents),
            sa.func.sum(sa.case((in_year, 1), else_=0)),
            sa.func.sum(sa.case((in_year, Order.amount_cents), else_=0)),
            sa.func.min(Order.placed_at),
            sa.func.max(Order.placed_at),
        )
        .where(*scope)
        .group_by(Order.customer_id)
    ).all()
    categories: dict[int, list[str]] = defaultdict(list)
    for customer_id, category, _count in session.execute(
        sa.select(Order.customer_id, Order.category, sa.func.count().label("n"))
        .where(*scope, Order.category.is_not(None))
        .group_by(Order.customer_id, Order.category)
        .order_by(Order.customer_id, sa.desc("n"), Order.category)
    ):
        if category is not None and len(categories[customer_id]) < TOP_CATEGORY_COUNT:
            categories[customer_id].append(category)

    stale = [CustomerFact.installation_id == installation_id, CustomerFact.source == SOURCE]
    if customer_ids is not None:
        stale.append(CustomerFact.customer_id.in_(customer_ids))
    # Customers with no orders left lose their order facts too.
    session.execute(sa.delete(CustomerFact).where(*stale))
    rows: list[dict[str, Any]] = []
    for customer_id, count, spend, count_12m, spend_12m, first_at, last_at in totals:
        values = {
            "order_count": count,
            "total_spend_cents": int(spend or 0),
            "orders_12m": int(count_12m or 0),
            "spend_12m_cents": int(spend_12m or 0),
            "first_order_at": first_at.isoformat(),
            "last_order_at": last_at.isoformat(),
            "top_categories": categories.get(customer_id, []),
        }
        rows.extend(
            {
                "installation_id": installation_id,
                "customer_id": customer_id,
                "name": name,
                "value": value,
                "source": SOURCE,
                "fetched_at": now,
            }
            for name, value in values.items()
        )
    if rows:
        session.execute(sa.insert(CustomerFact), rows)
    return len(totals)
