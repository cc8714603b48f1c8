"""The demo's account review checklist, and months of history for the console's reports.

`seed_reviews` writes one checklist, "High-value account review", for high-value customers
and those RFM calls "can't lose them". `seed_report_history` adds what agents did on the
demo's closed tickets over the past year and more: exceptions applied, dismissed (with their
reasons), escalated and decided, and account reviews checked and completed, each at its
ticket's time, so the reports have something to show over any range.

The history never disturbs what the sidebar shows today: in the last 90 days it holds only
dismissals and reviews on closed tickets (no grant, so goodwill, caps and this month's budgets
stay as `exceptions_seed` sets them), and its grants are older than 90 days and never the
free sample, whose cap looks back a year.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.demo.exceptions_seed import SEED_AGENT
from plugin.domain.reviews import ItemRow, TemplateForm
from plugin.goodwill.action_log import ActionKind
from plugin.models import (
    AccountReview,
    Action,
    Customer,
    CustomerSegment,
    DemoTicket,
    Installation,
    ReviewCheck,
    ReviewItem,
    ReviewTemplate,
    Rule,
)
from plugin.reviews.actions import ReviewActionKind
from plugin.reviews.checklists import save_template

AGENTS = ("80001", "80002", "80003")
CLOSED = ("closed", "solved")
# Grants only on tickets older than this: goodwill looks back 90 days.
GRANTS_OLDER_THAN_DAYS = 91
# Reviews on the closed tickets of the last few months.
REVIEW_WITHIN_DAYS = 150

HIGH_VALUE_REVIEW = TemplateForm(
    name="High-value account review",
    description="A full account check before replying: our best customers get no surprises.",
    priority="10",
    audience={"tier": ["high"], "rfm_segment": ["cant_lose_them"]},
    items=(
        ItemRow(
            label="Confirm the delivery address and preferred carrier",
            help="Compare the order's address with the customer's last three orders.",
        ),
        ItemRow(
            label="Check for open orders, returns or refunds in progress",
            help="Anything still open is mentioned in the reply, with its date.",
        ),
        ItemRow(
            label="Review goodwill already given",
            help="The banner's goodwill line: avoid granting twice for the same problem.",
        ),
        ItemRow(
            label="Offer a named agent for follow-ups",
            help="Give your name and say replies on this ticket reach you.",
            required=False,
        ),
        ItemRow(
            label="Note product feedback for the account team",
            help="Tag the ticket product_feedback if the customer said what they think.",
            required=False,
        ),
    ),
)


def seed_reviews(session: Session, installation: Installation, *, now: datetime) -> int:
    """Replace the installation's review checklists and reviews with the demo's; the template id."""
    _wipe(session, installation.id)
    template = save_template(session, installation, HIGH_VALUE_REVIEW, now=now)
    assert template.template_id is not None
    return template.template_id


def _wipe(session: Session, installation_id: int) -> None:
    session.execute(
        sa.delete(Action).where(
            Action.installation_id == installation_id,
            Action.kind.in_([kind.value for kind in ReviewActionKind]),
        )
    )
    for model in (ReviewCheck, AccountReview, ReviewItem, ReviewTemplate):
        session.execute(sa.delete(model).where(model.installation_id == installation_id))


@dataclass(frozen=True)
class _Gesture:
    exception: str
    rule: str | None
    cents: int
    apply_reasons: tuple[str, ...]
    dismiss_reasons: tuple[str, ...]


GESTURES = (
    _Gesture(
        "waive_shipping_fee",
        "late_delivery_high_value",
        900,
        ("late_delivery", "damaged_in_transit"),
        ("not_eligible", "customer_declined", "already_resolved"),
    ),
    _Gesture(
        "expedited_shipping",
        "late_delivery_high_value",
        1800,
        ("late_delivery", "urgent_need", "reshipment"),
        ("not_eligible", "already_shipped"),
    ),
    _Gesture(
        "goodwill_credit",
        "damaged_item_high_value",
        2200,
        ("service_failure", "loyalty"),
        ("not_eligible", "replacement_sent"),
    ),
    _Gesture(
        "priority_handling",
        "high_value_incident",
        0,
        ("top_customer", "business_critical"),
        ("not_eligible", "already_resolved"),
    ),
    _Gesture("free_sample", "deal_seeker_sample", 300, (), ("not_eligible", "customer_declined")),
)


def seed_report_history(
    session: Session, installation: Installation, *, template_id: int, now: datetime
) -> int:
    """Add the demo's past actions and reviews on its closed tickets; how many actions."""
    rng = random.Random(6)
    rules = dict(
        session.execute(
            sa.select(Rule.key, Rule.id).where(Rule.installation_id == installation.id)
        ).all()
    )
    tiers = dict(
        session.execute(
            sa.select(Customer.helpdesk_user_id, CustomerSegment.tier)
            .join(CustomerSegment, CustomerSegment.customer_id == Customer.id)
            .where(Customer.installation_id == installation.id)
        ).all()
    )
    customer_ids = dict(
        session.execute(
            sa.select(Customer.helpdesk_user_id, Customer.id).where(
                Customer.installation_id == installation.id
            )
        ).all()
    )
    items = list(
        session.scalars(
            sa.select(ReviewItem)
            .where(ReviewItem.template_id == template_id)
            .order_by(ReviewItem.position)
        )
    )
    tickets = session.scalars(
        sa.select(DemoTicket)
        .where(DemoTicket.installation_id == installation.id, DemoTicket.status.in_(CLOSED))
        .order_by(DemoTicket.created_at)
    ).all()
    written = 0
    for number, ticket in enumerate(tickets):
        tier = tiers.get(ticket.requester_id)
        if tier is None:
            continue  # not a customer: nothing to grant or review
        at = ticket.created_at + timedelta(hours=2)
        age = (now - at).days
        base = {
            "installation_id": installation.id,
            "ticket_id": ticket.external_id,
            "requester_id": ticket.requester_id,
            "customer_id": customer_ids.get(ticket.requester_id),
            "currency": installation.currency,
            "text": "",
        }
        for index, gesture in enumerate(rng.sample(GESTURES, rng.choice((1, 1, 2)))):
            agent = rng.choice(AGENTS)
            when = at + timedelta(minutes=10 * index)
            key = f"demo-history-{number:03d}-{index}"
            grant = age >= GRANTS_OLDER_THAN_DAYS and gesture.apply_reasons and rng.random() < 0.6
            common = base | {
                "agent_id": agent,
                "exception_key": gesture.exception,
                "rule_id": rules.get(gesture.rule) if gesture.rule else None,
                "rule_version": 1 if gesture.rule else None,
            }
            if not grant:
                session.add(
                    Action(
                        kind=ActionKind.DISMISSED.value,
                        reason_code=rng.choice(gesture.dismiss_reasons),
                        idempotency_key=key,
                        created_at=when,
                        **common,
                    )
                )
                written += 1
                continue
            cents = gesture.cents + rng.choice((0, 0, 300, 700)) if gesture.cents else None
            charged = {"budget_field": "tier", "budget_value": tier} if cents else {}
            reason = rng.choice(gesture.apply_reasons)
            # Credits above the rule's $25 approval threshold went to a supervisor first.
            if gesture.exception == "goodwill_credit" and cents is not None and cents > 2500:
                escalation = Action(
                    kind=ActionKind.ESCALATED.value,
                    amount_cents=cents,
                    reason_code=reason,
                    idempotency_key=key + "-e",
                    created_at=when,
                    **common,
                    **charged,
                )
                session.add(escalation)
                session.flush()
                approved = rng.random() < 0.7
                session.add(
                    Action(
                        kind=(ActionKind.APPROVED if approved else ActionKind.REFUSED).value,
                        amount_cents=cents,
                        reason_code=reason,
                        escalation_id=escalation.id,
                        idempotency_key=key,
                        created_at=when + timedelta(hours=3),
                        **(common | {"agent_id": SEED_AGENT if agent != SEED_AGENT else "80004"}),
                        **charged,
                    )
                )
                written += 2
                continue
            session.add(
                Action(
                    kind=ActionKind.APPLIED.value,
                    amount_cents=cents,
                    reason_code=reason,
                    idempotency_key=key,
                    created_at=when,
                    **common,
                    **charged,
                )
            )
            written += 1
        if tier == "high" and age <= REVIEW_WITHIN_DAYS and items:
            written += _past_review(session, rng, base, ticket, template_id, items, at, number)
    session.commit()
    return written


def _past_review(
    session: Session,
    rng: random.Random,
    base: dict[str, object],
    ticket: DemoTicket,
    template_id: int,
    items: list[ReviewItem],
    at: datetime,
    number: int,
) -> int:
    """A review on a past ticket: most completed, some left with required items open."""
    agent = rng.choice(AGENTS)
    review = AccountReview(
        installation_id=base["installation_id"],
        ticket_id=ticket.external_id,
        template_id=template_id,
        requester_id=ticket.requester_id,
        customer_id=base["customer_id"],
        started_at=at,
    )
    session.add(review)
    session.flush()
    complete = rng.random() < 0.7
    # Optional items first when it is completed, so the last check is the one that completes.
    chosen = [i for i in items if not i.required and complete and rng.random() < 0.5]
    chosen += [i for i in items if i.required] if complete else items[: rng.choice((1, 2))]
    when = at
    written = 0
    for position, item in enumerate(chosen):
        when = at + timedelta(minutes=3 * (position + 1))
        session.add(
            ReviewCheck(
                installation_id=review.installation_id,
                review_id=review.id,
                item_id=item.id,
                checked_by=agent,
                checked_at=when,
            )
        )
        session.add(
            Action(
                kind=ReviewActionKind.CHECKED.value,
                agent_id=agent,
                exception_key="",
                review_template_id=template_id,
                review_item_id=item.id,
                idempotency_key=f"demo-review-{number:03d}-{position}",
                created_at=when,
                **base,
            )
        )
        written += 1
    if complete:
        review.completed_at = when
        review.completed_by = agent
        session.add(
            Action(
                kind=ReviewActionKind.COMPLETED.value,
                agent_id=agent,
                exception_key="",
                review_template_id=template_id,
                idempotency_key=f"demo-review-{number:03d}-done",
                created_at=when,
                **base,
            )
        )
        written += 1
    return written
