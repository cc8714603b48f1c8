"""The console's Shopify section (admins connect a store, checked first; check it; disconnect it)
and its data import (customers, then orders; Check file), admins only."""

from __future__ import annotations

import io

import requests
import responses
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.customers.shopify_client import API_VERSION
from plugin.customers.shopify_connection import shopify_connection
from plugin.helpdesks.runtime import helpdesks
from plugin.models import Customer, Installation, Order
from tests.console.test_views import console_session, launch, launch_token
from tests.customers.test_shopify import check_answer
from tests.goodwill.console_world import SUPERVISOR, bearer_for

SHOP = "regulars-console.myshopify.com"
URL = f"https://{SHOP}/admin/api/{API_VERSION}/graphql.json"
TOKEN = "shpat_0123456789abcdef0123456789abWXYZ"


def admin(app: Flask, client: FlaskClient, installation: Installation) -> dict[str, str]:
    return {"Authorization": f"Bearer {console_session(app, client, installation)}"}


def stored_token(app: Flask, session: Session, installation: Installation) -> str | None:
    session.expire_all()
    with app.app_context():
        connection = shopify_connection(
            session.get(Installation, installation.id),  # type: ignore[arg-type]
            helpdesks().connections.vault,
        )
    return None if connection is None else connection.access_token


def connect(client: FlaskClient, headers: dict[str, str], **form: str) -> tuple[int, str]:
    answer = client.post(
        "/console/shopify", data={"shop": SHOP, "access_token": TOKEN} | form, headers=headers
    )
    return answer.status_code, answer.get_data(as_text=True)


def test_an_admin_connects_checks_and_disconnects_a_store(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    rsps: responses.RequestsMock,
) -> None:
    headers = admin(app, client, demo_installation)
    first = client.get("/console/shopify", headers=headers)
    assert first.status_code == 200 and "No Shopify store is connected." in first.get_data(
        as_text=True
    )
    rsps.post(URL, json=check_answer(currency=demo_installation.currency))

    status, html = connect(client, headers, shop="regulars-console")

    assert status == 200, html
    assert f"Connected {SHOP}." in html and "Signed in to the shop Regulars Test Tea" in html
    # The token is never rendered back: only its last four characters.
    assert TOKEN not in html and TOKEN[:-4] not in html and "WXYZ" in html
    assert stored_token(app, session, demo_installation) == TOKEN
    page = client.get("/console/shopify", headers=headers).get_data(as_text=True)
    assert SHOP in page and "WXYZ" in page and TOKEN not in page

    rsps.post(URL, status=401, json={"errors": "[API] Invalid API key"})
    checked = client.post("/console/shopify/check", headers=headers)
    assert checked.status_code == 200
    assert "Shopify refused the access token (401)" in checked.get_data(as_text=True)

    gone = client.post("/console/shopify/disconnect", headers=headers)
    assert gone.status_code == 200
    assert f"Disconnected {SHOP}." in gone.get_data(as_text=True)
    assert stored_token(app, session, demo_installation) is None
    again = client.post("/console/shopify/disconnect", headers=headers)
    assert again.status_code == 400


def test_a_wrong_shop_address_or_token_is_refused_and_nothing_stored(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    headers = admin(app, client, demo_installation)

    status, html = connect(client, headers, shop="https://evil.example.com/")
    assert status == 400 and "myshopify.com address" in html
    status, html = connect(client, headers, access_token="two words")
    assert status == 400 and "without spaces" in html and "two words" not in html

    assert stored_token(app, session, demo_installation) is None


def test_a_token_the_shop_refuses_is_not_kept(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    rsps: responses.RequestsMock,
) -> None:
    headers = admin(app, client, demo_installation)
    rsps.post(URL, status=401, json={"errors": "[API] Invalid API key"})

    status, html = connect(client, headers)

    assert status == 400
    assert "nothing was saved" in html and "Shopify refused the access token (401)" in html
    assert TOKEN not in html
    assert stored_token(app, session, demo_installation) is None


def test_a_shop_that_is_down_keeps_the_store_connected_before(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    rsps: responses.RequestsMock,
) -> None:
    headers = admin(app, client, demo_installation)
    rsps.post(URL, json=check_answer(currency=demo_installation.currency))
    assert connect(client, headers)[0] == 200
    rsps.post(URL, body=requests.ConnectionError("connection refused"))

    status, html = connect(client, headers, access_token="shpat_new_token_0000")

    assert status == 400 and "nothing was saved" in html
    assert "Shop reachable" in html
    assert stored_token(app, session, demo_installation) == TOKEN
    checked = client.post("/console/shopify/check", headers=headers).get_data(as_text=True)
    assert "Something needs attention." in checked


def test_only_an_admin_may_see_or_change_the_store(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    supervisor = bearer_for(app, client, demo_installation, SUPERVISOR)
    form = {"shop": SHOP, "access_token": TOKEN}
    for path in ("/console/shopify", "/console/shopify/check", "/console/shopify/disconnect"):
        assert client.post(path, data=form, headers=supervisor).status_code == 403
        assert client.post(path, data=form).status_code == 401
    assert client.get("/console/shopify", headers=supervisor).status_code == 403
    assert stored_token(app, session, demo_installation) is None


def test_the_console_page_has_the_shopify_section_for_admins_only(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    page = launch(client, launch_token(app, demo_installation)).get_data(as_text=True)
    assert 'data-load-url="/console/shopify"' in page and 'href="#shop-title"' in page
    supervisor = launch(client, launch_token(app, demo_installation, sub=SUPERVISOR))
    assert 'data-load-url="/console/shopify"' not in supervisor.get_data(as_text=True)


# --- The console's data import: customers then orders, admins only ----------------------------


def upload(
    client: FlaskClient, headers: dict[str, str], kind: str, csv: str, **form: str
) -> tuple[int, str]:
    answer = client.post(
        "/console/import",
        data={"kind": kind, "file": (io.BytesIO(csv.encode()), f"{kind}.csv")} | form,
        headers=headers,
    )
    return answer.status_code, answer.get_data(as_text=True)


def test_an_admin_imports_customers_then_their_orders(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    headers = admin(app, client, demo_installation)
    customers = "customer_id,name,email\nSHOP-1,Ada Shop,ada-shop@example.com\n"
    orders = (
        "order_id,placed_at,customer_id,amount\n"
        "SO-1,2026-11-01,SHOP-1,42.50\n"
        "SO-2,2026-11-02,NOBODY,10.00\n"
    )

    status, html = upload(client, headers, "customers", customers)
    assert status == 200 and "1 added" in html
    status, html = upload(client, headers, "orders", orders, dry_run="1")
    assert status == 200 and "1 would be added" in html
    assert session.scalar(sa.select(Order.id).where(Order.external_id == "SO-1")) is None

    status, html = upload(client, headers, "orders", orders)

    assert status == 200 and "1 added" in html and "1 refused" in html and "Line 3" in html
    order = session.scalars(sa.select(Order).where(Order.external_id == "SO-1")).one()
    assert order.installation_id == demo_installation.id and order.amount_cents == 4250


def test_only_an_admin_may_import(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    supervisor = bearer_for(app, client, demo_installation, SUPERVISOR)
    csv = "customer_id,name\nSHOP-2,Not Imported\n"
    assert upload(client, supervisor, "customers", csv)[0] == 403
    assert upload(client, {}, "customers", csv)[0] == 401
    assert session.scalar(sa.select(Customer.id).where(Customer.external_id == "SHOP-2")) is None
