"""The console's forms for exceptions: catalog entries, segment budgets and rules.

No Flask here. Each form is read as typed (amounts in currency units, lists as lines or commas,
condition rows as the persona form has them), turned into the definition the domain validates
(`parse_exception_type`, `parse_budget`, `parse_rule`), and every problem, the form's own or
the domain's at its path (`cost.percent`, `conditions.all[1].value`), is keyed by the input it
belongs to, so the console shows it next to that input. Stored definitions go back into forms
for editing, also when they no longer validate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from plugin.customers.segment_settings import (
    FIELD_LABELS,
    GROUPS,
    LIST_OPERATORS,
    OPERATOR_LABELS,
    ConditionField,
    ConditionRow,
)
from plugin.domain.exceptions import BUDGET_FIELDS, CostKind, SegmentRef
from plugin.domain.field_errors import FieldErrors
from plugin.domain.personas import (
    OPERATORS,
    Condition,
    ConditionError,
    FieldKind,
    FieldSpec,
    Operator,
)
from plugin.domain.recognition import segment_label
from plugin.domain.rules import FACT_PREFIX, HISTORY_WINDOWS_DAYS, PERSONAS_FIELD

CENTS = 100
# Lists a form takes as text: one "code: Label" a line for reasons, commas for tags.
_REASON_LINE = re.compile(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$")
_PATH = re.compile(r"^(?P<group>all|any)\[(?P<index>\d+)\]\.(?P<part>field|operator|value)")

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
# Amounts are typed and shown in the installation's currency, and stored in cents.
RULE_OPERATOR_LABELS: dict[Operator, str] = {
    **OPERATOR_LABELS,
    Operator.CONTAINS_WORD: "has the word",
    Operator.NOT_CONTAINS_WORD: "does not have the word",
    Operator.CONTAINS_ANY_WORD: "has one of the words",
}
RULE_LIST_OPERATORS = (*LIST_OPERATORS, Operator.CONTAINS_ANY_WORD)
_MISSING = {
    "field": "Choose a field.",
    "operator": "Choose how to compare.",
    "value": "Enter a value.",
}


def is_amount_field(name: str) -> bool:
    return name.endswith("_cents")


def field_label(name: str) -> str:
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
            choices=tuple((choice, _choice_label(name, choice)) for choice in spec.choices),
            in_currency=is_amount_field(name),
        )
        for name, spec in fields.items()
    )


def _choice_label(name: str, choice: str) -> str:
    return choice if name in (PERSONAS_FIELD, "ticket_priority") else segment_label(choice)


class InvalidForm(FieldErrors):
    """A form with problems: one message per input, keyed as the form names its inputs."""


def _sentence(message: str) -> str:
    text = message.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _add(errors: dict[str, str], key: str, message: str) -> None:
    errors[key] = f"{errors[key]} {_sentence(message)}" if key in errors else _sentence(message)


def parse_units(text: str) -> int | None:
    """An amount as typed ("12.50", "1,500") in cents; None when it is not one."""
    cleaned = text.strip().replace(",", "")
    try:
        units = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not units.is_finite() or units < 0 or units != units.quantize(Decimal("0.01")):
        return None
    return int(units * CENTS)


def units(cents: object) -> str:
    """Cents as the form shows them: 1500 -> "15", 1250 -> "12.50"."""
    if not isinstance(cents, int) or isinstance(cents, bool):
        return "" if cents is None else str(cents)
    return str(cents // CENTS) if cents % CENTS == 0 else f"{Decimal(cents) / CENTS:.2f}"


def _whole(text: str) -> int | None:
    cleaned = text.strip().replace(",", "")
    return int(cleaned) if re.fullmatch(r"\d+", cleaned) else None


# --- Catalog entries --------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogForm:
    """A catalog entry as the form holds it: amounts in units, reasons one "code: Label" a line."""

    key: str = ""
    name: str = ""
    description: str = ""
    cost_kind: str = CostKind.FIXED.value
    cost_amount: str = ""
    cost_percent: str = ""
    cost_min: str = ""
    cost_max: str = ""
    editable: bool = False
    editable_min: str = ""
    editable_max: str = ""
    apply_reasons: str = ""
    dismiss_reasons: str = ""
    enabled: bool = True

    @classmethod
    def read(cls, submitted: Mapping[str, str], *, key: str | None = None) -> CatalogForm:
        text = {name: submitted.get(name, "") for name in _CATALOG_TEXT}
        return cls(
            **text,
            key=key if key is not None else submitted.get("key", "").strip(),
            editable=submitted.get("editable") == "on",
            enabled=submitted.get("enabled") == "on",
        )

    @classmethod
    def of(cls, definition: Mapping[str, Any], *, enabled: bool) -> CatalogForm:
        """The form for a stored entry; values that no longer fit are shown as they are."""
        raw_cost = definition.get("cost")
        cost: Mapping[str, Any] = raw_cost if isinstance(raw_cost, Mapping) else {}
        editable = definition.get("editable")
        limits = editable if isinstance(editable, Mapping) else {}
        return cls(
            key=str(definition.get("key", "")),
            name=str(definition.get("name", "")),
            description=str(definition.get("description", "")),
            cost_kind=str(cost.get("kind", CostKind.FIXED.value)),
            cost_amount=units(cost.get("cents")),
            cost_percent="" if cost.get("percent") is None else str(cost.get("percent")),
            cost_min=units(cost.get("min_cents")),
            cost_max=units(cost.get("max_cents")),
            editable=isinstance(editable, Mapping),
            editable_min=units(limits.get("min_cents")),
            editable_max=units(limits.get("max_cents")),
            apply_reasons=_reason_lines(definition.get("apply_reasons")),
            dismiss_reasons=_reason_lines(definition.get("dismiss_reasons")),
            enabled=enabled,
        )


_CATALOG_TEXT = (
    "name",
    "description",
    "cost_kind",
    "cost_amount",
    "cost_percent",
    "cost_min",
    "cost_max",
    "editable_min",
    "editable_max",
    "apply_reasons",
    "dismiss_reasons",
)
_CATALOG_PATHS = {
    "key": "key",
    "name": "name",
    "description": "description",
    "currency": "cost_kind",
    "cost": "cost_kind",
    "cost.kind": "cost_kind",
    "cost.cents": "cost_amount",
    "cost.percent": "cost_percent",
    "cost.min_cents": "cost_min",
    "cost.max_cents": "cost_max",
    "editable": "editable",
    "editable.min_cents": "editable_min",
    "editable.max_cents": "editable_max",
}


def _reason_lines(raw: object) -> str:
    if not isinstance(raw, list):
        return ""
    return "\n".join(
        f"{item.get('code', '')}: {item.get('label', '')}"
        for item in raw
        if isinstance(item, Mapping)
    )


def catalog_definition(form: CatalogForm, currency: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The definition to validate and store, and the problems only the form can see."""
    errors: dict[str, str] = {}
    definition: dict[str, Any] = {
        "key": form.key,
        "name": form.name.strip(),
        "description": form.description.strip(),
        "currency": currency,
    }

    def amount(name: str, text: str, *, required: bool) -> int | None:
        if not text.strip():
            if required:
                _add(errors, name, "Enter an amount, such as 15 or 12.50")
            return None
        cents = parse_units(text)
        if cents is None:
            _add(errors, name, f"Enter an amount in {currency}, such as 15 or 12.50")
        return cents

    if form.cost_kind == CostKind.PERCENT:
        cost: dict[str, Any] = {"kind": CostKind.PERCENT.value}
        try:
            percent = Decimal(form.cost_percent.strip())
            cost["percent"] = (
                int(percent) if percent == percent.to_integral_value() else float(percent)
            )
        except InvalidOperation:
            _add(errors, "cost_percent", "Enter a percentage above 0 and at most 100, such as 10")
        for name, bound in (("cost_min", "min_cents"), ("cost_max", "max_cents")):
            cents = amount(name, getattr(form, name), required=False)
            if cents is not None:
                cost[bound] = cents
    elif form.cost_kind == CostKind.FIXED:
        cost = {"kind": CostKind.FIXED.value}
        cents = amount("cost_amount", form.cost_amount, required=True)
        if cents is not None:
            cost["cents"] = cents
    else:
        cost = {"kind": form.cost_kind}
    definition["cost"] = cost
    if form.editable:
        low = amount("editable_min", form.editable_min, required=True)
        high = amount("editable_max", form.editable_max, required=True)
        if low is not None and high is not None:
            definition["editable"] = {"min_cents": low, "max_cents": high}
    for name in ("apply_reasons", "dismiss_reasons"):
        definition[name] = _reasons(name, getattr(form, name), errors)
    return definition, errors


def _reasons(name: str, text: str, errors: dict[str, str]) -> list[dict[str, str]]:
    reasons = []
    for number, line in enumerate((line for line in text.splitlines() if line.strip()), 1):
        match = _REASON_LINE.match(line)
        if match is None:
            _add(
                errors,
                name,
                f"Line {number}: write a code, a colon and a label, such as “late: Arrived late”",
            )
            continue
        reasons.append({"code": match[1], "label": match[2]})
    return reasons


def catalog_errors(problems: Iterable[ConditionError]) -> dict[str, str]:
    """The domain's problems with an entry, keyed by the form's inputs."""
    errors: dict[str, str] = {}
    for problem in problems:
        path = problem.path
        match = re.match(r"^(apply_reasons|dismiss_reasons)(?:\[(\d+)\](?:\.(\w+))?)?$", path)
        if match:
            where = f"Line {int(match[2]) + 1}, {match[3] or 'reason'}: " if match[2] else ""
            _add(errors, match[1], where + problem.message)
        else:
            _add(errors, _CATALOG_PATHS.get(path, "key" if not path else "name"), problem.message)
    return errors


# --- Budgets ----------------------------------------------------------------------------------


def budget_segments() -> tuple[tuple[str, str], ...]:
    """Every segment a budget can belong to: ("tier:high", "High value"), ..."""
    return tuple(
        (f"{name}:{value}", SegmentRef(name, value).label + _field_suffix(name))
        for name, spec in BUDGET_FIELDS.items()
        for value in spec.choices
    )


def _field_suffix(name: str) -> str:
    return "" if name == "tier" else f" ({field_label(name).lower()})"


def budget_definition(segment: str, amount: str, currency: str) -> dict[str, Any]:
    """`{"segment": ..., "monthly_cents": ...}` from the form; InvalidForm for what it can tell."""
    errors: dict[str, str] = {}
    field_name, _, value = segment.partition(":")
    if segment not in dict(budget_segments()):
        errors["segment"] = "Choose a segment."
    cents = parse_units(amount)
    if cents is None:
        errors["monthly"] = f"Enter the month's budget in {currency}, such as 1000 or 1,250.50."
    if errors:
        raise InvalidForm(errors)
    return {"segment": {"field": field_name, "value": value}, "monthly_cents": cents}


def budget_errors(problems: Iterable[ConditionError]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for problem in problems:
        _add(errors, "monthly" if problem.path == "monthly_cents" else "segment", problem.message)
    return errors


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
    priority = _whole(form.priority or "0")
    if priority is None:
        errors["priority"] = "Enter a whole number from 0 to 9,999, such as 0 or 10."
    else:
        definition["priority"] = priority
    definition["conditions"] = {
        group: [_raw_condition(row, fields) for row in form.rows(group)] for group in GROUPS
    }
    suggest = []
    for key, typed in form.suggest.items():
        number = _whole(typed or "0")
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
        times, days = _whole(form.cap_times), _whole(form.cap_days)
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
                _add(errors, "conditions", f"{inner}: {text}" if inner else text)
                continue
            key = f"{match['group']}[{match['index']}].{match['part']}"
            part = match["part"]
            row = form.rows(match["group"])[int(match["index"])]
            spec = fields.get(row.field)
            if message == "missing":
                _add(errors, key, _MISSING[part])
            elif part == "operator" and spec is not None and row.operator in tuple(Operator):
                allowed = ", ".join(f"“{RULE_OPERATOR_LABELS[o]}”" for o in OPERATORS[spec.kind])
                _add(
                    errors,
                    key,
                    f"“{RULE_OPERATOR_LABELS[Operator(row.operator)]}” does not apply to "
                    f"{field_label(row.field)}; choose {allowed}",
                )
            else:
                _add(errors, key, message)
            continue
        match = re.match(r"^suggest\[(\d+)\]\.(exception|priority)$", path)
        if match and int(match[1]) < len(suggested):
            exception = suggested[int(match[1])]
            suffix = "-priority" if match[2] == "priority" else ""
            _add(errors, f"suggest-{exception}{suffix}", message)
            continue
        if path.startswith("actions"):
            _add(errors, _action_input(path, form), message)
            continue
        _add(errors, _RULE_PATHS.get(path, "name" if not path else path.split(".")[0]), message)
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
            shown.append(_choice_label(name, v))
        else:
            shown.append(str(v))
    return ConditionRow(field=name, operator=str(item.get("operator", "")), value=", ".join(shown))


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
