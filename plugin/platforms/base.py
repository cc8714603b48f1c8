"""The interface every helpdesk integration implements, and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from plugin.domain.helpdesk import Person, Ticket

# How a call that never got an answer failed.
Transport = Literal[
    "timeout", "unresolved", "refused", "tls", "connection", "broken", "invalid_url"
]


class HelpdeskError(Exception):
    """A remote service (helpdesk, shop) could not answer.

    `retryable` says whether trying again may help; `status` is the HTTP status of an error
    answer; `transport` says how a call with no answer failed; `retry_after` is the wait a
    429 asked for.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        transport: Transport | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.transport = transport
        self.retry_after = retry_after


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


class TicketWriter(Protocol):
    """Write the action log's notes to tickets: the outbox's one view of every helpdesk.

    `add_note` adds an internal note (visible to agents only) and tags in as few calls as the
    helpdesk allows; the note's text ends with `marker`, a string unique to one action, and
    `has_note` says whether a note carrying it is on the ticket already, so that after a call
    whose outcome is unknown (a timeout, a worker killed mid-call) the note is not written
    twice. Both raise HelpdeskError (TicketNotFound for a ticket that is gone); a call that was
    not sent because the account's call budget is spent raises it with `retry_after` set.
    """

    def add_note(self, *, ticket_id: str, body: str, tags: list[str], marker: str) -> None:
        """Add `body` (plain text that already ends with `marker`) as a note, and the tags."""
        ...

    def has_note(self, *, ticket_id: str, marker: str) -> bool:
        """Say whether a note on the ticket carries `marker`."""
        ...
