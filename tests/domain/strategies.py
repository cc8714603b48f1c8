"""Hypothesis strategies and builders for order histories."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from hypothesis import strategies as st

from plugin.domain.order_history import CustomerHistory, OrderRecord

# Histories start on or after this day; a leap year, so leap days turn up.
EPOCH = date(2020, 1, 1)
SPAN_DAYS = 3 * 365

CATEGORIES = ("Coffee beans", "Tea", "Kitchen", "Gift sets")


def at(day: date, hour: int = 12) -> datetime:
    """A moment on `day`."""
    return datetime.combine(day, time(hour))


def history_on(
    days: Iterable[date],
    *,
    amount_cents: int = 50_00,
    discounted: Iterable[bool] = (),
    customer_since: date | None = None,
) -> CustomerHistory:
    """A history with one order at noon on each day; `discounted` flags them in turn."""
    days = list(days)
    flags = list(discounted) or [False] * len(days)
    return CustomerHistory.of(
        (OrderRecord(at(day), amount_cents, flag) for day, flag in zip(days, flags, strict=True)),
        customer_since=customer_since,
    )


orders = st.builds(
    OrderRecord,
    placed_at=st.datetimes(
        min_value=at(EPOCH, 0), max_value=at(EPOCH + timedelta(days=SPAN_DAYS), 0)
    ),
    amount_cents=st.integers(min_value=0, max_value=500_000),
    discounted=st.booleans(),
    category=st.sampled_from((None, *CATEGORIES)),
)


@st.composite
def histories(draw: st.DrawFn, *, min_orders: int = 0, max_orders: int = 40) -> CustomerHistory:
    """A history of random orders, sometimes with an account opened before the first."""
    drawn = draw(st.lists(orders, min_size=min_orders, max_size=max_orders))
    since = draw(st.none() | st.dates(min_value=EPOCH - timedelta(days=400), max_value=EPOCH))
    return CustomerHistory.of(drawn, customer_since=since)


@st.composite
def regular_histories(draw: st.DrawFn) -> CustomerHistory:
    """A history of orders every few days or weeks, with pauses: a realistic lifecycle."""
    day = draw(st.dates(min_value=EPOCH, max_value=EPOCH + timedelta(days=365)))
    days = [day]
    for gap in draw(
        st.lists(st.integers(min_value=0, max_value=60) | st.integers(400, 900), max_size=30)
    ):
        day += timedelta(days=gap)
        days.append(day)
    return history_on(days)


todays = st.dates(min_value=EPOCH, max_value=EPOCH + timedelta(days=SPAN_DAYS + 800))
