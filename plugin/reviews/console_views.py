"""The console's account review section: checklist templates per tier or segment.

Every route answers the console page's fetch (bearer session; supervisors and admins) with an
HTML partial the page puts in place: 200 when it worked, 400 with the form and a message next
to each wrong field, 401/403 as the rest of the console, 404 for a template this installation
does not have. The rules are in `plugin/domain/reviews.py`, the storage in
`plugin/reviews/checklists.py`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from plugin import db
from plugin.clock import utcnow
from plugin.console.views import ConsoleRefused, console_installation, console_refused
from plugin.domain.reviews import (
    FIXED_VALUES,
    MAX_ITEMS,
    AudienceKind,
    InvalidTemplate,
    ItemRow,
    TemplateForm,
)
from plugin.domain.wording import N_
from plugin.models import Installation
from plugin.reviews import checklists
from plugin.reviews.checklists import TemplateNotFound

bp = Blueprint("console_reviews", __name__, url_prefix="/console")
bp.register_error_handler(ConsoleRefused, console_refused)

# Blank item rows offered below a template's items, to add new ones.
BLANK_ROWS = 3
_ITEM_INPUT = re.compile(r"^items-(\d{1,3})-(label|help|required|position|id|remove)$")
AUDIENCE_LABELS = {
    AudienceKind.TIER: "Value tiers",
    AudienceKind.RFM_SEGMENT: "RFM segments",
    AudienceKind.LIFECYCLE_STAGE: "Lifecycle stages",
    AudienceKind.PERSONA: "Personas",
}


@bp.errorhandler(TemplateNotFound)
def template_not_found(_: TemplateNotFound) -> tuple[str, int]:
    message = "That checklist does not exist here. Reload the console."
    return render_template("sidebar/_problem.html", message=message), 404


@bp.get("/reviews")
def templates() -> ResponseReturnValue:
    """Render the installation's checklist templates."""
    return _listing(console_installation())


@bp.get("/reviews/new")
def new_template() -> ResponseReturnValue:
    """Render an empty template form."""
    return _editor(console_installation(), TemplateForm())


@bp.post("/reviews")
def create_template() -> ResponseReturnValue:
    """Create a template from the form."""
    return _save(console_installation(), template_id=None)


@bp.get("/reviews/<int:template_id>")
def edit_template(template_id: int) -> ResponseReturnValue:
    """Render the form for a template and its items."""
    installation = console_installation()
    template = checklists.template_of(db.session(), installation.id, template_id)
    return _editor(installation, checklists.template_form(template), template_id=template_id)


@bp.post("/reviews/<int:template_id>")
def update_template(template_id: int) -> ResponseReturnValue:
    """Save changes to a template: its audience, and its items and their order."""
    return _save(console_installation(), template_id=template_id)


@bp.post("/reviews/<int:template_id>/enabled")
def set_enabled(template_id: int) -> ResponseReturnValue:
    """Turn a template on (`enabled=true`) or off; reviews under way carry on."""
    installation = console_installation()
    enabled = request.form.get("enabled") == "true"
    template = checklists.set_template_enabled(
        db.session(), installation, template_id, enabled=enabled, now=utcnow()
    )
    return _listing(
        installation,
        status=N_("%(name)s is on.", name=template.name)
        if enabled
        else N_("%(name)s is off.", name=template.name),
    )


def _save(installation: Installation, *, template_id: int | None) -> ResponseReturnValue:
    session = db.session()
    form = template_form_from(request.form)
    try:
        saved = checklists.save_template(
            session, installation, form, template_id=template_id, now=utcnow()
        )
    except InvalidTemplate as invalid:
        session.rollback()
        return _editor(
            installation, form, template_id=template_id, errors=invalid.errors, status_code=400
        )
    return _listing(installation, status=N_("Saved %(name)s.", name=saved.name))


def template_form_from(submitted: MultiDict[str, str]) -> TemplateForm:
    """Read the template form; item inputs are named `items-0-label`, in row order."""
    rows: dict[int, dict[str, str]] = {}
    for key, value in submitted.items():
        if match := _ITEM_INPUT.match(key):
            index, part = match.groups()
            rows.setdefault(int(index), {})[part] = value
    items = tuple(
        ItemRow(
            label=row.get("label", ""),
            help=row.get("help", ""),
            required=row.get("required") == "on",
            position=row.get("position", ""),
            item_id=int(row["id"]) if row.get("id", "").isdigit() else None,
            remove=row.get("remove") == "on",
        )
        for row in (rows[index] for index in sorted(rows)[: MAX_ITEMS + BLANK_ROWS])
    )
    return TemplateForm(
        name=submitted.get("name", ""),
        description=submitted.get("description", ""),
        priority=submitted.get("priority", ""),
        enabled=submitted.get("enabled") == "on",
        audience={kind.value: submitted.getlist(f"audience-{kind.value}") for kind in AudienceKind},
        items=items,
    )


def _listing(installation: Installation, *, status: str | None = None) -> tuple[str, int]:
    return render_template(
        "console/_reviews.html",
        templates=checklists.list_templates(db.session(), installation.id),
        status=status,
    ), 200


def _editor(
    installation: Installation,
    form: TemplateForm,
    *,
    template_id: int | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> tuple[str, int]:
    filled = tuple(row for row in form.items)
    blanks = BLANK_ROWS - sum(1 for row in filled if row.is_blank())
    rows = filled + tuple(ItemRow(required=True) for _ in range(max(0, blanks)))
    choices = {
        kind: FIXED_VALUES[kind]
        if kind is not AudienceKind.PERSONA
        else tuple(checklists.persona_names(db.session(), installation.id))
        for kind in AudienceKind
    }
    return render_template(
        "console/_review_form.html",
        form=form,
        rows=rows,
        template_id=template_id,
        errors=errors or {},
        choices=choices,
        audience_labels=AUDIENCE_LABELS,
        max_items=MAX_ITEMS,
    ), status_code
