"""Rules: their fields and validation by path, and evaluation within caps, budgets and ranks."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.domain.exceptions import (
    AmountLimits,
    Budget,
    BudgetStatus,
    ExceptionType,
    FixedCost,
    Grant,
    PercentCost,
    ReasonCode,
    SegmentRef,
)
from plugin.domain.helpdesk import Ticket
from plugin.domain.personas import (
    Condition,
    ConditionError,
    FieldKind,
    FieldSpec,
    Operator,
    parse_conditions,
)
from plugin.domain.rule_evaluation import (
    CompiledRules,
    Evaluation,
    RuleContext,
    Suggestion,
    WithheldReason,
    evaluate,
)
from plugin.domain.rules import (
    FACT_PREFIX,
    RULE_FIELDS,
    ActionKind,
    Cap,
    InvalidRule,
    Rule,
    RuleRef,
    SuggestedException,
    TicketAction,
    parse_rule,
    rule_fields,
)
from plugin.domain.segments import SEGMENT_FIELDS

NOW = datetime(2026, 3, 15, 12, 0)
PERSONAS = ("Busy regular", "Gift buyer")
FIELDS = rule_fields(
    personas=PERSONAS,
    facts={"vip": FieldKind.FLAG, "account_manager": FieldKind.CHOICE},
)


def exception(key: str, cost: FixedCost | PercentCost, editable: AmountLimits | None = None):
    return ExceptionType(
        key=key,
        name=key.replace("_", " ").capitalize(),
        description="",
        cost=cost,
        apply_reasons=(ReasonCode("service_recovery", "Service recovery"),),
        dismiss_reasons=(ReasonCode("declined", "Customer declined"),),
        editable=editable,
    )


CATALOG = (
    exception("free_shipping", FixedCost(1_300)),
    exception("store_credit", FixedCost(2_500), AmountLimits(1_000, 5_000)),
    exception("gift_card", FixedCost(5_000)),
    exception("partial_refund", PercentCost(Decimal(10), 500, 8_000), AmountLimits(0, 4_000)),
)
BY_KEY = {entry.key: entry for entry in CATALOG}
HIGH: dict[str, object] = {"field": "tier", "operator": "is", "value": "high"}
LATE: dict[str, object] = {"field": "ticket_subject", "operator": "contains_word", "value": "late"}


def ticket(
    subject: str = "My order is late",
    priority: str | None = "normal",
    tags: tuple[str, ...] = (),
) -> Ticket:
    return Ticket(
        id="1",
        subject=subject,
        status="open",
        channel="email",
        priority=priority,
        ticket_type="incident",
        tags=tags,
        requester_id="u1",
        created_at=NOW - timedelta(hours=1),
        updated_at=NOW,
    )


def context(**changes: Any) -> RuleContext:
    """A high-tier regular writing about a late order, with nothing granted before."""
    values: dict[str, Any] = {
        "ticket": ticket(),
        "now": NOW,
        "customer": {"tier": "high", "orders_12m": 14, "behaviour_tags": ("small_business",)},
        "personas": ("Busy regular",),
        "facts": {"vip": True},
    }
    values.update(changes)
    return RuleContext(**values)


def rule(rule_id: str = "r1", version: int = 1, **changes: Any) -> Rule:
    """A valid rule as the console saves it: high tier -> free shipping, with changes."""
    raw: dict[str, Any] = {
        "name": f"Rule {rule_id}",
        "conditions": {"all": [HIGH]},
        "suggest": [{"exception": "free_shipping"}],
    }
    raw.update(changes)
    return parse_rule(raw, rule_id=rule_id, version=version, fields=FIELDS, exceptions=BY_KEY)


def run(rules: list[Rule], ctx: RuleContext | None = None) -> Evaluation:
    return evaluate(rules, CATALOG, ctx or context(), currency="USD")


def spent(field: str, value: str, spent_cents: int, monthly_cents: int = 10_000) -> BudgetStatus:
    return BudgetStatus(Budget(SegmentRef(field, value), monthly_cents), spent_cents)


# Fields -----------------------------------------------------------------------------------


def test_rule_fields_add_personas_facts_ticket_and_history_to_the_segment_fields() -> None:
    assert set(SEGMENT_FIELDS) < set(RULE_FIELDS) < set(FIELDS)
    assert FIELDS["personas"] == FieldSpec(FieldKind.TAGS, ("Busy regular", "Gift buyer"))
    assert "personas" not in rule_fields()
    assert FIELDS[FACT_PREFIX + "vip"] == FieldSpec(FieldKind.FLAG)
    assert FIELDS["ticket_subject"] == FieldSpec(FieldKind.TEXT)
    assert FIELDS["ticket_priority"].choices == ("low", "normal", "high", "urgent")
    for name in ("ticket_type", "ticket_channel", "ticket_tags", "order_value_cents"):
        assert name in FIELDS
    for days in (30, 90, 365):
        assert FIELDS[f"granted_count_{days}d"].kind is FieldKind.NUMBER
        assert FIELDS[f"granted_cents_{days}d"].kind is FieldKind.NUMBER


def test_the_context_gives_every_field_a_value() -> None:
    grants = (
        Grant("free_shipping", 1_300, NOW - timedelta(days=10)),
        Grant("gift_card", 5_000, NOW - timedelta(days=200)),
    )
    facts = context(grants=grants, order_value_cents=4_200).rule_facts()
    assert set(facts) == set(FIELDS) - {FACT_PREFIX + "account_manager"}
    assert facts["tier"] == "high"
    assert facts["lifecycle_stage"] is None
    assert facts["personas"] == ("Busy regular",)
    assert facts["fact.vip"] is True
    assert facts["ticket_subject"] == "My order is late"
    assert facts["order_value_cents"] == 4_200
    assert (facts["granted_count_30d"], facts["granted_cents_30d"]) == (1, 1_300)
    assert (facts["granted_count_365d"], facts["granted_cents_365d"]) == (2, 6_300)


# The condition language's words and flags -------------------------------------------------


def holds(field: str, operator: str, value: Any, facts: dict[str, object]) -> bool:
    condition = {"field": field, "operator": operator, "value": value}
    return parse_conditions({"all": [condition]}, FIELDS).evaluate(facts).matched


@pytest.mark.parametrize(
    ("subject", "operator", "value", "expected"),
    [
        ("Late delivery!!", "contains_word", "late", True),
        ("Latest order", "contains_word", "late", False),
        ("My LATE   delivery", "contains_word", "late delivery", True),
        ("delivery was late", "contains_word", "late delivery", False),
        ("Latest order", "not_contains_word", "late", True),
        ("late again", "not_contains_word", "Late", False),
        ("It arrived broken.", "contains_any_word", ["refund", "broken"], True),
        ("It arrived", "contains_any_word", ["refund", "broken"], False),
    ],
)
def test_subject_words(subject: str, operator: str, value: Any, expected: bool) -> None:
    assert holds("ticket_subject", operator, value, {"ticket_subject": subject}) is expected


@pytest.mark.parametrize(
    ("fact", "operator", "expected"),
    [(True, "is", True), (False, "is", False), (False, "is_not", True), (None, "is_not", True)],
)
def test_yes_no_facts(fact: bool | None, operator: str, expected: bool) -> None:
    assert holds("fact.vip", operator, True, {"fact.vip": fact}) is expected


@pytest.mark.parametrize(
    ("field", "operator", "value", "path", "message"),
    [
        ("ticket_subject", "contains_word", "", "all[0].value", "a word or phrase"),
        ("ticket_subject", "contains_word", "?!", "all[0].value", "a word or phrase"),
        ("ticket_subject", "contains_any_word", "late", "all[0].value", "non-empty list"),
        ("ticket_subject", "contains_any_word", ["late", 3], "all[0].value[1]", "a word"),
        ("ticket_subject", "contains", "late", "all[0].operator", "does not apply"),
        ("fact.vip", "is", "yes", "all[0].value", "true or false"),
        ("fact.vip", "gt", 1, "all[0].operator", "does not apply"),
        ("tier", "contains_word", "high", "all[0].operator", "does not apply"),
    ],
)
def test_words_and_flags_are_validated(
    field: str, operator: str, value: Any, path: str, message: str
) -> None:
    with pytest.raises(InvalidRule) as raised:
        rule(conditions={"all": [{"field": field, "operator": operator, "value": value}]})
    (error,) = raised.value.errors
    assert error.path == f"conditions.{path}"
    assert message in error.message


def test_words_and_flags_in_words() -> None:
    assert Condition("ticket_subject", Operator.CONTAINS_WORD, "late").describe() == (
        "ticket_subject has the word late"
    )
    assert Condition("ticket_subject", Operator.CONTAINS_ANY_WORD, ("a", "b")).describe() == (
        "ticket_subject has one of the words a, b"
    )
    assert Condition("fact.vip", Operator.IS, True).describe() == "fact.vip is yes"


conditions_pool = st.sampled_from(
    [
        HIGH,
        LATE,
        {"field": "tier", "operator": "not_in", "value": ["low"]},
        {"field": "orders_12m", "operator": "gte", "value": 12},
        {"field": "fact.vip", "operator": "is_not", "value": True},
        {"field": "ticket_tags", "operator": "contains", "value": "vip"},
        {"field": "ticket_subject", "operator": "contains_any_word", "value": ["broken", "late"]},
    ]
)
facts_strategy = st.fixed_dictionaries(
    {
        "tier": st.sampled_from([None, "low", "high"]),
        "orders_12m": st.none() | st.integers(0, 20),
        "fact.vip": st.none() | st.booleans(),
        "ticket_tags": st.sampled_from([(), ("vip",)]),
        "ticket_subject": st.sampled_from(["late", "broken box", "hello"]),
    }
)


@given(st.lists(conditions_pool, max_size=3), st.lists(conditions_pool, max_size=3), facts_strategy)
def test_matches_answers_as_evaluate_does(
    all_: list[dict[str, object]], any_: list[dict[str, object]], facts: dict[str, object]
) -> None:
    conditions = parse_conditions({"all": all_, "any": any_ or [HIGH]}, FIELDS)
    assert conditions.matches(facts) is conditions.evaluate(facts).matched


# Parsing a rule ---------------------------------------------------------------------------


def test_a_full_rule_parses() -> None:
    parsed = rule(
        "late-high",
        version=3,
        name="Late delivery, high value",
        priority=2,
        enabled=False,
        conditions={"all": [HIGH], "any": [LATE]},
        suggest=[{"exception": "free_shipping", "priority": 1}, {"exception": "store_credit"}],
        actions=[
            {"kind": "raise_priority", "value": "high"},
            {"kind": "add_tag", "value": "vip_care"},
            {"kind": "route_to_group", "value": "Senior care"},
        ],
        cap={"times": 1, "days": 90},
        approval_threshold_cents=2_000,
        budget={"field": "tier", "value": "high"},
    )
    assert parsed == Rule(
        id="late-high",
        version=3,
        name="Late delivery, high value",
        conditions=parse_conditions({"all": [HIGH], "any": [LATE]}, FIELDS),
        suggest=(SuggestedException("free_shipping", 1), SuggestedException("store_credit", 0)),
        actions=(
            TicketAction(ActionKind.RAISE_PRIORITY, "high"),
            TicketAction(ActionKind.ADD_TAG, "vip_care"),
            TicketAction(ActionKind.ROUTE_TO_GROUP, "Senior care"),
        ),
        priority=2,
        enabled=False,
        cap=Cap(1, 90),
        approval_threshold_cents=2_000,
        budget=SegmentRef("tier", "high"),
    )
    assert parsed.ref == RuleRef("late-high", 3, "Late delivery, high value")


def test_a_rule_may_only_handle_the_ticket() -> None:
    parsed = rule(suggest=[], actions=[{"kind": "add_tag", "value": "vip"}])
    assert parsed.suggest == ()
    assert parsed.actions == (TicketAction(ActionKind.ADD_TAG, "vip"),)


def rule_errors(**changes: Any) -> list[ConditionError]:
    with pytest.raises(InvalidRule) as raised:
        rule(**changes)
    return list(raised.value.errors)


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        (
            {"conditions": {"all": [HIGH, LATE, {**HIGH, "value": "gold"}]}},
            "conditions.all[2].value",
            "one of low",
        ),
        ({"conditions": {"any": [{**HIGH, "field": "shoe"}]}}, "conditions.any[0].field", "unk"),
        ({"conditions": {}}, "conditions", "at least one condition"),
        ({"suggest": [{"exception": "pony"}]}, "suggest[0].exception", "no exception 'pony'"),
        (
            {"suggest": [{"exception": "gift_card"}, {"exception": "gift_card"}]},
            "suggest[1].exception",
            "suggested twice",
        ),
        (
            {"suggest": [{"exception": "gift_card", "priority": -1}]},
            "suggest[0].priority",
            "from 0",
        ),
        ({"suggest": [{"priority": 1}]}, "suggest[0].exception", "missing"),
        ({"suggest": "gift_card"}, "suggest", "a list"),
        ({"suggest": []}, "suggest", "at least one exception or ticket action"),
        ({"cap": {"times": 1, "days": 0}}, "cap.days", "from 1"),
        ({"cap": {"days": 90}}, "cap.times", "missing"),
        ({"cap": {"times": 1.5, "days": 90}}, "cap.times", "whole number"),
        ({"cap": "once"}, "cap", "expected an object"),
        ({"budget": {"field": "personas", "value": "x"}}, "budget.field", "one of tier"),
        ({"budget": {"field": "tier", "value": "gold"}}, "budget.value", "one of low"),
        ({"approval_threshold_cents": -1}, "approval_threshold_cents", "from 0"),
        ({"actions": [{"kind": "close", "value": "x"}]}, "actions[0].kind", "raise_priority"),
        (
            {"actions": [{"kind": "raise_priority", "value": "asap"}]},
            "actions[0].value",
            "one of low",
        ),
        ({"actions": [{"kind": "add_tag", "value": "vip care"}]}, "actions[0].value", "one word"),
        ({"actions": [{"kind": "route_to_group", "value": ""}]}, "actions[0].value", "blank"),
        ({"actions": [{"kind": "add_tag"}]}, "actions[0].value", "missing"),
        (
            {"actions": [{"kind": "add_tag", "value": "a"}, {"kind": "add_tag", "value": "a"}]},
            "actions[1]",
            "Add tag a is listed twice",
        ),
        ({"name": ""}, "name", "non-blank"),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"priority": 10_000}, "priority", "to 9,999"),
        ({"colour": "red"}, "colour", "unknown key"),
    ],
)
def test_an_error_points_at_its_place(changes: dict[str, Any], path: str, message: str) -> None:
    (error,) = rule_errors(**changes)
    assert error.path == path
    assert message in error.message


def test_every_problem_in_a_rule_is_reported_at_once() -> None:
    errors = rule_errors(
        name=" ",
        conditions={"all": [{**HIGH, "operator": "gt"}]},
        suggest=[{"exception": "pony"}],
        cap={"times": 0, "days": 90},
    )
    assert [e.path for e in errors] == [
        "name",
        "conditions.all[0].operator",
        "suggest[0].exception",
        "cap.times",
    ]


def test_a_rule_must_be_an_object() -> None:
    with pytest.raises(InvalidRule) as raised:
        parse_rule([], rule_id="r", version=1, fields=FIELDS, exceptions=BY_KEY)
    assert [e.path for e in raised.value.errors] == [""]


# Building ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "catalog", "message"),
    [
        ([rule("a"), rule("a", version=2)], CATALOG, "two rules have the id 'a'"),
        ([rule()], CATALOG[1:], "suggests 'free_shipping', not in the catalog"),
        ([], (*CATALOG, CATALOG[0]), "lists 'free_shipping' twice"),
        (
            [],
            (ExceptionType("x", "X", "", FixedCost(1), (), (), currency="EUR"),),
            "priced in EUR, not USD",
        ),
    ],
)
def test_building_refuses_what_does_not_fit(
    rules: list[Rule], catalog: tuple[ExceptionType, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        CompiledRules.build(rules, catalog, currency="USD")


# Evaluating: examples ---------------------------------------------------------------------


def test_a_suggestion_says_why_and_what_limits_it() -> None:
    grants = (Grant("gift_card", 3_800, NOW - timedelta(days=20)),)
    found = run(
        [
            rule(
                "late",
                version=4,
                conditions={"all": [HIGH], "any": [LATE, {**LATE, "value": "broken"}]},
                cap={"times": 2, "days": 90},
                budget={"field": "tier", "value": "high"},
            )
        ],
        context(grants=grants, budgets=(spent("tier", "high", 41_200, 100_000),)),
    )
    (suggestion,) = found.suggestions
    assert suggestion.rank == 1
    assert suggestion.exception is BY_KEY["free_shipping"]
    assert suggestion.cost_cents == 1_300
    assert suggestion.rule == RuleRef("late", 4, "Rule late")
    assert suggestion.why.condition_words == ("tier is high", "ticket_subject has the word late")
    assert suggestion.why.goodwill == "$38 granted in the last 90 days"
    assert suggestion.why.cap == "1 of 2 in 90 days"
    assert suggestion.why.budget == "$412 of $1,000 this month"
    assert suggestion.budget is not None and not suggestion.budget.running_out
    assert not suggestion.needs_approval
    assert found.goodwill.sentence == "$38 granted in the last 90 days"
    assert found.withheld == ()


def test_a_percent_cost_is_a_share_of_the_order_within_its_bounds() -> None:
    refund = rule(suggest=[{"exception": "partial_refund"}])
    costs = {
        order: run([refund], context(order_value_cents=order)).suggestions[0].cost_cents
        for order in (2_000, 23_455, 60_000, 200_000)
    }
    # At least $5; 10%; then the catalog's $80 cap is cut to the $40 an agent may grant.
    assert costs == {2_000: 500, 23_455: 2_346, 60_000: 4_000, 200_000: 4_000}


def test_a_percent_cost_without_an_order_is_withheld() -> None:
    found = run([rule(suggest=[{"exception": "partial_refund"}])])
    assert found.suggestions == ()
    (withheld,) = found.withheld
    assert withheld.reason is WithheldReason.UNPRICED
    assert withheld.explanation == "no order to price 10% of the order, at least $5, at most $80"
    assert withheld.cost_cents is None


@pytest.mark.parametrize(("threshold", "needs_approval"), [(1_299, True), (1_300, False)])
def test_approval_is_needed_only_above_the_threshold(threshold: int, needs_approval: bool) -> None:
    (suggestion,) = run([rule(approval_threshold_cents=threshold)]).suggestions
    assert suggestion.needs_approval is needs_approval


def test_ranking_by_rule_priority_then_exception_priority_then_lower_cost() -> None:
    found = run(
        [
            rule("later", priority=1, suggest=[{"exception": "free_shipping"}]),
            rule(
                "first",
                priority=0,
                suggest=[
                    {"exception": "gift_card", "priority": 0},
                    {"exception": "store_credit", "priority": 0},
                    {"exception": "partial_refund", "priority": 1},
                ],
            ),
        ],
        context(order_value_cents=1_000),
    )
    assert [(s.rank, s.exception.key) for s in found.suggestions] == [
        (1, "store_credit"),  # $25 before $50 at the same priorities
        (2, "gift_card"),
        (3, "partial_refund"),  # a lower exception priority, though only $5
        (4, "free_shipping"),  # a later rule
    ]


def test_one_exception_from_several_rules_is_suggested_once_with_every_why() -> None:
    found = run(
        [
            rule("b", priority=1, conditions={"all": [LATE]}, approval_threshold_cents=0),
            rule("a", priority=0, conditions={"all": [HIGH, LATE]}),
            rule("c", priority=2, conditions={"all": [{**HIGH, "value": "low"}]}),  # no match
        ]
    )
    (suggestion,) = found.suggestions
    assert suggestion.rule.id == "a"
    assert [ref.id for ref in suggestion.also_from] == ["b"]
    assert suggestion.why.condition_words == (
        "tier is high",
        "ticket_subject has the word late",
    )
    assert not suggestion.needs_approval  # the kept rule's threshold decides


def test_a_cap_withholds_what_the_customer_had_as_often_as_allowed() -> None:
    grants = (
        Grant("free_shipping", 1_300, NOW - timedelta(days=30)),
        Grant("free_shipping", 1_300, NOW - timedelta(days=120)),  # before the window
    )
    found = run([rule(cap={"times": 1, "days": 90})], context(grants=grants))
    assert found.suggestions == ()
    (withheld,) = found.withheld
    assert withheld.reason is WithheldReason.CAP
    assert withheld.explanation == (
        "granted once in the last 90 days; the rule allows once per 90 days"
    )
    (suggestion,) = run([rule(cap={"times": 2, "days": 90})], context(grants=grants)).suggestions
    assert suggestion.why.cap == "2 of 2 in 90 days"


def test_what_one_rule_caps_another_rule_may_still_suggest() -> None:
    grants = (Grant("free_shipping", 1_300, NOW - timedelta(days=30)),)
    found = run(
        [rule("capped", cap={"times": 1, "days": 90}), rule("open", priority=1)],
        context(grants=grants),
    )
    (suggestion,) = found.suggestions
    assert suggestion.rule.id == "open"
    assert found.withheld == ()  # it is suggested, so not withheld


def test_a_budget_withholds_what_would_take_it_past_the_month() -> None:
    charged = {"field": "tier", "value": "high"}
    found = run(
        [rule(budget=charged)],
        context(budgets=(spent("tier", "high", 98_800, 100_000), spent("tier", "low", 0))),
    )
    (withheld,) = found.withheld
    assert withheld.reason is WithheldReason.BUDGET
    assert withheld.explanation == (
        "$13 more would pass the High value budget: $988 of $1,000 this month"
    )
    found = run([rule(budget=charged)], context(budgets=(spent("tier", "high", 98_700, 100_000),)))
    (suggestion,) = found.suggestions
    assert suggestion.budget is not None and suggestion.budget.running_out
    assert found.budgets_running_out == (suggestion.budget,)


def test_a_rule_charging_a_segment_without_a_budget_suggests_nothing() -> None:
    found = run([rule(budget={"field": "rfm_segment", "value": "champions"})])
    (withheld,) = found.withheld
    assert withheld.reason is WithheldReason.NO_BUDGET
    assert withheld.explanation == "no monthly budget is set for Champions"


def test_a_disabled_rule_suggests_nothing() -> None:
    assert run([rule(enabled=False)]).suggestions == ()


def test_ticket_actions_suggest_only_what_the_ticket_still_needs() -> None:
    found = run(
        [
            rule(
                "a",
                actions=[
                    {"kind": "raise_priority", "value": "high"},
                    {"kind": "add_tag", "value": "vip_care"},
                    {"kind": "add_tag", "value": "already"},
                ],
            ),
            rule(
                "b",
                priority=1,
                conditions={"all": [LATE]},
                actions=[
                    {"kind": "raise_priority", "value": "urgent"},
                    {"kind": "add_tag", "value": "vip_care"},
                    {"kind": "route_to_group", "value": "Senior care"},
                ],
            ),
        ],
        context(ticket=ticket(priority="normal", tags=("already",))),
    )
    assert [
        (a.action.describe(), a.rule.id, [r.id for r in a.also_from]) for a in found.actions
    ] == [
        ("Add tag vip_care", "a", ["b"]),
        ("Raise priority to urgent", "b", []),  # the highest of the raises
        ("Route to Senior care", "b", []),
    ]
    assert found.actions[0].conditions == parse_conditions({"all": [HIGH, LATE]}, FIELDS).all


def test_no_raise_for_a_ticket_already_that_urgent() -> None:
    raising = rule(suggest=[], actions=[{"kind": "raise_priority", "value": "high"}])
    assert run([raising], context(ticket=ticket(priority="urgent"))).actions == ()
    assert len(run([raising], context(ticket=ticket(priority=None))).actions) == 1


def test_numbers_equal_whatever_their_type_and_lists_equal_no_value() -> None:
    rules = [
        rule(
            "orders", conditions={"all": [{"field": "orders_12m", "operator": "in", "value": [14]}]}
        ),
        rule(
            "manager",
            suggest=[{"exception": "gift_card"}],
            conditions={
                "all": [{"field": "fact.account_manager", "operator": "is", "value": "Ann"}]
            },
        ),
    ]
    found = run(rules, context(customer={"orders_12m": 14.0}, facts={"account_manager": ["Ann"]}))
    assert [s.rule.id for s in found.suggestions] == ["orders"]


# Evaluating: properties -------------------------------------------------------------------

POOL = [
    HIGH,
    LATE,
    {"field": "tier", "operator": "in", "value": ["medium", "high"]},
    {"field": "tier", "operator": "is_not", "value": "low"},
    {"field": "ticket_priority", "operator": "in", "value": ["high", "urgent"]},
    {"field": "granted_count_90d", "operator": "lt", "value": 2},
    {"field": "personas", "operator": "contains", "value": "Gift buyer"},
    {"field": "fact.vip", "operator": "is", "value": True},
    {"field": "orders_12m", "operator": "is", "value": 12},
]
TIERS = ("low", "medium", "high")


@st.composite
def rule_sets(draw: st.DrawFn) -> list[Rule]:
    """Up to six rules over a few fields, with and without caps, budgets and thresholds."""
    rules = []
    for i in range(draw(st.integers(0, 6))):
        all_ = draw(st.lists(st.sampled_from(POOL), max_size=2))
        any_ = draw(st.lists(st.sampled_from(POOL), max_size=2))
        keys = draw(st.lists(st.sampled_from(sorted(BY_KEY)), min_size=1, max_size=3, unique=True))
        raw: dict[str, Any] = {
            "priority": draw(st.integers(0, 2)),
            "enabled": draw(st.sampled_from([True, True, False])),
            "conditions": {"all": all_, "any": any_} if all_ or any_ else {"all": [HIGH]},
            "suggest": [{"exception": k, "priority": draw(st.integers(0, 1))} for k in keys],
            "cap": draw(
                st.none()
                | st.builds(
                    lambda t, d: {"times": t, "days": d},
                    st.integers(1, 2),
                    st.sampled_from([30, 90]),
                )
            ),
            "budget": draw(
                st.none() | st.sampled_from(TIERS).map(lambda t: {"field": "tier", "value": t})
            ),
            "approval_threshold_cents": draw(st.sampled_from([None, 0, 1_300, 2_500, 4_000])),
        }
        rules.append(rule(f"r{i}", **raw))
    return rules


@st.composite
def contexts(draw: st.DrawFn) -> RuleContext:
    """A customer and ticket that some of the rules match, with goodwill and budgets."""
    budgets = []
    for tier in TIERS:
        if draw(st.booleans()):
            monthly = draw(st.sampled_from([0, 5_000, 100_000]))
            budgets.append(spent("tier", tier, draw(st.integers(0, monthly + 1_000)), monthly))
    grants = draw(
        st.lists(
            st.builds(
                Grant,
                st.sampled_from(sorted(BY_KEY)),
                st.integers(100, 5_000),
                st.integers(0, 120).map(lambda days: NOW - timedelta(days=days)),
            ),
            max_size=5,
        )
    )
    return context(
        ticket=ticket(
            subject=draw(st.sampled_from(["Late delivery", "Where is my order"])),
            priority=draw(st.sampled_from([None, "normal", "high", "urgent"])),
        ),
        customer={
            "tier": draw(st.sampled_from(TIERS)),
            "orders_12m": draw(st.sampled_from([None, 11, 12, 12.0])),
        },
        personas=draw(st.sampled_from([(), ("Gift buyer",)])),
        facts={"vip": draw(st.booleans())},
        grants=tuple(grants),
        budgets=tuple(budgets),
        order_value_cents=draw(st.none() | st.integers(0, 100_000)),
    )


def expected_refusal(rule: Rule, entry: ExceptionType, ctx: RuleContext) -> WithheldReason | None:
    """What the rule's limits say of suggesting the entry, worked out plainly."""
    cost = entry.estimate(ctx.order_value_cents)
    if cost is None:
        return WithheldReason.UNPRICED
    if rule.cap is not None:
        since = ctx.now - timedelta(days=rule.cap.days)
        used = [
            g for g in ctx.grants if g.exception == entry.key and since < g.granted_at <= ctx.now
        ]
        if len(used) >= rule.cap.times:
            return WithheldReason.CAP
    if rule.budget is not None:
        statuses = [b for b in ctx.budgets if b.budget.segment == rule.budget]
        if not statuses:
            return WithheldReason.NO_BUDGET
        if statuses[0].spent_cents + cost > statuses[0].budget.monthly_cents:
            return WithheldReason.BUDGET
    return None


@given(rule_sets(), contexts())
def test_caps_and_budgets_decide_exactly_what_is_suggested_and_what_is_withheld(
    rules: list[Rule], ctx: RuleContext
) -> None:
    found = run(rules, ctx)
    facts = ctx.rule_facts()
    verdicts = {
        (r.id, s.exception): expected_refusal(r, BY_KEY[s.exception], ctx)
        for r in rules
        if r.enabled and r.conditions.evaluate(facts).matched
        for s in r.suggest
    }
    allowed = {key for (_, key), verdict in verdicts.items() if verdict is None}
    assert {s.exception.key for s in found.suggestions} == allowed
    for s in found.suggestions:
        assert {s.rule.id, *(ref.id for ref in s.also_from)} == {
            rule_id
            for (rule_id, key), verdict in verdicts.items()
            if key == s.exception.key and verdict is None
        }
    assert {(w.rule.id, w.exception.key): w.reason for w in found.withheld} == {
        place: verdict
        for place, verdict in verdicts.items()
        if verdict is not None and place[1] not in allowed
    }


@given(rule_sets(), contexts())
def test_suggestions_are_ranked_priced_and_approved_as_their_best_rule_says(
    rules: list[Rule], ctx: RuleContext
) -> None:
    by_id = {r.id: r for r in rules}
    found = run(rules, ctx)

    def rule_order(rule_id: str, key: str) -> tuple[int, int, str]:
        rule = by_id[rule_id]
        priority = next(x.priority for x in rule.suggest if x.exception == key)
        return (rule.priority, priority, rule_id)

    def order(s: Suggestion) -> tuple[int, int, int, str]:
        rule_priority, priority, _ = rule_order(s.rule.id, s.exception.key)
        return (rule_priority, priority, s.cost_cents, s.exception.key)

    assert [s.rank for s in found.suggestions] == list(range(1, len(found.suggestions) + 1))
    assert [order(s) for s in found.suggestions] == sorted(order(s) for s in found.suggestions)
    for s in found.suggestions:
        kept = rule_order(s.rule.id, s.exception.key)
        assert all(kept < rule_order(ref.id, s.exception.key) for ref in s.also_from)
        limits = s.exception.editable
        assert limits is None or limits.min_cents <= s.cost_cents <= limits.max_cents
        threshold = by_id[s.rule.id].approval_threshold_cents
        assert s.needs_approval is (threshold is not None and s.cost_cents > threshold)


@given(rule_sets(), contexts(), st.randoms(use_true_random=False))
def test_the_same_inputs_give_the_same_answer_in_any_order(
    rules: list[Rule], ctx: RuleContext, rng: random.Random
) -> None:
    shuffled_rules, shuffled_catalog = list(rules), list(CATALOG)
    rng.shuffle(shuffled_rules)
    rng.shuffle(shuffled_catalog)
    assert run(rules, ctx) == evaluate(shuffled_rules, shuffled_catalog, ctx, currency="USD")


@given(rule_sets(), contexts(), st.data())
def test_disabling_a_rule_never_adds_a_suggestion(
    rules: list[Rule], ctx: RuleContext, data: st.DataObject
) -> None:
    if not rules:
        return
    index = data.draw(st.integers(0, len(rules) - 1))
    fewer = [*rules]
    fewer[index] = replace(rules[index], enabled=False)
    before = {s.exception.key for s in run(rules, ctx).suggestions}
    after = {s.exception.key for s in run(fewer, ctx).suggestions}
    assert after <= before
