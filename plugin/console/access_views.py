"""The console's access settings: which helpdesk roles count as supervisors (admins only).

Supervisors edit rules, the catalog, budgets, tiers, personas and guidance and decide
approvals; only admins see the connection, the customer data import and this setting. The
decision itself is made in `plugin/console/roles.py` at each launch.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from plugin import db
from plugin.console import roles as console_roles
from plugin.console.roles import InvalidRoles, Need
from plugin.console.views import ConsoleRefused, console_installation, console_refused
from plugin.models import Installation

bp = Blueprint("console_access", __name__, url_prefix="/console")
bp.register_error_handler(ConsoleRefused, console_refused)


@bp.get("/roles")
def roles() -> ResponseReturnValue:
    """Render the supervisor roles form."""
    installation = console_installation(Need.ADMINISTER)
    return _roles_form(installation, ", ".join(console_roles.supervisor_roles(installation)))


@bp.post("/roles")
def save_roles() -> ResponseReturnValue:
    """Store the supervisor roles; they apply from each user's next launch of the console."""
    installation = console_installation(Need.ADMINISTER)
    typed = request.form.get("supervisor_roles", "")
    try:
        parsed = console_roles.parse_supervisor_roles(typed)
    except InvalidRoles as invalid:
        return _roles_form(installation, typed, error=str(invalid), code=400)
    console_roles.set_supervisor_roles(installation, parsed)
    db.session().commit()
    status = (
        f"Saved. Users with the role {', '.join(parsed)} are supervisors from their next launch."
        if parsed
        else "Saved. Only admins can open the console."
    )
    return _roles_form(installation, ", ".join(parsed), status=status)


def _roles_form(
    installation: Installation,
    typed: str,
    *,
    error: str | None = None,
    status: str | None = None,
    code: int = 200,
) -> tuple[str, int]:
    return render_template(
        "console/_roles.html", installation=installation, typed=typed, error=error, status=status
    ), code
