"""Assemble the sidebar for a ticket: helpdesk data and stored facts, through the domain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin import customers
from plugin.domain.helpdesk import ContactHistory, Person, Ticket
from plugin.domain.recognition import Banner, build_banner
from plugin.domain.tiers import TierThresholds
from plugin.models import Installation, SeenTicket
from plugin.platforms.base import Helpdesk


@dataclass(frozen=True)
class SidebarView:
    ticket: Ticket
    requester: Person
    banner: Banner


def thresholds_of(installation: Installation) -> TierThresholds:
    return TierThresholds(
        medium_min_orders=installation.tier_medium_min_orders,
        medium_min_spend_cents=installation.tier_medium_min_spend_cents,
        high_min_orders=installation.tier_high_min_orders,
        high_min_spend_cents=installation.tier_high_min_spend_cents,
    )


def sidebar_view(
    session: Session,
    *,
    installation: Installation,
    helpdesk: Helpdesk,
    ticket_id: str,
    now: datetime,
) -> SidebarView:
    """Build the sidebar for a ticket; the helpdesk, not the browser, names the requester."""
    fetched = helpdesk.ticket(ticket_id=ticket_id)
    history = helpdesk.requester_tickets(requester_id=fetched.requester.id)
    customer = customers.find_customer(
        session, installation_id=installation.id, person=fetched.requester
    )
    banner = build_banner(
        requester=fetched.requester,
        customer_name=customer.name if customer else None,
        customer_since=customer.customer_since if customer else None,
        orders=customers.order_stats(session, customer=customer) if customer else None,
        contact=ContactHistory.from_tickets(history, excluding=fetched.ticket.id),
        thresholds=thresholds_of(installation),
        now=now,
    )
    record_seen_ticket(
        session,
        installation_id=installation.id,
        ticket=fetched.ticket,
        customer_id=customer.id if customer else None,
        now=now,
    )
    return SidebarView(ticket=fetched.ticket, requester=fetched.requester, banner=banner)


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
