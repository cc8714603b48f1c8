"""What the sidebar knows of a helpdesk: tickets and people, whichever helpdesk they come from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

OPEN_STATUSES = frozenset({"new", "open", "pending", "hold"})


@dataclass(frozen=True)
class Person:
    """A helpdesk user: the requester of a ticket or an agent."""

    id: str
    name: str
    email: str | None = None
    phone: str | None = None
    # "end-user", "agent" or "admin" where the helpdesk says; decides who may open the console.
    role: str | None = None
    # The helpdesk's finer roles where it has them (a Zendesk custom role id, Freshdesk role
    # ids), which an admin may name as supervisors of the console.
    role_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    # The helpdesk's custom fields on the person and on their organization, keyed by field key.
    fields: Mapping[str, object] = field(default_factory=dict)
    organization_id: str | None = None
    organization_fields: Mapping[str, object] = field(default_factory=dict)
    # The language the helpdesk shows this user ("de", "es-419"), where it says: the console's.
    locale: str | None = None


@dataclass(frozen=True)
class Ticket:
    id: str
    subject: str
    status: str
    channel: str
    priority: str | None
    ticket_type: str | None
    tags: tuple[str, ...]
    requester_id: str
    created_at: datetime
    updated_at: datetime
    # The order numbers the ticket's description mentions (`mentioned_orders`): what the
    # sidebar needs of the customer's own words, kept instead of the words themselves.
    description_orders: tuple[str, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def order_text(self) -> str:
        """Where the ticket may name an order: its subject, then its description's numbers."""
        return " ".join((self.subject, *self.description_orders))


@dataclass(frozen=True)
class ContactHistory:
    """A requester's tickets, summarized for the banner."""

    ticket_count: int
    open_ticket_count: int
    last_contact_at: datetime | None

    @classmethod
    def from_tickets(cls, tickets: list[Ticket], *, excluding: str | None = None) -> ContactHistory:
        """Summarize tickets; the one being worked on does not count as an earlier contact."""
        others = [t for t in tickets if t.id != excluding]
        return cls(
            ticket_count=len(tickets),
            open_ticket_count=sum(1 for t in others if t.is_open),
            last_contact_at=max((t.created_at for t in others), default=None),
        )
