"""The masks an installation's admin set, per helpdesk role, read and stored (no Flask).

Every query is scoped to its installation. An installation with no rows shows everything to
everyone, as before masking existed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.masking import SHOW_EVERYTHING, FieldGroup, Mask, RoleMasks
from plugin.models.masking import DEFAULT_ROLE, FieldMask

MAX_ROLES = 30
ROLE_MAX_LENGTH = 64
_ROLE = re.compile(r"[\w .:-]{1,64}")
# Roles every helpdesk names the same: never looked up by name.
BASE_ROLES = frozenset({"agent", "admin"})


class InvalidMasks(ValueError):
    """The masks as sent do not validate; `errors` says why, by field."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = dict(errors)


def load_role_masks(session: Session, installation_id: int) -> RoleMasks:
    """The installation's masks: per listed role, and the default for the others."""
    rows = session.scalars(
        sa.select(FieldMask).where(FieldMask.installation_id == installation_id)
    ).all()
    by_role = {row.role: Mask.of(row.hidden) for row in rows if row.role != DEFAULT_ROLE}
    default = next(
        (Mask.of(row.hidden) for row in rows if row.role == DEFAULT_ROLE), SHOW_EVERYTHING
    )
    return RoleMasks(by_role=by_role, default=default)


def note_mask(session: Session, installation_id: int) -> Mask:
    """The mask a note written to a ticket gets: the strictest of all (everyone reads it)."""
    return load_role_masks(session, installation_id).strictest()


def names_roles(masks: RoleMasks) -> bool:
    """Whether a listed role is a name (not an id or a base role): only the helpdesk can say
    which agents hold it, at a cost of one call per role the agent has."""
    return any(not role.isdigit() and role not in BASE_ROLES for role in masks.by_role)


def parse_role(text: str) -> str:
    """A role as an admin typed it, checked and casefolded; raises InvalidMasks."""
    role = " ".join(text.split())
    if not _ROLE.fullmatch(role):
        raise InvalidMasks(
            {
                "role": f"“{role[:ROLE_MAX_LENGTH]}” is not a role name or id: use letters, "
                f"digits, spaces, . : - or _, at most {ROLE_MAX_LENGTH} characters."
            }
        )
    if role.casefold() in {"end-user", "end_user", DEFAULT_ROLE}:
        raise InvalidMasks({"role": f"“{role}” is not an agent's role."})
    return role.casefold()


def save_role_masks(
    session: Session,
    installation_id: int,
    *,
    by_role: Mapping[str, Iterable[str]],
    default: Iterable[str],
    user_id: str | None,
) -> RoleMasks:
    """Replace the installation's masks with these (roles parsed, groups by value); the
    caller commits. A role listed with nothing hidden is kept: it shows everything even when
    the default hides something."""
    roles = {parse_role(role): sorted(set(hidden)) for role, hidden in by_role.items()}
    if len(roles) > MAX_ROLES:
        raise InvalidMasks({"role": f"List at most {MAX_ROLES} roles."})
    known = {group.value for group in FieldGroup}
    for hidden in (*roles.values(), list(default)):
        unknown = set(hidden) - known
        if unknown:
            raise InvalidMasks({"hidden": f"Unknown field groups: {', '.join(sorted(unknown))}."})
    wanted = {**roles, DEFAULT_ROLE: sorted(set(default))}
    rows = {
        row.role: row
        for row in session.scalars(
            sa.select(FieldMask).where(FieldMask.installation_id == installation_id)
        )
    }
    for role, stale in rows.items():
        if role not in wanted:
            session.delete(stale)
    for role, hidden in wanted.items():
        row = rows.get(role)
        if row is None:
            session.add(
                FieldMask(
                    installation_id=installation_id, role=role, hidden=hidden, updated_by=user_id
                )
            )
        elif row.hidden != hidden:
            row.hidden, row.updated_by = hidden, user_id
    session.flush()
    return load_role_masks(session, installation_id)
