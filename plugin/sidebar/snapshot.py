"""The helpdesk's side of a sidebar view: the ticket, its requester and their history.

Read through the upstream cache in as few calls as can be (the requester-first read), and
kept in the shared cache as JSON (`REQUESTER_CODEC`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeGuard, TypeVar

from plugin.domain.helpdesk import Person, Ticket
from plugin.helpdesks.interface import Helpdesk, HelpdeskError, TicketWithRequester
from plugin.sidebar.upstream import (
    Codec,
    Fetched,
    Lookup,
    UpstreamCache,
    UpstreamPolicy,
    upstream_group,
)

T = TypeVar("T")
# The requester's one read: the person and their tickets, newest first.
RequesterLookup = Lookup[tuple[Person, list[Ticket]]]


@dataclass(frozen=True)
class HelpdeskSnapshot:
    """The ticket, its requester and their history, as fetched or as last cached.

    `ticket_from_page` says the ticket's own fields are the agent's page's (the helpdesk's
    app framework gave them to the page), not an answer the service read from the helpdesk:
    good for showing, never for deciding what to record.
    """

    ticket: Ticket
    requester: Person
    history: list[Ticket] | None
    fetched_at: datetime
    stale_reason: str | None
    history_problem: str | None
    ticket_from_page: bool = False


class RequesterReads(Protocol):
    """A helpdesk that answers a requester and their tickets in one call (Zendesk does)."""

    def requester_with_tickets(self, *, requester_id: str) -> tuple[Person, list[Ticket]]:
        """The requester as the helpdesk has them now, and their tickets, newest first."""
        ...


def reads_requesters(helpdesk: object) -> TypeGuard[RequesterReads]:
    """Does this helpdesk answer a requester with their tickets in one call?

    A look at the class, not `isinstance` on a runtime-checkable Protocol: that walks the
    protocol's members on every call, about 20 µs of each warm view.
    """
    return callable(getattr(type(helpdesk), "requester_with_tickets", None))


def fetch_helpdesk_snapshot(
    helpdesk: Helpdesk,
    *,
    cache: UpstreamCache | None,
    installation_id: int,
    ticket_id: str,
    requester_hint: str | None,
    policy: UpstreamPolicy,
    deadline: float,
    now: datetime,
    page_ticket: Ticket | None = None,
    started: RequesterLookup | None = None,
) -> HelpdeskSnapshot:
    """Read the ticket's requester and their history, by the deadline, in as few calls as can be.

    With the page's `requester_hint` and a helpdesk that answers a requester with their
    tickets in one call, that one call (cached, and shared by the service's processes) is
    the whole read: the ticket is taken from the requester's tickets when it is among them,
    else from `page_ticket` (the page's own copy of its fields, shown as such); only when
    neither has it is the ticket read. Otherwise the ticket and the requester's history are
    read in one parallel wave: the hint only lets the history fetch start alongside the
    ticket's, the ticket decides who the requester is, and when the hint was wrong the right
    history is fetched afterwards. A helpdesk that is not remote (the demo's) is read
    directly, without the cache. `started` is that one read as `start_requester_read` began it.
    """
    helpdesk_group = upstream_group(installation_id, "helpdesk")
    if requester_hint and cache is not None and helpdesk.remote and reads_requesters(helpdesk):
        snapshot = _requester_first(
            helpdesk,
            cache=cache,
            key=(installation_id, "requester", requester_hint),
            group=helpdesk_group,
            ticket_id=ticket_id,
            requester_id=requester_hint,
            page_ticket=page_ticket,
            policy=policy,
            deadline=deadline,
            started=started,
        )
        if snapshot is not None:
            return snapshot

    def lookup(key: tuple[str, str], load: Callable[[], T], fresh_for: float) -> _Read[T]:
        if cache is None or not helpdesk.remote:
            return _Read.direct(load, now)
        return _Read(
            cache.lookup((installation_id, *key), load, fresh_for=fresh_for, group=helpdesk_group),
            deadline=deadline,
        )

    def load_ticket() -> TicketWithRequester:
        return helpdesk.ticket(ticket_id=ticket_id)

    def history_of(requester_id: str) -> _Read[list[Ticket]]:
        return lookup(
            ("requested", requester_id),
            lambda: helpdesk.requester_tickets(requester_id=requester_id),
            policy.history_fresh_seconds,
        )

    ticket_read = lookup(("ticket", ticket_id), load_ticket, policy.ticket_fresh_seconds)
    history_read = history_of(requester_hint) if requester_hint else None
    fetched = ticket_read.result()
    if (
        requester_hint
        and ticket_read.from_cache
        and fetched.value.requester.id != requester_hint
        and cache is not None
    ):
        # The page says the requester changed since the ticket was cached: ask again.
        fetched = _Read(
            cache.lookup(
                (installation_id, "ticket", ticket_id),
                load_ticket,
                fresh_for=policy.ticket_fresh_seconds,
                refresh=True,
                group=helpdesk_group,
            ),
            deadline=deadline,
        ).result()
    requester = fetched.value.requester
    if history_read is None or requester.id != requester_hint:
        history_read = history_of(requester.id)
    history: Fetched[list[Ticket]] | None
    history_problem = None
    try:
        history = history_read.result()
    except HelpdeskError as error:
        history, history_problem = None, str(error)
    parts: list[Fetched[object]] = [fetched, *([history] if history else [])]  # type: ignore[list-item]
    stale = [part.stale_reason for part in parts if part.stale_reason]
    return HelpdeskSnapshot(
        ticket=fetched.value.ticket,
        requester=requester,
        history=history.value if history else None,
        fetched_at=min(part.fetched_at for part in parts),
        stale_reason=stale[0] if stale else None,
        history_problem=history_problem,
    )


def _requester_first(
    helpdesk: RequesterReads,
    *,
    cache: UpstreamCache,
    key: Hashable,
    group: Hashable,
    ticket_id: str,
    requester_id: str,
    page_ticket: Ticket | None,
    policy: UpstreamPolicy,
    deadline: float,
    started: RequesterLookup | None = None,
) -> HelpdeskSnapshot | None:
    """The snapshot from the requester's one read, or None when it cannot give the ticket.

    None also when the helpdesk does not know the requester (a wrong hint): the caller then
    reads the ticket, which says who the requester is.
    """
    read = (
        started
        if started is not None
        else cache.lookup(
            key,
            lambda: helpdesk.requester_with_tickets(requester_id=requester_id),
            fresh_for=policy.history_fresh_seconds,
            codec=REQUESTER_CODEC,
            group=group,
        )
    )
    try:
        fetched = read.result(deadline)
    except HelpdeskError as error:
        if error.retryable:
            raise  # nothing cached and the helpdesk slow or failing: the caller says so
        return None
    requester, tickets = fetched.value
    ticket = next((t for t in tickets if t.id == ticket_id), None)
    if ticket is None and not fetched.is_stale:
        # A ticket newer than this process's copy: a helpdesk event's refresh (or another
        # process) may have stored one that has it, read in one query instead of a call.
        newer = cache.newer_shared(key, REQUESTER_CODEC, than=fetched.fetched_at)
        if newer is not None:
            fetched = newer
            requester, tickets = fetched.value
            ticket = next((t for t in tickets if t.id == ticket_id), None)
    from_page = ticket is None
    if ticket is None:
        ticket = page_ticket
    if ticket is None:
        return None  # a ticket newer than the cached history, and no fields from the page
    return HelpdeskSnapshot(
        ticket=ticket,
        requester=requester,
        history=tickets,
        fetched_at=fetched.fetched_at,
        stale_reason=fetched.stale_reason,
        history_problem=None,
        ticket_from_page=from_page,
    )


def start_requester_read(
    helpdesk: Helpdesk,
    *,
    cache: UpstreamCache | None,
    installation_id: int,
    requester_hint: str | None,
    policy: UpstreamPolicy,
) -> RequesterLookup | None:
    """Start the requester's one read now, unless it is cached; None when this helpdesk is not
    read requester first (or no cache or hint).

    When a fetch is in flight (not `from_cache`), the caller has the helpdesk's latency to do
    its own database work (see `prepare_customer`); passed on to `fetch_helpdesk_snapshot` as
    `started`, the same read is joined, neither a second call nor a second cache lookup.
    """
    if not (
        requester_hint and cache is not None and helpdesk.remote and reads_requesters(helpdesk)
    ):
        return None
    return cache.lookup(
        (installation_id, "requester", requester_hint),
        lambda: helpdesk.requester_with_tickets(requester_id=requester_hint),
        fresh_for=policy.history_fresh_seconds,
        codec=REQUESTER_CODEC,
        group=upstream_group(installation_id, "helpdesk"),
    )


# --- The requester's read as the shared cache stores it (JSON) ------------------------------


def _person_to_json(person: Person) -> dict[str, object]:
    return {
        "id": person.id,
        "name": person.name,
        "email": person.email,
        "phone": person.phone,
        "role": person.role,
        "role_ids": list(person.role_ids),
        "tags": list(person.tags),
        "fields": dict(person.fields),
        "organization_id": person.organization_id,
        "organization_fields": dict(person.organization_fields),
    }


def _person_from_json(raw: Mapping[str, object]) -> Person:
    return Person(
        id=str(raw["id"]),
        name=str(raw["name"]),
        email=_text_or_none(raw.get("email")),
        phone=_text_or_none(raw.get("phone")),
        role=_text_or_none(raw.get("role")),
        role_ids=tuple(str(item) for item in _items(raw.get("role_ids"))),
        tags=tuple(str(item) for item in _items(raw.get("tags"))),
        fields=dict(_mapping(raw.get("fields"))),
        organization_id=_text_or_none(raw.get("organization_id")),
        organization_fields=dict(_mapping(raw.get("organization_fields"))),
    )


def _ticket_to_json(ticket: Ticket) -> dict[str, object]:
    return {
        "id": ticket.id,
        "subject": ticket.subject,
        "status": ticket.status,
        "channel": ticket.channel,
        "priority": ticket.priority,
        "ticket_type": ticket.ticket_type,
        "tags": list(ticket.tags),
        "requester_id": ticket.requester_id,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
        "description_orders": list(ticket.description_orders),
    }


def _ticket_from_json(raw: Mapping[str, object]) -> Ticket:
    return Ticket(
        id=str(raw["id"]),
        subject=str(raw["subject"]),
        status=str(raw["status"]),
        channel=str(raw["channel"]),
        priority=_text_or_none(raw.get("priority")),
        ticket_type=_text_or_none(raw.get("ticket_type")),
        tags=tuple(str(item) for item in _items(raw.get("tags"))),
        requester_id=str(raw["requester_id"]),
        created_at=datetime.fromisoformat(str(raw["created_at"])),
        updated_at=datetime.fromisoformat(str(raw["updated_at"])),
        description_orders=tuple(str(item) for item in _items(raw.get("description_orders"))),
    )


def _encode_requester(value: tuple[Person, list[Ticket]]) -> object:
    person, tickets = value
    return {"requester": _person_to_json(person), "tickets": [_ticket_to_json(t) for t in tickets]}


def _decode_requester(raw: object) -> tuple[Person, list[Ticket]]:
    data = _mapping(raw)
    return (
        _person_from_json(_mapping(data.get("requester"))),
        [_ticket_from_json(_mapping(item)) for item in _items(data.get("tickets"))],
    )


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _items(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _mapping(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise ValueError("a stored helpdesk answer is not an object")
    return value


REQUESTER_CODEC: Codec[tuple[Person, list[Ticket]]] = Codec(
    encode=_encode_requester, decode=_decode_requester
)


class _Read(Generic[T]):
    """A cache lookup with its deadline, or a value read directly from a local helpdesk."""

    def __init__(
        self, lookup: Lookup[T] | None, *, deadline: float, value: Fetched[T] | None = None
    ) -> None:
        self._lookup = lookup
        self._deadline = deadline
        self._value = value

    @classmethod
    def direct(cls, load: Callable[[], T], now: datetime) -> _Read[T]:
        return cls(None, deadline=0.0, value=Fetched(value=load(), fetched_at=now))

    @property
    def from_cache(self) -> bool:
        return self._lookup is not None and self._lookup.from_cache

    def result(self) -> Fetched[T]:
        if self._value is not None:
            return self._value
        assert self._lookup is not None
        return self._lookup.result(self._deadline)
