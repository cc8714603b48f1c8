"""The gestures in the demo's sidebar and console: Apply, the worker gives it in the demo shop,
the card shows what was given with a copy button (a gift card's code once), record-only entries
say so, and admins turn kinds on and off."""

from __future__ import annotations

import copy
import random
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin import db
from plugin.clock import utcnow
from plugin.delivery import outbox
from plugin.delivery.worker import attempt
from plugin.demo.exceptions_seed import CATALOG
from plugin.gestures import shops
from plugin.gestures.interface import GestureKind
from plugin.gestures.planning import enabled_kinds, set_kind_enabled
from plugin.goodwill.catalog import save_exception_type
from plugin.helpdesks import Connections
from plugin.helpdesks.credentials import EXTENSION_KEY
from plugin.helpdesks.http import AccountSessions
from plugin.models import Gesture, Installation
from tests.console.test_views import console_session
from tests.gestures.gesture_world import Notes
from tests.goodwill.test_views import MARGARET, bearer, form_of, suggestions, text_of
from tests.sidebar.test_freshdesk_views import demo_secret, view

__all__ = ["bearer", "demo_secret"]  # the fixtures, used by name


def bind(session: Session, inst: Installation, key: str, gesture: dict[str, object]) -> None:
    entry = copy.deepcopy(next(e for e in CATALOG if e["key"] == key))
    entry["gesture"] = gesture
    save_exception_type(session, inst, entry, now=utcnow())
    set_kind_enabled(session, inst, GestureKind(str(gesture["kind"])), enabled=True, now=utcnow())


def deliver(app: Flask, session: Session) -> None:
    """One worker pass over what is due, giving in the demo's shop."""
    connections = Connections(
        vault=app.extensions[EXTENSION_KEY], accounts=AccountSessions(), timeout=2.0
    )
    policy = outbox.OutboxPolicy()
    later = utcnow() + timedelta(minutes=5)
    # One note per ticket per claim, in order: claim until nothing more is due.
    while claims := outbox.claim(session, worker_id="t", now=later, policy=policy, limit=50):
        for held in claims:
            outcome = attempt(
                session,
                held,
                writers=lambda _s, _i: Notes(),
                shops=lambda s, i: shops.shop_for(s, i, connections=connections),
            )
            outbox.record(session, held, outcome, now=later, policy=policy, rng=random.Random(1))


def apply_on_margarets_ticket(
    client: FlaskClient, bearer: dict[str, str], key: str
) -> tuple[dict[str, str], str]:
    """Apply an offer of Margaret Okafor's card as its form sends it: the fields and the card."""
    html = suggestions(client, bearer, MARGARET).get_data(as_text=True)
    fields = form_of(html, key) | {"kind": "apply", "reason": "late_delivery"}
    card = client.post("/sidebar/actions", data=fields, headers=bearer).get_data(as_text=True)
    return fields, card


def gestures_fragment(client: FlaskClient, bearer: dict[str, str], ticket: str) -> str:
    response = client.get("/sidebar/gestures", query_string={"ticket_id": ticket}, headers=bearer)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_record_only_offers_say_so_on_the_card(client: FlaskClient, bearer: dict[str, str]) -> None:
    html = suggestions(client, bearer, MARGARET).get_data(as_text=True)
    assert "Record only — give it in your shop:" in text_of(html)


def test_a_discount_code_and_a_gift_card_are_given_and_shown(
    app: Flask,
    client: FlaskClient,
    bearer: dict[str, str],
    session: Session,
    demo_installation: Installation,
) -> None:
    bind(session, demo_installation, "expedited_shipping", {"kind": "discount_code"})
    fields, card = apply_on_margarets_ticket(client, bearer, "expedited_shipping")
    ticket = fields["ticket_id"]
    assert "Giving…" in card and "data-poll=" in card
    deliver(app, session)
    fragment = gestures_fragment(client, bearer, ticket)
    row = session.scalars(sa.select(Gesture).order_by(Gesture.id.desc())).first()
    assert row is not None and row.status == "given", row and row.refusal
    assert f"Given: Discount code {row.marker} ($18 off)" in text_of(fragment)
    assert f'data-rg-copy="{row.marker}"' in fragment and "data-poll=" not in fragment

    # A gift card: its full code on one render, then only its last 4 and balance.
    bind(session, demo_installation, "waive_shipping_fee", {"kind": "gift_card"})
    apply_on_margarets_ticket(client, bearer, "waive_shipping_fee")
    deliver(app, session)
    session.expire_all()
    gift = session.scalars(sa.select(Gesture).order_by(Gesture.id.desc())).first()
    assert gift is not None and gift.status == "given" and gift.gift_card_code
    full = gift.gift_card_code
    first = gestures_fragment(client, bearer, ticket)
    assert full in first and f'data-rg-copy="{full}"' in first
    again = gestures_fragment(client, bearer, ticket)
    assert full not in again
    assert f"Gift card ending {gift.code_last4}, balance $9" in text_of(again)
    session.expire_all()
    assert session.get(Gesture, gift.id).gift_card_code is None  # type: ignore[union-attr]


def test_the_fragment_needs_the_sidebar_session(client: FlaskClient) -> None:
    assert client.get("/sidebar/gestures", query_string={"ticket_id": "1"}).status_code == 401


def test_admins_turn_kinds_on_and_off_in_the_console(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    token = console_session(app, client, demo_installation)  # Diane Foster, an admin
    headers = {"Authorization": f"Bearer {token}"}
    page = client.get("/console/gestures", headers=headers)
    assert page.status_code == 200
    assert "Record only — give it in your shop" in page.get_data(as_text=True)
    on = {"kind": "gift_card", "enabled": "true"}
    changed = client.post("/console/gestures", data=on, headers=headers)
    assert changed.status_code == 200
    with app.app_context():
        assert GestureKind.GIFT_CARD in enabled_kinds(db.session(), demo_installation.id)
    assert client.post("/console/gestures", data={"kind": "x"}, headers=headers).status_code == 404


def test_the_freshdesk_app_asks_for_the_same_list_with_its_secret(
    app: Flask,
    client: FlaskClient,
    bearer: dict[str, str],
    session: Session,
    demo_installation: Installation,
    demo_secret: str,
) -> None:
    bind(session, demo_installation, "expedited_shipping", {"kind": "discount_code"})
    fields, _ = apply_on_margarets_ticket(client, bearer, "expedited_shipping")
    body = view(ticket_id=fields["ticket_id"], requester_id=None)

    def ask(secret: str) -> tuple[int, str]:
        answer = client.post(
            "/freshdesk/gestures", json=body, headers={"X-Regulars-Secret": secret}
        )
        return answer.status_code, answer.get_data(as_text=True)

    status, waiting = ask(demo_secret)
    assert status == 200 and "Giving…" in text_of(waiting) and "data-poll=" in waiting
    deliver(app, session)
    status, given = ask(demo_secret)
    row = session.scalars(sa.select(Gesture).order_by(Gesture.id.desc())).first()
    assert row is not None
    assert status == 200 and f"Given: Discount code {row.marker} ($18 off)" in text_of(given)
    assert "data-poll=" not in given
    assert ask("rgf_not-the-secret")[0] == 401
