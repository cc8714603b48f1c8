"""Order histories: sorted orders, the view at a day, and the purchase facts drawn from them."""

from __future__ import annotations

import dataclasses
import pickle
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.domain.order_history import (
    TOP_CATEGORY_COUNT,
    TRAILING_YEAR,
    CustomerHistory,
    OrderRecord,
    PurchaseFacts,
    ago_phrase,
    days_phrase,
)
from tests.domain.strategies import at, histories, history_on, todays


def test_of_sorts_orders_and_the_constructor_insists_on_it() -> None:
    late, early = OrderRecord(at(date(2024, 5, 2)), 100), OrderRecord(at(date(2024, 5, 1)), 200)
    assert CustomerHistory.of([late, early]).orders == (early, late)
    with pytest.raises(ValueError, match="oldest first"):
        CustomerHistory((late, early))


def test_an_order_amount_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        OrderRecord(at(date(2024, 5, 1)), -1)


def test_an_order_record_is_a_frozen_value() -> None:
    # Its __init__ is written by hand (for speed): still the dataclass's fields, defaults,
    # equality, hash, repr and copies, and no assignment.
    record = OrderRecord(at(date(2024, 5, 1)), 250, category="Tea")
    assert record == OrderRecord(at(date(2024, 5, 1)), 250, False, "Tea")
    assert hash(record) == hash(OrderRecord(at(date(2024, 5, 1)), 250, False, "Tea"))
    assert [f.name for f in dataclasses.fields(record)] == [
        "placed_at",
        "amount_cents",
        "discounted",
        "category",
    ]
    assert repr(record) == (
        "OrderRecord(placed_at=datetime.datetime(2024, 5, 1, 12, 0), amount_cents=250, "
        "discounted=False, category='Tea')"
    )
    assert dataclasses.replace(record, discounted=True) == OrderRecord(
        record.placed_at, 250, True, "Tea"
    )
    assert pickle.loads(pickle.dumps(record)) == record  # noqa: S301 (our own bytes)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.amount_cents = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="negative"):
        dataclasses.replace(record, amount_cents=-5)


def test_through_keeps_the_whole_day_and_nothing_after() -> None:
    day = date(2024, 2, 29)
    history = CustomerHistory.of(
        [
            OrderRecord(datetime(2024, 2, 29, 23, 59), 100),
            OrderRecord(datetime(2024, 3, 1, 0, 0), 100),
        ]
    )
    assert [o.placed_at.date() for o in history.through(day).orders] == [day]
    assert history.through(day + timedelta(days=1)) is history
    assert history.through(day - timedelta(days=1)).orders == ()


def test_orders_on_the_same_day_are_one_order_day() -> None:
    day = date(2024, 6, 3)
    history = CustomerHistory.of([OrderRecord(at(day, hour), 100) for hour in (8, 12, 18)])
    assert history.order_days == (day,)


def test_first_seen_is_the_earlier_of_account_and_first_order() -> None:
    assert CustomerHistory().first_seen is None
    assert CustomerHistory(customer_since=date(2020, 1, 1)).first_seen == date(2020, 1, 1)
    history = history_on([date(2021, 3, 1)], customer_since=date(2020, 1, 1))
    assert history.first_seen == date(2020, 1, 1)
    history = history_on([date(2021, 3, 1)], customer_since=date(2022, 1, 1))
    assert history.first_seen == date(2021, 3, 1)


def test_facts_of_an_empty_history() -> None:
    facts = PurchaseFacts.of(CustomerHistory(), now=datetime(2024, 1, 1))
    assert facts == PurchaseFacts(0, 0, 0, 0, None, None, None, None, ())


def test_the_trailing_year_is_the_365_days_before_now_as_the_stored_facts_count_it() -> None:
    now = datetime(2025, 2, 28, 12)  # 365 days after a leap day
    history = CustomerHistory.of(
        [
            OrderRecord(datetime(2024, 2, 29, 12), 1_000),  # exactly 365 days before: out
            OrderRecord(datetime(2024, 2, 29, 12, 1), 2_000, discounted=True),
            OrderRecord(datetime(2025, 2, 28, 20), 4_000),  # later today: counted
        ]
    )
    facts = PurchaseFacts.of(history, now=now)
    assert (facts.order_count, facts.total_spend_cents) == (3, 7_000)
    assert (facts.orders_12m, facts.spend_12m_cents) == (2, 6_000)
    assert facts.first_order_on == date(2024, 2, 29)
    assert facts.days_since_last_order == 0
    assert facts.discount_share == pytest.approx(1 / 3)


def test_top_categories_rank_by_orders_then_name() -> None:
    day = at(date(2024, 1, 1))
    names = ["Tea", "Garden", "Garden", "Kitchen", "Tea", "Books", None, None, None]
    history = CustomerHistory.of([OrderRecord(day, 100, category=name) for name in names])
    assert PurchaseFacts.of(history, now=day).top_categories == ("Garden", "Tea", "Books")


def facts_by_definition(history: CustomerHistory, *, now: datetime) -> PurchaseFacts:
    """The facts read straight off their definitions: a pass over the orders for each."""
    today = now.date()
    orders = history.through(today).orders
    in_year = [o for o in orders if o.placed_at > now - TRAILING_YEAR]
    categories = Counter(o.category for o in orders if o.category is not None)
    ranked = sorted(categories.items(), key=lambda item: (-item[1], item[0]))
    last_day = orders[-1].placed_at.date() if orders else None
    return PurchaseFacts(
        order_count=len(orders),
        total_spend_cents=sum(o.amount_cents for o in orders),
        orders_12m=len(in_year),
        spend_12m_cents=sum(o.amount_cents for o in in_year),
        first_order_on=orders[0].placed_at.date() if orders else None,
        last_order_on=last_day,
        days_since_last_order=(today - last_day).days if last_day else None,
        discount_share=(sum(o.discounted for o in orders) / len(orders) if orders else None),
        top_categories=tuple(name for name, _ in ranked[:TOP_CATEGORY_COUNT]),
    )


@settings(max_examples=300)
@given(histories(max_orders=60), todays, st.integers(min_value=0, max_value=86_399))
def test_facts_in_one_pass_are_the_definitions(
    history: CustomerHistory, today: date, second: int
) -> None:
    # One pass over the orders for every sum and count: the same facts, to the float.
    now = at(today, 0) + timedelta(seconds=second)
    assert PurchaseFacts.of(history, now=now) == facts_by_definition(history, now=now)


@given(histories(), todays)
def test_facts_are_consistent(history: CustomerHistory, today: date) -> None:
    facts = PurchaseFacts.of(history, now=at(today))
    assert 0 <= facts.orders_12m <= facts.order_count
    assert 0 <= facts.spend_12m_cents <= facts.total_spend_cents
    assert (facts.discount_share is None) == (facts.order_count == 0)
    if facts.discount_share is not None:
        assert 0 <= facts.discount_share <= 1
    if facts.days_since_last_order is not None:
        assert facts.days_since_last_order >= 0


@pytest.mark.parametrize(
    ("days", "phrase", "ago"),
    [(0, "0 days", "today"), (1, "1 day", "yesterday"), (12, "12 days", "12 days ago")],
)
def test_day_phrases(days: int, phrase: str, ago: str) -> None:
    assert (days_phrase(days), ago_phrase(days)) == (phrase, ago)
