"""The demo data set tells each customer's story the way a reader, and the tiers, would."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from statistics import median

import pytest

from plugin.demo.sample_data import (
    SampleAgent,
    SampleCustomer,
    SampleData,
    SampleOrder,
    build_sample_data,
)

TODAY = date(2025, 6, 15)
# A mid-year day, the gift season, the turn of the year and two days next to a Feb 29.
DAYS = [
    TODAY,
    date(2024, 11, 20),
    date(2024, 12, 24),
    date(2025, 1, 3),
    date(2024, 3, 1),
    date(2028, 2, 28),
]

STORY_COUNTS = {
    "high": 6,
    "medium": 8,
    "low": 8,
    "seasonal": 2,
    "small_business": 2,
    "deal_seeker": 2,
    "new": 2,
    "lapsed": 2,
    "prospect": 2,
}
EXAMPLE_EMAIL = re.compile(r"^[a-z0-9.\-]+@example\.(com|org|net)$")
FICTIONAL_PHONE = re.compile(r"^\+155555501\d\d$")
TAG = re.compile(r"^[a-z0-9_]+$")


def last_12_months(customer: SampleCustomer, today: date) -> list[SampleOrder]:
    start = today - timedelta(days=365)
    return [o for o in customer.orders if o.placed_at.date() > start]


def spend(orders: list[SampleOrder]) -> int:
    return sum(o.amount_cents for o in orders)


def tier(orders: list[SampleOrder]) -> str:
    """The default thresholds: high needs both bars, medium either."""
    if len(orders) >= 12 and spend(orders) >= 150_000:
        return "high"
    if len(orders) >= 3 or spend(orders) >= 25_000:
        return "medium"
    return "low"


def months_between(earlier: date, later: date) -> float:
    return (later - earlier).days / 30.44


def by_story(data: SampleData, story: str) -> list[SampleCustomer]:
    return [c for c in data.customers if c.story == story]


@pytest.fixture(scope="module", params=DAYS, ids=str)
def day_and_data(request: pytest.FixtureRequest) -> tuple[date, SampleData]:
    today: date = request.param
    return today, build_sample_data(today)


def test_same_day_gives_identical_data() -> None:
    assert build_sample_data(TODAY) == build_sample_data(TODAY)


def test_another_day_keeps_the_people_and_shifts_the_dates() -> None:
    first, later = build_sample_data(TODAY), build_sample_data(TODAY + timedelta(days=40))
    assert [(c.helpdesk_user_id, c.name, c.email, c.story) for c in first.customers] == [
        (c.helpdesk_user_id, c.name, c.email, c.story) for c in later.customers
    ]
    assert first.agents == later.agents
    high = by_story(first, "high")[0]
    moved = next(c for c in later.customers if c.email == high.email)
    assert moved.customer_since == high.customer_since + timedelta(days=40)
    assert moved.orders[-1].placed_at == high.orders[-1].placed_at + timedelta(days=40)


def test_story_counts(day_and_data: tuple[date, SampleData]) -> None:
    _, data = day_and_data
    assert Counter(c.story for c in data.customers) == STORY_COUNTS
    assert len(data.customers) >= 34


def test_ids_emails_and_phones_are_unique_and_fictional(
    day_and_data: tuple[date, SampleData],
) -> None:
    _, data = day_and_data
    people: list[SampleCustomer | SampleAgent] = [*data.customers, *data.agents]
    assert len({p.helpdesk_user_id for p in people}) == len(people)
    assert all(p.helpdesk_user_id.isdigit() for p in people)
    assert len({p.email for p in people}) == len(people)
    assert len({c.name for c in data.customers}) == len(data.customers)
    assert all(EXAMPLE_EMAIL.match(p.email) for p in people)
    phones = [c.phone for c in data.customers if c.phone is not None]
    assert phones and all(FICTIONAL_PHONE.match(p) for p in phones)
    assert len(set(phones)) == len(phones)
    order_ids = [o.external_id for c in data.customers for o in c.orders]
    assert len(set(order_ids)) == len(order_ids)
    assert all(re.fullmatch(r"ORD-\d{5}", i) for i in order_ids)


def test_orders_are_sorted_positive_and_after_signup(
    day_and_data: tuple[date, SampleData],
) -> None:
    today, data = day_and_data
    for customer in data.customers:
        placed = [o.placed_at for o in customer.orders]
        assert placed == sorted(placed)
        assert all(o.amount_cents > 0 for o in customer.orders)
        assert customer.customer_since <= today
        if customer.orders:
            assert customer.customer_since <= customer.orders[0].placed_at.date()
            assert customer.orders[-1].placed_at.date() < today


def test_favourite_categories_dominate(day_and_data: tuple[date, SampleData]) -> None:
    _, data = day_and_data
    for customer in data.customers:
        if len(customer.orders) >= 10:
            counts = Counter(o.category for o in customer.orders)
            top3 = sum(n for _, n in counts.most_common(3))
            assert top3 >= 0.8 * len(customer.orders), customer.name


def test_high_value_regulars(day_and_data: tuple[date, SampleData]) -> None:
    today, data = day_and_data
    for customer in by_story(data, "high"):
        recent = last_12_months(customer, today)
        assert 15 <= len(recent) <= 40
        assert 2_000_00 <= spend(recent) <= 8_000_00
        assert tier(recent) == "high"
        assert 3 <= (today - customer.customer_since).days / 365.25 <= 10
        assert len(customer.orders) > len(recent)
        quarters = {(today - o.placed_at.date()).days // 92 for o in recent}
        assert quarters >= {0, 1, 2, 3}


def test_medium(day_and_data: tuple[date, SampleData]) -> None:
    today, data = day_and_data
    for customer in by_story(data, "medium"):
        recent = last_12_months(customer, today)
        assert 4 <= len(recent) <= 9
        assert 350_00 <= spend(recent) <= 1_200_00
        assert tier(recent) == "medium"
    assert any(len(c.orders) > len(last_12_months(c, today)) for c in by_story(data, "medium"))


def test_low(day_and_data: tuple[date, SampleData]) -> None:
    today, data = day_and_data
    for customer in by_story(data, "low"):
        recent = last_12_months(customer, today)
        assert 1 <= len(recent) <= 2
        assert spend(recent) < 200_00
        assert tier(recent) == "low"


def test_seasonal_shoppers_buy_in_the_gift_season(day_and_data: tuple[date, SampleData]) -> None:
    today, data = day_and_data
    for customer in by_story(data, "seasonal"):
        in_season = [o for o in customer.orders if o.placed_at.month in (11, 12)]
        assert len(in_season) >= 0.8 * len(customer.orders)
        seasons = {o.placed_at.year for o in in_season}
        assert len(seasons) >= 4
        assert tier(last_12_months(customer, today)) == "medium"


def test_small_businesses_buy_every_working_day(day_and_data: tuple[date, SampleData]) -> None:
    today, data = day_and_data
    for customer in by_story(data, "small_business"):
        recent = last_12_months(customer, today)
        assert len(recent) >= 200
        assert tier(recent) == "high"
        assert all(25_00 <= o.amount_cents <= 90_00 for o in customer.orders)
        gaps = [(b.placed_at.date() - a.placed_at.date()).days for a, b in pairwise(recent)]
        assert median(gaps) == 1
        assert max(gaps) <= 7
        assert all(o.placed_at.weekday() < 5 for o in customer.orders)


def test_deal_seekers_mostly_use_codes(day_and_data: tuple[date, SampleData]) -> None:
    today, data = day_and_data
    for customer in by_story(data, "deal_seeker"):
        recent = last_12_months(customer, today)
        assert 6 <= len(recent) <= 12
        assert tier(recent) == "medium"
        for orders in (recent, list(customer.orders)):
            discounted = [o for o in orders if o.discount_code]
            assert len(discounted) >= 0.7 * len(orders)


def test_new_customers_joined_and_ordered_in_the_last_two_weeks(
    day_and_data: tuple[date, SampleData],
) -> None:
    today, data = day_and_data
    for customer in by_story(data, "new"):
        assert len(customer.orders) == 1
        assert (today - customer.customer_since).days <= 14
        assert (today - customer.orders[0].placed_at.date()).days <= 14


def test_lapsed_customers_were_loyal_and_stopped(day_and_data: tuple[date, SampleData]) -> None:
    today, data = day_and_data
    for customer in by_story(data, "lapsed"):
        assert len(customer.orders) >= 15
        assert 14 <= months_between(customer.orders[-1].placed_at.date(), today) <= 30
        assert months_between(customer.customer_since, customer.orders[-1].placed_at.date()) >= 24


def test_prospects_have_no_orders(day_and_data: tuple[date, SampleData]) -> None:
    _, data = day_and_data
    assert all(not c.orders for c in by_story(data, "prospect"))


def test_agents(day_and_data: tuple[date, SampleData]) -> None:
    _, data = day_and_data
    assert 3 <= len(data.agents) <= 4
    assert Counter(a.role for a in data.agents)["admin"] == 1
    assert {a.role for a in data.agents} == {"agent", "admin"}


def test_tickets_are_well_formed(day_and_data: tuple[date, SampleData]) -> None:
    today, data = day_and_data
    end_of_today = datetime.combine(today, time.max)
    customers = {c.helpdesk_user_id for c in data.customers}
    agents = {a.helpdesk_user_id for a in data.agents}
    assert len(data.tickets) >= 66
    for ticket in data.tickets:
        assert ticket.requester_user_id in customers
        assert ticket.assignee_user_id is None or ticket.assignee_user_id in agents
        assert (ticket.assignee_user_id is None) == (ticket.status == "new")
        assert ticket.channel in {"email", "chat", "voice"}
        assert ticket.status in {"new", "open", "pending", "solved", "closed"}
        assert ticket.priority in {"low", "normal", "high", "urgent"}
        assert ticket.ticket_type in {"question", "incident", "problem", "task"}
        assert ticket.tags and all(TAG.match(tag) for tag in ticket.tags)
        assert ticket.created_at <= ticket.updated_at <= end_of_today
        assert ticket.subject and "{" not in ticket.description
    ids = [int(t.external_id) for t in data.tickets]
    assert len(set(ids)) == len(ids)
    created = [t.created_at for t in data.tickets]
    assert created == sorted(created, reverse=True)
    assert ids == sorted(ids, reverse=True)


def test_ticket_mix(day_and_data: tuple[date, SampleData]) -> None:
    today, data = day_and_data
    channels = Counter(t.channel for t in data.tickets)
    assert min(channels[c] for c in ("email", "chat", "voice")) >= 12
    waiting = [t for t in data.tickets if t.status in {"new", "open", "pending"}]
    assert 20 <= len(waiting) <= 30
    recently = datetime.combine(today - timedelta(days=6), time())
    assert all(t.created_at >= recently for t in waiting)
    month_ago = datetime.combine(today - timedelta(days=30), time())
    older = [t for t in data.tickets if t.status not in {"new", "open", "pending"}]
    assert all(t.status == "closed" for t in older if t.created_at < month_ago)


def test_every_customer_has_recent_contact(day_and_data: tuple[date, SampleData]) -> None:
    today, data = day_and_data
    month_ago = datetime.combine(today - timedelta(days=30), time())
    for customer in data.customers:
        theirs = [t for t in data.tickets if t.requester_user_id == customer.helpdesk_user_id]
        assert theirs, customer.name
        if customer.story != "lapsed":
            assert max(t.created_at for t in theirs) >= month_ago, customer.name
        if customer.story in {"high", "small_business"}:
            assert any(t.status in {"solved", "closed"} for t in theirs)
    waiting = {t.requester_user_id for t in data.tickets if t.status in {"new", "open", "pending"}}
    stories = {c.story for c in data.customers if c.helpdesk_user_id in waiting}
    assert stories == set(STORY_COUNTS)


def test_ticket_orders_belong_to_the_requester(day_and_data: tuple[date, SampleData]) -> None:
    _, data = day_and_data
    orders = {o.external_id: (c.helpdesk_user_id, o) for c in data.customers for o in c.orders}
    for ticket in data.tickets:
        for order_id in re.findall(r"ORD-\d+", ticket.description):
            owner, order = orders[order_id]
            assert owner == ticket.requester_user_id
            assert order.placed_at < ticket.created_at


def test_a_voice_caller_is_known_to_the_store_only_by_phone(
    day_and_data: tuple[date, SampleData],
) -> None:
    _, data = day_and_data
    phone_only = [c for c in data.customers if c.phone_only_store_name]
    assert len(phone_only) == 1
    caller = phone_only[0]
    assert caller.phone and caller.orders and caller.phone_only_store_name != caller.name
    assert any(
        t.requester_user_id == caller.helpdesk_user_id
        and t.channel == "voice"
        and t.status == "open"
        for t in data.tickets
    )
