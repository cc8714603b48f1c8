"""Evaluating rules for a ticket: ranked suggestions, and what a cap or a budget withheld, with why.

`CompiledRules.build` prepares an installation's rules once; its `evaluate` gives one ticket's
ranked suggestions, each with why.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from plugin.domain.exceptions import (
    BudgetStatus,
    ExceptionType,
    Goodwill,
    Grant,
    amount,
    granted_within,
)
from plugin.domain.helpdesk import Ticket
from plugin.domain.personas import (
    Condition,
    Operator,
)
from plugin.domain.rules import (
    FACT_PREFIX,
    HISTORY_WINDOWS_DAYS,
    PERSONAS_FIELD,
    ActionKind,
    Rule,
    RuleRef,
    SuggestedException,
    TicketAction,
    priority_rank,
    times_phrase,
)
from plugin.domain.segments import SEGMENT_FIELDS
from plugin.domain.wording import N_, ngettext


@dataclass(frozen=True)
class RuleContext:
    """What rules are evaluated against for one ticket.

    `customer` holds `SegmentProfile.facts()` (empty for someone who is not a customer yet),
    `facts` the installation's own facts by name (without FACT_PREFIX), `grants` the exceptions
    granted to the customer before, `budgets` this month's spending of each segment budget,
    and `order_value_cents` the value of the order the ticket is about (or, failing that, the
    customer's average order), which percent costs are a share of.
    """

    ticket: Ticket
    now: datetime
    customer: Mapping[str, object] = field(default_factory=dict)
    personas: tuple[str, ...] = ()
    facts: Mapping[str, object] = field(default_factory=dict)
    grants: tuple[Grant, ...] = ()
    budgets: tuple[BudgetStatus, ...] = ()
    order_value_cents: int | None = None

    def rule_facts(self) -> dict[str, object]:
        """The value of every rule field for this ticket; None where there is none."""
        ticket = self.ticket
        values: dict[str, object] = {name: self.customer.get(name) for name in SEGMENT_FIELDS}
        values.update({FACT_PREFIX + name: value for name, value in self.facts.items()})
        values[PERSONAS_FIELD] = self.personas
        values.update(
            ticket_type=ticket.ticket_type,
            ticket_priority=ticket.priority,
            ticket_channel=ticket.channel,
            ticket_tags=ticket.tags,
            ticket_subject=ticket.subject,
            order_value_cents=self.order_value_cents,
        )
        for days in HISTORY_WINDOWS_DAYS:
            recent = granted_within(self.grants, now=self.now, days=days)
            values[f"granted_count_{days}d"] = len(recent)
            values[f"granted_cents_{days}d"] = sum(g.amount_cents for g in recent)
        return values


class WithheldReason(StrEnum):
    CAP = "cap"  # the customer had it as often as the rule allows
    BUDGET = "budget"  # it would take the segment's budget past the month's amount
    NO_BUDGET = "no_budget"  # the rule charges a segment that has no budget
    UNPRICED = "unpriced"  # a share of an order, with no order to price it


@dataclass(frozen=True)
class Why:
    """Why a suggestion is made: the conditions that held, and what limits it."""

    conditions: tuple[Condition, ...]
    goodwill: str  # "$38 granted in the last 90 days"
    cap: str | None  # "1 of 2 in 90 days": this grant would be the first of two allowed
    budget: str | None  # "$412 of $1,000 this month"

    @property
    def condition_words(self) -> tuple[str, ...]:
        """The conditions in words: "tier is high", "ticket_subject has the word late"."""
        return tuple(condition.describe() for condition in self.conditions)


@dataclass(frozen=True)
class Suggestion:
    """An exception to offer, ranked from 1, with its estimated cost and why.

    `rule` made it; `also_from` are the other rules that suggested the same exception.
    """

    rank: int
    exception: ExceptionType
    cost_cents: int
    needs_approval: bool
    rule: RuleRef
    also_from: tuple[RuleRef, ...]
    why: Why
    budget: BudgetStatus | None


@dataclass(frozen=True)
class ActionSuggestion:
    """A ticket action to offer, with the rules that suggest it and the conditions that held."""

    action: TicketAction
    rule: RuleRef
    also_from: tuple[RuleRef, ...]
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Withheld:
    """An exception a rule would have suggested, and why it was not: for replays and reports."""

    exception: ExceptionType
    rule: RuleRef
    reason: WithheldReason
    explanation: str
    cost_cents: int | None


@dataclass(frozen=True)
class Evaluation:
    """A ticket's suggestions, best first; ticket actions; and what was withheld."""

    suggestions: tuple[Suggestion, ...]
    actions: tuple[ActionSuggestion, ...]
    withheld: tuple[Withheld, ...]
    goodwill: Goodwill

    @property
    def budgets_running_out(self) -> tuple[BudgetStatus, ...]:
        """The budgets the suggestions draw on that are at least 80% used, for the card."""
        found = {s.budget for s in self.suggestions if s.budget and s.budget.running_out}
        return tuple(sorted(found, key=lambda b: (b.budget.segment.field, b.budget.segment.value)))


@dataclass(frozen=True)
class _Candidate:
    """One exception suggested by one matching rule, before limits and de-duplication.

    `order` ranks it: by rule priority, then the exception's priority, then lower cost (then
    by key and rule id, so that equal candidates always come in the same order).
    """

    order: tuple[int, int, int, str, str]
    rule: Rule
    exception: ExceptionType
    cost_cents: int | None


@dataclass(frozen=True)
class _CompiledRule:
    """A rule with the catalog entries it suggests looked up."""

    rule: Rule
    offers: tuple[tuple[SuggestedException, ExceptionType], ...]


@dataclass(frozen=True)
class _RuleIndex:
    """Which rules can match a ticket, found without testing them all.

    A rule one of whose `all` conditions is `field is value` (or `field in values`) can only
    match when the fact has that value, so it is filed under the value (under each of the
    values); rules without such a condition are tested for every ticket. Positions are those
    of the rules in rank order.
    """

    by_value: Mapping[str, Mapping[object, tuple[int, ...]]]
    always: tuple[int, ...]

    @classmethod
    def of(cls, rules: Iterable[Rule]) -> _RuleIndex:
        filed: dict[str, dict[object, list[int]]] = defaultdict(dict)
        always = []
        for position, rule in enumerate(rules):
            equalities = [
                c for c in rule.conditions.all if c.operator in (Operator.IS, Operator.IN)
            ]
            if not equalities:
                always.append(position)
                continue
            # The condition with the fewest values lets the fewest tickets through.
            key = min(equalities, key=lambda c: len(c.value) if isinstance(c.value, tuple) else 1)
            values = key.value if isinstance(key.value, tuple) else (key.value,)
            for value in values:
                positions = filed[key.field].setdefault(value, [])
                if not positions or positions[-1] != position:  # 1 and 1.0 are one key
                    positions.append(position)
        return cls(
            {
                name: {value: tuple(found) for value, found in by_value.items()}
                for name, by_value in filed.items()
            },
            tuple(always),
        )

    def candidates(self, facts: Mapping[str, object]) -> list[int]:
        """The positions of the rules that may match these facts, in rank order."""
        positions = list(self.always)
        for name, by_value in self.by_value.items():
            actual = facts.get(name)
            if actual is None:
                continue
            try:
                positions.extend(by_value.get(actual, ()))
            except TypeError:  # an unhashable fact, such as a list, equals no single value
                continue
        positions.sort()
        return positions


@dataclass(frozen=True)
class CompiledRules:
    """An installation's enabled rules, checked against its catalog, in rank order, indexed.

    Build once when the rules or catalog change; evaluate for every ticket.
    """

    rules: tuple[_CompiledRule, ...]
    index: _RuleIndex
    currency: str

    @classmethod
    def build(
        cls, rules: Iterable[Rule], catalog: Iterable[ExceptionType], *, currency: str
    ) -> CompiledRules:
        """Check that rules suggest only catalog entries in the installation's currency.

        Raises ValueError naming the first rule or entry that does not fit.
        """
        by_key: dict[str, ExceptionType] = {}
        for entry in catalog:
            if entry.key in by_key:
                raise ValueError(f"the catalog lists {entry.key!r} twice")
            if entry.currency != currency:
                raise ValueError(f"{entry.key!r} is priced in {entry.currency}, not {currency}")
            by_key[entry.key] = entry
        compiled, ids = [], set()
        for rule in sorted(rules, key=lambda r: (r.priority, r.id)):
            if rule.id in ids:
                raise ValueError(f"two rules have the id {rule.id!r}")
            ids.add(rule.id)
            missing = [s.exception for s in rule.suggest if s.exception not in by_key]
            if missing:
                raise ValueError(f"rule {rule.id!r} suggests {missing[0]!r}, not in the catalog")
            if rule.enabled:
                offers = tuple((s, by_key[s.exception]) for s in rule.suggest)
                compiled.append(_CompiledRule(rule, offers))
        return cls(tuple(compiled), _RuleIndex.of(c.rule for c in compiled), currency)

    def evaluate(self, context: RuleContext) -> Evaluation:
        """Suggest what the matching rules offer, within their caps and budgets, best first.

        The same exception from several rules is suggested once, by the best-ranked rule its
        limits allow, with the conditions of every such rule; what no rule's limits allow is
        withheld, with the reason of each rule.
        """
        facts = context.rule_facts()
        costs: dict[str, int | None] = {}
        matched: list[Rule] = []
        candidates: list[_Candidate] = []
        for position in self.index.candidates(facts):
            rule, offers = self.rules[position].rule, self.rules[position].offers
            if not rule.conditions.matches(facts):
                continue
            matched.append(rule)
            for suggested, exception in offers:
                if exception.key not in costs:
                    costs[exception.key] = exception.estimate(context.order_value_cents)
                cost = costs[exception.key]
                order = (rule.priority, suggested.priority, cost or 0, exception.key, rule.id)
                candidates.append(_Candidate(order, rule, exception, cost))
        candidates.sort(key=lambda c: c.order)
        checks = _Checks(context, facts, self.currency)
        allowed: dict[str, list[_Candidate]] = defaultdict(list)
        refused: list[tuple[_Candidate, WithheldReason]] = []
        for candidate in candidates:
            reason = checks.refusal(candidate)
            if reason is None:
                allowed[candidate.exception.key].append(candidate)
            else:
                refused.append((candidate, reason))
        return Evaluation(
            suggestions=tuple(
                checks.suggestion(rank, found)
                for rank, found in enumerate(allowed.values(), start=1)  # in candidate order
            ),
            actions=_action_suggestions(matched, checks.held, context.ticket),
            withheld=tuple(
                checks.withheld(candidate, reason)
                for candidate, reason in refused
                if candidate.exception.key not in allowed
            ),
            goodwill=checks.goodwill,
        )


def evaluate(
    rules: Iterable[Rule], catalog: Iterable[ExceptionType], context: RuleContext, *, currency: str
) -> Evaluation:
    """Build and evaluate in one go, for a single ticket; prefer `CompiledRules` for many."""
    return CompiledRules.build(rules, catalog, currency=currency).evaluate(context)


class _Checks:
    """One ticket's checks of caps and budgets, and the words for why; each worked out once."""

    def __init__(self, context: RuleContext, facts: Mapping[str, object], currency: str) -> None:
        self.context = context
        self.facts = facts
        self.currency = currency
        self.budgets = {status.budget.segment: status for status in context.budgets}
        self.goodwill = Goodwill.of(context.grants, now=context.now, currency=currency)
        self._granted: dict[tuple[str, int], int] = {}
        self._held: dict[str, tuple[Condition, ...]] = {}

    def granted(self, exception: str, days: int) -> int:
        """How often the customer was granted `exception` in the last `days` days."""
        key = (exception, days)
        if key not in self._granted:
            recent = granted_within(self.context.grants, now=self.context.now, days=days)
            self._granted[key] = sum(1 for grant in recent if grant.exception == exception)
        return self._granted[key]

    def held(self, rule: Rule) -> tuple[Condition, ...]:
        """The conditions of a matching rule that held (only matching rules are asked)."""
        if rule.id not in self._held:
            self._held[rule.id] = rule.conditions.held_when_matched(self.facts)
        return self._held[rule.id]

    def refusal(self, candidate: _Candidate) -> WithheldReason | None:
        """Why the rule's limits withhold the candidate; None when they allow it."""
        rule, cost = candidate.rule, candidate.cost_cents
        if cost is None:
            return WithheldReason.UNPRICED
        if rule.cap is not None and (
            self.granted(candidate.exception.key, rule.cap.days) >= rule.cap.times
        ):
            return WithheldReason.CAP
        if rule.budget is not None:
            status = self.budgets.get(rule.budget)
            if status is None:
                return WithheldReason.NO_BUDGET
            if not status.allows(cost):
                return WithheldReason.BUDGET
        return None

    def suggestion(self, rank: int, found: list[_Candidate]) -> Suggestion:
        """The best rule's suggestion of an exception, with the conditions of every rule's."""
        best, *others = found
        rule, cost = best.rule, best.cost_cents
        assert cost is not None  # an unpriced candidate is always withheld
        cap = rule.cap
        status = self.budgets.get(rule.budget) if rule.budget else None
        why = Why(
            conditions=_merged(self.held(c.rule) for c in found),
            goodwill=self.goodwill.sentence,
            cap=None
            if cap is None
            else ngettext(
                "%(nth)d of %(times)d in %(num)d day",
                "%(nth)d of %(times)d in %(num)d days",
                cap.days,
                nth=self.granted(best.exception.key, cap.days) + 1,
                times=cap.times,
            ),
            budget=None if status is None else status.sentence(self.currency),
        )
        return Suggestion(
            rank=rank,
            exception=best.exception,
            cost_cents=cost,
            needs_approval=rule.approval_threshold_cents is not None
            and cost > rule.approval_threshold_cents,
            rule=rule.ref,
            also_from=tuple(other.rule.ref for other in others),
            why=why,
            budget=status,
        )

    def withheld(self, candidate: _Candidate, reason: WithheldReason) -> Withheld:
        """Say why a candidate was withheld."""
        rule, exception, cost = candidate.rule, candidate.exception, candidate.cost_cents
        match reason:
            case WithheldReason.UNPRICED:
                explanation = N_(
                    "no order to price %(cost)s", cost=exception.cost.describe(self.currency)
                )
            case WithheldReason.CAP:
                assert rule.cap is not None
                used = self.granted(exception.key, rule.cap.days)
                explanation = ngettext(
                    "granted %(times)s in the last %(num)d day; the rule allows %(cap)s",
                    "granted %(times)s in the last %(num)d days; the rule allows %(cap)s",
                    rule.cap.days,
                    times=times_phrase(used),
                    cap=rule.cap.describe(),
                )
            case WithheldReason.NO_BUDGET:
                assert rule.budget is not None
                explanation = N_(
                    "no monthly budget is set for %(segment)s", segment=rule.budget.label
                )
            case _:
                assert rule.budget is not None and cost is not None
                status = self.budgets[rule.budget]
                explanation = N_(
                    "%(amount)s more would pass the %(segment)s budget: %(status)s",
                    amount=amount(cost, self.currency),
                    segment=rule.budget.label,
                    status=status.sentence(self.currency),
                )
        return Withheld(exception, rule.ref, reason, explanation, cost)


def _action_suggestions(
    matched: Iterable[Rule], held: Callable[[Rule], tuple[Condition, ...]], ticket: Ticket
) -> tuple[ActionSuggestion, ...]:
    """The actions the ticket still needs, once each, from the best rule; of the priorities to
    raise it to, only the highest.
    """
    merged: dict[TicketAction, list[Rule]] = defaultdict(list)
    for rule in matched:
        for action in rule.actions:
            if not action.is_done(ticket):
                merged[action].append(rule)
    highest = max(
        (priority_rank(a.value) for a in merged if a.kind is ActionKind.RAISE_PRIORITY),
        default=None,
    )
    return tuple(
        ActionSuggestion(
            action,
            rules[0].ref,
            tuple(rule.ref for rule in rules[1:]),
            _merged(held(rule) for rule in rules),
        )
        for action, rules in merged.items()
        if action.kind is not ActionKind.RAISE_PRIORITY or priority_rank(action.value) == highest
    )


def _merged(groups: Iterable[tuple[Condition, ...]]) -> tuple[Condition, ...]:
    """The conditions of several rules, each once, in the order they first appear."""
    return tuple(dict.fromkeys(c for group in groups for c in group))
