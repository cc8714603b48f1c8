"""Replaying a draft rule over every ticket the sidebar saw in the last 30 days: who would have
got what, how often, and the estimated cost against each segment budget.

No Flask here. A replay is bounded in time and memory whatever the installation's size: the
draft is compiled once, tickets are streamed in chunks from the database in the order they
were seen, each chunk's customers are looked up in two queries, and only totals (plus the
first few customers, for the page) are kept. It stops at a deadline and says how far it got.

What a replay assumes, and the page says so:
- Each customer's profile (tier, RFM segment, lifecycle, behaviours, personas, purchases) is
  the one as of now, not as it was when the ticket came in.
- The agent applied the draft's first suggestion at its estimate, whenever there was one; so
  the draft's own earlier grants count against its cap and the budgets, on top of what was
  really granted before each ticket.
- A condition on a field a seen ticket does not carry (ticket type, priority and tags on rows
  stored before they were kept; helpdesk facts and top categories, which are not stored)
  counts as not matching; the replay counts those tickets.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from plugin.domain.exceptions import Budget, BudgetStatus, ExceptionType, Grant, SegmentRef
from plugin.domain.helpdesk import Ticket
from plugin.domain.rule_evaluation import CompiledRules, RuleContext
from plugin.domain.rules import FACT_PREFIX, HISTORY_FIELDS, MAX_CAP_DAYS, PERSONAS_FIELD
from plugin.domain.rules import Rule as DomainRule
from plugin.domain.segments import SEGMENT_FIELDS
from plugin.goodwill import catalog as exception_catalog
from plugin.goodwill.action_log import GRANT_KINDS
from plugin.goodwill.draft_trial import compile_draft
from plugin.models import Action, Customer, CustomerSegment, Installation, Order, SeenTicket

REPLAY_DAYS = 30
CHUNK_SIZE = 1000
DEFAULT_DEADLINE_SECONDS = 20.0
# How many customers the page lists by name; the totals count them all.
SHOWN_CUSTOMERS = 25
# The ticket fields rows seen before migration 0011 lack; facts the replay has no value for.
STORED_LATER = ("ticket_type", "ticket_priority", "ticket_tags")
NOT_STORED = ("top_categories",)
TRAILING_YEAR = timedelta(days=365)


@dataclass(frozen=True)
class ReplayTicket:
    """A seen ticket with its customer's facts as of now, ready to evaluate."""

    ticket: Ticket
    seen_at: datetime
    who: str  # the customer (c123) or, for someone who is not one, the requester (r456)
    name: str
    customer: Mapping[str, object]
    personas: tuple[str, ...]
    order_value_cents: int | None
    lacks: frozenset[str]


@dataclass(frozen=True)
class Charge:
    """A real grant charged to a segment budget, in time order with the tickets."""

    at: datetime
    segment: SegmentRef
    cents: int


@dataclass
class ExceptionTotals:
    """How often an exception would have been offered first, and what that would have cost."""

    exception: ExceptionType
    times: int = 0
    cents: int = 0
    needing_approval: int = 0


@dataclass
class CustomerTotals:
    """What one customer would have been offered over the replay."""

    name: str
    tickets: int = 0
    cents: int = 0
    exceptions: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class BudgetUse:
    """A budget's month: what was really spent before the window, and the draft's share."""

    budget: Budget
    month: str  # "2026-11"
    spent_cents: int
    draft_cents: int
    withheld: int

    @property
    def total_cents(self) -> int:
        return self.spent_cents + self.draft_cents

    @property
    def over(self) -> bool:
        return self.total_cents > self.budget.monthly_cents


@dataclass(frozen=True)
class ReplayResult:
    """A replay's totals."""

    since: datetime
    until: datetime
    tickets: int  # replayed
    matched: int  # where the draft's conditions held
    offered: int  # where it suggested something after its limits
    actions: int  # where it suggested a ticket action
    lacking: int  # where a field its conditions test was unknown (counted as not matching)
    lacking_fields: tuple[tuple[str, int], ...]
    withheld: tuple[tuple[str, int], ...]  # by reason
    exceptions: tuple[ExceptionTotals, ...]
    customers: tuple[tuple[str, CustomerTotals], ...]  # the first SHOWN_CUSTOMERS by cost
    customer_count: int
    total_cents: int
    budgets: tuple[BudgetUse, ...]
    complete: bool  # False when the deadline stopped it
    seconds: float


class _Budgets:
    """Each budget's spend per calendar month: real grants before each ticket, plus the draft's."""

    def __init__(self, budgets: Sequence[Budget], charges: Iterable[Charge]) -> None:
        self.budgets = {budget.segment: budget for budget in budgets}
        self.charges = iter(sorted(charges, key=lambda c: c.at))
        self.next: Charge | None = next(self.charges, None)
        self.real: dict[tuple[SegmentRef, str], int] = defaultdict(int)
        self.draft: dict[tuple[SegmentRef, str], int] = defaultdict(int)
        self.withheld: Counter[tuple[SegmentRef, str]] = Counter()
        self.months: set[str] = set()
        # The last statuses given, and for which month: kept until a grant changes them.
        self._shown: tuple[str, tuple[BudgetStatus, ...]] | None = None

    def statuses(self, at: datetime) -> tuple[BudgetStatus, ...]:
        """Every budget's status in `at`'s month, with the real grants made before `at`."""
        while self.next is not None and self.next.at < at:
            self.real[(self.next.segment, _month(self.next.at))] += self.next.cents
            self.next = next(self.charges, None)
            self._shown = None
        month = _month(at)
        if self._shown is None or self._shown[0] != month:
            self.months.add(month)
            statuses = tuple(
                BudgetStatus(budget, self.real[(seg, month)] + self.draft[(seg, month)])
                for seg, budget in self.budgets.items()
            )
            self._shown = (month, statuses)
        return self._shown[1]

    def charge(self, segment: SegmentRef, at: datetime, cents: int) -> None:
        self.draft[(segment, _month(at))] += cents
        self._shown = None

    def uses(self) -> tuple[BudgetUse, ...]:
        return tuple(
            BudgetUse(
                budget,
                month,
                self.real[(seg, month)],
                self.draft[(seg, month)],
                self.withheld[(seg, month)],
            )
            for seg, budget in self.budgets.items()
            for month in sorted(self.months)
        )


def _month(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"


def replay(
    compiled: CompiledRules,
    rule: DomainRule,
    tickets: Iterable[ReplayTicket],
    *,
    grants: Mapping[str, Sequence[Grant]],
    budgets: Sequence[Budget],
    charges: Iterable[Charge],
    since: datetime,
    until: datetime,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ReplayResult:
    """Evaluate the compiled draft on each ticket in the order they were seen; keep totals.

    `grants` are the real grants of each customer (by `ReplayTicket.who`), `charges` the real
    grants charged to budgets; the draft's own first suggestion is taken as granted, so it
    counts against its cap and the budgets of later tickets. `deadline` is a `clock()` time
    after which the replay stops (and says it is incomplete).
    """
    started = clock()
    tested = {c.field for c in (*rule.conditions.all, *rule.conditions.any)}
    # The helpdesk's own facts come with a ticket view, and are not stored: always unknown.
    facts_tested = frozenset(name for name in tested if name.startswith(FACT_PREFIX))
    # Most tickets do not match: screen them on the conditions before building the whole
    # context, unless the conditions test the customer's past grants (which need it).
    screen = not (tested & HISTORY_FIELDS.keys())
    state = _Budgets(budgets, charges)
    simulated: dict[str, list[Grant]] = defaultdict(list)
    by_exception: dict[str, ExceptionTotals] = {}
    people: dict[str, CustomerTotals] = {}
    withheld: Counter[str] = Counter()
    lacking_fields: Counter[str] = Counter()
    count = matched = offered = with_actions = lacking = total = 0
    complete = True
    for item in tickets:
        if deadline is not None and count % 200 == 0 and clock() > deadline:
            complete = False
            break
        count += 1
        unknown = (tested & item.lacks) | facts_tested
        if unknown:
            lacking += 1
            lacking_fields.update(unknown)
            continue
        if screen and not rule.conditions.matches(_screening_facts(item)):
            continue
        context = RuleContext(
            ticket=item.ticket,
            now=item.seen_at,
            customer=item.customer,
            personas=item.personas,
            grants=(*grants.get(item.who, ()), *simulated.get(item.who, ())),
            budgets=state.statuses(item.seen_at),
            order_value_cents=item.order_value_cents,
        )
        evaluation = compiled.evaluate(context)
        if evaluation.suggestions or evaluation.withheld or evaluation.actions:
            matched += 1
        if evaluation.actions:
            with_actions += 1
        for held in evaluation.withheld:
            withheld[held.reason.value] += 1
            if held.reason.value == "budget" and rule.budget is not None:
                state.withheld[(rule.budget, _month(item.seen_at))] += 1
        if not evaluation.suggestions:
            continue
        offered += 1
        first = evaluation.suggestions[0]
        totals = by_exception.setdefault(first.exception.key, ExceptionTotals(first.exception))
        totals.times += 1
        totals.cents += first.cost_cents
        totals.needing_approval += first.needs_approval
        total += first.cost_cents
        person = people.setdefault(item.who, CustomerTotals(item.name))
        person.tickets += 1
        person.cents += first.cost_cents
        person.exceptions[first.exception.name] += 1
        simulated[item.who].append(Grant(first.exception.key, first.cost_cents, item.seen_at))
        if rule.budget is not None:
            state.charge(rule.budget, item.seen_at, first.cost_cents)
    ranked = sorted(people.items(), key=lambda kv: (-kv[1].cents, kv[1].name, kv[0]))
    return ReplayResult(
        since=since,
        until=until,
        tickets=count,
        matched=matched,
        offered=offered,
        actions=with_actions,
        lacking=lacking,
        lacking_fields=tuple(sorted(lacking_fields.items())),
        withheld=tuple(sorted(withheld.items())),
        exceptions=tuple(sorted(by_exception.values(), key=lambda t: (-t.times, t.exception.key))),
        customers=tuple(ranked[:SHOWN_CUSTOMERS]),
        customer_count=len(people),
        total_cents=total,
        budgets=state.uses(),
        complete=complete,
        seconds=clock() - started,
    )


def _screening_facts(item: ReplayTicket) -> dict[str, object]:
    """The facts a ticket's conditions read, but the past grants: as `RuleContext.rule_facts`."""
    ticket = item.ticket
    return {
        **item.customer,
        PERSONAS_FIELD: item.personas,
        "ticket_type": ticket.ticket_type,
        "ticket_priority": ticket.priority,
        "ticket_channel": ticket.channel,
        "ticket_tags": ticket.tags,
        "ticket_subject": ticket.subject,
        "order_value_cents": item.order_value_cents,
    }


def replay_draft(
    session: Session,
    installation: Installation,
    draft: DomainRule,
    *,
    now: datetime,
    days: int = REPLAY_DAYS,
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
) -> ReplayResult:
    """Replay the draft over the tickets the sidebar saw in the last `days` days."""
    since = now - timedelta(days=days)
    compiled = compile_draft(session, installation, draft)
    # Goodwill and caps look back at most a year (or the cap's days) before the window.
    lookback = max(365, draft.cap.days if draft.cap else 0)
    grants, charges = _real_grants(
        session,
        installation.id,
        since=since - timedelta(days=min(lookback, MAX_CAP_DAYS)),
        until=now,
    )
    return replay(
        compiled,
        draft,
        stream_tickets(session, installation.id, since=since, until=now, now=now),
        grants=grants,
        budgets=exception_catalog.budgets(session, installation.id),
        charges=(c for c in charges if c.at >= exception_catalog.month_start(since)),
        since=since,
        until=now,
        deadline=time.monotonic() + deadline_seconds,
    )


def _real_grants(
    session: Session, installation_id: int, *, since: datetime, until: datetime
) -> tuple[dict[str, list[Grant]], list[Charge]]:
    """The installation's grants in the window: per customer (or requester), and per budget."""
    grants: dict[str, list[Grant]] = defaultdict(list)
    charges: list[Charge] = []
    rows = session.execute(
        sa.select(
            Action.customer_id,
            Action.requester_id,
            Action.exception_key,
            Action.amount_cents,
            Action.created_at,
            Action.budget_field,
            Action.budget_value,
        ).where(
            Action.installation_id == installation_id,
            Action.kind.in_(GRANT_KINDS),
            Action.undone_at.is_(None),
            Action.created_at > since,
            Action.created_at <= until,
        )
    )
    for customer_id, requester_id, key, amount, at, budget_field, budget_value in rows:
        grant = Grant(key, int(amount or 0), at)
        grants[_who(customer_id, requester_id)].append(grant)
        if budget_field and budget_value:
            charges.append(Charge(at, SegmentRef(budget_field, budget_value), grant.amount_cents))
    return grants, charges


def _who(customer_id: int | None, requester_id: str) -> str:
    return f"c{customer_id}" if customer_id is not None else f"r{requester_id}"


def stream_tickets(
    session: Session,
    installation_id: int,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[ReplayTicket]:
    """The seen tickets of the window, oldest first, with their customers' facts as of now.

    Read in chunks by keyset (last_seen_at, id), so memory holds one chunk whatever the window.
    """
    after: tuple[datetime, int] | None = None
    while True:
        # Plain rows, not ORM objects: a replay reads many and keeps none.
        query = (
            sa.select(*_SEEN_COLUMNS)
            .where(
                SeenTicket.installation_id == installation_id,
                SeenTicket.last_seen_at >= since,
                SeenTicket.last_seen_at <= until,
            )
            .order_by(SeenTicket.last_seen_at, SeenTicket.id)
            .limit(chunk_size)
        )
        if after is not None:
            query = query.where(sa.tuple_(SeenTicket.last_seen_at, SeenTicket.id) > after)
        rows = session.execute(query).all()
        if not rows:
            return
        after = (rows[-1].last_seen_at, rows[-1].id)
        profiles = _profiles(
            session, installation_id, {r.customer_id for r in rows if r.customer_id}, now=now
        )
        for row in rows:
            profile = profiles.get(row.customer_id) if row.customer_id else None
            lacks = set(NOT_STORED)
            if row.tags is None:  # stored before the ticket's fields were kept
                lacks.update(STORED_LATER)
            yield ReplayTicket(
                ticket=Ticket(
                    id=row.ticket_id,
                    subject=row.subject,
                    status="open",
                    channel=row.channel or "",
                    priority=row.priority,
                    ticket_type=row.ticket_type,
                    tags=tuple(row.tags or ()),
                    requester_id=row.requester_id,
                    created_at=row.first_seen_at,
                    updated_at=row.last_seen_at,
                ),
                seen_at=row.last_seen_at,
                who=_who(row.customer_id, row.requester_id),
                name=profile.name if profile else f"Requester {row.requester_id}",
                customer=profile.facts if profile else {},
                personas=profile.personas if profile else (),
                order_value_cents=profile.order_value_cents if profile else None,
                lacks=frozenset(lacks),
            )
        if len(rows) < chunk_size:
            return


_SEEN_COLUMNS = (
    SeenTicket.id,
    SeenTicket.ticket_id,
    SeenTicket.requester_id,
    SeenTicket.customer_id,
    SeenTicket.subject,
    SeenTicket.channel,
    SeenTicket.ticket_type,
    SeenTicket.priority,
    SeenTicket.tags,
    SeenTicket.first_seen_at,
    SeenTicket.last_seen_at,
)


@dataclass(frozen=True)
class _Profile:
    name: str
    facts: dict[str, object]
    personas: tuple[str, ...]
    order_value_cents: int | None


def _profiles(
    session: Session, installation_id: int, customer_ids: set[int], *, now: datetime
) -> dict[int, _Profile]:
    """The stored segments and the purchase figures of some customers, in two queries."""
    if not customer_ids:
        return {}
    ids = sorted(customer_ids)
    year_ago = now - TRAILING_YEAR
    later = aliased(Order)
    latest = (
        sa.select(later.amount_cents)
        .where(later.customer_id == Customer.id, later.placed_at <= now)
        .order_by(later.placed_at.desc())
        .limit(1)
        .correlate(Customer)
        .scalar_subquery()
    )
    purchases = {
        row.id: row
        for row in session.execute(
            sa.select(
                Customer.id,
                Customer.name,
                sa.func.count(Order.id).label("order_count"),
                sa.func.coalesce(sa.func.sum(Order.amount_cents), 0).label("total"),
                sa.func.count(Order.id).filter(Order.placed_at > year_ago).label("orders_12m"),
                sa.func.coalesce(
                    sa.func.sum(Order.amount_cents).filter(Order.placed_at > year_ago), 0
                ).label("spend_12m"),
                sa.func.max(Order.placed_at).label("last_order"),
                sa.func.count(Order.discount_code).label("discounted"),
                latest.label("latest_cents"),
            )
            .select_from(Customer)
            .outerjoin(Order, sa.and_(Order.customer_id == Customer.id, Order.placed_at <= now))
            .where(Customer.installation_id == installation_id, Customer.id.in_(ids))
            .group_by(Customer.id, Customer.name)
        )
    }
    segments = {
        row.customer_id: row
        for row in session.scalars(
            sa.select(CustomerSegment).where(
                CustomerSegment.installation_id == installation_id,
                CustomerSegment.customer_id.in_(ids),
            )
        )
    }
    profiles = {}
    for customer_id, bought in purchases.items():
        segment = segments.get(customer_id)
        count = int(bought.order_count)
        last = bought.last_order
        facts: dict[str, object] = {name: None for name in SEGMENT_FIELDS}
        facts.update(
            order_count=count,
            total_spend_cents=int(bought.total),
            orders_12m=int(bought.orders_12m),
            spend_12m_cents=int(bought.spend_12m),
            days_since_last_order=(now.date() - last.date()).days if last else None,
            discount_share=int(bought.discounted) / count if count else None,
            behaviour_tags=(),
            top_categories=(),
        )
        personas: tuple[str, ...] = ()
        if segment is not None:
            facts.update(
                tier=segment.tier,
                rfm_segment=segment.rfm_segment,
                recency_score=segment.rfm_recency,
                frequency_score=segment.rfm_frequency,
                monetary_score=segment.rfm_monetary,
                lifecycle_stage=segment.lifecycle_stage,
                behaviour_tags=tuple(b.get("behaviour", "") for b in segment.behaviours or ()),
            )
            personas = tuple(segment.personas or ())
        profiles[customer_id] = _Profile(
            name=bought.name,
            facts=facts,
            personas=personas,
            order_value_cents=int(bought.latest_cents) if bought.latest_cents is not None else None,
        )
    return profiles
