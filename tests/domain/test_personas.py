"""Personas: the condition language, its validation by path, and matching in priority order."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.domain.personas import (
    Condition,
    ConditionError,
    ConditionSet,
    FieldKind,
    FieldSpec,
    InvalidConditions,
    Operator,
    Persona,
    PersonaMatch,
    match_personas,
    parse_conditions,
)

FIELDS = {
    "tier": FieldSpec(FieldKind.CHOICE, ("low", "medium", "high")),
    "orders_12m": FieldSpec(FieldKind.NUMBER),
    "discount_share": FieldSpec(FieldKind.NUMBER),
    "behaviour_tags": FieldSpec(FieldKind.TAGS, ("seasonal", "deal_seeker")),
    "top_categories": FieldSpec(FieldKind.TAGS),
    "lifecycle_stage": FieldSpec(FieldKind.CHOICE, ("new", "active", "lapsed")),
}
FACTS: dict[str, object] = {
    "tier": "high",
    "orders_12m": 14,
    "discount_share": 0.25,
    "behaviour_tags": ("deal_seeker",),
    "top_categories": ("Tea", "Garden"),
    "lifecycle_stage": None,
}


def errors_of(raw: object) -> list[ConditionError]:
    with pytest.raises(InvalidConditions) as raised:
        parse_conditions(raw, FIELDS)
    return list(raised.value.errors)


def holds(field: str, operator: str, value: Any) -> bool:
    conditions = parse_conditions(
        {"all": [{"field": field, "operator": operator, "value": value}]}, FIELDS
    )
    return conditions.evaluate(FACTS).matched


# Parsing and validation -------------------------------------------------------------------


def test_a_valid_definition_parses_with_lists_as_tuples() -> None:
    parsed = parse_conditions(
        {
            "all": [{"field": "tier", "operator": "in", "value": ["medium", "high"]}],
            "any": [{"field": "orders_12m", "operator": "gte", "value": 12}],
        },
        FIELDS,
    )
    assert parsed == ConditionSet(
        all=(Condition("tier", Operator.IN, ("medium", "high")),),
        any=(Condition("orders_12m", Operator.GTE, 12),),
    )


@pytest.mark.parametrize(
    ("condition", "path", "message"),
    [
        ({"field": "shoe_size", "operator": "is", "value": 9}, "all[1].field", "unknown field"),
        ({"field": "tier", "operator": "gt", "value": "low"}, "all[1].operator", "does not"),
        ({"field": "tier", "operator": "like", "value": "low"}, "all[1].operator", "unknown"),
        ({"field": "tier", "operator": "is", "value": "gold"}, "all[1].value", "one of low"),
        ({"field": "orders_12m", "operator": "gt", "value": "12"}, "all[1].value", "a number"),
        ({"field": "orders_12m", "operator": "gt", "value": True}, "all[1].value", "a number"),
        ({"field": "tier", "operator": "in", "value": "high"}, "all[1].value", "non-empty list"),
        ({"field": "tier", "operator": "in", "value": []}, "all[1].value", "non-empty list"),
        ({"field": "tier", "operator": "in", "value": ["high", 3]}, "all[1].value[1]", "one of"),
        (
            {"field": "behaviour_tags", "operator": "contains", "value": "vip"},
            "all[1].value",
            "one of seasonal, deal_seeker",
        ),
        (
            {"field": "top_categories", "operator": "contains", "value": 7},
            "all[1].value",
            "a text value",
        ),
        ({"field": "tier", "operator": "is"}, "all[1].value", "missing"),
        ({"field": "tier", "operator": "is", "value": "low", "x": 1}, "all[1].x", "unknown key"),
        ("tier is high", "all[1]", "expected an object"),
    ],
)
def test_an_error_points_at_its_condition(condition: object, path: str, message: str) -> None:
    good = {"field": "tier", "operator": "is", "value": "high"}
    (error,) = errors_of({"all": [good, condition, good]})
    assert error.path == path
    assert message in error.message


def test_every_problem_is_reported_at_once() -> None:
    errors = errors_of(
        {
            "all": [{"field": "nope", "operator": "is", "value": 1}],
            "any": [{"field": "orders_12m", "operator": "contains", "value": 1}, {}],
            "none": [],
        }
    )
    assert [e.path for e in errors] == [
        "none",
        "all[0].field",
        "any[0].operator",
        "any[1].field",
        "any[1].operator",
        "any[1].value",
    ]


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ([], "", "expected an object"),
        ({}, "", "at least one condition"),
        ({"all": [], "any": []}, "", "at least one condition"),
        ({"all": {"field": "tier"}}, "all", "expected a list"),
    ],
)
def test_problems_with_the_whole_definition(raw: object, path: str, message: str) -> None:
    (error,) = errors_of(raw)
    assert error.path == path
    assert message in error.message


valid_conditions = st.sampled_from(
    [
        {"field": "tier", "operator": "is_not", "value": "low"},
        {"field": "orders_12m", "operator": "lte", "value": 3.5},
        {"field": "behaviour_tags", "operator": "not_contains", "value": "seasonal"},
        {"field": "lifecycle_stage", "operator": "not_in", "value": ["lapsed"]},
    ]
)
broken_conditions = st.sampled_from(
    [
        ({"field": "colour", "operator": "is", "value": "red"}, "field"),
        ({"field": "orders_12m", "operator": "contains", "value": 1}, "operator"),
        ({"field": "orders_12m", "operator": "gte", "value": None}, "value"),
        ({"field": "tier", "operator": "not_in", "value": ["low", "platinum"]}, "value[1]"),
    ]
)


@given(
    st.sampled_from(["all", "any"]),
    st.lists(valid_conditions, max_size=6),
    broken_conditions,
    st.data(),
)
def test_validation_points_at_the_broken_condition_wherever_it_is(
    group: str,
    conditions: list[dict[str, object]],
    broken: tuple[dict[str, object], str],
    data: st.DataObject,
) -> None:
    condition, part = broken
    index = data.draw(st.integers(min_value=0, max_value=len(conditions)))
    conditions.insert(index, condition)
    (error,) = errors_of({group: conditions})
    assert error.path == f"{group}[{index}].{part}"


# Evaluation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    [
        ("tier", "is", "high", True),
        ("tier", "is_not", "high", False),
        ("tier", "in", ["medium", "high"], True),
        ("tier", "not_in", ["medium", "high"], False),
        ("orders_12m", "gt", 14, False),
        ("orders_12m", "gte", 14, True),
        ("orders_12m", "lt", 14.5, True),
        ("orders_12m", "lte", 13, False),
        ("orders_12m", "is", 14.0, True),
        ("orders_12m", "in", [1, 14], True),
        ("discount_share", "gte", 0.25, True),
        ("behaviour_tags", "contains", "deal_seeker", True),
        ("behaviour_tags", "not_contains", "deal_seeker", False),
        ("top_categories", "contains", "Garden", True),
        ("top_categories", "contains", "garden", False),
    ],
)
def test_operators(field: str, operator: str, value: Any, expected: bool) -> None:
    assert holds(field, operator, value) is expected


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("is", "new", False),
        ("is_not", "new", True),
        ("in", ["new"], False),
        ("not_in", ["new"], True),
    ],
)
def test_a_missing_fact_holds_only_for_negative_operators(
    operator: str, value: Any, expected: bool
) -> None:
    assert holds("lifecycle_stage", operator, value) is expected


def test_a_missing_number_never_compares() -> None:
    condition = Condition("orders_12m", Operator.LT, 5)
    assert not condition.holds({})


def test_all_must_hold_and_one_of_any() -> None:
    conditions = parse_conditions(
        {
            "all": [{"field": "tier", "operator": "is", "value": "high"}],
            "any": [
                {"field": "orders_12m", "operator": "gt", "value": 100},
                {"field": "top_categories", "operator": "contains", "value": "Tea"},
            ],
        },
        FIELDS,
    )
    result = conditions.evaluate(FACTS)
    assert result.matched
    assert [(c.path, c.held) for c in result.checks] == [
        ("all[0]", True),
        ("any[0]", False),
        ("any[1]", True),
    ]
    assert not conditions.evaluate({**FACTS, "top_categories": ()}).matched
    assert not conditions.evaluate({**FACTS, "tier": "low"}).matched


def test_descriptions() -> None:
    assert Condition("tier", Operator.IN, ("medium", "high")).describe() == (
        "tier is one of medium, high"
    )
    assert Condition("orders_12m", Operator.GTE, 12).describe() == "orders_12m is at least 12"
    assert Condition("behaviour_tags", Operator.CONTAINS, "seasonal").describe() == (
        "behaviour_tags include seasonal"
    )


# Matching personas ------------------------------------------------------------------------


def persona(name: str, priority: int, *conditions: dict[str, object]) -> Persona:
    return Persona(name, parse_conditions({"all": list(conditions)}, FIELDS), priority)


def test_personas_match_in_priority_order_and_a_customer_may_match_several() -> None:
    personas = [
        persona(
            "Bargain regular",
            2,
            {"field": "behaviour_tags", "operator": "contains", "value": "deal_seeker"},
        ),
        persona(
            "Tea lover", 1, {"field": "top_categories", "operator": "contains", "value": "Tea"}
        ),
        persona("Dormant", 0, {"field": "lifecycle_stage", "operator": "is", "value": "lapsed"}),
        persona("Also priority 1", 1, {"field": "tier", "operator": "is", "value": "high"}),
    ]
    assert match_personas(personas, FACTS) == (
        PersonaMatch("Also priority 1", ("tier is high",)),
        PersonaMatch("Tea lover", ("top_categories include Tea",)),
        PersonaMatch("Bargain regular", ("behaviour_tags include deal_seeker",)),
    )


def test_no_personas_no_matches() -> None:
    assert match_personas([], FACTS) == ()


conditions_on_facts = st.sampled_from(
    [
        Condition("tier", Operator.IS, "high"),
        Condition("tier", Operator.IN, ("medium", "high")),
        Condition("orders_12m", Operator.GTE, 4),
        Condition("behaviour_tags", Operator.CONTAINS, "seasonal"),
        Condition("lifecycle_stage", Operator.NOT_IN, ("lapsed",)),
    ]
)
facts_drawn = st.fixed_dictionaries(
    {
        "tier": st.sampled_from(["low", "medium", "high"]),
        "orders_12m": st.integers(0, 8),
        "behaviour_tags": st.sampled_from([(), ("seasonal",), ("deal_seeker",)]),
        "lifecycle_stage": st.sampled_from(["active", "lapsed"]),
    }
)


@given(
    st.lists(conditions_on_facts, max_size=4),
    st.lists(conditions_on_facts, max_size=4),
    facts_drawn,
)
def test_held_when_matched_says_what_evaluate_says_of_a_matching_set(
    all_of: list[Condition], any_of: list[Condition], facts: dict[str, object]
) -> None:
    conditions = ConditionSet(all=tuple(all_of), any=tuple(any_of))
    if conditions.matches(facts):
        assert conditions.held_when_matched(facts) == conditions.evaluate(facts).held
