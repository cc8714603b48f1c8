"""Segment profiles: tier bars suggested from a base, one customer's profile, the demo's people."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.demo.sample_data import SampleCustomer, build_sample_data
from plugin.domain.behaviour import Behaviour
from plugin.domain.lifecycle import LifecycleStage
from plugin.domain.order_history import CustomerHistory, OrderRecord
from plugin.domain.personas import FieldKind, Persona, PersonaMatch, parse_conditions
from plugin.domain.rfm import FIXED_BANDS, RfmCutPoints, RfmSegment, RfmValues
from plugin.domain.segments import (
    MIN_MEDIUM_ORDERS,
    SEGMENT_FIELDS,
    SegmentProfile,
    build_segment_profile,
    suggest_tier_thresholds,
)
from plugin.domain.tiers import Tier, TierThresholds, value_tier
from tests.domain.strategies import at, histories, history_on, todays

# Suggested tier bars ----------------------------------------------------------------------

buyers = st.tuples(st.integers(min_value=1, max_value=400), st.integers(0, 10**8))
bases = st.lists(buyers | st.tuples(st.just(0), st.just(0)), max_size=80)


def share_at_least(values: list[int], bar: int) -> float:
    return sum(v >= bar for v in values) / len(values)


def test_a_base_without_buyers_gets_the_default_bars() -> None:
    assert suggest_tier_thresholds([]) == TierThresholds()
    assert suggest_tier_thresholds([(0, 0), (0, 0)]) == TierThresholds()


def test_one_small_buyer_gets_the_minimum_bars() -> None:
    assert suggest_tier_thresholds([(1, 10_00)]) == TierThresholds(2, 10_00, 3, 10_00)


def test_ties_and_free_orders() -> None:
    assert suggest_tier_thresholds([(4, 100_50)] * 10) == TierThresholds(4, 100_00, 5, 100_00)
    assert suggest_tier_thresholds([(2, 0)] * 5) == TierThresholds(2, 1_00, 3, 1_00)


def test_medium_at_the_median_and_high_at_the_top_fifth() -> None:
    base = [(n, n * 100_00) for n in range(1, 11)]
    assert suggest_tier_thresholds(base) == TierThresholds(5, 500_00, 8, 800_00)


@given(bases)
def test_suggested_bars_are_sane(base: list[tuple[int, int]]) -> None:
    bars = suggest_tier_thresholds(base)  # TierThresholds checks its own ordering
    assert bars.medium_min_orders >= MIN_MEDIUM_ORDERS
    assert bars.high_min_orders > bars.medium_min_orders
    assert bars.medium_min_spend_cents >= 100
    assert bars.medium_min_spend_cents % 100 == bars.high_min_spend_cents % 100 == 0


@given(bases)
def test_at_least_half_of_buyers_reach_each_medium_bar_and_a_fifth_each_high_bar(
    base: list[tuple[int, int]],
) -> None:
    bought = [(n, cents) for n, cents in base if n > 0]
    if not bought:
        return
    bars = suggest_tier_thresholds(base)
    orders, spend = [n for n, _ in bought], [cents for _, cents in bought]
    if bars.medium_min_orders > MIN_MEDIUM_ORDERS:
        assert share_at_least(orders, bars.medium_min_orders) >= 0.5
    if bars.medium_min_spend_cents > 100:
        assert share_at_least(spend, bars.medium_min_spend_cents) >= 0.5
    if bars.high_min_orders > bars.medium_min_orders + 1:
        assert share_at_least(orders, bars.high_min_orders) >= 0.2
    if bars.high_min_spend_cents > bars.medium_min_spend_cents:
        assert share_at_least(spend, bars.high_min_spend_cents) >= 0.2


@given(bases, st.integers(min_value=0, max_value=30))
def test_customers_who_did_not_buy_in_the_year_do_not_move_the_bars(
    base: list[tuple[int, int]], dormant: int
) -> None:
    assert suggest_tier_thresholds(base + [(0, 0)] * dormant) == suggest_tier_thresholds(base)


@given(bases, buyers, st.integers(0, 50), st.integers(0, 10**6))
def test_with_suggested_bars_buying_more_never_lowers_the_tier(
    base: list[tuple[int, int]], customer: tuple[int, int], more: int, extra: int
) -> None:
    bars = suggest_tier_thresholds(base)
    orders, spend = customer
    rank = list(Tier).index
    assert rank(value_tier(orders + more, spend + extra, bars)) >= rank(
        value_tier(orders, spend, bars)
    )


# One profile ------------------------------------------------------------------------------

NOW = datetime(2026, 3, 2, 15, 30)


def profile(history: CustomerHistory, personas: tuple[Persona, ...] = ()) -> SegmentProfile:
    return build_segment_profile(
        history, thresholds=TierThresholds(), cut_points=FIXED_BANDS, personas=personas, now=NOW
    )


def test_a_prospect_has_a_profile_without_orders() -> None:
    prospect = profile(CustomerHistory(customer_since=NOW.date()))
    assert (prospect.tier, prospect.rfm, prospect.behaviours, prospect.lifecycle) == (
        Tier.LOW,
        None,
        (),
        None,
    )
    assert prospect.facts()["days_since_last_order"] is None


def test_a_profile_gathers_every_part() -> None:
    days = [NOW.date() - timedelta(days=ago) for ago in range(200, 0, -10)]
    history = history_on(days, amount_cents=120_00, discounted=[True, False] * 10)
    vip = Persona(
        "Regular at a discount",
        parse_conditions(
            {
                "all": [
                    {"field": "tier", "operator": "is", "value": "high"},
                    {"field": "behaviour_tags", "operator": "contains", "value": "deal_seeker"},
                ],
                "any": [{"field": "rfm_segment", "operator": "in", "value": ["champions"]}],
            },
            SEGMENT_FIELDS,
        ),
    )
    built = profile(history, (vip,))
    assert built.tier is Tier.HIGH
    assert built.rfm is not None and built.rfm.segment is RfmSegment.CHAMPIONS
    assert [tag.behaviour for tag in built.behaviours] == [Behaviour.DEAL_SEEKER]
    assert built.lifecycle is not None and built.lifecycle.stage is LifecycleStage.ACTIVE
    assert built.personas == (
        PersonaMatch(
            "Regular at a discount",
            (
                "tier is high",
                "behaviour_tags include deal_seeker",
                "rfm_segment is one of champions",
            ),
        ),
    )


def test_orders_after_now_are_left_out() -> None:
    history = history_on([NOW.date() + timedelta(days=1)])
    assert profile(history).purchases.order_count == 0


# Cut points as a base of a thousand customers could draw them.
CUTS = RfmCutPoints(
    recency_days=(400, 200, 60, 14),
    frequency=(1, 2, 4, 8),
    monetary_cents=(50_00, 150_00, 400_00, 1_000_00),
    base_size=1_000,
)


@given(histories(), todays, st.sampled_from([FIXED_BANDS, CUTS]))
def test_rfm_scores_are_those_of_the_rfm_values(
    history: CustomerHistory, today: date, cut_points: RfmCutPoints
) -> None:
    # The profile takes the RFM values from its purchase facts rather than another pass.
    now = at(today)
    built = build_segment_profile(
        history, thresholds=TierThresholds(), cut_points=cut_points, now=now
    )
    values = RfmValues.of(history, today=today)
    assert built.rfm == (cut_points.score(values) if values else None)


@given(histories(), todays)
def test_facts_fit_the_field_catalogue(history: CustomerHistory, today: date) -> None:
    built = build_segment_profile(
        history, thresholds=TierThresholds(), cut_points=FIXED_BANDS, now=at(today)
    )
    facts = built.facts()
    assert facts.keys() == SEGMENT_FIELDS.keys()
    for name, value in facts.items():
        spec = SEGMENT_FIELDS[name]
        if spec.kind is FieldKind.TAGS:
            assert isinstance(value, tuple)
            assert all(isinstance(v, str) for v in value)
            assert not spec.choices or set(value) <= set(spec.choices)
        elif value is not None:
            if spec.kind is FieldKind.CHOICE:
                assert value in spec.choices
            else:
                assert isinstance(value, int | float) and not isinstance(value, bool)


# The demo's people ------------------------------------------------------------------------

STORY_TAGS = {
    "seasonal": {Behaviour.SEASONAL},
    "small_business": {Behaviour.SMALL_BUSINESS},
    "deal_seeker": {Behaviour.DEAL_SEEKER},
    "new": {Behaviour.NEW_CUSTOMER},
}
STORY_TIERS = {"high": Tier.HIGH, "medium": Tier.MEDIUM, "low": Tier.LOW, "prospect": Tier.LOW}


def history_of(customer: SampleCustomer) -> CustomerHistory:
    return CustomerHistory.of(
        (
            OrderRecord(o.placed_at, o.amount_cents, o.discount_code is not None, o.category)
            for o in customer.orders
        ),
        customer_since=customer.customer_since,
    )


@pytest.mark.parametrize(
    "today",
    [date(2024, 2, 29), date(2025, 7, 15), date(2025, 11, 20), date(2026, 1, 2)],
    ids=str,
)
def test_demo_customers_get_the_segment_their_story_tells(today: date) -> None:
    now = datetime.combine(today, time(9))
    customers = build_sample_data(today).customers
    histories_by_customer = [(c, history_of(c)) for c in customers]
    cut_points = RfmCutPoints.from_base(
        v for _, h in histories_by_customer if (v := RfmValues.of(h, today=today))
    )
    for customer, history in histories_by_customer:
        built = build_segment_profile(
            history, thresholds=TierThresholds(), cut_points=cut_points, now=now
        )
        story, who = customer.story, f"{customer.name} ({customer.story})"
        assert {tag.behaviour for tag in built.behaviours} == STORY_TAGS.get(story, set()), who
        if story in STORY_TIERS:
            assert built.tier is STORY_TIERS[story], who
        if story == "high":
            assert built.rfm is not None, who
            assert built.rfm.segment in (RfmSegment.CHAMPIONS, RfmSegment.LOYAL), who
        if story == "new":
            assert built.lifecycle is not None, who
            assert built.lifecycle.stage is LifecycleStage.NEW, who
        if story == "lapsed":
            assert built.lifecycle is not None, who
            assert built.lifecycle.stage is LifecycleStage.LAPSED, who
        if story == "prospect":
            assert (built.purchases.order_count, built.rfm, built.lifecycle) == (0, None, None), who
