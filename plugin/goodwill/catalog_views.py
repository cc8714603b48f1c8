"""The console's exception catalog and segment budgets, and the approvals supervisors decide.

Every route answers the console page's fetch (bearer session; supervisors and admins, see
`plugin/console/roles.py`) with an HTML partial the page puts in place: 200 when it worked, 400
with the form and a message next to each wrong field, 401/403 as the rest of the console, 404
for an entry or escalation this installation does not have. The storage is in
`plugin/goodwill/catalog.py` (approvals in `actions.py`), the forms in `catalog_forms.py`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from plugin import db
from plugin.clock import utcnow
from plugin.console.views import (
    ConsoleRefused,
    console_caller,
    console_installation,
    console_refused,
)
from plugin.domain.exceptions import CostKind, ExceptionType, parse_exception_type
from plugin.domain.gesture_binding import RECORD_ONLY
from plugin.domain.personas import InvalidConditions
from plugin.domain.wording import N_
from plugin.gestures.planning import enabled_kinds
from plugin.goodwill import actions, rulebook
from plugin.goodwill import catalog as exception_catalog
from plugin.goodwill.catalog_forms import (
    CatalogForm,
    budget_definition,
    budget_errors,
    budget_segments,
    catalog_definition,
    catalog_errors,
)
from plugin.goodwill.errors import ActionRefused, InvalidAction, NotFound
from plugin.goodwill.form_input import InvalidForm, units
from plugin.goodwill.money import exact_money
from plugin.helpdesks.interface import HelpdeskError
from plugin.helpdesks.runtime import client_for
from plugin.models import Action, Customer, Installation

bp = Blueprint("console_catalog", __name__, url_prefix="/console")
bp.register_error_handler(ConsoleRefused, console_refused)


@bp.errorhandler(NotFound)
def not_found(_: NotFound) -> tuple[str, int]:
    message = "That does not exist here; it may have been changed elsewhere. Reload the console."
    return render_template("sidebar/_problem.html", message=message), 404


# --- Catalog ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogItem:
    """A catalog entry as the console lists it; `problem` when its definition no longer parses."""

    id: int
    key: str
    enabled: bool
    entry: ExceptionType | None
    name: str
    problem: str | None


@bp.get("/catalog")
def catalog() -> ResponseReturnValue:
    """Render the catalog: every entry with its cost, limits and reasons."""
    return _catalog_list(console_installation())


@bp.get("/catalog/new")
def new_entry() -> ResponseReturnValue:
    """Render an empty catalog entry form."""
    return _entry_editor(console_installation(), CatalogForm())


@bp.post("/catalog")
def create_entry() -> ResponseReturnValue:
    """Add a catalog entry from the form."""
    return _save_entry(console_installation(), entry_id=None)


@bp.get("/catalog/<int:entry_id>")
def edit_entry(entry_id: int) -> ResponseReturnValue:
    """Render the form for a catalog entry."""
    installation = console_installation()
    row = exception_catalog.exception_type_row(db.session(), installation.id, entry_id)
    form = CatalogForm.of(row.definition, enabled=row.enabled)
    return _entry_editor(installation, form, entry_id=entry_id)


@bp.post("/catalog/<int:entry_id>")
def update_entry(entry_id: int) -> ResponseReturnValue:
    """Save changes to a catalog entry (its key stays)."""
    return _save_entry(console_installation(), entry_id=entry_id)


@bp.post("/catalog/<int:entry_id>/enabled")
def set_entry_enabled(entry_id: int) -> ResponseReturnValue:
    """Offer an entry again (`enabled=true`), or stop offering it."""
    installation = console_installation()
    enabled = request.form.get("enabled") == "true"
    row = exception_catalog.set_exception_enabled(
        db.session(), installation, entry_id, enabled=enabled, now=utcnow()
    )
    name = row.definition.get("name", row.key)
    status = (
        N_("%(name)s is offered again.", name=name)
        if enabled
        else N_("%(name)s is off: no rule offers it.", name=name)
    )
    return _catalog_list(installation, status=status)


def _save_entry(installation: Installation, *, entry_id: int | None) -> ResponseReturnValue:
    session = db.session()
    key = None
    if entry_id is not None:
        key = exception_catalog.exception_type_row(session, installation.id, entry_id).key
    form = CatalogForm.read(request.form, key=key)
    definition, errors = catalog_definition(form, installation.currency)
    try:
        parse_exception_type(definition)
    except InvalidConditions as invalid:
        for name, message in catalog_errors(invalid.errors).items():
            errors.setdefault(name, message)
    if errors:
        return _entry_editor(installation, form, entry_id=entry_id, errors=errors, code=400)
    try:
        if entry_id is None:
            row = exception_catalog.create_exception_type(
                session, installation, definition, enabled=form.enabled, now=utcnow()
            )
        else:
            row = exception_catalog.save_exception_type(
                session, installation, definition, enabled=form.enabled, now=utcnow()
            )
    except InvalidConditions as invalid:  # the key is taken, or the currency is not ours
        errors = catalog_errors(invalid.errors)
        return _entry_editor(installation, form, entry_id=entry_id, errors=errors, code=400)
    return _catalog_list(installation, status=N_("Saved %(name)s.", name=row.definition["name"]))


def _catalog_list(installation: Installation, *, status: str | None = None) -> tuple[str, int]:
    items = []
    for row in exception_catalog.catalog_rows(db.session(), installation.id):
        try:
            entry: ExceptionType | None = parse_exception_type(row.definition)
            problem = None
        except InvalidConditions as invalid:
            entry, problem = None, str(invalid)
        name = str(row.definition.get("name", row.key))
        items.append(CatalogItem(row.id, row.key, row.enabled, entry, name, problem))
    return render_template(
        "console/_catalog.html",
        items=items,
        status=status,
        currency=installation.currency,
        gesture_kinds=enabled_kinds(db.session(), installation.id),
        record_only=RECORD_ONLY,
    ), 200


def _entry_editor(
    installation: Installation,
    form: CatalogForm,
    *,
    entry_id: int | None = None,
    errors: Mapping[str, str] | None = None,
    code: int = 200,
) -> tuple[str, int]:
    return render_template(
        "console/_catalog_form.html",
        form=form,
        entry_id=entry_id,
        errors=errors or {},
        currency=installation.currency,
        cost_kinds=CostKind,
    ), code


# --- Budgets ----------------------------------------------------------------------------------


@bp.get("/budgets")
def budgets() -> ResponseReturnValue:
    """Render the segment budgets with what each has spent this month, and a form to set one."""
    return _budget_list(console_installation())


@bp.post("/budgets")
def set_budget() -> ResponseReturnValue:
    """Set a segment's monthly budget (a new one, or a new amount for one that exists)."""
    installation = console_installation()
    segment, amount = request.form.get("segment", ""), request.form.get("monthly", "")
    try:
        definition = budget_definition(segment, amount, installation.currency)
        exception_catalog.set_budget(db.session(), installation, definition, now=utcnow())
    except InvalidForm as invalid:
        return _budget_list(installation, errors=invalid.errors, typed=(segment, amount), code=400)
    except InvalidConditions as invalid:
        errors = budget_errors(invalid.errors)
        return _budget_list(installation, errors=errors, typed=(segment, amount), code=400)
    label = dict(budget_segments())[segment]
    return _budget_list(
        installation,
        status=N_(
            "Set the %(segment)s budget to %(amount)s a month.",
            segment=label,
            amount=amount.strip(),
        ),
    )


def _budget_list(
    installation: Installation,
    *,
    status: str | None = None,
    errors: Mapping[str, str] | None = None,
    typed: tuple[str, str] = ("", ""),
    code: int = 200,
) -> tuple[str, int]:
    statuses = exception_catalog.budget_statuses(db.session(), installation.id, now=utcnow())
    return render_template(
        "console/_budgets.html",
        statuses=statuses,
        segments=budget_segments(),
        status=status,
        errors=errors or {},
        typed=typed,
        currency=installation.currency,
        units=units,
    ), code


# --- Approvals --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingEscalation:
    """An escalation as the approvals list shows it."""

    id: int
    asked_by: str
    customer: str
    exception: str
    amount: str
    reason: str
    text: str
    ticket_id: str
    rule: str
    asked_at: str


@bp.get("/escalations")
def escalations() -> ResponseReturnValue:
    """Render the escalations waiting for a supervisor's decision, oldest first."""
    return _escalation_list(console_installation())


@bp.post("/escalations/<int:escalation_id>")
def decide_escalation(escalation_id: int) -> ResponseReturnValue:
    """Approve (`decision=approve`) or refuse an escalation, with the reason given."""
    caller, installation = console_caller()
    decision = request.form.get("decision")
    text = request.form.get("text", "").strip()
    if decision not in ("approve", "refuse"):
        return _escalation_list(installation, errors={escalation_id: "Choose approve or refuse."})
    if decision == "refuse" and not text:
        errors = {escalation_id: "Say why you refuse: the agent reads it."}
        return _escalation_list(installation, errors=errors, code=400)
    try:
        outcome = actions.resolve_escalation(
            db.session(),
            installation,
            escalation_id,
            approve=decision == "approve",
            approver_id=caller.user_id,
            text=text,
            idempotency_key=request.form.get("idempotency_key", ""),
            now=utcnow(),
        )
    except (ActionRefused, InvalidAction) as refusal:
        return _escalation_list(installation, errors={escalation_id: str(refusal)}, code=400)
    return _escalation_list(installation, status=outcome.message)


def _escalation_list(
    installation: Installation,
    *,
    status: str | None = None,
    errors: Mapping[int, str] | None = None,
    code: int = 200,
) -> tuple[str, int]:
    session = db.session()
    pending = actions.pending_escalations(session, installation.id)
    book = rulebook.rule_book(session, installation)
    names = _customer_names(session, installation.id, pending)
    agents = _agent_names(installation, {a.agent_id for a in pending if a.agent_id})
    rule_keys = {rule_id: key for key, rule_id in book.rule_ids.items()}
    shown = []
    for action in pending:
        entry = book.catalog.get(action.exception_key)
        reasons = (*entry.apply_reasons, *entry.dismiss_reasons) if entry else ()
        reason = next((r.label for r in reasons if r.code == action.reason_code), None)
        shown.append(
            PendingEscalation(
                id=action.id,
                asked_by=agents.get(action.agent_id or "", action.agent_id or "Unknown agent")
                + ("" if action.agent_verified is not False else " (agent not verified)"),
                customer=names.get(action.customer_id or 0, f"Requester {action.requester_id}"),
                exception=entry.name if entry else action.exception_key,
                amount=exact_money(action.amount_cents or 0, action.currency),
                reason=reason or action.reason_code or "",
                text=action.text,
                ticket_id=action.ticket_id,
                rule=f"{rule_keys.get(action.rule_id or 0, 'a rule')} v{action.rule_version}"
                if action.rule_version
                else "",
                asked_at=action.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            )
        )
    return render_template(
        "console/_escalations.html",
        pending=shown,
        status=status,
        errors=errors or {},
        keys={item.id: secrets.token_urlsafe(16) for item in shown},
    ), code


def _customer_names(
    session: sa.orm.Session, installation_id: int, actions: list[Action]
) -> dict[int, str]:
    ids = {a.customer_id for a in actions if a.customer_id}
    if not ids:
        return {}
    rows = session.execute(
        sa.select(Customer.id, Customer.name).where(
            Customer.installation_id == installation_id, Customer.id.in_(sorted(ids))
        )
    )
    return {customer_id: name for customer_id, name in rows}


def _agent_names(installation: Installation, agent_ids: set[str]) -> dict[str, str]:
    """The agents' names as the helpdesk has them; an agent it cannot name keeps their id."""
    names = {}
    client = client_for(installation)
    for agent_id in sorted(agent_ids)[:20]:
        try:
            names[agent_id] = client.user(user_id=agent_id).name
        except HelpdeskError:  # a name is a nicety; the id still says who asked
            continue
    return names
