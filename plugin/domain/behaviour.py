"""Behaviour tags: how a customer shops, each with the evidence an agent can read.

The questions are Newegg's: do they shop seasonally, every day for a small business, only on a
deal; and are they new to us. Every rule reads the orders placed on or before `today`.
"""

from __future__ import annotations

import bisect
import calendar
import itertools
import statistics
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from fractions import Fraction

from plugin.domain.order_history import CustomerHistory, ago_phrase
from plugin.domain.wording import N_, ngettext

# Seasonal: at least 3/4 of at least 4 orders fall in one window of at most 3 consecutive
# months (a quarter of the year holding three times its share), in at least 2 different years.
SEASONAL_MIN_ORDERS = 4
SEASONAL_MIN_SHARE = Fraction(3, 4)
SEASONAL_MAX_MONTHS = 3
SEASONAL_MIN_YEARS = 2

# Small business / daily buyer: orders on at least 20 of the last 90 days (more than once a week
# on average) at regular intervals. Regular means the gaps between order days, including the
# one still open since the last order, vary little: their coefficient of variation (standard
# deviation / mean) is at most 0.75. Random buying gives about 1; a Monday-to-Friday buyer
# about 0.6; a buyer who has stopped gets one long open gap that pushes it over.
SMALL_BUSINESS_WINDOW_DAYS = 90
SMALL_BUSINESS_MIN_ORDER_DAYS = 20
SMALL_BUSINESS_MAX_GAP_VARIATION = 0.75

# Deal seeker: at least half of at least 5 orders used a discount.
DEAL_SEEKER_MIN_ORDERS = 5
DEAL_SEEKER_MIN_SHARE = Fraction(1, 2)

# New customer: first known to us (first order or account, whichever came first) less than 30
# days ago, and has ordered. The lifecycle's "new" stage uses the same window.
NEW_CUSTOMER_DAYS = 30


class Behaviour(StrEnum):
    SEASONAL = "seasonal"
    SMALL_BUSINESS = "small_business"
    DEAL_SEEKER = "deal_seeker"
    NEW_CUSTOMER = "new_customer"


@dataclass(frozen=True)
class BehaviourTag:
    """A behaviour and why it applies, e.g. "30 of 31 orders in Nov-Dec, over 6 years"."""

    behaviour: Behaviour
    reason: str


def behaviour_tags(history: CustomerHistory, *, today: date) -> tuple[BehaviourTag, ...]:
    """Return every behaviour tag that applies at `today`, in the order of `Behaviour`."""
    history = history.through(today)
    found = (
        seasonal_tag(history, today=today),
        small_business_tag(history, today=today),
        deal_seeker_tag(history, today=today),
        new_customer_tag(history, today=today),
    )
    return tuple(tag for tag in found if tag is not None)


def seasonal_tag(history: CustomerHistory, *, today: date) -> BehaviourTag | None:
    """Tag a customer whose orders cluster in the same few months, year after year.

    The window holding the most orders wins, then the narrowest, then the earliest in the year.
    A window that wraps the new year (Dec-Jan) counts a season's January with its December.
    """
    orders = history.through(today).orders
    total = len(orders)
    if total < SEASONAL_MIN_ORDERS:
        return None
    # One pass over the orders: how many fell in each month. Every window below is then a
    # sum of at most three months, not another pass over the orders.
    per_month = [0] * 13
    for order in orders:
        per_month[order.placed_at.month] += 1
    # A window holds enough orders when inside / total >= share: in whole numbers,
    # inside * denominator >= numerator * total.
    denominator = SEASONAL_MIN_SHARE.denominator
    needed = SEASONAL_MIN_SHARE.numerator * total
    # The widest windows hold the narrower ones: if none of them holds enough, none does.
    # (Most customers stop here: the widest window holding most orders is not enough.)
    wrapped = per_month[1:] + per_month[1:SEASONAL_MAX_MONTHS]
    widest = max(map(sum, (wrapped[i : i + SEASONAL_MAX_MONTHS] for i in range(12))))
    if widest * denominator < needed:
        return None
    # In which years each month had orders, for the windows that hold enough.
    years_of_month: list[set[int]] = [set() for _ in range(13)]
    for order in orders:
        placed_at = order.placed_at
        years_of_month[placed_at.month].add(placed_at.year)
    candidates = []
    for width, start, months in _SEASON_WINDOWS:
        inside = sum(map(per_month.__getitem__, months))
        if inside * denominator >= needed:
            # A season's months before `start` in the calendar (a Dec-Jan window's January)
            # count with the year the season began.
            years = {
                year if month >= start else year - 1
                for month in months
                for year in years_of_month[month]
            }
            if len(years) >= SEASONAL_MIN_YEARS:
                candidates.append((-inside, width, start, len(years)))
    if not candidates:
        return None
    minus_inside, width, start, year_count = min(candidates)
    first, last = calendar.month_abbr[start], calendar.month_abbr[(start + width - 2) % 12 + 1]
    span = first if width == 1 else f"{first}-{last}"
    return BehaviourTag(
        Behaviour.SEASONAL,
        ngettext(
            "%(inside)d of %(total)d orders in %(span)s, over %(num)d year",
            "%(inside)d of %(total)d orders in %(span)s, over %(num)d years",
            year_count,
            inside=-minus_inside,
            total=total,
            span=span,
        ),
    )


# Every window seasonal_tag weighs: (width in months, first month, its months), narrowest first.
_SEASON_WINDOWS = tuple(
    (width, start, tuple((start - 1 + i) % 12 + 1 for i in range(width)))
    for width in range(1, SEASONAL_MAX_MONTHS + 1)
    for start in range(1, 13)
)


def small_business_tag(history: CustomerHistory, *, today: date) -> BehaviourTag | None:
    """Tag a customer who orders several times a week at regular intervals, like a business."""
    # The order days less than the window's days ago: the sorted days after its eve.
    order_days = history.through(today).order_days
    window_eve = today - timedelta(days=SMALL_BUSINESS_WINDOW_DAYS)
    in_window = len(order_days) - bisect.bisect_right(order_days, window_eve)
    if in_window < SMALL_BUSINESS_MIN_ORDER_DAYS:
        return None
    days = list(order_days[-in_window:])
    gaps = [(later - earlier).days for earlier, later in itertools.pairwise(days)]
    if (still_open := (today - days[-1]).days) > 0:
        gaps.append(still_open)
    mean = statistics.fmean(gaps)
    if statistics.pstdev(gaps) / mean > SMALL_BUSINESS_MAX_GAP_VARIATION:
        return None
    return BehaviourTag(
        Behaviour.SMALL_BUSINESS,
        N_(
            "ordered on %(count)d of the last %(window)d days, regularly, every %(mean)s days "
            "on average",
            count=len(days),
            window=SMALL_BUSINESS_WINDOW_DAYS,
            mean=format(mean, ".1f"),
        ),
    )


def deal_seeker_tag(history: CustomerHistory, *, today: date) -> BehaviourTag | None:
    """Tag a customer who mostly buys with a discount."""
    orders = history.through(today).orders
    discounted = sum(o.discounted for o in orders)
    share = DEAL_SEEKER_MIN_SHARE
    if (
        len(orders) < DEAL_SEEKER_MIN_ORDERS
        # discounted / orders < share, in whole numbers
        or discounted * share.denominator < share.numerator * len(orders)
    ):
        return None
    return BehaviourTag(
        Behaviour.DEAL_SEEKER,
        N_(
            "%(discounted)d of %(total)d orders used a discount",
            discounted=discounted,
            total=len(orders),
        ),
    )


def new_customer_tag(history: CustomerHistory, *, today: date) -> BehaviourTag | None:
    """Tag a customer who has ordered and whom we have known for less than 30 days."""
    history = history.through(today)
    if not history.orders:
        return None
    # history.first_seen, without the order days: the first order's is the first of them.
    first_order_day = history.orders[0].placed_at.date()
    since = history.customer_since
    first_seen = first_order_day if since is None else min(since, first_order_day)
    known_for = (today - first_seen).days
    if known_for >= NEW_CUSTOMER_DAYS:
        return None
    first_order = (today - first_order_day).days
    return BehaviourTag(
        Behaviour.NEW_CUSTOMER, N_("first order %(when)s", when=ago_phrase(first_order))
    )
