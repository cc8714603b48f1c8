"""Zendesk's events end to end, against the fake Zendesk on 127.0.0.1: registering creates
the webhooks and trigger, the fake sends a new ticket's signed delivery, the refresher makes
the refresh, and the agent's first view of the new ticket makes no call to Zendesk."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from bench import fake_zendesk_webhooks
from bench.fake_base import api_timestamp
from plugin import db
from plugin.clock import utcnow
from plugin.models import SharedCacheEntry
from plugin.models.events import EventSource
from plugin.sidebar.event_cli import refresher_for
from tests.e2e.test_zendesk_end_to_end import (
    HIGH_VALUE_REQUESTER,
    HIGH_VALUE_TICKET,
    World,
    make_world,
)

PUBLIC_URL = "https://regulars.test"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, public_url=PUBLIC_URL)


def deliver(world: World, deliveries: list[fake_zendesk_webhooks.Delivery]) -> list[int]:
    statuses = []
    for delivery in deliveries:
        assert delivery.url.startswith(f"{PUBLIC_URL}/events/zendesk/")
        answer = world.client.post(
            urlsplit(delivery.url).path, data=delivery.body, headers=delivery.headers
        )
        statuses.append(answer.status_code)
    return statuses


def new_ticket(world: World, ticket_id: int) -> None:
    ticket = copy.deepcopy(world.zendesk.data.tickets[int(HIGH_VALUE_TICKET)])
    now = api_timestamp(utcnow())
    ticket |= {"id": ticket_id, "subject": "Parcel never arrived", "created_at": now}
    ticket |= {"updated_at": now, "status": "new"}
    world.zendesk.data.tickets[ticket_id] = ticket


def test_registering_creates_the_webhooks_and_the_trigger(world: World) -> None:
    registry = fake_zendesk_webhooks.registry_of(world.zendesk)
    assert len(registry.webhooks) == 2 and len(registry.triggers) == 1
    with db.database(world.app).sessions() as session:
        source = session.get(EventSource, world.installation().id)
        assert source is not None
        assert sorted(source.remote_ids["webhooks"]) == sorted(registry.webhooks)


def test_after_the_new_tickets_event_its_first_view_makes_no_call(world: World) -> None:
    token = world.session_token()
    assert world.banner(token, HIGH_VALUE_TICKET, HIGH_VALUE_REQUESTER).status_code == 200
    assert world.zendesk.calls == {"requested": 1}  # cold: the requester and their tickets

    new_ticket(world, 1999)
    assert deliver(world, fake_zendesk_webhooks.ticket_deliveries(world.zendesk, 1999)) == [202]
    totals = refresher_for(world.app).run(until_empty=True)
    assert (totals.merged, totals.fetched) == (1, 0)  # the body carried the ticket: no call

    world.zendesk.reset_counts()
    view = world.banner(token, "1999", HIGH_VALUE_REQUESTER)
    assert view.status_code == 200, view.get_data(as_text=True)
    assert world.zendesk.total_calls() == 0


def test_without_the_event_the_same_view_calls_zendesk(world: World) -> None:
    token = world.session_token()
    world.banner(token, HIGH_VALUE_TICKET, HIGH_VALUE_REQUESTER)
    new_ticket(world, 1999)  # the event is lost: the view behaves as it always did
    world.zendesk.reset_counts()
    assert world.banner(token, "1999", HIGH_VALUE_REQUESTER).status_code == 200
    assert world.zendesk.total_calls() >= 1


def test_a_deleted_users_cached_answers_are_dropped(world: World) -> None:
    token = world.session_token()
    world.banner(token, HIGH_VALUE_TICKET, HIGH_VALUE_REQUESTER)
    deliveries = fake_zendesk_webhooks.user_deliveries(
        world.zendesk, "zen:event-type:user.deleted", int(HIGH_VALUE_REQUESTER)
    )
    assert deliver(world, deliveries) == [200]
    with db.database(world.app).sessions() as session:
        keys = session.scalars(sa.select(SharedCacheEntry.key)).all()
    assert f"requester:{HIGH_VALUE_REQUESTER}" not in keys


def test_disconnecting_removes_them(world: World) -> None:
    result = world.app.test_cli_runner().invoke(
        args=["zendesk", "webhooks", "remove", "--subdomain", "acme"]
    )
    assert result.exit_code == 0, result.output
    registry = fake_zendesk_webhooks.registry_of(world.zendesk)
    assert registry.webhooks == {} and registry.triggers == {}
    assert deliver(world, []) == []
