"""Did a rule pay? Holdout assignment, and treated-versus-held-out differences with 95 % intervals.

Pure: counts and sums in, comparisons out. Proportions use Wilson's score interval and, for a
difference, Newcombe's hybrid score interval (method 10); means use Welch's interval, read from
sufficient statistics (count, sum, sum of squares) so the database adds them up.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

# Fewer outcomes than this in either group, and the report says "not enough data yet".
MIN_SAMPLE = 30
# The normal quantile of a two-sided 95 % interval.
Z95 = 1.959963984540054
_BUCKETS = 10_000


def holdout_bucket(installation_id: int, rule_key: str, customer_key: str) -> int:
    """A stable place in 0..9,999 for this customer under this rule of this installation.

    A hash, so one customer stays in one group for as long as the rule's share is unchanged,
    different rules hold out different customers, and nobody can pick their group.
    """
    digest = hashlib.sha256(f"{installation_id}\x1f{rule_key}\x1f{customer_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _BUCKETS


def is_held_out(installation_id: int, rule_key: str, customer_key: str, percent: int) -> bool:
    """Whether the rule's suggestion is held back from this customer (`percent` of them are)."""
    if percent <= 0:
        return False
    return holdout_bucket(installation_id, rule_key, customer_key) < percent * (_BUCKETS // 100)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson(events: int, n: int, z: float = Z95) -> Interval:
    """Wilson's score interval for a proportion of `events` in `n` (n > 0)."""
    p = events / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def newcombe(events_a: int, n_a: int, events_b: int, n_b: int, z: float = Z95) -> Interval:
    """Newcombe's hybrid score interval for the difference of two proportions, a minus b."""
    p_a, p_b = events_a / n_a, events_b / n_b
    a, b = wilson(events_a, n_a, z), wilson(events_b, n_b, z)
    difference = p_a - p_b
    below = math.sqrt((p_a - a.low) ** 2 + (b.high - p_b) ** 2)
    above = math.sqrt((a.high - p_a) ** 2 + (p_b - b.low) ** 2)
    return Interval(difference - below, difference + above)


def t_quantile_95(df: float) -> float:
    """The two-sided 95 % quantile of Student's t (a Cornish-Fisher expansion; exact enough
    past 10 degrees of freedom, which `MIN_SAMPLE` guarantees)."""
    z = Z95
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


@dataclass(frozen=True)
class Sample:
    """A group's outcomes as the database sums them: how many, their sum, sum of squares."""

    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def variance(self) -> float:
        """The sample variance (0 below two outcomes)."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.squares - self.total * self.total / self.n) / (self.n - 1))


@dataclass(frozen=True)
class Comparison:
    """One outcome, treated against control: each group's rate or mean and the difference.

    `interval` is None, and `shortfall` says why, when there is not enough data yet.
    """

    treated: float | None
    control: float | None
    treated_n: int
    control_n: int
    interval: Interval | None
    shortfall: str = ""

    @property
    def difference(self) -> float | None:
        if self.treated is None or self.control is None:
            return None
        return self.treated - self.control

    @property
    def enough(self) -> bool:
        return self.interval is not None

    @property
    def significant(self) -> bool:
        """Whether the interval leaves out zero."""
        return self.interval is not None and not self.interval.covers(0.0)


def _shortfall(treated_n: int, control_n: int, min_sample: int) -> str:
    if min(treated_n, control_n) >= min_sample:
        return ""
    return (
        f"not enough data yet: {treated_n} and {control_n} outcomes, "
        f"{min_sample} needed in each group"
    )


def compare_proportions(
    treated: Sample, control: Sample, *, min_sample: int = MIN_SAMPLE
) -> Comparison:
    """Compare rates (`total` counts the events of 0/1 outcomes) with Newcombe's interval."""
    rate_t = treated.mean
    rate_c = control.mean
    shortfall = _shortfall(treated.n, control.n, min_sample)
    if not shortfall and rate_t == rate_c and rate_t in (0.0, 1.0):
        shortfall = "not enough data yet: every outcome so far is the same"
    if shortfall:
        return Comparison(rate_t, rate_c, treated.n, control.n, None, shortfall)
    interval = newcombe(round(treated.total), treated.n, round(control.total), control.n)
    return Comparison(rate_t, rate_c, treated.n, control.n, interval)


def compare_means(treated: Sample, control: Sample, *, min_sample: int = MIN_SAMPLE) -> Comparison:
    """Compare means with Welch's interval (unequal variances, Welch-Satterthwaite df)."""
    shortfall = _shortfall(treated.n, control.n, min_sample)
    se_t = treated.variance / treated.n if treated.n else 0.0
    se_c = control.variance / control.n if control.n else 0.0
    if not shortfall and se_t + se_c == 0:
        shortfall = "not enough data yet: every outcome so far is the same"
    if shortfall:
        return Comparison(treated.mean, control.mean, treated.n, control.n, None, shortfall)
    assert treated.mean is not None and control.mean is not None
    df = (se_t + se_c) ** 2 / (se_t**2 / (treated.n - 1) + se_c**2 / (control.n - 1))
    half = t_quantile_95(df) * math.sqrt(se_t + se_c)
    difference = treated.mean - control.mean
    return Comparison(
        treated.mean,
        control.mean,
        treated.n,
        control.n,
        Interval(difference - half, difference + half),
    )


def cost_per_extra_customer(cost_per_treated: float, retention: Comparison) -> float | None:
    """What one more retained customer costs: the average cost of a treated ticket over the
    extra share of customers retained. None unless the rule retains more, beyond doubt.
    """
    if not retention.significant or retention.difference is None or retention.difference <= 0:
        return None
    return cost_per_treated / retention.difference
