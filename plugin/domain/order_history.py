"""A customer's order history: the input every segment rule reads, and the facts drawn from it."""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property

from plugin.domain.wording import N_, ngettext

# The same window as the stored order facts (plugin/customers/orders.py): placed after now - 365d.
TRAILING_YEAR = timedelta(days=365)
TOP_CATEGORY_COUNT = 3


@dataclass(frozen=True, init=False)
class OrderRecord:
    """One order: when, how much, whether a discount was used, and its main category."""

    placed_at: datetime
    amount_cents: int
    discounted: bool = False
    category: str | None = None

    def __init__(
        self,
        placed_at: datetime,
        amount_cents: int,
        discounted: bool = False,
        category: str | None = None,
    ) -> None:
        # By hand: a frozen dataclass's own __init__ sets each field through
        # object.__setattr__, which took twice as long, and a recompute makes a record for
        # every order (a million at the benchmark's size). Still frozen: assignment raises.
        if amount_cents < 0:
            raise ValueError("an order amount cannot be negative")
        fields = self.__dict__
        fields["placed_at"] = placed_at
        fields["amount_cents"] = amount_cents
        fields["discounted"] = discounted
        fields["category"] = category


@dataclass(frozen=True)
class CustomerHistory:
    """A customer's orders, oldest first, and the day the business first knew them.

    `customer_since` is the account's start where a source gives one; a customer can be known
    (a prospect, an account from before the order data) before their first order.
    """

    orders: tuple[OrderRecord, ...] = ()
    customer_since: date | None = None

    def __post_init__(self) -> None:
        # Any order placed before the one before it? (Compared in C: this runs per customer.)
        moments = [order.placed_at for order in self.orders]
        if any(map(operator.gt, moments, moments[1:])):
            raise ValueError("orders must be oldest first; use CustomerHistory.of() to sort them")

    @classmethod
    def of(
        cls, orders: Iterable[OrderRecord], *, customer_since: date | None = None
    ) -> CustomerHistory:
        """Build a history from orders in any order."""
        return cls(tuple(sorted(orders, key=lambda o: o.placed_at)), customer_since)

    @cached_property
    def order_days(self) -> tuple[date, ...]:
        """The distinct days with an order, oldest first: several orders in a day are one visit."""
        return tuple(sorted({o.placed_at.date() for o in self.orders}))

    @property
    def first_seen(self) -> date | None:
        """The earlier of the account's start and the first order; None for no sign of them."""
        days = [d for d in (self.customer_since, *self.order_days[:1]) if d is not None]
        return min(days, default=None)

    def through(self, day: date) -> CustomerHistory:
        """The history as it stood at the end of `day`: orders placed on that day or before."""
        if not self.orders or self.orders[-1].placed_at.date() <= day:
            return self  # the usual case, and every rule asks: no search
        cut = bisect.bisect_right(self.orders, day, key=lambda o: o.placed_at.date())
        if cut == len(self.orders):
            return self
        return CustomerHistory(self.orders[:cut], self.customer_since)


@dataclass(frozen=True)
class PurchaseFacts:
    """What a customer bought, as of a moment; the numbers segments and personas compare."""

    order_count: int
    total_spend_cents: int
    orders_12m: int
    spend_12m_cents: int
    first_order_on: date | None
    last_order_on: date | None
    days_since_last_order: int | None
    # Share of orders that used a discount, 0.0 to 1.0; None without orders.
    discount_share: float | None
    top_categories: tuple[str, ...]

    @classmethod
    def of(cls, history: CustomerHistory, *, now: datetime) -> PurchaseFacts:
        """Summarize the orders placed up to the end of `now`'s day."""
        today = now.date()
        orders = history.through(today).orders
        # One pass over the orders for every sum and count.
        year_starts = now - TRAILING_YEAR
        total_spend = orders_12m = spend_12m = discounted = 0
        categories: dict[str, int] = {}
        for order in orders:
            amount = order.amount_cents
            total_spend += amount
            if order.placed_at > year_starts:
                orders_12m += 1
                spend_12m += amount
            discounted += order.discounted
            if (category := order.category) is not None:
                categories[category] = categories.get(category, 0) + 1
        # Most orders first, then by name, as the stored facts rank them.
        ranked = sorted(categories.items(), key=lambda item: (-item[1], item[0]))
        last_day = orders[-1].placed_at.date() if orders else None
        return cls(
            order_count=len(orders),
            total_spend_cents=total_spend,
            orders_12m=orders_12m,
            spend_12m_cents=spend_12m,
            first_order_on=orders[0].placed_at.date() if orders else None,
            last_order_on=last_day,
            days_since_last_order=(today - last_day).days if last_day else None,
            discount_share=(discounted / len(orders) if orders else None),
            top_categories=tuple(name for name, _ in ranked[:TOP_CATEGORY_COUNT]),
        )


def days_phrase(days: int) -> str:
    """Say a number of days for an agent: "1 day", "12 days"."""
    return ngettext("%(num)d day", "%(num)d days", days)


def ago_phrase(days: int) -> str:
    """Say how long ago something happened: "today", "yesterday", "12 days ago"."""
    if days == 0:
        return N_("today")
    if days == 1:
        return N_("yesterday")
    return ngettext("%(num)d day ago", "%(num)d days ago", days)
