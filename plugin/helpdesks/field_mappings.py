"""Which helpdesk fields and tags become customer facts: the mappings an admin sets per
installation, and reading the mapped facts off a helpdesk person.

No Flask here: callers pass the database session and commit when they are done.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.helpdesk import Person
from plugin.models import FieldMapping, Installation

_FACT_NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")
MAX_MAPPING_KEY = 255

USER_FIELD = "user_field"
ORGANIZATION_FIELD = "organization_field"
TAG = "tag"
MAPPING_KINDS = (USER_FIELD, ORGANIZATION_FIELD, TAG)


class MappingError(ValueError):
    """A field mapping is unusable; the message names what is wrong."""


class MappingRule(Protocol):
    """Anything naming a helpdesk field or tag and the fact it becomes: a row or a FactMapping."""

    @property
    def kind(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def fact_name(self) -> str: ...


@dataclass(frozen=True)
class FactMapping:
    """A field mapping detached from the database, safe to cache and share between threads."""

    kind: str
    key: str
    fact_name: str

    @classmethod
    def of(cls, row: FieldMapping) -> FactMapping:
        return cls(kind=row.kind, key=row.key, fact_name=row.fact_name)


def add_mapping(
    session: Session, installation: Installation, *, kind: str, key: str, fact_name: str
) -> FactMapping:
    """Map a user field, organization field or tag to a fact; mapping it again renames the fact."""
    kind = _mapping_kind(kind)
    key = _mapping_key(kind, key)
    if not _FACT_NAME.fullmatch(fact_name):
        raise MappingError(
            "the fact name must start with a lowercase letter and hold only lowercase letters, "
            "digits and underscores, up to 100 characters"
        )
    rows = _mapping_rows(session, installation)
    clash = next(
        (r for r in rows if r.fact_name == fact_name and (r.kind, r.key) != (kind, key)), None
    )
    if clash is not None:
        raise MappingError(
            f"the fact {fact_name!r} already comes from {_describe(clash)}: unmap that first"
        )
    row = next((r for r in rows if (r.kind, r.key) == (kind, key)), None)
    if row is None:
        row = FieldMapping(installation_id=installation.id, kind=kind, key=key, fact_name=fact_name)
        session.add(row)
    else:
        row.fact_name = fact_name
    session.flush()
    return FactMapping.of(row)


def remove_mapping(session: Session, installation: Installation, *, kind: str, key: str) -> bool:
    """Remove the mapping of a field or tag; return whether there was one."""
    kind = _mapping_kind(kind)
    key = _mapping_key(kind, key)
    row = session.scalars(
        sa.select(FieldMapping).where(
            FieldMapping.installation_id == installation.id,
            FieldMapping.kind == kind,
            FieldMapping.key == key,
        )
    ).first()
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def list_mappings(session: Session, installation: Installation) -> list[FactMapping]:
    """Return the installation's mappings, by kind then key."""
    return [FactMapping.of(row) for row in _mapping_rows(session, installation)]


def mapped_facts(person: Person, mappings: Iterable[MappingRule]) -> dict[str, object]:
    """Read the mapped facts off a person: a tag gives True/False, a field its value if set."""
    facts: dict[str, object] = {}
    for mapping in mappings:
        if mapping.kind == TAG:
            facts[mapping.fact_name] = mapping.key in person.tags
            continue
        if mapping.kind == USER_FIELD:
            value = person.fields.get(mapping.key)
        elif mapping.kind == ORGANIZATION_FIELD:
            value = person.organization_fields.get(mapping.key)
        else:
            raise MappingError(f"unknown mapping kind {mapping.kind!r}")
        if value is not None:
            facts[mapping.fact_name] = value
    return facts


def _mapping_rows(session: Session, installation: Installation) -> Sequence[FieldMapping]:
    return session.scalars(
        sa.select(FieldMapping)
        .where(FieldMapping.installation_id == installation.id)
        .order_by(FieldMapping.kind, FieldMapping.key)
    ).all()


def _mapping_kind(kind: str) -> str:
    if kind not in MAPPING_KINDS:
        raise MappingError(f"the mapping kind must be one of {', '.join(MAPPING_KINDS)}")
    return kind


def _mapping_key(kind: str, key: str) -> str:
    # Zendesk lowercases tags; field keys are case-sensitive identifiers.
    cleaned = key.strip().lower() if kind == TAG else key.strip()
    if not cleaned or len(cleaned) > MAX_MAPPING_KEY or any(c.isspace() for c in cleaned):
        what = "tag" if kind == TAG else "field key"
        raise MappingError(f"the {what} must be 1 to {MAX_MAPPING_KEY} characters, no spaces")
    return cleaned


def _describe(mapping: MappingRule) -> str:
    what = {USER_FIELD: "user field", ORGANIZATION_FIELD: "organization field", TAG: "tag"}
    return f"{what.get(mapping.kind, mapping.kind)} {mapping.key!r}"
