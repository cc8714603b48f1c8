"""The demo helpdesk page: an agent desktop that frames the sidebar exactly as Zendesk does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from flask import Blueprint, Response, current_app, jsonify, render_template, url_for
from flask.cli import AppGroup

from plugin import db
from plugin.clock import utcnow
from plugin.demo import signing
from plugin.demo.seed import ISSUER, demo_installation, seed_demo
from plugin.models import DemoTicket, DemoUser, Installation
from plugin.web.formatting import ago

bp = Blueprint("demo", __name__, url_prefix="/demo")

SIGNING_KEY = "regulars.demo_signing_key"
UNSOLVED_FIRST = sa.case((DemoTicket.status.in_(["new", "open", "pending"]), 0), else_=1)


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
    """Show the ticket inbox of the demo helpdesk."""
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
    ), 200


@bp.post("/api/tickets/<ticket_id>/open")
def open_ticket(ticket_id: str) -> Response | tuple[Response, int]:
    """Sign a launch token for the sidebar and describe the ticket, as Zendesk's host knows it."""
    installation = _installation()
    if installation is None:
        return jsonify(error="The demo has no data yet: run `flask demo seed`."), 503
    session = db.session()
    ticket = session.scalars(
        sa.select(DemoTicket).where(
            DemoTicket.installation_id == installation.id, DemoTicket.external_id == ticket_id
        )
    ).first()
    if ticket is None:
        return jsonify(error=f"Ticket {ticket_id} does not exist in the demo."), 404
    requester = session.scalars(
        sa.select(DemoUser).where(
            DemoUser.installation_id == installation.id,
            DemoUser.external_id == ticket.requester_id,
        )
    ).one()
    agent = _agent(installation)
    now = utcnow()
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
            },
        },
        ticket={
            "id": ticket.external_id,
            "subject": ticket.subject,
            "description": ticket.description,
            "channel": ticket.channel,
            "status": ticket.status,
            "priority": ticket.priority,
            "ticket_type": ticket.ticket_type,
            "tags": ticket.tags,
            "created_label": ago(ticket.created_at, now),
            "requester": {
                "name": requester.name,
                "email": requester.email,
                "phone": requester.phone,
            },
        },
    )


@bp.post("/api/console/open")
def open_console() -> Response | tuple[Response, int]:
    """Sign a launch token for the admin console, as Zendesk's nav bar does, for the demo's admin.

    The desk itself signs in as an agent, who may not open the console; the nav bar button
    opens it as the demo's admin instead, so the console can be tried out.
    """
    installation = _installation()
    if installation is None:
        return jsonify(error="The demo has no data yet: run `flask demo seed`."), 503
    admin = _first_user_with_role(installation, "admin")
    if admin is None:
        return jsonify(error="The demo has no admin; run `flask demo seed` again."), 503
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
