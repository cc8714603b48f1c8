"""The interface every helpdesk integration implements, and the errors it raises."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from cachetools import TTLCache

from plugin.domain.helpdesk import Person, Ticket
from plugin.domain.rules import raised_priority

# How long an account's group names are trusted: groups are rarely added or renamed.
GROUPS_TTL_SECONDS = 600.0

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


class PersonNotFound(HelpdeskError):
    """The helpdesk knows no user (agent or customer) by this id: asking again will not help."""

    def __init__(self, person_id: str) -> None:
        super().__init__(f"user {person_id} was not found", retryable=False, status=404)
        self.person_id = person_id


class UnknownGroup(HelpdeskError):
    """A rule routes to a group the helpdesk does not have: no retry will find it."""

    def __init__(self, helpdesk: str, group: str) -> None:
        super().__init__(
            f"{helpdesk} has no group named “{group}”: create it there, or change the rule "
            "that routes to it",
            retryable=False,
        )
        self.group = group


@dataclass(frozen=True)
class TicketChange:
    """A rule's ticket handling, applied to the ticket together with its note.

    `priority` (in Zendesk's words: low, normal, high, urgent) is one to raise the ticket to,
    never to lower it; `group` is a group's name, which each helpdesk turns into its own id.
    Tags to add travel with the note's own tags.
    """

    priority: str | None = None
    group: str | None = None

    def priority_update(self, current: str | None) -> tuple[str | None, str | None]:
        """The priority to set on a ticket now at `current` (None: leave it), and the line
        the note gets to say what became of the raise (None when there is no raise).
        """
        if self.priority is None:
            return None, None
        raised = raised_priority(current, self.priority)
        if raised is None:
            return None, f"Priority: already {current}, left as it was."
        return raised, f"Priority: {current or 'none'} → {raised}."


def with_line(body: str, marker: str, line: str | None) -> str:
    """The note with `line` added before the line that carries its marker, which stays last."""
    if not line:
        return body
    head, sep, tail = body.rpartition("\n")
    if sep and marker in tail:
        return f"{head}\n{line}\n{tail}"
    return f"{body}\n{line}"


class GroupDirectory:
    """One helpdesk account's groups, name to id, listed at most once per `ttl_seconds`.

    Routing names a group; helpdesk APIs want its id, and listing the groups costs calls. A
    name the remembered list lacks lists them again once (the group may be new). Names match
    without regard to case.
    """

    def __init__(
        self,
        *,
        ttl_seconds: float = GROUPS_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._groups: TTLCache[str, Mapping[str, str]] = TTLCache(
            maxsize=1, ttl=ttl_seconds, timer=clock
        )
        self._lock = threading.Lock()

    def id_for(self, name: str, *, load: Callable[[], Mapping[str, str]]) -> str | None:
        """The id of the group called `name`, or None; `load` lists the account's groups."""
        wanted = name.casefold()
        with self._lock:
            known = self._groups.get("groups")
        if known is not None and wanted in known:
            return known[wanted]
        listed = {group.casefold(): group_id for group, group_id in load().items()}
        with self._lock:
            self._groups["groups"] = listed
        return listed.get(wanted)


@dataclass(frozen=True)
class TicketWithRequester:
    ticket: Ticket
    requester: Person


@dataclass(frozen=True)
class SatisfactionRating:
    """A requester's answer to the helpdesk's satisfaction survey about one ticket.

    `satisfied`: True for a good rating (Zendesk's "good", a happy Freshdesk answer), False for
    a bad one, None for an answer that is neither (Freshdesk's neutral). `created_at` is the
    rating's, in naive UTC; listings are read from it onwards.
    """

    rating_id: str
    ticket_id: str
    satisfied: bool | None
    created_at: datetime


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

    def role_names(self, *, role_ids: tuple[str, ...]) -> tuple[str, ...]:
        """Return the names of these roles (a custom role id's name), skipping unknown ones.

        The console calls it only when an admin named supervisor roles by name, not by id.
        """
        ...

    def satisfaction_ratings(
        self, *, since: datetime, max_pages: int
    ) -> Iterator[SatisfactionRating]:
        """The survey answers received from `since` on, oldest first, `max_pages` pages at most
        (a later read goes on from the last one kept). Unanswered surveys are not listed."""
        ...


class TicketWriter(Protocol):
    """Write the action log's notes to tickets: the outbox's one view of every helpdesk.

    `add_note` adds an internal note (visible to agents only) and tags in as few calls as the
    helpdesk allows, with a rule's ticket handling (`change`) when there is one; the note's
    text ends with `marker`, a string unique to one action, and `has_note` says whether a note
    carrying it is on the ticket already, so that after a call whose outcome is unknown (a
    timeout, a worker killed mid-call) the note is not written twice. Tags, priority and group
    are set, not added to, so writing them again is harmless. Both raise HelpdeskError
    (TicketNotFound for a ticket that is gone, UnknownGroup for a group the helpdesk lacks); a
    call that was not sent because the account's call budget is spent raises it with
    `retry_after` set.
    """

    def add_note(
        self,
        *,
        ticket_id: str,
        body: str,
        tags: list[str],
        marker: str,
        change: TicketChange | None = None,
    ) -> None:
        """Add `body` (plain text that already ends with `marker`) as a note, the tags, and
        the change: a priority raised (never lowered: the note then says it was left), a group.
        """
        ...

    def has_note(self, *, ticket_id: str, marker: str) -> bool:
        """Say whether a note on the ticket carries `marker`."""
        ...
