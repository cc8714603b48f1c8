"""The admin console, opened from the helpdesk's nav bar: connection status and field mappings."""

from __future__ import annotations

from flask import Blueprint, render_template, url_for
from flask.typing import ResponseReturnValue

from plugin import db, installations
from plugin.clock import utcnow
from plugin.platforms import zendesk
from plugin.platforms.base import HelpdeskError
from plugin.tokens import InvalidToken, SidebarSession
from plugin.web.auth import current_sidebar_session, launched_installation, sidebar_sessions
from plugin.web.helpdesks import client_for, helpdesks

bp = Blueprint("console", __name__, url_prefix="/console")

CONSOLE_ROLES = frozenset({"admin"})


def refused(reason: str, status: int) -> tuple[str, int]:
    return render_template("errors/unauthorized.html", reason=reason), status


@bp.post("")
def launch() -> ResponseReturnValue:
    """Verify the helpdesk's signed POST, check the user is an admin there, serve the console."""
    try:
        launched, installation = launched_installation()
    except InvalidToken as refusal:
        return refused(str(refusal), 401)
    if launched.user_id is None:
        return refused("The launch token does not say who you are; reopen the console.", 401)
    try:
        # The helpdesk, not the token or the page, says what the user may do.
        user = client_for(installation).user(user_id=launched.user_id)
    except HelpdeskError as error:
        return refused(f"Regulars could not check your role in the helpdesk: {error}.", 503)
    if user.role not in CONSOLE_ROLES:
        return refused(
            "The Regulars console is for admins of this helpdesk. Ask an admin for access.", 403
        )
    token = sidebar_sessions().issue(
        SidebarSession(installation_id=installation.id, user_id=user.id, role=user.role)
    )
    return render_template(
        "console/page.html",
        session_token=token,
        installation=installation,
        user=user,
        mappings=installations.list_mappings(db.session(), installation),
        check_url=url_for("console.check_connection"),
    ), 200


@bp.post("/connection/check")
def check_connection() -> ResponseReturnValue:
    """Run the connection check now and render its report (called by the console page)."""
    try:
        session, installation = current_sidebar_session()
    except InvalidToken as refusal:
        return render_template("sidebar/_problem.html", message=str(refusal)), 401
    if session.role not in CONSOLE_ROLES:
        return render_template("sidebar/_problem.html", message="Admins only."), 403
    if installation.platform != zendesk.PLATFORM:
        return render_template("console/_connection.html", report=None), 200
    db_session = db.session()
    connections = helpdesks().connections
    base_url = zendesk.base_url_for(installation.account, installation.api_base_url)
    report = installations.check_connection(
        db_session,
        installation,
        connections.vault,
        http_session=connections.accounts.session(base_url),
        timeout=connections.timeout,
        now=utcnow(),
    )
    db_session.commit()
    return render_template("console/_connection.html", report=report), 200
