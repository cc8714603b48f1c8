"""The banner's read stores nothing; the page's explicit POST stores what it read, once.

A banner GET (and the Freshdesk app's banner) writes nothing but caches and the seen-ticket
count, even when the installation's shop knows more about the requester than is stored: it
says so (`data-sync="due"`), and `POST /sidebar/sync` (or `/freshdesk/sync`) stores it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import responses
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin import db
from plugin.customers.shopify_connection import connect_shopify
from plugin.helpdesks.credentials import EXTENSION_KEY as VAULT_KEY
from plugin.helpdesks.field_mappings import add_mapping
from plugin.helpdesks.freshdesk_installations import issue_secret
from plugin.helpdesks.tokens import SidebarSession
from plugin.models import Customer, CustomerFact, Installation, Order, SeenTicket
from plugin.sidebar.read_cache import IGNORED_TABLES
from tests.customers import test_shopify as shop
from tests.sidebar.test_freshdesk_views import HIGH_VALUE_REQUESTER, HIGH_VALUE_TICKET, view
from tests.sidebar.test_views import demo_token, first_ticket_of, launch, session_token

PROSPECT, PROSPECT_EMAIL = "90033", "ravi.desai@example.com"  # Ravi Desai: no orders here
SHOP_ANSWER = shop.customers_answer(
    shop.customer_node(
        displayName="Ravi Desai",
        defaultEmailAddress={"emailAddress": PROSPECT_EMAIL},
        defaultPhoneNumber=None,
    )
)
DUE = 'data-sync="due"'
_WRITE = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.IGNORECASE)


@pytest.fixture
def shop_connected(app: Flask, session: Session, demo_installation: Installation) -> Installation:
    connect_shopify(
        session,
        demo_installation,
        app.extensions[VAULT_KEY],
        shop=shop.SHOP,
        access_token=shop.TOKEN,
    )
    session.commit()
    return demo_installation


@pytest.fixture
def bearer(app: Flask, client: FlaskClient, demo_installation: Installation) -> dict[str, str]:
    token = session_token(launch(client, demo_token(app, demo_installation)).get_data(True))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def writes(app: Flask) -> Iterator[list[str]]:
    """The tables the app's statements write to, but those a view writes on its own (the
    seen-ticket count, the shared cache)."""
    found: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        match = _WRITE.match(statement)
        if match and match.group(2) not in IGNORED_TABLES:
            found.append(match.group(2))

    engine = db.database(app).engine
    sa.event.listen(engine, "before_cursor_execute", record)
    yield found
    sa.event.remove(engine, "before_cursor_execute", record)


def prospect_ticket(session: Session, installation: Installation) -> str:
    return first_ticket_of(session, installation, "prospect")


def settle(app: Flask) -> None:
    """Wait for the seen-ticket writes the views hand to worker threads."""
    app.extensions["regulars.helpdesks"].seen.wait(timeout=10)


def stored(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every customer, order and fact row, as it is now."""
    session.expire_all()
    return {
        model.__tablename__: [
            tuple(row) for row in session.execute(sa.select(model.__table__).order_by("id"))
        ]
        for model in (Customer, Order, CustomerFact)
    }


def shop_calls(rsps: responses.RequestsMock) -> int:
    return len([call for call in rsps.calls if call.request.url == shop.URL])


def banner(client: FlaskClient, bearer: dict[str, str], ticket_id: str, requester: str) -> str:
    query = {"ticket_id": ticket_id, "requester_id": requester}
    response = client.get("/sidebar/banner", query_string=query, headers=bearer)
    assert response.status_code == 200, response.get_data(as_text=True)
    html: str = response.get_data(as_text=True)
    return html


def sync(client: FlaskClient, bearer: dict[str, str], ticket_id: str, requester: str) -> Any:
    form = {"ticket_id": ticket_id, "requester_id": requester}
    return client.post("/sidebar/sync", data=form, headers=bearer)


def test_the_banner_stores_nothing_of_the_shops_answer_and_says_it_has_news(
    app: Flask,
    client: FlaskClient,
    session: Session,
    shop_connected: Installation,
    bearer: dict[str, str],
    rsps: responses.RequestsMock,
    writes: list[str],
) -> None:
    ticket = prospect_ticket(session, shop_connected)
    rsps.post(shop.URL, json=SHOP_ANSWER)
    before = stored(session)

    html = banner(client, bearer, ticket, PROSPECT)
    settle(app)

    assert shop_calls(rsps) == 1
    assert DUE in html and "Not a customer yet" in html
    assert stored(session) == before
    assert {name: len(rows) for name, rows in stored(session).items()} == {
        name: len(rows) for name, rows in before.items()
    }
    assert writes == []


def test_the_pages_sync_stores_the_shops_answer_once_and_shows_it(
    app: Flask,
    client: FlaskClient,
    session: Session,
    shop_connected: Installation,
    bearer: dict[str, str],
    rsps: responses.RequestsMock,
    writes: list[str],
) -> None:
    ticket = prospect_ticket(session, shop_connected)
    rsps.post(shop.URL, json=SHOP_ANSWER)
    assert DUE in banner(client, bearer, ticket, PROSPECT)
    before = stored(session)

    first = sync(client, bearer, ticket, PROSPECT)

    html = first.get_data(as_text=True)
    assert first.status_code == 200, html
    assert "Ravi Desai" in html and "Not a customer yet" not in html
    assert "Order data from shopify" in html
    assert DUE not in html
    after = stored(session)
    assert len(after["customers"]) == len(before["customers"]) + 1
    assert len(after["orders"]) == len(before["orders"]) + len(shop.ORDERS)
    ravi = session.scalars(sa.select(Customer).where(Customer.email == PROSPECT_EMAIL)).one()
    assert ravi.external_id == "shopify:207119551"
    assert session.scalar(
        sa.select(sa.func.count()).select_from(Order).where(Order.customer_id == ravi.id)
    ) == len(shop.ORDERS)

    writes.clear()
    second = sync(client, bearer, ticket, PROSPECT)
    settle(app)
    assert second.status_code == 200
    assert stored(session) == after
    assert writes == [], "a second sync of the same answer writes nothing"

    # The banner now shows what is stored, and asks for nothing; the shop was asked once.
    again = banner(client, bearer, ticket, PROSPECT)
    assert DUE not in again and "Order data from shopify" in again
    assert shop_calls(rsps) == 1


def test_the_sync_counts_no_second_view(
    app: Flask,
    client: FlaskClient,
    session: Session,
    shop_connected: Installation,
    bearer: dict[str, str],
    rsps: responses.RequestsMock,
) -> None:
    ticket = prospect_ticket(session, shop_connected)
    rsps.post(shop.URL, json=SHOP_ANSWER)
    seen_tickets = app.extensions["regulars.helpdesks"].seen

    def views() -> int:
        settle(app)
        seen_tickets.flush(session)
        session.expire_all()
        count = session.scalar(
            sa.select(SeenTicket.view_count).where(SeenTicket.ticket_id == ticket)
        )
        return count or 0

    before = views()
    banner(client, bearer, ticket, PROSPECT)
    assert views() == before + 1
    assert sync(client, bearer, ticket, PROSPECT).status_code == 200
    assert views() == before + 1


def test_another_installations_session_cannot_store_anything_for_this_one(
    app: Flask,
    client: FlaskClient,
    session: Session,
    shop_connected: Installation,
    bearer: dict[str, str],
    rsps: responses.RequestsMock,
) -> None:
    ticket = prospect_ticket(session, shop_connected)
    rsps.post(shop.URL, json=SHOP_ANSWER)
    # This installation's own sidebar has read the shop's answer: it waits in the cache.
    assert DUE in banner(client, bearer, ticket, PROSPECT)
    other = Installation(platform="demo", account="other-demo", display_name="Other")
    session.add(other)
    session.commit()
    others = app.extensions["regulars.sidebar_sessions"].issue(
        SidebarSession(installation_id=other.id, user_id="80001")
    )
    before = stored(session)

    for fields in (
        {"ticket_id": ticket, "requester_id": PROSPECT},
        {"ticket_id": ticket, "requester_id": PROSPECT, "installation_id": str(shop_connected.id)},
    ):
        answer = client.post(
            "/sidebar/sync", data=fields, headers={"Authorization": f"Bearer {others}"}
        )
        assert answer.status_code == 404, answer.get_data(as_text=True)
        assert "Ravi Desai" not in answer.get_data(as_text=True)
    assert client.post("/sidebar/sync", data={"ticket_id": ticket}).status_code == 401
    settle(app)
    assert stored(session) == before
    assert shop_calls(rsps) == 1
    # And this installation's own sync still finds its news to store.
    assert sync(client, bearer, ticket, PROSPECT).status_code == 200
    assert len(stored(session)["orders"]) == len(before["orders"]) + len(shop.ORDERS)


def test_mapped_helpdesk_facts_are_stored_by_the_sync_not_by_the_view(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    bearer: dict[str, str],
    writes: list[str],
) -> None:
    add_mapping(session, demo_installation, kind="tag", key="vip", fact_name="vip")
    session.commit()
    ticket, requester = HIGH_VALUE_TICKET, HIGH_VALUE_REQUESTER

    def demo_facts() -> dict[str, Any]:
        session.expire_all()
        rows = session.execute(
            sa.select(CustomerFact.name, CustomerFact.value).where(CustomerFact.source == "demo")
        )
        return {name: value for name, value in rows}

    writes.clear()
    html = banner(client, bearer, ticket, requester)
    settle(app)
    assert DUE in html and 'data-fact="vip"' in html
    assert demo_facts() == {}
    assert writes == []

    answer = sync(client, bearer, ticket, requester)
    assert answer.status_code == 200
    assert DUE not in answer.get_data(as_text=True)
    assert demo_facts() == {"vip": False}
    assert DUE not in banner(client, bearer, ticket, requester)


def test_the_freshdesk_banner_stores_nothing_and_its_sync_stores_once(
    app: Flask,
    client: FlaskClient,
    session: Session,
    shop_connected: Installation,
    rsps: responses.RequestsMock,
    writes: list[str],
) -> None:
    secret = {"X-Regulars-Secret": issue_secret(shop_connected)}
    session.commit()
    body = view(ticket_id=prospect_ticket(session, shop_connected), requester_id=PROSPECT)
    rsps.post(shop.URL, json=SHOP_ANSWER)
    before = stored(session)
    writes.clear()

    shown = client.post("/freshdesk/sidebar", json=body, headers=secret)
    settle(app)
    assert shown.status_code == 200, shown.get_data(as_text=True)
    assert DUE in shown.get_data(as_text=True)
    assert stored(session) == before and writes == []

    synced = client.post("/freshdesk/sync", json=body, headers=secret)
    html = synced.get_data(as_text=True)
    assert synced.status_code == 200, html
    assert "Order data from shopify" in html and DUE not in html
    assert 'id="rg-suggestions"' in html, "the whole sidebar comes back, cards included"
    after = stored(session)
    assert len(after["orders"]) == len(before["orders"]) + len(shop.ORDERS)

    writes.clear()
    assert client.post("/freshdesk/sync", json=body, headers=secret).status_code == 200
    settle(app)
    assert stored(session) == after and writes == []
    assert shop_calls(rsps) == 1
