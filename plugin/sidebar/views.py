"""The ticket sidebar: the signed launch from the helpdesk, then the cards the page loads."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from flask import (
    Blueprint,
    current_app,
    jsonify,
    make_response,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from markupsafe import escape

from plugin import db
from plugin.clock import utcnow
from plugin.domain.helpdesk import Ticket
from plugin.domain.masking import HIDDEN, mask_banner
from plugin.domain.order_numbers import mentioned_orders
from plugin.domain.wording import N_
from plugin.helpdesks import demo
from plugin.helpdesks.interface import HelpdeskError, TicketNotFound
from plugin.helpdesks.runtime import client_for, helpdesks, shop_client_for
from plugin.helpdesks.tokens import InvalidToken, SidebarSession
from plugin.models import Installation
from plugin.sidebar.recognition import SidebarView, prepare_customer, sidebar_view
from plugin.sidebar.snapshot import (
    HelpdeskSnapshot,
    RequesterLookup,
    fetch_helpdesk_snapshot,
    start_requester_read,
)
from plugin.sidebar.sync import ShopRead, read_shop, store_unstored
from plugin.sidebar.upstream import UpstreamTimeout
from plugin.sidebar.view_budget import view_key
from plugin.web.after_response import later
from plugin.web.auth import current_sidebar_session, launched_installation, sidebar_sessions
from plugin.web.formatting import ago_bucket, days_ago_bucket, tenure_bucket
from plugin.web.i18n import request_locale
from plugin.web.masking import look_up_viewer, use_session_viewer, viewer_mask
from plugin.web.settings import settings

bp = Blueprint("sidebar", __name__, url_prefix="/sidebar")

MAX_ID_LENGTH = 64
MAX_PAGE_TAGS = 100
# The page sends the start of the description (ZAF's ticket.description), kept short in the URL.
MAX_PAGE_DESCRIPTION = 300
RETRY_AFTER_SECONDS = 2
PLATFORM_NAMES = {"zendesk": "Zendesk", "freshdesk": "Freshdesk", "demo": "the demo helpdesk"}


def unauthorized(reason: str) -> tuple[str, int]:
    return render_template("errors/unauthorized.html", reason=reason), 401


@bp.post("")
def launch() -> tuple[str, int]:
    """Verify the helpdesk's signed POST and serve the sidebar page with its own session."""
    try:
        launched, installation = launched_installation(cached=True)
    except InvalidToken as refused:
        return unauthorized(str(refused))
    # The agent's roles decide what is masked for them: asked once here, for the session.
    viewer = look_up_viewer(
        installation,
        launched.user_id,
        deadline=time.monotonic() + helpdesks().policy.budget_seconds,
    )
    session_token = sidebar_sessions().issue(
        SidebarSession(installation_id=installation.id, user_id=launched.user_id, viewer=viewer)
    )
    return sidebar_page(sdk_url(installation)).replace(
        _SESSION_SLOT, str(escape(session_token)), 1
    ), 200


# Where the session token goes in the sidebar's page, rendered without it: the page is the
# same for every launch in a language, but for the token.
_SESSION_SLOT = "regulars-session-token-slot"


def sidebar_page(sdk: str) -> str:
    """The sidebar's page with `_SESSION_SLOT` for its token, rendered once per language, SDK
    and mount point (`RenderedParts`): rendering it was about a sixth of a launch's time."""
    return helpdesks().rendered.render(
        ("sidebar/page.html", request_locale(), sdk, request.script_root),
        lambda: render_template("sidebar/page.html", session_token=_SESSION_SLOT, sdk_url=sdk),
    )


def sdk_url(installation: Installation) -> str:
    """Use Zendesk's own SDK in Zendesk; the copy bundled at set-up time in the demo."""
    if installation.platform == demo.PLATFORM:
        return url_for("static", filename="vendor/zaf_sdk.min.js")
    return settings().zaf_sdk_url


@bp.get("/banner")
def banner() -> ResponseReturnValue:
    """Render the recognition banner for the ticket the page is showing."""
    return shown_banner()


def shown_banner(cards: CardsAfterBanner | None = None) -> ResponseReturnValue:
    """The banner for the ticket a GET names (and `cards` after it), or why not."""
    db.statements_apart()  # a GET reads: no transaction needed around its statements
    try:
        session, installation = current_sidebar_session(cached=True)
    except InvalidToken as refused:
        return problem(str(refused), 401)
    ticket_id = request.args.get("ticket_id", "").strip()
    if not ticket_id or len(ticket_id) > MAX_ID_LENGTH:
        return problem(N_("No ticket to show."), 400)
    # The page's idea of the requester and of the ticket: see fetch_helpdesk_snapshot.
    requester_hint = request.args.get("requester_id", "").strip()[:MAX_ID_LENGTH] or None
    deadline = helpdesks().views.start(view_key(installation.id, session.user_id, ticket_id))
    use_session_viewer(installation, session, deadline=deadline)
    return banner_response(
        installation,
        ticket_id=ticket_id,
        requester_hint=requester_hint,
        deadline=deadline,
        page_ticket=page_ticket(request.args, ticket_id=ticket_id, requester_hint=requester_hint),
        cards=cards,
    )


def posted_fields() -> Mapping[str, object]:
    """A POST's fields, from a form or a JSON object (anything else: none)."""
    if not request.is_json:
        return request.form
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def page_ticket(
    args: Mapping[str, str], *, ticket_id: str, requester_hint: str | None
) -> Ticket | None:
    """The ticket's own fields as the agent's page sent them (the helpdesk's app framework).

    Only for showing the sidebar without a call to the helpdesk: a snapshot built on them
    says so (`ticket_from_page`), and whatever records an action reads the ticket itself.
    None when the page sent no subject (an older page) or no requester.
    """
    if requester_hint is None or "subject" not in args:
        return None
    now = utcnow()
    return Ticket(
        id=ticket_id,
        subject=args.get("subject", "")[:500],
        status=args.get("status", "").strip()[:20] or "open",
        channel=args.get("channel", "").strip()[:32] or "unknown",
        priority=args.get("priority", "").strip()[:20] or None,
        ticket_type=args.get("type", "").strip()[:40] or None,
        tags=tuple(args.get("tags", "").split()[:MAX_PAGE_TAGS]),
        requester_id=requester_hint,
        created_at=now,
        updated_at=now,
        description_orders=mentioned_orders(args.get("description", "")[:MAX_PAGE_DESCRIPTION]),
    )


def banner_response(
    installation: Installation,
    *,
    ticket_id: str,
    requester_hint: str | None,
    deadline: float | None = None,
    page_ticket: Ticket | None = None,
    store: bool = False,
    cards: CardsAfterBanner | None = None,
) -> ResponseReturnValue:
    """Read the ticket from the helpdesk and render its banner, or the problem, by the deadline.

    The one way every helpdesk's sidebar renders the banner; `deadline` (time.monotonic) is
    the sidebar's time budget from now unless the caller has started spending it already.
    A view writes nothing but caches and its seen-ticket count; the banner says when the shop
    or the helpdesk gave something not stored yet (`sync_due`). With `store` (the page's
    POST for it), that is stored first and the view is not counted again. `cards` adds what
    it renders from the same snapshot after the banner (`plugin.sidebar.answer_views`).
    """
    now = utcnow()
    shared = helpdesks()
    if deadline is None:
        deadline = time.monotonic() + shared.policy.budget_seconds
    started = (
        start_requester_read(
            client_for(installation),
            cache=shared.cache,
            installation_id=installation.id,
            requester_hint=requester_hint,
            policy=shared.policy,
        )
        if requester_hint and shared.reads.enabled
        else None
    )
    if requester_hint and started is not None and not started.from_cache:
        # A cold view: the helpdesk is answering; meanwhile read the customer it will be.
        prepare_customer(db.session(), installation, requester_hint, reads=shared.reads, now=now)
    snapshot = read_snapshot(
        installation,
        ticket_id=ticket_id,
        requester_hint=requester_hint,
        deadline=deadline,
        now=now,
        page_ticket=page_ticket,
        started=started,
    )
    if not isinstance(snapshot, HelpdeskSnapshot):
        return snapshot
    if snapshot.stale_reason or snapshot.history_problem:
        current_app.logger.info(
            "serving stale helpdesk data for installation %s: %s",
            installation.id,
            snapshot.stale_reason or snapshot.history_problem,
        )
    shop = shop_answer(installation, snapshot, deadline)
    if store:
        refused = store_unstored(
            db.session(),
            installation,
            snapshot.requester,
            shop=shop,
            synced=shared.shop_synced,
            facts_fetched_at=snapshot.fetched_at,
        )
        if refused:
            current_app.logger.warning(
                "shop data not stored for installation %s: %s", installation.id, refused
            )
    view = sidebar_view(
        db.session,
        installation=installation,
        snapshot=snapshot,
        now=now,
        reads=shared.reads,
        rendered=shared.rendered,
    )
    if not store:
        shared.seen.record(
            db.session,
            installation_id=installation.id,
            ticket=snapshot.ticket,
            customer_id=view.customer_id,
            now=now,
            start=later,
        )
    sync_due = not view.helpdesk_facts_stored or (
        shop is not None and not shop.stored_in(shared.shop_synced)
    )
    # What the viewer's role may not see is taken out before the banner is rendered, and the
    # mask is in the render's key: a masked viewer never gets another's HTML.
    mask = viewer_mask(installation)
    helpdesk_name = PLATFORM_NAMES.get(installation.platform, "the helpdesk")

    def render() -> str:
        return render_template(
            "sidebar/_banner.html",
            banner=mask_banner(view.banner, mask),
            mask=mask,
            hidden_value=HIDDEN,
            helpdesk=view.helpdesk,
            order_sources=view.order_sources,
            rfm_base_size=view.rfm_base_size,
            helpdesk_name=helpdesk_name,
            currency=installation.currency,
            sync_due=sync_due,
            now=now,
            today=now.date(),
        )

    # Everything the template reads, as values; `now` only through the words it gives. The
    # banner as built, not as masked: the masked one is made from it and `mask.key`, and the
    # built one is the same object view after view, its digest found by identity.
    inputs = (
        "sidebar/_banner.html",
        installation.id,
        mask.key,
        view.banner,
        view.helpdesk.stale_reason,
        view.order_sources,
        view.rfm_base_size,
        helpdesk_name,
        installation.currency,
        sync_due,
        banner_clock(view, now),
    )
    html = shared.rendered.render(inputs, render)
    if cards is not None:
        html += cards(installation, snapshot, now)
    return html, 200


def banner_clock(view: SidebarView, now: datetime) -> tuple[object, ...]:
    """What each time-dependent expression of `_banner.html` says at `now`, in its order.

    The rendered banner's cache key holds these instead of `now`, so a banner is rendered again
    exactly when one of them changes. Each is the bucket its words are made from
    (plugin/web/formatting.py), not the words: working them out costs no Babel call on a
    cache hit. A template change that shows another time must add it here:
    tests/sidebar/test_rendered.py renders at many moments and fails when two moments with
    the same key give different HTML.
    """
    banner, today = view.banner, now.date()
    orders, profile, contact = banner.orders, banner.profile, banner.contact
    stage = profile.lifecycle if profile else None
    return (
        # Every word and figure is in the request's language (docs/i18n.md): en_US and en_GB
        # can say the same times and still write money differently.
        request_locale(),
        tenure_bucket(banner.customer_since, today) if banner.is_customer else None,
        ago_bucket(banner.data_as_of, now),
        ago_bucket(orders.last_order_at, now) if orders else None,
        (stage.since == today, days_ago_bucket(stage.since, today)) if stage else None,
        ago_bucket(contact.last_contact_at, now) if contact and contact.last_contact_at else None,
        ago_bucket(view.helpdesk.fetched_at, now),
    )


def shop_answer(
    installation: Installation, snapshot: HelpdeskSnapshot, deadline: float
) -> ShopRead | None:
    """The installation's shop's answer about the requester, through the upstream cache; None
    without a shop, or when it fails with nothing cached (the banner shows what is stored)."""
    shared = helpdesks()
    try:
        shop = read_shop(
            installation.id,
            snapshot.requester,
            client=shop_client_for(installation),
            cache=shared.cache,
            policy=shared.policy,
            deadline=deadline,
        )
    except HelpdeskError as error:
        current_app.logger.info(
            "shop data not read for installation %s: %s", installation.id, error
        )
        return None
    if shop is not None and shop.stale_reason:
        current_app.logger.info(
            "shop data not refreshed for installation %s: %s", installation.id, shop.stale_reason
        )
    return shop


def read_snapshot(
    installation: Installation,
    *,
    ticket_id: str,
    requester_hint: str | None,
    deadline: float,
    now: datetime,
    page_ticket: Ticket | None = None,
    started: RequesterLookup | None = None,
) -> HelpdeskSnapshot | ResponseReturnValue:
    """Read the ticket and its requester through the app's upstream cache, or say the problem.

    Every sidebar card reads the ticket this way, so a card loaded after the banner finds the
    helpdesk's answers already cached. `page_ticket` (the page's own copy of the ticket's
    fields) may stand in for a ticket call when showing; never pass it when recording.
    `started`: the requester's read as `start_requester_read` began it, joined here.
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
            page_ticket=page_ticket,
            started=started,
        )
    except TicketNotFound:
        return problem(N_("Ticket %(id)s was not found in the helpdesk.", id=ticket_id), 404)
    except UpstreamTimeout:
        response = make_response(
            problem(N_("The helpdesk is slow to answer. Still trying…"), 503, retrying=True)
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    except HelpdeskError as error:
        current_app.logger.warning(
            "helpdesk unavailable for installation %s: %s", installation.id, error
        )
        return problem(N_("The helpdesk is not answering right now. Try again in a moment."), 503)


# Renders what comes after the banner in the same answer: (installation, the banner's snapshot,
# its moment) -> HTML.
CardsAfterBanner = Callable[[Installation, HelpdeskSnapshot, datetime], str]


def ticket_args(args: Mapping[str, object]) -> tuple[str | None, str | None]:
    """The ticket id and the requester hint a card's request sent; None for a missing or long id."""
    ticket_id = args.get("ticket_id")
    ticket = str(ticket_id).strip() if isinstance(ticket_id, str | int) else ""
    if not ticket or len(ticket) > MAX_ID_LENGTH:
        return None, None
    hint = args.get("requester_id")
    requester = str(hint).strip()[:MAX_ID_LENGTH] if isinstance(hint, str | int) else ""
    return ticket, requester or None


@dataclass(frozen=True)
class CardRequest:
    """A card's request that passed: whose session, which installation, the ticket's snapshot,
    and what the request sent (its query, or a POST's fields)."""

    session: SidebarSession
    installation: Installation
    snapshot: HelpdeskSnapshot
    now: datetime
    fields: Mapping[str, object]


def card_to_show(
    args: Mapping[str, str], *, use_page_ticket: bool = False
) -> CardRequest | ResponseReturnValue:
    """Authenticate a card's GET and read its ticket, or answer why not (401, 400, 404, 503).

    `use_page_ticket`: the card may show the page's copy of the ticket's fields instead of a
    ticket call (showing only; acting always reads the helpdesk). The installation is the
    read cache's copy, as the banner's: a card only shows.
    """
    try:
        session, installation = current_sidebar_session(cached=True)
    except InvalidToken as refused:
        return problem(str(refused), 401)
    ticket_id, requester_hint = ticket_args(args)
    if ticket_id is None:
        return problem(N_("No ticket to show."), 400)
    now = utcnow()
    shown = (
        page_ticket(args, ticket_id=ticket_id, requester_hint=requester_hint)
        if use_page_ticket
        else None
    )
    # The banner's and the other cards' view: they wait for the helpdesk until one deadline.
    deadline = helpdesks().views.deadline(view_key(installation.id, session.user_id, ticket_id))
    use_session_viewer(installation, session, deadline=deadline)
    snapshot = card_snapshot(
        installation, ticket_id, requester_hint, now, page_ticket=shown, deadline=deadline
    )
    if not isinstance(snapshot, HelpdeskSnapshot):
        return snapshot
    return CardRequest(session, installation, snapshot, now, args)


def card_to_act_on(
    fields: Mapping[str, object] | None, *, as_json: bool
) -> CardRequest | ResponseReturnValue:
    """Authenticate a card's POST and read its ticket from the helpdesk, or answer why not."""
    try:
        session, installation = current_sidebar_session()
    except InvalidToken as refused:
        return json_or_html(as_json, problem(str(refused), 401), {"error": str(refused)})
    use_session_viewer(
        installation, session, deadline=time.monotonic() + helpdesks().policy.budget_seconds
    )
    if fields is None:
        return json_or_html(
            as_json,
            problem(N_("Send the action as a form or a JSON object."), 400),
            {"error": "bad"},
        )
    ticket_id, requester_hint = ticket_args(fields)
    if ticket_id is None:
        return json_or_html(
            as_json, problem(N_("No ticket to act on."), 400), {"error": "no ticket_id"}
        )
    now = utcnow()
    snapshot = card_snapshot(installation, ticket_id, requester_hint, now)
    if not isinstance(snapshot, HelpdeskSnapshot):
        return snapshot
    return CardRequest(session, installation, snapshot, now, fields)


def card_snapshot(
    installation: Installation,
    ticket_id: str,
    requester_hint: str | None,
    now: datetime,
    page_ticket: Ticket | None = None,
    deadline: float | None = None,
) -> HelpdeskSnapshot | ResponseReturnValue:
    """The snapshot a card after the banner reads, by `deadline` (the view's, when shown) or
    within the sidebar's time budget from now (acting: a click starts its own wait)."""
    if deadline is None:
        deadline = time.monotonic() + helpdesks().policy.budget_seconds
    return read_snapshot(
        installation,
        ticket_id=ticket_id,
        requester_hint=requester_hint,
        deadline=deadline,
        now=now,
        page_ticket=page_ticket,
    )


def json_or_html(
    as_json: bool, html: tuple[str, int], payload: Mapping[str, object]
) -> ResponseReturnValue:
    """A card endpoint's answer: the JSON payload to a JSON request, else the HTML partial."""
    return (jsonify(payload), html[1]) if as_json else html


def problem(message: str, status: int, *, retrying: bool = False) -> tuple[str, int]:
    return render_template("sidebar/_problem.html", message=message, retrying=retrying), status
