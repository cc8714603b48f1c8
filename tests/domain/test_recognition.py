"""The banner: tier from twelve-month facts, tenure from the earliest evidence, freshness."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from plugin.domain.helpdesk import ContactHistory, Person, Ticket
from plugin.domain.order_history import CustomerHistory, OrderRecord
from plugin.domain.personas import Persona, parse_conditions
from plugin.domain.recognition import (
    MatchedBy,
    OrderStats,
    Personalization,
    build_banner,
    guidance_for,
)
from plugin.domain.rfm import FIXED_BANDS, RFM_MIN_BASE
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
    # The helpdesk's name leads; the store's follows because it differs (issue 15).
    assert result.name == "Ada Lovelace" and result.store_name == "Ada King"
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


def lapsed_profile() -> SegmentProfile:
    """Seven years of monthly-ish orders that stopped two years ago: lapsed."""
    orders = [
        OrderRecord(placed_at=NOW - timedelta(days=730 + 40 * n), amount_cents=10_300)
        for n in range(47)
    ]
    return build_segment_profile(
        CustomerHistory.of(orders),
        thresholds=TierThresholds(),
        cut_points=FIXED_BANDS,
        personas=[],
        now=NOW,
    )


def test_a_lapsed_customer_with_high_lifetime_value_says_it_was_high() -> None:
    profile = lapsed_profile()
    assert profile.lifecycle is not None and profile.lifecycle.stage.value == "lapsed"
    lifetime = stats(order_count=47, total_spend_cents=485_200, orders_12m=0, spend_12m_cents=0)
    result = banner(lifetime, profile=profile)
    assert result.tier is Tier.LOW and result.former_tier is Tier.HIGH


def test_former_tier_is_only_for_lapsed_customers_whose_lifetime_is_higher() -> None:
    small = stats(order_count=2, total_spend_cents=8_000, orders_12m=0, spend_12m_cents=0)
    assert banner(small, profile=lapsed_profile()).former_tier is None
    # Active, not lapsed: the twelve-month tier is the whole story.
    assert banner(stats(), profile=profile_for(40)).former_tier is None
    assert banner(stats(orders_12m=0, spend_12m_cents=0)).former_tier is None  # no profile


def test_rfm_chip_needs_a_base_large_enough_to_rank() -> None:
    profile = profile_for(40)
    assert profile.rfm is not None
    small_base = banner(stats(), profile=profile, rfm_base_size=0)
    assert not small_base.shows_rfm_chip and not small_base.ranks_rfm
    ranked = banner(stats(), profile=profile, rfm_base_size=RFM_MIN_BASE)
    assert ranked.shows_rfm_chip


def test_a_person_is_greeted_by_first_name_and_a_business_by_its_name() -> None:
    person = banner(stats(), profile=profile_for(40))
    assert not person.is_business and person.greeting_name == "Ada"
    cafe = banner(
        stats(),
        requester=Person(id="7", name="Bean There Café"),
        customer_name="Bean There Café",
        profile=profile_for(40),
    )
    assert cafe.is_business and cafe.greeting_name == "Bean There Café"


def test_a_business_is_known_by_ordering_like_one() -> None:
    daily = [
        OrderRecord(placed_at=NOW - timedelta(days=n + 1), amount_cents=4_000)
        for n in range(200)
        if (NOW - timedelta(days=n + 1)).weekday() < 5
    ]
    profile = build_segment_profile(
        CustomerHistory.of(daily),
        thresholds=TierThresholds(),
        cut_points=FIXED_BANDS,
        personas=[],
        now=NOW,
    )
    assert any(tag.behaviour.value == "small_business" for tag in profile.behaviours)
    named_plainly = banner(stats(), requester=Person(id="8", name="Jess Morgan"), profile=profile)
    assert named_plainly.is_business and named_plainly.greeting_name == "Jess Morgan"


def test_matched_by_is_said_only_when_not_by_helpdesk_id() -> None:
    by_phone = banner(stats(), matched_by=MatchedBy.PHONE)
    assert by_phone.shows_matched_by and by_phone.matched_by is MatchedBy.PHONE
    assert not banner(stats(), matched_by=MatchedBy.HELPDESK_ID).shows_matched_by
    # No customer record: nothing was matched.
    assert banner(None, customer_name=None, matched_by=MatchedBy.EMAIL).matched_by is None


def test_the_store_name_is_left_out_when_it_is_the_helpdesk_name() -> None:
    assert banner(stats(), customer_name="Ada Lovelace").store_name is None
