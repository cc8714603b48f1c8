"""Exceptions at work: an installation's catalog, versioned rules and budgets; a ticket's
suggestions; and the action log of what agents did about them.

No Flask here: the sidebar (`plugin/goodwill/views.py`), the console and `flask rules` call it.
Every query is scoped to one installation; an id of another installation's rule or action is
not found. Each change is committed here, whole or not at all.

- Catalog and budgets: `save_exception_type` (and, for the console, `create_exception_type`,
  `exception_type_row`, `set_exception_enabled`), `set_budget`, validated by the domain's
  parsers.
- Rules: `create_rule`, `update_rule` (a new version when the definition changes),
  `rollback_rule` (a new version copying an old one), `rule_history`; every version records
  who wrote it, when and why. `export_rules` / `import_rules` move the lot as JSON.
- Suggestions: `suggestions_for` builds the `RuleContext` (the customer's profile facts and
  personas, mapped helpdesk facts, the ticket, the customer's grants, this month's budgets and
  an order value) and evaluates the installation's rules, compiled once per change
  (`rule_book`).
- Actions: `record_action` checks an agent's apply, dismiss or escalate against the rules as
  they stand at that moment, and writes it once (idempotency key); `resolve_escalation`
  approves or refuses an escalated one. An agent's apply of a rule's ticket handling (raise
  the priority, add a tag, route to a group) is recorded the same way, as a handled action
  that the outbox applies to the ticket with its note.

Decisions worth knowing:

- Order value (what a percent cost is a share of): the order the ticket's subject names by its
  number, if it names one of the customer's orders; otherwise the customer's latest order,
  since a ticket is most often about the last thing bought. None without orders, so a percent
  gesture is withheld as unpriced for a prospect.
- Budget spend: each grant is charged to the segment budget its rule names, and that segment
  is stored on the action; a budget's spend this month is the sum of the applied and approved
  actions charged to it since the first of the month (UTC). So a customer who changes segment
  mid-month does not move money between budgets, and a customer in two segments (a high-value
  deal seeker) is not counted twice.
- Goodwill and caps count the applied and approved actions of the customer (or, for someone
  who is not a customer yet, of the helpdesk requester). Handled actions grant nothing: they
  count toward no goodwill, cap, budget or cost.
- Ticket handling is applied once per ticket: once handled, the card shows it done (with how
  its delivery stands) instead of offering it again, even before the ticket shows the change.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from cachetools import LRUCache
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.customers import lookup as customers
from plugin.customers import segmentation
from plugin.domain.exceptions import (
    CODE,
    AmountLimits,
    Budget,
    BudgetStatus,
    ExceptionType,
    Goodwill,
    Grant,
    InvalidBudget,
    InvalidExceptionType,
    PercentCost,
    ReasonCode,
    SegmentRef,
    granted_within,
    money,
    parse_budget,
    parse_exception_type,
)
from plugin.domain.field_errors import FieldErrors
from plugin.domain.helpdesk import Person, Ticket
from plugin.domain.personas import ConditionError, FieldKind, FieldSpec, InvalidConditions
from plugin.domain.rules import (
    MAX_CAP_DAYS,
    ActionSuggestion,
    CompiledRules,
    Evaluation,
    InvalidRule,
    RuleContext,
    Suggestion,
    TicketAction,
    Withheld,
    parse_rule,
    rule_fields,
)
from plugin.domain.rules import ActionKind as HandlingKind
from plugin.domain.rules import Rule as DomainRule
from plugin.helpdesks import installations
from plugin.models import (
    Action,
    Customer,
    Delivery,
    FieldMapping,
    Installation,
    Order,
    Persona,
    Rule,
    RuleVersion,
    SegmentBudget,
)
from plugin.models import ExceptionType as ExceptionTypeRow

log = logging.getLogger(__name__)

TEXT_MAX_LENGTH = 1000
NOTE_MAX_LENGTH = 1000
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_\-]{8,64}")
# The shape of the import/export file, so a future change of shape can be recognised.
EXPORT_FORMAT = "regulars.rules/1"
# Compiled rule books kept in this process; each is checked against the database per use.
BOOK_CACHE_SIZE = 256


class ActionKind(StrEnum):
    """What the action log records."""

    APPLIED = "applied"
    DISMISSED = "dismissed"
    ESCALATED = "escalated"  # waiting for a supervisor's approval
    APPROVED = "approved"
    REFUSED = "refused"
    HANDLED = "handled"  # a rule's ticket handling applied to the ticket: no grant


# The actions that granted something: what goodwill, caps and budgets count.
GRANT_KINDS = (ActionKind.APPLIED, ActionKind.APPROVED)
# What agents and approvers did about suggested exceptions: what reports tally.
EXCEPTION_KINDS = tuple(kind for kind in ActionKind if kind is not ActionKind.HANDLED)


class AgentRequest(StrEnum):
    """What an agent asks for from the sidebar's card."""

    APPLY = "apply"
    DISMISS = "dismiss"
    ESCALATE = "escalate"
    HANDLE = "handle"  # apply a rule's ticket handling


# Errors ------------------------------------------------------------------------------------


class NotFound(LookupError):
    """No such rule, version or action in this installation."""


class ActionRefused(ValueError):
    """The action is well formed but the rules, a cap or a budget forbid it now; says why."""


class InvalidAction(FieldErrors):
    """An action with fields that do not validate: the message for each field, by its name."""


class InvalidImport(InvalidConditions):
    """An import file that does not validate, with every problem at its path (`rules[2].cap`)."""


@dataclass(frozen=True)
class Author:
    """Who wrote a rule version: a helpdesk user (id and name), or who ran the command line."""

    id: str | None
    name: str


# Money in words ----------------------------------------------------------------------------


def exact_money(cents: int, currency: str) -> str:
    """An amount to the cent when it has cents: "$7.88", "$15", "$1,250"."""
    if cents % 100 == 0:
        return money(cents, currency)
    whole = money(0, currency)[:-1]  # the symbol: "$", "CA$", "NOK "
    return f"{whole}{cents / 100:,.2f}"


def cents_as_units(cents: int) -> str:
    """Cents as a number an amount input shows: 1500 -> "15.00"."""
    return f"{Decimal(cents) / 100:.2f}"


# The catalog -------------------------------------------------------------------------------


def save_exception_type(
    session: Session,
    installation: Installation,
    raw: object,
    *,
    enabled: bool = True,
    now: datetime,
) -> ExceptionTypeRow:
    """Create or update a catalog entry by its key; raises InvalidExceptionType (with paths)."""
    entry = _parse_entry(raw, installation.currency)
    row = _upsert_entry(session, installation.id, entry.key, raw, enabled=enabled, now=now)
    session.commit()
    _forget(session, installation.id)
    return row


def _parse_entry(raw: object, currency: str, path: str = "") -> ExceptionType:
    """Validate a catalog entry, also that it is priced in the installation's currency."""
    entry = parse_exception_type(raw)
    if entry.currency != currency:
        raise InvalidExceptionType(
            [ConditionError(_at(path, "currency"), f"must be {currency}, this helpdesk's currency")]
        )
    return entry


def _upsert_entry(
    session: Session, installation_id: int, key: str, raw: object, *, enabled: bool, now: datetime
) -> ExceptionTypeRow:
    assert isinstance(raw, Mapping)
    definition = copy.deepcopy(dict(raw))
    row = session.scalars(
        sa.select(ExceptionTypeRow).where(
            ExceptionTypeRow.installation_id == installation_id, ExceptionTypeRow.key == key
        )
    ).first()
    if row is None:
        row = ExceptionTypeRow(
            installation_id=installation_id,
            key=key,
            definition=definition,
            enabled=enabled,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
    elif row.definition != definition or row.enabled != enabled:
        row.definition, row.enabled, row.updated_at = definition, enabled, now
    session.flush()
    return row


def exception_type_row(session: Session, installation_id: int, entry_id: int) -> ExceptionTypeRow:
    """The installation's catalog entry with this id; NotFound for any other installation's."""
    row = session.scalars(
        sa.select(ExceptionTypeRow).where(
            ExceptionTypeRow.id == entry_id, ExceptionTypeRow.installation_id == installation_id
        )
    ).first()
    if row is None:
        raise NotFound(f"There is no catalog entry {entry_id} in this helpdesk.")
    return row


def create_exception_type(
    session: Session, installation: Installation, raw: object, *, enabled: bool, now: datetime
) -> ExceptionTypeRow:
    """Add a catalog entry; InvalidExceptionType (with paths), also for a key already taken."""
    entry = _parse_entry(raw, installation.currency)
    taken = session.scalars(
        sa.select(ExceptionTypeRow.id).where(
            ExceptionTypeRow.installation_id == installation.id, ExceptionTypeRow.key == entry.key
        )
    ).first()
    if taken is not None:
        raise InvalidExceptionType(
            [ConditionError("key", f"an entry {entry.key!r} exists already")]
        )
    return save_exception_type(session, installation, raw, enabled=enabled, now=now)


def set_exception_enabled(
    session: Session, installation: Installation, entry_id: int, *, enabled: bool, now: datetime
) -> ExceptionTypeRow:
    """Offer a catalog entry again, or stop offering it (rules keep naming it)."""
    row = exception_type_row(session, installation.id, entry_id)
    if row.enabled != enabled:
        row.enabled, row.updated_at = enabled, now
        session.commit()
        _forget(session, installation.id)
    return row


def catalog_rows(session: Session, installation_id: int) -> list[ExceptionTypeRow]:
    """The installation's catalog entries, by key."""
    return list(
        session.scalars(
            sa.select(ExceptionTypeRow)
            .where(ExceptionTypeRow.installation_id == installation_id)
            .order_by(ExceptionTypeRow.key)
        )
    )


# Budgets -----------------------------------------------------------------------------------


def set_budget(
    session: Session, installation: Installation, raw: object, *, now: datetime
) -> SegmentBudget:
    """Set a segment's monthly budget from `{"segment": {...}, "monthly_cents": n}`.

    Raises InvalidBudget listing every problem at its path.
    """
    budget = parse_budget(raw)
    row = _upsert_budget(session, installation.id, budget, now=now)
    session.commit()
    return row


def _upsert_budget(
    session: Session, installation_id: int, budget: Budget, *, now: datetime
) -> SegmentBudget:
    segment = budget.segment
    row = session.scalars(
        sa.select(SegmentBudget).where(
            SegmentBudget.installation_id == installation_id,
            SegmentBudget.field == segment.field,
            SegmentBudget.value == segment.value,
        )
    ).first()
    if row is None:
        row = SegmentBudget(
            installation_id=installation_id,
            field=segment.field,
            value=segment.value,
            monthly_cents=budget.monthly_cents,
            updated_at=now,
        )
        session.add(row)
    elif row.monthly_cents != budget.monthly_cents:
        row.monthly_cents, row.updated_at = budget.monthly_cents, now
    session.flush()
    return row


def month_start(now: datetime) -> datetime:
    """The first moment of now's calendar month (UTC, as stored)."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def budget_statuses(
    session: Session, installation_id: int, *, now: datetime
) -> tuple[BudgetStatus, ...]:
    """Every segment budget with what was charged to it this month, in one grouped query."""
    spent = {
        (field, value): int(total or 0)
        for field, value, total in session.execute(
            sa.select(Action.budget_field, Action.budget_value, sa.func.sum(Action.amount_cents))
            .where(
                Action.installation_id == installation_id,
                Action.kind.in_(GRANT_KINDS),
                Action.budget_field.is_not(None),
                Action.created_at >= month_start(now),
                Action.created_at <= now,
            )
            .group_by(Action.budget_field, Action.budget_value)
        )
    }
    return tuple(
        BudgetStatus(budget, spent.get((budget.segment.field, budget.segment.value), 0))
        for budget in budgets(session, installation_id)
    )


def budgets(session: Session, installation_id: int) -> list[Budget]:
    """The installation's segment budgets, by field and value."""
    return [
        Budget(SegmentRef(row.field, row.value), row.monthly_cents)
        for row in session.scalars(
            sa.select(SegmentBudget)
            .where(SegmentBudget.installation_id == installation_id)
            .order_by(SegmentBudget.field, SegmentBudget.value)
        )
    ]


# Rules and their versions ------------------------------------------------------------------


def fields_for(session: Session, installation_id: int) -> dict[str, FieldSpec]:
    """The fields the installation's rules can test: its personas and mapped facts too.

    A fact mapped from a helpdesk tag is yes/no; one from a field is a text value.
    """
    personas = session.scalars(
        sa.select(Persona.name).where(Persona.installation_id == installation_id)
    ).all()
    facts = {
        name: FieldKind.FLAG if kind == installations.TAG else FieldKind.CHOICE
        for name, kind in session.execute(
            sa.select(FieldMapping.fact_name, FieldMapping.kind).where(
                FieldMapping.installation_id == installation_id
            )
        )
    }
    return rule_fields(personas=personas, facts=facts)


def validate_rule(
    session: Session,
    installation_id: int,
    definition: object,
    *,
    key: str,
    version: int = 1,
    exceptions: Iterable[str] | None = None,
) -> DomainRule:
    """Parse a rule's definition against the installation's fields and catalog.

    Raises InvalidRule listing every problem at its path.
    """
    known = (
        set(exceptions)
        if exceptions is not None
        else {row.key for row in catalog_rows(session, installation_id)}
    )
    return parse_rule(
        definition,
        rule_id=key,
        version=version,
        fields=fields_for(session, installation_id),
        exceptions=known,
    )


def get_rule(session: Session, installation_id: int, rule_id: int) -> Rule:
    """The installation's rule with this id; NotFound for any other installation's."""
    rule = session.scalars(
        sa.select(Rule).where(Rule.id == rule_id, Rule.installation_id == installation_id)
    ).first()
    if rule is None:
        raise NotFound(f"There is no rule {rule_id} in this helpdesk.")
    return rule


def find_rule(session: Session, installation_id: int, name: str) -> Rule:
    """The rule named by its id ("12") or its key ("late_delivery_high_value")."""
    query = sa.select(Rule).where(Rule.installation_id == installation_id)
    if name.isdigit():
        query = query.where(sa.or_(Rule.id == int(name), Rule.key == name))
    else:
        query = query.where(Rule.key == name)
    rule = session.scalars(query).first()
    if rule is None:
        raise NotFound(f"There is no rule {name!r} in this helpdesk.")
    return rule


def rule_history(session: Session, installation_id: int, rule_id: int) -> list[RuleVersion]:
    """Every version of the rule, oldest first."""
    get_rule(session, installation_id, rule_id)
    return list(
        session.scalars(
            sa.select(RuleVersion)
            .where(RuleVersion.installation_id == installation_id, RuleVersion.rule_id == rule_id)
            .order_by(RuleVersion.version)
        )
    )


def rule_version(session: Session, installation_id: int, rule_id: int, version: int) -> RuleVersion:
    """One version of the rule, as it was written."""
    found = session.scalars(
        sa.select(RuleVersion).where(
            RuleVersion.installation_id == installation_id,
            RuleVersion.rule_id == rule_id,
            RuleVersion.version == version,
        )
    ).first()
    if found is None:
        get_rule(session, installation_id, rule_id)
        raise NotFound(f"Rule {rule_id} has no version {version}.")
    return found


def current_rules(session: Session, installation_id: int) -> list[tuple[Rule, RuleVersion]]:
    """The installation's rules with their current versions, by key."""
    return [
        (rule, version)
        for rule, version in session.execute(
            sa.select(Rule, RuleVersion)
            .join(
                RuleVersion,
                sa.and_(
                    RuleVersion.rule_id == Rule.id, RuleVersion.version == Rule.current_version
                ),
            )
            .where(Rule.installation_id == installation_id)
            .order_by(Rule.key)
        )
    ]


def create_rule(
    session: Session,
    installation: Installation,
    *,
    key: str,
    definition: Mapping[str, object],
    author: Author,
    note: str = "",
    now: datetime,
) -> RuleVersion:
    """Create a rule at version 1; raises InvalidRule (with paths) or ValueError for the key."""
    _check_rule_key(session, installation.id, key)
    parsed = validate_rule(session, installation.id, definition, key=key)
    version = _new_rule(session, installation.id, key, definition, parsed, author, note, now)
    session.commit()
    _forget(session, installation.id)
    return version


def check_new_rule_key(session: Session, installation_id: int, key: str) -> None:
    """Raise InvalidRule (at `key`) for a key of the wrong shape or one a rule has already."""
    _check_rule_key(session, installation_id, key)


def _check_rule_key(session: Session, installation_id: int, key: str) -> None:
    if not CODE.pattern.fullmatch(key):
        raise InvalidRule([ConditionError("key", f"expected {CODE.description}")])
    taken = session.scalars(
        sa.select(Rule.id).where(Rule.installation_id == installation_id, Rule.key == key)
    ).first()
    if taken is not None:
        raise InvalidRule([ConditionError("key", f"a rule {key!r} already exists")])


def _new_rule(
    session: Session,
    installation_id: int,
    key: str,
    definition: Mapping[str, object],
    parsed: DomainRule,
    author: Author,
    note: str,
    now: datetime,
) -> RuleVersion:
    rule = Rule(
        installation_id=installation_id,
        key=key,
        current_version=1,
        enabled=parsed.enabled,
        created_at=now,
        updated_at=now,
    )
    session.add(rule)
    session.flush()
    version = _version_row(rule, 1, definition, author, note, now)
    session.add(version)
    session.flush()
    return version


def _version_row(
    rule: Rule,
    number: int,
    definition: Mapping[str, object],
    author: Author,
    note: str,
    now: datetime,
    restored_from: int | None = None,
) -> RuleVersion:
    return RuleVersion(
        installation_id=rule.installation_id,
        rule_id=rule.id,
        version=number,
        definition=copy.deepcopy(dict(definition)),
        author_id=author.id,
        author_name=author.name[:255],
        note=note[:NOTE_MAX_LENGTH],
        restored_from=restored_from,
        created_at=now,
    )


def update_rule(
    session: Session,
    installation: Installation,
    rule_id: int,
    definition: Mapping[str, object],
    *,
    author: Author,
    note: str = "",
    now: datetime,
) -> RuleVersion | None:
    """Write a new version of the rule; None when the definition is the current one already.

    Raises NotFound for another installation's rule, InvalidRule (with paths) for a definition
    that does not validate.
    """
    rule = get_rule(session, installation.id, rule_id)
    parsed = validate_rule(
        session, installation.id, definition, key=rule.key, version=rule.current_version + 1
    )
    current = rule_version(session, installation.id, rule.id, rule.current_version)
    if current.definition == dict(definition):
        return None
    version = _add_version(session, rule, definition, parsed, author, note, now)
    session.commit()
    _forget(session, installation.id)
    return version


def _add_version(
    session: Session,
    rule: Rule,
    definition: Mapping[str, object],
    parsed: DomainRule,
    author: Author,
    note: str,
    now: datetime,
    restored_from: int | None = None,
) -> RuleVersion:
    # Versions are numbered in the database's order: a concurrent writer of the same number
    # fails on the unique (rule_id, version) instead of overwriting.
    number = rule.current_version + 1
    version = _version_row(rule, number, definition, author, note, now, restored_from)
    session.add(version)
    rule.current_version, rule.enabled, rule.updated_at = number, parsed.enabled, now
    session.flush()
    return version


def rollback_rule(
    session: Session,
    installation: Installation,
    rule_id: int,
    *,
    to_version: int,
    author: Author,
    note: str | None = None,
    now: datetime,
) -> RuleVersion:
    """Put an old version back in force, as a new version that copies it.

    Raises NotFound for an unknown rule or version; InvalidRule when the old version no longer
    validates (it names a persona or catalog entry that has gone).
    """
    rule = get_rule(session, installation.id, rule_id)
    old = rule_version(session, installation.id, rule.id, to_version)
    if to_version == rule.current_version:
        raise ValueError(f"Version {to_version} is already the rule's current version.")
    parsed = validate_rule(
        session, installation.id, old.definition, key=rule.key, version=rule.current_version + 1
    )
    version = _add_version(
        session,
        rule,
        old.definition,
        parsed,
        author,
        note if note is not None else f"Rolled back to version {to_version}",
        now,
        restored_from=to_version,
    )
    session.commit()
    _forget(session, installation.id)
    return version


# Import and export -------------------------------------------------------------------------


def export_rules(session: Session, installation: Installation) -> dict[str, Any]:
    """The installation's catalog, budgets and rules (current versions) as one JSON object.

    Sorted by key, so the file diffs well in version control; `import_rules` reads it back.
    """
    return {
        "format": EXPORT_FORMAT,
        "currency": installation.currency,
        "exceptions": [
            {**row.definition, "enabled": row.enabled}
            for row in catalog_rows(session, installation.id)
        ],
        "budgets": [
            {
                "segment": {"field": budget.segment.field, "value": budget.segment.value},
                "monthly_cents": budget.monthly_cents,
            }
            for budget in budgets(session, installation.id)
        ],
        "rules": [
            {"key": rule.key, **version.definition}
            for rule, version in current_rules(session, installation.id)
        ],
    }


@dataclass(frozen=True)
class ImportReport:
    """What an import changed: keys of what was created and of what got a new version."""

    exceptions_created: tuple[str, ...]
    exceptions_updated: tuple[str, ...]
    budgets_set: tuple[str, ...]
    rules_created: tuple[str, ...]
    rules_versioned: tuple[str, ...]
    rules_unchanged: tuple[str, ...]
    rules_not_in_file: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(
            self.exceptions_created
            or self.exceptions_updated
            or self.budgets_set
            or self.rules_created
            or self.rules_versioned
        )


@dataclass(frozen=True)
class _Planned:
    """A validated import, ready to write."""

    exceptions: tuple[tuple[str, dict[str, Any], bool], ...]
    budgets: tuple[Budget, ...]
    rules: tuple[tuple[str, dict[str, Any], DomainRule], ...]


def import_rules(
    session: Session,
    installation: Installation,
    raw: object,
    *,
    author: Author,
    note: str = "",
    now: datetime,
) -> ImportReport:
    """Validate a whole file, then write it in one transaction: nothing unless all is valid.

    Catalog entries and budgets are created or updated by key; each rule whose definition
    differs from its current version gets a new version, a new key a new rule. Rules not in
    the file are left as they are (and listed). Raises InvalidImport with every problem at its
    path, such as `rules[3].conditions.all[0].value`.
    """
    plan = _plan_import(session, installation, raw)
    existing_entries = {row.key: row for row in catalog_rows(session, installation.id)}
    created_entries, updated_entries = [], []
    for key, definition, enabled in plan.exceptions:
        before = existing_entries.get(key)
        if before is None:
            created_entries.append(key)
        elif before.definition != definition or before.enabled != enabled:
            updated_entries.append(key)
        _upsert_entry(session, installation.id, key, definition, enabled=enabled, now=now)
    old_budgets = set(budgets(session, installation.id))
    budgets_set = []
    for budget in plan.budgets:
        if budget not in old_budgets:
            budgets_set.append(f"{budget.segment.field}={budget.segment.value}")
        _upsert_budget(session, installation.id, budget, now=now)
    current = {
        rule.key: (rule, version) for rule, version in current_rules(session, installation.id)
    }
    created, versioned, unchanged = [], [], []
    for key, definition, parsed in plan.rules:
        if key not in current:
            _new_rule(session, installation.id, key, definition, parsed, author, note, now)
            created.append(key)
            continue
        rule, version = current[key]
        if version.definition == definition:
            unchanged.append(key)
            continue
        _add_version(session, rule, definition, parsed, author, note, now)
        versioned.append(key)
    session.commit()
    _forget(session, installation.id)
    in_file = {key for key, _, _ in plan.rules}
    return ImportReport(
        exceptions_created=tuple(created_entries),
        exceptions_updated=tuple(updated_entries),
        budgets_set=tuple(budgets_set),
        rules_created=tuple(created),
        rules_versioned=tuple(versioned),
        rules_unchanged=tuple(unchanged),
        rules_not_in_file=tuple(sorted(set(current) - in_file)),
    )


def _plan_import(session: Session, installation: Installation, raw: object) -> _Planned:
    """Check every part of the file, collecting every problem at its path."""
    errors: list[ConditionError] = []
    if not isinstance(raw, Mapping):
        raise InvalidImport(
            [ConditionError("", "expected an object with exceptions, budgets and rules")]
        )
    for key in raw:
        if key not in ("format", "currency", "exceptions", "budgets", "rules"):
            errors.append(ConditionError(str(key), "unknown key"))
    if "format" in raw and raw["format"] != EXPORT_FORMAT:
        errors.append(ConditionError("format", f"expected {EXPORT_FORMAT}"))
    if "currency" in raw and raw["currency"] != installation.currency:
        errors.append(
            ConditionError("currency", f"must be {installation.currency}, this helpdesk's currency")
        )
    exceptions = _plan_exceptions(_list(raw, "exceptions", errors), installation.currency, errors)
    planned_budgets = _plan_budgets(_list(raw, "budgets", errors), errors)
    # Rules may name the file's entries, valid or not (those are reported where they are).
    known = {row.key for row in catalog_rows(session, installation.id)}
    known.update(_file_keys(_list(raw, "exceptions", [])))
    rules = _plan_rules(
        _list(raw, "rules", errors), fields_for(session, installation.id), known, errors
    )
    if errors:
        raise InvalidImport(errors)
    return _Planned(tuple(exceptions), tuple(planned_budgets), tuple(rules))


def _list(raw: Mapping[str, object], key: str, errors: list[ConditionError]) -> list[object]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        errors.append(ConditionError(key, "expected a list"))
        return []
    return value


def _file_keys(items: Sequence[object]) -> set[str]:
    """The keys the file's catalog entries give, valid or not, so rules are not blamed twice."""
    return {
        item["key"]
        for item in items
        if isinstance(item, Mapping) and isinstance(item.get("key"), str)
    }


def _plan_exceptions(
    items: Sequence[object], currency: str, errors: list[ConditionError]
) -> list[tuple[str, dict[str, Any], bool]]:
    planned: list[tuple[str, dict[str, Any], bool]] = []
    for i, item in enumerate(items):
        path = f"exceptions[{i}]"
        definition = dict(item) if isinstance(item, Mapping) else item
        enabled = True
        if isinstance(definition, dict):
            enabled_value = definition.pop("enabled", True)
            if not isinstance(enabled_value, bool):
                errors.append(ConditionError(f"{path}.enabled", "expected true or false"))
            else:
                enabled = enabled_value
        try:
            entry = _parse_entry(definition, currency, path)
        except InvalidConditions as error:
            errors.extend(_moved(error, path))
            continue
        if any(key == entry.key for key, _, _ in planned):
            errors.append(ConditionError(f"{path}.key", f"{entry.key} is listed twice"))
            continue
        assert isinstance(definition, dict)
        planned.append((entry.key, definition, enabled))
    return planned


def _plan_budgets(items: Sequence[object], errors: list[ConditionError]) -> list[Budget]:
    planned: list[Budget] = []
    for i, item in enumerate(items):
        path = f"budgets[{i}]"
        try:
            budget = parse_budget(item)
        except InvalidBudget as error:
            errors.extend(_moved(error, path))
            continue
        if any(b.segment == budget.segment for b in planned):
            errors.append(
                ConditionError(f"{path}.segment", "this segment's budget is listed twice")
            )
            continue
        planned.append(budget)
    return planned


def _plan_rules(
    items: Sequence[object],
    fields: Mapping[str, FieldSpec],
    known: set[str],
    errors: list[ConditionError],
) -> list[tuple[str, dict[str, Any], DomainRule]]:
    planned: list[tuple[str, dict[str, Any], DomainRule]] = []
    for i, item in enumerate(items):
        path = f"rules[{i}]"
        if not isinstance(item, Mapping):
            errors.append(ConditionError(path, "expected an object with key, name and conditions"))
            continue
        definition = dict(item)
        key = definition.pop("key", None)
        if not isinstance(key, str) or not CODE.pattern.fullmatch(key):
            errors.append(ConditionError(f"{path}.key", f"expected {CODE.description}"))
            key = None
        elif any(k == key for k, _, _ in planned):
            errors.append(ConditionError(f"{path}.key", f"{key} is listed twice"))
            key = None
        try:
            parsed = parse_rule(
                definition, rule_id=key or "?", version=1, fields=fields, exceptions=known
            )
        except InvalidConditions as error:
            errors.extend(_moved(error, path))
            continue
        if key is not None:
            planned.append((key, definition, parsed))
    return planned


def _moved(error: InvalidConditions, path: str) -> list[ConditionError]:
    return [ConditionError(_at(path, e.path), e.message) for e in error.errors]


def _at(path: str, key: str) -> str:
    if not key:
        return path
    if not path:
        return key
    return path + key if key.startswith("[") else f"{path}.{key}"


# The compiled rule book --------------------------------------------------------------------


@dataclass(frozen=True)
class RuleBook:
    """An installation's catalog and current rules, checked and compiled; shared read-only.

    `broken` lists what could not be used, with why: a rule that no longer validates (a
    persona it names was deleted), a catalog entry that no longer parses.
    """

    fingerprint: tuple[object, ...]
    compiled: CompiledRules
    catalog: Mapping[str, ExceptionType]
    rules: Mapping[str, DomainRule]
    rule_ids: Mapping[str, int]
    broken: tuple[tuple[str, str], ...]


_books: LRUCache[tuple[str, int], RuleBook] = LRUCache(maxsize=BOOK_CACHE_SIZE)
_books_lock = threading.Lock()


def rule_book(session: Session, installation: Installation) -> RuleBook:
    """The installation's compiled rules, rebuilt only when something they depend on changed.

    One cheap aggregate query per call tells whether the rules, the catalog, the personas or
    the fact mappings changed since the book was built (in this process or any other), so 500
    rules are parsed once per change, not once per ticket view. Nothing here is needed for
    correctness: another process simply builds its own copy.
    """
    key = _book_key(session, installation.id)
    fingerprint = _fingerprint(session, installation)
    with _books_lock:
        book = _books.get(key)
    if book is not None and book.fingerprint == fingerprint:
        return book
    book = _build_book(session, installation, fingerprint)
    with _books_lock:
        _books[key] = book
    return book


def _book_key(session: Session, installation_id: int) -> tuple[str, int]:
    """Books are per database too: tests and tools may open several in one process."""
    return (session.get_bind().engine.url.render_as_string(), installation_id)


def _forget(session: Session, installation_id: int) -> None:
    """Drop this process's book after a change made here, whatever the timestamps say."""
    with _books_lock:
        _books.pop(_book_key(session, installation_id), None)


def _fingerprint(session: Session, installation: Installation) -> tuple[object, ...]:
    iid = installation.id

    def scalar(expression: Any, model: Any) -> Any:
        return sa.select(expression).where(model.installation_id == iid).scalar_subquery()

    row = session.execute(
        sa.select(
            # The revision decides (see `plugin.models._count_rule_book_changes`); the counts
            # and latest changes also catch a write made outside the ORM (a manual fix in SQL).
            sa.select(Installation.rule_book_revision)
            .where(Installation.id == iid)
            .scalar_subquery(),
            scalar(sa.func.max(RuleVersion.id), RuleVersion),
            scalar(sa.func.count(Rule.id), Rule),
            scalar(sa.func.max(Rule.updated_at), Rule),
            scalar(sa.func.count(ExceptionTypeRow.id), ExceptionTypeRow),
            scalar(sa.func.max(ExceptionTypeRow.id), ExceptionTypeRow),
            scalar(sa.func.max(ExceptionTypeRow.updated_at), ExceptionTypeRow),
            scalar(sa.func.count(Persona.id), Persona),
            scalar(sa.func.max(Persona.id), Persona),
            scalar(sa.func.max(Persona.updated_at), Persona),
            scalar(sa.func.count(FieldMapping.id), FieldMapping),
            scalar(sa.func.max(FieldMapping.id), FieldMapping),
        )
    ).one()
    return (installation.currency, *row)


def _build_book(
    session: Session, installation: Installation, fingerprint: tuple[object, ...]
) -> RuleBook:
    broken: list[tuple[str, str]] = []
    catalog: dict[str, ExceptionType] = {}
    enabled: set[str] = set()
    for row in catalog_rows(session, installation.id):
        try:
            catalog[row.key] = _parse_entry(row.definition, installation.currency)
        except InvalidConditions as error:
            broken.append((f"exception {row.key}", str(error)))
            continue
        if row.enabled:
            enabled.add(row.key)
    fields = fields_for(session, installation.id)
    rules: dict[str, DomainRule] = {}
    rule_ids: dict[str, int] = {}
    for rule, version in current_rules(session, installation.id):
        try:
            parsed = parse_rule(
                version.definition,
                rule_id=rule.key,
                version=version.version,
                fields=fields,
                exceptions=catalog,
            )
        except InvalidConditions as error:
            broken.append((f"rule {rule.key}", str(error)))
            continue
        # A disabled catalog entry is offered by no rule, until it is enabled again.
        rules[rule.key] = replace(
            parsed, suggest=tuple(s for s in parsed.suggest if s.exception in enabled)
        )
        rule_ids[rule.key] = rule.id
    for what, problem in broken:
        log.warning("installation %s: %s is not used: %s", installation.id, what, problem)
    compiled = CompiledRules.build(
        rules.values(),
        (entry for key, entry in catalog.items() if key in enabled),
        currency=installation.currency,
    )
    return RuleBook(
        fingerprint=fingerprint,
        compiled=compiled,
        catalog=catalog,
        rules=rules,
        rule_ids=rule_ids,
        broken=tuple(broken),
    )


# A ticket's suggestions --------------------------------------------------------------------


@dataclass(frozen=True)
class OrderValue:
    """The order a percent cost is a share of, and how it was chosen, in words."""

    cents: int
    description: str  # "order ORD-10234, named in the subject" / "the latest order, ORD-10234"


@dataclass(frozen=True)
class TicketContext:
    """Who and what a ticket is about, and the rule context built from it."""

    rule_context: RuleContext
    customer: Customer | None
    requester: Person
    order_value: OrderValue | None


def ticket_context(
    session: Session,
    installation: Installation,
    *,
    ticket: Ticket,
    requester: Person,
    now: datetime,
) -> TicketContext:
    """Build what the rules are evaluated against for this ticket, from stored data.

    `ticket` and `requester` come from the helpdesk (never from the page).
    """
    customer = customers.find_customer(session, installation_id=installation.id, person=requester)
    profile = (
        segmentation.profile_for_customer(session, installation, customer, now=now)
        if customer is not None
        else None
    )
    facts = installations.mapped_facts(
        requester, installations.list_mappings(session, installation)
    )
    order_value = _order_value(session, installation.id, customer, ticket.subject, now=now)
    context = RuleContext(
        ticket=ticket,
        now=now,
        customer=profile.facts() if profile else {},
        personas=tuple(match.name for match in profile.personas) if profile else (),
        facts=facts,
        grants=_grants(session, installation.id, customer, requester.id, now=now),
        budgets=budget_statuses(session, installation.id, now=now),
        order_value_cents=order_value.cents if order_value else None,
    )
    return TicketContext(context, customer, requester, order_value)


def _order_value(
    session: Session,
    installation_id: int,
    customer: Customer | None,
    subject: str,
    *,
    now: datetime,
) -> OrderValue | None:
    """The order the subject names by number, or else the customer's latest order."""
    if customer is None:
        return None
    orders = sa.select(Order.external_id, Order.amount_cents).where(
        Order.installation_id == installation_id,
        Order.customer_id == customer.id,
        Order.placed_at <= now,
    )
    numbers = {word for word in re.findall(r"[\w-]+", subject) if any(c.isdigit() for c in word)}
    if numbers:
        named = session.execute(
            orders.where(Order.external_id.in_(sorted(numbers))).order_by(Order.placed_at.desc())
        ).first()
        if named is not None:
            return OrderValue(int(named[1]), f"order {named[0]}, named in the subject")
    latest = session.execute(orders.order_by(Order.placed_at.desc()).limit(1)).first()
    if latest is None:
        return None
    return OrderValue(int(latest[1]), f"the latest order, {latest[0]}")


def _grants(
    session: Session,
    installation_id: int,
    customer: Customer | None,
    requester_id: str,
    *,
    now: datetime,
) -> tuple[Grant, ...]:
    """What was granted to the customer (or requester) within the longest cap there can be."""
    who = (
        sa.or_(Action.customer_id == customer.id, Action.requester_id == requester_id)
        if customer is not None
        else Action.requester_id == requester_id
    )
    rows = session.execute(
        sa.select(Action.exception_key, Action.amount_cents, Action.created_at).where(
            Action.installation_id == installation_id,
            Action.kind.in_(GRANT_KINDS),
            who,
            Action.created_at > now - timedelta(days=MAX_CAP_DAYS),
        )
    )
    return tuple(Grant(key, int(amount or 0), at) for key, amount, at in rows)


@dataclass(frozen=True)
class Offer:
    """A suggestion as the card shows it, with what limits the agent's choice of amount."""

    suggestion: Suggestion
    editable: AmountLimits | None
    approval_threshold_cents: int | None
    # For a share of an order: "10% of the order, at least $5 — of the latest order, ORD-1 ($90)"
    priced_from: str | None = None

    @property
    def key(self) -> str:
        return self.suggestion.exception.key


@dataclass(frozen=True)
class SuggestionsCard:
    """Everything the sidebar's suggestions card shows for one ticket."""

    offers: tuple[Offer, ...]
    actions: tuple[ActionSuggestion, ...]
    withheld: tuple[Withheld, ...]
    running_out: tuple[BudgetStatus, ...]
    goodwill: Goodwill
    done: tuple[Action, ...]  # on this ticket, newest first
    catalog: Mapping[str, ExceptionType]
    order_value: OrderValue | None
    is_customer: bool
    currency: str
    # How the ticket handling done on this ticket stands on its way there, by action id.
    deliveries: Mapping[int, Delivery] = field(default_factory=dict)


@dataclass(frozen=True)
class _Evaluated:
    book: RuleBook
    context: TicketContext
    evaluation: Evaluation


def _evaluate(
    session: Session,
    installation: Installation,
    *,
    ticket: Ticket,
    requester: Person,
    now: datetime,
) -> _Evaluated:
    book = rule_book(session, installation)
    context = ticket_context(session, installation, ticket=ticket, requester=requester, now=now)
    return _Evaluated(book, context, book.compiled.evaluate(context.rule_context))


def suggestions_for(
    session: Session,
    installation: Installation,
    *,
    ticket: Ticket,
    requester: Person,
    now: datetime,
) -> SuggestionsCard:
    """The ticket's ranked suggestions, less those an agent already acted on for this ticket."""
    found = _evaluate(session, installation, ticket=ticket, requester=requester, now=now)
    done = ticket_actions(session, installation.id, ticket.id)
    settled = {action.exception_key for action in done if action.kind != ActionKind.HANDLED}
    handled: dict[TicketAction, int] = {}
    for action in done:
        handling = handling_of(action)
        if handling is not None:
            handled.setdefault(handling, action.id)
    order = found.context.order_value
    offers = tuple(
        Offer(
            suggestion,
            suggestion.exception.editable,
            found.book.rules[suggestion.rule.id].approval_threshold_cents,
            priced_from=(
                f"{suggestion.exception.cost.describe(installation.currency)} — of "
                f"{order.description} ({exact_money(order.cents, installation.currency)})"
                if isinstance(suggestion.exception.cost, PercentCost) and order
                else None
            ),
        )
        for suggestion in found.evaluation.suggestions
        if suggestion.exception.key not in settled
    )
    return SuggestionsCard(
        offers=offers,
        actions=tuple(a for a in found.evaluation.actions if a.action not in handled),
        withheld=tuple(w for w in found.evaluation.withheld if w.exception.key not in settled),
        running_out=tuple(
            dict.fromkeys(
                o.suggestion.budget
                for o in offers
                if o.suggestion.budget is not None and o.suggestion.budget.running_out
            )
        ),
        goodwill=found.evaluation.goodwill,
        done=tuple(done),
        catalog=found.book.catalog,
        order_value=found.context.order_value,
        is_customer=found.context.customer is not None,
        currency=installation.currency,
        deliveries=_deliveries(session, installation.id, handled.values()),
    )


def handling_of(action: Action) -> TicketAction | None:
    """The ticket handling a handled action applies; None for any other action."""
    if (
        action.kind != ActionKind.HANDLED
        or action.handling not in tuple(HandlingKind)
        or not action.handling_value
    ):
        return None
    return TicketAction(HandlingKind(action.handling), action.handling_value)


def _deliveries(
    session: Session, installation_id: int, action_ids: Iterable[int]
) -> dict[int, Delivery]:
    """The delivery rows of these actions, by action id (no query for none)."""
    ids = sorted(action_ids)
    if not ids:
        return {}
    return {
        row.action_id: row
        for row in session.scalars(
            sa.select(Delivery).where(
                Delivery.installation_id == installation_id, Delivery.action_id.in_(ids)
            )
        )
    }


def ticket_actions(session: Session, installation_id: int, ticket_id: str) -> list[Action]:
    """What was recorded about exceptions and ticket handling on a ticket, newest first (not
    review actions)."""
    return list(
        session.scalars(
            sa.select(Action)
            .where(
                Action.installation_id == installation_id,
                Action.ticket_id == ticket_id,
                Action.kind.in_(tuple(ActionKind)),
            )
            .order_by(Action.created_at.desc(), Action.id.desc())
        )
    )


# Recording actions -------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionOutcome:
    """What was recorded (or had been, for a repeated request), in a sentence for the agent."""

    action: Action
    message: str
    duplicate: bool = False


def record_action(
    session: Session,
    installation: Installation,
    *,
    ticket: Ticket,
    requester: Person,
    agent_id: str | None,
    fields: Mapping[str, object],
    now: datetime,
) -> ActionOutcome:
    """Record an agent's apply, dismiss or escalate of a suggested exception, once.

    `fields` are as the card's forms send them: `kind` (apply, dismiss, escalate), `exception`
    (the catalog key), `amount` (in currency units; only an editable amount may be given, and
    the estimate is used when it is absent) or `amount_cents`, `reason` (a code of the entry's
    apply or dismiss reasons), `text` and `idempotency_key`. Kind `handle` applies a rule's
    ticket handling instead: `handling` (raise_priority, add_tag, route_to_group) and
    `handling_value`, recorded only while the rules suggest it for the ticket.

    The rules are evaluated again now: what a cap or budget forbids at this moment is refused
    (ActionRefused, saying why), and an amount above the rule's approval threshold is recorded
    as escalated instead of applied. A request whose idempotency key was recorded already gets
    that record back. Raises InvalidAction with a message per field.
    """
    key = _text(fields.get("idempotency_key"))
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidAction({"idempotency_key": "expected 8 to 64 letters, digits, _ or -"})
    book = rule_book(session, installation)
    earlier = _recorded(session, installation.id, key)
    if earlier is not None:
        return _outcome(earlier, book.catalog, duplicate=True)
    if _text(fields.get("kind")) == AgentRequest.HANDLE:
        return _record_handling(
            session,
            installation,
            ticket=ticket,
            requester=requester,
            agent_id=agent_id,
            fields=fields,
            key=key,
            now=now,
        )
    request, entry, amount, reason, text = _validated(fields, book)
    customer = customers.find_customer(session, installation_id=installation.id, person=requester)
    if request is not AgentRequest.DISMISS:
        _lock_for_grant(session, installation.id)
    found = _evaluate(session, installation, ticket=ticket, requester=requester, now=now)
    suggestion = next(
        (s for s in found.evaluation.suggestions if s.exception.key == entry.key), None
    )
    withheld = next((w for w in found.evaluation.withheld if w.exception.key == entry.key), None)
    if suggestion is not None:
        made_by = suggestion.rule
    elif withheld is not None and request is AgentRequest.DISMISS:
        made_by = withheld.rule  # withheld since the card was shown; dismissing it is harmless
    elif withheld is not None:
        raise ActionRefused(f"{entry.name} can't be given now: {withheld.explanation}.")
    else:
        raise ActionRefused(f"{entry.name} is not suggested for this ticket any more.")
    kind, charged = ActionKind.DISMISSED, None
    if request is not AgentRequest.DISMISS:
        assert suggestion is not None
        amount = suggestion.cost_cents if amount is None else amount
        budget = suggestion.budget
        if budget is not None and not budget.allows(amount):
            raise ActionRefused(
                f"{exact_money(amount, entry.currency)} would pass the "
                f"{budget.budget.segment.label} budget: {budget.sentence(entry.currency)}."
            )
        rule = found.book.rules[suggestion.rule.id]
        threshold = rule.approval_threshold_cents
        above = threshold is not None and amount > threshold
        kind = (
            ActionKind.ESCALATED
            if request is AgentRequest.ESCALATE or above
            else ActionKind.APPLIED
        )
        charged = rule.budget
    action = Action(
        installation_id=installation.id,
        ticket_id=ticket.id,
        requester_id=requester.id,
        customer_id=customer.id if customer else None,
        agent_id=agent_id,
        kind=kind.value,
        exception_key=entry.key,
        amount_cents=amount,
        currency=entry.currency,
        reason_code=reason,
        text=text,
        rule_id=found.book.rule_ids.get(made_by.id),
        rule_version=made_by.version,
        budget_field=charged.field if charged else None,
        budget_value=charged.value if charged else None,
        idempotency_key=key,
        created_at=now,
    )
    return _commit_once(session, action, found.book.catalog)


def _record_handling(
    session: Session,
    installation: Installation,
    *,
    ticket: Ticket,
    requester: Person,
    agent_id: str | None,
    fields: Mapping[str, object],
    key: str,
    now: datetime,
) -> ActionOutcome:
    """Record an agent's apply of a rule's ticket handling, once per ticket, if the rules
    suggest it for the ticket now; a stale or forged request is refused (ActionRefused).

    Nothing is granted: the outbox applies it to the ticket with the action's note.
    """
    wanted = _handling(fields)
    found = _evaluate(session, installation, ticket=ticket, requester=requester, now=now)
    suggested = next((s for s in found.evaluation.actions if s.action == wanted), None)
    if suggested is None:
        raise ActionRefused(
            f"{wanted.describe()} is not suggested for this ticket now, so nothing was recorded."
        )
    # Suggested until the ticket shows the change, but applied once: the outbox is on it.
    applied = session.scalars(
        sa.select(Action.id).where(
            Action.installation_id == installation.id,
            Action.ticket_id == ticket.id,
            Action.kind == ActionKind.HANDLED,
            Action.handling == wanted.kind.value,
            Action.handling_value == wanted.value,
        )
    ).first()
    if applied is not None:
        raise ActionRefused(f"{wanted.describe()}: done on this ticket already.")
    customer = found.context.customer
    action = Action(
        installation_id=installation.id,
        ticket_id=ticket.id,
        requester_id=requester.id,
        customer_id=customer.id if customer else None,
        agent_id=agent_id,
        kind=ActionKind.HANDLED.value,
        exception_key="",
        amount_cents=None,
        currency=installation.currency,
        reason_code=None,
        text="",
        rule_id=found.book.rule_ids.get(suggested.rule.id),
        rule_version=suggested.rule.version,
        handling=wanted.kind.value,
        handling_value=wanted.value,
        idempotency_key=key,
        created_at=now,
    )
    return _commit_once(session, action, found.book.catalog)


def _handling(fields: Mapping[str, object]) -> TicketAction:
    """The ticket handling a request names; InvalidAction when it names none."""
    kind, value = _text(fields.get("handling")), _text(fields.get("handling_value"))
    errors: dict[str, str] = {}
    if kind not in tuple(HandlingKind):
        errors["handling"] = "expected one of " + ", ".join(HandlingKind)
    if not value:
        errors["handling_value"] = "name the priority, tag or group"
    if errors:
        raise InvalidAction(errors)
    return TicketAction(HandlingKind(kind), value)


def _lock_for_grant(session: Session, installation_id: int) -> None:
    """Serialize the installation's grants until commit, so two agents cannot both take the
    last one a cap or a budget allows: whoever comes second waits, then sees the first's grant.

    A no-op update of the installation's row is the lock on both databases: a row lock on
    PostgreSQL, the write lock on SQLite. Agents click at human speed; the wait is short.
    """
    session.execute(
        sa.update(Installation)
        .where(Installation.id == installation_id)
        .values(id=Installation.id)
        .execution_options(synchronize_session=False)
    )


def _validated(
    fields: Mapping[str, object], book: RuleBook
) -> tuple[AgentRequest, ExceptionType, int | None, str, str]:
    """Check the request's fields: kind, exception, reason, text and an editable amount.

    Raises InvalidAction with every field's problem.
    """
    errors: dict[str, str] = {}
    request, amount_text = _request(fields)
    if request is None:
        errors["kind"] = "expected apply, dismiss or escalate"
    entry = book.catalog.get(_text(fields.get("exception")))
    if entry is None:
        errors["exception"] = "not in this helpdesk's catalog"
    text = _text(fields.get("text"))
    if len(text) > TEXT_MAX_LENGTH:
        errors["text"] = f"at most {TEXT_MAX_LENGTH:,} characters"
    if entry is None or request is None:
        raise InvalidAction(errors)
    reasons = entry.dismiss_reasons if request is AgentRequest.DISMISS else entry.apply_reasons
    reason = _text(fields.get("reason"))
    if not any(r.code == reason for r in reasons):
        errors["reason"] = "choose one of: " + ", ".join(r.label for r in reasons)
    amount = None
    if (
        request is not AgentRequest.DISMISS
        and entry.editable is not None
        and amount_text is not None
    ):
        amount = _amount(amount_text, entry.editable, entry.currency, errors)
    if errors:
        raise InvalidAction(errors)
    return request, entry, amount, reason, text


def _request(fields: Mapping[str, object]) -> tuple[AgentRequest | None, object]:
    """The request's kind, and its amount: `amount` in units, or `amount_cents`.

    No amount at all (None) means the estimate; an empty one is a mistake to report.
    """
    kind = _text(fields.get("kind"))
    request = AgentRequest(kind) if kind in tuple(AgentRequest) else None
    if fields.get("amount_cents") not in (None, ""):
        cents = fields["amount_cents"]
        if isinstance(cents, int) and not isinstance(cents, bool):
            return request, Decimal(cents) / 100
        return request, "not cents"
    return request, fields.get("amount")


def _amount(raw: object, limits: AmountLimits, currency: str, errors: dict[str, str]) -> int | None:
    """An editable amount in currency units ("12.50"), in cents, within the limits."""
    low, high = exact_money(limits.min_cents, currency), exact_money(limits.max_cents, currency)
    span = f"from {low} to {high}"
    if isinstance(raw, str) and not raw.strip():
        errors["amount"] = f"enter an amount {span}"
        return None
    try:
        units = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip().replace(",", ""))
    except InvalidOperation:
        errors["amount"] = f"expected an amount such as 12.50, {span}"
        return None
    if not units.is_finite() or units != units.quantize(Decimal("0.01")):
        errors["amount"] = f"expected an amount in whole cents, {span}"
        return None
    cents = int(units * 100)
    if limits.clamp(cents) != cents:
        errors["amount"] = f"must be {span}"
        return None
    return cents


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _recorded(session: Session, installation_id: int, key: str) -> Action | None:
    return session.scalars(
        sa.select(Action).where(
            Action.installation_id == installation_id, Action.idempotency_key == key
        )
    ).first()


def _commit_once(
    session: Session, action: Action, catalog: Mapping[str, ExceptionType]
) -> ActionOutcome:
    """Write the action; if the same key won a race, give back what was written."""
    session.add(action)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        earlier = _recorded(session, action.installation_id, action.idempotency_key)
        if earlier is None:
            raise
        return _outcome(earlier, catalog, duplicate=True)
    return _outcome(action, catalog)


def _outcome(
    action: Action, catalog: Mapping[str, ExceptionType], *, duplicate: bool = False
) -> ActionOutcome:
    handling = handling_of(action)
    if handling is not None:
        # The agent is told where it stands: recorded, not yet on the ticket.
        message = f"{handling.describe()}: recorded, and on its way to the ticket."
        return ActionOutcome(action, message, duplicate)
    return ActionOutcome(action, describe_action(action, catalog), duplicate)


def describe_action(action: Action, catalog: Mapping[str, ExceptionType]) -> str:
    """Say what was recorded: "Applied: $15 Waived shipping fee — recorded; ..."."""
    handling = handling_of(action)
    if handling is not None:
        return f"Ticket handling: {handling.describe()}."
    entry = catalog.get(action.exception_key)
    name = entry.name if entry else action.exception_key
    amount = (
        f"{exact_money(action.amount_cents, action.currency)} "
        if action.amount_cents is not None
        else ""
    )
    reason = _reason_label(entry, action) if entry else action.reason_code
    # Delivery to the ticket as a note comes with the action outbox; until then, say only this.
    noted = "in the action log."
    match action.kind:
        case ActionKind.APPLIED:
            return f"Applied: {amount}{name} — recorded {noted}"
        case ActionKind.ESCALATED:
            return f"Sent for approval: {amount}{name} — recorded; a supervisor decides."
        case ActionKind.APPROVED:
            return f"Approved: {amount}{name} — recorded {noted}"
        case ActionKind.REFUSED:
            return f"Refused: {amount}{name} — recorded {noted}"
        case _:
            return f"Dismissed: {name} ({reason}) — recorded {noted}"


def _reason_label(entry: ExceptionType, action: Action) -> str | None:
    reasons: Iterable[ReasonCode] = (*entry.apply_reasons, *entry.dismiss_reasons)
    return next((r.label for r in reasons if r.code == action.reason_code), action.reason_code)


# Approvals ---------------------------------------------------------------------------------


def pending_escalations(session: Session, installation_id: int) -> list[Action]:
    """Escalated actions no one has approved or refused yet, oldest first."""
    decided = sa.select(Action.escalation_id).where(
        Action.installation_id == installation_id, Action.escalation_id.is_not(None)
    )
    return list(
        session.scalars(
            sa.select(Action)
            .where(
                Action.installation_id == installation_id,
                Action.kind == ActionKind.ESCALATED,
                Action.id.not_in(decided),
            )
            .order_by(Action.created_at, Action.id)
        )
    )


def resolve_escalation(
    session: Session,
    installation: Installation,
    escalation_id: int,
    *,
    approve: bool,
    approver_id: str | None,
    text: str = "",
    idempotency_key: str,
    now: datetime,
) -> ActionOutcome:
    """Approve or refuse an escalated action, once; an approval is a grant from now.

    An approval checks the customer's cap (under the rule's current version) and the budget
    again at this moment and is refused (ActionRefused) when they forbid it. NotFound for an
    action of another installation or one that is not an escalation.
    """
    if not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise InvalidAction({"idempotency_key": "expected 8 to 64 letters, digits, _ or -"})
    book = rule_book(session, installation)
    earlier = _recorded(session, installation.id, idempotency_key)
    if earlier is not None:
        return _outcome(earlier, book.catalog, duplicate=True)
    escalation = session.scalars(
        sa.select(Action).where(
            Action.id == escalation_id,
            Action.installation_id == installation.id,
            Action.kind == ActionKind.ESCALATED,
        )
    ).first()
    if escalation is None:
        raise NotFound(f"There is no escalation {escalation_id} in this helpdesk.")
    decided = session.scalars(
        sa.select(Action).where(
            Action.installation_id == installation.id, Action.escalation_id == escalation.id
        )
    ).first()
    if decided is not None:
        raise ActionRefused(f"This escalation was {decided.kind} already.")
    if len(text) > TEXT_MAX_LENGTH:
        raise InvalidAction({"text": f"at most {TEXT_MAX_LENGTH:,} characters"})
    if approve:
        _check_still_allowed(session, installation, book, escalation, now=now)
    decision = Action(
        installation_id=installation.id,
        ticket_id=escalation.ticket_id,
        requester_id=escalation.requester_id,
        customer_id=escalation.customer_id,
        agent_id=approver_id,
        kind=(ActionKind.APPROVED if approve else ActionKind.REFUSED).value,
        exception_key=escalation.exception_key,
        amount_cents=escalation.amount_cents,
        currency=escalation.currency,
        reason_code=escalation.reason_code,
        text=text,
        rule_id=escalation.rule_id,
        rule_version=escalation.rule_version,
        budget_field=escalation.budget_field,
        budget_value=escalation.budget_value,
        escalation_id=escalation.id,
        idempotency_key=idempotency_key,
        created_at=now,
    )
    try:
        return _commit_once(session, decision, book.catalog)
    except IntegrityError:
        # Another approver decided it between our check and our write.
        raise ActionRefused("This escalation was decided already.") from None


def _check_still_allowed(
    session: Session,
    installation: Installation,
    book: RuleBook,
    escalation: Action,
    *,
    now: datetime,
) -> None:
    """Refuse an approval that the customer's cap or the budget forbids now."""
    amount = escalation.amount_cents or 0
    currency = escalation.currency
    rule = next(
        (book.rules[k] for k, rid in book.rule_ids.items() if rid == escalation.rule_id), None
    )
    if rule is not None and rule.cap is not None:
        customer = session.get(Customer, escalation.customer_id) if escalation.customer_id else None
        grants = _grants(session, installation.id, customer, escalation.requester_id, now=now)
        recent = granted_within(grants, now=now, days=rule.cap.days)
        used = sum(1 for g in recent if g.exception == escalation.exception_key)
        if used >= rule.cap.times:
            raise ActionRefused(
                f"The customer was granted this {used} times in the last {rule.cap.days} "
                f"days; the rule allows {rule.cap.describe()}."
            )
    if escalation.budget_field and escalation.budget_value:
        segment = SegmentRef(escalation.budget_field, escalation.budget_value)
        status = next(
            (
                s
                for s in budget_statuses(session, installation.id, now=now)
                if s.budget.segment == segment
            ),
            None,
        )
        if status is None:
            raise ActionRefused(f"No monthly budget is set for {segment.label} any more.")
        if not status.allows(amount):
            raise ActionRefused(
                f"{exact_money(amount, currency)} would pass the {segment.label} budget: "
                f"{status.sentence(currency)}."
            )
