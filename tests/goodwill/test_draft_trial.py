"""Trying a draft rule on one customer, on both databases: finding the customer by id, email or
name within the installation, and the draft evaluated on their latest seen ticket or a described
one.
"""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin.goodwill import draft_trial
from plugin.goodwill.rulebook import validate_rule
from plugin.models import Customer, Installation
from tests.seeded_demo import SeededDemos

NOW = datetime(2026, 11, 20, 12, 0)


@pytest.fixture
def demo(storage_app: Flask, storage_session: Session, seeded_demos: SeededDemos) -> Installation:
    return seeded_demos.load(storage_app, storage_session, now=NOW)


def test_customers_are_found_by_id_email_or_name_within_the_installation(
    storage_session: Session, demo: Installation
) -> None:
    margaret = storage_session.scalars(
        sa.select(Customer).where(Customer.name == "Margaret Okafor")
    ).one()
    assert [
        m.id for m in draft_trial.find_customers(storage_session, demo.id, str(margaret.id))
    ] == [margaret.id]
    assert margaret.email
    by_email = draft_trial.find_customers(storage_session, demo.id, margaret.email.upper())
    assert [m.name for m in by_email] == ["Margaret Okafor"]
    assert len(draft_trial.find_customers(storage_session, demo.id, "an")) > 1
    assert draft_trial.find_customers(storage_session, demo.id + 1000, "Margaret") == []


def test_trying_a_draft_reads_the_latest_seen_ticket_or_the_described_one(
    storage_session: Session, demo: Installation
) -> None:
    margaret = storage_session.scalars(
        sa.select(Customer).where(Customer.name == "Margaret Okafor")
    ).one()
    on_gift = validate_rule(
        storage_session,
        demo.id,
        {
            "name": "Gift",
            "conditions": {
                "all": [{"field": "ticket_tags", "operator": "contains", "value": "gift"}]
            },
            "suggest": [{"exception": "free_sample"}],
        },
        key="draft",
    )
    latest = draft_trial.try_draft(
        storage_session, demo, on_gift, customer_id=margaret.id, described=None, now=NOW
    )
    assert latest is not None and "latest ticket" in latest.ticket_source and not latest.matched
    described = draft_trial.DescribedTicket(subject="A gift", tags=("gift",))
    tried = draft_trial.try_draft(
        storage_session, demo, on_gift, customer_id=margaret.id, described=described, now=NOW
    )
    assert tried is not None and tried.matched
    assert [s.exception.key for s in tried.evaluation.suggestions] == ["free_sample"]
    assert (
        draft_trial.try_draft(
            storage_session, demo, on_gift, customer_id=10**9, described=None, now=NOW
        )
        is None
    )
