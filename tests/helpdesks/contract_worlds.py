"""The small account the helpdesk contract runs against, and the demo helpdesk's world of it:
its rows in the app's database. (The remote helpdesks' worlds are in contract_remote_worlds.)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.helpdesk import Person, Ticket
from plugin.helpdesks import demo
from plugin.helpdesks.demo import DemoHelpdesk
from plugin.helpdesks.interface import Helpdesk, TicketWriter
from plugin.models import DemoTicket, DemoUser, Installation

# --- The account: one requester with an open and an earlier ticket, agents, groups ----------

REQUESTER = Person(
    id="20978392",
    name="Ada Lovelace",
    email="ada@example.com",
    phone="+15551230007",
    role="end-user",
)
AGENT = Person(id="235323", name="Grace Hopper", email="grace@example.com", role="agent")
# An agent with a finer role, which the console may be told to treat as a supervisor.
SUPERVISOR = Person(id="235324", name="Katherine Johnson", email="kj@example.com", role="agent")
OTHER_CUSTOMER = Person(id="20978400", name="Charles Babbage", email="cb@example.com")

EARLIER_TICKET = Ticket(
    id="35001",
    subject="Where is my order?",
    status="closed",
    channel="chat",
    priority="high",
    ticket_type="question",
    tags=("shipping",),
    requester_id=REQUESTER.id,
    created_at=datetime(2026, 10, 2, 9, 30),
    updated_at=datetime(2026, 10, 3, 16, 0),
)
# The open ticket names its order only in the description: a ticket keeps those numbers.
OPEN_DESCRIPTION = "Order #4471 came with the lid cracked in two places."
OPEN_TICKET = Ticket(
    id="35436",
    subject="My order arrived damaged",
    status="open",
    channel="email",
    priority="normal",
    ticket_type="incident",
    tags=("damaged",),
    requester_id=REQUESTER.id,
    created_at=datetime(2026, 11, 20, 10, 0),
    updated_at=datetime(2026, 11, 21, 8, 30),
    description_orders=("4471",),
)
OTHER_CUSTOMERS_TICKET = Ticket(
    id="35437",
    subject="A copy of my invoice",
    status="pending",
    channel="email",
    priority="low",
    ticket_type="question",
    tags=(),
    requester_id=OTHER_CUSTOMER.id,
    created_at=datetime(2026, 11, 21, 9, 0),
    updated_at=datetime(2026, 11, 21, 9, 5),
)
# In the order they were created: the fakes list them so, whatever order a query asks for,
# since the interface promises newest first whatever order the helpdesk's pages come in.


def description_of(ticket: Ticket) -> str:
    """What each world's helpdesk has as the ticket's description."""
    return OPEN_DESCRIPTION if ticket.id == OPEN_TICKET.id else f"About: {ticket.subject}"


TICKETS = (EARLIER_TICKET, OPEN_TICKET, OTHER_CUSTOMERS_TICKET)
# The same group names the demo helpdesk routes to.
GROUPS = demo.GROUPS


@dataclass(frozen=True)
class Note:
    """A comment or note on a ticket as the helpdesk keeps it: its text, and whether only
    agents see it.
    """

    text: str
    private: bool


class ContractHelpdesk(Helpdesk, TicketWriter, Protocol):
    """What every implementation is: a helpdesk to read, and the outbox's ticket writer."""


class World(ABC):
    """One implementation over the account, and a look at the account from the helpdesk's side
    (what a read through the interface does not show: notes, a ticket's group).
    """

    name: str
    helpdesk: ContractHelpdesk
    # What the helpdesk calls the supervisor's finer role.
    supervisor_role_name: str

    @abstractmethod
    def notes(self, ticket_id: str) -> list[Note]:
        """The ticket's comments and notes, oldest first."""

    @abstractmethod
    def group_of(self, ticket_id: str) -> str | None:
        """The name of the group the ticket is routed to, or None."""


# --- The demo helpdesk: rows in the app's database --------------------------------------------


class DemoWorld(World):
    """The demo helpdesk of an installation made for the account, in the app's own database."""

    name = "demo"
    # The demo's finer roles are named by their names.
    supervisor_role_name = "supervisor"

    def __init__(self, session: Session) -> None:
        self._session = session
        installation = Installation(
            platform=demo.PLATFORM, account="contract", display_name="Contract desk"
        )
        session.add(installation)
        session.flush()
        self._installation_id = installation.id
        roles = {AGENT.id: "agent", SUPERVISOR.id: self.supervisor_role_name}
        for person in (REQUESTER, AGENT, SUPERVISOR, OTHER_CUSTOMER):
            session.add(
                DemoUser(
                    installation_id=installation.id,
                    external_id=person.id,
                    name=person.name,
                    email=person.email,
                    phone=person.phone,
                    role=roles.get(person.id, "end-user"),
                )
            )
        for ticket in TICKETS:
            assert ticket.priority is not None and ticket.ticket_type is not None
            session.add(
                DemoTicket(
                    installation_id=installation.id,
                    external_id=ticket.id,
                    requester_id=ticket.requester_id,
                    assignee_id=AGENT.id,
                    subject=ticket.subject,
                    description=description_of(ticket),
                    channel=ticket.channel,
                    status=ticket.status,
                    priority=ticket.priority,
                    ticket_type=ticket.ticket_type,
                    tags=list(ticket.tags),
                    group_name=None,
                    created_at=ticket.created_at,
                    updated_at=ticket.updated_at,
                )
            )
        session.flush()
        self._demo = DemoHelpdesk(session, installation_id=installation.id)
        self.helpdesk = self._demo

    def notes(self, ticket_id: str) -> list[Note]:
        # The demo desk shows its notes to agents only.
        return [Note(n.body, private=True) for n in self._demo.notes(ticket_id=ticket_id)]

    def group_of(self, ticket_id: str) -> str | None:
        return self._session.scalar(
            sa.select(DemoTicket.group_name).where(
                DemoTicket.installation_id == self._installation_id,
                DemoTicket.external_id == ticket_id,
            )
        )
