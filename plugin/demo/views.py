"""The demo helpdesk: an agent desktop that runs the real apps the way the helpdesks do.

Its Zendesk-style view frames the sidebar exactly as Zendesk does (a signed POST, the ZAF
host protocol). Its Freshdesk-style view loads the packaged Freshdesk app's own page with a
stand-in for Freshworks' client, and plays Freshworks' request proxy: it fills the app's
request template with the installation parameters, secret included, out of the browser's sight.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    make_response,
    render_template,
    request,
    url_for,
)
from flask.cli import AppGroup

from plugin import db
from plugin.clock import utcnow
from plugin.demo import signing
from plugin.demo.demo_shop import given_in_demo_shop
from plugin.demo.seed import ISSUER, demo_installation, seed_demo
from plugin.helpdesks.demo import DemoHelpdesk
from plugin.helpdesks.freshdesk_installations import SECRET_PREFIX, adopt_secret
from plugin.models import DemoTicket, DemoUser, Installation
from plugin.packaging.freshdesk_builder import package_files
from plugin.web.formatting import ago

bp = Blueprint("demo", __name__, url_prefix="/demo")

SIGNING_KEY = "regulars.demo_signing_key"
UNSOLVED_FIRST = sa.case((DemoTicket.status.in_(["new", "open", "pending"]), 0), else_=1)
HELPDESKS = ("zendesk", "freshdesk")
# Where Freshworks' client script goes in a packaged page, and the demo's stand-in for it.
APP_CLIENT_PLACEHOLDER = b"{{{appclient}}}"
FRESHWORKS_STAND_IN = "js/demo-freshworks.js"
# The demo's Freshdesk-style installation secret is derived from the service's secret key, so
# the demo's proxy can fill it in without the service ever storing it.
DEMO_SECRET_PURPOSE = b"regulars demo: the Freshdesk-style app's installation secret"
_TEMPLATE_VARIABLE = re.compile(r"<%=\s*(iparam|context)\.(\w+)\s*%>")
_ANY_PLACEHOLDER = re.compile(r"<%=.*?%>", re.DOTALL)


@dataclass(frozen=True)
class TicketRow:
    id: str
    subject: str
    requester_name: str
    channel: str
    status: str
    priority: str
    updated_at: datetime
    updated_label: str


def _signing_key() -> RSAPrivateKey:
    """Return the demo's private key, read from the instance folder once per app."""
    key: RSAPrivateKey | None = current_app.extensions.get(SIGNING_KEY)
    if key is None:
        key = signing.load_or_create_private_key(Path(current_app.instance_path))
        current_app.extensions[SIGNING_KEY] = key
    return key


def _installation() -> Installation | None:
    return demo_installation(db.session())


def _first_user_with_role(installation: Installation, role: str) -> DemoUser | None:
    return (
        db.session()
        .scalars(
            sa.select(DemoUser)
            .where(DemoUser.installation_id == installation.id, DemoUser.role == role)
            .order_by(DemoUser.external_id)
        )
        .first()
    )


def _agent(installation: Installation) -> DemoUser:
    """The demo signs in as its first agent."""
    agent = _first_user_with_role(installation, "agent")
    if agent is None:
        raise LookupError("the demo has no agents; run `flask demo seed`")
    return agent


def _launch_token(installation: Installation, user: DemoUser) -> str:
    """Sign a launch token for `user`, as Zendesk signs the POST that opens an app location."""
    assert installation.token_audience is not None
    return signing.sign_launch_token(
        _signing_key(),
        audience=installation.token_audience,
        issuer=ISSUER,
        user_id=user.external_id,
        now=utcnow(),
    )


@bp.get("")
def desk() -> tuple[str, int]:
    """Show the ticket inbox of the demo helpdesk, with the Zendesk-style app."""
    return _desk_page("zendesk")


@bp.get("/freshdesk")
def freshdesk_desk() -> tuple[str, int]:
    """Show the same inbox with the Freshdesk-style app: the packaged Freshdesk app's page."""
    return _desk_page("freshdesk")


def _desk_page(helpdesk: str) -> tuple[str, int]:
    installation = _installation()
    if installation is None:
        return render_template("demo/not_seeded.html"), 503
    now = utcnow()
    rows = db.session().execute(
        sa.select(DemoTicket, DemoUser.name)
        .join(
            DemoUser,
            sa.and_(
                DemoUser.installation_id == DemoTicket.installation_id,
                DemoUser.external_id == DemoTicket.requester_id,
            ),
        )
        .where(DemoTicket.installation_id == installation.id)
        .order_by(UNSOLVED_FIRST, DemoTicket.updated_at.desc())
    )
    tickets = [
        TicketRow(
            id=ticket.external_id,
            subject=ticket.subject,
            requester_name=requester_name,
            channel=ticket.channel,
            status=ticket.status,
            priority=ticket.priority,
            updated_at=ticket.updated_at,
            updated_label=ago(ticket.updated_at, now),
        )
        for ticket, requester_name in rows
    ]
    return render_template(
        "demo/desk.html",
        tickets=tickets,
        agent=_agent(installation),
        account_name=installation.account,
        helpdesk=helpdesk,
    ), 200


@bp.get("/shop")
def shop() -> tuple[str, int]:
    """The demo's Shopify store: what gestures gave in it (codes, gift cards by their last 4
    characters, refunds, replacement orders), newest first.
    """
    installation = _installation()
    if installation is None:
        return render_template("demo/not_seeded.html"), 503
    given = given_in_demo_shop(db.session(), installation)
    # Stocking the store on first view is the demo's own bookkeeping: keep it.
    db.session().commit()
    return render_template("demo/shop.html", given=given, shop_name=installation.display_name), 200


@bp.post("/api/tickets/<ticket_id>/open")
def open_ticket(ticket_id: str) -> Response:
    """Sign a launch token for the sidebar and describe the ticket, as Zendesk's host knows it."""
    installation, ticket, requester = _ticket_and_requester(ticket_id)
    agent = _agent(installation)
    token = _launch_token(installation, agent)
    zaf_ticket = _zaf_ticket(ticket, requester)
    return jsonify(
        token=token,
        sidebar_path=url_for("sidebar.launch"),
        context={
            "product": "support",
            "account": {"subdomain": installation.account},
            "location": "ticket_sidebar",
            "ticketId": int(ticket.external_id),
        },
        metadata={
            "appId": 0,
            "installationId": int(installation.app_installation_id or 0),
            "name": "Regulars",
            "version": "0.1.0",
            "settings": {"title": "Regulars"},
        },
        data={
            "ticket": zaf_ticket,
            "ticket.id": zaf_ticket["id"],
            "ticket.subject": ticket.subject,
            "ticket.requester": zaf_ticket["requester"],
            "currentUser": {
                "id": int(agent.external_id),
                "name": agent.name,
                "email": agent.email,
                "role": agent.role,
                # Zendesk says the agent's profile language; the demo says the browser's.
                "locale": request.accept_languages.best or "en-US",
            },
        },
        ticket=_ticket_view(ticket, requester),
    )


@bp.post("/api/tickets/<ticket_id>/notes")
def ticket_notes(ticket_id: str) -> tuple[str, int]:
    """The ticket's internal notes, as the action log's outbox delivered them, and the fields
    those deliveries may have changed (priority, group, tags), for the desk to show (HTML).
    """
    installation, ticket, _requester = _ticket_and_requester(ticket_id)
    helpdesk = DemoHelpdesk(db.session(), installation_id=installation.id)
    notes = helpdesk.notes(ticket_id=ticket_id)
    return render_template("demo/_notes.html", notes=notes, ticket=ticket, now=utcnow()), 200


@bp.post("/api/freshdesk/tickets/<ticket_id>/open")
def open_freshdesk_ticket(ticket_id: str) -> Response:
    """Describe the ticket as Freshworks' data methods would, for the packaged app's page."""
    installation, ticket, requester = _ticket_and_requester(ticket_id)
    agent = _agent(installation)
    _demo_secret(installation)  # so the proxy's requests authenticate
    return jsonify(
        app_url=url_for("demo.freshdesk_app", path="index.html"),
        invoke_url=url_for("demo.invoke_template"),
        data={
            "ticket": {
                "id": int(ticket.external_id),
                "display_id": int(ticket.external_id),
                "subject": ticket.subject,
                "requester_id": int(requester.external_id),
                "tags": ticket.tags,
            },
            "contact": {
                "id": int(requester.external_id),
                "name": requester.name,
                "email": requester.email,
                "phone": requester.phone,
            },
            "loggedInUser": {
                "id": int(agent.external_id),
                "type": "support_agent",
                "contact": {"name": agent.name, "email": agent.email},
            },
            "domainName": ISSUER,
        },
        ticket=_ticket_view(ticket, requester),
    )


@bp.get("/freshdesk/app/<path:path>")
def freshdesk_app(path: str) -> Response:
    """Serve the packaged Freshdesk app's page and assets, as built, with the stand-in client.

    Freshworks serves an app's files and puts its client script where the page says
    `{{{appclient}}}`; the demo puts its stand-in there.
    """
    files, _problems = package_files()
    data = files.get(f"app/{path}")
    if data is None:
        abort(404)
    if path.endswith(".html"):
        stand_in = url_for("static", filename=FRESHWORKS_STAND_IN).encode()
        data = data.replace(APP_CLIENT_PLACEHOLDER, stand_in)
    mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return Response(data, mimetype=mimetype)


@bp.post("/api/freshworks/invoke")
def invoke_template() -> Response | tuple[Response, int]:
    """Play Freshworks' request proxy for `client.request.invokeTemplate` in the demo.

    Only templates the package's manifest declares run. The template is filled with the
    installation parameters (the service's host, the demo's secret) and the call's context,
    then sent to the service and its answer returned as Freshworks returns it: status, headers
    and the body as a string. Freshworks calls the service over HTTPS; the demo is the service,
    so it hands the request to its own app in-process, which no server setup can deadlock.
    """
    installation = _installation()
    if installation is None:
        return jsonify(error="The demo has no data yet: run `flask demo seed`."), 503
    call = request.get_json(silent=True)
    if not isinstance(call, dict) or not isinstance(call.get("template"), str):
        return jsonify(error="Send {template, context, body}."), 400
    context = call.get("context") or {}
    body = call.get("body") or ""
    if not isinstance(context, dict) or not isinstance(body, str):
        return jsonify(error="context is an object and body a string."), 400
    files, _problems = package_files()
    declared = json.loads(files["manifest.json"])["product"]["freshdesk"].get("requests", {})
    templates = json.loads(files["config/requests.json"])
    name = call["template"]
    if name not in declared or name not in templates:
        return jsonify(error=f"The app's manifest declares no request template {name!r}."), 400
    iparams = {"service_host": request.host, "installation_secret": _demo_secret(installation)}
    schema = templates[name]["schema"]
    try:
        path = _fill(schema.get("path", "/"), iparams, context)
        headers = {
            key: _fill(value, iparams, context) for key, value in schema.get("headers", {}).items()
        }
        query = {
            key: _fill(str(value), iparams, context)
            for key, value in schema.get("query", {}).items()
        }
    except ValueError as error:
        return jsonify(error=str(error)), 400
    answer = current_app.test_client().open(
        path, method=schema["method"], headers=headers, query_string=query, data=body
    )
    kept = {
        header: answer.headers[header]
        for header in ("Content-Type", "Retry-After")
        if header in answer.headers
    }
    return jsonify(status=answer.status_code, headers=kept, response=answer.get_data(as_text=True))


def _fill(text: str, iparams: Mapping[str, str], context: Mapping[str, object]) -> str:
    """Substitute `<%= iparam.x %>` and `<%= context.x %>` as Freshworks' templates do."""

    def value(match: re.Match[str]) -> str:
        kind, name = match.groups()
        source: Mapping[str, object] = iparams if kind == "iparam" else context
        if name not in source:
            raise ValueError(f"the template uses {kind}.{name}, which the call does not have")
        return str(source[name])

    filled = _TEMPLATE_VARIABLE.sub(value, text)
    if _ANY_PLACEHOLDER.search(filled):
        raise ValueError("the demo's proxy fills only iparam and context variables")
    return filled


def _demo_secret(installation: Installation) -> str:
    """Return the demo's Freshdesk-style secret, making sure the installation accepts it."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(key, DEMO_SECRET_PURPOSE, hashlib.sha256).digest()
    secret = SECRET_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    if adopt_secret(installation, secret):
        db.session().commit()
    return secret


def _ticket_and_requester(ticket_id: str) -> tuple[Installation, DemoTicket, DemoUser]:
    """Find a demo ticket and its requester; answer with a JSON error saying why when not."""
    installation = _installation()
    if installation is None:
        abort(make_response(jsonify(error="The demo has no data yet: run `flask demo seed`."), 503))
    session = db.session()
    ticket = session.scalars(
        sa.select(DemoTicket).where(
            DemoTicket.installation_id == installation.id, DemoTicket.external_id == ticket_id
        )
    ).first()
    if ticket is None:
        abort(make_response(jsonify(error=f"Ticket {ticket_id} does not exist in the demo."), 404))
    requester = session.scalars(
        sa.select(DemoUser).where(
            DemoUser.installation_id == installation.id,
            DemoUser.external_id == ticket.requester_id,
        )
    ).one()
    return installation, ticket, requester


def _ticket_view(ticket: DemoTicket, requester: DemoUser) -> dict[str, Any]:
    """Describe a ticket for the desk's own ticket pane."""
    return {
        "id": ticket.external_id,
        "subject": ticket.subject,
        "description": ticket.description,
        "channel": ticket.channel,
        "status": ticket.status,
        "priority": ticket.priority,
        "ticket_type": ticket.ticket_type,
        "tags": ticket.tags,
        "group": ticket.group_name,
        "created_label": ago(ticket.created_at, utcnow()),
        "requester": {
            "name": requester.name,
            "email": requester.email,
            "phone": requester.phone,
        },
    }


@bp.post("/api/console/open")
def open_console() -> Response | tuple[Response, int]:
    """Sign a launch token for the console, as Zendesk's nav bar does, for the demo's admin or
    (`{"as": "supervisor"}`) its supervisor.

    The desk itself signs in as an agent, who may not open the console; the nav bar buttons
    open it as the demo's admin or supervisor instead, so the console can be tried out.
    """
    installation = _installation()
    if installation is None:
        return jsonify(error="The demo has no data yet: run `flask demo seed`."), 503
    body = request.get_json(silent=True)
    wanted = body.get("as") if isinstance(body, dict) else None
    role = "supervisor" if wanted == "supervisor" else "admin"
    admin = _first_user_with_role(installation, role)
    if admin is None:
        return jsonify(error=f"The demo has no {role}; run `flask demo seed` again."), 503
    return jsonify(
        token=_launch_token(installation, admin),
        console_path=url_for("console.launch"),
        user={
            "id": int(admin.external_id),
            "name": admin.name,
            "email": admin.email,
            "role": admin.role,
        },
    )


def _zaf_ticket(ticket: DemoTicket, requester: DemoUser) -> dict[str, Any]:
    """Describe a ticket with the property names ZAF's `ticket` object uses."""
    return {
        "id": int(ticket.external_id),
        "subject": ticket.subject,
        "description": ticket.description,
        "status": ticket.status,
        "priority": ticket.priority,
        "type": ticket.ticket_type,
        "tags": ticket.tags,
        "via": {"channel": ticket.channel},
        "createdAt": ticket.created_at.isoformat() + "Z",
        "updatedAt": ticket.updated_at.isoformat() + "Z",
        "requester": {
            "id": int(requester.external_id),
            "name": requester.name,
            "email": requester.email,
        },
    }


@click.group("demo", cls=AppGroup)
def demo_cli() -> None:
    """Manage the demo helpdesk."""


@demo_cli.command("seed")
def seed_command() -> None:
    """Create the demo installation and (re)load its sample customers and tickets."""
    session = db.database().sessions()
    try:
        installation = seed_demo(
            session, instance_path=Path(current_app.instance_path), now=utcnow()
        )
        tickets = session.scalar(
            sa.select(sa.func.count())
            .select_from(DemoTicket)
            .where(DemoTicket.installation_id == installation.id)
        )
    finally:
        session.close()
    click.echo(f"Seeded the demo installation with {tickets} tickets.")
