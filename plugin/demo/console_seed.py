"""The demo's console set-up: a supervisor, and the tickets the sidebar has "seen".

The demo helpdesk's supervisor (Priya Nair) is an agent with the custom role "supervisor", as
on Zendesk Enterprise, and the installation names that role as supervisors, so the console
can be opened as a supervisor. A replay needs tickets the sidebar saw: the demo marks its
tickets of the last 30 days as seen once, as if agents had opened them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.goodwill.replay import REPLAY_DAYS
from plugin.models import Customer, DemoTicket, DemoUser, Installation, SeenTicket

SUPERVISOR_ROLE = "supervisor"
SUPERVISOR = {
    "external_id": "80005",
    "name": "Priya Nair",
    "email": "priya.nair@example.com",
    "phone": None,
    "role": SUPERVISOR_ROLE,
}


def seed_console(session: Session, installation: Installation, *, now: datetime) -> None:
    """Add the supervisor and the seen tickets (the caller wiped both, or they are new)."""
    session.execute(sa.insert(DemoUser), [{"installation_id": installation.id, **SUPERVISOR}])
    installation.supervisor_roles = [SUPERVISOR_ROLE]
    customers = dict(
        session.execute(
            sa.select(Customer.helpdesk_user_id, Customer.id).where(
                Customer.installation_id == installation.id,
                Customer.helpdesk_user_id.is_not(None),
            )
        ).all()
    )
    tickets = session.scalars(
        sa.select(DemoTicket).where(
            DemoTicket.installation_id == installation.id,
            DemoTicket.updated_at > now - timedelta(days=REPLAY_DAYS),
            DemoTicket.updated_at <= now,
        )
    ).all()
    rows = [
        {
            "installation_id": installation.id,
            "ticket_id": ticket.external_id,
            "requester_id": ticket.requester_id,
            "customer_id": customers.get(ticket.requester_id),
            "subject": ticket.subject[:500],
            "channel": ticket.channel,
            "ticket_type": ticket.ticket_type,
            "priority": ticket.priority,
            "tags": list(ticket.tags),
            "first_seen_at": ticket.updated_at,
            "last_seen_at": ticket.updated_at,
            "view_count": 1,
        }
        for ticket in tickets
    ]
    if rows:
        session.execute(sa.insert(SeenTicket), rows)
    session.commit()
