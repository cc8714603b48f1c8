"""Value tiers: both high bars for high, either medium bar for medium."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.domain.tiers import Tier, TierThresholds, value_tier

DEFAULT = TierThresholds()
counts = st.integers(min_value=0, max_value=10_000)
cents = st.integers(min_value=0, max_value=10**9)
RANK = {Tier.LOW: 0, Tier.MEDIUM: 1, Tier.HIGH: 2}


@pytest.mark.parametrize(
    ("orders", "spend", "tier"),
    [
        (0, 0, Tier.LOW),
        (2, 24_999, Tier.LOW),
        (3, 0, Tier.MEDIUM),
        (1, 25_000, Tier.MEDIUM),
        (12, 149_999, Tier.MEDIUM),
        (11, 900_000, Tier.MEDIUM),
        (12, 150_000, Tier.HIGH),
    ],
)
def test_tier_at_the_bars(orders: int, spend: int, tier: Tier) -> None:
    assert value_tier(orders, spend, DEFAULT) is tier


@given(counts, cents, counts, cents)
def test_buying_more_never_lowers_the_tier(orders: int, spend: int, more: int, extra: int) -> None:
    before = value_tier(orders, spend, DEFAULT)
    after = value_tier(orders + more, spend + extra, DEFAULT)
    assert RANK[after] >= RANK[before]


@given(counts, cents)
def test_high_needs_both_bars(orders: int, spend: int) -> None:
    if value_tier(orders, spend, DEFAULT) is Tier.HIGH:
        assert orders >= DEFAULT.high_min_orders
        assert spend >= DEFAULT.high_min_spend_cents


@given(counts, cents)
def test_low_is_below_both_medium_bars(orders: int, spend: int) -> None:
    low = value_tier(orders, spend, DEFAULT) is Tier.LOW
    assert low == (orders < DEFAULT.medium_min_orders and spend < DEFAULT.medium_min_spend_cents)


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="high order bar"):
        TierThresholds(medium_min_orders=5, high_min_orders=4)
    with pytest.raises(ValueError, match="high spend bar"):
        TierThresholds(medium_min_spend_cents=5, high_min_spend_cents=4)
    with pytest.raises(ValueError, match="negative"):
        TierThresholds(medium_min_orders=-1)
