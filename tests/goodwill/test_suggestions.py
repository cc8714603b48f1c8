"""A ticket's suggestions, on SQLite and PostgreSQL: why each is offered (conditions, goodwill, cap
and budget), what is withheld, and the order a share of an order is priced from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.domain.order_numbers import mentioned_orders
from plugin.goodwill import suggestions
from plugin.sidebar.read_cache import ReadCache
from tests.goodwill.world import HIGH_SPENDER, NOW, act, card, person, set_up, ticket


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def test_suggestions_say_why_with_goodwill_cap_and_budget(session: Session) -> None:
    inst = set_up(session)
    act(session, inst, "400", now=NOW - timedelta(days=20))  # a $9 waiver on an earlier ticket
    found = card(session, inst)
    offer = next(o for o in found.offers if o.key == "goodwill_credit")
    first = offer.suggestion
    assert first.cost_cents == 2000  # 10% of the latest order, $200
    assert found.order_value is not None and "latest order" in found.order_value.description
    # The amount is editable: its limits are said once, next to it, not in the pricing too.
    assert offer.priced_from == (
        f"10% of the order — of the latest order, ORD-acme-{HIGH_SPENDER}-0 ($200)"
    )
    assert offer.limits_phrase("USD") == "$5 to $75; a supervisor approves above $25."
    assert first.why.condition_words == ("tier is high", "ticket_tags include late_delivery")
    assert first.why.goodwill == "$9 granted in the last 90 days"
    assert first.why.cap == "1 of 1 in 90 days"
    assert first.why.budget == "$9 of $100 this month"  # the waiver was this month
    assert offer.approval_threshold_cents == 2500
    # The waiver's cap (once per 90 days) withholds it, and says so.
    assert [o.key for o in found.offers] == ["goodwill_credit"]
    assert [(w.exception.key, w.explanation) for w in found.withheld] == [
        (
            "waive_shipping_fee",
            "granted once in the last 90 days; the rule allows once per 90 days",
        )
    ]


def test_an_order_named_in_the_subject_prices_a_share(session: Session) -> None:
    inst = set_up(session)
    named = f"ORD-acme-{HIGH_SPENDER}-5"
    found = suggestions.suggestions_for(
        session,
        inst,
        ticket=ticket("501", subject=f"Order {named} is late"),
        requester=person(HIGH_SPENDER),
        now=NOW,
    )
    assert found.order_value is not None
    assert found.order_value.description == f"order {named}, named in the ticket"
    assert {o.key: o.suggestion.cost_cents for o in found.offers}["goodwill_credit"] == 1500


def test_an_order_named_in_the_description_prices_a_share(session: Session) -> None:
    inst = set_up(session)
    named = f"ORD-acme-{HIGH_SPENDER}-5"
    described = dataclasses.replace(
        ticket("503", subject="Still waiting"),
        description_orders=mentioned_orders(f"Hi, my order {named} was due on Tuesday."),
    )
    found = suggestions.suggestions_for(
        session, inst, ticket=described, requester=person(HIGH_SPENDER), now=NOW
    )
    assert found.order_value is not None
    assert found.order_value.description == f"order {named}, named in the ticket"
    assert {o.key: o.suggestion.cost_cents for o in found.offers}["goodwill_credit"] == 1500


def test_an_order_named_after_a_hash_or_among_other_numbers_prices_a_share(
    session: Session,
) -> None:
    inst = set_up(session)
    named = f"ORD-acme-{HIGH_SPENDER}-5"
    found = suggestions.suggestions_for(
        session,
        inst,
        ticket=ticket("502", subject=f"2 bags missing from #{named}, 3 days late"),
        requester=person(HIGH_SPENDER),
        now=NOW,
    )
    assert found.order_value is not None
    assert found.order_value.description == f"order {named}, named in the ticket"
    assert {o.key: o.suggestion.cost_cents for o in found.offers}["goodwill_credit"] == 1500


def test_a_card_read_through_the_cache_is_the_card_read_fresh(session: Session) -> None:
    inst = set_up(session)
    act(session, inst, "400", now=NOW - timedelta(days=20))
    reads = ReadCache(ttl_seconds=3600)

    def shown(with_reads: ReadCache | None) -> list[tuple[str, int, str]]:
        found = suggestions.suggestions_for(
            session,
            inst,
            ticket=ticket("501"),
            requester=person(HIGH_SPENDER),
            now=NOW,
            reads=with_reads,
        )
        return [(o.key, o.suggestion.cost_cents, o.suggestion.why.cap or "") for o in found.offers]

    fresh = shown(None)
    assert fresh and shown(reads) == fresh and shown(reads) == fresh
    # A grant made here (this process) is on the next card at once: the write drops the reads.
    act(
        session,
        inst,
        "401",
        exception="goodwill_credit",
        amount="20",
        reason="service_failure",
        now=NOW - timedelta(hours=1),
    )
    assert shown(reads) == shown(None) != fresh


def test_a_customer_forgotten_elsewhere_since_the_cache_named_them_is_no_customer(
    session: Session,
) -> None:
    inst = set_up(session)
    reads = ReadCache(ttl_seconds=3600)
    requester = person(HIGH_SPENDER)
    # What another process's erasure leaves in this one's cache for a few seconds: the id of
    # a customer who is no longer there.
    reads.get(inst.id, ("customer of", repr(requester)), lambda: 987_654)
    found = suggestions.suggestions_for(
        session, inst, ticket=ticket("501"), requester=requester, now=NOW, reads=reads
    )
    assert found.is_customer is False and found.order_value is None
