"""The installation's personas as supervisors edit them: listing them with their match counts,
reading and checking their forms, and saving, switching off and deleting them.

No Flask here: the console (`plugin/customers/console_views.py`) calls it. After a change to
whom a persona matches, the stored segments are out of date: see `segment_refresh`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.customers.condition_rows import (
    CURRENCY_FIELDS,
    FIELD_LABELS,
    GROUPS,
    LIST_OPERATORS,
    OPERATOR_LABELS,
    ConditionRow,
    describe,
)
from plugin.customers.segment_guidance import GUIDANCE_MAX
from plugin.customers.segment_refresh import segments_computed_at
from plugin.customers.settings_forms import (
    CENTS,
    InvalidForm,
    cents_as_units,
    check_length,
    clean_text,
    whole_number,
)
from plugin.domain.personas import (
    OPERATORS,
    FieldKind,
    InvalidConditions,
    Operator,
    parse_conditions,
)
from plugin.domain.recognition import segment_label
from plugin.domain.segments import SEGMENT_FIELDS
from plugin.models import CustomerSegment, Installation, Persona

NAME_MAX = 100
DESCRIPTION_MAX = 500
PRIORITY_MIN, PRIORITY_MAX = 0, 9_999
_MISSING = {
    "field": "Choose a field.",
    "operator": "Choose how to compare.",
    "value": "Enter a value.",
}


class PersonaNotFound(LookupError):
    """No persona with that id in this installation."""


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
        values = [cents_as_units(v) if isinstance(v, int | float) else v for v in values]
    elif spec is not None and spec.choices:
        values = [segment_label(v) if v in spec.choices else v for v in values]
    return ConditionRow(
        field=field_name,
        operator=str(item.get("operator", "")),
        value=", ".join(str(v) for v in values),
    )


def check_persona(form: PersonaForm) -> None:
    """Raise InvalidForm with every problem in the form but a name another persona has."""
    _persona_values(form)


def _persona_values(form: PersonaForm) -> dict[str, object]:
    """The values to store, or InvalidForm with every problem in the form."""
    errors: dict[str, str] = {}
    name = clean_text(form.name)
    if not name:
        errors["name"] = "Give the persona a name."
    check_length(errors, "name", name, NAME_MAX)
    description = clean_text(form.description)
    check_length(errors, "description", description, DESCRIPTION_MAX)
    guidance = clean_text(form.guidance)
    check_length(errors, "guidance", guidance, GUIDANCE_MAX)
    priority = whole_number(form.priority)
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
