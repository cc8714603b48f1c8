"""Lifecycle: the stage at a day from the orders alone, and the day it last changed."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.domain.lifecycle import (
    FALLBACK_AT_RISK_DAYS,
    FALLBACK_LAPSED_DAYS,
    WON_BACK_DAYS,
    LifecycleStage,
    LifecycleStatus,
    _reason,
    _rhythms,
    _stage,
    _turning_days,
    lifecycle_stage,
    lifecycle_status,
)
from plugin.domain.order_history import CustomerHistory
from tests.domain.strategies import histories, history_on, regular_histories, todays

FIRST = date(2024, 1, 10)
Stage = LifecycleStage


def days_after(start: date, *offsets: int) -> list[date]:
    return [start + timedelta(days=offset) for offset in offsets]


def status_on(history: CustomerHistory, day: date) -> tuple[LifecycleStage, date] | None:
    status = lifecycle_status(history, today=day)
    return None if status is None else (status.stage, status.since)


# Properties -------------------------------------------------------------------------------


@given(regular_histories() | histories(min_orders=1), st.integers(min_value=400, max_value=2000))
def test_no_order_in_400_days_is_never_active(history: CustomerHistory, silence: int) -> None:
    today = history.order_days[-1] + timedelta(days=silence)
    assert lifecycle_stage(history, today=today) in (Stage.AT_RISK, Stage.LAPSED)


@settings(deadline=None)
@given(regular_histories() | histories(), todays, st.data())
def test_since_is_the_day_the_current_stage_began(
    history: CustomerHistory, today: date, data: st.DataObject
) -> None:
    status = lifecycle_status(history, today=today)
    if status is None:
        assert not history.through(today).orders
        return
    assert status.since <= today
    assert status.stage is lifecycle_stage(history, today=today)
    assert lifecycle_stage(history, today=status.since) is status.stage
    between = data.draw(st.dates(min_value=status.since, max_value=today))
    assert lifecycle_stage(history, today=between) is status.stage
    before = status.since - timedelta(days=1)
    if status.since != history.order_days[0]:
        assert lifecycle_stage(history, today=before) is not status.stage


@given(histories(), todays)
def test_a_stage_needs_an_order(history: CustomerHistory, today: date) -> None:
    has_ordered = bool(history.through(today).orders)
    assert (lifecycle_stage(history, today=today) is not None) == has_ordered


def status_by_definition(history: CustomerHistory, *, today: date) -> LifecycleStatus | None:
    """The status read straight off the definition: a rhythm per order day, then the stage at
    each of its turning days (the walk lifecycle_status made before it ran on day numbers)."""
    history = history.through(today)
    rhythms = _rhythms(history)
    if not rhythms or history.first_seen is None:
        return None
    first_seen = history.first_seen
    stage, since = None, rhythms[0].day
    next_order_days = [r.day for r in rhythms[1:]] + [today + timedelta(days=1)]
    for rhythm, next_order_day in zip(rhythms, next_order_days, strict=True):
        for day in _turning_days(rhythm, first_seen, before=next_order_day):
            if (now_in := _stage(rhythm, first_seen, day)) != stage:
                stage, since = now_in, day
    assert stage is not None
    return LifecycleStatus(stage, since, _reason(stage, rhythms[0].day, rhythms[-1], today))


@settings(max_examples=300, deadline=None)
@given(regular_histories() | histories(max_orders=60), todays)
def test_status_is_the_definitions(history: CustomerHistory, today: date) -> None:
    # One pass on day numbers, without a record per order day: the same stage, since and
    # reason as the definition, on regular buyers with lapses and on random orders alike.
    assert lifecycle_status(history, today=today) == status_by_definition(history, today=today)


@given(regular_histories(), st.integers(min_value=0, max_value=120))
def test_status_is_the_definitions_around_each_order(history: CustomerHistory, after: int) -> None:
    # Days at and just after an order day, where the thresholds, "new" and "won back" cross.
    for day in history.order_days:
        today = day + timedelta(days=after)
        assert lifecycle_status(history, today=today) == status_by_definition(history, today=today)


# One order: the fallback thresholds -------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "stage", "since"),
    [
        (0, Stage.NEW, 0),
        (29, Stage.NEW, 0),
        (30, Stage.ACTIVE, 30),
        (FALLBACK_AT_RISK_DAYS - 1, Stage.ACTIVE, 30),
        (FALLBACK_AT_RISK_DAYS, Stage.AT_RISK, FALLBACK_AT_RISK_DAYS),
        (FALLBACK_LAPSED_DAYS - 1, Stage.AT_RISK, FALLBACK_AT_RISK_DAYS),
        (FALLBACK_LAPSED_DAYS, Stage.LAPSED, FALLBACK_LAPSED_DAYS),
        (3000, Stage.LAPSED, FALLBACK_LAPSED_DAYS),
    ],
)
def test_one_order_moves_through_the_stages(age: int, stage: Stage, since: int) -> None:
    history = history_on([FIRST])
    today = FIRST + timedelta(days=age)
    assert status_on(history, today) == (stage, FIRST + timedelta(days=since))


def test_reasons_an_agent_can_read() -> None:
    history = history_on([FIRST])
    expected = {
        3: "first order 3 days ago",
        40: "last order 40 days ago; at risk after 180 days without one",
        200: "no order for 200 days; at risk after 180 days for this customer",
        400: "no order for 400 days; lapsed after 365 days for this customer",
    }
    for age, reason in expected.items():
        status = lifecycle_status(history, today=FIRST + timedelta(days=age))
        assert status is not None
        assert status.reason == reason


def test_a_leap_day_order_lapses_365_days_later() -> None:
    history = history_on([date(2024, 2, 29)])
    assert status_on(history, date(2025, 2, 27)) == (Stage.AT_RISK, date(2024, 8, 27))
    assert status_on(history, date(2025, 2, 28)) == (Stage.LAPSED, date(2025, 2, 28))


def test_orders_on_the_same_day_are_one_visit() -> None:
    history = history_on([FIRST] * 4)
    assert status_on(history, FIRST + timedelta(days=180)) == (
        Stage.AT_RISK,
        FIRST + timedelta(days=180),
    )


def test_an_account_older_than_30_days_is_not_new() -> None:
    history = history_on([FIRST], customer_since=FIRST - timedelta(days=45))
    assert status_on(history, FIRST) == (Stage.ACTIVE, FIRST)


def test_orders_after_today_do_not_count() -> None:
    history = history_on([FIRST, FIRST + timedelta(days=10)])
    assert status_on(history, FIRST - timedelta(days=1)) is None
    assert status_on(history, FIRST + timedelta(days=5)) == (Stage.NEW, FIRST)


# The customer's own rhythm ----------------------------------------------------------------


def test_a_ten_day_buyer_is_at_risk_after_20_days_and_lapsed_after_60() -> None:
    history = history_on(days_after(FIRST, 0, 10, 20, 30, 40, 50))
    last = FIRST + timedelta(days=50)
    assert status_on(history, last + timedelta(days=19)) == (Stage.ACTIVE, FIRST + timedelta(30))
    assert status_on(history, last + timedelta(days=20)) == (Stage.AT_RISK, last + timedelta(20))
    assert status_on(history, last + timedelta(days=60)) == (Stage.LAPSED, last + timedelta(60))


def test_a_daily_buyer_is_at_risk_after_two_weeks() -> None:
    history = history_on(days_after(FIRST, *range(60)))
    last = FIRST + timedelta(days=59)
    assert lifecycle_stage(history, today=last + timedelta(days=13)) is Stage.ACTIVE
    assert lifecycle_stage(history, today=last + timedelta(days=14)) is Stage.AT_RISK


def test_returning_from_at_risk_is_active_again() -> None:
    history = history_on(days_after(FIRST, 0, 10, 20, 30, 40, 50, 75))
    assert status_on(history, FIRST + timedelta(days=80)) == (Stage.ACTIVE, FIRST + timedelta(75))


def test_a_lapsed_customer_who_orders_again_is_won_back_for_90_days() -> None:
    history = history_on(days_after(FIRST, 0, 10, 20, 30, 40, 50, 150))
    back = FIRST + timedelta(days=150)
    status = lifecycle_status(history, today=back + timedelta(days=5))
    assert status == LifecycleStatus(
        Stage.WON_BACK, back, "came back 5 days ago after 100 days without an order"
    )
    assert status_on(history, back + timedelta(days=WON_BACK_DAYS - 1)) == (Stage.WON_BACK, back)
    assert status_on(history, back + timedelta(days=WON_BACK_DAYS)) == (
        Stage.ACTIVE,
        back + timedelta(days=WON_BACK_DAYS),
    )


def test_a_yearly_gift_buyer_is_not_at_risk_in_the_summer() -> None:
    days = [date(year, month, 10) for year in (2021, 2022, 2023) for month in (11, 12)]
    days += [date(year, 11, 25) for year in (2021, 2022, 2023)]
    history = history_on(days)
    assert lifecycle_stage(history, today=date(2024, 7, 1)) is Stage.ACTIVE
    assert lifecycle_stage(history, today=date(2024, 12, 11)) is Stage.AT_RISK


def test_a_prospect_has_no_stage() -> None:
    assert lifecycle_status(CustomerHistory(customer_since=FIRST), today=FIRST) is None
