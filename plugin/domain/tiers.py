"""Value tiers: low, medium or high by how often and how much a customer bought in a year."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Tier(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class TierThresholds:
    """The bars an installation sets, over the trailing twelve months."""

    medium_min_orders: int = 3
    medium_min_spend_cents: int = 25_000
    high_min_orders: int = 12
    high_min_spend_cents: int = 150_000

    def __post_init__(self) -> None:
        if min(self.medium_min_orders, self.medium_min_spend_cents) < 0:
            raise ValueError("tier thresholds cannot be negative")
        if self.high_min_orders < self.medium_min_orders:
            raise ValueError("the high order bar must be at least the medium one")
        if self.high_min_spend_cents < self.medium_min_spend_cents:
            raise ValueError("the high spend bar must be at least the medium one")


def value_tier(orders_12m: int, spend_12m_cents: int, thresholds: TierThresholds) -> Tier:
    """Return the tier: high needs both high bars, medium either medium bar."""
    if (
        orders_12m >= thresholds.high_min_orders
        and spend_12m_cents >= thresholds.high_min_spend_cents
    ):
        return Tier.HIGH
    if (
        orders_12m >= thresholds.medium_min_orders
        or spend_12m_cents >= thresholds.medium_min_spend_cents
    ):
        return Tier.MEDIUM
    return Tier.LOW
