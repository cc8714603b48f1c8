"""The console's "Gestures in the shop": which gesture kinds the installation gives in its shop
(admins turn each on or off), and which catalog entries each kind gives (the rest are record
only). Answers the console page's fetch with an HTML partial (bearer session, as the rest of
the console: supervisors see it, admins change it).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from plugin import db
from plugin.clock import utcnow
from plugin.console.roles import ConsoleRole, Need
from plugin.console.views import ConsoleRefused, console_caller, console_refused
from plugin.domain.exceptions import parse_exception_type
from plugin.domain.gesture_binding import KIND_NAMES, RECORD_ONLY
from plugin.domain.personas import InvalidConditions
from plugin.domain.wording import N_
from plugin.gestures.interface import GestureKind
from plugin.gestures.planning import enabled_kinds, set_kind_enabled
from plugin.gestures.scopes import GESTURE_SCOPES
from plugin.goodwill import catalog
from plugin.models import Installation

bp = Blueprint("console_gestures", __name__, url_prefix="/console")
bp.register_error_handler(ConsoleRefused, console_refused)


@dataclass(frozen=True)
class KindRow:
    kind: GestureKind
    name: str
    enabled: bool
    scopes: tuple[str, ...]
    entries: tuple[str, ...]


@bp.get("/gestures")
def gestures() -> ResponseReturnValue:
    """Render the gesture kinds, on or off, with the entries each gives."""
    session, installation = console_caller()
    return _section(installation, is_admin=session.role == ConsoleRole.ADMIN)


@bp.post("/gestures")
def set_kind() -> ResponseReturnValue:
    """Turn one gesture kind (`kind`) on (`enabled=true`) or off; admins only."""
    _session, installation = console_caller(Need.ADMINISTER)
    kind = request.form.get("kind", "")
    if kind not in tuple(GestureKind):
        message = "There is no such gesture kind. Reload the console."
        return render_template("sidebar/_problem.html", message=message), 404
    enabled = request.form.get("enabled") == "true"
    set_kind_enabled(db.session(), installation, GestureKind(kind), enabled=enabled, now=utcnow())
    name = KIND_NAMES[GestureKind(kind)].capitalize()
    status = (
        N_("%(name)s: given in the shop.", name=name)
        if enabled
        else N_("%(name)s: off: record only.", name=name)
    )
    return _section(installation, is_admin=True, status=status)


def _section(
    installation: Installation, *, is_admin: bool, status: str | None = None
) -> tuple[str, int]:
    session = db.session()
    kinds = enabled_kinds(session, installation.id)
    bound: dict[GestureKind, list[str]] = {kind: [] for kind in GestureKind}
    record_only: list[str] = []
    for row in catalog.catalog_rows(session, installation.id):
        try:
            entry = parse_exception_type(row.definition)
        except InvalidConditions:
            continue
        if entry.gesture is not None and entry.gesture.kind in kinds:
            bound[entry.gesture.kind].append(entry.name)
        else:
            record_only.append(entry.name)
    rows = [
        KindRow(
            kind,
            KIND_NAMES[kind].capitalize(),
            kind in kinds,
            tuple(GESTURE_SCOPES.get(kind, ())),
            tuple(bound[kind]),
        )
        for kind in GestureKind
    ]
    return render_template(
        "console/_gestures.html",
        rows=rows,
        record_only=record_only,
        record_only_words=RECORD_ONLY,
        is_admin=is_admin,
        status=status,
    ), 200
