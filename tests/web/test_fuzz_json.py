"""Fuzzing the JSON endpoints with hypothesis: whatever the body, an answer that is not a 500.

Each endpoint is called as its real caller calls it (a push token, the Freshdesk app's secret,
the sidebar's bearer session), with bodies of three kinds: any JSON at all; objects with the
endpoint's own keys holding any JSON; and the endpoint's real payload with one value replaced.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from plugin.clock import utcnow
from plugin.customers import push_tokens
from plugin.helpdesks.freshdesk_installations import issue_secret
from plugin.helpdesks.zendesk_webhooks import signature_for
from plugin.models import Installation
from plugin.models.events import EventSource
from tests.goodwill.test_views import MARGARET, open_ticket_of
from tests.sidebar.test_freshdesk_views import view
from tests.sidebar.test_views import demo_token, launch, session_token

JSON: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def with_one_value_replaced(payload: Any) -> st.SearchStrategy[Any]:
    """The payload with one of its values (at any depth) replaced by any JSON."""
    paths: list[tuple[Any, ...]] = []

    def walk(value: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(value, dict):
            for key, child in value.items():
                walk(child, (*path, key))
        elif isinstance(value, list):
            for index, child in enumerate(value):
                walk(child, (*path, index))

    walk(payload, ())

    def replace(path: tuple[Any, ...], new: Any) -> Any:
        if not path:
            return new
        changed = copy.deepcopy(payload)
        target = changed
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = new
        return changed

    return st.builds(replace, st.sampled_from(paths), JSON)


def bodies(payload: Any) -> st.SearchStrategy[Any]:
    keys = sorted(payload) if isinstance(payload, dict) else []
    return st.one_of(
        JSON,
        st.fixed_dictionaries({}, optional={key: JSON for key in keys}),
        with_one_value_replaced(payload),
    )


def assert_no_server_error(post: Callable[[Any], Any], body: Any) -> None:
    answer = post(body)
    assert answer.status_code < 500 or answer.status_code == 503, (body, answer.status_code)
    if answer.status_code == 503:  # only "the helpdesk is not answering", never a crash
        assert "Try again" in answer.get_data(as_text=True) or answer.headers.get("Retry-After")


@pytest.fixture
def push_token(session: Session) -> str:
    installation = Installation(platform="zendesk", account="fuzz", display_name="Fuzz")
    session.add(installation)
    session.commit()
    token = push_tokens.issue(installation)
    session.commit()
    return token


PUSH_CUSTOMERS = {
    "customers": [
        {"customer_id": "C-1", "name": "Priya Raman", "email": "priya@example.com"},
        {"customer_id": "C-2", "name": "Walter Huang", "phone": "+15555550102"},
    ]
}
PUSH_ORDERS = {
    "orders": [
        {"order_id": "O-1", "customer_id": "C-1", "placed_at": "2026-11-01", "amount": 12.5},
        {
            "order_id": "O-2",
            "customer_email": "priya@example.com",
            "placed_at": "2026-11-02",
            "amount_cents": 800,
            "discount_code": "WELCOME10",
            "category": "Kitchen",
        },
    ]
}


@FUZZ
@given(body=bodies(PUSH_CUSTOMERS))
def test_push_customers(client: FlaskClient, push_token: str, body: Any) -> None:
    headers = {"Authorization": f"Bearer {push_token}"}
    assert_no_server_error(
        lambda b: client.post("/api/v1/customers", json=b, headers=headers), body
    )


@FUZZ
@given(body=bodies(PUSH_ORDERS))
def test_push_orders(client: FlaskClient, push_token: str, body: Any) -> None:
    headers = {"Authorization": f"Bearer {push_token}"}
    assert_no_server_error(lambda b: client.post("/api/v1/orders", json=b, headers=headers), body)


@pytest.fixture
def freshdesk_secret(session: Session, demo_installation: Installation) -> str:
    secret = issue_secret(demo_installation)
    session.commit()
    return secret


@FUZZ
@given(body=bodies(view()))
def test_freshdesk_sidebar(client: FlaskClient, freshdesk_secret: str, body: Any) -> None:
    headers = {"X-Regulars-Secret": freshdesk_secret}
    assert_no_server_error(
        lambda b: client.post("/freshdesk/sidebar", json=b, headers=headers), body
    )


@FUZZ
@given(body=bodies(view()))
def test_freshdesk_sync(client: FlaskClient, freshdesk_secret: str, body: Any) -> None:
    headers = {"X-Regulars-Secret": freshdesk_secret}
    assert_no_server_error(lambda b: client.post("/freshdesk/sync", json=b, headers=headers), body)


ACTION = {
    "exception": "expedited_shipping",
    "kind": "apply",
    "reason": "late_delivery",
    "amount": "18",
    "text": "",
    "idempotency_key": "fuzz-key-0001",
}


@FUZZ
@given(
    body=bodies(view(ticket_id=open_ticket_of(MARGARET), requester_id=None) | {"action": ACTION})
)
def test_freshdesk_actions(client: FlaskClient, freshdesk_secret: str, body: Any) -> None:
    headers = {"X-Regulars-Secret": freshdesk_secret}
    assert_no_server_error(
        lambda b: client.post("/freshdesk/actions", json=b, headers=headers), body
    )


@FUZZ
@given(body=bodies({"ticket_id": open_ticket_of(MARGARET), **ACTION}))
def test_sidebar_actions_as_json(
    app: Flask, client: FlaskClient, demo_installation: Installation, body: Any
) -> None:
    token = session_token(launch(client, demo_token(app, demo_installation)).get_data(True))
    headers = {"Authorization": f"Bearer {token}"}
    assert_no_server_error(lambda b: client.post("/sidebar/actions", json=b, headers=headers), body)


@FUZZ
@given(body=bodies({"ticket_id": open_ticket_of(MARGARET), "requester_id": "90001"}))
def test_sidebar_sync_as_json(
    app: Flask, client: FlaskClient, demo_installation: Installation, body: Any
) -> None:
    token = session_token(launch(client, demo_token(app, demo_installation)).get_data(True))
    headers = {"Authorization": f"Bearer {token}"}
    assert_no_server_error(lambda b: client.post("/sidebar/sync", json=b, headers=headers), body)


@pytest.fixture
def event_sources(app: Flask, session: Session) -> tuple[int, int]:
    """A Zendesk and a Freshdesk installation whose events the fuzzed bodies are signed for."""
    vault = app.extensions["regulars.vault"]
    zendesk_one = Installation(platform="zendesk", account="fuzz-events", display_name="Fuzz")
    freshdesk_one = Installation(platform="freshdesk", account="fuzz-desk", display_name="Fuzz")
    session.add_all([zendesk_one, freshdesk_one])
    session.flush()
    session.add_all(
        [
            EventSource(
                installation_id=zendesk_one.id,
                secret_encrypted=vault.encrypt({"1": EVENT_SECRET}),
                remote_ids={},
                events_received=0,
            ),
            EventSource(
                installation_id=freshdesk_one.id,
                secret_encrypted=vault.encrypt({"secret": EVENT_SECRET}),
                remote_ids={},
                events_received=0,
            ),
        ]
    )
    session.commit()
    return zendesk_one.id, freshdesk_one.id


EVENT_SECRET = "fuzz-event-secret-0123456789"
ZENDESK_TICKET_EVENT = {
    "type": "regulars:ticket",
    "ticket": {
        "id": "501",
        "requester_id": "77",
        "subject": "Where is my order?",
        "status": "Open",
        "priority": "Normal",
        "ticket_type": "-",
        "channel": "Mail",
        "tags": "vip",
        "created_at": "2026-12-04T10:00:00Z",
        "updated_at": "2026-12-04T10:05:00Z",
    },
}


@FUZZ
@given(
    body=bodies(ZENDESK_TICKET_EVENT)
    | bodies({"type": "zen:event-type:user.deleted", "detail": {"id": "77"}})
)
def test_zendesk_events(client: FlaskClient, event_sources: tuple[int, int], body: Any) -> None:
    def post(b: Any) -> Any:
        raw = json.dumps(b).encode()
        stamp = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "X-Zendesk-Webhook-Signature": signature_for(EVENT_SECRET, stamp, raw),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        }
        return client.post(
            f"/events/zendesk/{event_sources[0]}",
            data=raw,
            content_type="application/json",
            headers=headers,
        )

    assert_no_server_error(post, body)


@FUZZ
@given(body=bodies({"freshdesk_webhook": {"ticket_id": "12", "ticket_requester_id": "44"}}))
def test_freshdesk_events(client: FlaskClient, event_sources: tuple[int, int], body: Any) -> None:
    headers = {"X-Regulars-Event-Secret": EVENT_SECRET}
    assert_no_server_error(
        lambda b: client.post(f"/events/freshdesk/{event_sources[1]}", json=b, headers=headers),
        body,
    )
