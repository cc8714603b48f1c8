"""Behaviour tags: seasonal, small business, deal seeker and new customer, with their reasons."""

from __future__ import annotations

import calendar
import itertools
import statistics
from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.domain.behaviour import (
    DEAL_SEEKER_MIN_ORDERS,
    NEW_CUSTOMER_DAYS,
    SMALL_BUSINESS_MAX_GAP_VARIATION,
    SMALL_BUSINESS_MIN_ORDER_DAYS,
    SMALL_BUSINESS_WINDOW_DAYS,
    Behaviour,
    BehaviourTag,
    behaviour_tags,
    deal_seeker_tag,
    new_customer_tag,
    seasonal_tag,
    small_business_tag,
)
from plugin.domain.order_history import CustomerHistory, ago_phrase
from plugin.domain.wording import N_
from tests.domain.strategies import histories, history_on

TODAY = date(2026, 3, 2)


def every(step: int, *, since: int, until: int = 1) -> list[date]:
    """Days from `since` days ago to `until` days ago, `step` days apart."""
    return [TODAY - timedelta(days=ago) for ago in range(since, until - 1, -step)]


# Seasonal ---------------------------------------------------------------------------------


def test_gift_buyer_every_november_and_december_is_seasonal() -> None:
    days = [
        date(year, month, day) for year in (2022, 2023, 2024) for month, day in ((11, 20), (12, 5))
    ]
    history = history_on([*days, date(2024, 6, 1)])
    assert seasonal_tag(history, today=TODAY) == BehaviourTag(
        Behaviour.SEASONAL, "6 of 7 orders in Nov-Dec, over 3 years"
    )


def test_a_season_across_the_new_year_is_one_season() -> None:
    # Dec 2023 and Jan 2024 are one holiday season; Dec 2024 - Jan 2025 the second.
    days = [date(2023, 12, 20), date(2024, 1, 5), date(2024, 12, 21), date(2025, 1, 4)]
    tag = seasonal_tag(history_on(days), today=TODAY)
    assert tag is not None
    assert tag.reason == "4 of 4 orders in Dec-Jan, over 2 years"


def test_one_season_is_not_yet_a_habit() -> None:
    days = [date(2024, 11, d) for d in (1, 8, 15, 22, 29)]
    assert seasonal_tag(history_on(days), today=TODAY) is None


def test_seasonal_needs_four_orders() -> None:
    days = [date(2022, 12, 1), date(2023, 12, 1), date(2024, 12, 1)]
    assert seasonal_tag(history_on(days), today=TODAY) is None
    assert seasonal_tag(history_on([*days, date(2025, 12, 1)]), today=TODAY) is not None


def test_three_quarters_in_season_is_exactly_enough() -> None:
    in_season = [date(2023, 12, 1), date(2024, 12, 1), date(2024, 12, 2)]
    assert seasonal_tag(history_on([*in_season, date(2024, 5, 1)]), today=TODAY) is not None
    out = [date(2024, 5, 1), date(2024, 8, 1)]
    assert seasonal_tag(history_on([*in_season, *out]), today=TODAY) is None


@given(st.integers(min_value=1, max_value=3), st.integers(min_value=1, max_value=3))
def test_buying_all_year_round_is_never_seasonal(years: int, per_month: int) -> None:
    days = [
        date(2022 + year, month, 1 + 7 * k)
        for year in range(years)
        for month in range(1, 13)
        for k in range(per_month)
    ]
    assert seasonal_tag(history_on(days), today=TODAY) is None


@given(
    start=st.integers(min_value=1, max_value=12),
    width=st.integers(min_value=1, max_value=3),
    picks=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(1, 28)), min_size=4, max_size=20
    ),
)
def test_orders_clustered_in_a_window_over_two_years_are_seasonal(
    start: int, width: int, picks: list[tuple[int, int, int]]
) -> None:
    days = [
        date(
            2021 + year + (start + offset % width - 1) // 12,
            (start + offset % width - 1) % 12 + 1,
            day,
        )
        for year, offset, day in picks
    ]
    history = history_on(days)
    years = {year for year, _, _ in picks}
    assert (seasonal_tag(history, today=TODAY) is not None) == (len(years) >= 2)


@given(histories(min_orders=1), st.integers(min_value=0, max_value=250))
def test_orders_within_250_days_are_never_seasonal(history: CustomerHistory, span: int) -> None:
    # Two seasons of the same window of at most three months are at least nine months apart.
    first = history.order_days[0]
    history = history.through(first + timedelta(days=span))
    assert seasonal_tag(history, today=first + timedelta(days=span)) is None


def seasonal_by_definition(history: CustomerHistory, *, today: date) -> BehaviourTag | None:
    """The seasonal rule read straight off its definition: a pass over the orders per window."""
    orders = history.through(today).orders
    if len(orders) < 4:
        return None
    candidates = []
    for width in range(1, 4):
        for start in range(1, 13):
            months = {(start - 1 + i) % 12 + 1 for i in range(width)}
            inside = [o.placed_at.date() for o in orders if o.placed_at.month in months]
            years = {day.year if day.month >= start else day.year - 1 for day in inside}
            if Fraction(len(inside), len(orders)) >= Fraction(3, 4) and len(years) >= 2:
                candidates.append((-len(inside), width, start, len(years)))
    if not candidates:
        return None
    minus_inside, width, start, year_count = min(candidates)
    first, last = calendar.month_abbr[start], calendar.month_abbr[(start + width - 2) % 12 + 1]
    span = first if width == 1 else f"{first}-{last}"
    return BehaviourTag(
        Behaviour.SEASONAL,
        f"{-minus_inside} of {len(orders)} orders in {span}, over {year_count} years",
    )


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=2021, max_value=2025),
            st.sampled_from((1, 2, 11, 12, 6)),  # mostly around the new year: windows wrap
            st.integers(min_value=1, max_value=28),
        ),
        min_size=0,
        max_size=14,
    ),
    histories(max_orders=4),
)
def test_seasonal_counts_months_as_its_definition_does(
    picks: list[tuple[int, int, int]], noise: CustomerHistory
) -> None:
    # The rule counts each month once rather than passing over the orders per window: the
    # same tag and reason as the definition, on clustered and random orders alike.
    history = CustomerHistory.of(
        [*history_on([date(y, m, d) for y, m, d in picks]).orders, *noise.orders]
    )
    assert seasonal_tag(history, today=TODAY) == seasonal_by_definition(history, today=TODAY)


# Small business / daily buyer -------------------------------------------------------------


def test_a_weekday_buyer_is_a_small_business() -> None:
    days = [day for day in every(1, since=120) if day.weekday() < 5]
    assert small_business_tag(history_on(days), today=TODAY) == BehaviourTag(
        Behaviour.SMALL_BUSINESS,
        "ordered on 63 of the last 90 days, regularly, every 1.4 days on average",
    )


@given(st.integers(min_value=1, max_value=4), st.integers(min_value=0, max_value=3))
def test_buying_every_few_days_is_a_small_business(step: int, last: int) -> None:
    days = every(step, since=SMALL_BUSINESS_WINDOW_DAYS + 30, until=last)
    assert small_business_tag(history_on(days), today=TODAY) is not None


@given(
    st.sets(st.integers(min_value=1, max_value=89), max_size=SMALL_BUSINESS_MIN_ORDER_DAYS - 1),
    st.integers(min_value=0, max_value=60),
)
def test_fewer_than_20_order_days_in_the_last_90_is_never_a_small_business(
    recent: set[int], older: int
) -> None:
    days = every(1, since=90 + older, until=90) + [TODAY - timedelta(days=ago) for ago in recent]
    assert small_business_tag(history_on(days), today=TODAY) is None


def test_bursts_are_not_regular() -> None:
    days = every(1, since=89, until=78) + every(1, since=12, until=1)
    assert len(days) >= SMALL_BUSINESS_MIN_ORDER_DAYS
    assert small_business_tag(history_on(days), today=TODAY) is None


def test_a_business_that_stopped_ordering_is_not_tagged() -> None:
    days = every(1, since=89, until=40)
    assert small_business_tag(history_on(days), today=TODAY) is None
    assert small_business_tag(history_on(days), today=TODAY - timedelta(days=39)) is not None


def test_several_orders_a_day_are_one_order_day() -> None:
    days = every(7, since=89) * 5  # weekly, five orders each time
    assert small_business_tag(history_on(days), today=TODAY) is None


def small_business_by_definition(history: CustomerHistory, *, today: date) -> BehaviourTag | None:
    """The small business rule read off its definition: a test of every order day."""
    days = [
        day
        for day in history.through(today).order_days
        if (today - day).days < SMALL_BUSINESS_WINDOW_DAYS
    ]
    if len(days) < SMALL_BUSINESS_MIN_ORDER_DAYS:
        return None
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


def new_customer_by_definition(history: CustomerHistory, *, today: date) -> BehaviourTag | None:
    """The new customer rule as defined, through first_seen and the order days."""
    history = history.through(today)
    if not history.orders or history.first_seen is None:
        return None
    if (today - history.first_seen).days >= NEW_CUSTOMER_DAYS:
        return None
    first_order = (today - history.order_days[0]).days
    return BehaviourTag(
        Behaviour.NEW_CUSTOMER, N_("first order %(when)s", when=ago_phrase(first_order))
    )


@given(
    st.lists(st.integers(min_value=0, max_value=130), max_size=70),
    st.none() | st.integers(min_value=0, max_value=60),
    st.integers(min_value=-3, max_value=3),
)
def test_recent_rules_read_the_days_their_definitions_do(
    ago: list[int], known_for: int | None, shift: int
) -> None:
    # small_business_tag finds the window's days by a search in the sorted days, and
    # new_customer_tag finds first_seen from the first order: the same days and tags.
    since = None if known_for is None else TODAY - timedelta(days=known_for)
    history = history_on([TODAY - timedelta(days=a) for a in ago], customer_since=since)
    today = TODAY + timedelta(days=shift)
    assert small_business_tag(history, today=today) == small_business_by_definition(
        history, today=today
    )
    assert new_customer_tag(history, today=today) == new_customer_by_definition(
        history, today=today
    )


# Deal seeker ------------------------------------------------------------------------------


@given(
    st.integers(min_value=0, max_value=30).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n))
    )
)
def test_deal_seeker_is_at_least_half_of_at_least_five_orders(counts: tuple[int, int]) -> None:
    total, discounted = counts
    flags = [True] * discounted + [False] * (total - discounted)
    history = history_on(every(3, since=3 * total, until=3)[:total], discounted=flags)
    expected = total >= DEAL_SEEKER_MIN_ORDERS and 2 * discounted >= total
    assert (deal_seeker_tag(history, today=TODAY) is not None) == expected


def test_deal_seeker_reason() -> None:
    flags = [True, True, False, True, False]
    history = history_on(every(10, since=50, until=10), discounted=flags)
    assert deal_seeker_tag(history, today=TODAY) == BehaviourTag(
        Behaviour.DEAL_SEEKER, "3 of 5 orders used a discount"
    )


# New customer -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_ago", "reason"),
    [(0, "first order today"), (1, "first order yesterday"), (29, "first order 29 days ago")],
)
def test_new_for_the_first_30_days(days_ago: int, reason: str) -> None:
    history = history_on([TODAY - timedelta(days=days_ago)])
    assert new_customer_tag(history, today=TODAY) == BehaviourTag(Behaviour.NEW_CUSTOMER, reason)


def test_not_new_from_day_30() -> None:
    history = history_on([TODAY - timedelta(days=NEW_CUSTOMER_DAYS)])
    assert new_customer_tag(history, today=TODAY) is None


def test_an_old_account_with_a_first_order_is_not_new() -> None:
    history = history_on([TODAY - timedelta(days=3)], customer_since=TODAY - timedelta(days=400))
    assert new_customer_tag(history, today=TODAY) is None


def test_a_prospect_is_not_a_new_customer() -> None:
    history = CustomerHistory(customer_since=TODAY - timedelta(days=2))
    assert new_customer_tag(history, today=TODAY) is None


# All tags ---------------------------------------------------------------------------------


def test_tags_ignore_orders_after_today() -> None:
    history = history_on([TODAY + timedelta(days=1)])
    assert behaviour_tags(history, today=TODAY) == ()
    assert behaviour_tags(history, today=TODAY + timedelta(days=1))[0].behaviour is (
        Behaviour.NEW_CUSTOMER
    )


def test_an_empty_history_has_no_tags() -> None:
    assert behaviour_tags(CustomerHistory(), today=TODAY) == ()


def test_leap_day_orders_count_in_february() -> None:
    days = [date(2020, 2, 29), date(2021, 2, 28), date(2024, 2, 29), date(2025, 2, 28)]
    tag = seasonal_tag(history_on(days), today=TODAY)
    assert tag is not None
    assert tag.reason == "4 of 4 orders in Feb, over 4 years"
