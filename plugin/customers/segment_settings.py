"""What supervisors set about segments: personas, handling guidance per segment, tier bars.

No Flask here: the console (`plugin/customers/console_views.py`) and `flask segments` call it.
Every save checks everything at once and raises `InvalidForm` with one message per field,
keyed as the form names it (`name`, `tier.high`, `all[2].value`), so a form can show each
problem next to its input.

After a change to personas or tier bars the stored segments are out of date. The sidebar
does not wait for them (it profiles the customer it shows afresh), but match counts, reports
and rules read them: `refresh_segments` recomputes them while the supervisor waits when the
base is small, and otherwise says to run `flask segments recompute`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.customers.segmentation import STREAM_ROWS, recompute_installation, thresholds_of
from plugin.domain.behaviour import Behaviour
from plugin.domain.field_errors import FieldErrors
from plugin.domain.lifecycle import LifecycleStage
from plugin.domain.order_history import TRAILING_YEAR
from plugin.domain.personas import (
    OPERATORS,
    Condition,
    FieldKind,
    InvalidConditions,
    Operator,
    parse_conditions,
)
from plugin.domain.recognition import segment_label
from plugin.domain.rfm import RfmSegment
from plugin.domain.segments import SEGMENT_FIELDS, suggest_tier_thresholds
from plugin.domain.tiers import Tier, TierThresholds
from plugin.models import (
    Customer,
    CustomerSegment,
    Installation,
    Order,
    Persona,
    SegmentBaseline,
    SegmentGuidance,
)

NAME_MAX = 100
DESCRIPTION_MAX = 500
GUIDANCE_MAX = 1000
PRIORITY_MIN, PRIORITY_MAX = 0, 9_999
ORDERS_BAR_MAX = 1_000_000
SPEND_BAR_MAX = 1_000_000_000  # currency units
CENTS = 100


@dataclass(frozen=True)
class BaseSize:
    """How many customers and orders an installation holds."""

    customers: int
    orders: int

    def within(self, limit: BaseSize) -> bool:
        return self.customers <= limit.customers and self.orders <= limit.orders


# Recompute while the supervisor waits only up to this size. A full recompute measured on
# SQLite (the one-box default) took 1.3 s for 5,000 customers with 52,000 orders and 8.3 s for
# 20,000 with 210,000; a request should not take longer than a few seconds.
RECOMPUTE_WHILE_WAITING = BaseSize(customers=10_000, orders=100_000)


class InvalidForm(FieldErrors):
    """A form that does not validate: one message per field, keyed by the field's name."""


class PersonaNotFound(LookupError):
    """No persona with that id in this installation."""


def clean_text(value: str) -> str:
    """Trim a submitted text and give it one kind of line break (browsers send CRLF)."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _check_length(errors: dict[str, str], key: str, value: str, most: int) -> None:
    if len(value) > most:
        errors[key] = f"{len(value):,} characters; at most {most:,}."


# --- Personas ---------------------------------------------------------------------------------

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
_MISSING = {
    "field": "Choose a field.",
    "operator": "Choose how to compare.",
    "value": "Enter a value.",
}


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


@dataclass(frozen=True)
class PersonaForm:
    """A persona as the form holds it; `all` and `any` are its condition rows."""

    name: str = ""
    description: str = ""
    priority: str = "0"
    enabled: bool = True
    guidance: str = ""
    all: tuple[ConditionRow, ...] = ()
    any: tuple[ConditionRow, ...] = ()

    def rows(self, group: str) -> tuple[ConditionRow, ...]:
        return self.all if group == "all" else self.any


@dataclass(frozen=True)
class PersonaSummary:
    """A persona as the console lists it."""

    id: int
    name: str
    description: str
    priority: int
    enabled: bool
    guidance: str
    matches: int
    all_conditions: tuple[str, ...]
    any_conditions: tuple[str, ...]
    # Why the stored conditions no longer parse; empty when they do.
    problems: tuple[str, ...]
    # Changed after the stored segments were computed, so `matches` does not reflect it yet.
    changed_since_counted: bool

    @property
    def broken(self) -> bool:
        return bool(self.problems)


@dataclass(frozen=True)
class PersonaList:
    """The installation's personas and when their match counts were computed."""

    personas: tuple[PersonaSummary, ...]
    counted_at: datetime | None


def persona_of(session: Session, installation: Installation, persona_id: int) -> Persona:
    """The installation's persona with this id; PersonaNotFound if it has none."""
    persona = session.scalars(
        sa.select(Persona).where(
            Persona.id == persona_id, Persona.installation_id == installation.id
        )
    ).first()
    if persona is None:
        raise PersonaNotFound(persona_id)
    return persona


def list_personas(session: Session, installation: Installation) -> PersonaList:
    """Every persona of the installation, first matched first, with how many customers match."""
    counted_at = segments_computed_at(session, installation.id)
    counts = persona_match_counts(session, installation.id)
    summaries = []
    for row in session.scalars(
        sa.select(Persona)
        .where(Persona.installation_id == installation.id)
        .order_by(Persona.priority, Persona.name)
    ):
        problems: tuple[str, ...] = ()
        described: dict[str, tuple[str, ...]] = {"all": (), "any": ()}
        try:
            conditions = parse_conditions(row.conditions, SEGMENT_FIELDS)
        except InvalidConditions as invalid:
            problems = tuple(
                f"{error.path or 'conditions'}: {error.message}" for error in invalid.errors
            )
        else:
            described = {
                "all": tuple(describe(c, installation.currency) for c in conditions.all),
                "any": tuple(describe(c, installation.currency) for c in conditions.any),
            }
        summaries.append(
            PersonaSummary(
                id=row.id,
                name=row.name,
                description=row.description,
                priority=row.priority,
                enabled=row.enabled,
                guidance=row.guidance,
                matches=counts.get(row.name, 0),
                all_conditions=described["all"],
                any_conditions=described["any"],
                problems=problems,
                changed_since_counted=counted_at is None or row.updated_at > counted_at,
            )
        )
    return PersonaList(personas=tuple(summaries), counted_at=counted_at)


def persona_match_counts(session: Session, installation_id: int) -> dict[str, int]:
    """How many customers each persona matched at the last computation, counted in the database.

    Each stored profile lists its personas in a JSON array; the database unnests them, so the
    count costs no memory in the app whatever the base's size.
    """
    if session.get_bind().dialect.name == "postgresql":
        names = sa.func.json_array_elements_text(CustomerSegment.personas).table_valued("value")
    else:
        names = sa.func.json_each(CustomerSegment.personas).table_valued("value")
    rows = session.execute(
        sa.select(names.c.value, sa.func.count())
        .select_from(CustomerSegment)
        .join(names, sa.true())
        .where(CustomerSegment.installation_id == installation_id)
        .group_by(names.c.value)
    )
    return {str(name): int(count) for name, count in rows}


def describe(condition: Condition, currency: str) -> str:
    """Say a condition the way the console labels it: "Value tier is High"."""
    values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
    shown = ", ".join(_shown_value(condition.field, value, currency) for value in values)
    return f"{FIELD_LABELS[condition.field]} {OPERATOR_LABELS[condition.operator]} {shown}"


def _shown_value(field_name: str, value: object, currency: str) -> str:
    if field_name in CURRENCY_FIELDS and isinstance(value, int | float):
        return f"{_units(value)} {currency}"
    if isinstance(value, str) and field_name not in FREE_TEXT_FIELDS:
        return segment_label(value)
    return str(value)


def persona_form(persona: Persona) -> PersonaForm:
    """The form for editing a stored persona, tolerating conditions that no longer parse."""
    raw = persona.conditions if isinstance(persona.conditions, Mapping) else {}
    groups: dict[str, tuple[ConditionRow, ...]] = {}
    for group in GROUPS:
        items = raw.get(group)
        groups[group] = tuple(
            _stored_row(item)
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, Mapping)
        )
    return PersonaForm(
        name=persona.name,
        description=persona.description,
        priority=str(persona.priority),
        enabled=persona.enabled,
        guidance=persona.guidance,
        all=groups["all"],
        any=groups["any"],
    )


def _stored_row(item: Mapping[str, object]) -> ConditionRow:
    """Show a stored condition as typed text: lists joined by commas, cents in units, labels."""
    field_name = str(item.get("field", ""))
    value = item.get("value", "")
    values = value if isinstance(value, list) else [value]
    spec = SEGMENT_FIELDS.get(field_name)
    if field_name in CURRENCY_FIELDS:
        values = [_units(v) if isinstance(v, int | float) else v for v in values]
    elif spec is not None and spec.choices:
        values = [segment_label(v) if v in spec.choices else v for v in values]
    return ConditionRow(
        field=field_name,
        operator=str(item.get("operator", "")),
        value=", ".join(str(v) for v in values),
    )


def _units(cents: float) -> str:
    """Cents as currency units, without a fraction when there is none: 150000 -> "1500"."""
    return str(int(cents) // CENTS) if cents % CENTS == 0 else f"{cents / CENTS:.2f}"


def check_persona(form: PersonaForm) -> None:
    """Raise InvalidForm with every problem in the form but a name another persona has."""
    _persona_values(form)


def _persona_values(form: PersonaForm) -> dict[str, object]:
    """The values to store, or InvalidForm with every problem in the form."""
    errors: dict[str, str] = {}
    name = clean_text(form.name)
    if not name:
        errors["name"] = "Give the persona a name."
    _check_length(errors, "name", name, NAME_MAX)
    description = clean_text(form.description)
    _check_length(errors, "description", description, DESCRIPTION_MAX)
    guidance = clean_text(form.guidance)
    _check_length(errors, "guidance", guidance, GUIDANCE_MAX)
    priority = _whole_number(form.priority)
    if priority is None:
        errors["priority"] = "Enter a whole number, such as 0 or 10."
    elif not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        errors["priority"] = f"Enter a number from {PRIORITY_MIN} to {PRIORITY_MAX:,}."
    conditions = {group: [_raw_condition(row) for row in form.rows(group)] for group in GROUPS}
    try:
        parse_conditions(conditions, SEGMENT_FIELDS)
    except InvalidConditions as invalid:
        for error in invalid.errors:
            key, message = _condition_error(form, error.path, error.message)
            errors[key] = f"{errors[key]} {message}" if key in errors else message
    if errors:
        raise InvalidForm(errors)
    return {
        "name": name,
        "description": description,
        "guidance": guidance,
        "priority": priority,
        "enabled": form.enabled,
        "conditions": conditions,
    }


def _raw_condition(row: ConditionRow) -> dict[str, object]:
    """The stored shape of a row: its blank parts left out, so the parser reports them missing."""
    condition: dict[str, object] = {}
    if row.field:
        condition["field"] = row.field
    if row.operator:
        condition["operator"] = row.operator
    if row.value.strip():
        condition["value"] = _typed_value(row)
    return condition


def _typed_value(row: ConditionRow) -> object:
    """Turn the value as typed into what the field holds; leave text the parser will refuse."""
    spec = SEGMENT_FIELDS.get(row.field)
    parts = (
        [part.strip() for part in row.value.split(",") if part.strip()]
        if row.operator in LIST_OPERATORS
        else [row.value.strip()]
    )
    if spec is not None and spec.kind is FieldKind.NUMBER:
        typed = [_number(part, cents=row.field in CURRENCY_FIELDS) for part in parts]
    elif spec is not None and spec.choices:
        typed = [_choice(part, spec.choices) for part in parts]
    else:
        typed = list(parts)
    return typed if row.operator in LIST_OPERATORS else typed[0]


def _choice(text: str, choices: tuple[str, ...]) -> str:
    """Accept a choice by its label as well: "Can't lose them" is `cant_lose_them`."""
    slug = re.sub(r"\s+", "_", text.strip().lower()).replace("'", "")
    return slug if slug in choices else text


def _number(text: str, *, cents: bool) -> object:
    """Read "12", "0.25" or, for an amount, "1,500.50" (as cents); text that is none stays."""
    try:
        number = Decimal(text.replace(",", "") if cents else text)
    except InvalidOperation:
        return text
    if not number.is_finite():
        return text
    if cents:
        return int((number * CENTS).to_integral_value())
    return int(number) if number == number.to_integral_value() else float(number)


_PATH = re.compile(
    r"^(?P<row>(?P<group>all|any)\[(?P<index>\d+)\])\.(?P<part>field|operator|value)"
    r"(?:\[(?P<item>\d+)\])?$"
)


def _condition_error(form: PersonaForm, path: str, message: str) -> tuple[str, str]:
    """Key a parser error to the form's input (`all[0].value[2]` is the row's value input).

    The words are the form's: an operator that does not suit the field is named by its label.
    """
    match = _PATH.match(path)
    if match is None:
        if message == "needs at least one condition":
            return "conditions", "Add at least one condition."
        return "conditions", f"{path}: {message}." if path else f"{message.capitalize()}."
    key, part = f"{match['row']}.{match['part']}", match["part"]
    if message == "missing":
        return key, _MISSING[part]
    if match["item"] is not None:
        return key, f"Value {int(match['item']) + 1}: {message}."
    row = form.rows(match["group"])[int(match["index"])]
    spec = SEGMENT_FIELDS.get(row.field)
    if part == "operator" and spec is not None and row.operator in OPERATOR_LABELS:
        allowed = ", ".join(f"“{OPERATOR_LABELS[op]}”" for op in OPERATORS[spec.kind])
        return key, (
            f"“{OPERATOR_LABELS[Operator(row.operator)]}” does not apply to "
            f"{FIELD_LABELS[row.field]}; choose {allowed}."
        )
    return key, f"{message[0].upper()}{message[1:]}."


def _whole_number(text: str) -> int | None:
    cleaned = text.strip().replace(",", "").replace(" ", "")
    return int(cleaned) if re.fullmatch(r"[+-]?\d+", cleaned) else None


# What decides whom a persona matches and how it is stored on their profiles; a new
# description or guidance leaves the stored segments right.
MATCH_ATTRIBUTES = ("name", "conditions", "enabled", "priority")


@dataclass(frozen=True)
class SavedPersona:
    """A persona as saved, and whether the change alters whom it matches."""

    persona: Persona
    changes_matches: bool


def save_persona(
    session: Session,
    installation: Installation,
    form: PersonaForm,
    *,
    persona_id: int | None = None,
) -> SavedPersona:
    """Create a persona, or update the one with `persona_id`; raise InvalidForm. Commits."""
    persona = persona_of(session, installation, persona_id) if persona_id is not None else None
    values = _persona_values(form)
    changes_matches = persona is None or any(
        getattr(persona, attribute) != values[attribute] for attribute in MATCH_ATTRIBUTES
    )
    name = str(values["name"])
    clash = session.scalars(
        sa.select(Persona.id).where(
            Persona.installation_id == installation.id,
            sa.func.lower(Persona.name) == name.lower(),
            Persona.id != (persona.id if persona else -1),
        )
    ).first()
    if clash is not None:
        raise InvalidForm({"name": f"Another persona is already called {name!r}."})
    if persona is None:
        persona = Persona(installation_id=installation.id)
        session.add(persona)
    for attribute, value in values.items():
        setattr(persona, attribute, value)
    try:
        session.commit()
    except IntegrityError:  # saved by someone else between the check and the commit
        session.rollback()
        raise InvalidForm({"name": f"Another persona is already called {name!r}."}) from None
    return SavedPersona(persona, changes_matches)


def set_persona_enabled(
    session: Session, installation: Installation, persona_id: int, *, enabled: bool
) -> Persona:
    """Turn a persona on or off; a disabled one matches nobody. Commits."""
    persona = persona_of(session, installation, persona_id)
    persona.enabled = enabled
    session.commit()
    return persona


def delete_persona(session: Session, installation: Installation, persona_id: int) -> str:
    """Delete a persona and return its name. Commits."""
    persona = persona_of(session, installation, persona_id)
    name = persona.name
    session.delete(persona)
    session.commit()
    return name


# --- Guidance per segment ---------------------------------------------------------------------


@dataclass(frozen=True)
class GuidanceKind:
    """A kind of segment that guidance can be attached to, and its segments."""

    kind: str
    title: str
    values: tuple[str, ...]

    def key(self, value: str) -> str:
        """The form's name for one segment's text: `tier.high`."""
        return f"{self.kind}.{value}"

    def label(self, value: str) -> str:
        return f"{segment_label(value)} value" if self.kind == "tier" else segment_label(value)


GUIDANCE_KINDS = (
    GuidanceKind("tier", "Value tiers", tuple(reversed(Tier))),
    GuidanceKind("rfm_segment", "RFM segments", tuple(RfmSegment)),
    GuidanceKind("lifecycle_stage", "Lifecycle stages", tuple(LifecycleStage)),
    GuidanceKind("behaviour", "Behaviour", tuple(Behaviour)),
)


def guidance_keys() -> Iterator[tuple[GuidanceKind, str]]:
    for kind in GUIDANCE_KINDS:
        for value in kind.values:
            yield kind, value


def guidance_texts(session: Session, installation: Installation) -> dict[str, str]:
    """The installation's guidance by form key (`tier.high`); segments without any are absent."""
    return {
        f"{row.kind}.{row.value}": row.text
        for row in session.scalars(
            sa.select(SegmentGuidance).where(SegmentGuidance.installation_id == installation.id)
        )
    }


def save_guidance(
    session: Session, installation: Installation, texts: Mapping[str, str]
) -> dict[str, str]:
    """Store the guidance for every segment: an empty text removes it. Commits.

    `texts` is keyed like the form (`tier.high`); keys it lacks are left as they are. Raises
    InvalidForm, saving nothing, if any text is too long. Returns the texts now stored.
    """
    cleaned = {
        kind.key(value): clean_text(texts[kind.key(value)])
        for kind, value in guidance_keys()
        if kind.key(value) in texts
    }
    errors: dict[str, str] = {}
    for key, text in cleaned.items():
        _check_length(errors, key, text, GUIDANCE_MAX)
    if errors:
        raise InvalidForm(errors)
    stored = {
        (row.kind, row.value): row
        for row in session.scalars(
            sa.select(SegmentGuidance).where(SegmentGuidance.installation_id == installation.id)
        )
    }
    for key, text in cleaned.items():
        kind, _, value = key.partition(".")
        row = stored.get((kind, value))
        if not text:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(
                SegmentGuidance(installation_id=installation.id, kind=kind, value=value, text=text)
            )
        elif row.text != text:
            row.text = text
    session.commit()
    return guidance_texts(session, installation)


# --- Tier thresholds --------------------------------------------------------------------------

TIER_FIELDS = ("medium_min_orders", "medium_min_spend", "high_min_orders", "high_min_spend")


@dataclass(frozen=True)
class TierForm:
    """The four bars as the form holds them: orders a year, and spend a year in currency units."""

    medium_min_orders: str = ""
    medium_min_spend: str = ""
    high_min_orders: str = ""
    high_min_spend: str = ""

    @classmethod
    def of(cls, thresholds: TierThresholds) -> TierForm:
        return cls(
            medium_min_orders=str(thresholds.medium_min_orders),
            medium_min_spend=_units(thresholds.medium_min_spend_cents),
            high_min_orders=str(thresholds.high_min_orders),
            high_min_spend=_units(thresholds.high_min_spend_cents),
        )


@dataclass(frozen=True)
class TierSuggestion:
    """Bars drawn from the installation's own base, and how many buyers they come from."""

    thresholds: TierThresholds
    buyers: int


@dataclass(frozen=True)
class TierCounts:
    """How many customers the stored segments put in each tier."""

    high: int = 0
    medium: int = 0
    low: int = 0


def tier_thresholds_from(form: TierForm) -> TierThresholds:
    """Check the four bars; raise InvalidForm naming each field that is wrong and why."""
    errors: dict[str, str] = {}
    bars: dict[str, int] = {}
    for name, most in (
        ("medium_min_orders", ORDERS_BAR_MAX),
        ("medium_min_spend", SPEND_BAR_MAX),
        ("high_min_orders", ORDERS_BAR_MAX),
        ("high_min_spend", SPEND_BAR_MAX),
    ):
        text = getattr(form, name).strip()
        number = _whole_number(text)
        if not text:
            errors[name] = "Enter a whole number of 1 or more."
        elif number is None:
            errors[name] = f"{text!r} is not a whole number."
        elif number < 1:
            errors[name] = "Must be at least 1."
        elif number > most:
            errors[name] = f"Must be at most {most:,}."
        else:
            bars[name] = number
    for what in ("orders", "spend"):
        medium, high = bars.get(f"medium_min_{what}"), bars.get(f"high_min_{what}")
        if medium is not None and high is not None and high < medium:
            errors[f"high_min_{what}"] = (
                f"Must be at least the medium bar ({medium:,}): high customers reach both."
            )
    if errors:
        raise InvalidForm(errors)
    return TierThresholds(
        medium_min_orders=bars["medium_min_orders"],
        medium_min_spend_cents=bars["medium_min_spend"] * CENTS,
        high_min_orders=bars["high_min_orders"],
        high_min_spend_cents=bars["high_min_spend"] * CENTS,
    )


def apply_tier_thresholds(installation: Installation, thresholds: TierThresholds) -> None:
    """Make these the installation's bars; the caller commits."""
    installation.tier_medium_min_orders = thresholds.medium_min_orders
    installation.tier_medium_min_spend_cents = thresholds.medium_min_spend_cents
    installation.tier_high_min_orders = thresholds.high_min_orders
    installation.tier_high_min_spend_cents = thresholds.high_min_spend_cents


def save_tier_thresholds(
    session: Session, installation: Installation, form: TierForm
) -> TierThresholds:
    """Check and store the bars; raise InvalidForm. Commits."""
    thresholds = tier_thresholds_from(form)
    apply_tier_thresholds(installation, thresholds)
    session.commit()
    return thresholds


def suggest_tiers(session: Session, installation_id: int, *, now: datetime) -> TierSuggestion:
    """Suggest bars from every customer's orders and spend over the twelve months up to `now`.

    The same window the tiers are computed over; per-customer totals come from the database,
    streamed, so memory stays bounded whatever the base's size.
    """
    rows = session.execute(
        sa.select(sa.func.count(), sa.func.sum(Order.amount_cents))
        .where(
            Order.installation_id == installation_id,
            Order.placed_at > now - TRAILING_YEAR,
            Order.placed_at <= now,
        )
        .group_by(Order.customer_id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    buyers = 0

    def base() -> Iterator[tuple[int, int]]:
        nonlocal buyers
        for orders_12m, spend_12m_cents in rows:
            buyers += 1
            yield int(orders_12m), int(spend_12m_cents or 0)

    thresholds = suggest_tier_thresholds(base())
    return TierSuggestion(thresholds=thresholds, buyers=buyers)


def tier_counts(session: Session, installation_id: int) -> TierCounts:
    """How many customers the stored segments put in each tier."""
    rows = session.execute(
        sa.select(CustomerSegment.tier, sa.func.count())
        .where(CustomerSegment.installation_id == installation_id)
        .group_by(CustomerSegment.tier)
    )
    found = {str(tier): int(count) for tier, count in rows}
    return TierCounts(**{tier.value: found.get(tier.value, 0) for tier in Tier})


def current_tier_form(installation: Installation) -> TierForm:
    return TierForm.of(thresholds_of(installation))


# --- Keeping the stored segments up to date ---------------------------------------------------


@dataclass(frozen=True)
class SegmentsRefresh:
    """What happened to the stored segments after a change: recomputed, or left for the command."""

    base: BaseSize
    recomputed: bool
    seconds: float
    command: str  # the command that recomputes them


def segments_computed_at(session: Session, installation_id: int) -> datetime | None:
    """When the installation's stored segments were last recomputed; None if never."""
    baseline = session.get(SegmentBaseline, installation_id)
    return baseline.computed_at if baseline else None


def base_size(session: Session, installation_id: int) -> BaseSize:
    """Count the installation's customers and orders."""
    customers = session.scalar(
        sa.select(sa.func.count()).where(Customer.installation_id == installation_id)
    )
    orders = session.scalar(
        sa.select(sa.func.count()).where(Order.installation_id == installation_id)
    )
    return BaseSize(customers=int(customers or 0), orders=int(orders or 0))


def recompute_command(installation: Installation) -> str:
    return f"flask segments recompute --installation {installation.platform}:{installation.account}"


def refresh_segments(
    session: Session,
    installation: Installation,
    *,
    now: datetime,
    limit: BaseSize | None = None,
) -> SegmentsRefresh:
    """Recompute the installation's stored segments now if its base is within `limit`.

    The limit defaults to RECOMPUTE_WHILE_WAITING.
    """
    base = base_size(session, installation.id)
    if not base.within(limit or RECOMPUTE_WHILE_WAITING):
        return SegmentsRefresh(
            base, recomputed=False, seconds=0.0, command=recompute_command(installation)
        )
    started = time.perf_counter()
    recompute_installation(session, installation, now=now)
    return SegmentsRefresh(
        base,
        recomputed=True,
        seconds=time.perf_counter() - started,
        command=recompute_command(installation),
    )
