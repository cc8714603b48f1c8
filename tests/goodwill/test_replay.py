"""Replaying a draft rule: the pure replay over given tickets, and the database side (streaming
the seen tickets in chunks, the customers' facts as of now) on both databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin.domain.exceptions import Budget, ExceptionType, FixedCost, Grant, ReasonCode, SegmentRef
from plugin.domain.helpdesk import Ticket
from plugin.domain.rule_evaluation import CompiledRules
from plugin.domain.rules import RULE_FIELDS, parse_rule
from plugin.domain.rules import Rule as DomainRule
from plugin.goodwill import replay as rule_replay
from plugin.goodwill.replay import Charge, ReplayTicket, replay
from plugin.goodwill.rulebook import validate_rule
from plugin.models import Installation, SeenTicket
from tests.seeded_demo import SeededDemos

NOW = datetime(2026, 11, 20, 12, 0)
SAMPLE = ExceptionType(
    key="free_sample",
    name="Free sample",
    description="",
    cost=FixedCost(600),
    apply_reasons=(ReasonCode("delight", "Delight"),),
    dismiss_reasons=(ReasonCode("no", "No"),),
)
HIGH = SegmentRef("tier", "high")


def draft(**changes: object) -> DomainRule:
    definition: dict[str, object] = {
        "name": "High tier sample",
        "conditions": {"all": [{"field": "tier", "operator": "is", "value": "high"}]},
        "suggest": [{"exception": "free_sample"}],
        **changes,
    }
    return parse_rule(
        definition, rule_id="draft", version=1, fields=RULE_FIELDS, exceptions={"free_sample"}
    )


def ticket(
    number: int,
    who: str,
    *,
    tier: str = "high",
    days_ago: float = 1,
    lacks: frozenset[str] = frozenset(),
) -> ReplayTicket:
    at = NOW - timedelta(days=days_ago)
    return ReplayTicket(
        ticket=Ticket(str(number), "Late parcel", "open", "web", None, None, (), who, at, at),
        seen_at=at,
        who=who,
        name=f"Customer {who}",
        customer={"tier": tier},
        personas=(),
        order_value_cents=None,
        lacks=lacks,
    )


def run(
    rule: DomainRule,
    tickets: list[ReplayTicket],
    *,
    grants: dict[str, list[Grant]] | None = None,
    budgets: list[Budget] | None = None,
    charges: list[Charge] | None = None,
    deadline: float | None = None,
    clock: object = None,
) -> rule_replay.ReplayResult:
    compiled = CompiledRules.build([rule], [SAMPLE], currency="USD")
    extra = {"clock": clock} if clock is not None else {}
    return replay(
        compiled,
        rule,
        tickets,
        grants=grants or {},
        budgets=budgets or [],
        charges=charges or [],
        since=NOW - timedelta(days=30),
        until=NOW,
        deadline=deadline,
        **extra,  # type: ignore[arg-type]
    )


def test_a_replay_counts_who_would_have_got_what_and_the_cost() -> None:
    result = run(
        draft(), [ticket(1, "c1"), ticket(2, "c2", tier="low"), ticket(3, "c1", days_ago=0.5)]
    )
    assert (result.tickets, result.matched, result.offered) == (3, 2, 2)
    assert result.total_cents == 1200 and result.customer_count == 1
    [(who, totals)] = result.customers
    assert (who, totals.tickets, totals.cents, dict(totals.exceptions)) == (
        "c1",
        2,
        1200,
        {"Free sample": 2},
    )
    [sample] = result.exceptions
    assert (sample.times, sample.cents, sample.needing_approval) == (2, 1200, 0)
    assert result.complete


def test_the_drafts_own_grants_count_against_its_cap() -> None:
    capped = draft(cap={"times": 1, "days": 90})
    result = run(
        capped, [ticket(1, "c1", days_ago=3), ticket(2, "c1", days_ago=2), ticket(3, "c2")]
    )
    assert (result.offered, result.total_cents) == (2, 1200)
    assert result.withheld == (("cap", 1),)


def test_real_grants_before_the_ticket_count_too_but_not_later_ones() -> None:
    capped = draft(cap={"times": 1, "days": 90})
    grants = {
        "c1": [Grant("free_sample", 600, NOW - timedelta(days=40))],
        "c2": [Grant("free_sample", 600, NOW)],  # after the ticket: not yet granted then
    }
    result = run(capped, [ticket(1, "c1"), ticket(2, "c2")], grants=grants)
    assert result.offered == 1 and result.customers[0][0] == "c2"


def test_budgets_take_real_spend_and_the_drafts_and_withhold_past_the_month() -> None:
    budgeted = draft(budget={"field": "tier", "value": "high"})
    budget = Budget(HIGH, 1500)
    charges = [Charge(NOW - timedelta(days=5), HIGH, 600)]
    tickets = [ticket(n, f"c{n}", days_ago=4 - n * 0.1) for n in range(1, 4)]
    result = run(budgeted, tickets, budgets=[budget], charges=charges)
    # $6 spent already; one $6 sample fits, the second would pass $15.
    assert result.offered == 1 and result.withheld == (("budget", 2),)
    [use] = result.budgets
    assert (use.month, use.spent_cents, use.draft_cents, use.withheld) == ("2026-11", 600, 600, 2)
    assert not use.over and use.total_cents == 1200


def test_tickets_lacking_a_tested_field_count_as_not_matching_and_are_counted() -> None:
    on_tags = draft(
        conditions={
            "all": [
                {"field": "tier", "operator": "is", "value": "high"},
                {"field": "ticket_tags", "operator": "not_contains", "value": "spam"},
            ]
        }
    )
    old = frozenset(rule_replay.STORED_LATER)
    result = run(on_tags, [ticket(1, "c1", lacks=old), ticket(2, "c2")])
    # "does not include spam" would hold on a missing value: the replay must not count it.
    assert (result.lacking, result.offered) == (1, 1)
    assert result.lacking_fields == (("ticket_tags", 1),)
    # A draft that does not test those fields replays every ticket.
    assert run(draft(), [ticket(1, "c1", lacks=old)]).lacking == 0


def test_helpdesk_facts_are_unknown_in_a_replay() -> None:
    fields = {**RULE_FIELDS, "fact.plan": RULE_FIELDS["ticket_type"]}
    on_fact = parse_rule(
        {
            "name": "Plan",
            "conditions": {"all": [{"field": "fact.plan", "operator": "is_not", "value": "free"}]},
            "suggest": [{"exception": "free_sample"}],
        },
        rule_id="draft",
        version=1,
        fields=fields,
        exceptions={"free_sample"},
    )
    result = run(on_fact, [ticket(1, "c1")])
    assert (result.lacking, result.offered, result.lacking_fields) == (1, 0, (("fact.plan", 1),))


def test_a_replay_stops_at_its_deadline_and_says_so() -> None:
    ticks = iter(range(10_000))
    result = run(
        draft(),
        [ticket(n, f"c{n}") for n in range(1000)],
        deadline=2,
        clock=lambda: float(next(ticks)),
    )
    # Checked every 200 tickets: the clock passes 2 at the third check.
    assert not result.complete and result.tickets == 400


def test_a_replay_holds_totals_not_tickets() -> None:
    """100,000 tickets stream through; only totals and the first customers are kept."""

    def many() -> Iterator[ReplayTicket]:
        for n in range(100_000):
            yield ticket(n, f"c{n % 5000}", tier="high" if n % 2 else "low")

    result = run(draft(), many())  # type: ignore[arg-type]
    assert (result.tickets, result.offered, result.customer_count) == (100_000, 50_000, 2500)
    assert len(result.customers) == rule_replay.SHOWN_CUSTOMERS


# --- The database side, on both databases -----------------------------------------------------


@pytest.fixture
def demo(storage_app: Flask, storage_session: Session, seeded_demos: SeededDemos) -> Installation:
    return seeded_demos.load(storage_app, storage_session, now=NOW)


def test_seen_tickets_stream_in_chunks_with_the_customers_facts_as_of_now(
    storage_session: Session, demo: Installation
) -> None:
    since = NOW - timedelta(days=30)
    seen = storage_session.scalar(
        sa.select(sa.func.count()).where(
            SeenTicket.installation_id == demo.id, SeenTicket.last_seen_at >= since
        )
    )
    assert seen and seen > 10
    streamed = list(
        rule_replay.stream_tickets(
            storage_session, demo.id, since=since, until=NOW, now=NOW, chunk_size=7
        )
    )
    assert len(streamed) == seen
    assert [t.seen_at for t in streamed] == sorted(t.seen_at for t in streamed)
    assert len({t.ticket.id for t in streamed}) == seen
    margaret = next(t for t in streamed if t.name == "Margaret Okafor")
    assert margaret.customer["tier"] == "high" and margaret.customer["order_count"]
    assert margaret.order_value_cents and margaret.ticket.tags
    assert margaret.lacks == frozenset(rule_replay.NOT_STORED)


def test_another_installations_tickets_are_not_replayed(
    storage_session: Session, demo: Installation
) -> None:
    other = Installation(platform="zendesk", account="other", display_name="Other")
    storage_session.add(other)
    storage_session.commit()
    storage_session.add(
        SeenTicket(
            installation_id=other.id,
            ticket_id="1",
            requester_id="1",
            subject="Theirs",
            first_seen_at=NOW,
            last_seen_at=NOW,
        )
    )
    storage_session.commit()
    ours = list(
        rule_replay.stream_tickets(
            storage_session, demo.id, since=NOW - timedelta(days=30), until=NOW, now=NOW
        )
    )
    assert all(t.ticket.subject != "Theirs" for t in ours)
    mine = validate_rule(
        storage_session,
        other.id,
        {
            "name": "All",
            "conditions": {
                "all": [{"field": "ticket_channel", "operator": "is_not", "value": "x"}]
            },
            "actions": [{"kind": "add_tag", "value": "vip"}],
        },
        key="draft",
    )
    result = rule_replay.replay_draft(storage_session, other, mine, now=NOW)
    assert (result.tickets, result.actions) == (1, 1)
