"""Bulk profiling's shortcuts give what profiling each customer on their own gives."""

from __future__ import annotations

import gc
import threading
from datetime import date, datetime, timedelta

from plugin.customers.bulk_work import BULK_GC_THRESHOLD, few_collections
from plugin.customers.derived_stamp import Stamper
from plugin.customers.histories import RawHistory, history_of
from plugin.customers.segmentation import _Profiler, _row
from plugin.domain.personas import Persona, parse_conditions
from plugin.domain.rfm import FIXED_BANDS
from plugin.domain.segments import SEGMENT_FIELDS, build_segment_profile
from plugin.domain.tiers import TierThresholds

NOW = datetime(2026, 11, 24, 12, 0)


def profiler(*, order_facts: bool = False) -> _Profiler:
    prospects = Persona(
        name="Not buying yet",
        conditions=parse_conditions(
            {"all": [{"field": "order_count", "operator": "is", "value": 0}]}, SEGMENT_FIELDS
        ),
        priority=1,
    )
    return _Profiler(
        installation_id=1,
        thresholds=TierThresholds(),
        cut_points=FIXED_BANDS,
        personas=(prospects,),
        now=NOW,
        stamper=Stamper(rules="rules", now=NOW) if order_facts else None,
    )


def test_customers_without_orders_get_the_profile_each_would_get_alone() -> None:
    recent = NOW - timedelta(days=3)
    customers: list[RawHistory] = [
        (1, date(2026, 11, 20), [], None),  # known for days: no "new customer" without orders
        (2, None, [], None),
        (3, date(2020, 1, 1), [(recent, 4_200, True, "Tea")], None),
        (4, date(2019, 5, 5), [], None),
        (5, None, [(NOW + timedelta(days=2), 1_000, False, None)], None),  # only a future order
    ]
    for order_facts in (False, True):
        bulk = profiler(order_facts=order_facts)
        segments, _facts, derived, count = bulk.rows(customers)
        assert (derived, count) == ([1, 2, 3, 4, 5], 5)
        alone = []
        for customer_id, since, orders, _stamp in customers:
            placed = [order for order in orders if order[0] <= NOW]
            stamp = bulk.stamper.stamp(since, orders) if bulk.stamper else None
            profile = build_segment_profile(
                history_of(since, placed),
                thresholds=bulk.thresholds,
                cut_points=bulk.cut_points,
                personas=bulk.personas,
                now=NOW,
            )
            alone.append(_row(1, customer_id, profile, NOW, stamp))
        assert segments == alone
        assert [row["personas"] for row in segments] == [["Not buying yet"]] * 2 + [[]] + [
            ["Not buying yet"]
        ] * 2


def test_bulk_work_collects_garbage_rarely_and_gives_the_setting_back() -> None:
    before = gc.get_threshold()
    with few_collections():
        if threading.active_count() == 1:
            assert gc.get_threshold()[0] == BULK_GC_THRESHOLD
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0 or threading.active_count() > 1
