"""The sidebar's recent orders card: stored orders, or the connected shop's through the cache."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import responses
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.clock import utcnow
from plugin.models import Customer, DemoTicket, Installation, Order
from tests.customers import test_shopify as shop
from tests.goodwill.test_views import text_of
from tests.sidebar.test_sync import (
    PROSPECT,
    PROSPECT_EMAIL,
    bearer,  # noqa: F401 (a fixture)
    prospect_ticket,
    settle,
    shop_calls,
    shop_connected,  # noqa: F401 (a fixture)
    stored,
    writes,  # noqa: F401 (a fixture)
)
from tests.sidebar.test_views import first_ticket_of

SHIPPED = shop.order_node(
    2,
    processed_at="2026-10-01T12:00:00Z",
    amount="45.00",
    displayFinancialStatus="PARTIALLY_REFUNDED",
    displayFulfillmentStatus="FULFILLED",
    subtotalLineItemsQuantity=3,
    fulfillments=[{"trackingInfo": [{"url": "https://carrier.example.com/t/1Z999"}]}],
)
UNSHIPPED = shop.order_node(
    3,
    processed_at="2026-11-20T09:15:00-05:00",
    amount="80.50",
    displayFinancialStatus="PAID",
    displayFulfillmentStatus="UNFULFILLED",
    fulfillments=[],
)
A_TEST_ORDER = shop.order_node(4, processed_at="2026-11-21T09:15:00Z", amount="1.00", test=True)
SHOP_ANSWER = shop.customers_answer(
    shop.customer_node(
        displayName="Ravi Desai",
        defaultEmailAddress={"emailAddress": PROSPECT_EMAIL},
        defaultPhoneNumber=None,
        orders={"nodes": [A_TEST_ORDER, UNSHIPPED, SHIPPED]},
    )
)


def orders_card(
    client: FlaskClient, headers: dict[str, str], ticket: str, requester: str
) -> tuple[int, str]:
    query = {"ticket_id": ticket, "requester_id": requester}
    response = client.get("/sidebar/orders", query_string=query, headers=headers)
    return response.status_code, response.get_data(as_text=True)


def newest_order(session: Session, installation: Installation, requester: str) -> str:
    """The number of the requester's newest stored order (the demo numbers orders by when they
    were placed, across customers, so a customer's move with the day the demo is seeded)."""
    number: str = session.scalars(
        sa.select(Order.external_id)
        .join(Customer, Customer.id == Order.customer_id)
        .where(Customer.installation_id == installation.id)
        .where(Customer.helpdesk_user_id == requester)
        .order_by(Order.placed_at.desc())
        .limit(1)
    ).one()
    return number


def espresso_ticket(session: Session, installation: Installation) -> tuple[str, str, str]:
    """The demo's "Espresso beans order ORD-… still not here": ticket, requester, order."""
    from datetime import UTC, datetime

    from plugin.demo.sample_data import build_sample_data

    data = build_sample_data(datetime.now(UTC).date())
    ticket = next(t for t in data.tickets if t.subject.startswith("Espresso beans order"))
    number = re.search(r"ORD-\d+", ticket.subject)
    assert number is not None, "the demo ticket names its order in the subject"
    return ticket.external_id, ticket.requester_user_id, number.group()


def test_stored_orders_show_status_tracking_and_the_tickets_order(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    bearer: dict[str, str],  # noqa: F811
    writes: list[str],  # noqa: F811
) -> None:
    ticket, requester, number = espresso_ticket(session, demo_installation)
    page = launch_page(app, client, demo_installation)
    assert 'data-view-url="/sidebar/view"' in page

    status, html = orders_card(client, bearer, ticket, requester)
    settle(app)

    assert status == 200, html
    assert writes == [], "a GET writes nothing"
    assert "<script" not in html and "style=" not in html
    items = re.findall(r'<li class="rg-order[^"]*" data-order="([^"]+)"', html)
    assert len(items) in (5, 6) and number in items
    assert items[0] == newest_order(session, demo_installation, requester), "newest first"
    named = re.search(r'rg-order--named" data-order="([^"]+)">(.*?)</li>', html, re.S)
    assert named is not None and named.group(1) == number
    text = text_of(named.group(2))
    assert "This ticket's order" in text and "Paid" in text and "Shipped" in text
    link = re.search(r'<a href="([^"]+)" target="_blank" rel="noopener noreferrer"', named.group(2))
    assert link is not None and link.group(1) == f"https://tracking.example.com/{number}"
    assert html.count("This ticket's order") == 1


def test_a_stored_order_shows_on_the_next_card_though_the_card_is_kept(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    bearer: dict[str, str],  # noqa: F811
) -> None:
    """The card's orders and HTML are kept per process, and an order stored drops them."""
    ticket, requester, _number = espresso_ticket(session, demo_installation)
    rendered = app.extensions["regulars.helpdesks"].rendered
    first = orders_card(client, bearer, ticket, requester)
    hits = rendered.hits
    assert orders_card(client, bearer, ticket, requester) == first
    assert rendered.hits == hits + 1, "the same card again: its HTML was kept"

    customer = session.scalars(
        sa.select(Customer)
        .where(Customer.installation_id == demo_installation.id)
        .where(Customer.helpdesk_user_id == requester)
    ).one()
    session.add(
        Order(
            installation_id=demo_installation.id,
            customer_id=customer.id,
            external_id="ORD-JUST-NOW",
            placed_at=utcnow() - timedelta(minutes=5),
            amount_cents=1234,
            source="push",
        )
    )
    session.commit()
    status, html = orders_card(client, bearer, ticket, requester)
    assert status == 200
    assert re.findall(r'data-order="([^"]+)"', html)[0] == "ORD-JUST-NOW"
    assert "$12.34" in text_of(html)


def test_a_shop_connected_customer_gets_the_shops_orders_through_the_cache(
    app: Flask,
    client: FlaskClient,
    session: Session,
    shop_connected: Installation,  # noqa: F811
    bearer: dict[str, str],  # noqa: F811
    rsps: responses.RequestsMock,
    writes: list[str],  # noqa: F811
) -> None:
    ticket = prospect_ticket(session, shop_connected)
    rsps.post(shop.URL, json=SHOP_ANSWER)
    rename_ticket(session, shop_connected, ticket, "Where is order #1002?")
    before = stored(session)
    writes.clear()

    status, html = orders_card(client, bearer, ticket, PROSPECT)
    settle(app)
    written = list(writes)
    rename_ticket(session, shop_connected, ticket, "Hello again, about 12 things")
    again_status, again = orders_card(client, bearer, ticket, PROSPECT)

    assert status == 200 and again_status == 200, html
    assert shop_calls(rsps) == 1, "the second card is served from the cache"
    assert stored(session) == before and written == [], "a GET stores nothing of the shop's answer"
    assert 'data-source="shopify"' in html
    assert re.findall(r'data-order="([^"]+)"', html) == ["#1003", "#1002"], "no test orders"
    named = re.search(r'rg-order--named" data-order="#1002">(.*?)</li>', html, re.S)
    assert named is not None
    text = text_of(named.group(1))
    assert "This ticket's order" in text
    assert "$45" in text and "3 items · Partly refunded · Shipped" in text
    assert 'href="https://carrier.example.com/t/1Z999"' in named.group(1)
    unshipped = text_of(html.split('data-order="#1003">')[1].split("</li>")[0])
    assert "Paid · Not shipped" in unshipped and "Track" not in unshipped
    assert "This ticket's order" not in again, "no number of theirs, no highlight"


def test_a_customer_without_orders_gets_no_card(
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    bearer: dict[str, str],  # noqa: F811
) -> None:
    ticket = first_ticket_of(session, demo_installation, "prospect")
    status, html = orders_card(client, bearer, ticket, PROSPECT)
    assert status == 204 and html == ""


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer forged"}])
def test_the_card_needs_the_sidebar_session(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/sidebar/orders", query_string={"ticket_id": "1058"}, headers=headers)
    assert response.status_code == 401


def rename_ticket(session: Session, installation: Installation, ticket: str, subject: str) -> None:
    """Give the demo helpdesk's ticket another subject (the demo's helpdesk is read directly)."""
    session.execute(
        sa.update(DemoTicket)
        .where(DemoTicket.installation_id == installation.id, DemoTicket.external_id == ticket)
        .values(subject=subject)
    )
    session.commit()


def launch_page(app: Flask, client: FlaskClient, installation: Installation) -> str:
    from tests.sidebar.test_views import demo_token, launch

    page: str = launch(client, demo_token(app, installation)).get_data(as_text=True)
    return page


def test_the_freshdesk_answer_has_the_same_orders_card_between_suggestions_and_review(
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    bearer: dict[str, str],  # noqa: F811
) -> None:
    from plugin.helpdesks.freshdesk_installations import issue_secret
    from tests.sidebar.test_freshdesk_views import ask, view

    ticket, requester, number = espresso_ticket(session, demo_installation)
    secret = issue_secret(demo_installation)
    session.commit()

    html = ask(client, secret, view(ticket_id=ticket, requester_id=requester)).get_data(True)
    _status, card = orders_card(client, bearer, ticket, requester)

    assert card.strip() and card.strip() in html
    assert html.index('id="rg-suggestions"') < html.index('data-part="orders"')
    assert html.index('data-part="orders"') < html.index('id="rg-review"')
    assert f'rg-order--named" data-order="{number}"' in html
