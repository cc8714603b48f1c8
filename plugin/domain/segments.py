"""A customer's segment profile: value tier, RFM, behaviour, lifecycle and personas in one place.

Two steps, as the product runs them: once per installation, draw the tier bars and RFM cut
points from the whole customer base (`suggest_tier_thresholds`, `RfmCutPoints.from_base`);
then, for one customer, build the profile from their order history
(`build_segment_profile`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from plugin.domain.behaviour import Behaviour, BehaviourTag, behaviour_tags
from plugin.domain.lifecycle import LifecycleStage, LifecycleStatus, lifecycle_status
from plugin.domain.order_history import CustomerHistory, PurchaseFacts
from plugin.domain.personas import FieldKind, FieldSpec, Persona, PersonaMatch, match_personas
from plugin.domain.rfm import (
    Distribution,
    RfmCutPoints,
    RfmScores,
    RfmSegment,
    RfmValues,
    spend_bucket,
)
from plugin.domain.tiers import Tier, TierThresholds, value_tier

# Suggested tier bars: medium at the median of the customers who bought in the last twelve
# months, high at the top fifth (the 80th percentile), the same fifths RFM uses. Medium needs
# either medium bar, so at least half the buyers reach it; high needs both high bars, so only
# customers in the top fifth on both orders and spend do. Customers who did not buy in the
# year are left out: they are low whatever the bars, and a mostly dormant base would pull
# every bar down to nothing.
MEDIUM_PERCENTILE = 50
HIGH_PERCENTILE = 80
# One order is not a habit: the medium order bar is at least 2, and the high bar above it.
MIN_MEDIUM_ORDERS = 2
# Spend bars are whole dollars, rounded down so the customer at the percentile still qualifies.
DOLLAR_CENTS = 100


def suggest_tier_thresholds(base: Iterable[tuple[int, int]]) -> TierThresholds:
    """Suggest tier bars from every customer's (orders_12m, spend_12m_cents), in one pass.

    A base where nobody bought in the year gets the default bars.
    """
    orders, spend = Distribution(), Distribution(spend_bucket)
    for orders_12m, spend_12m_cents in base:
        if orders_12m > 0:
            orders.add(orders_12m)
            spend.add(spend_12m_cents)
    if orders.count == 0:
        return TierThresholds()
    medium_orders = max(MIN_MEDIUM_ORDERS, _bar(orders, MEDIUM_PERCENTILE))
    medium_spend = max(DOLLAR_CENTS, _whole_dollars(_bar(spend, MEDIUM_PERCENTILE)))
    return TierThresholds(
        medium_min_orders=medium_orders,
        medium_min_spend_cents=medium_spend,
        high_min_orders=max(medium_orders + 1, _bar(orders, HIGH_PERCENTILE)),
        high_min_spend_cents=max(medium_spend, _whole_dollars(_bar(spend, HIGH_PERCENTILE))),
    )


def _bar(distribution: Distribution, percentile: int) -> int:
    """The nearest-rank percentile, lowered to the smallest value in its bucket."""
    smallest, _ = distribution.bucket_at(math.ceil(percentile * distribution.count / 100))
    return smallest


def _whole_dollars(cents: int) -> int:
    return cents - cents % DOLLAR_CENTS


# The facts a persona or rule can test, by name; `SegmentProfile.facts()` gives their values.
SEGMENT_FIELDS: dict[str, FieldSpec] = {
    "tier": FieldSpec(FieldKind.CHOICE, tuple(Tier)),
    "rfm_segment": FieldSpec(FieldKind.CHOICE, tuple(RfmSegment)),
    "recency_score": FieldSpec(FieldKind.NUMBER),
    "frequency_score": FieldSpec(FieldKind.NUMBER),
    "monetary_score": FieldSpec(FieldKind.NUMBER),
    "behaviour_tags": FieldSpec(FieldKind.TAGS, tuple(Behaviour)),
    "lifecycle_stage": FieldSpec(FieldKind.CHOICE, tuple(LifecycleStage)),
    "order_count": FieldSpec(FieldKind.NUMBER),
    "total_spend_cents": FieldSpec(FieldKind.NUMBER),
    "orders_12m": FieldSpec(FieldKind.NUMBER),
    "spend_12m_cents": FieldSpec(FieldKind.NUMBER),
    "days_since_last_order": FieldSpec(FieldKind.NUMBER),
    "discount_share": FieldSpec(FieldKind.NUMBER),
    "top_categories": FieldSpec(FieldKind.TAGS),
}


@dataclass(frozen=True)
class SegmentProfile:
    """Who a customer is to the business at a moment, with the evidence for each part.

    `rfm` and `lifecycle` are None for a customer without orders (a prospect).
    """

    tier: Tier
    purchases: PurchaseFacts
    rfm: RfmScores | None
    behaviours: tuple[BehaviourTag, ...]
    lifecycle: LifecycleStatus | None
    personas: tuple[PersonaMatch, ...] = ()

    def facts(self) -> dict[str, object]:
        """The values of `SEGMENT_FIELDS` for this customer; None where there is none."""
        purchases = self.purchases
        return {
            "tier": self.tier,
            "rfm_segment": self.rfm.segment if self.rfm else None,
            "recency_score": self.rfm.recency if self.rfm else None,
            "frequency_score": self.rfm.frequency if self.rfm else None,
            "monetary_score": self.rfm.monetary if self.rfm else None,
            "behaviour_tags": tuple(tag.behaviour for tag in self.behaviours),
            "lifecycle_stage": self.lifecycle.stage if self.lifecycle else None,
            "order_count": purchases.order_count,
            "total_spend_cents": purchases.total_spend_cents,
            "orders_12m": purchases.orders_12m,
            "spend_12m_cents": purchases.spend_12m_cents,
            "days_since_last_order": purchases.days_since_last_order,
            "discount_share": purchases.discount_share,
            "top_categories": purchases.top_categories,
        }


def build_segment_profile(
    history: CustomerHistory,
    *,
    thresholds: TierThresholds,
    cut_points: RfmCutPoints,
    personas: Iterable[Persona] = (),
    now: datetime,
) -> SegmentProfile:
    """Build one customer's profile from their orders up to `now`'s day and the base's bars."""
    today = now.date()
    history = history.through(today)
    purchases = PurchaseFacts.of(history, now=now)
    # RfmValues.of(history, today=today), from the sums just made rather than another pass.
    rfm_values = (
        RfmValues(
            recency_days=purchases.days_since_last_order,
            frequency=purchases.order_count,
            monetary_cents=purchases.total_spend_cents,
        )
        if purchases.days_since_last_order is not None
        else None
    )
    profile = SegmentProfile(
        tier=value_tier(purchases.orders_12m, purchases.spend_12m_cents, thresholds),
        purchases=purchases,
        rfm=cut_points.score(rfm_values) if rfm_values else None,
        behaviours=behaviour_tags(history, today=today),
        lifecycle=lifecycle_status(history, today=today),
    )
    personas = tuple(personas)
    if not personas:  # nothing to match: no facts to gather, no second profile to build
        return profile
    matched = match_personas(personas, profile.facts())
    return replace(profile, personas=matched) if matched else profile
