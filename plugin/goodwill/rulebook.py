"""An installation's rules and their versions, and the rule book compiled from them and the
catalog.

No Flask here: the console, the sidebar and `flask rules` call it. `create_rule`, `update_rule`
(a new version when the definition changes) and `rollback_rule` (a new version copying an old
one) each commit whole or not at all; every version records who wrote it, when and why. Every
query is scoped to one installation; an id of another installation's rule is not found.
`rule_book` compiles the current rules once per change, not once per ticket view.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.exceptions import CODE, ExceptionType
from plugin.domain.personas import ConditionError, FieldKind, FieldSpec, InvalidConditions
from plugin.domain.rule_evaluation import CompiledRules
from plugin.domain.rules import InvalidRule, parse_rule, rule_fields
from plugin.domain.rules import Rule as DomainRule
from plugin.goodwill import book_cache
from plugin.goodwill.book_cache import RuleBook
from plugin.goodwill.catalog import catalog_rows, parse_entry
from plugin.goodwill.errors import NotFound
from plugin.helpdesks import field_mappings
from plugin.models import ExceptionType as ExceptionTypeRow
from plugin.models import FieldMapping, Installation, Persona, Rule, RuleVersion

log = logging.getLogger(__name__)

NOTE_MAX_LENGTH = 1000

# How long a write made outside the ORM (which raises no revision) may go unseen by a process
# that has a compiled book; the read cache's default lifetime.
WHOLE_CHECK_SECONDS = 10.0


@dataclass(frozen=True)
class Author:
    """Who wrote a rule version: a helpdesk user (id and name), or who ran the command line."""

    id: str | None
    name: str


# Rules and their versions ------------------------------------------------------------------


def fields_for(session: Session, installation_id: int) -> dict[str, FieldSpec]:
    """The fields the installation's rules can test: its personas and mapped facts too.

    A fact mapped from a helpdesk tag is yes/no; one from a field is a text value.
    """
    personas = session.scalars(
        sa.select(Persona.name).where(Persona.installation_id == installation_id)
    ).all()
    facts = {
        name: FieldKind.FLAG if kind == field_mappings.TAG else FieldKind.CHOICE
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
    version = insert_rule(session, installation.id, key, definition, parsed, author, note, now)
    session.commit()
    book_cache.forget(session, installation.id)
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


def insert_rule(
    session: Session,
    installation_id: int,
    key: str,
    definition: Mapping[str, object],
    parsed: DomainRule,
    author: Author,
    note: str,
    now: datetime,
) -> RuleVersion:
    """Add a rule at version 1, uncommitted: a create or an import commits it."""
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
    version = add_version(session, rule, definition, parsed, author, note, now)
    session.commit()
    book_cache.forget(session, installation.id)
    return version


def add_version(
    session: Session,
    rule: Rule,
    definition: Mapping[str, object],
    parsed: DomainRule,
    author: Author,
    note: str,
    now: datetime,
    restored_from: int | None = None,
) -> RuleVersion:
    """Add the rule's next version and put it in force, uncommitted: the caller commits it."""
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
    version = add_version(
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
    book_cache.forget(session, installation.id)
    return version


# The compiled rule book --------------------------------------------------------------------


def rule_book(
    session: Session, installation: Installation, *, revision: int | None = None
) -> RuleBook:
    """The installation's compiled rules, rebuilt only when something they depend on changed.

    Every call reads the installation's `rule_book_revision`, which every ORM write to the
    rules, the catalog, the personas or the fact mappings raises in its own transaction
    (`plugin.models.goodwill._count_rule_book_changes`): a change made in any process is in
    force on the next call. The whole fingerprint (counts and latest changes of each input),
    which also catches a write made outside the ORM (a manual fix in SQL), is read when the
    book is built and at most every `WHOLE_CHECK_SECONDS` after: a dozen subqueries cost about
    as much as the rest of a suggestions card. 500 rules are parsed once per change, not once
    per ticket view. Nothing here is needed for correctness: another process simply builds its
    own copy. `revision`: the installation's revision as the caller read it just now (a
    sidebar view reads it with what else it must know of its ticket, `TicketState`).
    """
    book = book_cache.cached(session, installation.id)
    if book is not None and time.monotonic() - book.checked_at < WHOLE_CHECK_SECONDS:
        if revision is None:
            bound = {"installation_id": installation.id}
            revision = session.execute(revision_query(), bound).scalar_one()
        if book.fingerprint[:2] == (installation.currency, revision):
            return book
    fingerprint = _fingerprint(session, installation)
    if book is not None and book.fingerprint == fingerprint:
        book = replace(book, checked_at=time.monotonic())
    else:
        book = _build_book(session, installation, fingerprint)
    book_cache.keep(session, installation.id, book)
    return book


def _fingerprint(session: Session, installation: Installation) -> tuple[object, ...]:
    """The currency, the revision, then what else tells a change (see `_fingerprint_query`)."""
    row = session.execute(_fingerprint_query(), {"installation_id": installation.id}).one()
    return (installation.currency, *row)


@cache
def revision_query() -> sa.Select[int]:
    return sa.select(Installation.rule_book_revision).where(
        Installation.id == sa.bindparam("installation_id", type_=sa.Integer)
    )


@cache
def _fingerprint_query() -> sa.Select[Any]:
    """The fingerprint's one aggregate query, built once: building its dozen subqueries cost
    more than running them (about 0.5 ms a suggestions card)."""
    iid: sa.BindParameter[int] = sa.bindparam("installation_id", type_=sa.Integer)

    def scalar(expression: Any, model: Any) -> Any:
        return sa.select(expression).where(model.installation_id == iid).scalar_subquery()

    return sa.select(
        # The revision decides, and comes first (`rule_book` compares it alone between whole
        # checks); the counts and latest changes also catch a write made outside the ORM.
        revision_query().scalar_subquery(),
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


def _build_book(
    session: Session, installation: Installation, fingerprint: tuple[object, ...]
) -> RuleBook:
    broken: list[tuple[str, str]] = []
    catalog: dict[str, ExceptionType] = {}
    enabled: set[str] = set()
    for row in catalog_rows(session, installation.id):
        try:
            catalog[row.key] = parse_entry(row.definition, installation.currency)
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
        checked_at=time.monotonic(),
    )
