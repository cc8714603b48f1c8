"""Rules in the console's words: the labels of the fields and operators a rule tests, a
condition as a sentence, and what changed from one version of a rule to the next.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plugin.customers.condition_rows import (
    FIELD_LABELS,
    GROUPS,
    OPERATOR_LABELS,
    ConditionField,
)
from plugin.domain.exceptions import SegmentRef
from plugin.domain.personas import OPERATORS, Condition, FieldSpec, Operator
from plugin.domain.recognition import segment_label
from plugin.domain.rules import FACT_PREFIX, HISTORY_WINDOWS_DAYS, PERSONAS_FIELD
from plugin.goodwill.form_input import CENTS, units

RULE_FIELD_LABELS: dict[str, str] = {
    **FIELD_LABELS,
    PERSONAS_FIELD: "Personas",
    "ticket_type": "Ticket type",
    "ticket_priority": "Ticket priority",
    "ticket_channel": "Ticket channel",
    "ticket_tags": "Ticket tags",
    "ticket_subject": "Ticket subject",
    "order_value_cents": "Value of the ticket's order",
    **{
        f"granted_count_{days}d": f"Exceptions granted, last {days} days"
        for days in HISTORY_WINDOWS_DAYS
    },
    **{
        f"granted_cents_{days}d": f"Amount granted, last {days} days"
        for days in HISTORY_WINDOWS_DAYS
    },
}
RULE_OPERATOR_LABELS: dict[Operator, str] = {
    **OPERATOR_LABELS,
    Operator.CONTAINS_WORD: "has the word",
    Operator.NOT_CONTAINS_WORD: "does not have the word",
    Operator.CONTAINS_ANY_WORD: "has one of the words",
}


# Amounts are typed and shown in the installation's currency, and stored in cents.
def is_amount_field(name: str) -> bool:
    """Whether a field holds an amount in cents."""
    return name.endswith("_cents")


def field_label(name: str) -> str:
    """The console's label of a field a rule tests; a mapped helpdesk fact says so."""
    if name.startswith(FACT_PREFIX):
        return f"Helpdesk fact: {name[len(FACT_PREFIX) :]}"
    return RULE_FIELD_LABELS.get(name, name)


def rule_condition_fields(
    fields: Mapping[str, FieldSpec], currency: str
) -> tuple[ConditionField, ...]:
    """The fields a rule can test, as the condition rows offer them."""
    return tuple(
        ConditionField(
            name=name,
            label=f"{field_label(name)} ({currency})"
            if is_amount_field(name)
            else field_label(name),
            kind=spec.kind,
            operators=OPERATORS[spec.kind],
            choices=tuple((choice, choice_label(name, choice)) for choice in spec.choices),
            in_currency=is_amount_field(name),
        )
        for name, spec in fields.items()
    )


def choice_label(name: str, choice: str) -> str:
    """A choice as the console shows it: personas and priorities as named, segments by label."""
    return choice if name in (PERSONAS_FIELD, "ticket_priority") else segment_label(choice)


# --- Versions side by side --------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One part of a rule that differs between two versions, each side in words."""

    part: str
    before: str
    after: str


_PART_LABELS = {
    "name": "Name",
    "enabled": "On",
    "priority": "Priority",
    "conditions": "Conditions",
    "suggest": "Suggests",
    "actions": "Ticket actions",
    "cap": "Cap per customer",
    "budget": "Budget segment",
    "approval_threshold_cents": "Approval above",
    "holdout_percent": "Holdout",
}


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> tuple[Change, ...]:
    """What changed from one version's definition to the next, part by part."""
    if before is None:
        return ()
    parts = [p for p in _PART_LABELS if p in before or p in after]
    parts += sorted(p for p in {*before, *after} if p not in _PART_LABELS)
    return tuple(
        Change(
            _PART_LABELS.get(part, part),
            _shown(part, before.get(part)),
            _shown(part, after.get(part)),
        )
        for part in parts
        if before.get(part) != after.get(part)
    )


def _shown(part: str, value: object) -> str:
    """Say a part of a definition in words; what does not read as expected is shown as JSON."""
    try:
        words = _part_words(part, value)
    except (KeyError, TypeError, ValueError, AttributeError):
        words = None
    return words if words is not None else _json(value)


def _part_words(part: str, value: object) -> str | None:
    if value is None:
        return "—"
    if part == "cap" and isinstance(value, Mapping):
        times, days = int(value["times"]), int(value["days"])
        return f"{'once' if times == 1 else f'{times} times'} per {days} days"
    if part == "budget" and isinstance(value, Mapping):
        return SegmentRef(str(value["field"]), str(value["value"])).label
    if part == "approval_threshold_cents" and isinstance(value, int):
        return units(value)
    if part == "holdout_percent" and isinstance(value, int):
        return f"{value}%"
    if part == "suggest" and isinstance(value, list):
        return ", ".join(f"{s['exception']} (priority {s.get('priority', 0)})" for s in value)
    if part == "actions" and isinstance(value, list):
        return ", ".join(f"{a['kind'].replace('_', ' ')} {a['value']}" for a in value)
    if part == "conditions" and isinstance(value, Mapping):
        groups = []
        for group in GROUPS:
            rows = [
                f"{field_label(c['field'])} {RULE_OPERATOR_LABELS[Operator(c['operator'])]} "
                f"{_shown_value(c.get('value'))}"
                for c in value.get(group, [])
            ]
            if rows:
                groups.append(f"{'All' if group == 'all' else 'Any'} of: " + "; ".join(rows))
        return " — ".join(groups) or "none"
    return None


def _shown_value(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(map(_shown_value, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _json(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def describe_condition(condition: Condition, currency: str) -> str:
    """Say a condition as the console labels it: "RFM segment is Champions"."""
    values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
    shown = ", ".join(_value_words(condition.field, value, currency) for value in values)
    operator = RULE_OPERATOR_LABELS.get(condition.operator, condition.operator.value)
    return f"{field_label(condition.field)} {operator} {shown}"


def _value_words(name: str, value: object, currency: str) -> str:
    if is_amount_field(name) and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{units(int(value)) if float(value).is_integer() else value / CENTS} {currency}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and name in FIELD_LABELS and name != "top_categories":
        return segment_label(value)
    return str(value)
