"""The console, opened from the helpdesk's nav bar: connection status and field mappings.

Who gets in and what they may do is decided in `plugin/console/roles.py`; every console
endpoint (here and in the other console blueprints) goes through `console_installation`.
"""

from __future__ import annotations

import time
from dataclasses import replace

from flask import Blueprint, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue

from plugin import db
from plugin.clock import utcnow
from plugin.console import connect_views
from plugin.console.roles import REFUSALS, ConsoleRole, Need, allows, console_role, names_roles
from plugin.customers.csv_import import ImportFileError, Kind, import_csv
from plugin.domain.helpdesk import Person
from plugin.helpdesks import field_mappings, zendesk, zendesk_connection_check
from plugin.helpdesks.connect import NotConnected
from plugin.helpdesks.interface import HelpdeskError, PersonNotFound
from plugin.helpdesks.runtime import client_for, helpdesks
from plugin.helpdesks.tokens import InvalidToken, SidebarSession
from plugin.models import Installation
from plugin.sidebar.events import health_line
from plugin.sidebar.upstream import LockedTTLCache
from plugin.web.auth import current_sidebar_session, launched_installation, sidebar_sessions
from plugin.web.i18n import speak
from plugin.web.settings import settings

bp = Blueprint("console", __name__, url_prefix="/console")

ROLE_CHECKS_KEY = "regulars.console_role_checks"
ROLE_CHECKS_KEPT = 10_000
# Checks older than any sensible recheck setting are dropped, so the store stays small.
ROLE_CHECKS_SECONDS = 86_400
# The clock role checks are timed with (tests move it).
_clock = time.monotonic

IMPORT_KINDS: dict[str, Kind] = {"customers": "customers", "orders": "orders"}


def refused(reason: str, status: int) -> tuple[str, int]:
    return render_template("errors/unauthorized.html", reason=reason), status


@bp.post("")
def launch() -> ResponseReturnValue:
    """Verify the helpdesk's signed POST, ask the helpdesk the user's role, serve the console."""
    try:
        launched, installation = launched_installation()
    except NotConnected as pending:  # no admin has connected it yet: the Connect page
        return connect_views.connect_page(pending.installation, pending.user_id)
    except InvalidToken as refusal:
        return refused(str(refusal), 401)
    if launched.user_id is None:
        return refused("The launch token does not say who you are; reopen the console.", 401)
    try:
        # The helpdesk, not the token or the page, says what the user may do.
        user, role = helpdesk_role(installation, launched.user_id)
    except PersonNotFound:
        return refused(
            "The helpdesk does not know you as a user of this account; reopen the console "
            "from the helpdesk you are signed in to.",
            403,
        )
    except HelpdeskError as error:
        return refused(f"Regulars could not check your role in the helpdesk: {error}.", 503)
    if role is None:
        return refused(
            "The Regulars console is for admins of this helpdesk and the supervisors they "
            "name. Ask an admin for access.",
            403,
        )
    # The console speaks the user's helpdesk language; console.js sends it with each call.
    speak(user.locale)
    token = sidebar_sessions().issue(
        SidebarSession(installation_id=installation.id, user_id=user.id, role=role.value)
    )
    _role_checks()[(installation.id, user.id)] = (role.value, _clock())
    return render_template(
        "console/page.html",
        session_token=token,
        installation=installation,
        user=user,
        role=role,
        is_admin=role is ConsoleRole.ADMIN,
        mappings=field_mappings.list_mappings(db.session(), installation),
        check_url=url_for("console.check_connection"),
        import_url=url_for("console.import_data"),
    ), 200


def helpdesk_role(installation: Installation, user_id: str) -> tuple[Person, ConsoleRole | None]:
    """The user as the helpdesk answers now, and the console role that gives them (None: no
    console). Raises PersonNotFound, or HelpdeskError when the helpdesk cannot answer."""
    user = client_for(installation).user(user_id=user_id)
    supervisors = installation.supervisor_roles or ()
    role = console_role(user, supervisors)
    if role is None and user.role_ids and names_roles(supervisors):
        # Roles typed by name ("Team lead"): ask the helpdesk what the user's roles are called.
        named = client_for(installation).role_names(role_ids=user.role_ids)
        role = console_role(replace(user, role_ids=(*user.role_ids, *named)), supervisors)
    return user, role


def _role_checks() -> LockedTTLCache[tuple[int, str], tuple[str | None, float]]:
    """This process's last check of each console user's role: (role, when, by `_clock`)."""
    checks: LockedTTLCache[tuple[int, str], tuple[str | None, float]] | None = (
        current_app.extensions.get(ROLE_CHECKS_KEY)
    )
    if checks is None:
        checks = current_app.extensions.setdefault(
            ROLE_CHECKS_KEY, LockedTTLCache(maxsize=ROLE_CHECKS_KEPT, ttl=ROLE_CHECKS_SECONDS)
        )
    return checks


def _current_role(session: SidebarSession, installation: Installation) -> str | None:
    """The session's role, asked of the helpdesk again when this process's last check of it is
    older than REGULARS_CONSOLE_ROLE_RECHECK_SECONDS: a supervisor removed in the helpdesk
    loses the console within that, not at the session's end. Fails closed (ConsoleRefused)."""
    if session.user_id is None or session.role is None:
        return session.role
    key = (installation.id, session.user_id)
    checked = _role_checks().get(key)
    if checked is not None and _clock() - checked[1] < settings().console_role_recheck_seconds:
        return checked[0]
    try:
        _user, role = helpdesk_role(installation, session.user_id)
    except PersonNotFound:
        role = None
    except HelpdeskError as error:
        raise ConsoleRefused(
            f"Regulars could not check your role in the helpdesk again: {error}. "
            "Try again in a moment.",
            503,
        ) from None
    current = None if role is None else role.value
    _role_checks()[key] = (current, _clock())
    if current is None:
        raise ConsoleRefused(
            "Your access to the Regulars console has ended: the helpdesk no longer names you "
            "an admin or a supervisor. Ask an admin if this is a mistake.",
            403,
        )
    return current


class ConsoleRefused(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@bp.errorhandler(ConsoleRefused)
def console_refused(refusal: ConsoleRefused) -> tuple[str, int]:
    return render_template("sidebar/_problem.html", message=str(refusal)), refusal.status


def console_installation(need: Need = Need.SUPERVISE) -> Installation:
    """The installation of the console session the request's bearer token names, if the
    session's role allows what `need` says (supervisors and admins; ADMINISTER: admins only).

    The console's own requests carry the session in an Authorization header, never a cookie,
    so another site cannot make a signed-in browser send them (no CSRF).
    """
    return console_caller(need)[1]


def console_caller(need: Need = Need.SUPERVISE) -> tuple[SidebarSession, Installation]:
    """The console session (who, in which role) and its installation; refused as above."""
    try:
        session, installation = current_sidebar_session()
    except InvalidToken as refusal:
        raise ConsoleRefused(str(refusal), 401) from None
    role = _current_role(session, installation)
    if not allows(role, need):
        raise ConsoleRefused(REFUSALS[need], 403)
    return replace(session, role=role), installation


@bp.post("/connection/check")
def check_connection() -> ResponseReturnValue:
    """Run the connection check now and render its report (called by the console page)."""
    installation = console_installation(Need.ADMINISTER)
    db_session = db.session()
    events = health_line(db_session, installation.id, now=utcnow())
    if installation.platform != zendesk.PLATFORM:
        return render_template("console/_connection.html", report=None, events=events), 200
    connections = helpdesks().connections
    base_url = zendesk.base_url_for(installation.account, installation.api_base_url)
    report = zendesk_connection_check.check_connection(
        db_session,
        installation,
        connections.vault,
        http_session=connections.accounts.session(base_url),
        timeout=connections.timeout,
        now=utcnow(),
    )
    db_session.commit()
    return render_template("console/_connection.html", report=report, events=events), 200


@bp.post("/import")
def import_data() -> ResponseReturnValue:
    """Import an uploaded CSV of customers or orders and render the import's report."""
    installation = console_installation(Need.ADMINISTER)
    request.max_content_length = settings().max_upload_bytes
    kind = IMPORT_KINDS.get(request.form.get("kind", ""))
    upload = request.files.get("file")
    if kind is None:
        return _import_problem("Choose whether the file holds customers or orders.")
    if upload is None or not upload.filename:
        return _import_problem("Choose a CSV file to import.")
    dry_run = request.form.get("dry_run") == "1"
    try:
        # The encoding and delimiter are detected from the file (and reported).
        report = import_csv(
            db.session(), installation.id, upload.stream, kind=kind, now=utcnow(), dry_run=dry_run
        )
    except ImportFileError as error:
        return _import_problem(f"{upload.filename}: {error}; nothing was imported.")
    return render_template(
        "console/_import_report.html", report=report, filename=upload.filename
    ), 200


def _import_problem(message: str) -> tuple[str, int]:
    return render_template("console/_import_report.html", error=message), 400
