"""Who may do what in the console: admins, the supervisors an admin names, and nobody else.

The helpdesk decides, never the page: at launch the console asks the helpdesk for the signed
user and gives them a console role from what it answers. An admin of the helpdesk is an admin
here; a user whose role (Zendesk's "agent", a Zendesk custom role or a Freshdesk role, by id
or by name) is among the installation's `supervisor_roles` is a supervisor; anyone else is
refused. Names cost the helpdesk a call at launch, made only when ids do not decide. The role
rides in the console session, and every console endpoint asks `allows` before it does anything.

No Flask here: `plugin/console/views.py` applies it to requests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from plugin.domain.helpdesk import Person
from plugin.models import Installation

# What the helpdesk calls its administrators: Zendesk's "admin" (Freshdesk's admins are named
# through the supervisor roles, as its agents all carry the role "agent").
HELPDESK_ADMIN_ROLES = frozenset({"admin"})
MAX_SUPERVISOR_ROLES = 20
ROLE_MAX_LENGTH = 64
_ROLE = re.compile(r"[\w .:-]{1,64}")


class ConsoleRole(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"


class Need(StrEnum):
    """What a console endpoint needs of its caller."""

    # Rules, catalog, budgets, tiers, personas, guidance, approvals: supervisors and admins.
    SUPERVISE = "supervise"
    # The connection, imports and who counts as a supervisor: admins only.
    ADMINISTER = "administer"


_ALLOWED = {
    Need.SUPERVISE: frozenset({ConsoleRole.ADMIN, ConsoleRole.SUPERVISOR}),
    Need.ADMINISTER: frozenset({ConsoleRole.ADMIN}),
}
REFUSALS = {
    Need.SUPERVISE: "Supervisors and admins only.",
    Need.ADMINISTER: "Only an admin of this helpdesk can do this.",
}


class InvalidRoles(ValueError):
    """The supervisor roles as typed do not validate; the message says why."""


def console_role(person: Person, supervisor_roles: Iterable[str]) -> ConsoleRole | None:
    """The console role the helpdesk's answer about a user gives them; None: not allowed in.

    Roles are compared case-insensitively, so "Supervisor" names the role "supervisor".
    """
    if person.role in HELPDESK_ADMIN_ROLES:
        return ConsoleRole.ADMIN
    named = {role.casefold() for role in supervisor_roles}
    held = {role.casefold() for role in (person.role or "", *person.role_ids) if role}
    # An end user never gets in, whatever an admin typed.
    if person.role != "end-user" and named & held:
        return ConsoleRole.SUPERVISOR
    return None


def names_roles(supervisor_roles: Iterable[str]) -> bool:
    """Whether an admin named a supervisor role by name, which only the helpdesk can resolve."""
    return any(
        not role.isdigit() and role.casefold() not in {"agent", *HELPDESK_ADMIN_ROLES}
        for role in supervisor_roles
    )


def allows(role: str | None, need: Need) -> bool:
    """Whether a console session's role may do what `need` says."""
    return role in _ALLOWED[need]


def supervisor_roles(installation: Installation) -> tuple[str, ...]:
    """The roles an admin named as supervisors, as stored."""
    return tuple(installation.supervisor_roles or ())


def parse_supervisor_roles(text: str) -> list[str]:
    """Read the roles an admin typed, separated by commas or lines; raises InvalidRoles."""
    roles = list(dict.fromkeys(part.strip() for part in re.split(r"[,\n]", text) if part.strip()))
    if len(roles) > MAX_SUPERVISOR_ROLES:
        raise InvalidRoles(f"Name at most {MAX_SUPERVISOR_ROLES} roles.")
    for role in roles:
        if not _ROLE.fullmatch(role):
            raise InvalidRoles(
                f"“{role[:ROLE_MAX_LENGTH]}” is not a role name or id: use letters, digits, "
                f"spaces, . : - or _, at most {ROLE_MAX_LENGTH} characters."
            )
        if role.casefold() in {"end-user", "end_user"}:
            raise InvalidRoles("End users cannot be supervisors.")
    return roles


def set_supervisor_roles(installation: Installation, roles: list[str]) -> None:
    """Store the supervisor roles (the caller commits)."""
    installation.supervisor_roles = roles or None
