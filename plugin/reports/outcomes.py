"""What customers did after a rule's suggestion was shown or held out: the outcomes of each
recorded exposure, computed in batches of set-based SQL (`flask effects compute`).

Incremental: a row is final once its longest window (180 days) has passed and is never read
again; a younger row gets the outcomes whose windows have passed, the others stay None. Each
batch is one UPDATE over a range of ids with correlated subqueries, committed on its own, so
memory stays the size of a batch's ids whatever the table holds.

- Repeat contact: another ticket the sidebar saw from the same requester within 7 days.
- Next order within 30 and 90 days, spend in 90 days, lapsed (no order) within 180: from the
  stored orders of the customer (None for someone who is not a customer).
- Satisfaction: the requester's survey answer about the exposure's own ticket, as read from
  the helpdesk into `ticket_ratings` (`plugin/reports/ratings.py`); None while there is none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.models import Order, RuleExposure, SeenTicket, TicketRating

REPEAT_DAYS = 7
ORDER_DAYS = (30, 90)
LAPSED_DAYS = 180
BATCH_SIZE = 20_000


@dataclass(frozen=True)
class ComputeRun:
    batches: int
    rows: int
    finalised: int
    seconds: float


def _plus_days(column: Any, days: int, dialect: str) -> Any:
    """`column` plus `days` days, in the database's own date arithmetic."""
    if dialect == "sqlite":
        # SQLite keeps datetimes as ISO text; datetime() answers in the same form.
        return sa.func.datetime(column, f"+{days} days")
    return column + sa.literal_column(f"interval '{days} days'")


def _outcome_values(dialect: str, now: datetime) -> dict[str, Any]:
    """The SET clause: each outcome computed where its window has passed, else None."""
    e = RuleExposure.__table__.c
    orders = Order.__table__.c
    seen = SeenTicket.__table__.c

    def matured(days: int, value: Any) -> Any:
        return sa.case((e.seen_at <= now - timedelta(days=days), value), else_=None)

    def customer_orders(days: int) -> Any:
        return sa.and_(
            orders.customer_id == e.customer_id,
            orders.installation_id == e.installation_id,
            orders.placed_at > e.seen_at,
            orders.placed_at <= _plus_days(e.seen_at, days, dialect),
        )

    def ordered_within(days: int) -> Any:
        found = sa.exists(sa.select(1).select_from(Order.__table__).where(customer_orders(days)))
        return sa.case((e.customer_id.is_(None), None), else_=matured(days, found))

    repeat = sa.exists(
        sa.select(1)
        .select_from(SeenTicket.__table__)
        .where(
            seen.installation_id == e.installation_id,
            seen.requester_id == e.requester_id,
            seen.ticket_id != e.ticket_id,
            seen.first_seen_at > e.seen_at,
            seen.first_seen_at <= _plus_days(e.seen_at, REPEAT_DAYS, dialect),
        )
    )
    spend = (
        sa.select(sa.func.coalesce(sa.func.sum(orders.amount_cents), 0))
        .where(customer_orders(90))
        .scalar_subquery()
    )
    lapsed = ~sa.exists(
        sa.select(1).select_from(Order.__table__).where(customer_orders(LAPSED_DAYS))
    )
    ratings = TicketRating.__table__.c
    satisfied = (
        sa.select(ratings.satisfied)
        .where(
            ratings.installation_id == e.installation_id,
            ratings.ticket_id == e.ticket_id,
        )
        .scalar_subquery()
    )
    return {
        "repeat_contact_7d": matured(REPEAT_DAYS, repeat),
        "satisfied": satisfied,
        "ordered_30d": ordered_within(30),
        "ordered_90d": ordered_within(90),
        "spend_90d_cents": sa.case((e.customer_id.is_(None), None), else_=matured(90, spend)),
        "lapsed_180d": sa.case((e.customer_id.is_(None), None), else_=matured(LAPSED_DAYS, lapsed)),
        "outcomes_final": e.seen_at <= now - timedelta(days=LAPSED_DAYS),
        "outcomes_at": now,
    }


def compute_outcomes(
    session: Session, *, now: datetime, batch_size: int = BATCH_SIZE
) -> ComputeRun:
    """Fill in the outcomes of every exposure not final yet, a batch of ids at a time."""
    started = time.perf_counter()
    dialect = session.get_bind().dialect.name
    table = RuleExposure.__table__
    e = table.c
    values = _outcome_values(dialect, now)
    after, batches, rows, finalised = 0, 0, 0, 0
    while True:
        window = (
            sa.select(e.id)
            .where(e.outcomes_final.is_(False), e.id > after)
            .order_by(e.id)
            .limit(batch_size)
            .subquery()
        )
        last = session.execute(sa.select(sa.func.max(window.c.id), sa.func.count())).one()
        if last[0] is None:
            break
        high, count = int(last[0]), int(last[1])
        session.execute(
            sa.update(RuleExposure)
            .where(e.id > after, e.id <= high, e.outcomes_final.is_(False))
            .values(values)
            .execution_options(synchronize_session=False)
        )
        finalised += int(
            session.scalar(
                sa.select(sa.func.count())
                .select_from(table)
                .where(e.id > after, e.id <= high, e.outcomes_at == now, e.outcomes_final)
            )
            or 0
        )
        session.commit()
        batches, rows, after = batches + 1, rows + count, high
    return ComputeRun(batches, rows, finalised, time.perf_counter() - started)
