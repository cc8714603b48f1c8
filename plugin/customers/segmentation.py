"""Compute and store customers' segments: the whole base at once, or a few customers at a time.

The rules are in `plugin/domain/`; this module reads order histories from the database, in
streams so memory stays bounded whatever the base's size, and writes the profiles back.

- `recompute_installation`: measure the base (RFM cut points, one streamed pass over per-
  customer aggregates), then profile every customer (a second streamed pass over orders).
- `refresh_customers`: profile some customers against the stored cut points; what a new order
  pushed or imported triggers, so one customer's change is not a full recompute.
- `profile_for_customer`: the profile the banner shows, computed fresh for one customer.

Profiling is pure Python and the bulk of the work: for a large base (`PARALLEL_MIN_CUSTOMERS`)
it runs in worker processes, one per CPU, while this process streams histories out of the
database and writes the rows back, a bounded number of chunks in flight.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers.bulk_work import chunked, few_collections, in_order, worker_pool
from plugin.customers.bulk_writes import (
    insert_rows,
    insert_sqlite_values,
    one_of,
    sqlite_insert_statement,
    sqlite_values,
)
from plugin.customers.derived_stamp import Stamper, rules_fingerprint
from plugin.customers.histories import (
    FileHistories,
    RawHistory,
    customer_histories,
    file_histories,
    history_of,
    raw_histories,
)
from plugin.customers.orders import SOURCE as FACT_SOURCE
from plugin.customers.orders import (
    delete_order_facts,
    fact_rows,
    insert_order_facts,
    rewrite_escaped_order_facts,
)
from plugin.customers.orders import order_facts as draw_order_facts
from plugin.domain.order_history import CustomerHistory
from plugin.domain.personas import InvalidConditions, Persona, parse_conditions
from plugin.domain.rfm import FIXED_BANDS, RfmCutPoints, RfmValues
from plugin.domain.segments import SEGMENT_FIELDS, SegmentProfile, build_segment_profile
from plugin.domain.tiers import TierThresholds
from plugin.models import (
    Customer,
    CustomerFact,
    CustomerSegment,
    Installation,
    Order,
    SegmentBaseline,
)
from plugin.models import Persona as PersonaRow

STREAM_ROWS = 10_000
WRITE_BATCH = 2_000
# From this many customers on, profiles are computed in worker processes (on a machine with
# more than one CPU), PROFILE_CHUNK customers per task.
PARALLEL_MIN_CUSTOMERS = 20_000
PROFILE_CHUNK = 500
# Profile ranges whose customers' order facts are written by one statement, while the workers
# profile the next ones (short enough that the few ranges queued keep them busy meanwhile).
FACT_RANGES = 4

_SEGMENTS = cast(sa.Table, CustomerSegment.__table__)
_FACTS = cast(sa.Table, CustomerFact.__table__)
# Bulk reads select table columns, not ORM attributes: plain rows, without the ORM's loading.
_CUSTOMERS = cast(sa.Table, Customer.__table__)
_ORDERS = cast(sa.Table, Order.__table__)
T = TypeVar("T")
R = TypeVar("R")
Row = dict[str, Any]


@dataclass(frozen=True)
class RecomputeReport:
    customers: int
    buyers: int
    cut_points: RfmCutPoints
    seconds: float
    # How many customers' rows were derived again; the others' stamps still held.
    rebuilt: int = 0


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
    session: Session,
    installation: Installation,
    customer: Customer,
    *,
    now: datetime,
    cut_points: RfmCutPoints | None = None,
    personas: Sequence[Persona] | None = None,
) -> SegmentProfile:
    """The customer's profile as of now, against the base's stored cut points and the enabled
    personas (read here unless the caller has them: they are the same for every customer)."""
    histories = dict(
        customer_histories(session, installation.id, now=now, customer_ids=[customer.id])
    )
    return profile_of_history(
        session,
        installation,
        histories.get(customer.id, CustomerHistory(customer_since=customer.customer_since)),
        now=now,
        cut_points=cut_points,
        personas=personas,
    )


def profile_of_history(
    session: Session,
    installation: Installation,
    history: CustomerHistory,
    *,
    now: datetime,
    cut_points: RfmCutPoints | None = None,
    personas: Sequence[Persona] | None = None,
) -> SegmentProfile:
    """`profile_for_customer` of a history already read (the settings read unless given)."""
    return build_segment_profile(
        history,
        thresholds=thresholds_of(installation),
        cut_points=cut_points
        if cut_points is not None
        else cut_points_of(session, installation.id),
        personas=personas if personas is not None else active_personas(session, installation.id),
        now=now,
    )


def recompute_installation(
    session: Session,
    installation: Installation,
    *,
    now: datetime,
    on_progress: Callable[[int, int], None] | None = None,
    rebuild_all: bool = False,
) -> RecomputeReport:
    """Measure the base, profile every customer and rebuild their order facts; one transaction.

    A customer whose derived rows are stamped as what this recompute would write
    (`derived_stamp.Stamper.still_holds`: the same rules, cut points and orders, the same day)
    keeps them, unless `rebuild_all`. `on_progress(done, total)` is called as customers are
    profiled.
    """
    with few_collections():
        return _recompute(
            session, installation, now=now, on_progress=on_progress, rebuild_all=rebuild_all
        )


def _recompute(
    session: Session,
    installation: Installation,
    *,
    now: datetime,
    on_progress: Callable[[int, int], None] | None,
    rebuild_all: bool,
) -> RecomputeReport:
    started = time.perf_counter()
    # Without a stamped row to keep, everything is deleted at once rather than by batch.
    skip_stamped = not rebuild_all and _any_stamped(session, installation.id)
    # Asked before anything is written: whether worker processes can read the histories.
    source = file_histories(session, installation.id, stamps=skip_stamped)
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
    if not skip_stamped:
        session.execute(
            sa.delete(CustomerSegment).where(CustomerSegment.installation_id == installation.id)
        )
        # Order facts are derived too, and rebuilt from the orders with the profiles: whatever
        # an import killed halfway (or during its last refresh) left behind, a recompute repairs.
        session.execute(
            sa.delete(CustomerFact).where(
                CustomerFact.installation_id == installation.id,
                CustomerFact.source == FACT_SOURCE,
            )
        )
    size = session.scalar(
        sa.select(sa.func.count())
        .select_from(Customer)
        .where(Customer.installation_id == installation.id)
    )
    profiler = replace(
        _profiler(session, installation, cut_points, now, order_facts=True),
        skip_stamped=skip_stamped,
        draws_facts=skip_stamped,
    )
    progress = None if on_progress is None else lambda done: on_progress(done, size or 0)
    with profiling_pool(size or 0) as pool:
        if pool is not None and source is not None:
            # The workers read the histories themselves, range by range, while this process
            # writes everyone's order facts (range by range too) and the rows they send back.
            ranges = _id_ranges(session, installation.id, PROFILE_CHUNK)
            profiler = replace(
                profiler,
                sqlite_insert=sqlite_insert_statement(
                    session.get_bind().dialect, _SEGMENTS, SEGMENT_ROW_KEYS
                ),
            )
            facts = _FactRanges(session, installation.id, now, ranges if not skip_stamped else [])
            customers, rebuilt = _write_profiles(
                session,
                profiler,
                pool=pool,
                on_progress=progress,
                results=in_order(pool, functools.partial(_profile_range, profiler, source), ranges),
                after_each=facts.next,
            )
            facts.rest()
        else:
            if not skip_stamped:
                # Everyone's order facts at once, drawn by the database: the profiles need not
                # draw them.
                insert_order_facts(session, installation_id=installation.id, now=now)
            customers, rebuilt = _write_profiles(
                session,
                profiler,
                raw_histories(
                    session, installation.id, now=now, all_orders=True, stamps=skip_stamped
                ),
                pool=pool,
                on_progress=progress,
            )
    stored.customers = customers
    session.commit()
    return RecomputeReport(
        customers=customers,
        buyers=cut_points.base_size,
        cut_points=cut_points,
        seconds=time.perf_counter() - started,
        rebuilt=rebuilt,
    )


def refresh_customers(
    session: Session,
    installation_id: int,
    customer_ids: Collection[int],
    *,
    now: datetime,
    pool: Executor | None = None,
    order_facts: bool = False,
) -> int:
    """Profile some customers again against the stored cut points; the caller commits.

    `pool` (from `profiling_pool`) profiles them in worker processes. With `order_facts`,
    their order facts are replaced too, drawn from the same read of their orders (what
    `refresh_order_facts` would store), as a bulk import wants.
    """
    if not customer_ids:
        return 0
    installation = session.get(Installation, installation_id)
    assert installation is not None
    ids = sorted(customer_ids)
    chunks = [ids[start : start + WRITE_BATCH] for start in range(0, len(ids), WRITE_BATCH)]
    for chunk in chunks:
        session.execute(
            sa.delete(CustomerSegment).where(one_of(session, CustomerSegment.customer_id, chunk))
        )
        if order_facts:
            delete_order_facts(session, installation_id, chunk)
    # One stream over the chunks, so worker processes are not left waiting between them.
    histories = itertools.chain.from_iterable(
        raw_histories(session, installation.id, now=now, customer_ids=chunk, all_orders=order_facts)
        for chunk in chunks
    )
    profiler = _profiler(
        session, installation, cut_points_of(session, installation.id), now, order_facts
    )
    return _write_profiles(session, profiler, histories, pool=pool)[0]


@contextmanager
def profiling_pool(customers: int) -> Iterator[Executor | None]:
    """Worker processes to profile this many customers with, or None when not worth it."""
    with worker_pool(customers >= PARALLEL_MIN_CUSTOMERS) as pool:
        yield pool


def stored_segment(session: Session, customer_id: int) -> CustomerSegment | None:
    return session.get(CustomerSegment, customer_id)


@dataclass(frozen=True)
class _Profiler:
    """What profiling a customer needs besides their history; picklable, for the workers."""

    installation_id: int
    thresholds: TierThresholds
    cut_points: RfmCutPoints
    personas: tuple[Persona, ...]
    now: datetime
    # Also draw the customers' order facts (their histories then hold every order), and
    # stamp the rows with what they were derived from.
    stamper: Stamper | None = None
    # Leave out customers whose stored stamp still holds (their rows are kept as they are).
    skip_stamped: bool = False
    # Draw the order facts of those profiled (with a stamper); False when they were written
    # for everyone already (`insert_order_facts`).
    draws_facts: bool = True
    # On SQLite, the segment rows' INSERT and its columns (`bulk_writes.sqlite_insert_statement`):
    # the rows are sent back as its values, converted here (in the workers), not as dicts.
    sqlite_insert: tuple[str, tuple[str, ...]] | None = None

    @property
    def order_facts(self) -> bool:
        return self.stamper is not None

    def rows(self, customers: list[RawHistory]) -> tuple[list[Any], list[Row], list[int], int]:
        """Some customers' customer_segments rows (as `sqlite_insert`'s values if set) and
        customer_facts rows, from histories, the ids of the customers they are for (all but
        those skipped), and how many there were."""
        segments: list[Row] = []
        facts: list[Row] = []
        derived: list[int] = []
        now = self.now
        # Everyone without orders has the same profile (a prospect's account date changes
        # nothing in it): made once, not once per prospect.
        no_orders: SegmentProfile | None = None
        for customer_id, since, orders, stored_stamp in customers:
            stamp = None
            if self.stamper is not None:
                stamp = self.stamper.stamp(since, orders)
                if self.skip_stamped and self.stamper.still_holds(stored_stamp, stamp, orders):
                    continue
                if orders and self.draws_facts:
                    drawn = draw_order_facts(
                        ((at, cents, category) for at, cents, _, category in orders), now=now
                    )
                    facts.extend(fact_rows(self.installation_id, customer_id, drawn, now=now))
                orders = [order for order in orders if order[0] <= now]
            if orders:
                profile = self._profile(since, orders)
            else:
                no_orders = no_orders or self._profile(since, orders)
                profile = no_orders
            segments.append(_row(self.installation_id, customer_id, profile, now, stamp))
            derived.append(customer_id)
        if self.sqlite_insert is not None:
            return (
                sqlite_values(_SEGMENTS, self.sqlite_insert[1], segments),
                facts,
                derived,
                len(customers),
            )
        return segments, facts, derived, len(customers)

    def _profile(
        self, since: date | None, orders: list[tuple[datetime, int, bool, str | None]]
    ) -> SegmentProfile:
        return build_segment_profile(
            history_of(since, orders),
            thresholds=self.thresholds,
            cut_points=self.cut_points,
            personas=self.personas,
            now=self.now,
        )


def _profiler(
    session: Session,
    installation: Installation,
    cut_points: RfmCutPoints,
    now: datetime,
    order_facts: bool = False,
) -> _Profiler:
    thresholds = thresholds_of(installation)
    stamper = None
    if order_facts:
        rules = rules_fingerprint(session, installation.id, thresholds, cut_points)
        stamper = Stamper(rules=rules, now=now)
    return _Profiler(
        installation_id=installation.id,
        thresholds=thresholds,
        cut_points=cut_points,
        personas=tuple(active_personas(session, installation.id)),
        now=now,
        stamper=stamper,
    )


def _any_stamped(session: Session, installation_id: int) -> bool:
    return (
        session.scalar(
            sa.select(_SEGMENTS.c.customer_id)
            .where(
                _SEGMENTS.c.installation_id == installation_id,
                _SEGMENTS.c.derived_stamp.is_not(None),
            )
            .limit(1)
        )
        is not None
    )


def _write_profiles(
    session: Session,
    profiler: _Profiler,
    histories: Iterable[RawHistory] = (),
    *,
    pool: Executor | None = None,
    on_progress: Callable[[int], None] | None = None,
    results: Iterator[tuple[list[Any], list[Row], list[int], int]] | None = None,
    after_each: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """Profile customers chunk by chunk, in `pool` if given, and insert their rows; return how
    many customers there were, and how many of them were profiled (with
    `profiler.skip_stamped`, the others' rows were kept as stamped).

    With `skip_stamped`, the old rows of those profiled again are deleted just before their
    new ones are inserted; otherwise the caller has deleted them.

    `results` are the chunks' rows when the caller has them profiled otherwise (instead of
    `histories`); `after_each` is called after each chunk's rows are taken.
    """
    if results is None:
        chunks = chunked(histories, PROFILE_CHUNK)
        if pool is None:
            results = map(profiler.rows, chunks)
        else:
            results = in_order(pool, profiler.rows, chunks)
    segments: list[Any] = []
    facts: list[Row] = []
    derived: list[int] = []
    done = reported = rebuilt = 0

    def write() -> None:
        if profiler.skip_stamped and derived:
            session.execute(
                sa.delete(_SEGMENTS).where(one_of(session, _SEGMENTS.c.customer_id, derived))
            )
            delete_order_facts(session, profiler.installation_id, derived)
        if profiler.sqlite_insert is not None:
            insert_sqlite_values(session.connection(), profiler.sqlite_insert[0], segments)
        else:
            insert_rows(session, _SEGMENTS, segments)
        insert_rows(session, _FACTS, facts)

    for chunk_segments, chunk_facts, chunk_derived, chunk_size in results:
        segments.extend(chunk_segments)
        facts.extend(chunk_facts)
        derived.extend(chunk_derived)
        rebuilt += len(chunk_derived)
        done += chunk_size
        if len(segments) >= WRITE_BATCH:
            write()
            segments, facts, derived = [], [], []
        if on_progress is not None and done - reported >= WRITE_BATCH:
            on_progress(done)
            reported = done
        if after_each is not None:
            after_each()
    write()
    return done, rebuilt


def _profile_range(
    profiler: _Profiler, source: FileHistories, bounds: tuple[int, int]
) -> tuple[list[Any], list[Row], list[int], int]:
    """In a worker: read a range of customers' histories from the database file, profile them."""
    return profiler.rows(source.between(*bounds))


def _id_ranges(session: Session, installation_id: int, size: int) -> list[tuple[int, int]]:
    """The installation's customer ids as (low, high) ranges of `size` customers each."""
    ranges: list[tuple[int, int]] = []
    ids = session.scalars(
        sa.select(_CUSTOMERS.c.id)
        .where(_CUSTOMERS.c.installation_id == installation_id)
        .order_by(_CUSTOMERS.c.id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    for chunk in chunked(ids, size):
        ranges.append((chunk[0], chunk[-1]))
    return ranges


@dataclass
class _FactRanges:
    """Everyone's order facts written a few profile ranges at a time, in ascending order, as
    the workers' rows come in (`next`, after each range's), so this process writes them while
    the workers profile; `rest` writes what is left and the names JSON escapes."""

    session: Session
    installation_id: int
    now: datetime
    ranges: list[tuple[int, int]]
    written: int = 0
    profiled: int = 0

    def next(self) -> None:
        """A range's rows are in: the facts of the next FACT_RANGES ranges, every FACT_RANGES."""
        self.profiled += 1
        if self.profiled % FACT_RANGES == 1 or FACT_RANGES == 1:
            self._write()

    def _write(self) -> None:
        if self.written < len(self.ranges):
            group = self.ranges[self.written : self.written + FACT_RANGES]
            insert_order_facts(
                self.session,
                installation_id=self.installation_id,
                now=self.now,
                between=(group[0][0], group[-1][1]),
                escaped=False,
            )
            self.written += len(group)

    def rest(self) -> None:
        if not self.ranges:
            return
        while self.written < len(self.ranges):
            self._write()
        rewrite_escaped_order_facts(self.session, installation_id=self.installation_id)


# The keys of `_row`'s rows.
SEGMENT_ROW_KEYS = (
    *("customer_id", "installation_id", "tier"),
    *("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment"),
    *("lifecycle_stage", "lifecycle_since", "behaviours", "personas", "computed_at"),
    "derived_stamp",
)


def _row(
    installation_id: int,
    customer_id: int,
    profile: SegmentProfile,
    now: datetime,
    stamp: str | None,
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
        "derived_stamp": stamp,
    }


def _rfm_base(session: Session, installation_id: int, *, now: datetime) -> Iterator[RfmValues]:
    """Every buyer's RFM measures, from per-customer aggregates streamed out of the database."""
    today = now.date()
    rows = session.execute(
        sa.select(
            sa.func.max(_ORDERS.c.placed_at), sa.func.count(), sa.func.sum(_ORDERS.c.amount_cents)
        )
        # Through the customers, as `insert_order_facts` reads: the history index answers.
        .select_from(_CUSTOMERS.join(_ORDERS, _ORDERS.c.customer_id == _CUSTOMERS.c.id))
        .where(_CUSTOMERS.c.installation_id == installation_id, _ORDERS.c.placed_at <= now)
        .group_by(_CUSTOMERS.c.id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    for last_at, count, spend in rows:
        yield RfmValues(
            recency_days=max(0, (today - last_at.date()).days),
            frequency=int(count),
            monetary_cents=int(spend or 0),
        )
