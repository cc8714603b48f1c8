"""Two installations on one database, for the cross-installation sweep of every endpoint.

Installation A is the victim: the full sample data (customers, orders, tickets, the catalog,
rules and their versions, budgets, personas, guidance, checklists, reviews, the action log,
deliveries), with every distinctive text in it (names, emails, ticket subjects, rule, catalog,
persona and checklist names, guidance, action texts, delivery errors) tagged with a marker that
appears nowhere else: `Zqxa<n>`. Installation B is the caller: the demo installation with the
same sample data untagged, so the two share ticket, user and customer ids, as two helpdesks
would, and B holds every kind of credential the service accepts (a sidebar session, an admin's
console session, a Freshdesk installation secret, a push token).

A is seeded first, so its rows have the lower ids: a query that forgets its installation and
takes the first match finds A's row, not B's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from plugin import db
from plugin.clock import utcnow
from plugin.customers import push_tokens
from plugin.customers.console_views import persona_form_from
from plugin.customers.persona_settings import save_persona
from plugin.customers.segment_guidance import save_guidance
from plugin.customers.segmentation import recompute_installation
from plugin.delivery.outbox import DeliveryStatus
from plugin.demo.seed import seed_demo, token_audience
from plugin.goodwill.action_log import ActionKind
from plugin.helpdesks.freshdesk_installations import issue_secret
from plugin.models import (
    Action,
    Base,
    Customer,
    Delivery,
    DemoNote,
    DemoTicket,
    DemoUser,
    ExceptionType,
    FieldMapping,
    Installation,
    Order,
    Persona,
    ReviewItem,
    ReviewTemplate,
    Rule,
    RuleVersion,
    SeenTicket,
    SegmentGuidance,
    SharedCacheEntry,
)
from tests import tokens
from tests.customers.test_console_views import BUSY_REGULARS
from tests.goodwill.test_views import MARGARET, open_ticket_of

MARKER = re.compile(r"zqxa\d+", re.IGNORECASE)
A_ACCOUNT = "shop-a"
A_APP_INSTALLATION_ID = "2"
A_ONLY_TICKET = "777001"  # a ticket only A's helpdesk has
CUSTOMER_EXTERNAL_ID = "C-90001"
ADMIN, AGENT = "80004", "80001"  # the sample data's admin and first agent (in both helpdesks)


class Markers:
    """Hands out the markers A's texts carry, and remembers where each one went."""

    def __init__(self) -> None:
        self.where: dict[str, str] = {}

    def tag(self, where: str) -> str:
        token = f"zqxa{len(self.where) + 1}"
        self.where[token] = where
        return token

    def text(self, value: str | None, where: str) -> str:
        return f"Zqxa{self.tag(where).removeprefix('zqxa')} {value or ''}".rstrip()

    def email(self, value: str | None, where: str) -> str:
        local, _, domain = (value or "someone@example.com").partition("@")
        return f"{self.tag(where)}.{local}@{domain}"


def markers_in(text: str) -> set[str]:
    """The markers of A in a text, lower-cased (zqxa12)."""
    return {found.lower() for found in MARKER.findall(text)}


@dataclass
class World:
    """The seeded database (a file each test copies) and what the sweep aims and signs with."""

    template: Path
    instance: Path
    markers: dict[str, str]  # marker -> which of A's texts carries it
    a_id: int
    b_id: int
    a_key: rsa.RSAPrivateKey
    a_audience: str
    b_audience: str
    ticket: str  # a ticket id both helpdesks have; A's copy carries A's marked subject
    requester: str  # its requester's helpdesk id, the same in both
    a_customer_id: int
    a_customer_email: str
    a_entry_key: str
    a_reason: str
    a_item_id: int
    a_order_external_id: str
    # URL variables (as the URL map names them) -> A's objects of that kind.
    a_objects: dict[str, list[str]]
    b_freshdesk_secret: str
    b_push_token: str
    a_customer_external_id: str = CUSTOMER_EXTERNAL_ID
    # Bearer sessions, got through the real launches: "a_sidebar", "b_sidebar", "b_console".
    sessions: dict[str, str] = field(default_factory=dict)


def seed_world(app: Flask, template: Path) -> World:
    """Seed A (tagged) then B (the demo) in the app's database; return what the sweep needs."""
    now = utcnow()
    instance = Path(app.instance_path)
    markers = Markers()
    a_key = tokens.new_key()
    with db.database(app).sessions() as session:
        # The sample data first goes to what becomes A: renamed, re-keyed and tagged.
        a = seed_demo(session, instance_path=instance, now=now)
        a.account = A_ACCOUNT
        a.display_name = markers.text("Trading", "installations.display_name")
        a.app_installation_id = A_APP_INSTALLATION_ID
        a.token_audience = token_audience(A_APP_INSTALLATION_ID)
        a.public_key_pem = tokens.public_pem(a_key)
        # A has credentials of each kind too; B never sees them.
        issue_secret(a)
        push_tokens.issue(a)
        session.commit()
        # The sample data has no personas or guidance: A gets one of each.
        save_persona(session, a, persona_form_from(MultiDict(BUSY_REGULARS)))
        save_guidance(session, a, {"tier.high": "Thank them by name."})
        session.commit()
        extra = _tag_and_complete(session, a, markers)
        recompute_installation(session, a, now=now)
        session.commit()
        # Then B: the demo installation, with the same sample data, untagged.
        b = seed_demo(session, instance_path=instance, now=now)
        # The company's own id of the customer, the same in both (as pushed or imported).
        for installation in (a, b):
            session.execute(
                sa.update(Customer)
                .where(
                    Customer.installation_id == installation.id,
                    Customer.helpdesk_user_id == extra["requester"],
                )
                .values(external_id=CUSTOMER_EXTERNAL_ID)
            )
        b_freshdesk_secret = issue_secret(b)
        b_push_token = push_tokens.issue(b)
        session.commit()
        assert a.token_audience and b.token_audience
        return World(
            template=template,
            instance=instance,
            markers=markers.where,
            a_id=a.id,
            b_id=b.id,
            a_key=a_key,
            a_audience=a.token_audience,
            b_audience=b.token_audience,
            b_freshdesk_secret=b_freshdesk_secret,
            b_push_token=b_push_token,
            **extra,
        )


def _tag_and_complete(session: Session, a: Installation, markers: Markers) -> dict[str, Any]:
    """Tag A's distinctive texts and add what the sample data lacks (a pending escalation, a
    dead delivery, a ticket only A's helpdesk has, a note, a field mapping, a cached answer)."""
    now = utcnow()

    def rows(model: Any) -> Iterator[Any]:
        yield from session.scalars(
            sa.select(model).where(model.installation_id == a.id).order_by(model.id)
        )

    for customer in rows(Customer):
        customer.name = markers.text(customer.name, f"customers.name #{customer.id}")
        customer.email = markers.email(customer.email, f"customers.email #{customer.id}")
    for user in rows(DemoUser):
        user.name = markers.text(user.name, f"demo_users.name #{user.id}")
        user.email = markers.email(user.email, f"demo_users.email #{user.id}")
    for ticket in rows(DemoTicket):
        ticket.subject = markers.text(ticket.subject, f"demo_tickets.subject #{ticket.id}")
        ticket.description = markers.text(ticket.description, "demo_tickets.description")
    for order in rows(Order):
        if order.tracking_url:
            order.tracking_url = f"https://{markers.tag('orders.tracking_url')}.example.com/"
    for seen in rows(SeenTicket):
        seen.subject = markers.text(seen.subject, f"seen_tickets.subject #{seen.id}")
    for entry in rows(ExceptionType):
        definition = dict(entry.definition)
        definition["name"] = markers.text(definition.get("name"), f"catalog name {entry.key}")
        definition["description"] = markers.text(
            definition.get("description"), f"catalog description {entry.key}"
        )
        for reasons in ("apply_reasons", "dismiss_reasons"):
            definition[reasons] = [
                reason | {"label": markers.text(reason["label"], f"catalog reason {entry.key}")}
                for reason in definition.get(reasons, [])
            ]
        entry.definition = definition
    for version in rows(RuleVersion):
        definition = dict(version.definition)
        definition["name"] = markers.text(definition.get("name"), f"rule name #{version.rule_id}")
        version.definition = definition
        version.author_name = markers.text(version.author_name, "rule_versions.author_name")
        version.note = markers.text(version.note, "rule_versions.note")
    for persona in rows(Persona):
        persona.name = markers.text(persona.name, f"personas.name #{persona.id}")
        persona.description = markers.text(persona.description, "personas.description")
        persona.guidance = markers.text(persona.guidance, "personas.guidance")
    for guidance in rows(SegmentGuidance):
        guidance.text = markers.text(guidance.text, f"segment_guidance.text #{guidance.id}")
    for template in rows(ReviewTemplate):
        template.name = markers.text(template.name, f"review_templates.name #{template.id}")
        template.description = markers.text(template.description, "review_templates.description")
    for item in rows(ReviewItem):
        item.label = markers.text(item.label, f"review_items.label #{item.id}")
        item.help_text = markers.text(item.help_text, "review_items.help_text")
    for action in rows(Action):
        if action.text:
            action.text = markers.text(action.text, f"actions.text #{action.id}")
    session.flush()

    open_ticket = session.scalars(
        sa.select(DemoTicket).where(
            DemoTicket.installation_id == a.id,
            DemoTicket.external_id == open_ticket_of(MARGARET),
        )
    ).one()
    margaret = session.scalars(
        sa.select(Customer).where(
            Customer.installation_id == a.id,
            Customer.helpdesk_user_id == open_ticket.requester_id,
        )
    ).one()
    assert margaret.helpdesk_user_id
    only_a = DemoTicket(
        installation_id=a.id,
        external_id=A_ONLY_TICKET,
        requester_id=margaret.helpdesk_user_id,
        assignee_id=AGENT,
        subject=markers.text("Only in A's helpdesk", "demo_tickets.subject (A only)"),
        description=markers.text("A's own ticket", "demo_tickets.description (A only)"),
        channel="email",
        status="open",
        priority="high",
        ticket_type="problem",
        tags=["late_delivery"],
        created_at=now - timedelta(hours=2),
        updated_at=now - timedelta(hours=1),
    )
    session.add(only_a)
    entry = next(rows(ExceptionType))
    escalation = Action(
        installation_id=a.id,
        ticket_id=open_ticket.external_id,
        requester_id=margaret.helpdesk_user_id,
        customer_id=margaret.id,
        agent_id=AGENT,
        kind=ActionKind.ESCALATED.value,
        exception_key=entry.key,
        amount_cents=4500,
        currency=a.currency,
        reason_code=entry.definition["apply_reasons"][0]["code"],
        text=markers.text("Third late parcel this month", "actions.text (pending escalation)"),
        idempotency_key="a-pending-escalation",
        created_at=now - timedelta(minutes=30),
    )
    session.add(escalation)
    session.add(
        DemoNote(
            installation_id=a.id,
            ticket_id=open_ticket.external_id,
            body=markers.text("A note on A's ticket", "demo_notes.body"),
            marker="a-note",
            created_at=now,
        )
    )
    session.add(
        FieldMapping(
            installation_id=a.id,
            kind="user_field",
            key=markers.tag("field_mappings.key"),
            fact_name="lifetime_value",
        )
    )
    session.add(
        SharedCacheEntry(
            installation_id=a.id,
            key=f"ticket:{open_ticket.external_id}",
            value={"subject": markers.text("cached", "shared_cache.value")},
            fetched_at=now,
        )
    )
    session.flush()
    dead = session.get(Delivery, escalation.id)
    assert dead is not None
    dead.status = DeliveryStatus.DEAD.value
    dead.last_error_kind = "refused"
    dead.last_error = markers.text("the helpdesk refused the note", "deliveries.last_error")
    session.commit()

    template = next(rows(ReviewTemplate))
    item = session.scalars(
        sa.select(ReviewItem).where(ReviewItem.template_id == template.id).order_by(ReviewItem.id)
    ).first()
    assert item is not None
    order_external_id = session.scalars(
        sa.select(Order.external_id).where(Order.customer_id == margaret.id).order_by(Order.id)
    ).first()
    return {
        "ticket": open_ticket.external_id,
        "requester": margaret.helpdesk_user_id,
        "a_customer_id": margaret.id,
        "a_customer_email": margaret.email,
        "a_entry_key": entry.key,
        "a_reason": entry.definition["apply_reasons"][0]["code"],
        "a_item_id": item.id,
        "a_order_external_id": order_external_id,
        "a_objects": {
            "entry_id": [str(entry.id)],
            "rule_id": [str(next(rows(Rule)).id)],
            "escalation_id": [str(escalation.id)],
            "persona_id": [str(next(rows(Persona)).id)],
            "template_id": [str(template.id)],
            "action_id": [str(escalation.id)],
            "ticket_id": [A_ONLY_TICKET, open_ticket.external_id],
            "installation_id": [str(a.id)],  # the helpdesk event endpoints
        },
    }


# --- What A holds, and what must stay true of the whole database -----------------------------


def installation_rows(connection: Connection, installation_id: int) -> dict[str, list[str]]:
    """Every row of the installation, by table (and every row of the tables that have no
    installation), each as text, in a stable order: equal before and after means untouched."""
    found: dict[str, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        query = sa.select(table)
        if table.name == "installations":
            query = query.where(table.c.id == installation_id)
        elif "installation_id" in table.c:
            query = query.where(table.c.installation_id == installation_id)
        found[table.name] = sorted(repr(tuple(row)) for row in connection.execute(query))
    return found


def cross_installation_references(connection: Connection) -> list[str]:
    """Rows that point at another installation's row (an order on A's customer stored for B,
    a check of A's item in B's review...): each as a line saying which; none is the rule."""
    problems = []
    for table in Base.metadata.sorted_tables:
        if "installation_id" not in table.c:
            continue
        for key in table.foreign_keys:
            parent = key.column.table
            if key.parent.name == "installation_id" or "installation_id" not in parent.c:
                continue
            child, owner = table.alias("child"), parent.alias("owner")
            crossed = connection.execute(
                sa.select(sa.func.count())
                .select_from(
                    child.join(owner, child.c[key.parent.name] == owner.c[key.column.name])
                )
                .where(child.c.installation_id != owner.c.installation_id)
            ).scalar_one()
            if crossed:
                problems.append(f"{crossed} {table.name}.{key.parent.name} -> {parent.name}")
    return problems


def changed_tables(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, str]:
    """Which of A's tables changed, with the first row that differs."""
    changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, []), after.get(name, [])
        if old != new:
            gone = [row for row in old if row not in new][:1]
            added = [row for row in new if row not in old][:1]
            changes[name] = f"{len(old)} -> {len(new)} rows; gone {gone}; new {added}"
    return changes
