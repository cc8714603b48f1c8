"""Assemble the sidebar for a ticket: helpdesk data and stored facts, through the domain."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Mapping, MutableMapping
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Generic, Protocol, TypeVar, runtime_checkable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from plugin.customers import lookup as customers
from plugin.customers import segmentation, shopify
from plugin.customers.records import normalize_email
from plugin.customers.segmentation import thresholds_of
from plugin.customers.shopify import ShopifyClient
from plugin.domain.helpdesk import ContactHistory, Person, Ticket
from plugin.domain.recognition import Banner, Guidance, OrderStats, build_banner, guidance_for
from plugin.domain.segments import SegmentProfile
from plugin.helpdesks import installations
from plugin.helpdesks.interface import Helpdesk, HelpdeskError, TicketWithRequester
from plugin.models import Customer, Installation, Persona, SeenTicket, SegmentGuidance
from plugin.sidebar.read_cache import ReadCache
from plugin.sidebar.upstream import Codec, Fetched, Lookup, UpstreamCache, UpstreamPolicy

T = TypeVar("T")

log = logging.getLogger(__name__)


def upstream_group(installation_id: int, upstream: str) -> tuple[int, str]:
    """What the upstream cache keeps trouble for: one installation's helpdesk, or its shop."""
    return (installation_id, upstream)


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


@dataclass(frozen=True)
class SidebarView:
    banner: Banner
    helpdesk: HelpdeskSnapshot
    # Where the banner's figures come from, for the agent who asks (hover or focus).
    order_sources: tuple[str, ...] = ()
    rfm_base_size: int = 0


@runtime_checkable
class RequesterReads(Protocol):
    """A helpdesk that answers a requester and their tickets in one call (Zendesk does)."""

    def requester_with_tickets(self, *, requester_id: str) -> tuple[Person, list[Ticket]]:
        """The requester as the helpdesk has them now, and their tickets, newest first."""
        ...


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
    directly, without the cache.
    """
    helpdesk_group = upstream_group(installation_id, "helpdesk")
    if (
        requester_hint
        and cache is not None
        and helpdesk.remote
        and isinstance(helpdesk, RequesterReads)
    ):
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
) -> HelpdeskSnapshot | None:
    """The snapshot from the requester's one read, or None when it cannot give the ticket.

    None also when the helpdesk does not know the requester (a wrong hint): the caller then
    reads the ticket, which says who the requester is.
    """
    try:
        fetched = cache.lookup(
            key,
            lambda: helpdesk.requester_with_tickets(requester_id=requester_id),
            fresh_for=policy.history_fresh_seconds,
            codec=REQUESTER_CODEC,
            group=group,
        ).result(deadline)
    except HelpdeskError as error:
        if error.retryable:
            raise  # nothing cached and the helpdesk slow or failing: the caller says so
        return None
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
) -> bool:
    """Start the requester's one read now, if it is not cached; True if a fetch is in flight.

    The caller then has the helpdesk's latency to do its own database work (see
    `prepare_customer`); `fetch_helpdesk_snapshot` joins the fetch in flight, no second call.
    """
    if not (
        requester_hint
        and cache is not None
        and helpdesk.remote
        and isinstance(helpdesk, RequesterReads)
    ):
        return False
    lookup = cache.lookup(
        (installation_id, "requester", requester_hint),
        lambda: helpdesk.requester_with_tickets(requester_id=requester_hint),
        fresh_for=policy.history_fresh_seconds,
        codec=REQUESTER_CODEC,
        group=upstream_group(installation_id, "helpdesk"),
    )
    return not lookup.from_cache


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


def refresh_from_shop(
    session: Session,
    installation: Installation,
    requester: Person,
    *,
    client: ShopifyClient | None,
    cache: UpstreamCache,
    synced: MutableMapping[Hashable, datetime],
    policy: UpstreamPolicy,
    deadline: float,
    now: datetime,
) -> str | None:
    """Bring the requester's data from the installation's shop up to date, by the deadline.

    The shop is asked at most once per `shop_fresh_seconds` per email, and an answer is stored
    once (`synced` remembers which answers were); when the shop is slow or failing the banner
    uses what is stored. Returns why the shop's data could not be refreshed, or None.
    """
    if client is None or not requester.email:
        return None
    email = normalize_email(requester.email)
    key = (installation.id, "shop", email)
    lookup = cache.lookup(
        key,
        lambda: client.customer_by_email(email),
        fresh_for=policy.shop_fresh_seconds,
        group=upstream_group(installation.id, "shop"),
    )
    try:
        fetched = lookup.result(deadline)
    except HelpdeskError as error:
        return str(error)
    if synced.get(key) != fetched.fetched_at:
        shopify.sync_customer(session, installation, fetched.value, now=fetched.fetched_at)
        session.commit()
        synced[key] = fetched.fetched_at
    return fetched.stale_reason


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


@dataclass(frozen=True)
class StoredFacts:
    """What the service's own database says about a requester, as the banner needs it.

    Computed from a dozen queries, so kept a few seconds per process (`ReadCache`): it changes
    when data comes in or a supervisor edits the installation, and those writes drop it.
    """

    customer_id: int | None = None
    customer_name: str | None = None
    customer_since: date | None = None
    profile: SegmentProfile | None = None
    guidance: tuple[Guidance, ...] = ()
    orders: OrderStats | None = None
    order_sources: tuple[str, ...] = ()
    helpdesk_facts: Mapping[str, object] = field(default_factory=dict)
    rfm_base_size: int = 0


@dataclass(frozen=True)
class CustomerCard:
    """What is stored about a customer that does not depend on the helpdesk's answer."""

    profile: SegmentProfile
    guidance: tuple[Guidance, ...]
    orders: OrderStats | None
    order_sources: tuple[str, ...]


def customer_card(
    session: Session, installation: Installation, customer: Customer, *, now: datetime
) -> CustomerCard:
    """The customer's profile, the guidance it calls for, and their orders (a dozen queries)."""
    profile = segmentation.profile_for_customer(session, installation, customer, now=now)
    return CustomerCard(
        profile=profile,
        guidance=guidance_for(
            profile,
            segment_guidance=_segment_guidance(session, installation.id),
            persona_guidance=_persona_guidance(session, installation.id),
        ),
        orders=customers.order_stats(session, customer=customer),
        order_sources=customers.order_sources(session, customer=customer),
    )


def _card_of(
    session: Session,
    installation: Installation,
    customer: Customer,
    *,
    reads: ReadCache | None,
    now: datetime,
) -> CustomerCard:
    def load() -> CustomerCard:
        return customer_card(session, installation, customer, now=now)

    return reads.get(installation.id, ("card", customer.id), load) if reads else load()


def prepare_customer(
    session: Session,
    installation: Installation,
    requester_id: str,
    *,
    reads: ReadCache,
    now: datetime,
) -> None:
    """Read the card of the customer the page says the requester is, into `reads`.

    Done while the helpdesk answers a cold view (`start_requester_read`): a customer known by
    their helpdesk user id is the one `find_customer` picks whatever else the helpdesk says,
    so after the answer only the facts read off the requester remain to be done.
    """
    customer = session.scalars(
        sa.select(Customer)
        .where(Customer.installation_id == installation.id)
        .where(Customer.helpdesk_user_id == requester_id)
        .order_by(Customer.id)
        .limit(1)
    ).first()
    if customer is not None:
        _card_of(session, installation, customer, reads=reads, now=now)
    rfm_base_size(session, installation.id, reads=reads)


def rfm_base_size(session: Session, installation_id: int, *, reads: ReadCache | None) -> int:
    def load() -> int:
        return segmentation.cut_points_of(session, installation_id).base_size

    return reads.get(installation_id, "rfm_base_size", load) if reads else load()


def stored_facts(
    session: Session,
    installation: Installation,
    requester: Person,
    *,
    facts_fetched_at: datetime,
    now: datetime,
    reads: ReadCache | None = None,
) -> StoredFacts:
    """Read the requester's customer, profile and guidance, storing the mapped helpdesk facts.

    Helpdesk fields and tags the installation maps to facts are read off the requester as
    fetched (no extra call), shown with their source, and stored on a known customer (a
    value that did not change is not written).
    """
    customer = customers.find_customer(session, installation_id=installation.id, person=requester)

    def mappings() -> list[installations.FactMapping]:
        return installations.list_mappings(session, installation)

    helpdesk_facts = installations.mapped_facts(
        requester, reads.get(installation.id, "mappings", mappings) if reads else mappings()
    )
    base_size = rfm_base_size(session, installation.id, reads=reads)
    if customer is None:
        return StoredFacts(helpdesk_facts=helpdesk_facts, rfm_base_size=base_size)
    customers.record_facts(
        session,
        customer=customer,
        facts=helpdesk_facts,
        source=installation.platform,
        now=facts_fetched_at,
    )
    session.commit()
    card = _card_of(session, installation, customer, reads=reads, now=now)
    return StoredFacts(
        customer_id=customer.id,
        customer_name=customer.name,
        customer_since=customer.customer_since,
        profile=card.profile,
        guidance=card.guidance,
        orders=card.orders,
        order_sources=card.order_sources,
        helpdesk_facts=helpdesk_facts,
        rfm_base_size=base_size,
    )


def sidebar_view(
    session: Session,
    *,
    installation: Installation,
    snapshot: HelpdeskSnapshot,
    now: datetime,
    reads: ReadCache | None = None,
    seen: SeenTicketWrites | None = None,
) -> SidebarView:
    """Build the sidebar from a helpdesk snapshot and the customer data stored here.

    `reads` keeps the stored facts a few seconds (keyed by the requester exactly as fetched,
    so a changed helpdesk field is mapped and stored at once); `seen` buffers the record of
    the view. Without them every view reads and writes the database (tests, scripts).
    """
    ticket, requester = snapshot.ticket, snapshot.requester

    def load() -> StoredFacts:
        return stored_facts(
            session,
            installation,
            requester,
            facts_fetched_at=snapshot.fetched_at,
            now=now,
            reads=reads,
        )

    facts = reads.get(installation.id, ("stored", repr(requester)), load) if reads else load()
    banner = build_banner(
        requester=requester,
        profile=facts.profile,
        guidance=facts.guidance,
        customer_name=facts.customer_name,
        customer_since=facts.customer_since,
        orders=facts.orders,
        contact=(
            ContactHistory.from_tickets(snapshot.history, excluding=ticket.id)
            if snapshot.history is not None
            else None
        ),
        helpdesk_facts=dict(facts.helpdesk_facts),
        thresholds=thresholds_of(installation),
        now=now,
    )
    if seen is not None:
        seen.record(
            session,
            installation_id=installation.id,
            ticket=ticket,
            customer_id=facts.customer_id,
            now=now,
        )
    else:
        record_seen_ticket(
            session,
            installation_id=installation.id,
            ticket=ticket,
            customer_id=facts.customer_id,
            now=now,
        )
    return SidebarView(
        banner=banner,
        helpdesk=snapshot,
        order_sources=facts.order_sources,
        rfm_base_size=facts.rfm_base_size,
    )


@dataclass
class _Seen:
    """What this process last wrote of a seen ticket, and the views since then not written."""

    fields: tuple[object, ...]
    written_at: datetime
    unwritten_views: int = 0
    last_seen_at: datetime | None = None


class SeenTicketWrites:
    """The sidebar's records of seen tickets, written at most once per ticket per interval.

    A view wrote its `SeenTicket` row every time: a transaction per view, most of a warm
    view's database time. Here a ticket's row is written on its first view in this process,
    again at once when what is recorded of it changes (requester, customer, subject, fields),
    and otherwise at most once per `interval_seconds`: the views in between are counted here
    and added to the row by the next write of any ticket once the interval has passed (or at
    exit, `flush`). So `last_seen_at` and `view_count` lag by an interval at most; a worker
    killed outright loses at most that interval's counts, never a ticket.

    Given `sessions` and an `executor`, the writes run there, in a session of their own: the
    view that makes one does not wait for its commit (a cold view's last database write).
    """

    def __init__(
        self,
        *,
        interval_seconds: float,
        sessions: sessionmaker[Session] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self._interval = interval_seconds
        self._sessions = sessions
        self._executor = executor
        self._lock = threading.Lock()
        self._tickets: dict[tuple[int, str], _Seen] = {}
        self._writing: set[Future[None]] = set()

    def record(
        self,
        session: Session,
        *,
        installation_id: int,
        ticket: Ticket,
        customer_id: int | None,
        now: datetime,
    ) -> None:
        """Count a view of the ticket; write it, and the views that are due, when it is time."""
        key = (installation_id, ticket.id)
        fields = _recorded_fields(ticket, customer_id)
        with self._lock:
            seen = self._tickets.get(key)
            if (
                seen is not None
                and seen.fields == fields
                and (now - seen.written_at).total_seconds() < self._interval
            ):
                seen.unwritten_views += 1
                seen.last_seen_at = now
                return
            views = 1 + (seen.unwritten_views if seen is not None else 0)
            self._tickets[key] = _Seen(fields=fields, written_at=now)
            due = self._take_due(now)

        def write(session: Session) -> None:
            record_seen_ticket(
                session,
                installation_id=installation_id,
                ticket=ticket,
                customer_id=customer_id,
                now=now,
                views=views,
                more_views=due,
            )

        if self._sessions is None or self._executor is None:
            write(session)
            return
        future = self._executor.submit(self._write_apart, write)
        with self._lock:
            self._writing.add(future)
        future.add_done_callback(self._done)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the writes under way (tests, shutdown)."""
        with self._lock:
            writing = list(self._writing)
        wait(writing, timeout=timeout)

    def flush(self, session: Session) -> None:
        """Wait for the writes under way, then write every view counted and not yet written."""
        self.wait()
        with self._lock:
            due = self._take_due(None)
        if due:
            _add_views(session, due)
            session.commit()

    def _write_apart(self, write: Callable[[Session], None]) -> None:
        assert self._sessions is not None
        try:
            with self._sessions() as session:
                write(session)
        except SQLAlchemyError as error:
            # Bookkeeping for rule replays: the view was shown; say why its record was not.
            log.warning("a seen ticket was not recorded: %s", error)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._writing.discard(future)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tickets)

    def _take_due(self, now: datetime | None) -> list[tuple[int, str, int, datetime]]:
        """Take the unwritten views whose interval has passed (all when `now` is None).

        Tickets past their interval are forgotten, so the buffer holds only the tickets
        viewed in the last interval.
        """
        due = []
        for key, seen in list(self._tickets.items()):
            if now is not None and (now - seen.written_at).total_seconds() < self._interval:
                continue
            if seen.unwritten_views and seen.last_seen_at is not None:
                due.append((*key, seen.unwritten_views, seen.last_seen_at))
            del self._tickets[key]
        return due


def _recorded_fields(ticket: Ticket, customer_id: int | None) -> tuple[object, ...]:
    return (
        ticket.requester_id,
        customer_id,
        ticket.subject[:500],
        ticket.channel,
        ticket.ticket_type,
        ticket.priority,
        ticket.tags,
    )


def record_seen_ticket(
    session: Session,
    *,
    installation_id: int,
    ticket: Ticket,
    customer_id: int | None,
    now: datetime,
    views: int = 1,
    more_views: list[tuple[int, str, int, datetime]] | None = None,
) -> None:
    """Remember that the sidebar was opened on a ticket (`views` times), and for whom.

    `more_views` are other tickets' views counted by `SeenTicketWrites` and written in the
    same transaction: (installation id, ticket id, views, last seen at).
    """
    try:
        _upsert_seen_ticket(session, installation_id, ticket, customer_id, now, views)
        if more_views:
            _add_views(session, more_views)
        session.commit()
    except IntegrityError:
        # Two views of a new ticket at once: the other inserted first, so update its row.
        session.rollback()
        _upsert_seen_ticket(session, installation_id, ticket, customer_id, now, views)
        if more_views:
            _add_views(session, more_views)
        session.commit()


def _add_views(session: Session, views: list[tuple[int, str, int, datetime]]) -> None:
    for installation_id, ticket_id, count, last_seen_at in views:
        session.execute(
            sa.update(SeenTicket)
            .where(SeenTicket.installation_id == installation_id, SeenTicket.ticket_id == ticket_id)
            .values(
                view_count=SeenTicket.view_count + count,
                last_seen_at=sa.case(
                    (SeenTicket.last_seen_at < last_seen_at, last_seen_at),
                    else_=SeenTicket.last_seen_at,
                ),
            )
        )


def _upsert_seen_ticket(
    session: Session,
    installation_id: int,
    ticket: Ticket,
    customer_id: int | None,
    now: datetime,
    views: int = 1,
) -> None:
    seen = session.scalars(
        sa.select(SeenTicket).where(
            SeenTicket.installation_id == installation_id, SeenTicket.ticket_id == ticket.id
        )
    ).first()
    if seen is None:
        session.add(
            SeenTicket(
                installation_id=installation_id,
                ticket_id=ticket.id,
                requester_id=ticket.requester_id,
                customer_id=customer_id,
                subject=ticket.subject[:500],
                channel=ticket.channel,
                ticket_type=ticket.ticket_type,
                priority=ticket.priority,
                tags=list(ticket.tags),
                first_seen_at=now,
                last_seen_at=now,
                view_count=views,
            )
        )
    else:
        seen.requester_id = ticket.requester_id
        seen.customer_id = customer_id
        seen.subject = ticket.subject[:500]
        seen.ticket_type = ticket.ticket_type
        seen.priority = ticket.priority
        seen.tags = list(ticket.tags)
        seen.last_seen_at = max(seen.last_seen_at, now)
        seen.view_count += views
    session.flush()


def _segment_guidance(session: Session, installation_id: int) -> dict[tuple[str, str], str]:
    """The installation's guidance texts by (kind, segment value)."""
    return {
        (row.kind, row.value): row.text
        for row in session.scalars(
            sa.select(SegmentGuidance).where(SegmentGuidance.installation_id == installation_id)
        )
        if row.text.strip()
    }


def _persona_guidance(session: Session, installation_id: int) -> dict[str, str]:
    """The guidance of each enabled persona that has some, by persona name."""
    rows = session.execute(
        sa.select(Persona.name, Persona.guidance).where(
            Persona.installation_id == installation_id, Persona.enabled.is_(True)
        )
    )
    return {name: text for name, text in rows if text.strip()}
