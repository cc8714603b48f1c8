"""Time a ticket's rule evaluation for installations of 10 to 1,000 rules; print JSON.

    python -m bench.rules_eval [--tickets 500] [--sizes 10,100,500,1000] [--repeat 3] [--seed 5]

Generates, deterministically from the seed, a catalog of a dozen exceptions, rule sets of each
size (validated with `parse_rule`, as the console saves them) and a stream of tickets with
their customers: segments, personas, a mapped fact, the ticket's type, priority, channel,
tags and subject, the goodwill granted before and this month's budget spending. Rules test
a few of those fields each, as a supervisor writes them: a segment or the ticket's kind first,
then its words, tags or history.

For each size it builds `CompiledRules` once (timed) and evaluates every ticket, printing the
median, 95th percentile and maximum per ticket in milliseconds, with how many rules matched and
how many suggestions came back on average. Each ticket is evaluated `--repeat` times and its
fastest time kept, so that other processes on a busy machine do not count as evaluation time;
the load average is printed alongside. The sidebar's budget for suggestions is 10 ms at 500
rules.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import time
from datetime import datetime, timedelta
from typing import Any

from plugin.domain.behaviour import Behaviour
from plugin.domain.exceptions import (
    Budget,
    BudgetStatus,
    ExceptionType,
    Grant,
    SegmentRef,
    parse_exception_type,
)
from plugin.domain.helpdesk import Ticket
from plugin.domain.lifecycle import LifecycleStage
from plugin.domain.personas import FieldKind
from plugin.domain.rfm import RfmSegment
from plugin.domain.rule_evaluation import CompiledRules, Evaluation, RuleContext
from plugin.domain.rules import TICKET_PRIORITIES, Rule, parse_rule, rule_fields
from plugin.domain.tiers import Tier

NOW = datetime(2026, 11, 24, 12, 0)
SEED = 5
DEFAULT_SIZES = (10, 100, 500, 1000)
DEFAULT_TICKETS = 500
DEFAULT_REPEAT = 3
CURRENCY = "USD"

PERSONAS = ("Busy regular", "Gift buyer", "Office manager", "Bargain hunter")
FIELDS = rule_fields(personas=PERSONAS, facts={"vip": FieldKind.FLAG})
TICKET_TYPES = ("question", "incident", "problem", "task")
CHANNELS = ("email", "web", "chat", "voice", "api")
TAGS = ("late_delivery", "damaged", "refund", "wrong_item", "billing", "returns", "vip")
WORDS = (
    "late", "delivery", "damaged", "broken", "refund", "missing", "package", "order", "where",
    "wrong", "item", "charged", "twice", "return", "label", "exchange", "discount", "code",
    "cancel", "subscription", "invoice", "gift", "card", "shipping",
)  # fmt: skip
REASONS = [{"code": "service_recovery", "label": "Service recovery"}]
DISMISSALS = [{"code": "declined", "label": "Customer declined"}]
CATALOG_COSTS: dict[str, dict[str, Any]] = {
    "waive_shipping_fee": {"kind": "fixed", "cents": 899},
    "free_expedited_shipping": {"kind": "fixed", "cents": 1800},
    "extended_return": {"kind": "fixed", "cents": 300},
    "discount_10": {"kind": "percent", "percent": 10, "max_cents": 5000},
    "partial_refund_20": {"kind": "percent", "percent": 20, "min_cents": 500},
    "store_credit_10": {"kind": "fixed", "cents": 1000},
    "store_credit_25": {"kind": "fixed", "cents": 2500},
    "replacement_first": {"kind": "fixed", "cents": 1200},
    "gift_card_50": {"kind": "fixed", "cents": 5000},
    "waive_restocking_fee": {"kind": "percent", "percent": 15, "max_cents": 3000},
    "price_match": {"kind": "percent", "percent": 5},
    "free_gift_wrap": {"kind": "fixed", "cents": 400},
}


def catalog() -> list[ExceptionType]:
    """A dozen exceptions, fixed and percent, validated as the console saves them."""
    return [
        parse_exception_type(
            {
                "key": key,
                "name": key.replace("_", " ").capitalize(),
                "currency": CURRENCY,
                "cost": cost,
                "apply_reasons": REASONS,
                "dismiss_reasons": DISMISSALS,
            }
        )
        for key, cost in CATALOG_COSTS.items()
    ]


def _leading_condition(rng: random.Random) -> dict[str, object]:
    """What a supervisor tests first: a segment or the kind of ticket."""
    field, values = rng.choice(
        [
            ("tier", tuple(Tier)),
            ("rfm_segment", tuple(RfmSegment)),
            ("lifecycle_stage", tuple(LifecycleStage)),
            ("ticket_type", TICKET_TYPES),
        ]
    )
    if rng.random() < 0.5:
        return {"field": field, "operator": "is", "value": str(rng.choice(values))}
    return {"field": field, "operator": "in", "value": [str(v) for v in rng.sample(values, 2)]}


def _condition(rng: random.Random) -> dict[str, object]:
    """One of the other things a rule tests."""
    choice = rng.randrange(9)
    if choice == 0:
        return {"field": "ticket_subject", "operator": "contains_word", "value": rng.choice(WORDS)}
    if choice == 1:
        words = rng.sample(WORDS, 3)
        return {"field": "ticket_subject", "operator": "contains_any_word", "value": words}
    if choice == 2:
        return {"field": "ticket_tags", "operator": "contains", "value": rng.choice(TAGS)}
    if choice == 3:
        return {"field": "granted_count_90d", "operator": "lt", "value": rng.randint(1, 3)}
    if choice == 4:
        behaviour = str(rng.choice(tuple(Behaviour)))
        return {"field": "behaviour_tags", "operator": "contains", "value": behaviour}
    if choice == 5:
        return {"field": "personas", "operator": "contains", "value": rng.choice(PERSONAS)}
    if choice == 6:
        return {"field": "orders_12m", "operator": "gte", "value": rng.randint(2, 20)}
    if choice == 7:
        priority = rng.choice(TICKET_PRIORITIES)
        return {"field": "ticket_priority", "operator": "is_not", "value": priority}
    return {"field": "fact.vip", "operator": "is", "value": rng.random() < 0.5}


def rules(count: int, rng: random.Random) -> list[Rule]:
    """`count` enabled rules of one to four conditions, each suggesting one or two exceptions."""
    keys = list(CATALOG_COSTS)
    made = []
    for i in range(count):
        conditions: dict[str, object] = {
            "all": [_leading_condition(rng)] + [_condition(rng) for _ in range(rng.randint(0, 2))]
        }
        if rng.random() < 0.3:
            conditions["any"] = [_condition(rng) for _ in range(2)]
        raw: dict[str, object] = {
            "name": f"Rule {i}",
            "priority": rng.randint(0, 20),
            "conditions": conditions,
            "suggest": [
                {"exception": key, "priority": rng.randint(0, 3)}
                for key in rng.sample(keys, rng.randint(1, 2))
            ],
        }
        if rng.random() < 0.2:
            raw["actions"] = [{"kind": "raise_priority", "value": rng.choice(("high", "urgent"))}]
        if rng.random() < 0.5:
            raw["cap"] = {"times": rng.randint(1, 2), "days": rng.choice((30, 90, 365))}
        if rng.random() < 0.5:
            raw["budget"] = {"field": "tier", "value": str(rng.choice(tuple(Tier)))}
        if rng.random() < 0.3:
            raw["approval_threshold_cents"] = rng.choice((1000, 2500, 5000))
        made.append(parse_rule(raw, rule_id=f"r{i}", version=1, fields=FIELDS, exceptions=keys))
    return made


def contexts(count: int, rng: random.Random) -> list[RuleContext]:
    """`count` tickets, each with its customer's facts, goodwill and the month's budgets."""
    keys = list(CATALOG_COSTS)
    made = []
    for i in range(count):
        ticket = Ticket(
            id=str(i),
            subject=" ".join(rng.choices(WORDS, k=rng.randint(3, 9))).capitalize(),
            status="open",
            channel=rng.choice(CHANNELS),
            priority=rng.choice((None, *TICKET_PRIORITIES)),
            ticket_type=rng.choice((None, *TICKET_TYPES)),
            tags=tuple(rng.sample(TAGS, rng.randint(0, 3))),
            requester_id=f"u{i}",
            created_at=NOW - timedelta(hours=1),
            updated_at=NOW,
        )
        customer: dict[str, object] = {
            "tier": str(rng.choice(tuple(Tier))),
            "rfm_segment": str(rng.choice(tuple(RfmSegment))),
            "lifecycle_stage": str(rng.choice(tuple(LifecycleStage))),
            "behaviour_tags": tuple(
                str(b) for b in rng.sample(tuple(Behaviour), rng.randint(0, 2))
            ),
            "orders_12m": rng.randint(0, 40),
            "spend_12m_cents": rng.randint(0, 400_000),
        }
        grants = tuple(
            Grant(
                rng.choice(keys), rng.randint(300, 5000), NOW - timedelta(days=rng.randint(1, 400))
            )
            for _ in range(rng.randint(0, 6))
        )
        budgets = tuple(
            BudgetStatus(Budget(SegmentRef("tier", str(tier)), 100_000), rng.randint(0, 100_000))
            for tier in Tier
        )
        made.append(
            RuleContext(
                ticket=ticket,
                now=NOW,
                customer=customer,
                personas=tuple(rng.sample(PERSONAS, rng.randint(0, 2))),
                facts={"vip": rng.random() < 0.2},
                grants=grants,
                budgets=budgets,
                order_value_cents=rng.choice((None, rng.randint(1000, 60_000))),
            )
        )
    return made


def _percentile(values: list[int], percentile: int) -> int:
    """The nearest-rank percentile."""
    ranked = sorted(values)
    return ranked[math.ceil(percentile * len(ranked) / 100) - 1]


def _timed(compiled: CompiledRules, context: RuleContext) -> tuple[int, Evaluation]:
    """Evaluate one ticket; return the nanoseconds it took and the evaluation."""
    started = time.perf_counter_ns()
    evaluation = compiled.evaluate(context)
    return time.perf_counter_ns() - started, evaluation


def _ms(nanoseconds: float) -> float:
    return round(nanoseconds / 1e6, 4)


def run(
    *,
    sizes: tuple[int, ...] = DEFAULT_SIZES,
    tickets: int = DEFAULT_TICKETS,
    repeat: int = DEFAULT_REPEAT,
    seed: int = SEED,
) -> dict[str, Any]:
    """Build and evaluate each size over the same tickets; return the figures."""
    rng = random.Random(seed)
    entries = catalog()
    stream = contexts(tickets, rng)
    results: dict[str, Any] = {}
    for size in sizes:
        rule_set = rules(size, random.Random(f"{seed}-{size}"))
        started = time.perf_counter_ns()
        compiled = CompiledRules.build(rule_set, entries, currency=CURRENCY)
        built = time.perf_counter_ns() - started
        timings: list[int] = []
        matched = suggested = 0
        for context in stream:
            runs = [_timed(compiled, context) for _ in range(max(repeat, 1))]
            timings.append(min(elapsed for elapsed, _ in runs))
            evaluation = runs[0][1]
            facts = context.rule_facts()
            matched += sum(1 for r in rule_set if r.conditions.matches(facts))
            suggested += len(evaluation.suggestions)
        results[str(size)] = {
            "rules": size,
            "build_ms": _ms(built),
            "median_ms": _ms(statistics.median(timings)),
            "p95_ms": _ms(_percentile(timings, 95)),
            "max_ms": _ms(max(timings)),
            "rules_matched_per_ticket": round(matched / len(stream), 2),
            "suggestions_per_ticket": round(suggested / len(stream), 2),
        }
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "tickets": tickets,
        "repeat": repeat,
        "seed": seed,
        "catalog_size": len(entries),
        "sizes": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=DEFAULT_TICKETS)
    parser.add_argument(
        "--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="rule counts, comma-separated"
    )
    parser.add_argument(
        "--repeat", type=int, default=DEFAULT_REPEAT, help="runs per ticket; the fastest counts"
    )
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    sizes = tuple(int(size) for size in args.sizes.split(","))
    results = run(sizes=sizes, tickets=args.tickets, repeat=args.repeat, seed=args.seed)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
