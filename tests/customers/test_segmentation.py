"""Segments stored per customer: full recompute, incremental refresh, personas (both databases)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.clock import utcnow
from plugin.customers.records import order_record
from plugin.customers.segmentation import recompute_installation, refresh_customers
from plugin.customers.store import store_orders
from plugin.demo.sample_data import build_sample_data
from plugin.models import Customer, CustomerSegment, Installation, Persona, SegmentBaseline
from tests.seeded_demo import SeededDemos


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


@pytest.fixture
def demo(storage_app: Flask, session: Session, seeded_demos: SeededDemos) -> Installation:
    return seeded_demos.load(storage_app, session)


def segments_by_story(
    session: Session, installation: Installation
) -> dict[str, list[CustomerSegment]]:
    samples = build_sample_data(utcnow().date()).customers
    stories = {c.helpdesk_user_id: c.story for c in samples}
    # The customer the store knows only by phone has no helpdesk id there.
    by_phone = {c.phone: c.story for c in samples if c.phone_only_store_name}
    found: dict[str, list[CustomerSegment]] = {}
    for segment, user_id, phone in session.execute(
        sa.select(CustomerSegment, Customer.helpdesk_user_id, Customer.phone)
        .join(Customer, Customer.id == CustomerSegment.customer_id)
        .where(CustomerSegment.installation_id == installation.id)
    ):
        story = stories[user_id] if user_id is not None else by_phone[phone]
        found.setdefault(story, []).append(segment)
    return found


def test_every_demo_customer_gets_the_segment_their_story_tells(
    session: Session, demo: Installation
) -> None:
    by_story = segments_by_story(session, demo)
    tags = lambda story: [{b["behaviour"] for b in s.behaviours} for s in by_story[story]]  # noqa: E731
    assert all("seasonal" in found for found in tags("seasonal"))
    assert all("small_business" in found for found in tags("small_business"))
    assert all("deal_seeker" in found for found in tags("deal_seeker"))
    assert all(s.lifecycle_stage == "new" for s in by_story["new"])
    assert all(s.lifecycle_stage == "lapsed" for s in by_story["lapsed"])
    assert all(s.rfm_segment in {"champions", "loyal"} for s in by_story["high"])
    assert all(s.tier == "high" for s in by_story["high"])
    # Prospects are helpdesk users only: no customer record, so no segment row.
    assert "prospect" not in by_story
    baseline = session.get(SegmentBaseline, demo.id)
    assert baseline is not None and baseline.customers == 32


def test_a_new_order_moves_only_that_customer(session: Session, demo: Installation) -> None:
    lapsed = segments_by_story(session, demo)["lapsed"][0]
    customer = session.get(Customer, lapsed.customer_id)
    assert customer is not None and customer.external_id is None
    before = {s.customer_id: s.computed_at for s in session.scalars(sa.select(CustomerSegment))}
    later = utcnow() + timedelta(seconds=5)
    customer.external_id = "LAPSED-1"
    session.commit()
    store_orders(
        session,
        demo.id,
        [
            order_record(
                {
                    "order_id": "NEW-1",
                    "customer_id": "LAPSED-1",
                    "placed_at": later.isoformat(),
                    "amount": 40,
                }
            )
        ],
        source="push",
        now=later,
    )
    session.commit()
    after = {s.customer_id: s for s in session.scalars(sa.select(CustomerSegment))}
    assert after[customer.id].lifecycle_stage == "won_back"
    assert after[customer.id].computed_at == later
    others = [cid for cid in before if cid != customer.id]
    assert all(after[cid].computed_at == before[cid] for cid in others)


def test_personas_are_matched_and_stored(session: Session, demo: Installation) -> None:
    session.add(
        Persona(
            installation_id=demo.id,
            name="Busy regular",
            conditions={
                "all": [
                    {"field": "behaviour_tags", "operator": "contains", "value": "small_business"}
                ]
            },
            guidance="Small business: ask about their account manager.",
        )
    )
    session.commit()
    recompute_installation(session, demo, now=utcnow())
    by_story = segments_by_story(session, demo)
    assert all(s.personas == ["Busy regular"] for s in by_story["small_business"])
    assert all(s.personas == [] for s in by_story["high"])


def test_refresh_of_nobody_is_free(session: Session, demo: Installation) -> None:
    assert refresh_customers(session, demo.id, [], now=utcnow()) == 0


def test_a_customer_without_orders_is_profiled_as_not_yet_buying(
    session: Session, demo: Installation
) -> None:
    session.add(Customer(installation_id=demo.id, external_id="NEW-0", name="Nobody Yet"))
    session.commit()
    recompute_installation(session, demo, now=utcnow())
    row = session.scalars(
        sa.select(CustomerSegment).join(Customer).where(Customer.external_id == "NEW-0")
    ).one()
    assert (row.tier, row.rfm_segment, row.lifecycle_stage, row.behaviours) == (
        "low",
        None,
        None,
        [],
    )
