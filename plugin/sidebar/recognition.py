"""Assemble the sidebar for a ticket: helpdesk data and stored facts, through the domain."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers import lookup as customers
from plugin.customers import recent_orders, segmentation
from plugin.customers.histories import history_of
from plugin.customers.recent_orders import RecentOrders
from plugin.customers.segmentation import thresholds_of
from plugin.domain.helpdesk import ContactHistory, Person
from plugin.domain.personas import Persona
from plugin.domain.recognition import (
    Banner,
    Guidance,
    MatchedBy,
    OrderStats,
    build_banner,
    guidance_for,
    is_stale,
)
from plugin.domain.rfm import RfmCutPoints
from plugin.domain.segments import SegmentProfile
from plugin.helpdesks import field_mappings
from plugin.models import Customer, Installation, SegmentGuidance
from plugin.models import Persona as PersonaRow
from plugin.sidebar.read_cache import ReadCache
from plugin.sidebar.rendered import RenderedParts
from plugin.sidebar.snapshot import HelpdeskSnapshot


@dataclass(frozen=True)
class SidebarView:
    banner: Banner
    helpdesk: HelpdeskSnapshot
    # Where the banner's figures come from, for the agent who asks (hover or focus).
    order_sources: tuple[str, ...] = ()
    rfm_base_size: int = 0
    customer_id: int | None = None
    # False: the helpdesk facts mapped from the requester are not stored as read (see sync.py).
    helpdesk_facts_stored: bool = True


@dataclass(frozen=True)
class StoredFacts:
    """What the service's own database says about a requester, as the banner needs it.

    Computed from a dozen queries, so kept a few seconds per process (`ReadCache`): it changes
    when data comes in or a supervisor edits the installation, and those writes drop it.
    """

    customer_id: int | None = None
    customer_name: str | None = None
    customer_since: date | None = None
    matched_by: MatchedBy | None = None
    profile: SegmentProfile | None = None
    guidance: tuple[Guidance, ...] = ()
    orders: OrderStats | None = None
    order_sources: tuple[str, ...] = ()
    helpdesk_facts: Mapping[str, object] = field(default_factory=dict)
    # Whether the customer's stored helpdesk facts are `helpdesk_facts` (True with no customer).
    helpdesk_facts_stored: bool = True
    rfm_base_size: int = 0


@dataclass(frozen=True)
class CustomerCard:
    """What is stored about a customer that does not depend on the helpdesk's answer."""

    profile: SegmentProfile
    guidance: tuple[Guidance, ...]
    orders: OrderStats | None
    order_sources: tuple[str, ...]
    # Their stored facts by source, for the banner to say whether the helpdesk's are stored.
    facts: customers.StoredFacts = field(default_factory=dict)


@dataclass(frozen=True)
class CardSettings:
    """What every customer's card of an installation is read against: the RFM cut points, the
    enabled personas and the guidance texts. The same for all its customers, so a process
    that has read one card reads the next customer's with five queries fewer."""

    cut_points: RfmCutPoints
    personas: tuple[Persona, ...]
    segment_guidance: Mapping[tuple[str, str], str]
    persona_guidance: Mapping[str, str]


def card_settings(
    session: Session, installation_id: int, *, reads: ReadCache | None
) -> CardSettings:
    def load() -> CardSettings:
        return CardSettings(
            cut_points=segmentation.cut_points_of(session, installation_id),
            personas=tuple(segmentation.active_personas(session, installation_id)),
            segment_guidance=_segment_guidance(session, installation_id),
            persona_guidance=_persona_guidance(session, installation_id),
        )

    return reads.get(installation_id, "card settings", load) if reads else load()


def customer_card(
    session: Session,
    installation: Installation,
    customer: Customer,
    *,
    now: datetime,
    reads: ReadCache | None = None,
) -> CustomerCard:
    """The customer's profile, the guidance it calls for, and their orders: one statement,
    their orders (kept in `reads` as `orders_of` keeps them) and their facts; the
    installation's settings through `reads`."""
    settings = card_settings(session, installation.id, reads=reads)
    read: list[customers.StoredFacts] = []

    def load() -> tuple[customers.StoredOrder, ...]:
        stored, facts = customers.stored_orders_and_facts_of(session, installation.id, customer.id)
        read.append(facts)
        return stored

    stored = orders_of(session, installation.id, customer.id, reads=reads, load=load)
    history = history_of(
        customer.customer_since,
        [
            (order.placed_at, order.amount_cents, order.discount_code is not None, order.category)
            for order in stored
            if order.placed_at <= now
        ],
    )
    profile = segmentation.profile_of_history(
        session,
        installation,
        history,
        now=now,
        cut_points=settings.cut_points,
        personas=settings.personas,
    )
    # The orders may have been kept without their facts (the orders card read them first).
    facts = read[0] if read else customers.stored_facts_of(session, customer=customer)
    return CustomerCard(
        profile=profile,
        guidance=guidance_for(
            profile,
            segment_guidance=settings.segment_guidance,
            persona_guidance=settings.persona_guidance,
        ),
        orders=customers.order_stats_of(facts),
        order_sources=customers.order_sources_of(stored),
        facts=facts,
    )


def orders_of(
    session: Session,
    installation_id: int,
    customer_id: int,
    *,
    reads: ReadCache | None,
    load: Callable[[], tuple[customers.StoredOrder, ...]] | None = None,
) -> tuple[customers.StoredOrder, ...]:
    """Every stored order of the customer (`lookup.stored_orders_of`, or `load` when given)
    through `reads`: the card's profile and the recent orders the cards show are drawn from
    one read."""

    def read() -> tuple[customers.StoredOrder, ...]:
        return customers.stored_orders_of(session, installation_id, customer_id)

    if reads is None:
        return (load or read)()
    found: tuple[customers.StoredOrder, ...] = reads.get(
        installation_id, ("orders of", customer_id), load or read
    )
    return found


def card_of(
    session: Session,
    installation: Installation,
    customer_id: int,
    *,
    reads: ReadCache | None,
    now: datetime,
) -> CustomerCard | None:
    """The customer's card through `reads` (their row read only when the card is not kept);
    None when the installation has no such customer (any more: an id read from a cache may
    name a customer another process has just forgotten)."""

    def load() -> CustomerCard | None:
        customer = session.get(Customer, customer_id)
        if customer is None or customer.installation_id != installation.id:
            return None
        return customer_card(session, installation, customer, now=now, reads=reads)

    card = reads.get(installation.id, ("card", customer_id), load) if reads else load()
    return card


def stored_orders(
    session: Session,
    installation_id: int,
    customer_id: int,
    *,
    ticket_text: str,
    now: datetime,
    reads: ReadCache | None,
) -> RecentOrders:
    """The customer's latest stored orders and the one the ticket's text names, through
    `reads`: the orders card shows them, the suggestions card prices from them. Drawn from the
    orders their card read (`orders_of`)."""

    def load() -> RecentOrders:
        stored = orders_of(session, installation_id, customer_id, reads=reads)
        return recent_orders.from_stored(stored, ticket_text=ticket_text, now=now)

    if reads is None:
        return load()
    found: RecentOrders = reads.get(
        installation_id, ("stored orders", customer_id, ticket_text), load
    )
    return found


def customer_id_of(
    session: Session, installation_id: int, requester: Person, *, reads: ReadCache | None
) -> int | None:
    """Who the requester is among the installation's customers (`find_customer`), through
    `reads`: keyed by the requester exactly as fetched, so a changed email or phone is matched
    again at once. A card that then reads the customer's card may find them gone (`card_of`)."""

    def load() -> int | None:
        found = customers.find_customer(session, installation_id=installation_id, person=requester)
        return found.id if found is not None else None

    found: int | None = (
        reads.get(installation_id, _customer_key(requester), load) if reads else load()
    )
    return found


def _customer_key(requester: Person) -> tuple[str, str]:
    return ("customer of", repr(requester))


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
    customer = customers.customer_by_helpdesk_id(
        session, installation_id=installation.id, helpdesk_user_id=requester_id
    )
    if customer is not None:
        card_of(session, installation, customer.id, reads=reads, now=now)
    rfm_base_size(session, installation.id, reads=reads)


def rfm_base_size(session: Session, installation_id: int, *, reads: ReadCache | None) -> int:
    return card_settings(session, installation_id, reads=reads).cut_points.base_size


def stored_facts(
    session: Session,
    installation: Installation,
    requester: Person,
    *,
    now: datetime,
    reads: ReadCache | None = None,
) -> StoredFacts:
    """Read the requester's customer, profile and guidance; write nothing.

    Helpdesk fields and tags the installation maps to facts are read off the requester as
    fetched (no extra call) and shown with their source; whether a known customer has them
    stored as read is said (`helpdesk_facts_stored`), for the sidebar to ask for the write
    (`plugin.sidebar.sync`).
    """
    match = customers.match_customer(session, installation_id=installation.id, person=requester)
    if reads is not None:
        # Who the requester is, for the cards after the banner (`customer_id_of`): found here.
        reads.get(installation.id, _customer_key(requester), lambda: match[0].id if match else None)

    def mappings() -> list[field_mappings.FactMapping]:
        return field_mappings.list_mappings(session, installation)

    helpdesk_facts = field_mappings.mapped_facts(
        requester, reads.get(installation.id, "mappings", mappings) if reads else mappings()
    )
    base_size = rfm_base_size(session, installation.id, reads=reads)
    card = card_of(session, installation, match[0].id, reads=reads, now=now) if match else None
    if match is None or card is None:
        return StoredFacts(helpdesk_facts=helpdesk_facts, rfm_base_size=base_size)
    customer, matched_by = match
    return StoredFacts(
        customer_id=customer.id,
        customer_name=customer.name,
        customer_since=customer.customer_since,
        matched_by=matched_by,
        profile=card.profile,
        guidance=card.guidance,
        orders=card.orders,
        order_sources=card.order_sources,
        helpdesk_facts=helpdesk_facts,
        helpdesk_facts_stored=customers.facts_from(card.facts, installation.platform)
        == helpdesk_facts,
        rfm_base_size=base_size,
    )


def sidebar_view(
    session: Callable[[], Session],
    *,
    installation: Installation,
    snapshot: HelpdeskSnapshot,
    now: datetime,
    reads: ReadCache | None = None,
    rendered: RenderedParts | None = None,
) -> SidebarView:
    """Build the sidebar from a helpdesk snapshot and the customer data stored here; write
    nothing (the caller records the view: `plugin.sidebar.seen`).

    `reads` keeps the stored facts a few seconds (keyed by the requester exactly as fetched,
    so a changed helpdesk field is mapped at once); without it every view reads the database.
    `rendered` keeps the banner built from the same sources, so a warm view builds none.
    `session` gives the request's session, opened only when something is read.
    """
    ticket, requester = snapshot.ticket, snapshot.requester

    def load() -> StoredFacts:
        return stored_facts(session(), installation, requester, now=now, reads=reads)

    facts = reads.get(installation.id, ("stored", repr(requester)), load) if reads else load()
    thresholds = thresholds_of(installation)
    stale = is_stale(facts.orders.as_of if facts.orders else None, now)

    def build() -> Banner:
        return build_banner(
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
            matched_by=facts.matched_by,
            rfm_base_size=facts.rfm_base_size,
            thresholds=thresholds,
            now=now,
        )

    # Everything `build` reads; `now` only through the one thing it decides with it.
    sources = (requester, facts, snapshot.history, thresholds, stale)
    banner = rendered.built((installation.id, ticket.id), sources, build) if rendered else build()
    return SidebarView(
        banner=banner,
        helpdesk=snapshot,
        order_sources=facts.order_sources,
        rfm_base_size=facts.rfm_base_size,
        customer_id=facts.customer_id,
        helpdesk_facts_stored=facts.helpdesk_facts_stored,
    )


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
        sa.select(PersonaRow.name, PersonaRow.guidance).where(
            PersonaRow.installation_id == installation_id, PersonaRow.enabled.is_(True)
        )
    )
    return {name: text for name, text in rows if text.strip()}
