"""The interface every helpdesk integration implements, and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from plugin.domain.helpdesk import Person, Ticket


class HelpdeskError(Exception):
    """The helpdesk could not answer; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class TicketNotFound(HelpdeskError):
    def __init__(self, ticket_id: str) -> None:
        super().__init__(f"ticket {ticket_id} was not found", retryable=False)
        self.ticket_id = ticket_id


@dataclass(frozen=True)
class TicketWithRequester:
    ticket: Ticket
    requester: Person


class Helpdesk(Protocol):
    """Read tickets and people from one helpdesk account."""

    # True for helpdesks reached over the network: their answers are cached and fetched in
    # parallel. The demo helpdesk reads the service's own database and is not.
    remote: bool

    def ticket(self, *, ticket_id: str) -> TicketWithRequester:
        """Return the ticket and its requester, as the helpdesk has them now."""
        ...

    def requester_tickets(self, *, requester_id: str) -> list[Ticket]:
        """Return the tickets this person has requested, newest first."""
        ...

    def user(self, *, user_id: str) -> Person:
        """Return a user (requester or agent) with their role, as the helpdesk has them now."""
        ...
