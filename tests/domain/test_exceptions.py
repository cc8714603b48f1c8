"""The exception catalog: validation by path, costs, goodwill and segment budgets."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.domain.exceptions import (
    AmountLimits,
    Budget,
    BudgetStatus,
    ExceptionType,
    FixedCost,
    Goodwill,
    Grant,
    InvalidBudget,
    InvalidExceptionType,
    PercentCost,
    ReasonCode,
    SegmentRef,
    granted_within,
    money,
    parse_budget,
    parse_exception_type,
)
from plugin.domain.personas import ConditionError
from plugin.goodwill.money import exact_money

NOW = datetime(2026, 3, 15, 12, 0)
REASONS = [{"code": "late_delivery", "label": "Late delivery"}]
DISMISSALS = [{"code": "declined", "label": "Customer declined"}]


def entry(**changes: Any) -> dict[str, Any]:
    """A valid catalog entry as the console posts it, with some parts changed."""
    raw: dict[str, Any] = {
        "key": "partial_refund",
        "name": "Partial refund",
        "description": "Refund part of the order.",
        "currency": "USD",
        "cost": {"kind": "percent", "percent": 10, "min_cents": 500, "max_cents": 5000},
        "apply_reasons": REASONS,
        "dismiss_reasons": DISMISSALS,
        "editable": {"min_cents": 0, "max_cents": 5000},
    }
    raw.update(changes)
    return raw


def errors_of(raw: object) -> list[ConditionError]:
    with pytest.raises(InvalidExceptionType) as raised:
        parse_exception_type(raw)
    return list(raised.value.errors)


# The catalog ------------------------------------------------------------------------------


def test_a_valid_entry_parses() -> None:
    assert parse_exception_type(entry()) == ExceptionType(
        key="partial_refund",
        name="Partial refund",
        description="Refund part of the order.",
        cost=PercentCost(Decimal(10), 500, 5000),
        apply_reasons=(ReasonCode("late_delivery", "Late delivery"),),
        dismiss_reasons=(ReasonCode("declined", "Customer declined"),),
        currency="USD",
        editable=AmountLimits(0, 5000),
    )


def test_a_fixed_cost_without_description_or_editing_parses() -> None:
    raw = entry(cost={"kind": "fixed", "cents": 1200})
    del raw["description"], raw["editable"]
    parsed = parse_exception_type(raw)
    assert parsed.cost == FixedCost(1200)
    assert parsed.description == ""
    assert parsed.editable is None


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        ({"key": "Partial Refund"}, "key", "expected lowercase letters"),
        ({"name": "  "}, "name", "non-blank"),
        ({"currency": "usd"}, "currency", "three-letter currency code"),
        ({"description": 7}, "description", "at most 1000 characters"),
        ({"cost": {"kind": "share", "percent": 10}}, "cost.kind", "expected fixed"),
        ({"cost": 12}, "cost", "expected fixed"),
        ({"cost": {"kind": "fixed", "cents": -1}}, "cost.cents", "from 0"),
        ({"cost": {"kind": "fixed", "cents": True}}, "cost.cents", "whole number"),
        ({"cost": {"kind": "fixed", "cents": 12.5}}, "cost.cents", "whole number"),
        ({"cost": {"kind": "fixed", "cents": 6000}}, "cost.cents", "editable amount"),
        ({"cost": {"kind": "fixed", "cents": 100, "percent": 5}}, "cost.percent", "unknown key"),
        ({"cost": {"kind": "percent", "percent": 0}}, "cost.percent", "above 0"),
        ({"cost": {"kind": "percent", "percent": 150}}, "cost.percent", "at most 100"),
        ({"cost": {"kind": "percent", "percent": "10"}}, "cost.percent", "a number"),
        ({"cost": {"kind": "percent"}}, "cost.percent", "missing"),
        (
            {"cost": {"kind": "percent", "percent": 5, "min_cents": 900, "max_cents": 800}},
            "cost.max_cents",
            "at least min_cents",
        ),
        (
            {"cost": {"kind": "percent", "percent": 5, "max_cents": 9000}},
            "cost.max_cents",
            "editable amount",
        ),
        ({"editable": {"min_cents": 10, "max_cents": 5}}, "editable.max_cents", "at least"),
        ({"editable": {"min_cents": 0}}, "editable.max_cents", "missing"),
        ({"apply_reasons": []}, "apply_reasons", "at least one"),
        ({"dismiss_reasons": "declined"}, "dismiss_reasons", "a list"),
        (
            {"apply_reasons": [*REASONS, {"code": "late_delivery", "label": "Again"}]},
            "apply_reasons[1].code",
            "listed twice",
        ),
        ({"apply_reasons": [{"code": "ok", "label": ""}]}, "apply_reasons[0].label", "blank"),
        (
            {"dismiss_reasons": [{"code": "No!", "label": "No"}]},
            "dismiss_reasons[0].code",
            "lowercase",
        ),
        ({"dismiss_reasons": ["declined"]}, "dismiss_reasons[0]", "expected an object"),
        ({"colour": "red"}, "colour", "unknown key"),
    ],
)
def test_an_error_names_its_field(changes: dict[str, Any], path: str, message: str) -> None:
    (error,) = errors_of(entry(**changes))
    assert error.path == path
    assert message in error.message


def test_every_problem_is_reported_at_once() -> None:
    raw = entry(key="", currency="dollars", apply_reasons=[], cost={"kind": "fixed"})
    del raw["name"]
    assert [e.path for e in errors_of(raw)] == [
        "name",
        "key",
        "currency",
        "cost.cents",
        "apply_reasons",
    ]


def test_an_entry_must_be_an_object() -> None:
    (error,) = errors_of(["partial_refund"])
    assert error.path == ""


# Costs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order_cents", "expected"),
    [
        (None, None),  # a share of no order cannot be priced
        (1_000, 500),  # 10% is $1, raised to the $5 floor
        (12_345, 1_235),  # half a cent rounds up
        (12_344, 1_234),
        (80_000, 5_000),  # capped at $50
    ],
)
def test_percent_cost_within_its_min_and_max(order_cents: int | None, expected: int | None) -> None:
    cost = PercentCost(Decimal(10), min_cents=500, max_cents=5_000)
    assert cost.estimate(order_cents) == expected


def test_a_fraction_of_a_percent() -> None:
    assert PercentCost(Decimal("12.5")).estimate(10_001) == 1_250


def test_costs_in_words() -> None:
    assert FixedCost(1_200).describe("USD") == "$12"
    assert PercentCost(Decimal("12.50"), 500, 5_000).describe("EUR") == (
        "12.5% of the order, at least €5, at most €50"
    )
    assert PercentCost(Decimal(10)).describe("USD") == "10% of the order"


def test_money_in_whole_units() -> None:
    assert money(123_456) == "$1,235"
    assert money(3_800, "GBP") == "£38"
    assert money(100, "SEK") == "SEK\u00a01"
    # Half up, not half to even as a float's round() did ("$2", "$4", "$12").
    assert [money(c) for c in (250, 350, 1_250, 249)] == ["$3", "$4", "$13", "$2"]
    assert money(-250) == "-$3" and exact_money(-788, "USD") == "-$7.88"


@given(cents=st.integers(min_value=-(10**15), max_value=10**15))
def test_money_shown_is_exact_arithmetic_rounded_half_up(cents: int) -> None:
    exact = (Decimal(cents) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert money(cents) == ("-" if exact < 0 else "") + f"${abs(exact):,}"
    to_cent = Decimal(cents) / 100
    assert exact_money(cents, "USD") == (
        ("-" if cents < 0 else "") + f"${abs(exact):,}"
        if cents % 100 == 0
        else ("-" if cents < 0 else "") + f"${abs(to_cent):,.2f}"
    )


@given(
    percent=st.integers(min_value=1, max_value=100),
    order_cents=st.integers(min_value=0, max_value=10_000_000),
    limits=st.tuples(st.integers(0, 50_000), st.integers(0, 50_000)).map(sorted),
)
def test_an_editable_estimate_never_leaves_the_editable_limits(
    percent: int, order_cents: int, limits: list[int]
) -> None:
    low, high = limits
    exception = ExceptionType(
        key="refund",
        name="Refund",
        description="",
        cost=PercentCost(Decimal(percent)),
        apply_reasons=(),
        dismiss_reasons=(),
        editable=AmountLimits(low, high),
    )
    estimate = exception.estimate(order_cents)
    assert estimate is not None
    assert low <= estimate <= high


# Goodwill ---------------------------------------------------------------------------------


def test_goodwill_counts_the_last_90_days_in_a_sentence() -> None:
    grants = [
        Grant("refund", 2_500, NOW - timedelta(days=3)),
        Grant("free_shipping", 1_300, NOW - timedelta(days=89, hours=23)),
        Grant("refund", 9_900, NOW - timedelta(days=90)),  # out of the window, just
        Grant("refund", 9_900, NOW + timedelta(minutes=1)),  # after now: not yet
    ]
    goodwill = Goodwill.of(grants, now=NOW, currency="USD")
    assert (goodwill.count, goodwill.cents) == (2, 3_800)
    assert goodwill.sentence == "$38 granted in the last 90 days"


def test_no_goodwill_says_so() -> None:
    goodwill = Goodwill.of([], now=NOW, currency="USD")
    assert goodwill.sentence == "Nothing granted in the last 90 days"


def test_a_grant_made_now_is_within_the_window() -> None:
    grant = Grant("refund", 100, NOW)
    assert granted_within([grant], now=NOW, days=1) == [grant]


# Budgets ----------------------------------------------------------------------------------


def status(spent: int, monthly: int = 100_000) -> BudgetStatus:
    return BudgetStatus(Budget(SegmentRef("tier", "high"), monthly), spent)


def test_a_budget_parses() -> None:
    raw = {"segment": {"field": "rfm_segment", "value": "champions"}, "monthly_cents": 50_000}
    assert parse_budget(raw) == Budget(SegmentRef("rfm_segment", "champions"), 50_000)


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ({"segment": {"field": "orders_12m", "value": "3"}}, "segment.field", "one of tier"),
        ({"segment": {"field": "tier", "value": "gold"}}, "segment.value", "one of low"),
        ({"segment": {"field": "tier"}}, "segment.value", "missing"),
        ({"segment": "tier=high"}, "segment", "expected an object"),
        ({"monthly_cents": -5}, "monthly_cents", "from 0"),
        ({"monthly_cents": None}, "monthly_cents", "whole number"),
    ],
)
def test_a_budget_error_names_its_field(raw: dict[str, Any], path: str, message: str) -> None:
    budget = {"segment": {"field": "tier", "value": "high"}, "monthly_cents": 100_000, **raw}
    with pytest.raises(InvalidBudget) as raised:
        parse_budget(budget)
    (error,) = raised.value.errors
    assert error.path == path
    assert message in error.message


def test_budget_used_in_a_sentence() -> None:
    assert status(41_200).sentence("USD") == "$412 of $1,000 this month"


@pytest.mark.parametrize(
    ("spent", "percent", "running_out"),
    [(0, 0, False), (79_999, 79, False), (80_000, 80, True), (120_000, 120, True)],
)
def test_a_budget_runs_out_from_80_percent(spent: int, percent: int, running_out: bool) -> None:
    assert status(spent).percent_used == percent
    assert status(spent).running_out is running_out


def test_a_budget_allows_spending_up_to_its_amount_and_not_a_cent_more() -> None:
    assert status(90_000).allows(10_000)
    assert not status(90_000).allows(10_001)


def test_a_budget_of_nothing_is_used_up_but_allows_a_free_gesture() -> None:
    empty = status(0, monthly=0)
    assert empty.running_out
    assert empty.allows(0)
    assert not empty.allows(1)


def test_segments_as_agents_read_them() -> None:
    assert SegmentRef("tier", "high").label == "High value"
    assert SegmentRef("rfm_segment", "cant_lose_them").label == "Can't lose them"
    assert SegmentRef("behaviour_tags", "deal_seeker").label == "Deal seeker"
