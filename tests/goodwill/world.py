"""The goodwill services' test world: an installation with the demo catalog, a high-tier budget,
a late-delivery rule and a high-value customer, and helpers that act on a ticket and read its card.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from plugin.demo.exceptions_seed import CATALOG
from plugin.domain.helpdesk import Person, Ticket
from plugin.goodwill.actions import ActionOutcome, record_action
from plugin.goodwill.catalog import save_exception_type, set_budget
from plugin.goodwill.rulebook import Author, create_rule
from plugin.goodwill.suggestions import SuggestionsCard, suggestions_for
from plugin.models import Customer, Installation, Order

NOW = datetime(2026, 11, 23, 12, 0)
ALICE = Author(id="80001", name="Alice Supervisor")
BOB = Author(id="80002", name="Bob Lead")
HIGH_SPENDER = "11"
LATE = {"field": "ticket_tags", "operator": "contains", "value": "late_delivery"}


def installation(session: Session, account: str) -> Installation:
    row = Installation(platform="zendesk", account=account, display_name=account)
    session.add(row)
    session.commit()
    return row


def high_value_customer(session: Session, inst: Installation, helpdesk_id: str) -> Customer:
    """Fourteen orders of $150 every 15 days: high value by the default tier bars."""
    customer = Customer(
        installation_id=inst.id,
        helpdesk_user_id=helpdesk_id,
        email=f"{helpdesk_id}@example.com",
        name=f"Customer {helpdesk_id}",
    )
    session.add(customer)
    session.flush()
    for i in range(14):
        session.add(
            Order(
                installation_id=inst.id,
                customer_id=customer.id,
                external_id=f"ORD-{inst.account}-{helpdesk_id}-{i}",
                placed_at=NOW - timedelta(days=15 * i + 2),
                amount_cents=15_000 if i else 20_000,  # the latest order is $200
                source="test",
            )
        )
    session.commit()
    return customer


def person(helpdesk_id: str) -> Person:
    return Person(
        id=helpdesk_id, name=f"Customer {helpdesk_id}", email=f"{helpdesk_id}@example.com"
    )


def ticket(ticket_id: str, requester: str = HIGH_SPENDER, subject: str = "Order is late") -> Ticket:
    return Ticket(
        id=ticket_id,
        subject=subject,
        status="open",
        channel="email",
        priority="normal",
        ticket_type="incident",
        tags=("late_delivery",),
        requester_id=requester,
        created_at=NOW,
        updated_at=NOW,
    )


def add_demo_catalog(session: Session, inst: Installation) -> None:
    for entry in CATALOG:
        save_exception_type(session, inst, entry, now=NOW)


def late_rule(**changes: Any) -> dict[str, Any]:
    """High value and late: a goodwill credit, once per 90 days, charged to the high tier."""
    return {
        "name": "High value, late delivery",
        "conditions": {"all": [{"field": "tier", "operator": "is", "value": "high"}, LATE]},
        "suggest": [{"exception": "goodwill_credit"}, {"exception": "waive_shipping_fee"}],
        "cap": {"times": 1, "days": 90},
        "approval_threshold_cents": 2500,
        "budget": {"field": "tier", "value": "high"},
    } | changes


def set_up(session: Session, account: str = "acme", **rule: Any) -> Installation:
    """An installation with the demo catalog, a high-tier budget, one rule and one customer."""
    inst = installation(session, account)
    add_demo_catalog(session, inst)
    set_budget(
        session,
        inst,
        {"segment": {"field": "tier", "value": "high"}, "monthly_cents": 10_000},
        now=NOW,
    )
    create_rule(session, inst, key="late_high", definition=late_rule(**rule), author=ALICE, now=NOW)
    high_value_customer(session, inst, HIGH_SPENDER)
    return inst


def act(
    session: Session,
    inst: Installation,
    ticket_id: str = "501",
    *,
    now: datetime = NOW,
    requester: str = HIGH_SPENDER,
    **fields: object,
) -> ActionOutcome:
    values: dict[str, object] = {
        "kind": "apply",
        "exception": "waive_shipping_fee",
        "reason": "late_delivery",
        "idempotency_key": f"key-{ticket_id}-{fields.get('exception', 'waive')}-{now:%f%S}",
    } | fields
    return record_action(
        session,
        inst,
        ticket=ticket(ticket_id, requester),
        requester=person(requester),
        agent_id="80001",
        fields=values,
        now=now,
    )


def card(
    session: Session, inst: Installation, ticket_id: str = "501", *, now: datetime = NOW
) -> SuggestionsCard:
    return suggestions_for(
        session, inst, ticket=ticket(ticket_id), requester=person(HIGH_SPENDER), now=now
    )


def offered(session: Session, inst: Installation, ticket_id: str = "501", **kw: Any) -> list[str]:
    return [offer.key for offer in card(session, inst, ticket_id, **kw).offers]
