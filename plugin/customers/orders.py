"""Derive a customer's order facts (counts, spend, dates, categories) from stored orders."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from plugin.customers.bulk_writes import insert_rows, json_text, one_of, unindexed
from plugin.models import Customer, CustomerFact, CustomerSegment, Order

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
STREAM_ROWS = 10_000
WRITE_ROWS = 10_000

_FACTS = cast(sa.Table, CustomerFact.__table__)
_SEGMENTS = cast(sa.Table, CustomerSegment.__table__)
_ORDERS = cast(sa.Table, Order.__table__)
_CUSTOMERS = cast(sa.Table, Customer.__table__)
_CUSTOMER_ORDERS = _CUSTOMERS.join(_ORDERS, _ORDERS.c.customer_id == _CUSTOMERS.c.id)


def refresh_order_facts(
    session: Session,
    *,
    installation_id: int,
    now: datetime,
    customer_ids: Collection[int] | None = None,
) -> int:
    """Recompute order facts for an installation's customers; return how many were updated.

    Two aggregate queries, both streamed in customer order (per customer: counts, sums and
    dates; per customer and category: a count), are merged as they come, so memory stays
    bounded however many customers there are; the facts are written in batches.
    """
    cutoff = now - timedelta(days=365)
    if customer_ids is None:
        scope = [_ORDERS.c.installation_id == installation_id]
        stale = [CustomerFact.installation_id == installation_id, CustomerFact.source == SOURCE]
    else:
        scope = [
            unindexed(_ORDERS.c.installation_id) == installation_id,
            one_of(session, _ORDERS.c.customer_id, customer_ids),
        ]
        stale = [
            unindexed(CustomerFact.installation_id) == installation_id,
            CustomerFact.source == SOURCE,
            one_of(session, CustomerFact.customer_id, customer_ids),
        ]
    # Customers with no orders left lose their order facts too. (An ORM delete: it flushes
    # the session first, and forgets the deleted facts the session holds.)
    session.execute(sa.delete(CustomerFact).where(*stale))
    # Facts written here, outside a profile pass, are not what the segment row's stamp
    # vouches for (another moment, perhaps other orders): a recompute rebuilds them.
    stamped = [_SEGMENTS.c.installation_id == installation_id]
    if customer_ids is not None:
        stamped = [
            unindexed(_SEGMENTS.c.installation_id) == installation_id,
            one_of(session, _SEGMENTS.c.customer_id, customer_ids),
        ]
    session.execute(
        sa.update(_SEGMENTS)
        .where(*stamped, _SEGMENTS.c.derived_stamp.is_not(None))
        .values(derived_stamp=None)
    )
    in_year = _ORDERS.c.placed_at > cutoff
    totals = session.execute(
        sa.select(
            _ORDERS.c.customer_id,
            sa.func.count(),
            sa.func.sum(_ORDERS.c.amount_cents),
            sa.func.sum(sa.case((in_year, 1), else_=0)),
            sa.func.sum(sa.case((in_year, _ORDERS.c.amount_cents), else_=0)),
            sa.func.min(_ORDERS.c.placed_at),
            sa.func.max(_ORDERS.c.placed_at),
        )
        .where(*scope)
        .group_by(_ORDERS.c.customer_id)
        .order_by(_ORDERS.c.customer_id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    categories = _top_categories(
        session.execute(
            sa.select(_ORDERS.c.customer_id, _ORDERS.c.category, sa.func.count().label("n"))
            .where(*scope, _ORDERS.c.category.is_not(None))
            .group_by(_ORDERS.c.customer_id, _ORDERS.c.category)
            .order_by(_ORDERS.c.customer_id, sa.desc("n"), _ORDERS.c.category)
            .execution_options(yield_per=STREAM_ROWS)
        )
    )
    next_categories = next(categories, None)
    rows: list[dict[str, Any]] = []
    customers = 0
    for customer_id, count, spend, count_12m, spend_12m, first_at, last_at in totals:
        customers += 1
        while next_categories is not None and next_categories[0] < customer_id:
            next_categories = next(categories, None)
        top: list[str] = []
        if next_categories is not None and next_categories[0] == customer_id:
            top = next_categories[1]
            next_categories = next(categories, None)
        values = {
            "order_count": count,
            "total_spend_cents": int(spend or 0),
            "orders_12m": int(count_12m or 0),
            "spend_12m_cents": int(spend_12m or 0),
            "first_order_at": first_at.isoformat(),
            "last_order_at": last_at.isoformat(),
            "top_categories": top,
        }
        rows.extend(fact_rows(installation_id, customer_id, values, now=now))
        if len(rows) >= WRITE_ROWS:
            insert_rows(session, _FACTS, rows)
            rows = []
    insert_rows(session, _FACTS, rows)
    return customers


def insert_order_facts(
    session: Session,
    *,
    installation_id: int,
    now: datetime,
    between: tuple[int, int] | None = None,
    escaped: bool = True,
) -> None:
    """Write the order facts of every buyer of an installation in one set-based statement.
    Their old order facts must be gone.

    With `between` (low, high), only the buyers with customer ids in that range: ranges
    written in ascending order write the same rows in the same order as one statement. With
    `escaped=False` the names JSON escapes are left as placeholders, for
    `rewrite_escaped_order_facts` to write once the last range is in.

    The same rows, byte for byte and in the same order, as `fact_rows(order_facts(...))` of
    each buyer written by `insert_rows`: the aggregates, the top categories (ranked by a
    window function, names compared as Python compares them) and the values' JSON text are
    drawn by the database, instead of 7 rows a buyer built in Python and sent back. The top
    categories of a buyer with a name JSON would escape (rare) are written again from Python.
    """
    dialect = session.get_bind().dialect.name
    in_year = _ORDERS.c.placed_at > now - timedelta(days=365)
    # The installation's customers' orders, walked in customer order through the history
    # index, which holds every column read here: no sort to group them, no table lookups
    # (filtered on orders.installation_id instead, SQLite looks up every order and sorts).
    scope = _CUSTOMERS.c.installation_id == installation_id
    if between is not None:
        scope = sa.and_(scope, _CUSTOMERS.c.id.between(*between))
    totals = (
        sa.select(
            _CUSTOMERS.c.id.label("customer_id"),
            sa.func.count().label("order_count"),
            sa.func.sum(_ORDERS.c.amount_cents).label("spend"),
            sa.func.sum(sa.case((in_year, 1), else_=0)).label("count_12m"),
            sa.func.sum(sa.case((in_year, _ORDERS.c.amount_cents), else_=0)).label("spend_12m"),
            sa.func.min(_ORDERS.c.placed_at).label("first_at"),
            sa.func.max(_ORDERS.c.placed_at).label("last_at"),
        )
        .select_from(_CUSTOMER_ORDERS)
        .where(scope)
        .group_by(_CUSTOMERS.c.id)
        .cte("totals")
        # Computed once: SQLite would otherwise run it again for each of the 7 names.
        .prefix_with("MATERIALIZED")
    )
    top = _top_categories_of(dialect, scope).cte("top")
    names = sa.union_all(
        *(
            sa.select(
                sa.literal(position, sa.Integer).label("position"),
                sa.literal(name, sa.String).label("name"),
            )
            for position, name in enumerate(FACT_NAMES)
        )
    ).cte("names")
    text = _JsonText(dialect)
    value = sa.case(
        (names.c.name == "order_count", text.number(totals.c.order_count)),
        (names.c.name == "total_spend_cents", text.number(totals.c.spend)),
        (names.c.name == "orders_12m", text.number(totals.c.count_12m)),
        (names.c.name == "spend_12m_cents", text.number(totals.c.spend_12m)),
        (names.c.name == "first_order_at", text.moment(totals.c.first_at)),
        (names.c.name == "last_order_at", text.moment(totals.c.last_at)),
        # Names JSON escapes are written from Python below; until then, a placeholder.
        (top.c.plain == 0, "null"),
        else_=text.names(top.c.first, top.c.second, top.c.third),
    )
    rows = (
        sa.select(
            sa.literal(installation_id, sa.Integer),
            totals.c.customer_id,
            names.c.name,
            text.value(value),
            sa.literal(SOURCE, sa.String),
            sa.literal(now, sa.DateTime),
        )
        .select_from(
            totals.outerjoin(top, top.c.customer_id == totals.c.customer_id).join(names, sa.true())
        )
        .order_by(totals.c.customer_id, names.c.position)
    )
    columns = ["installation_id", "customer_id", "name", "value", "source", "fetched_at"]
    session.execute(sa.insert(_FACTS).from_select(columns, rows))
    if escaped:
        rewrite_escaped_order_facts(session, installation_id=installation_id)


def rewrite_escaped_order_facts(session: Session, *, installation_id: int) -> None:
    """Write the top categories of the buyers whose top three hold a name JSON escapes, which
    `insert_order_facts` left as placeholders."""
    dialect = session.get_bind().dialect.name
    scope = _CUSTOMERS.c.installation_id == installation_id
    # Only if some order's category is a name JSON escapes (rare) can a buyer's top three hold
    # one: a scan that stops at the first such name, instead of ranking every buyer's
    # categories a second time (0.8 s at a million orders on SQLite).
    if not session.execute(
        sa.select(
            sa.exists()
            .select_from(_CUSTOMER_ORDERS)
            .where(scope, _escaped_in_json(dialect, _ORDERS.c.category))
        )
    ).scalar():
        return
    top = _top_categories_of(dialect, scope).cte("top")
    text = _JsonText(dialect)
    escaped = [
        {"customer": customer_id, "text": json_text([name for name in top3 if name is not None])}
        for customer_id, *top3 in session.execute(
            sa.select(top.c.customer_id, top.c.first, top.c.second, top.c.third).where(
                top.c.plain == 0
            )
        )
    ]
    if escaped:
        session.execute(
            sa.update(_FACTS)
            .where(
                unindexed(_FACTS.c.installation_id) == installation_id,
                _FACTS.c.customer_id == sa.bindparam("customer"),
                _FACTS.c.name == "top_categories",
                _FACTS.c.source == SOURCE,
            )
            .values(value=text.value(sa.bindparam("text", type_=sa.String))),
            escaped,
        )


def _top_categories_of(dialect: str, scope: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """Per buyer with categories: their first, second and third most ordered (count down,
    then name as Python orders strings: by code point, hence COLLATE "C" on PostgreSQL), and
    whether all of them are plain (JSON writes them as they are)."""
    category = _ORDERS.c.category
    by_code_point = sa.collate(category, "C") if dialect == "postgresql" else category
    ranked = (
        sa.select(
            _CUSTOMERS.c.id.label("customer_id"),
            category,
            sa.func.row_number()
            .over(
                partition_by=_CUSTOMERS.c.id,
                order_by=(sa.func.count().desc(), by_code_point),
            )
            .label("rank"),
        )
        .select_from(_CUSTOMER_ORDERS)
        .where(scope, category.is_not(None))
        .group_by(_CUSTOMERS.c.id, category)
        .subquery("ranked")
    )

    def ranked_at(rank: int) -> sa.ColumnElement[Any]:
        return sa.func.max(sa.case((ranked.c.rank == rank, ranked.c.category)))

    return (
        sa.select(
            ranked.c.customer_id,
            ranked_at(1).label("first"),
            ranked_at(2).label("second"),
            ranked_at(3).label("third"),
            sa.func.min(sa.case((_escaped_in_json(dialect, ranked.c.category), 0), else_=1)).label(
                "plain"
            ),
        )
        .where(ranked.c.rank <= TOP_CATEGORY_COUNT)
        .group_by(ranked.c.customer_id)
    )


def _escaped_in_json(dialect: str, name: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """Whether JSON writes the name otherwise than as it is: a quote, a backslash, or anything
    outside printable ASCII in it."""
    if dialect == "postgresql":
        escaped = name.regexp_match("[^ -~]")
        quoted = [sa.func.strpos(name, mark) > 0 for mark in ('"', "\\")]
    else:
        escaped = name.op("GLOB")("*[^ -~]*")
        quoted = [sa.func.instr(name, mark) > 0 for mark in ('"', "\\")]
    return sa.or_(escaped, *quoted)


@dataclass(frozen=True)
class _JsonText:
    """SQL expressions for the JSON text `json_text` writes, in the database's own dialect.

    On SQLite the value is the text itself (JSON columns have numeric affinity, so a number's
    text is kept as the number, as when Python sends it); on PostgreSQL, text cast to json,
    which keeps it as written.
    """

    dialect: str

    def number(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        if self.dialect == "postgresql":
            return sa.cast(sa.cast(column, sa.BigInteger), sa.Text)
        return sa.cast(column, sa.Text)

    def moment(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """'"' + datetime.isoformat() + '"': microseconds only when there are some."""
        seconds: sa.ColumnElement[Any]
        if self.dialect == "postgresql":
            seconds = sa.func.to_char(column, 'YYYY-MM-DD"T"HH24:MI:SS')
            fraction = sa.case(
                (sa.func.date_trunc("second", column) == column, ""),
                else_=sa.func.to_char(column, ".US"),
            )
        else:
            # Stored as text, as SQLAlchemy writes it: YYYY-MM-DD HH:MM:SS.ffffff
            stored = sa.type_coerce(column, sa.String)
            seconds = sa.func.substr(stored, 1, 10) + "T" + sa.func.substr(stored, 12, 8)
            tail = sa.func.substr(stored, 20, 7)
            fraction = sa.case((tail.in_(["", ".000000"]), ""), else_=tail)
        return sa.literal('"') + seconds + fraction + '"'

    def names(self, *names: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """A JSON list of the names that are not NULL (plain ones; see `_top_categories_of`)."""
        first, *others = (sa.type_coerce(name, sa.String) for name in names)
        listed: sa.ColumnElement[str] = sa.func.coalesce('"' + first + '"', "")
        for other in others:
            listed = listed + sa.func.coalesce(', "' + other + '"', "")
        return "[" + listed + "]"

    def value(self, text: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        if self.dialect == "postgresql":
            return sa.cast(text, postgresql.JSON)
        return text


def customers_with_stale_facts(
    session: Session, installation_id: int, customer_ids: Collection[int]
) -> set[int]:
    """Of these customers, those whose stored order facts do not match their orders.

    What an import killed before (or during) its last refresh leaves: facts missing, or
    counted from fewer orders. Re-running the import finds every row unchanged; this check
    on the customers of its unchanged rows (count, spend and last order, one query each for
    orders and facts) is how the re-run still repairs them.
    """
    if not customer_ids:
        return set()
    actual: dict[int, dict[str, Any]] = {
        customer_id: {
            "order_count": count,
            "total_spend_cents": int(spend or 0),
            "last_order_at": last_at.isoformat(),
        }
        for customer_id, count, spend, last_at in session.execute(
            sa.select(
                _ORDERS.c.customer_id,
                sa.func.count(),
                sa.func.sum(_ORDERS.c.amount_cents),
                sa.func.max(_ORDERS.c.placed_at),
            )
            .where(
                unindexed(_ORDERS.c.installation_id) == installation_id,
                one_of(session, _ORDERS.c.customer_id, customer_ids),
            )
            .group_by(_ORDERS.c.customer_id)
        )
    }
    stored: dict[int, dict[str, Any]] = {}
    for customer_id, name, value in session.execute(
        sa.select(_FACTS.c.customer_id, _FACTS.c.name, _FACTS.c.value).where(
            unindexed(_FACTS.c.installation_id) == installation_id,
            _FACTS.c.source == SOURCE,
            _FACTS.c.name.in_(("order_count", "total_spend_cents", "last_order_at")),
            one_of(session, _FACTS.c.customer_id, customer_ids),
        )
    ):
        stored.setdefault(customer_id, {})[name] = value
    return {
        customer_id
        for customer_id in customer_ids
        if stored.get(customer_id, {}) != actual.get(customer_id, {})
    }


def order_facts(
    orders: Iterable[tuple[datetime, int, str | None]], *, now: datetime
) -> dict[str, Any]:
    """One customer's order facts from their (placed_at, amount_cents, category) orders.

    The same values `refresh_order_facts` draws from the database's aggregates, for a caller
    that has the orders in hand anyway (a bulk refresh reads them to profile the customer);
    empty for a customer without orders, who has no order facts.
    """
    cutoff = now - timedelta(days=365)
    count = spend = count_12m = spend_12m = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    categories: dict[str, int] = {}
    for placed_at, amount_cents, category in orders:
        count += 1
        spend += amount_cents
        if placed_at > cutoff:
            count_12m += 1
            spend_12m += amount_cents
        if first_at is None or placed_at < first_at:
            first_at = placed_at
        if last_at is None or placed_at > last_at:
            last_at = placed_at
        if category is not None:
            categories[category] = categories.get(category, 0) + 1
    if first_at is None or last_at is None:
        return {}
    ranked = sorted(categories.items(), key=lambda item: (-item[1], item[0]))
    return {
        "order_count": count,
        "total_spend_cents": spend,
        "orders_12m": count_12m,
        "spend_12m_cents": spend_12m,
        "first_order_at": first_at.isoformat(),
        "last_order_at": last_at.isoformat(),
        "top_categories": [name for name, _count in ranked[:TOP_CATEGORY_COUNT]],
    }


def fact_rows(
    installation_id: int, customer_id: int, facts: Mapping[str, Any], *, now: datetime
) -> list[dict[str, Any]]:
    """The customer_facts rows that store a customer's order facts."""
    return [
        {
            "installation_id": installation_id,
            "customer_id": customer_id,
            "name": name,
            "value": value,
            "source": SOURCE,
            "fetched_at": now,
        }
        for name, value in facts.items()
    ]


def delete_order_facts(
    session: Session, installation_id: int, customer_ids: Collection[int]
) -> None:
    """Remove some customers' order facts (an ORM delete: the session forgets them too)."""
    session.execute(
        sa.delete(CustomerFact).where(
            unindexed(CustomerFact.installation_id) == installation_id,
            CustomerFact.source == SOURCE,
            one_of(session, CustomerFact.customer_id, customer_ids),
        )
    )


def _top_categories(rows: Iterable[Any]) -> Iterator[tuple[int, list[str]]]:
    """Each customer's most ordered categories, from rows by customer, count down, name."""
    current: int | None = None
    top: list[str] = []
    for customer_id, category, _count in rows:
        if customer_id != current:
            if current is not None:
                yield current, top
            current, top = customer_id, []
        if len(top) < TOP_CATEGORY_COUNT:
            top.append(category)
    if current is not None:
        yield current, top
