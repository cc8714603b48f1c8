"""Who gets into the console, from what the helpdesk says about the signed user."""

from __future__ import annotations

import pytest

from plugin.console.roles import (
    ConsoleRole,
    InvalidRoles,
    Need,
    allows,
    console_role,
    names_roles,
    parse_supervisor_roles,
)
from plugin.domain.helpdesk import Person


def person(role: str | None, *role_ids: str) -> Person:
    return Person(id="1", name="Someone", role=role, role_ids=role_ids)


@pytest.mark.parametrize(
    ("user", "named", "expected"),
    [
        (person("admin"), (), ConsoleRole.ADMIN),
        (person("admin"), ("360001",), ConsoleRole.ADMIN),
        (person("agent"), (), None),
        (person("agent", "360001"), ("360001",), ConsoleRole.SUPERVISOR),  # Zendesk custom role
        (person("agent", "360002"), ("360001",), None),
        (person("agent", "102", "103"), ("103",), ConsoleRole.SUPERVISOR),  # Freshdesk role ids
        (person("agent", "Supervisor"), ("supervisor",), ConsoleRole.SUPERVISOR),
        (person("agent"), ("agent",), ConsoleRole.SUPERVISOR),  # the admin's choice: every agent
        (person("end-user", "360001"), ("360001", "end-user"), None),  # never an end user
        (person(None), ("",), None),
    ],
)
def test_the_helpdesks_answer_decides_the_console_role(
    user: Person, named: tuple[str, ...], expected: ConsoleRole | None
) -> None:
    assert console_role(user, named) is expected


def test_supervisors_supervise_and_only_admins_administer() -> None:
    assert allows("supervisor", Need.SUPERVISE) and allows("admin", Need.SUPERVISE)
    assert allows("admin", Need.ADMINISTER) and not allows("supervisor", Need.ADMINISTER)
    # A sidebar session carries no role; a forged or old one carries an unknown one.
    assert not allows(None, Need.SUPERVISE) and not allows("agent", Need.SUPERVISE)


def test_supervisor_roles_are_read_from_what_the_admin_typed() -> None:
    assert parse_supervisor_roles(" 360001,\nTeam leads , 360001") == ["360001", "Team leads"]
    assert parse_supervisor_roles("  ") == []
    with pytest.raises(InvalidRoles, match="not a role name or id"):
        parse_supervisor_roles("<script>")
    with pytest.raises(InvalidRoles, match="End users cannot be supervisors"):
        parse_supervisor_roles("end-user")
    with pytest.raises(InvalidRoles, match="at most 20"):
        parse_supervisor_roles(",".join(str(n) for n in range(21)))


@pytest.mark.parametrize(
    ("named", "by_name"),
    [((), False), (("360001", "agent", "Admin"), False), (("360001", "Team lead"), True)],
)
def test_only_roles_typed_by_name_need_the_helpdesk_to_name_them(
    named: tuple[str, ...], by_name: bool
) -> None:
    assert names_roles(named) is by_name
