"""Create the demo installation and fill it with the sample customers, orders and tickets."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers.orders import refresh_order_facts
from plugin.customers.segmentation import recompute_installation
from plugin.demo import signing
from plugin.demo.console_seed import seed_console
from plugin.demo.effects_seed import seed_effects
from plugin.demo.exceptions_seed import seed_exceptions
from plugin.demo.reviews_seed import seed_report_history, seed_reviews
from plugin.demo.sample_data import SampleData, build_sample_data
from plugin.helpdesks import demo
from plugin.models import (
    Customer,
    CustomerFact,
    CustomerSegment,
    DemoTicket,
    DemoUser,
    Installation,
    Order,
    SeenTicket,
    SegmentBaseline,
)

ACCOUNT = "demo"
APP_INSTALLATION_ID = "1"
ISSUER = "demo.localhost"
ORDER_SOURCE = "demo"


def token_audience(app_installation_id: str) -> str:
    """Shape the audience the way Zendesk does: the installation's API URL."""
    return f"https://{ISSUER}/api/v2/apps/installations/{app_installation_id}.json"


def demo_installation(session: Session) -> Installation | None:
    return session.scalars(
        sa.select(Installation).where(
            Installation.platform == demo.PLATFORM, Installation.account == ACCOUNT
        )
    ).first()


def ensure_demo_installation(session: Session, *, instance_path: Path) -> Installation:
    """Return the demo installation, creating it and its key pair on first run."""
    key = signing.load_or_create_private_key(instance_path)
    installation = demo_installation(session)
    if installation is None:
        installation = Installation(
            platform=demo.PLATFORM,
            account=ACCOUNT,
            display_name="Demo Coffee & Home",
            app_installation_id=APP_INSTALLATION_ID,
            token_audience=token_audience(APP_INSTALLATION_ID),
        )
        session.add(installation)
    installation.public_key_pem = signing.public_key_pem(key)
    session.flush()
    return installation


def seed_demo(session: Session, *, instance_path: Path, now: datetime) -> Installation:
    """Replace the demo installation's data with a fresh copy of the sample data."""
    installation = ensure_demo_installation(session, instance_path=instance_path)
    _wipe(session, installation.id)
    data = build_sample_data(now.date())
    _insert_helpdesk(session, installation.id, data)
    insert_sample_customers(session, installation.id, data, now=now)
    recompute_installation(session, installation, now=now)
    seed_exceptions(session, installation, now=now)
    seed_console(session, installation, now=now)
    template_id = seed_reviews(session, installation, now=now)
    seed_report_history(session, installation, template_id=template_id, now=now)
    seed_effects(session, installation, now=now)
    return installation


def _wipe(session: Session, installation_id: int) -> None:
    for model in (
        CustomerSegment,
        SegmentBaseline,
        SeenTicket,
        CustomerFact,
        Order,
        Customer,
        DemoTicket,
        DemoUser,
    ):
        session.execute(sa.delete(model).where(model.installation_id == installation_id))


def _insert_helpdesk(session: Session, installation_id: int, data: SampleData) -> None:
    end_users = [
        {
            "external_id": c.helpdesk_user_id,
            "name": c.name,
            "email": c.email,
            "phone": c.phone,
            "role": "end-user",
        }
        for c in data.customers
    ]
    agents = [
        {
            "external_id": a.helpdesk_user_id,
            "name": a.name,
            "email": a.email,
            "phone": None,
            "role": a.role,
        }
        for a in data.agents
    ]
    session.execute(
        sa.insert(DemoUser),
        [{"installation_id": installation_id, **user} for user in (*end_users, *agents)],
    )
    session.execute(
        sa.insert(DemoTicket),
        [
            {
                "installation_id": installation_id,
                "external_id": ticket.external_id,
                "requester_id": ticket.requester_user_id,
                "assignee_id": ticket.assignee_user_id,
                "subject": ticket.subject,
                "description": ticket.description,
                "channel": ticket.channel,
                "status": ticket.status,
                "priority": ticket.priority,
                "ticket_type": ticket.ticket_type,
                "tags": list(ticket.tags),
                "created_at": ticket.created_at,
                "updated_at": ticket.updated_at,
            }
            for ticket in data.tickets
        ],
    )


def insert_sample_customers(
    session: Session, installation_id: int, data: SampleData, *, now: datetime
) -> None:
    """Add the sample customers and their orders to an installation, and their order facts.

    The demo uses it for its own installation; tests and benchmarks use it to give a Zendesk
    installation (pointed at a fake Zendesk with the same people) a customer base.
    """
    buyers = [sample for sample in data.customers if sample.orders]
    customers = [
        Customer(
            installation_id=installation_id,
            # Known to the store only by phone: no helpdesk id or email there, its own name.
            helpdesk_user_id=None if sample.phone_only_store_name else sample.helpdesk_user_id,
            email=None if sample.phone_only_store_name else sample.email.lower(),
            phone=sample.phone,
            name=sample.phone_only_store_name or sample.name,
            customer_since=sample.customer_since,
        )
        for sample in buyers
    ]
    session.add_all(customers)
    session.flush()
    customer_ids = {s.helpdesk_user_id: c.id for s, c in zip(buyers, customers, strict=True)}
    session.execute(
        sa.insert(Order),
        [
            {
                "installation_id": installation_id,
                "customer_id": customer_ids[sample.helpdesk_user_id],
                "external_id": order.external_id,
                "placed_at": order.placed_at,
                "amount_cents": order.amount_cents,
                "discount_code": order.discount_code,
                "category": order.category,
                "status": order.status,
                "fulfillment_status": order.fulfillment_status,
                "tracking_url": order.tracking_url,
                "item_count": order.item_count,
                "source": ORDER_SOURCE,
            }
            for sample in data.customers
            for order in sample.orders
        ],
    )
    refresh_order_facts(session, installation_id=installation_id, now=now)
