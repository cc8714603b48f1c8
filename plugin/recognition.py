"""Assemble the sidebar for a ticket: helpdesk data and stored facts, through the domain."""

from __future__ import annotations

from collections.abc import Callable, Hashable, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin import customers, installations, segmentation
from plugin.domain.helpdesk import ContactHistory, Person, Ticket
from plugin.domain.recognition import Banner, build_banner, guidance_for
from plugin.models import Installation, Persona, SeenTicket, SegmentGuidance
from plugin.platforms.base import Helpdesk, HelpdeskError, TicketWithRequester
from plugin.segmentation import thresholds_of
from plugin.sources import shopify
from plugin.sources.records import normalize_email
from plugin.sources.shopify import ShopifyClient
from plugin.upstream import Fetched, Lookup, UpstreamCache, UpstreamPolicy

T = TypeVar("T")


@dataclass(frozen=True)
class HelpdeskSnapshot:
    """The ticket, its requester and their history, as fetched or as last cached."""

    ticket: Ticket
    requester: Person
    history: list[Ticket] | None
    fetched_at: datetime
    stale_reason: str | None
    history_problem: str | None


@dataclass(frozen=True)
class SidebarView:
    banner: Banner
    helpdesk: HelpdeskSnapshot
    # Where the banner's figures come from, for the agent who asks (hover or focus).
    order_sources: tuple[str, ...] = ()
    rfm_base_size: int = 0


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
) -> HelpdeskSnapshot:
    """Read the ticket and the requester's history in one parallel wave, by the deadline.

    The page's `requester_hint` only lets the history fetch start alongside the ticket's; the
    ticket fetched from the helpdesk decides who the requester is. When the hint was wrong the
    right history is fetched afterwards. A helpdesk that is not remote (the demo's) is read
    directly, without the cache.
    """

    def lookup(key: tuple[str, str], load: Callable[[], T], fresh_for: float) -> _Read[T]:
        if cache is None or not helpdesk.remote:
            return _Read.direct(load, now)
        return _Read(
            cache.lookup((installation_id, *key), load, fresh_for=fresh_for), deadline=deadline
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
        key, lambda: client.customer_by_email(email), fresh_for=policy.shop_fresh_seconds
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


def sidebar_view(
    session: Session,
    *,
    installation: Installation,
    snapshot: HelpdeskSnapshot,
    now: datetime,
) -> SidebarView:
    """Build the sidebar from a helpdesk snapshot and the customer data stored here.

    Helpdesk fields and tags the installation maps to facts are read off the requester as
    fetched (no extra call), shown with their source, and stored on a known customer.
    """
    ticket, requester = snapshot.ticket, snapshot.requester
    customer = customers.find_customer(session, installation_id=installation.id, person=requester)
    helpdesk_facts = installations.mapped_facts(
        requester, installations.list_mappings(session, installation)
    )
    if customer is not None:
        customers.record_facts(
            session,
            customer=customer,
            facts=helpdesk_facts,
            source=installation.platform,
            now=snapshot.fetched_at,
        )
    profile = (
        segmentation.profile_for_customer(session, installation, customer, now=now)
        if customer is not None
        else None
    )
    banner = build_banner(
        requester=requester,
        profile=profile,
        guidance=(
            guidance_for(
                profile,
                segment_guidance=_segment_guidance(session, installation.id),
                persona_guidance=_persona_guidance(session, installation.id),
            )
            if profile is not None
            else ()
        ),
        customer_name=customer.name if customer else None,
        customer_since=customer.customer_since if customer else None,
        orders=customers.order_stats(session, customer=customer) if customer else None,
        contact=(
            ContactHistory.from_tickets(snapshot.history, excluding=ticket.id)
            if snapshot.history is not None
            else None
        ),
        helpdesk_facts=helpdesk_facts,
        thresholds=thresholds_of(installation),
        now=now,
    )
    record_seen_ticket(
        session,
        installation_id=installation.id,
        ticket=ticket,
        customer_id=customer.id if customer else None,
        now=now,
    )
    return SidebarView(
        banner=banner,
        helpdesk=snapshot,
        order_sources=customers.order_sources(session, customer=customer) if customer else (),
        rfm_base_size=segmentation.cut_points_of(session, installation.id).base_size,
    )


def record_seen_ticket(
    session: Session,
    *,
    installation_id: int,
    ticket: Ticket,
    customer_id: int | None,
    now: datetime,
) -> None:
    """Remember that the sidebar was opened on a ticket, and for whom."""
    try:
        _upsert_seen_ticket(session, installation_id, ticket, customer_id, now)
        session.commit()
    except IntegrityError:
        # Two views of a new ticket at once: the other inserted first, so update its row.
        session.rollback()
        _upsert_seen_ticket(session, installation_id, ticket, customer_id, now)
        session.commit()


def _upsert_seen_ticket(
    session: Session, installation_id: int, ticket: Ticket, customer_id: int | None, now: datetime
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
                first_seen_at=now,
                last_seen_at=now,
                view_count=1,
            )
        )
    else:
        seen.requester_id = ticket.requester_id
        seen.customer_id = customer_id
        seen.subject = ticket.subject[:500]
        seen.last_seen_at = now
        seen.view_count += 1
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
