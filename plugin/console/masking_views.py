"""The console's masking settings: per helpdesk role, the customer fields its agents see.

Admins only (bearer session, as every console endpoint). Each listed role gets a checkbox
per field group it sees; the roles not listed get the default row. The sidebar applies a
change from its next card (within a few seconds in other processes: the read cache);
docs/privacy.md says what each group covers and where masks apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from plugin import db
from plugin.console.roles import Need
from plugin.console.views import ConsoleRefused, console_caller, console_refused
from plugin.domain.masking import FIELD_GROUPS, FieldGroup, Mask, RoleMasks
from plugin.masking.settings import MAX_ROLES, InvalidMasks, load_role_masks, save_role_masks
from plugin.web.i18n import gettext, lazy_gettext

bp = Blueprint("console_masks", __name__, url_prefix="/console")
bp.register_error_handler(ConsoleRefused, console_refused)

# Empty rows the form offers for roles not listed yet.
NEW_ROWS = 2
GROUP_NAMES = {
    FieldGroup.EMAIL: lazy_gettext("Email"),
    FieldGroup.PHONE: lazy_gettext("Phone"),
    FieldGroup.MONEY: lazy_gettext("Money figures"),
    FieldGroup.LIFETIME_VALUE: lazy_gettext("Lifetime value"),
    FieldGroup.ORDER_LINES: lazy_gettext("Order lines"),
}
ALL_GROUPS = tuple(group.value for group in FIELD_GROUPS)


@dataclass(frozen=True)
class Row:
    """One role's line of the form: the role as typed and the groups it sees."""

    role: str
    shows: tuple[str, ...] = ALL_GROUPS


@bp.get("/masks")
def masks() -> ResponseReturnValue:
    """Render the masking form: a row per listed role, new rows, and the default row."""
    _session, installation = console_caller(Need.ADMINISTER)
    stored = load_role_masks(db.session(), installation.id)
    return _masks_form(_rows(stored), _shows(stored.default))


@bp.post("/masks")
def save_masks() -> ResponseReturnValue:
    """Store the masks; the sidebar uses them from its next card."""
    session, installation = console_caller(Need.ADMINISTER)
    rows = _sent_rows(request.form)
    default = tuple(g for g in request.form.getlist("default_shows") if g in ALL_GROUPS)
    listed = [row for row in rows if row.role]
    try:
        if len({row.role.casefold() for row in listed}) < len(listed):
            raise InvalidMasks({"role": gettext("List each role once.")})
        saved = save_role_masks(
            db.session(),
            installation.id,
            by_role={row.role: _hidden(row.shows) for row in listed},
            default=_hidden(default),
            user_id=session.user_id,
        )
    except InvalidMasks as invalid:
        db.session().rollback()
        return _masks_form(rows, default, error=str(invalid), code=400)
    db.session().commit()
    status = gettext("Saved. The sidebar uses it from the next card it shows.")
    return _masks_form(_rows(saved), _shows(saved.default), status=status)


def _hidden(shows: tuple[str, ...]) -> list[str]:
    return [group for group in ALL_GROUPS if group not in shows]


def _shows(mask: Mask) -> tuple[str, ...]:
    return tuple(group for group in ALL_GROUPS if not mask.hides(group))


def _rows(masks: RoleMasks) -> list[Row]:
    return [Row(role, _shows(mask)) for role, mask in sorted(masks.by_role.items())]


def _sent_rows(form: MultiDict[str, str]) -> list[Row]:
    """The role rows as the form sent them (`role-N`, `shows-N`)."""
    return [
        Row(
            form.get(f"role-{index}", "").strip(),
            tuple(g for g in form.getlist(f"shows-{index}") if g in ALL_GROUPS),
        )
        for index in range(MAX_ROLES + NEW_ROWS)
        if f"role-{index}" in form
    ]


def _masks_form(
    rows: list[Row],
    default_shows: tuple[str, ...],
    *,
    error: str | None = None,
    status: str | None = None,
    code: int = 200,
) -> tuple[str, int]:
    shown = [row for row in rows if row.role][:MAX_ROLES]
    return render_template(
        "console/_masks.html",
        rows=[*shown, *(Row("") for _ in range(NEW_ROWS))],
        default_shows=default_shows,
        groups=[(group.value, GROUP_NAMES[group]) for group in FIELD_GROUPS],
        error=error,
        status=status,
    ), code
