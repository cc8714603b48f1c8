"""Conditions on segment fields as the console's forms hold them: the labels of fields and
operators, and one condition row as typed. Persona forms and exception rule forms share them.
"""

from __future__ import annotations

from dataclasses import dataclass

from plugin.customers.settings_forms import cents_as_units
from plugin.domain.personas import OPERATORS, Condition, FieldKind, Operator
from plugin.domain.recognition import segment_label
from plugin.domain.segments import SEGMENT_FIELDS

# How the console names each field a condition can test; the spend fields are entered and shown
# in the installation's currency, and stored in cents.
FIELD_LABELS: dict[str, str] = {
    "tier": "Value tier",
    "rfm_segment": "RFM segment",
    "recency_score": "Recency score (1-5)",
    "frequency_score": "Frequency score (1-5)",
    "monetary_score": "Monetary score (1-5)",
    "behaviour_tags": "Behaviour tags",
    "lifecycle_stage": "Lifecycle stage",
    "order_count": "Orders, all time",
    "total_spend_cents": "Spend, all time",
    "orders_12m": "Orders, past year",
    "spend_12m_cents": "Spend, past year",
    "days_since_last_order": "Days since the last order",
    "discount_share": "Share of orders with a discount (0-1)",
    "top_categories": "Top categories",
}
CURRENCY_FIELDS = frozenset(name for name in SEGMENT_FIELDS if name.endswith("_cents"))
# Free-text values shown as typed; the others are stored slugs shown by their label.
FREE_TEXT_FIELDS = frozenset({"top_categories"})
OPERATOR_LABELS: dict[Operator, str] = {
    Operator.IS: "is",
    Operator.IS_NOT: "is not",
    Operator.IN: "is one of",
    Operator.NOT_IN: "is none of",
    Operator.GT: "is more than",
    Operator.GTE: "is at least",
    Operator.LT: "is less than",
    Operator.LTE: "is at most",
    Operator.CONTAINS: "include",
    Operator.NOT_CONTAINS: "do not include",
}
LIST_OPERATORS = (Operator.IN, Operator.NOT_IN)
GROUPS = ("all", "any")


@dataclass(frozen=True)
class ConditionField:
    """A field a condition can test, as the form offers it."""

    name: str
    label: str
    kind: FieldKind
    operators: tuple[Operator, ...]
    choices: tuple[tuple[str, str], ...]  # (stored value, label)
    in_currency: bool


def condition_fields(currency: str) -> tuple[ConditionField, ...]:
    """Every field a persona can test, labelled, with its operators and choices."""
    return tuple(
        ConditionField(
            name=name,
            label=f"{FIELD_LABELS[name]} ({currency})"
            if name in CURRENCY_FIELDS
            else FIELD_LABELS[name],
            kind=spec.kind,
            operators=OPERATORS[spec.kind],
            choices=tuple((choice, segment_label(choice)) for choice in spec.choices),
            in_currency=name in CURRENCY_FIELDS,
        )
        for name, spec in SEGMENT_FIELDS.items()
    )


@dataclass(frozen=True)
class ConditionRow:
    """One condition as the form holds it: the field, the operator and the value as typed."""

    field: str = ""
    operator: str = ""
    value: str = ""

    def is_blank(self) -> bool:
        return not (self.field or self.operator or self.value.strip())


def describe(condition: Condition, currency: str) -> str:
    """Say a condition the way the console labels it: "Value tier is High"."""
    values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
    shown = ", ".join(_shown_value(condition.field, value, currency) for value in values)
    return f"{FIELD_LABELS[condition.field]} {OPERATOR_LABELS[condition.operator]} {shown}"


def _shown_value(field_name: str, value: object, currency: str) -> str:
    if field_name in CURRENCY_FIELDS and isinstance(value, int | float):
        return f"{cents_as_units(value)} {currency}"
    if isinstance(value, str) and field_name not in FREE_TEXT_FIELDS:
        return segment_label(value)
    return str(value)
