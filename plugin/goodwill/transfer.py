"""An installation's catalog, budgets and rules as one JSON file: export, and an import that
checks the whole file before it writes anything.

No Flask here: `flask rules export` and `import`, the console and the demo's seed call it. The
file is sorted by key, so it diffs well in version control.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from plugin.domain.exceptions import CODE, Budget, InvalidBudget, parse_budget
from plugin.domain.personas import ConditionError, FieldSpec, InvalidConditions
from plugin.domain.rules import Rule as DomainRule
from plugin.domain.rules import parse_rule
from plugin.goodwill import book_cache
from plugin.goodwill.catalog import (
    budgets,
    catalog_rows,
    parse_entry,
    upsert_budget,
    upsert_entry,
)
from plugin.goodwill.errors import InvalidImport, path_under
from plugin.goodwill.rulebook import Author, add_version, current_rules, fields_for, insert_rule
from plugin.models import Installation

# The shape of the import/export file, so a future change of shape can be recognised.
EXPORT_FORMAT = "regulars.rules/1"


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
        upsert_entry(session, installation.id, key, definition, enabled=enabled, now=now)
    old_budgets = set(budgets(session, installation.id))
    budgets_set = []
    for budget in plan.budgets:
        if budget not in old_budgets:
            budgets_set.append(f"{budget.segment.field}={budget.segment.value}")
        upsert_budget(session, installation.id, budget, now=now)
    current = {
        rule.key: (rule, version) for rule, version in current_rules(session, installation.id)
    }
    created, versioned, unchanged = [], [], []
    for key, definition, parsed in plan.rules:
        if key not in current:
            insert_rule(session, installation.id, key, definition, parsed, author, note, now)
            created.append(key)
            continue
        rule, version = current[key]
        if version.definition == definition:
            unchanged.append(key)
            continue
        add_version(session, rule, definition, parsed, author, note, now)
        versioned.append(key)
    session.commit()
    book_cache.forget(session, installation.id)
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
            entry = parse_entry(definition, currency)
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
    return [ConditionError(path_under(path, e.path), e.message) for e in error.errors]
