"""The banner: tier from twelve-month facts, tenure from the earliest evidence, freshness."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from plugin.domain.helpdesk import ContactHistory, Person, Ticket
from plugin.domain.order_history import CustomerHistory, OrderRecord
from plugin.domain.personas import Persona, parse_conditions
from plugin.domain.recognition import OrderStats, Personalization, build_banner, guidance_for
from plugin.domain.rfm import FIXED_BANDS
from plugin.domain.segments import SEGMENT_FIELDS, SegmentProfile, build_segment_profile
from plugin.domain.tiers import Tier, TierThresholds

NOW = datetime(2026, 11, 23, 12, 0)
REQUESTER = Person(id="9", name="Ada Lovelace", email="ada@example.com")
NO_CONTACT = ContactHistory(ticket_count=1, open_ticket_count=0, last_contact_at=None)


def stats(**changes: object) -> OrderStats:
    values: dict[str, object] = {
        "order_count": 40,
        "total_spend_cents": 900_000,
        "orders_12m": 20,
        "spend_12m_cents": 300_000,
        "first_order_at": datetime(2015, 3, 1),
        "last_order_at": NOW - timedelta(days=3),
        "top_categories": ("Coffee gear",),
        "source": "orders",
        "as_of": NOW - timedelta(hours=1),
    }
    values.update(changes)
    return OrderStats(**values)  # type: ignore[arg-type]


def banner(orders: OrderStats | None, **kwargs: object):
    args: dict[str, object] = {
        "requester": REQUESTER,
        "customer_name": "Ada King",
        "customer_since": date(2016, 1, 1),
        "orders": orders,
        "contact": NO_CONTACT,
        "thresholds": TierThresholds(),
        "now": NOW,
    }
    args.update(kwargs)
    return build_banner(**args)  # type: ignore[arg-type]


def test_high_value_regular() -> None:
    result = banner(stats())
    assert result.tier is Tier.HIGH
    assert result.name == "Ada King"
    assert result.first_name == "Ada"
    assert result.customer_since == date(2015, 3, 1)  # the first order is older than signup
    assert not result.is_stale


def test_lapsed_big_spender_is_low_on_the_last_twelve_months() -> None:
    result = banner(stats(orders_12m=0, spend_12m_cents=0))
    assert result.tier is Tier.LOW
    assert result.has_orders


def test_unknown_requester_is_not_a_customer() -> None:
    result = banner(None, customer_name=None, customer_since=None)
    assert not result.is_customer
    assert result.name == "Ada Lovelace"
    assert result.tier is Tier.LOW
    assert result.data_as_of is None


def test_old_data_is_marked_stale() -> None:
    assert banner(stats(as_of=NOW - timedelta(days=2))).is_stale


def ticket(ticket_id: str, status: str, days_ago: int) -> Ticket:
    created = NOW - timedelta(days=days_ago)
    return Ticket(
        id=ticket_id,
        subject="s",
        status=status,
        channel="email",
        priority=None,
        ticket_type=None,
        tags=(),
        requester_id="9",
        created_at=created,
        updated_at=created,
    )


def test_contact_history_leaves_out_the_current_ticket() -> None:
    history = ContactHistory.from_tickets(
        [ticket("3", "open", 0), ticket("2", "pending", 4), ticket("1", "solved", 30)],
        excluding="3",
    )
    assert history == ContactHistory(
        ticket_count=3, open_ticket_count=1, last_contact_at=NOW - timedelta(days=4)
    )


def profile_for(history_orders: int, *, personas: tuple[str, ...] = ()) -> SegmentProfile:

    orders = [
        OrderRecord(placed_at=NOW - timedelta(days=7 * n + 1), amount_cents=20_000)
        for n in range(history_orders)
    ]
    rules = [
        Persona(
            name=name,
            conditions=parse_conditions(
                {"all": [{"field": "order_count", "operator": "gte", "value": 1}]},
                SEGMENT_FIELDS,
            ),
        )
        for name in personas
    ]
    return build_segment_profile(
        CustomerHistory.of(orders),
        thresholds=TierThresholds(),
        cut_points=FIXED_BANDS,
        personas=rules,
        now=NOW,
    )


def test_personalization_follows_the_tier() -> None:

    high = banner(stats(), profile=profile_for(40))
    assert high.tier is Tier.HIGH and high.personalization is Personalization.PERSONALIZED
    assert high.greets_personally and high.shows_segments
    low = banner(stats(orders_12m=1, spend_12m_cents=5_000), profile=profile_for(1))
    assert low.personalization is Personalization.GENERIC
    assert not low.greets_personally and not low.shows_segments


def test_guidance_comes_most_specific_first() -> None:

    profile = profile_for(40, personas=("Regular",))
    found = guidance_for(
        profile,
        segment_guidance={
            ("tier", "high"): "Skip the basics.",
            ("lifecycle_stage", "active"): "Thank them.",
            ("tier", "low"): "Not shown.",
        },
        persona_guidance={"Regular": "Call back.", "Other": "Not shown."},
    )
    assert [(g.applies_to, g.text) for g in found] == [
        ("Regular", "Call back."),
        ("Active", "Thank them."),
        ("High value", "Skip the basics."),
    ]
