"""The console's form for a rule: read as typed, turned into the definition the domain
validates, its problems keyed by input, and a stored version put back into the form.

No Flask here. Condition rows are named as the persona form has them (`all-0-field`); each
problem, the form's own or the domain's at its path (`conditions.all[1].value`), is keyed by the
input it belongs to, so the console shows it next to that input. Stored definitions go back
into the form for editing, also when they no longer validate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from plugin.customers.condition_rows import GROUPS, LIST_OPERATORS, ConditionRow
from plugin.domain.personas import OPERATORS, ConditionError, FieldKind, FieldSpec, Operator
from plugin.goodwill.form_input import CENTS, add_error, parse_units, units, whole_number
from plugin.goodwill.rule_words import (
    RULE_OPERATOR_LABELS,
    choice_label,
    field_label,
    is_amount_field,
)

_PATH = re.compile(r"^(?P<group>all|any)\[(?P<index>\d+)\]\.(?P<part>field|operator|value)")

RULE_LIST_OPERATORS = (*LIST_OPERATORS, Operator.CONTAINS_ANY_WORD)
_MISSING = {
    "field": "Choose a field.",
    "operator": "Choose how to compare.",
    "value": "Enter a value.",
}


# --- Rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleForm:
    """A rule as the form holds it. `suggest` maps catalog keys to the priority typed."""

    key: str = ""
    name: str = ""
    priority: str = "0"
    enabled: bool = True
    all: tuple[ConditionRow, ...] = ()
    any: tuple[ConditionRow, ...] = ()
    suggest: Mapping[str, str] = field(default_factory=dict)
    raise_priority: str = ""
    add_tags: str = ""
    route_to_group: str = ""
    cap_times: str = ""
    cap_days: str = ""
    budget: str = ""
    approval_threshold: str = ""
    holdout_percent: str = ""
    note: str = ""

    def rows(self, group: str) -> tuple[ConditionRow, ...]:
        return self.all if group == "all" else self.any


_CONDITION_INPUT = re.compile(r"^(all|any)-(\d{1,4})-(field|operator|value)$")
_SUGGEST_INPUT = re.compile(r"^suggest-([a-z][a-z0-9_]{0,39})$")


def read_rule_form(submitted: Mapping[str, str], *, key: str | None = None) -> RuleForm:
    """Read the rule form; condition rows named `all-0-field` as the persona form's, blank rows
    left out; a suggested exception is a ticked `suggest-<key>` with `suggest-<key>-priority`.
    """
    parts: dict[str, dict[int, dict[str, str]]] = {group: {} for group in GROUPS}
    suggest: dict[str, str] = {}
    for name, value in submitted.items():
        if match := _CONDITION_INPUT.match(name):
            group, index, part = match.groups()
            parts[group].setdefault(int(index), {})[part] = value
        elif (match := _SUGGEST_INPUT.match(name)) and value == "on":
            suggest[match[1]] = submitted.get(f"suggest-{match[1]}-priority", "0")
    rows = {
        group: tuple(
            row
            for row in (ConditionRow(**parts[group][index]) for index in sorted(parts[group]))
            if not row.is_blank()
        )
        for group in GROUPS
    }
    text = {
        name: submitted.get(name, "")
        for name in (
            "name",
            "priority",
            "raise_priority",
            "add_tags",
            "route_to_group",
            "cap_times",
            "cap_days",
            "budget",
            "approval_threshold",
            "holdout_percent",
            "note",
        )
    }
    return RuleForm(
        key=key if key is not None else submitted.get("key", "").strip(),
        enabled=submitted.get("enabled") == "on",
        all=rows["all"],
        any=rows["any"],
        suggest=suggest,
        **text,
    )


def rule_definition(
    form: RuleForm, fields: Mapping[str, FieldSpec]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The definition to validate and store, and the problems only the form can see.

    Optional parts are left out when blank, so stored definitions (and exports) stay short.
    """
    errors: dict[str, str] = {}
    definition: dict[str, Any] = {"name": form.name.strip(), "enabled": form.enabled}
    priority = whole_number(form.priority or "0")
    if priority is None:
        errors["priority"] = "Enter a whole number from 0 to 9,999, such as 0 or 10."
    else:
        definition["priority"] = priority
    definition["conditions"] = {
        group: [_raw_condition(row, fields) for row in form.rows(group)] for group in GROUPS
    }
    suggest = []
    for key, typed in form.suggest.items():
        number = whole_number(typed or "0")
        if number is None:
            errors[f"suggest-{key}-priority"] = "Enter a whole number, such as 0 or 1."
        suggest.append({"exception": key, "priority": number or 0})
    if suggest:
        definition["suggest"] = suggest
    actions = []
    if form.raise_priority:
        actions.append({"kind": "raise_priority", "value": form.raise_priority})
    for tag in (t.strip() for t in form.add_tags.split(",") if t.strip()):
        actions.append({"kind": "add_tag", "value": tag})
    if form.route_to_group.strip():
        actions.append({"kind": "route_to_group", "value": form.route_to_group.strip()})
    if actions:
        definition["actions"] = actions
    if form.cap_times.strip() or form.cap_days.strip():
        times, days = whole_number(form.cap_times), whole_number(form.cap_days)
        if times is None:
            errors["cap_times"] = "Enter how many times, such as 1."
        if days is None:
            errors["cap_days"] = "Enter a number of days, such as 90."
        definition["cap"] = {"times": times, "days": days}
    if form.budget:
        field_name, _, value = form.budget.partition(":")
        definition["budget"] = {"field": field_name, "value": value}
    if form.approval_threshold.strip():
        cents = parse_units(form.approval_threshold)
        if cents is None:
            errors["approval_threshold"] = "Enter an amount, such as 50 or 49.99."
        definition["approval_threshold_cents"] = cents
    if form.holdout_percent.strip() not in ("", "0"):
        share = whole_number(form.holdout_percent.strip().removesuffix("%").strip())
        if share is None:
            errors["holdout_percent"] = "Enter a whole percentage from 0 to 50, such as 10."
        definition["holdout_percent"] = share
    return definition, errors


def _raw_condition(row: ConditionRow, fields: Mapping[str, FieldSpec]) -> dict[str, object]:
    """The stored shape of a row; blank parts left out, so the parser reports them missing."""
    condition: dict[str, object] = {}
    if row.field:
        condition["field"] = row.field
    if row.operator:
        condition["operator"] = row.operator
    if row.value.strip():
        condition["value"] = _typed_value(row, fields.get(row.field))
    return condition


def _typed_value(row: ConditionRow, spec: FieldSpec | None) -> object:
    """The value as the field holds it; text the parser will refuse is left as typed."""
    is_list = row.operator in RULE_LIST_OPERATORS
    parts = (
        [p.strip() for p in row.value.split(",") if p.strip()] if is_list else [row.value.strip()]
    )
    typed: list[object]
    if spec is not None and spec.kind is FieldKind.NUMBER:
        typed = [_number(part, cents=is_amount_field(row.field)) for part in parts]
    elif spec is not None and spec.kind is FieldKind.FLAG:
        typed = [{"yes": True, "no": False}.get(part.lower(), part) for part in parts]
    elif spec is not None and spec.choices:
        typed = [_choice(part, spec.choices) for part in parts]
    else:
        typed = list(parts)
    return typed if is_list else typed[0]


def _choice(text: str, choices: tuple[str, ...]) -> str:
    if text in choices:
        return text
    slug = re.sub(r"\s+", "_", text.strip().lower()).replace("'", "")
    return slug if slug in choices else text


def _number(text: str, *, cents: bool) -> object:
    try:
        number = Decimal(text.replace(",", "") if cents else text)
    except InvalidOperation:
        return text
    if not number.is_finite():
        return text
    if cents:
        return int((number * CENTS).to_integral_value())
    return int(number) if number == number.to_integral_value() else float(number)


def rule_errors(
    problems: Iterable[ConditionError], form: RuleForm, fields: Mapping[str, FieldSpec]
) -> dict[str, str]:
    """The domain's problems with a rule, keyed by the form's inputs."""
    errors: dict[str, str] = {}
    suggested = list(form.suggest)
    for problem in problems:
        path, message = problem.path, problem.message
        if path.startswith("conditions"):
            inner = path[len("conditions") :].lstrip(".")
            match = _PATH.match(inner)
            if match is None:
                text = "Add at least one condition" if "at least one" in message else message
                add_error(errors, "conditions", f"{inner}: {text}" if inner else text)
                continue
            key = f"{match['group']}[{match['index']}].{match['part']}"
            part = match["part"]
            row = form.rows(match["group"])[int(match["index"])]
            spec = fields.get(row.field)
            if message == "missing":
                add_error(errors, key, _MISSING[part])
            elif part == "operator" and spec is not None and row.operator in tuple(Operator):
                allowed = ", ".join(f"“{RULE_OPERATOR_LABELS[o]}”" for o in OPERATORS[spec.kind])
                add_error(
                    errors,
                    key,
                    f"“{RULE_OPERATOR_LABELS[Operator(row.operator)]}” does not apply to "
                    f"{field_label(row.field)}; choose {allowed}",
                )
            else:
                add_error(errors, key, message)
            continue
        match = re.match(r"^suggest\[(\d+)\]\.(exception|priority)$", path)
        if match and int(match[1]) < len(suggested):
            exception = suggested[int(match[1])]
            suffix = "-priority" if match[2] == "priority" else ""
            add_error(errors, f"suggest-{exception}{suffix}", message)
            continue
        if path.startswith("actions"):
            add_error(errors, _action_input(path, form), message)
            continue
        add_error(
            errors, _RULE_PATHS.get(path, "name" if not path else path.split(".")[0]), message
        )
    return errors


_RULE_PATHS = {
    "name": "name",
    "priority": "priority",
    "enabled": "enabled",
    "suggest": "suggest",
    "cap": "cap_times",
    "cap.times": "cap_times",
    "cap.days": "cap_days",
    "budget": "budget",
    "budget.field": "budget",
    "budget.value": "budget",
    "approval_threshold_cents": "approval_threshold",
    "holdout_percent": "holdout_percent",
    "key": "key",
}


def _action_input(path: str, form: RuleForm) -> str:
    """Which input an action's problem belongs to: actions come in the form's order."""
    match = re.match(r"^actions\[(\d+)\]", path)
    index = int(match[1]) if match else 0
    inputs = (
        (["raise_priority"] if form.raise_priority else [])
        + ["add_tags" for t in form.add_tags.split(",") if t.strip()]
        + (["route_to_group"] if form.route_to_group.strip() else [])
    )
    return inputs[index] if index < len(inputs) else "suggest"


def rule_form(key: str, definition: Mapping[str, Any], fields: Mapping[str, FieldSpec]) -> RuleForm:
    """The form for a stored rule version, tolerating a definition that no longer validates."""
    conditions = definition.get("conditions")
    raw = conditions if isinstance(conditions, Mapping) else {}
    groups = {
        group: tuple(_stored_row(item, fields) for item in _list(raw.get(group)))
        for group in GROUPS
    }
    suggest = {
        str(item.get("exception")): str(item.get("priority", 0))
        for item in _list(definition.get("suggest"))
    }
    actions = _list(definition.get("actions"))
    cap = definition.get("cap") if isinstance(definition.get("cap"), Mapping) else {}
    budget = definition.get("budget") if isinstance(definition.get("budget"), Mapping) else None
    threshold = definition.get("approval_threshold_cents")
    return RuleForm(
        key=key,
        name=str(definition.get("name", "")),
        priority=str(definition.get("priority", 0)),
        enabled=definition.get("enabled", True) is not False,
        all=groups["all"],
        any=groups["any"],
        suggest=suggest,
        raise_priority=next(
            (str(a["value"]) for a in actions if a.get("kind") == "raise_priority"), ""
        ),
        add_tags=", ".join(str(a["value"]) for a in actions if a.get("kind") == "add_tag"),
        route_to_group=next(
            (str(a["value"]) for a in actions if a.get("kind") == "route_to_group"), ""
        ),
        cap_times="" if not cap else str(cap.get("times", "")),
        cap_days="" if not cap else str(cap.get("days", "")),
        budget=f"{budget.get('field')}:{budget.get('value')}" if budget else "",
        approval_threshold="" if threshold is None else units(threshold),
        holdout_percent=str(definition.get("holdout_percent") or ""),
    )


def _list(raw: object) -> list[Mapping[str, Any]]:
    return [item for item in raw if isinstance(item, Mapping)] if isinstance(raw, list) else []


def _stored_row(item: Mapping[str, object], fields: Mapping[str, FieldSpec]) -> ConditionRow:
    name = str(item.get("field", ""))
    value = item.get("value", "")
    values = value if isinstance(value, list) else [value]
    spec = fields.get(name)
    shown: list[str] = []
    for v in values:
        if is_amount_field(name) and isinstance(v, int | float) and not isinstance(v, bool):
            shown.append(units(int(v)) if float(v).is_integer() else str(v / CENTS))
        elif isinstance(v, bool):
            shown.append("yes" if v else "no")
        elif spec is not None and spec.choices and isinstance(v, str) and v in spec.choices:
            shown.append(choice_label(name, v))
        else:
            shown.append(str(v))
    return ConditionRow(field=name, operator=str(item.get("operator", "")), value=", ".join(shown))
