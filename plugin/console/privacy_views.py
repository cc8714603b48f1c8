"""The console's "forget a customer" (admins only): find them, confirm, forget, show the audit.

Two steps, so a typo never erases the wrong person: the first POST shows whom the identifier
finds and asks again; only the second, carrying `confirm`, forgets
(`plugin.customers.forget.forget_customer`). The console's requests carry its bearer session,
never a cookie, as every console endpoint's do (`plugin.console.views.console_installation`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from plugin import db
from plugin.clock import utcnow
from plugin.console.roles import Need
from plugin.console.views import ConsoleRefused, console_caller, console_refused
from plugin.customers.forget import (
    Identifier,
    IdentifierKind,
    NothingToForget,
    drop_cached_answers,
    erasures,
    erasures_after,
    forget_customer,
    latest_erasure,
    matching_customers,
)
from plugin.domain.phones import region_or_default
from plugin.helpdesks.runtime import helpdesks
from plugin.models import Installation, Order

bp = Blueprint("console_privacy", __name__, url_prefix="/console")
bp.register_error_handler(ConsoleRefused, console_refused)

KIND_LABELS = {
    IdentifierKind.EMAIL: "Email",
    IdentifierKind.PHONE: "Phone",
    IdentifierKind.COMPANY_ID: "Customer id (your company's)",
}
MAX_VALUE_LENGTH = 320
ERASURE_WATCH_KEY = "regulars.erasure_watch"
# How often a process looks for erasures made elsewhere (on the next request after this).
ERASURE_CHECK_SECONDS = 30.0
# The clock the watch is timed with (tests move it).
_clock = time.monotonic


@bp.before_app_request
def drop_answers_of_erasures_elsewhere() -> None:
    """Drop this process's cached answers of installations another process (the command line,
    another worker or host) has forgotten a customer in since this one last looked: at most
    one indexed query every `ERASURE_CHECK_SECONDS` per process."""
    watch: _ErasureWatch = current_app.extensions.setdefault(ERASURE_WATCH_KEY, _ErasureWatch())
    now = _clock()
    if now < watch.next_check:
        return
    watch.next_check = now + ERASURE_CHECK_SECONDS
    try:
        with db.database().sessions() as session:
            if watch.last_id is None:
                # A process starts with empty caches: only later erasures concern it.
                watch.last_id = latest_erasure(session)
                return
            found = erasures_after(session, watch.last_id)
    except SQLAlchemyError as error:
        current_app.logger.warning("could not look for erasures: %s", error)
        return
    if not found:
        return
    watch.last_id = found[-1][0]
    shared = helpdesks()
    for installation_id in {installation_id for _id, installation_id in found}:
        drop_cached_answers(shared.cache, installation_id, synced=shared.shop_synced)


@dataclass
class _ErasureWatch:
    """The newest erasure this process has dropped cached answers for, and when to look again."""

    last_id: int | None = None
    next_check: float = 0.0


@bp.get("/forget")
def forget_form() -> ResponseReturnValue:
    """Render the form that names a customer to forget, and the latest erasures."""
    _session, installation = console_caller(Need.ADMINISTER)
    return _form(installation)


@bp.post("/forget")
def forget() -> ResponseReturnValue:
    """Show whom the identifier finds and ask to confirm; with `confirm`, forget them."""
    console, installation = console_caller(Need.ADMINISTER)
    if request.form.get("cancel") == "yes":
        return _form(installation)
    kind = request.form.get("kind", "")
    value = request.form.get("value", "")[:MAX_VALUE_LENGTH]
    try:
        identifier = Identifier.of(
            kind, value, phone_region=region_or_default(installation.default_phone_region)
        )
    except (NothingToForget, ValueError) as invalid:
        message = (
            str(invalid)
            if isinstance(invalid, NothingToForget)
            else "Choose what to find the customer by."
        )
        return _form(installation, kind=kind, value=value, error=message, code=400)
    session = db.session()
    if request.form.get("confirm") != "yes":
        found = matching_customers(session, installation, identifier)
        orders: dict[int, int] = {
            customer_id: count
            for customer_id, count in session.execute(
                sa.select(Order.customer_id, sa.func.count())
                .where(Order.installation_id == installation.id)
                .where(Order.customer_id.in_([customer.id for customer in found]))
                .group_by(Order.customer_id)
            )
        }
        return render_template(
            "console/_forget.html",
            installation=installation,
            step="confirm",
            identifier=identifier,
            kind_label=KIND_LABELS[identifier.kind],
            found=[(customer, orders.get(customer.id, 0)) for customer in found],
        ), 200
    forgotten = forget_customer(
        session,
        installation,
        identifier,
        requested_by=f"helpdesk user {console.user_id}",
        via="console",
        audit_key=current_app.config["SECRET_KEY"],
        now=utcnow(),
    )
    session.commit()
    shared = helpdesks()
    drop_cached_answers(shared.cache, installation.id, synced=shared.shop_synced)
    return _form(installation, status=forgotten.summary())


def _form(
    installation: Installation,
    *,
    kind: str = IdentifierKind.EMAIL.value,
    value: str = "",
    error: str | None = None,
    status: str | None = None,
    code: int = 200,
) -> tuple[str, int]:
    return render_template(
        "console/_forget.html",
        installation=installation,
        step="ask",
        kinds=KIND_LABELS,
        kind=kind,
        value=value,
        error=error,
        status=status,
        erasures=erasures(db.session(), installation.id),
    ), code
