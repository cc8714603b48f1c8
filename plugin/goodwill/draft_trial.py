"""Trying a draft rule on one customer before publishing it: what it would suggest for their
latest ticket the sidebar saw (or a ticket the supervisor describes), why, and what its cap or a
budget would withhold.

No Flask here: the console's rule editor calls it. The draft is evaluated alone, against the
installation's enabled catalog entries (`compile_draft`, which the replay uses too).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.helpdesk import Person, Ticket
from plugin.domain.rule_evaluation import CompiledRules, Evaluation
from plugin.domain.rules import Rule as DomainRule
from plugin.goodwill.money import exact_money
from plugin.goodwill.rulebook import rule_book
from plugin.goodwill.suggestions import ticket_context
from plugin.models import Customer, Installation, SeenTicket
from plugin.models import ExceptionType as ExceptionTypeRow


@dataclass(frozen=True)
class CustomerMatch:
    """A customer a supervisor may try a draft on."""

    id: int
    name: str
    email: str | None
    external_id: str | None


def find_customers(
    session: Session, installation_id: int, query: str, *, limit: int = 10
) -> list[CustomerMatch]:
    """The installation's customers whose id, email or name fit what was typed, best first.

    An exact id (ours or the company's) or email comes alone; otherwise names and emails that
    contain the text.
    """
    text = query.strip()
    if not text:
        return []
    scope = Customer.installation_id == installation_id
    exact = [Customer.external_id == text, sa.func.lower(Customer.email) == text.lower()]
    if text.isdigit():
        exact.append(Customer.id == int(text))
    found = session.scalars(sa.select(Customer).where(scope, sa.or_(*exact)).limit(limit)).all()
    if not found:
        pattern = f"%{text.lower()}%"
        found = session.scalars(
            sa.select(Customer)
            .where(
                scope,
                sa.or_(
                    sa.func.lower(Customer.name).like(pattern),
                    sa.func.lower(Customer.email).like(pattern),
                ),
            )
            .order_by(Customer.name, Customer.id)
            .limit(limit)
        ).all()
    return [CustomerMatch(c.id, c.name, c.email, c.external_id) for c in found]


@dataclass(frozen=True)
class DescribedTicket:
    """A ticket the supervisor describes instead of picking one the sidebar saw."""

    subject: str
    ticket_type: str | None = None
    priority: str | None = None
    channel: str = "web"
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TryResult:
    """What a draft would do for one customer's ticket."""

    customer: CustomerMatch
    ticket: Ticket
    ticket_source: str  # "their latest ticket, #123, seen ..." or "the ticket you described"
    evaluation: Evaluation
    matched: bool
    order_value: str | None


def try_draft(
    session: Session,
    installation: Installation,
    draft: DomainRule,
    *,
    customer_id: int,
    described: DescribedTicket | None,
    now: datetime,
) -> TryResult | None:
    """Evaluate the draft alone for the customer's latest seen ticket, or the described one.

    None when the installation has no such customer. With neither a seen ticket nor a
    description, an empty ticket stands in (the customer's profile alone decides).
    """
    customer = session.scalars(
        sa.select(Customer).where(
            Customer.id == customer_id, Customer.installation_id == installation.id
        )
    ).first()
    if customer is None:
        return None
    seen = session.scalars(
        sa.select(SeenTicket)
        .where(SeenTicket.installation_id == installation.id, SeenTicket.customer_id == customer.id)
        .order_by(SeenTicket.last_seen_at.desc(), SeenTicket.id.desc())
        .limit(1)
    ).first()
    requester_id = customer.helpdesk_user_id or (seen.requester_id if seen else f"c{customer.id}")
    if described is not None:
        ticket = Ticket(
            id="draft-try",
            subject=described.subject,
            status="open",
            channel=described.channel,
            priority=described.priority,
            ticket_type=described.ticket_type,
            tags=described.tags,
            requester_id=requester_id,
            created_at=now,
            updated_at=now,
        )
        source = "the ticket you described"
    elif seen is not None:
        ticket = seen_as_ticket(seen)
        source = f"their latest ticket the sidebar saw, #{seen.ticket_id}"
    else:
        ticket = Ticket("none", "", "open", "web", None, None, (), requester_id, now, now)
        source = "no ticket: the sidebar has not seen one of theirs, so only the profile counts"
    requester = Person(
        id=requester_id, name=customer.name, email=customer.email, phone=customer.phone
    )
    context = ticket_context(session, installation, ticket=ticket, requester=requester, now=now)
    compiled = compile_draft(session, installation, draft)
    facts = context.rule_context.rule_facts()
    evaluation = compiled.evaluate(context.rule_context)
    order = context.order_value
    return TryResult(
        customer=CustomerMatch(customer.id, customer.name, customer.email, customer.external_id),
        ticket=ticket,
        ticket_source=source,
        evaluation=evaluation,
        matched=draft.conditions.matches(facts),
        order_value=None
        if order is None
        else f"{order.description} ({exact_money(order.cents, installation.currency)})",
    )


def seen_as_ticket(seen: SeenTicket) -> Ticket:
    """A seen ticket as the rules read a ticket; fields it does not carry are None or empty."""
    return Ticket(
        id=seen.ticket_id,
        subject=seen.subject,
        status="open",
        channel=seen.channel or "",
        priority=seen.priority,
        ticket_type=seen.ticket_type,
        tags=tuple(seen.tags or ()),
        requester_id=seen.requester_id,
        created_at=seen.first_seen_at,
        updated_at=seen.last_seen_at,
    )


def compile_draft(session: Session, installation: Installation, draft: DomainRule) -> CompiledRules:
    """The draft alone, against the installation's enabled catalog entries."""
    book = rule_book(session, installation)
    enabled = set(
        session.scalars(
            sa.select(ExceptionTypeRow.key).where(
                ExceptionTypeRow.installation_id == installation.id,
                ExceptionTypeRow.enabled.is_(True),
            )
        )
    )
    catalog = [entry for key, entry in book.catalog.items() if key in enabled]
    # A disabled entry is offered by no rule, as in the sidebar.
    offered = tuple(s for s in draft.suggest if s.exception in enabled)
    rule = replace(draft, suggest=offered, enabled=True)
    return CompiledRules.build([rule], catalog, currency=installation.currency)
