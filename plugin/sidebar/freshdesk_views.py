"""The Freshdesk app's calls: the banner for a ticket, asked through Freshworks' request proxy.

The packaged page calls one request template per ticket view. Freshworks' proxy adds the
installation's secret in a header (the browser never sees it); the body carries the ids the
page knows. The service trusts the secret for who the installation is, and the helpdesk's API,
not the page, for who the requester is and whether the agent is one.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from flask import Blueprint, current_app, make_response, request, url_for
from flask.typing import ResponseReturnValue

from plugin import db
from plugin.clock import utcnow
from plugin.demo.seed import ISSUER as DEMO_DOMAIN
from plugin.domain.helpdesk import Person
from plugin.domain.wording import N_
from plugin.gestures.sidebar_views import render_gesture_list
from plugin.goodwill.views import answer_action
from plugin.helpdesks import demo, freshdesk
from plugin.helpdesks.freshdesk_installations import installation_for_secret
from plugin.helpdesks.interface import HelpdeskError
from plugin.helpdesks.runtime import client_for, helpdesks
from plugin.models import Installation
from plugin.models.goodwill import AGENT_NOT_VERIFIED
from plugin.reviews.views import answer_check
from plugin.sidebar.answer_views import cards_posting_to
from plugin.sidebar.snapshot import HelpdeskSnapshot
from plugin.sidebar.upstream import UpstreamTimeout
from plugin.sidebar.views import RETRY_AFTER_SECONDS, banner_response, problem, read_snapshot
from plugin.web.masking import use_viewer, viewer_of
from plugin.web.settings import settings

bp = Blueprint("freshdesk", __name__, url_prefix="/freshdesk")

SECRET_HEADER = "X-Regulars-Secret"  # noqa: S105 - a header's name
AGENT_ROLES = frozenset({"agent", "admin"})
MAX_DOMAIN_LENGTH = 255
# More fields than the card's forms have is not a form of the card.
MAX_ACTION_FIELDS = 20
_ID = re.compile(r"[0-9]{1,20}")


class BadRequest(ValueError):
    """The page sent a body the service cannot use; the message says what is wrong."""


@dataclass(frozen=True)
class SidebarRequest:
    """What the page knows of the ticket view: only the ticket and agent ids are needed."""

    ticket_id: str
    agent_id: str
    domain: str
    requester_hint: str | None

    @classmethod
    def from_json(cls, body: object) -> SidebarRequest:
        """Read the body the app's getSidebar template sends; BadRequest names what is wrong."""
        if not isinstance(body, dict):
            raise BadRequest("The app sent no ticket to show.")
        ticket_id = _id(body.get("ticket_id"), "ticket")
        agent_id = _id(body.get("agent_id"), "agent")
        domain = body.get("domain")
        if not isinstance(domain, str) or not 0 < len(domain) <= MAX_DOMAIN_LENGTH:
            raise BadRequest("The app did not say which Freshdesk account it runs in.")
        hint = body.get("requester_id")
        return cls(
            ticket_id=ticket_id,
            agent_id=agent_id,
            domain=domain.strip().lower(),
            # The page's idea of the requester only lets the history fetch start early.
            requester_hint=str(hint) if _ID.fullmatch(str(hint)) else None,
        )


def _id(value: object, kind: str) -> str:
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not _ID.fullmatch(text):
        raise BadRequest(f"The app sent no valid {kind} id.")
    return text


def expected_domain(installation: Installation) -> str | None:
    """Return the domain the app's page reports in this installation's helpdesk, if it has one.

    The demo helpdesk's Freshdesk-style view reports the demo's own domain, and only while the
    demo is on.
    """
    if installation.platform == freshdesk.PLATFORM:
        return freshdesk.domain_of(installation.account)
    if installation.platform == demo.PLATFORM and settings().demo_enabled:
        return DEMO_DOMAIN
    return None


@bp.post("/sidebar")
def sidebar() -> ResponseReturnValue:
    """Render the banner, the suggestions card, the recent orders (when there are any) and the
    account review (when the customer's segment calls for one) for the ticket an agent has
    open in Freshdesk.

    All come in one answer: Freshworks allows an app few request-template calls a minute.
    Nothing is written but caches and the seen-ticket count (see `sync`).
    """
    return _sidebar_answer(store=False)


@bp.post("/sync")
def sync() -> ResponseReturnValue:
    """Store what the sidebar read and has not stored yet, and answer the sidebar built again.

    The page asks (one more request-template call) only when the banner says so
    (`data-sync="due"`): the shop or the helpdesk gave something not stored yet.
    """
    return _sidebar_answer(store=True)


def _sidebar_answer(*, store: bool) -> ResponseReturnValue:
    """The banner and the cards for the checked view; with `store`, after storing what the
    banner read and had not stored (`plugin.sidebar.views.banner_response`)."""
    deadline = time.monotonic() + helpdesks().policy.budget_seconds
    checked = _checked_view(deadline)
    if not isinstance(checked, CheckedView):
        return checked
    installation, view = checked.installation, checked.view

    return banner_response(
        installation,
        ticket_id=view.ticket_id,
        requester_hint=view.requester_hint,
        deadline=deadline,
        store=store,
        cards=cards_posting_to("freshdesk.act", "freshdesk.check_review"),
    )


@bp.post("/actions")
def act() -> ResponseReturnValue:
    """Record an apply, dismiss or escalate from the suggestions card; answer with the card.

    The page sends the view's ids (checked as for the banner) and the card's form as `action`.
    """
    card = _card_request("The app sent no action to record.")
    if not isinstance(card, CardRequest):
        return card
    return answer_action(
        card.installation,
        card.snapshot,
        agent_id=card.agent_id,
        fields=card.fields,
        now=utcnow(),
        actions_url=url_for("freshdesk.act"),
    )


@bp.post("/review/check")
def check_review() -> ResponseReturnValue:
    """Check or uncheck an item of the ticket's account review; answer with the review card.

    The page sends the view's ids (checked as for the banner) and the item's form as `action`.
    """
    card = _card_request("The app sent no check to record.")
    if not isinstance(card, CardRequest):
        return card
    return answer_check(
        card.installation,
        card.snapshot,
        agent_id=card.agent_id,
        fields={key: str(value) for key, value in card.fields.items()},
        now=utcnow(),
        check_url=url_for("freshdesk.check_review"),
    )


@bp.post("/gestures")
def gestures() -> ResponseReturnValue:
    """The ticket's gestures in the shop, which the app asks for again while one is on its way
    (as the Zendesk page's `GET /sidebar/gestures`): the view checked and its ticket read
    through the cache, as for every card, so a ticket of another account answers 404."""
    card = _card_request(None)
    if not isinstance(card, CardRequest):
        return card
    return render_gesture_list(
        card.installation,
        ticket_id=card.snapshot.ticket.id,
        requester_id=card.snapshot.requester.id,
        now=utcnow(),
    ), 200


@dataclass(frozen=True)
class CheckedView:
    """A view whose installation, account and agent the service has checked."""

    installation: Installation
    view: SidebarRequest


@dataclass(frozen=True)
class CardRequest:
    """A checked view, the card's form it sent, and the ticket as the helpdesk has it."""

    installation: Installation
    agent_id: str
    fields: dict[str, object]
    snapshot: HelpdeskSnapshot


def _card_request(no_fields: str | None) -> CardRequest | ResponseReturnValue:
    """Check the view of a card's request (as for the banner), read its form's fields (what
    to answer when they are missing; None: a card that sends none) and the ticket."""
    deadline = time.monotonic() + helpdesks().policy.budget_seconds
    checked = _checked_view(deadline)
    if not isinstance(checked, CheckedView):
        return checked
    fields: dict[str, object] = {}
    if no_fields is not None:
        sent = _action_fields(request.get_json(silent=True, force=True))
        if sent is None:
            return problem(no_fields, 400)
        fields = sent
    snapshot = _snapshot(checked.installation, checked.view, deadline)
    if not isinstance(snapshot, HelpdeskSnapshot):
        return snapshot
    return CardRequest(checked.installation, checked.view.agent_id, fields, snapshot)


def _checked_view(deadline: float) -> CheckedView | ResponseReturnValue:
    """The installation (by its secret) and the page's view, checked; or the refusal."""
    installation = installation_for_secret(
        db.session(), request.headers.get(SECRET_HEADER, ""), now=utcnow()
    )
    domain = None if installation is None else expected_domain(installation)
    if installation is None or domain is None:
        return problem(
            N_(
                "Regulars does not recognize this app's installation secret: ask an admin to "
                "check the app's settings in Freshdesk."
            ),
            401,
        )
    try:
        view = SidebarRequest.from_json(request.get_json(silent=True, force=True))
    except BadRequest as bad:
        return problem(str(bad), 400)
    if view.domain != domain:
        current_app.logger.warning(
            "Freshdesk app of installation %s called from another account's page", installation.id
        )
        return problem(
            N_(
                "This app's installation secret belongs to another Freshdesk account: ask an admin "
                "to check the app's settings."
            ),
            403,
        )
    not_an_agent = _refuse_unless_agent(installation, view.agent_id, deadline=deadline)
    if not_an_agent is not None:
        return not_an_agent
    # The page names its agent and Freshworks signs nothing that says who is signed in (see
    # the README's "Who did it" facts): the helpdesk vouches only that they are *an* agent.
    db.session().info[AGENT_NOT_VERIFIED] = True
    return CheckedView(installation, view)


def _snapshot(
    installation: Installation, view: SidebarRequest, deadline: float
) -> HelpdeskSnapshot | ResponseReturnValue:
    return read_snapshot(
        installation,
        ticket_id=view.ticket_id,
        requester_hint=view.requester_hint,
        deadline=deadline,
        now=utcnow(),
    )


def _action_fields(body: object) -> dict[str, object] | None:
    """The card's form fields from the body's `action` object, as texts and whole numbers."""
    action = body.get("action") if isinstance(body, dict) else None
    if not isinstance(action, dict) or len(action) > MAX_ACTION_FIELDS:
        return None
    return {
        str(key): value if isinstance(value, str | int) and not isinstance(value, bool) else ""
        for key, value in action.items()
    }


def _refuse_unless_agent(
    installation: Installation, agent_id: str, *, deadline: float
) -> ResponseReturnValue | None:
    """Check with the helpdesk that the page's agent is one; None when they are.

    An agent's role changes rarely, so the answer is cached as long as ticket histories are.
    """
    helpdesk = client_for(installation)
    shared = helpdesks()

    def load() -> Person:
        return helpdesk.user(user_id=agent_id)

    try:
        if helpdesk.remote:
            agent = (
                shared.cache.lookup(
                    (installation.id, "agent", agent_id),
                    load,
                    fresh_for=shared.policy.history_fresh_seconds,
                )
                .result(deadline)
                .value
            )
        else:
            agent = load()
    except UpstreamTimeout:
        response = make_response(
            problem(N_("The helpdesk is slow to answer. Still trying…"), 503, retrying=True)
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    except HelpdeskError as error:
        if error.status != 404:
            current_app.logger.warning(
                "could not check an agent of installation %s: %s", installation.id, error
            )
            return problem(
                N_("The helpdesk is not answering right now. Try again in a moment."), 503
            )
        agent = Person(id=agent_id, name="Unknown user")
    if agent.role not in AGENT_ROLES:
        return problem(N_("Regulars is for this helpdesk's agents only."), 403)
    # The agent's roles decide what is masked (plugin/masking/): the cards follow the record
    # just read. The page names the agent, so docs/privacy.md says what that is worth here.
    use_viewer(viewer_of(installation, agent, deadline=deadline))
    return None
