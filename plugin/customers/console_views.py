"""The console's segmentation sections: personas, guidance per segment and the value-tier bars.

Every route answers the console page's fetch (bearer session, admins only) with an HTML
partial the page puts in place: 200 when it worked, 400 with the form and a message next to
each wrong field, 401/403 as the rest of the console, 404 for a persona this installation
does not have. The rules and the storage are in `persona_settings`, `segment_guidance`,
`tier_settings` and `segment_refresh` beside it.
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
from plugin.customers import (
    condition_rows,
    persona_settings,
    segment_guidance,
    segment_refresh,
    tier_settings,
)
from plugin.customers.condition_rows import GROUPS, ConditionRow
from plugin.customers.persona_settings import PersonaForm, PersonaNotFound
from plugin.customers.segment_refresh import SegmentsRefresh
from plugin.customers.settings_forms import InvalidForm
from plugin.customers.tier_settings import TierForm
from plugin.domain.wording import N_, ngettext
from plugin.models import Installation

bp = Blueprint("console_segments", __name__, url_prefix="/console")
bp.register_error_handler(ConsoleRefused, console_refused)

_CONDITION_INPUT = re.compile(r"^(all|any)-(\d{1,4})-(field|operator|value)$")


@bp.errorhandler(PersonaNotFound)
def persona_not_found(_: PersonaNotFound) -> tuple[str, int]:
    message = "That persona does not exist here; it may have been deleted. Reload the console."
    return render_template("sidebar/_problem.html", message=message), 404


# --- Personas ---------------------------------------------------------------------------------


@bp.get("/personas")
def personas() -> ResponseReturnValue:
    """Render the installation's personas with how many customers each matches."""
    return _persona_list(console_installation())


@bp.get("/personas/new")
def new_persona() -> ResponseReturnValue:
    """Render an empty persona form."""
    return _persona_editor(console_installation(), PersonaForm())


@bp.post("/personas")
def create_persona() -> ResponseReturnValue:
    """Create a persona from the form; recompute segments if the base is small."""
    return _save_persona(console_installation(), persona_id=None)


@bp.get("/personas/<int:persona_id>")
def edit_persona(persona_id: int) -> ResponseReturnValue:
    """Render the form for a persona, with the problems of conditions that no longer parse."""
    installation = console_installation()
    form = persona_settings.persona_form(
        persona_settings.persona_of(db.session(), installation, persona_id)
    )
    try:
        persona_settings.check_persona(form)
    except InvalidForm as invalid:
        return _persona_editor(installation, form, persona_id=persona_id, errors=invalid.errors)
    return _persona_editor(installation, form, persona_id=persona_id)


@bp.post("/personas/<int:persona_id>")
def update_persona(persona_id: int) -> ResponseReturnValue:
    """Save changes to a persona; recompute segments if the base is small."""
    return _save_persona(console_installation(), persona_id=persona_id)


@bp.post("/personas/<int:persona_id>/enabled")
def set_persona_enabled(persona_id: int) -> ResponseReturnValue:
    """Turn a persona on (`enabled=true`) or off; recompute segments if the base is small."""
    installation = console_installation()
    session = db.session()
    enabled = request.form.get("enabled") == "true"
    persona = persona_settings.set_persona_enabled(
        session, installation, persona_id, enabled=enabled
    )
    refresh = segment_refresh.refresh_segments(session, installation, now=utcnow())
    status = (
        N_("%(name)s is on.", name=persona.name)
        if enabled
        else N_("%(name)s is off.", name=persona.name)
    )
    return _persona_list(installation, status=status, refresh=refresh)


@bp.post("/personas/<int:persona_id>/delete")
def delete_persona(persona_id: int) -> ResponseReturnValue:
    """Delete a persona; recompute segments if the base is small."""
    installation = console_installation()
    session = db.session()
    name = persona_settings.delete_persona(session, installation, persona_id)
    refresh = segment_refresh.refresh_segments(session, installation, now=utcnow())
    return _persona_list(installation, status=N_("Deleted %(name)s.", name=name), refresh=refresh)


def _save_persona(installation: Installation, *, persona_id: int | None) -> ResponseReturnValue:
    session = db.session()
    form = persona_form_from(request.form)
    try:
        saved = persona_settings.save_persona(session, installation, form, persona_id=persona_id)
    except InvalidForm as invalid:
        return _persona_editor(
            installation, form, persona_id=persona_id, errors=invalid.errors, status_code=400
        )
    # Read the clock after the save, so the recompute is not older than the persona.
    refresh = (
        segment_refresh.refresh_segments(session, installation, now=utcnow())
        if saved.changes_matches
        else None
    )
    return _persona_list(
        installation, status=N_("Saved %(name)s.", name=saved.persona.name), refresh=refresh
    )


def persona_form_from(submitted: MultiDict[str, str]) -> PersonaForm:
    """Read the persona form; condition inputs are named `all-0-field`, and blank rows ignored."""
    parts: dict[str, dict[int, dict[str, str]]] = {group: {} for group in GROUPS}
    for key, value in submitted.items():
        if match := _CONDITION_INPUT.match(key):
            group, index, part = match.groups()
            parts[group].setdefault(int(index), {})[part] = value
    rows = {
        group: tuple(
            row
            for row in (ConditionRow(**parts[group][index]) for index in sorted(parts[group]))
            if not row.is_blank()
        )
        for group in GROUPS
    }
    return PersonaForm(
        name=submitted.get("name", ""),
        description=submitted.get("description", ""),
        priority=submitted.get("priority", ""),
        enabled=submitted.get("enabled") == "on",
        guidance=submitted.get("guidance", ""),
        all=rows["all"],
        any=rows["any"],
    )


def _persona_list(
    installation: Installation,
    *,
    status: str | None = None,
    refresh: SegmentsRefresh | None = None,
) -> tuple[str, int]:
    listing = persona_settings.list_personas(db.session(), installation)
    return render_template(
        "console/_personas.html", listing=listing, status=status, refresh=refresh
    ), 200


def _persona_editor(
    installation: Installation,
    form: PersonaForm,
    *,
    persona_id: int | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> tuple[str, int]:
    return render_template(
        "console/_persona_form.html",
        form=form,
        persona_id=persona_id,
        errors=errors or {},
        fields=condition_rows.condition_fields(installation.currency),
        operators=condition_rows.OPERATOR_LABELS,
        blank_row=ConditionRow(),
        currency=installation.currency,
    ), status_code


# --- Guidance ---------------------------------------------------------------------------------


@bp.get("/guidance")
def guidance() -> ResponseReturnValue:
    """Render the guidance form: a text per value tier, RFM segment, lifecycle stage, behaviour."""
    installation = console_installation()
    texts = segment_guidance.guidance_texts(db.session(), installation)
    return _guidance_form(texts)


@bp.post("/guidance")
def save_guidance() -> ResponseReturnValue:
    """Store the guidance texts; an empty one removes that segment's guidance."""
    installation = console_installation()
    submitted = request.form.to_dict()
    try:
        texts = segment_guidance.save_guidance(db.session(), installation, submitted)
    except InvalidForm as invalid:
        return _guidance_form(submitted, errors=invalid.errors, status_code=400)
    count = len(texts)
    status = ngettext(
        "Saved. %(num)d segment now carries guidance.",
        "Saved. %(num)d segments now carry guidance.",
        count,
    )
    return _guidance_form(texts, status=status)


def _guidance_form(
    texts: Mapping[str, str],
    *,
    errors: Mapping[str, str] | None = None,
    status: str | None = None,
    status_code: int = 200,
) -> tuple[str, int]:
    return render_template(
        "console/_guidance.html",
        kinds=segment_guidance.GUIDANCE_KINDS,
        texts=texts,
        errors=errors or {},
        status=status,
        most=segment_guidance.GUIDANCE_MAX,
    ), status_code


# --- Tier thresholds --------------------------------------------------------------------------


@bp.get("/tiers")
def tiers() -> ResponseReturnValue:
    """Render the four tier bars, the suggestion from the base and the customers per tier."""
    installation = console_installation()
    return _tier_form(installation, tier_settings.current_tier_form(installation))


@bp.post("/tiers")
def save_tiers() -> ResponseReturnValue:
    """Store the tier bars; recompute segments if the base is small."""
    installation = console_installation()
    session = db.session()
    form = TierForm(**{name: request.form.get(name, "") for name in tier_settings.TIER_FIELDS})
    try:
        tier_settings.save_tier_thresholds(session, installation, form)
    except InvalidForm as invalid:
        return _tier_form(installation, form, errors=invalid.errors, status_code=400)
    refresh = segment_refresh.refresh_segments(session, installation, now=utcnow())
    return _tier_form(
        installation,
        tier_settings.current_tier_form(installation),
        status=N_("Saved the tier thresholds."),
        refresh=refresh,
    )


def _tier_form(
    installation: Installation,
    form: TierForm,
    *,
    errors: Mapping[str, str] | None = None,
    status: str | None = None,
    refresh: SegmentsRefresh | None = None,
    status_code: int = 200,
) -> tuple[str, int]:
    session = db.session()
    suggestion = tier_settings.suggest_tiers(session, installation.id, now=utcnow())
    return render_template(
        "console/_tiers.html",
        form=form,
        errors=errors or {},
        status=status,
        refresh=refresh,
        currency=installation.currency,
        suggestion=suggestion,
        suggested=TierForm.of(suggestion.thresholds),
        counts=tier_settings.tier_counts(session, installation.id),
        counted_at=segment_refresh.segments_computed_at(session, installation.id),
    ), status_code
