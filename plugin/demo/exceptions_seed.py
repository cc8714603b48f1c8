"""The demo's exception catalog, rules and budgets, and a little history of what was granted.

Written for the demo's stories: a high-value regular whose delivery is late is offered an
expedited upgrade; a lapsed customer a goodwill credit (once per 90 days); deal seekers a free
sample rather than a credit; a small business's ticket goes to the experienced agents. The
history gives the "why" something to say ("$38 granted in the last 90 days"), and leaves the
small-business budget running out, so the card shows that too.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.gestures.interface import GestureKind
from plugin.goodwill.action_log import ActionKind
from plugin.goodwill.catalog import month_start
from plugin.goodwill.rulebook import Author
from plugin.goodwill.transfer import EXPORT_FORMAT, import_rules
from plugin.models import (
    Action,
    Customer,
    DemoShopState,
    DemoTicket,
    Gesture,
    GestureKindSetting,
    Installation,
    Rule,
    RuleVersion,
    SegmentBudget,
)
from plugin.models import ExceptionType as ExceptionTypeRow

AUTHOR = Author(id=None, name="Demo set-up")
SEED_AGENT = "80001"

_NOT_ELIGIBLE = {"code": "not_eligible", "label": "Not eligible"}
_DECLINED = {"code": "customer_declined", "label": "Customer declined"}
_RESOLVED = {"code": "already_resolved", "label": "Already resolved another way"}

CATALOG: list[dict[str, Any]] = [
    {
        "key": "waive_shipping_fee",
        "name": "Waived shipping fee",
        "description": "The order's shipping fee back, as a one-time code for the next order.",
        "currency": "USD",
        "cost": {"kind": "fixed", "cents": 900},
        # Given in the demo shop: a one-time code for $9 off, this customer's only.
        "gesture": {"kind": "discount_code", "value": "fixed", "expires_in_days": 60},
        "apply_reasons": [
            {"code": "late_delivery", "label": "Late delivery"},
            {"code": "damaged_in_transit", "label": "Damaged in transit"},
            {"code": "goodwill", "label": "Goodwill"},
        ],
        "dismiss_reasons": [_NOT_ELIGIBLE, _DECLINED, _RESOLVED],
    },
    {
        "key": "expedited_shipping",
        "name": "Expedited shipping upgrade",
        "description": "Ship the order (or its replacement) by express, at no charge.",
        "currency": "USD",
        "cost": {"kind": "fixed", "cents": 1800},
        "apply_reasons": [
            {"code": "late_delivery", "label": "Late delivery"},
            {"code": "urgent_need", "label": "Customer needs it urgently"},
            {"code": "reshipment", "label": "Reshipping a lost order"},
        ],
        "dismiss_reasons": [
            _NOT_ELIGIBLE,
            {"code": "already_shipped", "label": "Already on its way"},
            _DECLINED,
        ],
    },
    {
        "key": "goodwill_credit",
        "name": "10% goodwill credit",
        "description": "Store credit of 10% of the order, for a service failure or a win-back.",
        "currency": "USD",
        "cost": {"kind": "percent", "percent": 10, "min_cents": 500, "max_cents": 5000},
        "editable": {"min_cents": 500, "max_cents": 7500},
        # Given in the demo shop: a gift card of the amount applied, at most 150 % of the order.
        "gesture": {"kind": "gift_card", "expires_in_days": 365},
        "apply_reasons": [
            {"code": "service_failure", "label": "Service failure"},
            {"code": "win_back", "label": "Win back a lapsed customer"},
            {"code": "loyalty", "label": "Loyalty thank-you"},
        ],
        "dismiss_reasons": [
            _NOT_ELIGIBLE,
            _DECLINED,
            {"code": "replacement_sent", "label": "Replacement sent instead"},
        ],
    },
    {
        "key": "free_sample",
        "name": "Free sample with the next order",
        "description": "A sample of a new coffee or tea, added to the next order.",
        "currency": "USD",
        "cost": {"kind": "fixed", "cents": 600},
        "apply_reasons": [
            {"code": "delight", "label": "A small surprise"},
            {"code": "try_something_new", "label": "Suggest something new"},
        ],
        "dismiss_reasons": [_NOT_ELIGIBLE, _DECLINED],
    },
    {
        "key": "priority_handling",
        "name": "Priority handling",
        "description": "Route to the experienced agents and answer within the hour.",
        "currency": "USD",
        "cost": {"kind": "fixed", "cents": 0},
        "apply_reasons": [
            {"code": "top_customer", "label": "Top customer"},
            {"code": "business_critical", "label": "Business-critical order"},
        ],
        "dismiss_reasons": [_NOT_ELIGIBLE, _RESOLVED],
    },
]

# A late or lost delivery, as the demo's tickets say it in their tags or subject.
LATE_DELIVERY: list[dict[str, Any]] = [
    {"field": "ticket_tags", "operator": "contains", "value": "late_delivery"},
    {"field": "ticket_tags", "operator": "contains", "value": "missing_package"},
    {"field": "ticket_tags", "operator": "contains", "value": "expedited_shipping"},
    {
        "field": "ticket_subject",
        "operator": "contains_any_word",
        "value": ["late", "delayed", "not here", "hasn't arrived", "expedite"],
    },
]
NOT_DEAL_SEEKER = {"field": "behaviour_tags", "operator": "not_contains", "value": "deal_seeker"}

RULES: list[dict[str, Any]] = [
    {
        "key": "business_late_delivery",
        "name": "Small business, delivery problem",
        "priority": 5,
        "conditions": {
            "all": [{"field": "behaviour_tags", "operator": "contains", "value": "small_business"}],
            "any": LATE_DELIVERY,
        },
        "suggest": [
            {"exception": "expedited_shipping", "priority": 0},
            {"exception": "waive_shipping_fee", "priority": 1},
        ],
        "actions": [{"kind": "raise_priority", "value": "urgent"}],
        "cap": {"times": 3, "days": 30},
        "budget": {"field": "behaviour_tags", "value": "small_business"},
    },
    {
        "key": "late_delivery_high_value",
        "name": "High value, late delivery",
        "priority": 10,
        "conditions": {
            "all": [{"field": "tier", "operator": "is", "value": "high"}],
            "any": LATE_DELIVERY,
        },
        "suggest": [
            {"exception": "expedited_shipping", "priority": 0},
            {"exception": "waive_shipping_fee", "priority": 1},
        ],
        "actions": [{"kind": "raise_priority", "value": "high"}],
        "cap": {"times": 2, "days": 90},
        "budget": {"field": "tier", "value": "high"},
    },
    {
        "key": "win_back_lapsed",
        "name": "Lapsed regulars: a goodwill credit to win them back",
        "priority": 15,
        "conditions": {
            "all": [
                {"field": "lifecycle_stage", "operator": "in", "value": ["at_risk", "lapsed"]},
                NOT_DEAL_SEEKER,
            ]
        },
        "suggest": [{"exception": "goodwill_credit"}],
        "cap": {"times": 1, "days": 90},
        "approval_threshold_cents": 2500,
        "budget": {"field": "lifecycle_stage", "value": "lapsed"},
    },
    {
        "key": "small_business_route",
        "name": "Small business: to the experienced agents",
        "priority": 20,
        "conditions": {
            "all": [{"field": "behaviour_tags", "operator": "contains", "value": "small_business"}]
        },
        "actions": [
            {"kind": "route_to_group", "value": "Experienced agents"},
            {"kind": "add_tag", "value": "regulars_business"},
        ],
    },
    {
        "key": "damaged_item_high_value",
        "name": "High value, damaged on arrival",
        "priority": 25,
        "conditions": {
            "all": [
                {"field": "tier", "operator": "is", "value": "high"},
                {"field": "ticket_tags", "operator": "contains", "value": "damaged_item"},
                NOT_DEAL_SEEKER,
            ]
        },
        "suggest": [{"exception": "goodwill_credit"}],
        "cap": {"times": 1, "days": 90},
        "approval_threshold_cents": 2500,
        "budget": {"field": "tier", "value": "high"},
    },
    {
        "key": "medium_late_delivery",
        "name": "Medium value, late delivery",
        "priority": 30,
        "conditions": {
            "all": [{"field": "tier", "operator": "is", "value": "medium"}],
            "any": LATE_DELIVERY,
        },
        "suggest": [{"exception": "waive_shipping_fee"}],
        "cap": {"times": 1, "days": 90},
        "budget": {"field": "tier", "value": "medium"},
    },
    {
        "key": "deal_seeker_sample",
        "name": "Deal seekers: a sample, not a credit",
        "priority": 40,
        "conditions": {
            "all": [{"field": "behaviour_tags", "operator": "contains", "value": "deal_seeker"}]
        },
        "suggest": [{"exception": "free_sample"}],
        "cap": {"times": 1, "days": 365},
        "budget": {"field": "behaviour_tags", "value": "deal_seeker"},
    },
    {
        "key": "high_value_incident",
        "name": "High value incident: priority handling",
        "priority": 50,
        "conditions": {
            "all": [
                {"field": "tier", "operator": "is", "value": "high"},
                {"field": "ticket_type", "operator": "is", "value": "incident"},
            ]
        },
        "suggest": [{"exception": "priority_handling"}],
    },
]

BUDGETS: list[dict[str, Any]] = [
    {"segment": {"field": "tier", "value": "high"}, "monthly_cents": 150_000},
    {"segment": {"field": "tier", "value": "medium"}, "monthly_cents": 60_000},
    {"segment": {"field": "tier", "value": "low"}, "monthly_cents": 20_000},
    {"segment": {"field": "lifecycle_stage", "value": "lapsed"}, "monthly_cents": 30_000},
    {"segment": {"field": "behaviour_tags", "value": "small_business"}, "monthly_cents": 15_000},
    {"segment": {"field": "behaviour_tags", "value": "deal_seeker"}, "monthly_cents": 10_000},
]


@dataclass(frozen=True)
class _Granted:
    """A grant in the demo's history: to whom, what, for how much, when, under which rule."""

    requester_id: str
    exception: str
    cents: int
    days_ago: int | None  # None: earlier this month
    reason: str
    rule: str | None
    budget: tuple[str, str] | None


HIGH = ("tier", "high")
LAPSED = ("lifecycle_stage", "lapsed")
BUSINESS = ("behaviour_tags", "small_business")
GOODWILL, EXPEDITED, WAIVED = "goodwill_credit", "expedited_shipping", "waive_shipping_fee"
LATE_HIGH, LATE_BUSINESS = "late_delivery_high_value", "business_late_delivery"
HISTORY = (
    # Margaret Okafor: "$38 granted in the last 90 days".
    _Granted("90001", GOODWILL, 2000, 75, "service_failure", "damaged_item_high_value", HIGH),
    _Granted("90001", EXPEDITED, 1800, 40, "late_delivery", LATE_HIGH, HIGH),
    # Ingrid Sørensen had her win-back credit a month ago: the 90-day cap withholds another.
    _Granted("90032", GOODWILL, 800, 30, "win_back", "win_back_lapsed", LAPSED),
    # This month so far: the small-business budget is 80% used.
    _Granted("90026", GOODWILL, 7500, None, "service_failure", None, BUSINESS),
    _Granted("90026", EXPEDITED, 1800, None, "late_delivery", LATE_BUSINESS, BUSINESS),
    _Granted("90026", WAIVED, 900, None, "late_delivery", LATE_BUSINESS, BUSINESS),
    _Granted("90026", EXPEDITED, 1800, None, "reshipment", LATE_BUSINESS, BUSINESS),
    _Granted("90005", WAIVED, 900, None, "damaged_in_transit", LATE_HIGH, HIGH),
    _Granted("90004", EXPEDITED, 1800, None, "urgent_need", LATE_HIGH, HIGH),
)


# The gesture kinds the demo gives in its shop: the waived fee as a code, the credit as a card.
DEMO_KINDS = (GestureKind.DISCOUNT_CODE, GestureKind.GIFT_CARD)


def demo_rules_file() -> dict[str, Any]:
    """The demo's catalog, budgets and rules in the shape `flask rules import` reads (a copy)."""
    return copy.deepcopy(
        {
            "format": EXPORT_FORMAT,
            "currency": "USD",
            "exceptions": CATALOG,
            "budgets": BUDGETS,
            "rules": RULES,
        }
    )


def seed_exceptions(session: Session, installation: Installation, *, now: datetime) -> None:
    """Replace the installation's catalog, rules, budgets and actions with the demo's, and
    its gestures: the kinds the demo gives (DEMO_KINDS) on, its demo shop emptied."""
    for model in (
        Gesture,
        Action,
        RuleVersion,
        Rule,
        SegmentBudget,
        ExceptionTypeRow,
        GestureKindSetting,
        DemoShopState,
    ):
        session.execute(sa.delete(model).where(model.installation_id == installation.id))
    session.add_all(
        GestureKindSetting(
            installation_id=installation.id, kind=kind.value, enabled=True, updated_at=now
        )
        for kind in DEMO_KINDS
    )
    import_rules(
        session,
        installation,
        demo_rules_file(),
        author=AUTHOR,
        note="The demo's catalog and rules",
        now=now,
    )
    rule_ids = {
        key: rule_id
        for key, rule_id in session.execute(
            sa.select(Rule.key, Rule.id).where(Rule.installation_id == installation.id)
        )
    }
    this_month = month_start(now)
    for number, grant in enumerate(HISTORY, start=1):
        customer = session.scalars(
            sa.select(Customer).where(
                Customer.installation_id == installation.id,
                Customer.helpdesk_user_id == grant.requester_id,
            )
        ).first()
        # Later this month's grants come closer to now, all of them within the month.
        at = (
            max(this_month, now - timedelta(days=number))
            if grant.days_ago is None
            else now - timedelta(days=grant.days_ago)
        )
        session.add(
            Action(
                installation_id=installation.id,
                ticket_id=_ticket_of(session, installation.id, grant.requester_id, at),
                requester_id=grant.requester_id,
                customer_id=customer.id if customer else None,
                agent_id=SEED_AGENT,
                kind=ActionKind.APPLIED.value,
                exception_key=grant.exception,
                amount_cents=grant.cents,
                currency="USD",
                reason_code=grant.reason,
                text="",
                rule_id=rule_ids.get(grant.rule) if grant.rule else None,
                rule_version=1 if grant.rule else None,
                budget_field=grant.budget[0] if grant.budget else None,
                budget_value=grant.budget[1] if grant.budget else None,
                idempotency_key=f"demo-seed-{number:04d}",
                created_at=at,
            )
        )
    session.commit()


def _ticket_of(session: Session, installation_id: int, requester_id: str, at: datetime) -> str:
    """Where a past grant was recorded: the requester's last ticket opened before it, else
    their first ticket (a real ticket either way, so its note can be delivered)."""
    of_requester = sa.select(DemoTicket.external_id).where(
        DemoTicket.installation_id == installation_id, DemoTicket.requester_id == requester_id
    )
    before = session.scalars(
        of_requester.where(DemoTicket.created_at <= at).order_by(DemoTicket.created_at.desc())
    ).first()
    first = session.scalars(of_requester.order_by(DemoTicket.created_at)).first()
    return before or first or "history"
