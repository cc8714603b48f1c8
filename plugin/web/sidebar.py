"""The ticket sidebar: the signed launch from the helpdesk, then the cards the page loads."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, url_for

from plugin import db
from plugin.clock import utcnow
from plugin.models import Installation
from plugin.platforms import demo, helpdesk_for, is_allowed_origin
from plugin.platforms.base import HelpdeskError, TicketNotFound
from plugin.recognition import sidebar_view
from plugin.tokens import InvalidToken, SidebarSession
from plugin.web.auth import current_sidebar_session, sidebar_sessions, verify_launch
from plugin.web.settings import settings

bp = Blueprint("sidebar", __name__, url_prefix="/sidebar")

MAX_TICKET_ID_LENGTH = 64


def unauthorized(reason: str) -> tuple[str, int]:
    return render_template("errors/unauthorized.html", reason=reason), 401


@bp.post("")
def launch() -> tuple[str, int]:
    """Verify the helpdesk's signed POST and serve the sidebar page with its own session."""
    origin = request.args.get("origin", "")
    app_guid = request.args.get("app_guid", "")
    try:
        launched = verify_launch(request.form.get("token", ""))
    except InvalidToken as refused:
        return unauthorized(str(refused))
    installation = db.session().get(Installation, launched.installation_id)
    assert installation is not None
    if not origin or not app_guid:
        return unauthorized("The app was opened without its origin and app_guid parameters.")
    if not is_allowed_origin(installation, origin, service_origin=request.host_url.rstrip("/")):
        return unauthorized(
            "The app was opened from a page that is not this installation's helpdesk."
        )
    session_token = sidebar_sessions().issue(
        SidebarSession(installation_id=installation.id, user_id=launched.user_id)
    )
    return render_template(
        "sidebar/page.html",
        session_token=session_token,
        sdk_url=sdk_url(installation),
        banner_url=url_for("sidebar.banner"),
    ), 200


def sdk_url(installation: Installation) -> str:
    """Use Zendesk's own SDK in Zendesk; the copy bundled at set-up time in the demo."""
    if installation.platform == demo.PLATFORM:
        return url_for("static", filename="vendor/zaf_sdk.min.js")
    return settings().zaf_sdk_url


@bp.get("/banner")
def banner() -> tuple[str, int]:
    """Render the recognition banner for the ticket the page is showing."""
    try:
        _session, installation = current_sidebar_session()
    except InvalidToken as refused:
        return render_template("sidebar/_problem.html", message=str(refused)), 401
    ticket_id = request.args.get("ticket_id", "").strip()
    if not ticket_id or len(ticket_id) > MAX_TICKET_ID_LENGTH:
        return render_template("sidebar/_problem.html", message="No ticket to show."), 400
    session = db.session()
    now = utcnow()
    try:
        view = sidebar_view(
            session,
            installation=installation,
            helpdesk=helpdesk_for(installation, session),
            ticket_id=ticket_id,
            now=now,
        )
    except TicketNotFound:
        message = f"Ticket {ticket_id} was not found in the helpdesk."
        return render_template("sidebar/_problem.html", message=message), 404
    except HelpdeskError as error:
        current_app.logger.warning(
            "helpdesk unavailable for installation %s: %s", installation.id, error
        )
        message = "The helpdesk is not answering right now. Try again in a moment."
        return render_template("sidebar/_problem.html", message=message), 503
    return render_template(
        "sidebar/_banner.html",
        banner=view.banner,
        ticket=view.ticket,
        currency=installation.currency,
        now=now,
        today=now.date(),
    ), 200
