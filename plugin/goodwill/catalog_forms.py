"""The console's forms for catalog entries and segment budgets.

No Flask here. Each form is read as typed (amounts in currency units, reasons one "code: Label"
a line), turned into the definition the domain validates (`parse_exception_type`,
`parse_budget`), and every problem, the form's own or the domain's at its path (`cost.percent`),
is keyed by the input it belongs to, so the console shows it next to that input. Stored entries
go back into forms for editing, also when they no longer validate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from plugin.domain.exceptions import BUDGET_FIELDS, CostKind, SegmentRef
from plugin.domain.personas import ConditionError
from plugin.goodwill.form_input import InvalidForm, add_error, parse_units, units
from plugin.goodwill.rule_words import field_label

# Reasons are typed one "code: Label" a line.
_REASON_LINE = re.compile(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$")


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
    # The gesture the shop gives when it is applied; no kind: record only.
    gesture_kind: str = ""
    gesture_value: str = "fixed"
    gesture_expires_days: str = ""
    gesture_min_order: str = ""
    gesture_cap_percent: str = ""

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
        raw_gesture = definition.get("gesture")
        gesture: Mapping[str, Any] = raw_gesture if isinstance(raw_gesture, Mapping) else {}
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
            gesture_kind=str(gesture.get("kind", "")),
            gesture_value=str(gesture.get("value", "fixed")),
            gesture_expires_days=str(gesture.get("expires_in_days", "")),
            gesture_min_order=units(gesture.get("minimum_order_cents")),
            gesture_cap_percent=str(gesture.get("gift_card_cap_percent", "")),
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
    "gesture_kind",
    "gesture_value",
    "gesture_expires_days",
    "gesture_min_order",
    "gesture_cap_percent",
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
    "gesture": "gesture_kind",
    "gesture.kind": "gesture_kind",
    "gesture.value": "gesture_value",
    "gesture.expires_in_days": "gesture_expires_days",
    "gesture.minimum_order_cents": "gesture_min_order",
    "gesture.gift_card_cap_percent": "gesture_cap_percent",
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
                add_error(errors, name, "Enter an amount, such as 15 or 12.50")
            return None
        cents = parse_units(text)
        if cents is None:
            add_error(errors, name, f"Enter an amount in {currency}, such as 15 or 12.50")
        return cents

    if form.cost_kind == CostKind.PERCENT:
        cost: dict[str, Any] = {"kind": CostKind.PERCENT.value}
        try:
            percent = Decimal(form.cost_percent.strip())
            cost["percent"] = (
                int(percent) if percent == percent.to_integral_value() else float(percent)
            )
        except InvalidOperation:
            add_error(
                errors, "cost_percent", "Enter a percentage above 0 and at most 100, such as 10"
            )
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
    if form.gesture_kind.strip():
        definition["gesture"] = _gesture(form, errors, amount)
    return definition, errors


def _gesture(
    form: CatalogForm, errors: dict[str, str], amount: Callable[..., int | None]
) -> dict[str, Any]:
    """The binding to a gesture, as `plugin.domain.gesture_binding` reads it."""
    gesture: dict[str, Any] = {"kind": form.gesture_kind.strip()}
    if form.gesture_kind == "discount_code" and form.gesture_value.strip():
        gesture["value"] = form.gesture_value.strip()
    for name, key in (
        ("gesture_expires_days", "expires_in_days"),
        ("gesture_cap_percent", "gift_card_cap_percent"),
    ):
        text = getattr(form, name).strip()
        if text and not text.isdigit():
            add_error(errors, name, "Enter a whole number, such as 90")
        elif text:
            gesture[key] = int(text)
    minimum = amount("gesture_min_order", form.gesture_min_order, required=False)
    if minimum is not None:
        gesture["minimum_order_cents"] = minimum
    return gesture


def _reasons(name: str, text: str, errors: dict[str, str]) -> list[dict[str, str]]:
    reasons = []
    for number, line in enumerate((line for line in text.splitlines() if line.strip()), 1):
        match = _REASON_LINE.match(line)
        if match is None:
            add_error(
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
            add_error(errors, match[1], where + problem.message)
        else:
            add_error(
                errors, _CATALOG_PATHS.get(path, "key" if not path else "name"), problem.message
            )
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
        add_error(
            errors, "monthly" if problem.path == "monthly_cents" else "segment", problem.message
        )
    return errors
