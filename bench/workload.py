"""A synthetic helpdesk account and a trace of sidebar views over it, both deterministic.

The account: `customers` end users whose propensity to write in follows a Zipf law (the
customer of rank r writes in with weight 1/r^s), so a few regulars write often and most
customers rarely; each has a past ticket history, longer for the regulars, and most have
orders in the shop. The trace: `agents` agents who each open a ticket about once every
`seconds_between_views` (exponential gaps, simulated time); a view is either a new ticket
(its requester drawn from the Zipf law) or a reopened one: one of the agent's own recent
tickets (the customer answered, the agent follows up) or, now and then, a colleague's
(handover, a second opinion). The same seed always gives the same account and trace.

`simulate_calls` replays a trace against a model of the service's cache (ticket and history
entries with their TTLs, one cache per server process) to tell what the trace should cost:
the benchmark prints it next to what the fake Zendesk counted.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from plugin.demo.sample_data import CATEGORIES, SampleCustomer, SampleOrder

# Synthetic ids, clear of the demo's (customers 90001+, agents 80001+, tickets 1001+).
FIRST_CUSTOMER_ID = 500_001
FIRST_PAST_TICKET_ID = 600_001
FIRST_TRACE_TICKET_ID = 900_001
FIRST_AGENT_ID = 81_001
# Every customer with a rank divisible by this is a prospect: in the helpdesk, not the shop.
PROSPECT_EVERY = 7


@dataclass(frozen=True)
class TraceConfig:
    """The knobs of the account and the trace; every time is simulated seconds."""

    agents: int = 20
    customers: int = 1000
    zipf_exponent: float = 1.1
    minutes: float = 40.0
    # Views before this are replayed but not counted: the caches start empty.
    warmup_minutes: float = 10.0
    seconds_between_views: float = 60.0
    # A ticket is opened about three times: picked up, followed up, closed.
    new_ticket_share: float = 0.33
    # Of the reopened tickets, the share that is a colleague's rather than the agent's own.
    colleague_share: float = 0.1
    # An agent reopens one of their last this many tickets, the latest the likeliest.
    recent_tickets: int = 5
    seed: int = 8


@dataclass(frozen=True)
class Ticket:
    """A helpdesk ticket of the synthetic account; `days_ago` dates it before the trace."""

    id: int
    requester_id: int
    days_ago: float


@dataclass(frozen=True)
class View:
    """One sidebar load: `agent` (an index) opens `ticket_id` at simulated second `at`."""

    at: float
    agent: int
    ticket_id: int
    requester_id: int
    new_ticket: bool
    counted: bool


@dataclass(frozen=True)
class Account:
    """The synthetic end users (by rank, 1 = the most frequent writer) and their tickets."""

    config: TraceConfig
    customer_ids: tuple[int, ...]
    tickets: tuple[Ticket, ...]

    def customer_id(self, rank: int) -> int:
        return self.customer_ids[rank - 1]


@dataclass(frozen=True)
class Trace:
    account: Account
    views: tuple[View, ...]

    @property
    def counted_views(self) -> tuple[View, ...]:
        return tuple(view for view in self.views if view.counted)


class _Zipf:
    """Draw ranks 1..n with probability proportional to 1/rank^s."""

    def __init__(self, n: int, exponent: float) -> None:
        weights = (float(rank) ** -exponent for rank in range(1, n + 1))
        self._cumulative = list(itertools.accumulate(weights))

    def draw(self, rng: random.Random) -> int:
        point = rng.random() * self._cumulative[-1]
        index = min(bisect.bisect_left(self._cumulative, point), len(self._cumulative) - 1)
        return index + 1


def past_ticket_count(rank: int) -> int:
    """A customer's tickets before the trace: about 20 for the top regular, 1 for the tail."""
    return 1 + round(20 / math.sqrt(rank))


def build_trace(config: TraceConfig) -> Trace:
    """Build the account and the trace of views the config describes."""
    rng = random.Random(config.seed)
    customer_ids = tuple(FIRST_CUSTOMER_ID + rank - 1 for rank in range(1, config.customers + 1))
    ticket_ids = itertools.count(FIRST_PAST_TICKET_ID)
    tickets = [
        Ticket(id=next(ticket_ids), requester_id=customer_id, days_ago=rng.uniform(1, 720))
        for rank, customer_id in enumerate(customer_ids, start=1)
        for _ in range(past_ticket_count(rank))
    ]
    duration = config.minutes * 60
    arrivals = sorted(
        (at, agent)
        for agent in range(config.agents)
        for at in _arrivals(rng, config.seconds_between_views, duration)
    )
    zipf = _Zipf(config.customers, config.zipf_exponent)
    new_ids = itertools.count(FIRST_TRACE_TICKET_ID)
    requester_of: dict[int, int] = {}
    own: list[deque[int]] = [deque(maxlen=config.recent_tickets) for _ in range(config.agents)]
    everyone: deque[tuple[int, int]] = deque(maxlen=config.agents * config.recent_tickets)
    views = []
    for at, agent in arrivals:
        others = [ticket for owner, ticket in everyone if owner != agent]
        if not own[agent] or rng.random() < config.new_ticket_share:
            ticket_id = next(new_ids)
            requester_of[ticket_id] = customer_ids[zipf.draw(rng) - 1]
            tickets.append(Ticket(ticket_id, requester_of[ticket_id], days_ago=0))
            own[agent].append(ticket_id)
            everyone.append((agent, ticket_id))
            new_ticket = True
        elif others and rng.random() < config.colleague_share:
            ticket_id, new_ticket = rng.choice(others), False
        else:
            # The latest ticket is the likeliest to come back: weights 1, 2, ..., k.
            recent = list(own[agent])
            ticket_id = rng.choices(recent, weights=range(1, len(recent) + 1))[0]
            new_ticket = False
        views.append(
            View(
                at=at,
                agent=agent,
                ticket_id=ticket_id,
                requester_id=requester_of[ticket_id],
                new_ticket=new_ticket,
                counted=at >= config.warmup_minutes * 60,
            )
        )
    account = Account(config=config, customer_ids=customer_ids, tickets=tuple(tickets))
    return Trace(account=account, views=tuple(views))


def _arrivals(rng: random.Random, mean_gap: float, duration: float) -> list[float]:
    times = []
    at = rng.expovariate(1 / mean_gap)
    while at < duration:
        times.append(at)
        at += rng.expovariate(1 / mean_gap)
    return times


@dataclass(frozen=True)
class CallEstimate:
    """What a trace costs under a model of the cache: calls by kind, per counted view."""

    views: int
    ticket_calls: int
    history_calls: int

    @property
    def calls_per_view(self) -> float:
        return (self.ticket_calls + self.history_calls) / self.views if self.views else 0.0


def simulate_calls(
    trace: Trace,
    *,
    ticket_ttl: float,
    history_ttl: float,
    processes: int = 1,
    seed: int = 0,
) -> CallEstimate:
    """Count the upstream calls the trace's counted views cost with per-process TTL caches.

    Each view lands on a random process (as connections spread over gunicorn's workers); a
    view misses the ticket, or the requester's history, unless that process fetched it less
    than the TTL ago. A TTL of 0 is no cache: two calls a view.
    """
    rng = random.Random(seed)
    loaded: list[dict[tuple[str, int], float]] = [{} for _ in range(processes)]
    views = ticket_calls = history_calls = 0
    for view in trace.views:
        cache = loaded[rng.randrange(processes)]
        missed = []
        for key, ttl in (
            (("ticket", view.ticket_id), ticket_ttl),
            (
                ("history", view.requester_id),
                history_ttl,
            ),
        ):
            if not view.at - cache.get(key, -float("inf")) < ttl:
                cache[key] = view.at
                missed.append(key[0])
        if view.counted:
            views += 1
            ticket_calls += missed.count("ticket")
            history_calls += missed.count("history")
    return CallEstimate(views=views, ticket_calls=ticket_calls, history_calls=history_calls)


def simulate_requester_calls(
    trace: Trace, *, ttl: float, processes: int = 1, seed: int = 0
) -> CallEstimate:
    """The same, for the sidebar's read by requester: one call answers a requester's tickets
    and the requester, and the page's copy of the ticket stands in for a ticket call; a view
    costs a call unless its process (or, with one shared cache, any) read the requester less
    than `ttl` ago."""
    rng = random.Random(seed)
    loaded: list[dict[int, float]] = [{} for _ in range(processes)]
    views = calls = 0
    for view in trace.views:
        cache = loaded[rng.randrange(processes)]
        missed = not view.at - cache.get(view.requester_id, -float("inf")) < ttl
        if missed:
            cache[view.requester_id] = view.at
        if view.counted:
            views += 1
            calls += missed
    return CallEstimate(views=views, ticket_calls=0, history_calls=calls)


# --- The account as the fake Zendesk and the service's store see it ----------------------------


def zendesk_records(account: Account, *, today: date) -> dict[str, list[dict[str, Any]]]:
    """The account's users and tickets as Zendesk API objects (without `url`), for the fake."""
    stamp = datetime.combine(today, time(9))
    users: list[dict[str, Any]] = [
        {
            "id": customer_id,
            "name": _name(rank),
            "email": _email(rank),
            "phone": None,
            "role": "end-user",
            "active": True,
            "verified": True,
            "suspended": False,
            "locale": "en-US",
            "time_zone": "UTC",
            "external_id": None,
            "organization_id": None,
            "tags": [],
            "user_fields": {},
            "created_at": _zendesk_time(stamp - timedelta(days=900)),
            "updated_at": _zendesk_time(stamp - timedelta(days=900)),
        }
        for rank, customer_id in enumerate(account.customer_ids, start=1)
    ]
    tickets: list[dict[str, Any]] = [
        {
            "id": ticket.id,
            "external_id": None,
            "type": "question",
            "subject": f"Question about my order ({ticket.id})",
            "raw_subject": f"Question about my order ({ticket.id})",
            "description": "Hello, could you tell me where my order is?",
            "priority": "normal",
            "status": "open" if ticket.days_ago < 3 else "solved",
            "requester_id": ticket.requester_id,
            "submitter_id": ticket.requester_id,
            "assignee_id": None,
            "organization_id": None,
            "group_id": None,
            "tags": [],
            "via": {"channel": "email", "source": {"from": {}, "to": {}, "rel": None}},
            "custom_fields": [],
            "created_at": _zendesk_time(stamp - timedelta(days=ticket.days_ago)),
            "updated_at": _zendesk_time(stamp - timedelta(days=ticket.days_ago)),
        }
        for ticket in account.tickets
    ]
    return {"users": users, "tickets": tickets}


def shop_customers(account: Account, *, today: date) -> list[SampleCustomer]:
    """The account's customers as the shop knows them, with orders; prospects left out."""
    customers = []
    order_numbers = itertools.count(500_001)
    for rank, customer_id in enumerate(account.customer_ids, start=1):
        if rank % PROSPECT_EVERY == 0:
            continue
        rng = random.Random(f"bench-customer-{account.config.seed}-{rank}")
        since = today - timedelta(days=rng.randint(60, 2000))
        span = (today - since).days
        count = 1 + round(40 / math.sqrt(rank) * rng.uniform(0.5, 1.5))
        orders = sorted(
            (
                datetime.combine(since + timedelta(days=rng.randint(0, span)), time(12)),
                rng.randint(1500, 25_000),
                rng.choice(CATEGORIES),
            )
            for _ in range(count)
        )
        customers.append(
            SampleCustomer(
                helpdesk_user_id=str(customer_id),
                name=_name(rank),
                email=_email(rank),
                phone=None,
                customer_since=since,
                story="bench",
                orders=tuple(
                    SampleOrder(f"ORD-{next(order_numbers)}", placed, cents, None, category)
                    for placed, cents, category in orders
                ),
            )
        )
    return customers


def _name(rank: int) -> str:
    return f"Customer {rank:05d}"


def _email(rank: int) -> str:
    return f"customer{rank:05d}@bench.example.com"


def _zendesk_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
