"""Find an installation's customer for a helpdesk requester and read their stored facts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers import orders
from plugin.customers.bulk_writes import unindexed
from plugin.customers.phone_region import phone_region
from plugin.customers.records import normalize_email
from plugin.domain.helpdesk import Person
from plugin.domain.phones import phone_key_or_none
from plugin.domain.recognition import MatchedBy, OrderStats
from plugin.models import Customer, CustomerFact, Order


def find_customer(session: Session, *, installation_id: int, person: Person) -> Customer | None:
    """Match a requester by helpdesk user id, then email, then phone number."""
    found = match_customer(session, installation_id=installation_id, person=person)
    return found[0] if found is not None else None


def match_customer(
    session: Session, *, installation_id: int, person: Person
) -> tuple[Customer, MatchedBy] | None:
    """Match a requester as `find_customer` does, and say by what the record was found."""
    for matched_by, value in _candidates(session, installation_id, person):
        customer = _matched(session, installation_id, matched_by, value)
        if customer is not None:
            return customer, matched_by
    return None


def customer_by_helpdesk_id(
    session: Session, *, installation_id: int, helpdesk_user_id: str
) -> Customer | None:
    """The customer known by this helpdesk user id, `match_customer`'s first choice."""
    return _matched(session, installation_id, MatchedBy.HELPDESK_ID, helpdesk_user_id)


def _matched(
    session: Session, installation_id: int, matched_by: MatchedBy, value: str
) -> Customer | None:
    """The customer whose `matched_by` column holds `value`; one found is remembered for the
    rest of the transaction (`session.info`), so the same match asked again (a view reads the
    customer while the helpdesk answers, then matches the requester it answered) is the row
    in the session, checked, without a query."""
    key = ("customer matched", installation_id, matched_by, value)
    transaction = session.get_transaction()
    known = session.info.get(key)
    if known is not None and transaction is not None and known[0] is transaction:
        customer: Customer | None = known[1] if known[1] in session else None
        column = _MATCHED_BY[matched_by].key
        if (
            customer is not None
            and customer.installation_id == installation_id
            and getattr(customer, column) == value
        ):
            return customer
    bound = {"installation_id": installation_id, "value": value}
    found = session.scalars(_match_query(matched_by), bound).first()
    if found is not None:
        # The row itself: the session's identity map holds rows only while something does.
        session.info[key] = (session.get_transaction(), found)
    return found


def _candidates(
    session: Session, installation_id: int, person: Person
) -> Iterator[tuple[MatchedBy, str]]:
    """What the requester may be matched by, in order; the phone's key is made only when
    nothing before it matched (it reads the installation's region and parses the number)."""
    yield MatchedBy.HELPDESK_ID, person.id
    if person.email:
        yield MatchedBy.EMAIL, normalize_email(person.email)
    if person.phone:
        # A voice ticket's requester is often known only by the number they call from, read
        # as imports read theirs; a caller id that is not a number matches nobody by phone.
        phone = phone_key_or_none(person.phone, phone_region(session, installation_id))
        if phone is not None:
            yield MatchedBy.PHONE, phone


# The columns a requester is matched by, in `match_customer`'s order.
_MATCHED_BY = {
    MatchedBy.HELPDESK_ID: Customer.helpdesk_user_id,
    MatchedBy.EMAIL: Customer.email,
    MatchedBy.PHONE: Customer.phone,
}


# These queries run on every view whose customer is not in the read cache: built once, with
# bound values, because building a statement costs SQLAlchemy more than running it.


@cache
def _match_query(matched_by: MatchedBy) -> sa.Select[Customer]:
    return (
        sa.select(Customer)
        .where(
            Customer.installation_id == sa.bindparam("installation_id"),
            _MATCHED_BY[matched_by] == sa.bindparam("value"),
        )
        .order_by(Customer.id)
        .limit(1)
    )


# The customer's own key finds these rows: their installation is only checked again
# (`unindexed`), or SQLite without statistics walks the installation's index instead, every
# fact or order of every customer (tests/sidebar/test_query_plans.py).


@cache
def _facts_query() -> sa.Select[CustomerFact]:
    return sa.select(CustomerFact).where(
        unindexed(CustomerFact.installation_id) == sa.bindparam("installation_id"),
        CustomerFact.customer_id == sa.bindparam("customer_id"),
        CustomerFact.source == sa.bindparam("source"),
    )


@cache
def _all_facts_query() -> sa.Select[Any]:
    facts = cast(sa.Table, CustomerFact.__table__).c
    return sa.select(facts.name, facts.value, facts.source, facts.fetched_at).where(
        unindexed(facts.installation_id) == sa.bindparam("installation_id"),
        facts.customer_id == sa.bindparam("customer_id"),
    )


@cache
def _stored_orders_query(text_moments: bool) -> sa.Select[Any]:
    """Table columns, not the ORM's entity: plain rows (`StoredOrder`'s fields, in order)."""
    table = cast(sa.Table, Order.__table__).c
    return (
        sa.select(
            table.id,
            table.external_id,
            sa.type_coerce(table.placed_at, sa.String) if text_moments else table.placed_at,
            table.amount_cents,
            table.discount_code,
            table.category,
            table.source,
            table.status,
            table.fulfillment_status,
            table.tracking_url,
            table.item_count,
        )
        .where(unindexed(table.installation_id) == sa.bindparam("installation_id"))
        .where(table.customer_id == sa.bindparam("customer_id"))
        .order_by(table.placed_at, table.id)
    )


def _of(customer: Customer) -> dict[str, int]:
    return {"installation_id": customer.installation_id, "customer_id": customer.id}


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """One of a customer's stored orders, as the sidebar reads them (`stored_orders_of`)."""

    id: int
    external_id: str
    placed_at: datetime
    amount_cents: int
    discount_code: str | None
    category: str | None
    source: str
    status: str | None
    fulfillment_status: str | None
    tracking_url: str | None
    item_count: int | None


# A customer's stored facts: by source, each fact's (value, fetched_at) by name.
StoredFacts = Mapping[str, Mapping[str, tuple[object, datetime]]]


def stored_orders_of(
    session: Session, installation_id: int, customer_id: int
) -> tuple[StoredOrder, ...]:
    """Every stored order of the customer, oldest first (ties by id): one statement, from which
    the sidebar draws their profile's history, their recent orders, the order a ticket names
    and where their orders came from."""
    session.flush()
    text_moments = session.get_bind().dialect.name == "sqlite"
    bound = {"installation_id": installation_id, "customer_id": customer_id}
    rows = session.execute(_stored_orders_query(text_moments), bound)
    return tuple(_stored_order(row, text_moments) for row in rows)


def _stored_order(values: Sequence[Any], text_moments: bool) -> StoredOrder:
    """A row of `_stored_orders_query`'s columns as a `StoredOrder`."""
    if text_moments:
        # As `histories.raw_histories` reads them: fromisoformat beats SQLAlchemy's regex.
        moment = datetime.fromisoformat(values[2][:26])
        return StoredOrder(values[0], values[1], moment, *values[3:])
    return StoredOrder(*values)


def stored_orders_and_facts_of(
    session: Session, installation_id: int, customer_id: int
) -> tuple[tuple[StoredOrder, ...], StoredFacts]:
    """`stored_orders_of` and `stored_facts_of` in one statement: what a customer's card is
    drawn from, one round trip instead of two on PostgreSQL (issue 19)."""
    session.flush()
    text_moments = session.get_bind().dialect.name == "sqlite"
    bound = {"installation_id": installation_id, "customer_id": customer_id}
    orders: list[StoredOrder] = []
    facts: dict[str, dict[str, tuple[object, datetime]]] = {}
    for row in session.execute(_orders_and_facts_query(text_moments), bound):
        if row[0] == _FACT:
            facts.setdefault(row[1 + _SOURCE], {})[row[12]] = (row[13], row[14])
        else:
            orders.append(_stored_order(row[1:12], text_moments))
    return tuple(orders), facts


_ORDER, _FACT = 0, 1
_SOURCE = 6  # `source`, among `_stored_orders_query`'s columns


@cache
def _orders_and_facts_query(text_moments: bool) -> sa.CompoundSelect[Any]:
    """The customer's orders (`_stored_orders_query`'s columns, in its order) then their facts,
    each row marked by its kind: a fact's source in the orders' `source` column, its name,
    value and time in three more, the other columns null. Each part finds its rows by the
    same index as its own query (tests/sidebar/test_query_plans.py)."""
    orders_part = _stored_orders_query(text_moments).order_by(None)
    facts = cast(sa.Table, CustomerFact.__table__).c
    order_columns = list(orders_part.selected_columns)

    def null(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.type_coerce(sa.null(), column.type)

    both = sa.union_all(
        orders_part.with_only_columns(
            sa.literal_column(str(_ORDER), sa.Integer).label("kind"),
            *order_columns,
            null(facts.name).label("fact_name"),
            null(facts.value).label("fact_value"),
            null(facts.fetched_at).label("fact_fetched_at"),
        ),
        sa.select(
            sa.literal_column(str(_FACT), sa.Integer),
            *(
                facts.source if index == _SOURCE else null(column)
                for index, column in enumerate(order_columns)
            ),
            facts.name,
            facts.value,
            facts.fetched_at,
        ).where(
            unindexed(facts.installation_id) == sa.bindparam("installation_id"),
            facts.customer_id == sa.bindparam("customer_id"),
        ),
    )
    kind, placed_at, order_id = (both.selected_columns[n] for n in (0, 3, 1))
    return both.order_by(kind, placed_at, order_id)


def stored_facts_of(session: Session, *, customer: Customer) -> StoredFacts:
    """Every stored fact of the customer, by source: one statement."""
    found: dict[str, dict[str, tuple[object, datetime]]] = {}
    for name, value, source, fetched_at in session.execute(_all_facts_query(), _of(customer)):
        found.setdefault(source, {})[name] = (value, fetched_at)
    return found


def order_sources_of(stored: tuple[StoredOrder, ...]) -> tuple[str, ...]:
    """Where these orders came from ("csv", "push", "shopify", ...), each once, sorted."""
    return tuple(sorted({order.source for order in stored}))


def order_stats_of(facts: StoredFacts) -> OrderStats | None:
    """The order facts among a customer's stored facts, or None when not all are there."""
    stored = facts.get(orders.SOURCE, {})
    values: dict[str, Any] = {name: value for name, (value, _fetched_at) in stored.items()}
    if not set(orders.FACT_NAMES) <= values.keys():
        return None
    return OrderStats(
        order_count=int(values["order_count"]),
        total_spend_cents=int(values["total_spend_cents"]),
        orders_12m=int(values["orders_12m"]),
        spend_12m_cents=int(values["spend_12m_cents"]),
        first_order_at=_parse_time(values["first_order_at"]),
        last_order_at=_parse_time(values["last_order_at"]),
        top_categories=tuple(values["top_categories"]),
        source=orders.SOURCE,
        as_of=min(fetched_at for _value, fetched_at in stored.values()),
    )


def facts_from(facts: StoredFacts, source: str) -> dict[str, object]:
    """A customer's stored facts from one source, by name."""
    return {name: value for name, (value, _fetched_at) in facts.get(source, {}).items()}


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def record_facts(
    session: Session, *, customer: Customer, facts: dict[str, object], source: str, now: datetime
) -> None:
    """Store facts read from a source on the customer; a value that did not change is not written.

    `fetched_at` says when the source last gave each value. A fact the source no longer gives
    (an emptied field) is removed, so the stored facts are what the source says now.
    """
    stored = {
        fact.name: fact
        for fact in session.scalars(_facts_query(), _of(customer) | {"source": source})
    }
    for name, value in facts.items():
        fact = stored.pop(name, None)
        if fact is None:
            session.add(
                CustomerFact(
                    installation_id=customer.installation_id,
                    customer_id=customer.id,
                    name=name,
                    value=value,
                    source=source,
                    fetched_at=now,
                )
            )
        elif fact.value != value:
            fact.value = value
            fact.fetched_at = now
    for gone in stored.values():
        session.delete(gone)
    session.flush()
