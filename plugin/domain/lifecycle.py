"""Lifecycle stage (new, active, at risk, lapsed, won back) from the order history at a date.

Nothing is stored: the stage is a function of the orders placed up to a day, and the day it
last changed is found by evaluating that function along the history, at each order day and
at each day a threshold is crossed in between.

Silence is judged against the customer's own rhythm: their usual longest gap between order
days (the 90th percentile of the gaps, once they have at least 3). At risk after twice that
(between 14 days and a year), lapsed after four times (between 60 days and two years). With
fewer gaps there is no rhythm yet, and the fallbacks apply: at risk after 180 days, lapsed
after a year. So a café that orders every weekday is at risk after two weeks, a monthly
buyer after two or three months, and a gift buyer who comes back every November is not
at risk in the summer. A stage of "new" lasts the first 30 days; "won back" the 90 days after
an order that ended a lapse.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from plugin.domain.behaviour import NEW_CUSTOMER_DAYS
from plugin.domain.order_history import CustomerHistory, ago_phrase, days_phrase
from plugin.domain.wording import N_

RHYTHM_MIN_GAPS = 3
RHYTHM_PERCENTILE = 0.9
AT_RISK_GAP_MULTIPLE = 2
AT_RISK_DAYS_RANGE = (14, 365)
LAPSED_GAP_MULTIPLE = 4
LAPSED_DAYS_RANGE = (60, 730)
FALLBACK_AT_RISK_DAYS = 180
FALLBACK_LAPSED_DAYS = 365
WON_BACK_DAYS = 90


class LifecycleStage(StrEnum):
    NEW = "new"
    ACTIVE = "active"
    AT_RISK = "at_risk"
    LAPSED = "lapsed"
    WON_BACK = "won_back"


@dataclass(frozen=True)
class LifecycleStatus:
    """The stage at a day, the day the customer moved into it, and why, for an agent."""

    stage: LifecycleStage
    since: date
    reason: str


@dataclass(frozen=True)
class _Rhythm:
    """Where a customer stands after the orders of one order day."""

    day: date
    at_risk_after: int
    lapsed_after: int
    # The order day that ended the latest lapse so far, and how many days they had been away.
    came_back_on: date | None
    came_back_after: int


AT_RISK_LOW, AT_RISK_HIGH = AT_RISK_DAYS_RANGE
LAPSED_LOW, LAPSED_HIGH = LAPSED_DAYS_RANGE
# No customer is at risk (nor lapsed) after fewer days of silence than this.
QUIET_DAYS = min(AT_RISK_LOW, FALLBACK_AT_RISK_DAYS, LAPSED_LOW, FALLBACK_LAPSED_DAYS)


def lifecycle_stage(history: CustomerHistory, *, today: date) -> LifecycleStage | None:
    """Return the stage at the end of `today`; None for a customer who has not ordered."""
    history = history.through(today)
    rhythms = _rhythms(history)
    if not rhythms or history.first_seen is None:
        return None
    return _stage(rhythms[-1], history.first_seen, today)


def lifecycle_status(history: CustomerHistory, *, today: date) -> LifecycleStatus | None:
    """Return the stage at `today`, the day it last changed and the reason for it.

    The same walk as `_rhythms` then `_stage` at each of `_turning_days` (the definition, which
    `lifecycle_stage` follows), in one pass over the order days with days as day numbers
    (ordinals) and no record per order day: this runs for every customer in a recompute, and
    the equivalence test in tests/domain/test_lifecycle.py holds it to the definition.
    """
    history = history.through(today)
    order_days = history.order_days
    if not order_days:
        return None
    # history.first_seen: the earlier of the account's start and the first order day.
    first_seen = order_days[0]
    if (account_since := history.customer_since) is not None and account_since < first_seen:
        first_seen = account_since
    ordinals = [day.toordinal() for day in order_days]
    new_until = first_seen.toordinal() + NEW_CUSTOMER_DAYS
    end = today.toordinal() + 1
    at_risk_after, lapsed_after = FALLBACK_AT_RISK_DAYS, FALLBACK_LAPSED_DAYS
    gaps: list[int] = []  # kept sorted for the percentile
    rhythm_of = 0  # the usual gap the thresholds were last drawn from (gaps are 1 day or more)
    came_back_on: int | None = None
    came_back_after = 0
    won_back_until = 0
    stage: LifecycleStage | None = None
    since = previous = ordinals[0]
    nexts = ordinals[1:]
    nexts.append(end)
    for day, before in zip(ordinals, nexts, strict=True):
        if day != previous:
            gap = day - previous
            if gap >= lapsed_after:
                came_back_on, came_back_after = day, gap
                won_back_until = day + WON_BACK_DAYS
            bisect.insort(gaps, gap)
            if (count := len(gaps)) >= RHYTHM_MIN_GAPS:  # _thresholds(gaps), inline
                usual = gaps[math.ceil(RHYTHM_PERCENTILE * count) - 1]
                if usual != rhythm_of:  # the thresholds change only with the usual gap
                    rhythm_of = usual
                    at_risk_after = min(
                        AT_RISK_HIGH, max(AT_RISK_LOW, AT_RISK_GAP_MULTIPLE * usual)
                    )
                    lapsed_after = min(LAPSED_HIGH, max(LAPSED_LOW, LAPSED_GAP_MULTIPLE * usual))
            previous = day
        if before - day <= QUIET_DAYS and day >= new_until and day >= won_back_until:
            # The usual day of a frequent buyer: the next order comes before any threshold
            # is crossed and neither "new" nor "won back" runs, so the one turning day is
            # this one, and the stage active.
            if stage is not LifecycleStage.ACTIVE:
                stage, since = LifecycleStage.ACTIVE, day
            continue
        # The days on which the stage can change before the next order day: this one, then
        # the thresholds' crossings after it (a duplicate changes nothing).
        turning = [day]
        for crossing in (day + at_risk_after, day + lapsed_after, new_until, won_back_until):
            if day < crossing < before:
                turning.append(crossing)
        if len(turning) > 2:
            turning.sort()
        for on in turning:
            silence = on - day
            if silence >= lapsed_after:
                now_in = LifecycleStage.LAPSED
            elif silence >= at_risk_after:
                now_in = LifecycleStage.AT_RISK
            elif on < new_until:
                now_in = LifecycleStage.NEW
            elif on < won_back_until:
                now_in = LifecycleStage.WON_BACK
            else:
                now_in = LifecycleStage.ACTIVE
            if now_in is not stage:
                stage, since = now_in, on
    assert stage is not None, "the first order day always sets a stage"
    latest = _Rhythm(
        order_days[-1],
        at_risk_after,
        lapsed_after,
        None if came_back_on is None else date.fromordinal(came_back_on),
        came_back_after,
    )
    return LifecycleStatus(
        stage, date.fromordinal(since), _reason(stage, order_days[0], latest, today)
    )


def _rhythms(history: CustomerHistory) -> list[_Rhythm]:
    """Compute the thresholds after each order day, in one pass over the days."""
    rhythms: list[_Rhythm] = []
    gaps: list[int] = []  # kept sorted for the percentile
    came_back_on, came_back_after = None, 0
    for day in history.order_days:
        if rhythms:
            previous = rhythms[-1]
            gap = (day - previous.day).days
            if gap >= previous.lapsed_after:
                came_back_on, came_back_after = day, gap
            bisect.insort(gaps, gap)
        at_risk_after, lapsed_after = _thresholds(gaps)
        rhythms.append(_Rhythm(day, at_risk_after, lapsed_after, came_back_on, came_back_after))
    return rhythms


def _thresholds(sorted_gaps: list[int]) -> tuple[int, int]:
    """Days of silence after which a customer is at risk, and lapsed."""
    if len(sorted_gaps) < RHYTHM_MIN_GAPS:
        return FALLBACK_AT_RISK_DAYS, FALLBACK_LAPSED_DAYS
    usual = sorted_gaps[math.ceil(RHYTHM_PERCENTILE * len(sorted_gaps)) - 1]
    return (
        _clamp(AT_RISK_GAP_MULTIPLE * usual, AT_RISK_DAYS_RANGE),
        _clamp(LAPSED_GAP_MULTIPLE * usual, LAPSED_DAYS_RANGE),
    )


def _clamp(days: int, bounds: tuple[int, int]) -> int:
    """Keep `days` within (low, high)."""
    low, high = bounds
    return max(low, min(high, days))


def _stage(rhythm: _Rhythm, first_seen: date, day: date) -> LifecycleStage:
    """The stage on `day`, on or after the rhythm's order day and before the next one."""
    silence = (day - rhythm.day).days
    if silence >= rhythm.lapsed_after:
        return LifecycleStage.LAPSED
    if silence >= rhythm.at_risk_after:
        return LifecycleStage.AT_RISK
    if (day - first_seen).days < NEW_CUSTOMER_DAYS:
        return LifecycleStage.NEW
    if rhythm.came_back_on and (day - rhythm.came_back_on).days < WON_BACK_DAYS:
        return LifecycleStage.WON_BACK
    return LifecycleStage.ACTIVE


def _turning_days(rhythm: _Rhythm, first_seen: date, *, before: date) -> list[date]:
    """The days from the order day until `before` on which `_stage` can change, in order."""
    start = rhythm.day
    later = {
        start + timedelta(days=rhythm.at_risk_after),
        start + timedelta(days=rhythm.lapsed_after),
        first_seen + _NEW_WINDOW,
    }
    if rhythm.came_back_on is not None:
        later.add(rhythm.came_back_on + _WON_BACK_WINDOW)
    return [start, *sorted(day for day in later if start < day < before)]


_NEW_WINDOW = timedelta(days=NEW_CUSTOMER_DAYS)
_WON_BACK_WINDOW = timedelta(days=WON_BACK_DAYS)


def _reason(stage: LifecycleStage, first_order_day: date, latest: _Rhythm, today: date) -> str:
    """Say why the customer is in `stage` today, in an agent's words."""
    silence = (today - latest.day).days
    match stage:
        case LifecycleStage.NEW:
            return N_("first order %(when)s", when=ago_phrase((today - first_order_day).days))
        case LifecycleStage.ACTIVE:
            return N_(
                "last order %(when)s; at risk after %(days)s without one",
                when=ago_phrase(silence),
                days=days_phrase(latest.at_risk_after),
            )
        case LifecycleStage.AT_RISK:
            return N_(
                "no order for %(silence)s; at risk after %(days)s for this customer",
                silence=days_phrase(silence),
                days=days_phrase(latest.at_risk_after),
            )
        case LifecycleStage.LAPSED:
            return N_(
                "no order for %(silence)s; lapsed after %(days)s for this customer",
                silence=days_phrase(silence),
                days=days_phrase(latest.lapsed_after),
            )
        case LifecycleStage.WON_BACK:
            assert latest.came_back_on is not None
            return N_(
                "came back %(when)s after %(days)s without an order",
                when=ago_phrase((today - latest.came_back_on).days),
                days=days_phrase(latest.came_back_after),
            )
