"""Compute and store customers' segments: the whole base at once, or a few customers at a time.

The rules are in `plugin/domain/`; this module reads order histories from the database, in
streams so memory stays bounded whatever the base's size, and writes the profiles back.

- `recompute_installation`: measure the base (RFM cut points, one streamed pass over per-
  customer aggregates), then profile every customer (a second streamed pass over orders).
- `refresh_customers`: profile some customers against the stored cut points; what a new order
  pushed or imported triggers, so one customer's change is not a full recompute.
- `profile_for_customer`: the profile the banner shows, computed fresh for one customer.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.order_history import CustomerHistory, OrderRecord
from plugin.domain.personas import InvalidConditions, Persona, parse_conditions
from plugin.domain.rfm import FIXED_BANDS, RfmCutPoints, RfmValues
from plugin.domain.segments import SEGMENT_FIELDS, SegmentProfile, build_segment_profile
from plugin.domain.tiers import TierThresholds
from plugin.models import (
    Customer,
    CustomerSegment,
    Installation,
    Order,
    SegmentBaseline,
)
from plugin.models import Persona as PersonaRow

STREAM_ROWS = 10_000
WRITE_BATCH = 2_000


@dataclass(frozen=True)
class RecomputeReport:
    customers: int
    buyers: int
    cut_points: RfmCutPoints
    seconds: float


def thresholds_of(installation: Installation) -> TierThresholds:
    return TierThresholds(
        medium_min_orders=installation.tier_medium_min_orders,
        medium_min_spend_cents=installation.tier_medium_min_spend_cents,
        high_min_orders=installation.tier_high_min_orders,
        high_min_spend_cents=installation.tier_high_min_spend_cents,
    )


def active_personas(session: Session, installation_id: int) -> list[Persona]:
    """The installation's enabled personas, parsed; one that no longer parses is skipped."""
    personas = []
    for row in session.scalars(
        sa.select(PersonaRow)
        .where(PersonaRow.installation_id == installation_id, PersonaRow.enabled.is_(True))
        .order_by(PersonaRow.priority, PersonaRow.name)
    ):
        try:
            conditions = parse_conditions(row.conditions, SEGMENT_FIELDS)
        except InvalidConditions:
            continue  # saved before a field was retired; the console shows it as broken
        personas.append(Persona(name=row.name, conditions=conditions, priority=row.priority))
    return personas


def cut_points_of(session: Session, installation_id: int) -> RfmCutPoints:
    """The installation's stored RFM cut points; the fixed bands until a recompute has run."""
    baseline = session.get(SegmentBaseline, installation_id)
    if baseline is None:
        return FIXED_BANDS
    raw = baseline.rfm_cut_points
    return RfmCutPoints(
        recency_days=_four(raw["recency_days"]),
        frequency=_four(raw["frequency"]),
        monetary_cents=_four(raw["monetary_cents"]),
        base_size=int(raw["base_size"]),
    )


def _four(values: Sequence[int]) -> tuple[int, int, int, int]:
    first, second, third, fourth = (int(value) for value in values)
    return first, second, third, fourth


def profile_for_customer(
    session: Session, installation: Installation, customer: Customer, *, now: datetime
) -> SegmentProfile:
    """The customer's profile as of now, against the base's stored cut points."""
    histories = dict(_histories(session, installation.id, now=now, customer_ids=[customer.id]))
    return build_segment_profile(
        histories.get(customer.id, CustomerHistory(customer_since=customer.customer_since)),
        thresholds=thresholds_of(installation),
        cut_points=cut_points_of(session, installation.id),
        personas=active_personas(session, installation.id),
        now=now,
    )


def recompute_installation(
    session: Session, installation: Installation, *, now: datetime
) -> RecomputeReport:
    """Measure the base and profile every customer; one transaction, committed at the end."""
    started = time.perf_counter()
    cut_points = RfmCutPoints.from_base(_rfm_base(session, installation.id, now=now))
    stored = session.get(SegmentBaseline, installation.id)
    if stored is None:
        stored = SegmentBaseline(installation_id=installation.id, customers=0)
        session.add(stored)
    stored.rfm_cut_points = {
        "recency_days": list(cut_points.recency_days),
        "frequency": list(cut_points.frequency),
        "monetary_cents": list(cut_points.monetary_cents),
        "base_size": cut_points.base_size,
    }
    stored.computed_at = now
    session.execute(
        sa.delete(CustomerSegment).where(CustomerSegment.installation_id == installation.id)
    )
    customers = _write_profiles(
        session,
        installation,
        _histories(session, installation.id, now=now),
        cut_points=cut_points,
        now=now,
    )
    stored.customers = customers
    session.commit()
    return RecomputeReport(
        customers=customers,
        buyers=cut_points.base_size,
        cut_points=cut_points,
        seconds=time.perf_counter() - started,
    )


def refresh_customers(
    session: Session, installation_id: int, customer_ids: Collection[int], *, now: datetime
) -> int:
    """Profile some customers again against the stored cut points; the caller commits."""
    if not customer_ids:
        return 0
    installation = session.get(Installation, installation_id)
    assert installation is not None
    ids = sorted(customer_ids)
    total = 0
    for start in range(0, len(ids), WRITE_BATCH):
        chunk = ids[start : start + WRITE_BATCH]
        session.execute(sa.delete(CustomerSegment).where(CustomerSegment.customer_id.in_(chunk)))
        total += _write_profiles(
            session,
            installation,
            _histories(session, installation.id, now=now, customer_ids=chunk),
            cut_points=cut_points_of(session, installation.id),
            now=now,
        )
    return total


def stored_segment(session: Session, customer_id: int) -> CustomerSegment | None:
    return session.get(CustomerSegment, customer_id)


def _write_profiles(
    session: Session,
    installation: Installation,
    histories: Iterable[tuple[int, CustomerHistory]],
    *,
    cut_points: RfmCutPoints,
    now: datetime,
) -> int:
    thresholds = thresholds_of(installation)
    personas = active_personas(session, installation.id)
    rows: list[dict[str, Any]] = []
    written = 0
    for customer_id, history in histories:
        profile = build_segment_profile(
            history, thresholds=thresholds, cut_points=cut_points, personas=personas, now=now
        )
        rows.append(_row(installation.id, customer_id, profile, now))
        if len(rows) >= WRITE_BATCH:
            session.execute(sa.insert(CustomerSegment), rows)
            written += len(rows)
            rows = []
    if rows:
        session.execute(sa.insert(CustomerSegment), rows)
        written += len(rows)
    return written


def _row(
    installation_id: int, customer_id: int, profile: SegmentProfile, now: datetime
) -> dict[str, Any]:
    rfm, lifecycle = profile.rfm, profile.lifecycle
    return {
        "customer_id": customer_id,
        "installation_id": installation_id,
        "tier": profile.tier.value,
        "rfm_recency": rfm.recency if rfm else None,
        "rfm_frequency": rfm.frequency if rfm else None,
        "rfm_monetary": rfm.monetary if rfm else None,
        "rfm_segment": rfm.segment.value if rfm else None,
        "lifecycle_stage": lifecycle.stage.value if lifecycle else None,
        "lifecycle_since": lifecycle.since if lifecycle else None,
        "behaviours": [
            {"behaviour": tag.behaviour.value, "reason": tag.reason} for tag in profile.behaviours
        ],
        "personas": [match.name for match in profile.personas],
        "computed_at": now,
    }


def _rfm_base(session: Session, installation_id: int, *, now: datetime) -> Iterator[RfmValues]:
    """Every buyer's RFM measures, from per-customer aggregates streamed out of the database."""
    today = now.date()
    rows = session.execute(
        sa.select(sa.func.max(Order.placed_at), sa.func.count(), sa.func.sum(Order.amount_cents))
        .where(Order.installation_id == installation_id, Order.placed_at <= now)
        .group_by(Order.customer_id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    for last_at, count, spend in rows:
        yield RfmValues(
            recency_days=max(0, (today - last_at.date()).days),
            frequency=int(count),
            monetary_cents=int(spend or 0),
        )


def _histories(
    session: Session,
    installation_id: int,
    *,
    now: datetime,
    customer_ids: Sequence[int] | None = None,
) -> Iterator[tuple[int, CustomerHistory]]:
    """Each customer's order history, customer by customer, streamed in customer id order.

    Customers without orders come out too, with an empty history. Only one customer's orders
    are held at a time.
    """
    query = (
        sa.select(
            Customer.id,
            Customer.customer_since,
            Order.placed_at,
            Order.amount_cents,
            Order.discount_code,
            Order.category,
        )
        .outerjoin(Order, sa.and_(Order.customer_id == Customer.id, Order.placed_at <= now))
        .where(Customer.installation_id == installation_id)
        .order_by(Customer.id, Order.placed_at)
        .execution_options(yield_per=STREAM_ROWS)
    )
    if customer_ids is not None:
        query = query.where(Customer.id.in_(customer_ids))
    current: int | None = None
    since = None
    orders: list[OrderRecord] = []
    for customer_id, customer_since, placed_at, amount, discount_code, category in session.execute(
        query
    ):
        if customer_id != current:
            if current is not None:
                yield current, CustomerHistory(tuple(orders), since)
            current, since, orders = customer_id, customer_since, []
        if placed_at is not None:
            orders.append(
                OrderRecord(
                    placed_at=placed_at,
                    amount_cents=int(amount),
                    discounted=discount_code is not None,
                    category=category,
                )
            )
    if current is not None:
        yield current, CustomerHistory(tuple(orders), since)
