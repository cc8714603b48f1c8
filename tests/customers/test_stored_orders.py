"""A customer's stored orders read once (`lookup.stored_orders_of`), and what the sidebar draws
from them: the recent orders and the one a ticket names (`recent_orders.from_stored`), where
their orders came from, and their profile's history. On both databases."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from plugin.customers import lookup, recent_orders, segmentation
from plugin.customers.histories import history_of
from plugin.models import Customer, CustomerFact, Installation, Order

NOW = datetime(2026, 11, 23, 12, 0, 0, 123456)


@pytest.fixture
def sam(storage_session: Session) -> Customer:
    session = storage_session
    inst = Installation(platform="zendesk", account="acme", display_name="Acme")
    other = Installation(platform="zendesk", account="other", display_name="Other")
    session.add_all([inst, other])
    session.flush()
    sam = Customer(installation_id=inst.id, name="Sam Doe", helpdesk_user_id="7")
    bo = Customer(installation_id=inst.id, name="Bo Roe", helpdesk_user_id="8")
    stranger = Customer(installation_id=other.id, name="Sam Doe", helpdesk_user_id="7")
    session.add_all([sam, bo, stranger])
    session.flush()

    def order(
        who: Customer,
        external_id: str,
        days_ago: float,
        *,
        amount_cents: int = 1000,
        source: str = "csv",
        **fields: object,
    ) -> Order:
        return Order(
            installation_id=who.installation_id,
            customer_id=who.id,
            external_id=external_id,
            placed_at=NOW - timedelta(days=days_ago),
            amount_cents=amount_cents,
            source=source,
            **fields,
        )

    session.add_all(
        [
            # Oldest first as inserted out of order; two at the same moment (ties by id).
            order(sam, "ORD-9", 400, category="Shoes", discount_code="WELCOME"),
            order(sam, "ord-100", 30, source="shopify", status="paid"),
            order(sam, "ORD-101", 3, amount_cents=2500, tracking_url="https://t.example/1"),
            order(sam, "ORD-102", 3, item_count=2),
            order(sam, "ORD-103", 2, source="push"),
            order(sam, "ORD-104", 1),
            order(sam, "ORD-105", 0.5, fulfillment_status="fulfilled"),
            order(sam, "ORD-106", 0),
            # Placed after now: stored (a clock ahead), not shown nor profiled, but a source.
            order(sam, "ORD-999", -1, source="future-feed"),
            order(bo, "ORD-200", 1),
            order(stranger, "ORD-300", 1),
        ]
    )
    session.flush()
    return sam


def test_every_order_of_the_customer_is_read_once_oldest_first(
    storage_session: Session, sam: Customer
) -> None:
    stored = lookup.stored_orders_of(storage_session, sam.installation_id, sam.id)
    assert [order.external_id for order in stored] == [
        "ORD-9",
        "ord-100",
        "ORD-101",
        "ORD-102",
        "ORD-103",
        "ORD-104",
        "ORD-105",
        "ORD-106",
        "ORD-999",
    ]
    first = stored[0]
    assert first.placed_at == NOW - timedelta(days=400)  # microseconds kept
    assert (first.category, first.discount_code, first.source) == ("Shoes", "WELCOME", "csv")
    assert stored[2].tracking_url == "https://t.example/1"
    assert stored[3].item_count == 2
    assert lookup.order_sources_of(stored) == ("csv", "future-feed", "push", "shopify")
    # Scoped to the installation: another installation's customer of the same id reads none.
    assert lookup.stored_orders_of(storage_session, sam.installation_id + 1, sam.id) == ()


def test_the_recent_orders_are_the_latest_placed_by_now_with_the_named_one(
    storage_session: Session, sam: Customer
) -> None:
    stored = lookup.stored_orders_of(storage_session, sam.installation_id, sam.id)
    plain = recent_orders.from_stored(stored, ticket_text="Where is my parcel?", now=NOW)
    # Newest first; the two of one moment newest id first; the future order left out.
    assert [order.number for order in plain.orders] == [
        "ORD-106",
        "ORD-105",
        "ORD-104",
        "ORD-103",
        "ORD-102",
    ]
    assert plain.named is None and plain.source == "stored"

    older = recent_orders.from_stored(stored, ticket_text="About #ORD-9 please", now=NOW)
    assert older.named is not None and older.named.number == "ORD-9"
    assert [order.number for order in older.orders][-1] == "ORD-9"
    assert older.orders[-1].named

    # Any case, with or without "#", as the order's id is stored; the first number mentioned.
    cased = recent_orders.from_stored(stored, ticket_text="order ORD-100 and ORD-104", now=NOW)
    assert cased.named is not None and cased.named.number == "ord-100"

    # An order placed after now is never named.
    assert recent_orders.from_stored(stored, ticket_text="ORD-999", now=NOW).named is None


@pytest.mark.parametrize(
    "text", ["About #ORD-9 please", "order ORD-100 and ORD-104", "ORD-999", "ord-105", "no number"]
)
def test_the_cards_name_the_order_an_action_reads_afresh(
    storage_session: Session, sam: Customer, text: str
) -> None:
    """`named_stored_order` (an action's own read) and `from_stored` (the cards') agree."""
    stored = lookup.stored_orders_of(storage_session, sam.installation_id, sam.id)
    fresh = recent_orders.named_stored_order(
        storage_session, sam.installation_id, sam.id, ticket_text=text, now=NOW
    )
    drawn = recent_orders.from_stored(stored, ticket_text=text, now=NOW).named
    assert (drawn.number if drawn else None) == (fresh.external_id if fresh else None)


def test_the_profile_drawn_from_the_orders_is_the_one_read_from_the_histories(
    storage_session: Session, sam: Customer
) -> None:
    installation = storage_session.get(Installation, sam.installation_id)
    assert installation is not None
    stored = lookup.stored_orders_of(storage_session, sam.installation_id, sam.id)
    history = history_of(
        sam.customer_since,
        [
            (order.placed_at, order.amount_cents, order.discount_code is not None, order.category)
            for order in stored
            if order.placed_at <= NOW
        ],
    )
    drawn = segmentation.profile_of_history(storage_session, installation, history, now=NOW)
    read = segmentation.profile_for_customer(storage_session, installation, sam, now=NOW)
    assert drawn == read
    assert len(history.orders) == 8


def test_orders_and_facts_in_one_statement_are_the_two_reads(
    storage_session: Session, sam: Customer
) -> None:
    """What a customer's card reads in one statement (`stored_orders_and_facts_of`) is what
    `stored_orders_of` and `stored_facts_of` read: every order in order, every fact by source,
    JSON values and times as stored; another customer's and installation's rows left out."""
    session = storage_session
    fetched = NOW - timedelta(hours=3)
    bo = session.query(Customer).filter_by(installation_id=sam.installation_id, name="Bo Roe").one()

    def fact(who: Customer, name: str, value: object, source: str, at: datetime) -> CustomerFact:
        return CustomerFact(
            installation_id=who.installation_id,
            customer_id=who.id,
            name=name,
            value=value,
            source=source,
            fetched_at=at,
        )

    session.add_all(
        [
            fact(sam, "top_categories", ["Shoes", "Bags"], "orders", fetched),
            fact(sam, "order_count", 9, "orders", fetched),
            fact(sam, "plan", {"tier": "gold", "since": "2024-01-02"}, "zendesk", NOW),
            fact(bo, "plan", "silver", "zendesk", NOW),
        ]
    )
    session.flush()
    orders, facts = lookup.stored_orders_and_facts_of(session, sam.installation_id, sam.id)
    assert orders == lookup.stored_orders_of(session, sam.installation_id, sam.id)
    assert len(orders) == 9
    assert facts == lookup.stored_facts_of(session, customer=sam)
    assert facts == {
        "orders": {
            "top_categories": (["Shoes", "Bags"], fetched),
            "order_count": (9, fetched),
        },
        "zendesk": {"plan": ({"tier": "gold", "since": "2024-01-02"}, NOW)},
    }
    # A customer without facts, and without orders; another installation reads nothing.
    assert lookup.stored_orders_and_facts_of(session, bo.installation_id, bo.id)[1] == {
        "zendesk": {"plan": ("silver", NOW)}
    }
    assert lookup.stored_orders_and_facts_of(session, sam.installation_id + 1, sam.id) == ((), {})
