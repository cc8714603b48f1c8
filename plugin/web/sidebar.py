"""The ticket sidebar: the signed launch from the helpdesk, then the cards the page loads."""

from __future__ import annotations

import time
from datetime import datetime

from flask import Blueprint, current_app, make_response, render_template, request, url_for
from flask.typing import ResponseReturnValue

from plugin import db
from plugin.clock import utcnow
from plugin.models import Installation
from plugin.platforms import demo
from plugin.platforms.base import HelpdeskError, TicketNotFound
from plugin.recognition import (
    HelpdeskSnapshot,
    fetch_helpdesk_snapshot,
    refresh_from_shop,
    sidebar_view,
)
from plugin.tokens import InvalidToken, SidebarSession
from plugin.upstream import UpstreamTimeout
from plugin.web.auth import current_sidebar_session, launched_installation, sidebar_sessions
from plugin.web.helpdesks import client_for, helpdesks, shop_client_for
from plugin.web.settings import settings

bp = Blueprint("sidebar", __name__, url_prefix="/sidebar")

MAX_ID_LENGTH = 64
RETRY_AFTER_SECONDS = 2
PLATFORM_NAMES = {"zendesk": "Zendesk", "freshdesk": "Freshdesk", "demo": "the demo helpdesk"}


def unauthorized(reason: str) -> tuple[str, int]:
    return render_template("errors/unauthorized.html", reason=reason), 401


@bp.post("")
def launch() -> tuple[str, int]:
    """Verify the helpdesk's signed POST and serve the sidebar page with its own session."""
    try:
        launched, installation = launched_installation()
    except InvalidToken as refused:
        return unauthorized(str(refused))
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
def banner() -> ResponseReturnValue:
    """Render the recognition banner for the ticket the page is showing."""
    try:
        _session, installation = current_sidebar_session()
    except InvalidToken as refused:
        return problem(str(refused), 401)
    ticket_id = request.args.get("ticket_id", "").strip()
    if not ticket_id or len(ticket_id) > MAX_ID_LENGTH:
        return problem("No ticket to show.", 400)
    # The page's idea of the requester only lets the history fetch start early.
    requester_hint = request.args.get("requester_id", "").strip()[:MAX_ID_LENGTH] or None
    return banner_response(installation, ticket_id=ticket_id, requester_hint=requester_hint)


def banner_response(
    installation: Installation,
    *,
    ticket_id: str,
    requester_hint: str | None,
    deadline: float | None = None,
) -> ResponseReturnValue:
    """Read the ticket from the helpdesk and render its banner, or the problem, by the deadline.

    The one way every helpdesk's sidebar renders the banner; `deadline` (time.monotonic) is
    the sidebar's time budget from now unless the caller has started spending it already.
    """
    now = utcnow()
    shared = helpdesks()
    if deadline is None:
        deadline = time.monotonic() + shared.policy.budget_seconds
    snapshot = read_snapshot(
        installation, ticket_id=ticket_id, requester_hint=requester_hint, deadline=deadline, now=now
    )
    if not isinstance(snapshot, HelpdeskSnapshot):
        return snapshot
    if snapshot.stale_reason or snapshot.history_problem:
        current_app.logger.info(
            "serving stale helpdesk data for installation %s: %s",
            installation.id,
            snapshot.stale_reason or snapshot.history_problem,
        )
    shop_problem = refresh_from_shop(
        db.session(),
        installation,
        snapshot.requester,
        client=shop_client_for(installation),
        cache=shared.cache,
        synced=shared.shop_synced,
        policy=shared.policy,
        deadline=deadline,
        now=now,
    )
    if shop_problem:
        current_app.logger.info(
            "shop data not refreshed for installation %s: %s", installation.id, shop_problem
        )
    view = sidebar_view(db.session(), installation=installation, snapshot=snapshot, now=now)
    return render_template(
        "sidebar/_banner.html",
        banner=view.banner,
        helpdesk=view.helpdesk,
        order_sources=view.order_sources,
        rfm_base_size=view.rfm_base_size,
        helpdesk_name=PLATFORM_NAMES.get(installation.platform, "the helpdesk"),
        currency=installation.currency,
        now=now,
        today=now.date(),
    ), 200


def read_snapshot(
    installation: Installation,
    *,
    ticket_id: str,
    requester_hint: str | None,
    deadline: float,
    now: datetime,
) -> HelpdeskSnapshot | ResponseReturnValue:
    """Read the ticket and its requester through the app's upstream cache, or say the problem.

    Every sidebar card reads the ticket this way, so a card loaded after the banner finds the
    helpdesk's answers already cached.
    """
    shared = helpdesks()
    try:
        return fetch_helpdesk_snapshot(
            client_for(installation),
            cache=shared.cache,
            installation_id=installation.id,
            ticket_id=ticket_id,
            requester_hint=requester_hint,
            policy=shared.policy,
            deadline=deadline,
            now=now,
        )
    except TicketNotFound:
        return problem(f"Ticket {ticket_id} was not found in the helpdesk.", 404)
    except UpstreamTimeout:
        response = make_response(
            problem("The helpdesk is slow to answer. Still trying…", 503, retrying=True)
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    except HelpdeskError as error:
        current_app.logger.warning(
            "helpdesk unavailable for installation %s: %s", installation.id, error
        )
        return problem("The helpdesk is not answering right now. Try again in a moment.", 503)


def problem(message: str, status: int, *, retrying: bool = False) -> tuple[str, int]:
    return render_template("sidebar/_problem.html", message=message, retrying=retrying), status
