"""Personas: named micro-segments that supervisors define with conditions over a customer's facts.

The condition language, like a helpdesk trigger's: an `all` list that must every one hold and
an `any` list of which at least one must (when it has any), each condition being
`{"field": ..., "operator": ..., "value": ...}`. Fields come from a catalogue that gives each
one a kind; the kind decides the operators and values allowed. Validation reports every
problem against the condition it is in (`all[2].value`), so a form can show it in place.
Rules use the same language over more fields: a ticket's subject (TEXT, tested for words) and
yes/no facts such as a mapped helpdesk tag (FLAG).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import TypeGuard

from plugin.domain.wording import N_


class FieldKind(StrEnum):
    CHOICE = "choice"  # one value from a fixed list
    NUMBER = "number"
    TAGS = "tags"  # a set of strings, from a fixed list or free
    TEXT = "text"  # free text, such as a ticket's subject, tested for the words in it
    FLAG = "flag"  # yes or no, such as a helpdesk tag mapped to a fact


class Operator(StrEnum):
    IS = "is"
    IS_NOT = "is_not"
    IN = "in"
    NOT_IN = "not_in"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    CONTAINS_WORD = "contains_word"
    NOT_CONTAINS_WORD = "not_contains_word"
    CONTAINS_ANY_WORD = "contains_any_word"


OPERATORS: dict[FieldKind, tuple[Operator, ...]] = {
    FieldKind.CHOICE: (Operator.IS, Operator.IS_NOT, Operator.IN, Operator.NOT_IN),
    FieldKind.NUMBER: (
        Operator.IS,
        Operator.IS_NOT,
        Operator.IN,
        Operator.NOT_IN,
        Operator.GT,
        Operator.GTE,
        Operator.LT,
        Operator.LTE,
    ),
    FieldKind.TAGS: (Operator.CONTAINS, Operator.NOT_CONTAINS),
    FieldKind.TEXT: (
        Operator.CONTAINS_WORD,
        Operator.NOT_CONTAINS_WORD,
        Operator.CONTAINS_ANY_WORD,
    ),
    FieldKind.FLAG: (Operator.IS, Operator.IS_NOT),
}
_LIST_OPERATORS = (Operator.IN, Operator.NOT_IN, Operator.CONTAINS_ANY_WORD)
_COMPARISONS: dict[Operator, Callable[[float, float], bool]] = {
    Operator.GT: lambda actual, value: actual > value,
    Operator.GTE: lambda actual, value: actual >= value,
    Operator.LT: lambda actual, value: actual < value,
    Operator.LTE: lambda actual, value: actual <= value,
}
# A missing fact (no orders, so no lifecycle stage) satisfies only the negative operators.
_HOLD_ON_MISSING = (Operator.IS_NOT, Operator.NOT_IN)
# The operators in words, marked for the catalogs (plugin.domain.wording).
OPERATOR_WORDS = {
    Operator.IS: N_("is"),
    Operator.IS_NOT: N_("is not"),
    Operator.IN: N_("is one of"),
    Operator.NOT_IN: N_("is none of"),
    Operator.GT: N_("is more than"),
    Operator.GTE: N_("is at least"),
    Operator.LT: N_("is less than"),
    Operator.LTE: N_("is at most"),
    Operator.CONTAINS: N_("include"),
    Operator.NOT_CONTAINS: N_("do not include"),
    Operator.CONTAINS_WORD: N_("has the word"),
    Operator.NOT_CONTAINS_WORD: N_("does not have the word"),
    Operator.CONTAINS_ANY_WORD: N_("has one of the words"),
}
# A word is a run of letters, digits and underscores; a phrase's words must come in order.
_WORD = re.compile(r"\w+")

ConditionValue = str | int | float | tuple[str | int | float, ...]


@dataclass(frozen=True)
class FieldSpec:
    """What a field holds; `choices` lists the allowed values (empty: any string)."""

    kind: FieldKind
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConditionError:
    """One problem in a definition, at a path such as `all[2].value`."""

    path: str
    message: str


class InvalidConditions(ValueError):
    """A definition that does not validate, with every problem found in it."""

    def __init__(self, errors: Sequence[ConditionError]) -> None:
        super().__init__("; ".join(f"{e.path or 'conditions'}: {e.message}" for e in errors))
        self.errors = tuple(errors)


@dataclass(frozen=True)
class Condition:
    """One comparison of a fact with a value."""

    field: str
    operator: Operator
    value: ConditionValue

    def holds(self, facts: Mapping[str, object]) -> bool:
        """Compare the fact; a missing fact holds only for is_not and not_in."""
        actual, value = facts.get(self.field), self.value
        if actual is None:
            return self.operator in _HOLD_ON_MISSING
        if compare := _COMPARISONS.get(self.operator):
            return _is_number(actual) and _is_number(value) and compare(actual, value)
        match self.operator:
            case Operator.IS:
                return actual == value
            case Operator.IS_NOT:
                return actual != value
            case Operator.IN:
                return isinstance(value, tuple) and actual in value
            case Operator.NOT_IN:
                return isinstance(value, tuple) and actual not in value
            case Operator.CONTAINS:
                return isinstance(actual, tuple) and value in actual
            case Operator.NOT_CONTAINS:
                return isinstance(actual, tuple) and value not in actual
            case Operator.CONTAINS_WORD:
                return isinstance(actual, str) and _words(str(value)) in _words(actual)
            case Operator.NOT_CONTAINS_WORD:
                return isinstance(actual, str) and _words(str(value)) not in _words(actual)
            case _:
                return (
                    isinstance(actual, str)
                    and isinstance(value, tuple)
                    and any(_words(str(word)) in _words(actual) for word in value)
                )

    def describe(self) -> str:
        """Say the condition in words: "tier is high", "orders_12m is at least 12"."""
        return f"{self.field} {OPERATOR_WORDS[self.operator]} {shown_value(self.value)}"


def shown_value(value: ConditionValue) -> str:
    """Say a condition's value: lists joined with commas, true and false as yes and no."""
    if isinstance(value, tuple):
        return ", ".join(map(shown_value, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@lru_cache(maxsize=4096)
def _words(text: str) -> str:
    """A text's words, lowercased, between single spaces: " late delivery ", for phrase search.

    Cached because the same subject is searched by every rule that tests it.
    """
    return " " + " ".join(_WORD.findall(text.casefold())) + " "


@dataclass(frozen=True)
class ConditionCheck:
    """Whether one condition held, and where it sits in the definition."""

    path: str
    condition: Condition
    held: bool


@dataclass(frozen=True)
class ConditionResult:
    """The outcome of a condition set, with every condition's check."""

    matched: bool
    checks: tuple[ConditionCheck, ...]

    @property
    def held(self) -> tuple[Condition, ...]:
        """The conditions that held."""
        return tuple(check.condition for check in self.checks if check.held)


@dataclass(frozen=True)
class ConditionSet:
    """Conditions that must all hold, and conditions of which one must (if there are any)."""

    all: tuple[Condition, ...] = ()
    any: tuple[Condition, ...] = ()

    def matches(self, facts: Mapping[str, object]) -> bool:
        """Whether the set holds, stopping at the first condition that decides it.

        The same answer as `evaluate(facts).matched`, for screening many sets quickly.
        """
        return all(c.holds(facts) for c in self.all) and (
            not self.any or any(c.holds(facts) for c in self.any)
        )

    def held_when_matched(self, facts: Mapping[str, object]) -> tuple[Condition, ...]:
        """The conditions that held, for a set `matches` already said holds: every `all` one
        (matching proved them) and the `any` ones that hold. As `evaluate(facts).held`, without
        checking again what matching proved or building each check's record."""
        return self.all + tuple(c for c in self.any if c.holds(facts))

    def evaluate(self, facts: Mapping[str, object]) -> ConditionResult:
        """Check every condition against the facts."""
        all_checks = _checks("all", self.all, facts)
        any_checks = _checks("any", self.any, facts)
        matched = all(c.held for c in all_checks) and (
            not any_checks or any(c.held for c in any_checks)
        )
        return ConditionResult(matched, all_checks + any_checks)


def _checks(
    group: str, conditions: tuple[Condition, ...], facts: Mapping[str, object]
) -> tuple[ConditionCheck, ...]:
    """Check one group's conditions, naming each by its path."""
    return tuple(
        ConditionCheck(f"{group}[{i}]", condition, condition.holds(facts))
        for i, condition in enumerate(conditions)
    )


def parse_conditions(raw: object, fields: Mapping[str, FieldSpec]) -> ConditionSet:
    """Validate a definition such as `{"all": [{"field": ..., ...}], "any": [...]}`.

    Raises InvalidConditions listing every problem, each at its path.
    """
    errors: list[ConditionError] = []
    if not isinstance(raw, Mapping):
        raise InvalidConditions([ConditionError("", "expected an object with all and any lists")])
    groups: dict[str, list[Condition]] = {"all": [], "any": []}
    for key in raw:
        if key not in groups:
            errors.append(ConditionError(str(key), "unknown key; expected all or any"))
    for group, parsed in groups.items():
        items = raw.get(group, [])
        if not isinstance(items, list):
            errors.append(ConditionError(group, "expected a list of conditions"))
            continue
        for i, item in enumerate(items):
            condition = _parse_condition(item, f"{group}[{i}]", fields, errors)
            if condition is not None:
                parsed.append(condition)
    if not errors and not groups["all"] and not groups["any"]:
        errors.append(ConditionError("", "needs at least one condition"))
    if errors:
        raise InvalidConditions(errors)
    return ConditionSet(all=tuple(groups["all"]), any=tuple(groups["any"]))


def _parse_condition(
    item: object, path: str, fields: Mapping[str, FieldSpec], errors: list[ConditionError]
) -> Condition | None:
    """Parse one condition, adding its problems to `errors`; None when it has any."""
    if not isinstance(item, Mapping):
        errors.append(ConditionError(path, "expected an object with field, operator and value"))
        return None
    found = len(errors)
    for key in item:
        if key not in ("field", "operator", "value"):
            errors.append(ConditionError(f"{path}.{key}", "unknown key"))
    for key in ("field", "operator", "value"):
        if key not in item:
            errors.append(ConditionError(f"{path}.{key}", "missing"))
    name, operator_name, value = item.get("field"), item.get("operator"), item.get("value")
    spec = fields.get(name) if isinstance(name, str) else None
    if "field" in item and spec is None:
        errors.append(ConditionError(f"{path}.field", f"unknown field {name!r}"))
    operator = Operator(operator_name) if operator_name in tuple(Operator) else None
    if "operator" in item and operator is None:
        errors.append(ConditionError(f"{path}.operator", f"unknown operator {operator_name!r}"))
    if spec is not None and operator is not None and operator not in OPERATORS[spec.kind]:
        allowed = ", ".join(OPERATORS[spec.kind])
        errors.append(
            ConditionError(
                f"{path}.operator", f"{operator} does not apply to {name}; use one of {allowed}"
            )
        )
    elif spec is not None and operator is not None and "value" in item:
        _check_value(value, spec, operator, f"{path}.value", errors)
    if len(errors) > found:
        return None
    assert isinstance(name, str) and operator is not None
    return Condition(name, operator, _freeze(value))


def _check_value(
    value: object, spec: FieldSpec, operator: Operator, path: str, errors: list[ConditionError]
) -> None:
    """Add an error for a value of the wrong type for the field and operator."""
    if operator in _LIST_OPERATORS:
        if not isinstance(value, list) or not value:
            errors.append(
                ConditionError(path, f"expected a non-empty list, each {_expected(spec)}")
            )
            return
        for i, element in enumerate(value):
            if not _fits(element, spec):
                errors.append(ConditionError(f"{path}[{i}]", f"expected {_expected(spec)}"))
    elif not _fits(value, spec):
        errors.append(ConditionError(path, f"expected {_expected(spec)}"))


def _fits(value: object, spec: FieldSpec) -> bool:
    """Whether a single value suits the field."""
    if spec.kind is FieldKind.NUMBER:
        return _is_number(value)
    if spec.kind is FieldKind.FLAG:
        return isinstance(value, bool)
    if spec.kind is FieldKind.TEXT:
        return isinstance(value, str) and _WORD.search(value) is not None
    return isinstance(value, str) and (not spec.choices or value in spec.choices)


def _expected(spec: FieldSpec) -> str:
    """Say what a single value of the field must be."""
    if spec.kind is FieldKind.NUMBER:
        return "a number"
    if spec.kind is FieldKind.FLAG:
        return "true or false"
    if spec.kind is FieldKind.TEXT:
        return "a word or phrase"
    if spec.choices:
        return "one of " + ", ".join(spec.choices)
    return "a text value"


def _is_number(value: object) -> TypeGuard[int | float]:
    """Whether a value is a number; JSON true/false arrive as bool, which Python counts as int."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _freeze(value: object) -> ConditionValue:
    """Make a validated value hashable: lists become tuples."""
    if isinstance(value, list):
        return tuple(value)
    assert isinstance(value, str | int | float)
    return value


@dataclass(frozen=True)
class Persona:
    """A named micro-segment; a lower `priority` number is matched first."""

    name: str
    conditions: ConditionSet
    priority: int = 0


@dataclass(frozen=True)
class PersonaMatch:
    """A persona a customer belongs to, and the conditions that put them there."""

    name: str
    held: tuple[str, ...]


def match_personas(
    personas: Iterable[Persona], facts: Mapping[str, object]
) -> tuple[PersonaMatch, ...]:
    """Return every persona whose conditions hold, in priority order (then by name)."""
    matches = []
    for persona in sorted(personas, key=lambda p: (p.priority, p.name)):
        result = persona.conditions.evaluate(facts)
        if result.matched:
            matches.append(PersonaMatch(persona.name, tuple(c.describe() for c in result.held)))
    return tuple(matches)
