"""RFM: recency, frequency and monetary scores 1-5 by quintiles of a base, and the named segments.

Cut points are drawn once from the whole base, streamed in bounded memory (`Distribution`);
scoring one customer is then four comparisons per measure. The cut for the k-th fifth
(k = 1..4) is the value at 1-based position ceil(k * n / 5) of the n values sorted from worst
to best, and a score is 1 + the number of cuts the customer's value is *strictly* better than.
So equal values always get equal scores, and a group of equal values that straddles a cut gets
the lower score: a customer moves up a fifth only by beating the customers below it (with
most customers buying once, one order is a frequency of 1, not 3). For a base member the score
is 1 + floor(5 * (customers with a worse value) / n).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from plugin.domain.order_history import CustomerHistory

# Below this many customers with orders, a fifth holds fewer than 20 people and one customer's
# next order moves the cut points, so the fixed bands (FIXED_BANDS) are used.
RFM_MIN_BASE = 100
# Spend is ranked on a geometric grid 1% wide, so the distribution keeps at most a few thousand
# buckets however many customers there are; customers in the same bucket rank as equal.
SPEND_GRID_RATIO = 1.01


class RfmSegment(StrEnum):
    CHAMPIONS = "champions"
    LOYAL = "loyal"
    POTENTIAL_LOYALIST = "potential_loyalist"
    NEW_CUSTOMERS = "new_customers"
    PROMISING = "promising"
    NEED_ATTENTION = "need_attention"
    ABOUT_TO_SLEEP = "about_to_sleep"
    AT_RISK = "at_risk"
    CANT_LOSE_THEM = "cant_lose_them"
    HIBERNATING = "hibernating"
    LOST = "lost"


# The common R/FM segment grid: recency score (columns) against the frequency-monetary score
# (rows), as in the usual RFM segment map, with "lost" taken from the worst corner of
# "hibernating". Each row names the segments for R = 1, 2, 3, 4, 5.
_GRID_ROWS = {
    5: "cant_lose_them  cant_lose_them  loyal           loyal               champions",
    4: "at_risk         at_risk         loyal           loyal               champions",
    3: "at_risk         at_risk         need_attention  potential_loyalist  potential_loyalist",
    2: "hibernating     hibernating     about_to_sleep  potential_loyalist  potential_loyalist",
    1: "lost            hibernating     about_to_sleep  promising           new_customers",
}
RFM_GRID: dict[int, tuple[RfmSegment, ...]] = {
    fm: tuple(RfmSegment(name) for name in row.split()) for fm, row in _GRID_ROWS.items()
}


@dataclass(frozen=True)
class RfmValues:
    """The raw measures for one customer with orders.

    Days since the last order, lifetime order count and lifetime spend. Lifetime, not twelve
    months, so a big customer who stopped buying still shows as "can't lose them" rather than
    as a stranger.
    """

    recency_days: int
    frequency: int
    monetary_cents: int

    def __post_init__(self) -> None:
        if self.recency_days < 0 or self.frequency < 1 or self.monetary_cents < 0:
            raise ValueError("RFM needs a last order in the past, an order and no negative spend")

    @classmethod
    def of(cls, history: CustomerHistory, *, today: date) -> RfmValues | None:
        """Measure a history at `today`; None for a customer without orders."""
        orders = history.through(today).orders
        if not orders:
            return None
        return cls(
            recency_days=(today - orders[-1].placed_at.date()).days,
            frequency=len(orders),
            monetary_cents=sum(o.amount_cents for o in orders),
        )


@dataclass(frozen=True)
class RfmScores:
    """Scores 1 (worst fifth) to 5 (best fifth) and the segment they name."""

    recency: int
    frequency: int
    monetary: int

    def __post_init__(self) -> None:
        if not all(1 <= score <= 5 for score in (self.recency, self.frequency, self.monetary)):
            raise ValueError("RFM scores run from 1 to 5")

    @property
    def frequency_monetary(self) -> int:
        """The grid's FM axis: the mean of F and M, rounded down (a row needs both to earn it)."""
        return (self.frequency + self.monetary) // 2

    @property
    def segment(self) -> RfmSegment:
        """Look the scores up in the R/FM grid."""
        return RFM_GRID[self.frequency_monetary][self.recency - 1]


class Distribution:
    """Counts of values by bucket, enough to find quantiles of a stream in bounded memory.

    Memory grows with the number of distinct buckets, not of values: days and order counts
    are small integers; spend uses a geometric grid (`spend_bucket`).
    """

    def __init__(self, bucket: Callable[[int], int] = int) -> None:
        self._bucket = bucket
        # bucket -> [count, smallest value, largest value]
        self._buckets: dict[int, list[int]] = {}
        self.count = 0

    def add(self, value: int) -> None:
        """Count one value."""
        self.count += 1
        entry = self._buckets.get(key := self._bucket(value))
        if entry is None:
            self._buckets[key] = [1, value, value]
        else:
            entry[0] += 1
            entry[1] = min(entry[1], value)
            entry[2] = max(entry[2], value)

    def bucket_at(self, position: int) -> tuple[int, int]:
        """Return (smallest, largest) value of the bucket at a 1-based position, ascending."""
        if not 1 <= position <= self.count:
            raise ValueError(f"position {position} is outside 1..{self.count}")
        seen = 0
        for key in sorted(self._buckets):
            count, smallest, largest = self._buckets[key]
            seen += count
            if seen >= position:
                return smallest, largest
        raise AssertionError("unreachable: the counts add up to self.count")

    def quintile_cuts(self) -> tuple[int, int, int, int]:
        """The largest value in each bucket holding the 20/40/60/80% positions."""
        first, second, third, fourth = (
            self.bucket_at(math.ceil(k * self.count / 5))[1] for k in (1, 2, 3, 4)
        )
        return first, second, third, fourth


def spend_bucket(cents: int) -> int:
    """The 1%-wide geometric bucket of an amount; zero has a bucket of its own."""
    return math.floor(math.log(cents) / math.log(SPEND_GRID_RATIO)) if cents > 0 else -1


@dataclass(frozen=True)
class RfmCutPoints:
    """Four cut points per measure, each in the measure's own unit, best-last.

    A customer scores 1 + the number of cuts they beat: fewer days than a recency cut, more
    orders or more spend than a frequency or monetary cut. `base_size` is how many customers
    the cuts come from; 0 for the fixed bands.
    """

    recency_days: tuple[int, int, int, int]
    frequency: tuple[int, int, int, int]
    monetary_cents: tuple[int, int, int, int]
    base_size: int

    @classmethod
    def from_base(cls, base: Iterable[RfmValues], *, min_base: int = RFM_MIN_BASE) -> RfmCutPoints:
        """Draw quintile cut points from every customer with orders, in one pass.

        A base smaller than `min_base` gets the fixed bands instead.
        """
        # Recency is ranked on minus the days so that, like the others, higher is better.
        recency, frequency, monetary = Distribution(), Distribution(), Distribution(spend_bucket)
        for values in base:
            recency.add(-values.recency_days)
            frequency.add(values.frequency)
            monetary.add(values.monetary_cents)
        if recency.count < max(min_base, 1):
            return FIXED_BANDS
        r1, r2, r3, r4 = recency.quintile_cuts()
        return cls(
            recency_days=(-r1, -r2, -r3, -r4),
            frequency=frequency.quintile_cuts(),
            monetary_cents=monetary.quintile_cuts(),
            base_size=recency.count,
        )

    def score(self, values: RfmValues) -> RfmScores:
        """Score one customer against the cut points."""
        return RfmScores(
            recency=1 + sum(values.recency_days < cut for cut in self.recency_days),
            frequency=1 + sum(values.frequency > cut for cut in self.frequency),
            monetary=1 + sum(values.monetary_cents > cut for cut in self.monetary_cents),
        )


# For a base too small for quintiles. R: within 30 days is 5, 90 days 4, 180 days 3, a year 2.
# F and M are lifetimes, so their top bands take years of custom: F by orders 1 / 2-3 / 4-9 /
# 10-24 / 25+ (25 is two years of monthly orders); M by spend up to $100 / $500 / $2,000 /
# $5,000 / more (three years above the default high bar of $1,500 a year is past $4,500).
FIXED_BANDS = RfmCutPoints(
    recency_days=(365, 180, 90, 30),
    frequency=(1, 3, 9, 24),
    monetary_cents=(100_00, 500_00, 2_000_00, 5_000_00),
    base_size=0,
)
