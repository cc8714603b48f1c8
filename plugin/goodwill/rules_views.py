"""The console's rules: list, write and publish, turn off, history and roll back, try a draft on
a customer, replay it over the last 30 days, and export or import the lot as JSON.

Every route answers the console page's fetch (bearer session; supervisors and admins, see
`plugin/console/roles.py`) with an HTML partial, as the other console sections do: 200 when it
worked, 400 with the form and a message next to each wrong field, 404 for a rule or version
this installation does not have. Publishing writes a new version with its author (the signed
user, named by the helpdesk); nothing else does. Storage is in `plugin/goodwill/rulebook.py`
and `transfer.py`, the form in `rule_forms.py` (rules in words in `rule_words.py`), trying a
draft in `draft_trial.py` and replaying it in `replay.py`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from plugin import db
from plugin.clock import utcnow
from plugin.console.views import (
    ConsoleRefused,
    console_caller,
    console_installation,
    console_refused,
)
from plugin.customers.condition_rows import ConditionRow
from plugin.domain.personas import FieldSpec, InvalidConditions, parse_conditions
from plugin.domain.rules import TICKET_PRIORITIES
from plugin.domain.rules import Rule as DomainRule
from plugin.domain.wording import N_
from plugin.goodwill import draft_trial, rulebook, transfer
from plugin.goodwill import replay as rule_replay
from plugin.goodwill.catalog import catalog_rows
from plugin.goodwill.catalog_forms import budget_segments
from plugin.goodwill.catalog_views import not_found
from plugin.goodwill.errors import InvalidImport, NotFound
from plugin.goodwill.money import exact_money
from plugin.goodwill.rule_forms import (
    RuleForm,
    read_rule_form,
    rule_definition,
    rule_errors,
    rule_form,
)
from plugin.goodwill.rule_words import (
    RULE_OPERATOR_LABELS,
    Change,
    changes,
    describe_condition,
    rule_condition_fields,
)
from plugin.goodwill.rulebook import Author
from plugin.helpdesks.interface import HelpdeskError
from plugin.helpdesks.runtime import client_for
from plugin.helpdesks.tokens import SidebarSession
from plugin.models import Installation
from plugin.web.settings import settings

bp = Blueprint("console_rules", __name__, url_prefix="/console")
bp.register_error_handler(ConsoleRefused, console_refused)
bp.register_error_handler(NotFound, not_found)

DRAFT_KEY = "draft"


# --- The list ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleItem:
    """A rule as the console lists it, from its current version."""

    id: int
    key: str
    name: str
    enabled: bool
    version: int
    suggests: tuple[str, ...]
    actions: tuple[str, ...]
    conditions: tuple[str, ...]
    limits: tuple[str, ...]
    problem: str | None


@bp.get("/rules")
def rules() -> ResponseReturnValue:
    """Render the installation's rules: name, on or off, version and what each suggests."""
    return _rule_list(console_installation())


def _rule_list(installation: Installation, *, status: str | None = None) -> tuple[str, int]:
    session = db.session()
    book = rulebook.rule_book(session, installation)
    fields = rulebook.fields_for(session, installation.id)
    names = {key: entry.name for key, entry in book.catalog.items()}
    items = []
    for rule, version in rulebook.current_rules(session, installation.id):
        definition = version.definition
        problem = None
        parsed = book.rules.get(rule.key)
        if parsed is None:
            problem = dict(book.broken).get(f"rule {rule.key}", "it no longer validates")
        items.append(
            RuleItem(
                id=rule.id,
                key=rule.key,
                name=str(definition.get("name", rule.key)),
                enabled=rule.enabled,
                version=rule.current_version,
                suggests=tuple(
                    names.get(str(s.get("exception")), str(s.get("exception")))
                    for s in definition.get("suggest", [])
                    if isinstance(s, Mapping)
                ),
                actions=tuple(a.describe() for a in parsed.actions) if parsed else (),
                conditions=_conditions_in_words(definition, fields, installation.currency),
                limits=_limits(parsed, installation.currency) if parsed else (),
                problem=problem,
            )
        )
    return render_template("console/_rules.html", items=items, status=status), 200


def _conditions_in_words(
    definition: Mapping[str, object], fields: Mapping[str, FieldSpec], currency: str
) -> tuple[str, ...]:
    """The rule's conditions as the console labels them; none for ones that do not parse."""
    try:
        conditions = parse_conditions(definition.get("conditions"), fields)
    except InvalidConditions:
        return ()
    return tuple(
        f"{title}: " + "; ".join(describe_condition(c, currency) for c in group)
        for title, group in (("All of", conditions.all), ("Any of", conditions.any))
        if group
    )


def _limits(rule: DomainRule, currency: str) -> tuple[str, ...]:
    limits = []
    if rule.cap is not None:
        limits.append(f"At most {rule.cap.describe()} per customer")
    if rule.budget is not None:
        limits.append(f"Charged to the {rule.budget.label} budget")
    if rule.approval_threshold_cents is not None:
        amount = exact_money(rule.approval_threshold_cents, currency)
        limits.append(f"Approval above {amount}")
    if rule.holdout_percent:
        limits.append(f"Held out from {rule.holdout_percent}% of customers, to measure its effect")
    return tuple(limits)


# --- Writing and publishing -------------------------------------------------------------------


@bp.get("/rules/new")
def new_rule() -> ResponseReturnValue:
    """Render an empty rule form."""
    return _rule_editor(console_installation(), RuleForm())


@bp.get("/rules/<int:rule_id>")
def edit_rule(rule_id: int) -> ResponseReturnValue:
    """Render the form for a rule's current version, with the problems of one that no longer
    validates."""
    installation = console_installation()
    session = db.session()
    rule = rulebook.get_rule(session, installation.id, rule_id)
    version = rulebook.rule_version(session, installation.id, rule.id, rule.current_version)
    fields = rulebook.fields_for(session, installation.id)
    form = rule_form(rule.key, version.definition, fields)
    errors = _problems(installation, form, rule.key)[1]
    return _rule_editor(
        installation, form, rule_id=rule.id, version=rule.current_version, errors=errors
    )


@bp.post("/rules")
def create_rule() -> ResponseReturnValue:
    """Publish a new rule (version 1) from the form."""
    return _publish(rule_id=None)


@bp.post("/rules/<int:rule_id>")
def update_rule(rule_id: int) -> ResponseReturnValue:
    """Publish the form as the rule's next version (nothing when it is the current one)."""
    return _publish(rule_id=rule_id)


def _publish(*, rule_id: int | None) -> ResponseReturnValue:
    caller, installation = console_caller()
    session = db.session()
    rule = rulebook.get_rule(session, installation.id, rule_id) if rule_id else None
    form = read_rule_form(request.form, key=rule.key if rule else None)
    definition, errors = _problems(installation, form, form.key or DRAFT_KEY, new=rule is None)
    if errors:
        return _rule_editor(
            installation,
            form,
            rule_id=rule_id,
            version=rule.current_version if rule else None,
            errors=errors,
            code=400,
        )
    author = _author(installation, caller)
    note = form.note.strip()
    try:
        if rule is None:
            rulebook.create_rule(
                session,
                installation,
                key=form.key,
                definition=definition,
                author=author,
                note=note,
                now=utcnow(),
            )
            status = N_("Published %(name)s as version 1.", name=definition["name"])
        else:
            written = rulebook.update_rule(
                session, installation, rule.id, definition, author=author, note=note, now=utcnow()
            )
            status = (
                N_(
                    "Published %(name)s as version %(number)s.",
                    name=definition["name"],
                    number=written.version,
                )
                if written
                else N_("No change: %(name)s is as it was.", name=definition["name"])
            )
    except InvalidConditions as invalid:  # a race: the catalog changed between check and write
        errors = rule_errors(invalid.errors, form, _fields(installation))
        return _rule_editor(installation, form, rule_id=rule_id, errors=errors, code=400)
    return _rule_list(installation, status=status)


def _problems(
    installation: Installation, form: RuleForm, key: str, *, new: bool = False
) -> tuple[dict[str, object], dict[str, str]]:
    """The form's definition and every problem with it, each keyed by its input."""
    session = db.session()
    fields = _fields(installation)
    definition, errors = rule_definition(form, fields)
    if new:
        try:
            rulebook.check_new_rule_key(session, installation.id, form.key)
        except InvalidConditions as invalid:
            message = invalid.errors[0].message
            errors.setdefault("key", f"{message[:1].upper()}{message[1:]}.")
    try:
        rulebook.validate_rule(session, installation.id, definition, key=key)
    except InvalidConditions as invalid:
        for name, message in rule_errors(invalid.errors, form, fields).items():
            errors.setdefault(name, message)
    return definition, errors


def _fields(installation: Installation) -> dict[str, FieldSpec]:
    return rulebook.fields_for(db.session(), installation.id)


def _author(installation: Installation, caller: SidebarSession) -> Author:
    """Who publishes: the signed user, by the name the helpdesk gives them (or their id)."""
    name = f"User {caller.user_id}"
    if caller.user_id:
        with contextlib.suppress(HelpdeskError):
            name = client_for(installation).user(user_id=caller.user_id).name
    return Author(id=caller.user_id, name=name)


def _rule_editor(
    installation: Installation,
    form: RuleForm,
    *,
    rule_id: int | None = None,
    version: int | None = None,
    errors: Mapping[str, str] | None = None,
    code: int = 200,
) -> tuple[str, int]:
    session = db.session()
    book = rulebook.rule_book(session, installation)
    catalog = [(row, book.catalog.get(row.key)) for row in catalog_rows(session, installation.id)]
    shown = {"all": form.all, "any": form.any}
    if not form.all and not form.any:
        shown = {"all": (ConditionRow(),), "any": ()}
    return render_template(
        "console/_rule_form.html",
        form=form,
        shown=shown,
        rule_id=rule_id,
        version=version,
        errors=errors or {},
        fields=rule_condition_fields(_fields(installation), installation.currency),
        operators=RULE_OPERATOR_LABELS,
        blank_row=ConditionRow(),
        catalog=catalog,
        priorities=TICKET_PRIORITIES,
        segments=budget_segments(),
        currency=installation.currency,
    ), code


@bp.post("/rules/<int:rule_id>/enabled")
def set_rule_enabled(rule_id: int) -> ResponseReturnValue:
    """Turn a rule on (`enabled=true`) or off, as a new version that says so."""
    caller, installation = console_caller()
    session = db.session()
    rule = rulebook.get_rule(session, installation.id, rule_id)
    current = rulebook.rule_version(session, installation.id, rule.id, rule.current_version)
    enabled = request.form.get("enabled") == "true"
    definition = {**current.definition, "enabled": enabled}
    name = definition.get("name", rule.key)
    try:
        rulebook.update_rule(
            session,
            installation,
            rule.id,
            definition,
            author=_author(installation, caller),
            note="Turned on" if enabled else "Turned off",
            now=utcnow(),
        )
    except InvalidConditions as invalid:
        return _rule_list(
            installation,
            status=N_("%(name)s cannot change: %(why)s. Edit it to fix.", name=name, why=invalid),
        )
    return _rule_list(
        installation,
        status=N_("%(name)s is on.", name=name) if enabled else N_("%(name)s is off.", name=name),
    )


# --- History and rollback ---------------------------------------------------------------------


@dataclass(frozen=True)
class VersionItem:
    """One version in a rule's history, with what it changed from the one before."""

    number: int
    author: str
    at: str
    note: str
    restored_from: int | None
    changes: tuple[Change, ...]
    current: bool


@bp.get("/rules/<int:rule_id>/history")
def rule_history(rule_id: int) -> ResponseReturnValue:
    """Render every version of the rule, newest first: who changed what and when."""
    return _history(console_installation(), rule_id)


@bp.post("/rules/<int:rule_id>/rollback")
def rollback_rule(rule_id: int) -> ResponseReturnValue:
    """Put an old version back in force, as a new version that copies it."""
    caller, installation = console_caller()
    to_version = request.form.get("to_version", "")
    if not to_version.isdigit():
        raise NotFound("no such version")
    try:
        written = rulebook.rollback_rule(
            db.session(),
            installation,
            rule_id,
            to_version=int(to_version),
            author=_author(installation, caller),
            now=utcnow(),
        )
    except (ValueError, InvalidConditions) as refusal:
        return _history(installation, rule_id, problem=str(refusal), code=400)
    status = N_(
        "Rolled back to version %(old)s: version %(new)s is now in force.",
        old=to_version,
        new=written.version,
    )
    return _history(installation, rule_id, status=status)


def _history(
    installation: Installation,
    rule_id: int,
    *,
    status: str | None = None,
    problem: str | None = None,
    code: int = 200,
) -> tuple[str, int]:
    session = db.session()
    rule = rulebook.get_rule(session, installation.id, rule_id)
    versions = rulebook.rule_history(session, installation.id, rule_id)
    items = []
    before = None
    for version in versions:
        items.append(
            VersionItem(
                number=version.version,
                author=version.author_name,
                at=version.created_at.strftime("%Y-%m-%d %H:%M UTC"),
                note=version.note,
                restored_from=version.restored_from,
                changes=changes(before, version.definition),
                current=version.version == rule.current_version,
            )
        )
        before = version.definition
    name = versions[-1].definition.get("name", rule.key) if versions else rule.key
    return render_template(
        "console/_rule_history.html",
        rule=rule,
        name=name,
        versions=list(reversed(items)),
        status=status,
        problem=problem,
    ), code


# --- Try and replay a draft -------------------------------------------------------------------


@bp.post("/rules/try")
def try_rule() -> ResponseReturnValue:
    """Evaluate the draft in the form for one customer, without publishing it."""
    installation = console_installation()
    draft, problems = _draft(installation, request.form)
    if draft is None:
        return render_template("console/_rule_try.html", problems=problems), 400
    session = db.session()
    chosen = request.form.get("try_customer_id", "")
    if chosen.isdigit():
        matches = [draft_trial.CustomerMatch(int(chosen), "", None, None)]
    else:
        query = request.form.get("try_customer", "")
        matches = draft_trial.find_customers(session, installation.id, query)
        if len(matches) != 1:
            return render_template("console/_rule_try.html", matches=matches, query=query), 200
    described = None
    if request.form.get("try_describe") == "on":
        described = draft_trial.DescribedTicket(
            subject=request.form.get("try_subject", ""),
            ticket_type=request.form.get("try_type") or None,
            priority=request.form.get("try_priority") or None,
            channel=request.form.get("try_channel") or "web",
            tags=tuple(
                t.strip().lower() for t in request.form.get("try_tags", "").split(",") if t.strip()
            ),
        )
    result = draft_trial.try_draft(
        session, installation, draft, customer_id=matches[0].id, described=described, now=utcnow()
    )
    if result is None:
        raise NotFound("no such customer")
    return render_template(
        "console/_rule_try.html",
        result=result,
        currency=installation.currency,
        describe=describe_condition,
    ), 200


@bp.post("/rules/replay")
def replay_rule() -> ResponseReturnValue:
    """Replay the draft in the form over the tickets the sidebar saw in the last 30 days."""
    installation = console_installation()
    draft, problems = _draft(installation, request.form)
    if draft is None:
        return render_template("console/_rule_replay.html", problems=problems), 400
    result = rule_replay.replay_draft(
        db.session(),
        installation,
        draft,
        now=utcnow(),
    )
    return render_template(
        "console/_rule_replay.html",
        result=result,
        currency=installation.currency,
        rule_id=request.form.get("rule_id", ""),
    ), 200


def _draft(
    installation: Installation, submitted: MultiDict[str, str]
) -> tuple[DomainRule | None, list[str]]:
    """The draft in the form as a rule, or the problems that keep it from being one."""
    rule_id = submitted.get("rule_id", "")
    key = DRAFT_KEY
    if rule_id.isdigit():
        key = rulebook.get_rule(db.session(), installation.id, int(rule_id)).key
    form = read_rule_form(submitted, key=key)
    fields = _fields(installation)
    definition, errors = rule_definition(form, fields)
    try:
        draft = rulebook.validate_rule(db.session(), installation.id, definition, key=key)
    except InvalidConditions as invalid:
        for name, message in rule_errors(invalid.errors, form, fields).items():
            errors.setdefault(name, message)
        draft = None
    if errors:
        return None, [f"{_input_name(name)}: {message}" for name, message in errors.items()]
    return draft, []


def _input_name(key: str) -> str:
    """Say which input an error belongs to, as the form labels it."""
    labels = {
        "name": "Name",
        "priority": "Priority",
        "suggest": "Suggests",
        "cap_times": "Cap, times",
        "cap_days": "Cap, days",
        "budget": "Budget segment",
        "approval_threshold": "Approval above",
        "holdout_percent": "Holdout",
        "raise_priority": "Raise priority",
        "add_tags": "Add tags",
        "route_to_group": "Route to group",
        "conditions": "Conditions",
        "key": "Key",
    }
    if key in labels:
        return labels[key]
    if key.startswith(("all[", "any[")):
        group, _, rest = key.partition("[")
        index, _, part = rest.partition("].")
        title = "all of these" if group == "all" else "any of these"
        return f"Condition {int(index) + 1} of {title}, {part}"
    if key.startswith("suggest-"):
        return f"Suggests {key.removeprefix('suggest-')}"
    return key


# --- Export and import ------------------------------------------------------------------------


@bp.get("/rules/export")
def export_rules() -> ResponseReturnValue:
    """Download the catalog, budgets and rules as one JSON file, to keep in git."""
    installation = console_installation()
    exported = transfer.export_rules(db.session(), installation)
    body = json.dumps(exported, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    filename = f"regulars-rules-{installation.account}.json"
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.post("/rules/import")
def import_rules() -> ResponseReturnValue:
    """Import an uploaded JSON file: all of it, or nothing and every problem at its path."""
    caller, installation = console_caller()
    request.max_content_length = settings().max_upload_bytes
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_template(
            "console/_rule_import.html", error="Choose a JSON file to import."
        ), 400
    try:
        raw = json.load(upload.stream)
    except (ValueError, UnicodeDecodeError) as error:
        message = f"{upload.filename} is not JSON ({error}); nothing was imported."
        return render_template("console/_rule_import.html", error=message), 400
    try:
        report = transfer.import_rules(
            db.session(),
            installation,
            raw,
            author=_author(installation, caller),
            note=f"Imported from {upload.filename}",
            now=utcnow(),
        )
    except InvalidImport as invalid:
        return render_template(
            "console/_rule_import.html", problems=invalid.errors, filename=upload.filename
        ), 400
    return render_template(
        "console/_rule_import.html", report=report, filename=upload.filename
    ), 200
