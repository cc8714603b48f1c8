"""RFM: quintile cut points drawn from a base, scores 1-5, and the R/FM segment grid."""

from __future__ import annotations

import math
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.domain.order_history import CustomerHistory
from plugin.domain.rfm import (
    FIXED_BANDS,
    RFM_GRID,
    RFM_MIN_BASE,
    Distribution,
    RfmCutPoints,
    RfmScores,
    RfmSegment,
    RfmValues,
    spend_bucket,
)
from tests.domain.strategies import history_on

values = st.builds(
    RfmValues,
    recency_days=st.integers(min_value=0, max_value=3_000),
    frequency=st.integers(min_value=1, max_value=500),
    monetary_cents=st.integers(min_value=0, max_value=10**9),
)
bases = st.lists(values, min_size=1, max_size=60)
scores = st.integers(min_value=1, max_value=5)


def quintiles(base: list[RfmValues]) -> RfmCutPoints:
    return RfmCutPoints.from_base(base, min_base=1)


def worse_share_score(value: int, others: list[int]) -> int:
    """1 + floor(5 * customers with a smaller value / n): the documented score of a member."""
    return 1 + math.floor(5 * sum(other < value for other in others) / len(others))


@given(bases, values)
def test_scores_run_from_1_to_5(base: list[RfmValues], customer: RfmValues) -> None:
    for cut_points in (quintiles(base), RfmCutPoints.from_base(base)):
        scored = cut_points.score(customer)
        assert {scored.recency, scored.frequency, scored.monetary} <= {1, 2, 3, 4, 5}


@given(bases, values, st.integers(min_value=1, max_value=100))
def test_buying_more_recently_more_often_or_more_never_lowers_a_score(
    base: list[RfmValues], customer: RfmValues, more: int
) -> None:
    cut_points = quintiles(base)
    before = cut_points.score(customer)
    sooner = RfmValues(max(0, customer.recency_days - more), customer.frequency, 0)
    assert cut_points.score(sooner).recency >= before.recency
    oftener = RfmValues(0, customer.frequency + more, 0)
    assert cut_points.score(oftener).frequency >= before.frequency
    bigger = RfmValues(0, 1, customer.monetary_cents + more)
    assert cut_points.score(bigger).monetary >= before.monetary


@given(bases)
def test_a_members_score_is_the_share_of_the_base_it_beats(base: list[RfmValues]) -> None:
    cut_points = quintiles(base)
    minus_days = [-v.recency_days for v in base]
    counts = [v.frequency for v in base]
    for customer in base:
        scored = cut_points.score(customer)
        assert scored.recency == worse_share_score(-customer.recency_days, minus_days)
        assert scored.frequency == worse_share_score(customer.frequency, counts)


@given(bases)
def test_spend_ranks_by_its_1_percent_bucket(base: list[RfmValues]) -> None:
    cut_points = quintiles(base)
    buckets = [spend_bucket(v.monetary_cents) for v in base]
    for customer in base:
        expected = worse_share_score(spend_bucket(customer.monetary_cents), buckets)
        assert cut_points.score(customer).monetary == expected


@given(bases.flatmap(lambda base: st.tuples(st.just(base), st.permutations(base))))
def test_cut_points_do_not_depend_on_the_order_of_the_base(
    base_and_shuffled: tuple[list[RfmValues], list[RfmValues]],
) -> None:
    base, shuffled = base_and_shuffled
    assert quintiles(shuffled) == quintiles(base)


@given(st.integers(min_value=0, max_value=10**10), st.integers(min_value=0, max_value=10**10))
def test_spend_buckets_keep_the_order_of_amounts(smaller: int, larger: int) -> None:
    smaller, larger = sorted((smaller, larger))
    assert spend_bucket(smaller) <= spend_bucket(larger)


def test_five_distinct_customers_score_1_to_5() -> None:
    base = [
        RfmValues(recency_days=50 - 10 * k, frequency=k, monetary_cents=k * 1000)
        for k in (1, 2, 3, 4, 5)
    ]
    cut_points = quintiles(base)
    assert [cut_points.score(v) for v in base] == [RfmScores(k, k, k) for k in (1, 2, 3, 4, 5)]


def test_a_tie_that_straddles_cuts_gets_the_lower_score() -> None:
    # Six one-time buyers of ten: they beat nobody, so frequency 1; two orders beats six.
    base = [RfmValues(10, n, 1000) for n in (1, 1, 1, 1, 1, 1, 2, 3, 4, 5)]
    cut_points = quintiles(base)
    assert [cut_points.score(v).frequency for v in base] == [1] * 6 + [4, 4, 5, 5]


def test_equal_values_score_equally_whoever_else_is_in_the_base() -> None:
    twin = RfmValues(30, 4, 12_345)
    cut_points = quintiles([twin, RfmValues(1, 9, 99_999), twin, RfmValues(400, 1, 10)])
    assert cut_points.score(twin) == cut_points.score(RfmValues(30, 4, 12_345))


def test_a_base_smaller_than_the_minimum_gets_the_fixed_bands() -> None:
    base = [RfmValues(n, n + 1, n * 100) for n in range(RFM_MIN_BASE - 1)]
    assert RfmCutPoints.from_base(base) is FIXED_BANDS
    assert RfmCutPoints.from_base([]) is FIXED_BANDS
    assert RfmCutPoints.from_base([*base, RfmValues(0, 1, 0)]).base_size == RFM_MIN_BASE


@pytest.mark.parametrize(
    ("customer", "expected"),
    [
        (RfmValues(29, 1, 100_00), RfmScores(5, 1, 1)),
        (RfmValues(30, 2, 100_01), RfmScores(4, 2, 2)),
        (RfmValues(179, 9, 2_000_00), RfmScores(3, 3, 3)),
        (RfmValues(364, 10, 2_000_01), RfmScores(2, 4, 4)),
        (RfmValues(365, 25, 5_000_01), RfmScores(1, 5, 5)),
    ],
)
def test_fixed_bands_at_their_edges(customer: RfmValues, expected: RfmScores) -> None:
    assert FIXED_BANDS.score(customer) == expected


def test_a_single_customer_beats_nobody() -> None:
    alone = RfmValues(3, 40, 900_000)
    assert quintiles([alone]).score(alone) == RfmScores(1, 1, 1)


@given(scores, scores, scores)
def test_every_score_combination_has_a_segment(r: int, f: int, m: int) -> None:
    assert RfmScores(r, f, m).segment in RfmSegment


def test_the_grid_uses_every_segment_and_has_five_by_five_cells() -> None:
    assert sorted(RFM_GRID) == [1, 2, 3, 4, 5]
    assert all(len(row) == 5 for row in RFM_GRID.values())
    assert {segment for row in RFM_GRID.values() for segment in row} == set(RfmSegment)


@pytest.mark.parametrize(
    ("scored", "segment"),
    [
        (RfmScores(5, 5, 5), RfmSegment.CHAMPIONS),
        (RfmScores(5, 5, 4), RfmSegment.CHAMPIONS),
        (RfmScores(4, 4, 5), RfmSegment.LOYAL),
        (RfmScores(3, 5, 5), RfmSegment.LOYAL),
        (RfmScores(5, 3, 2), RfmSegment.POTENTIAL_LOYALIST),
        (RfmScores(5, 1, 1), RfmSegment.NEW_CUSTOMERS),
        (RfmScores(4, 1, 2), RfmSegment.PROMISING),
        (RfmScores(3, 3, 3), RfmSegment.NEED_ATTENTION),
        (RfmScores(3, 2, 1), RfmSegment.ABOUT_TO_SLEEP),
        (RfmScores(2, 4, 3), RfmSegment.AT_RISK),
        (RfmScores(1, 5, 5), RfmSegment.CANT_LOSE_THEM),
        (RfmScores(2, 2, 2), RfmSegment.HIBERNATING),
        (RfmScores(1, 2, 3), RfmSegment.HIBERNATING),
        (RfmScores(1, 1, 2), RfmSegment.LOST),
    ],
)
def test_segments_from_the_grid(scored: RfmScores, segment: RfmSegment) -> None:
    assert scored.segment is segment


def test_scores_outside_1_to_5_are_refused() -> None:
    with pytest.raises(ValueError, match="1 to 5"):
        RfmScores(0, 3, 3)
    with pytest.raises(ValueError, match="an order"):
        RfmValues(recency_days=1, frequency=0, monetary_cents=0)


def test_values_of_a_history() -> None:
    history = history_on(
        [date(2024, 2, 27), date(2024, 2, 29), date(2024, 3, 5)], amount_cents=20_00
    )
    assert RfmValues.of(history, today=date(2024, 3, 1)) == RfmValues(1, 2, 40_00)
    assert RfmValues.of(history, today=date(2024, 2, 26)) is None
    assert RfmValues.of(CustomerHistory(), today=date(2024, 3, 1)) is None


def test_distribution_positions() -> None:
    distribution = Distribution()
    for value in (5, 3, 3, 9):
        distribution.add(value)
    assert [distribution.bucket_at(p) for p in (1, 2, 3, 4)] == [(3, 3), (3, 3), (5, 5), (9, 9)]
    with pytest.raises(ValueError, match="outside"):
        distribution.bucket_at(5)
