"""The demo's shop: the demo installation's gestures land in its fake Shopify (kept in the
database), its customers and named orders have shop ids, and /demo/shop lists what was given.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin import db
from plugin.customers.shopify_connection import connect_shopify
from plugin.gestures.interface import GestureKind, GestureRequest, ShopRefused
from plugin.gestures.shopify_shop import ShopifyGestureShop
from plugin.gestures.shops import shop_customer_id, shop_for, shop_order_id
from plugin.helpdesks import Connections
from plugin.helpdesks.credentials import EXTENSION_KEY, CredentialsVault
from plugin.helpdesks.http import AccountSessions
from plugin.models import Customer, DemoShopState, Installation, Order
from tests.conftest import build_app, dispose_app
from tests.seeded_demo import SeededDemos


def connections(app: Flask) -> Connections:
    vault: CredentialsVault = app.extensions[EXTENSION_KEY]
    return Connections(vault=vault, accounts=AccountSessions(), timeout=2.0)


def margaret_and_her_latest_order(
    session: Session, installation: Installation
) -> tuple[Customer, Order]:
    margaret = session.scalars(
        sa.select(Customer).where(
            Customer.installation_id == installation.id, Customer.name == "Margaret Okafor"
        )
    ).one()
    order = session.scalars(
        sa.select(Order)
        .where(Order.customer_id == margaret.id)
        .order_by(Order.placed_at.desc())
        .limit(1)
    ).one()
    return margaret, order


def test_the_demo_refunds_and_replaces_margarets_named_order(
    app: Flask, session: Session, demo_installation: Installation
) -> None:
    margaret, order = margaret_and_her_latest_order(session, demo_installation)
    shop = shop_for(session, demo_installation, connections=connections(app))
    assert isinstance(shop, ShopifyGestureShop)
    customer_id = shop_customer_id(session, demo_installation, margaret)
    order_id = shop_order_id(demo_installation, order)
    assert customer_id and order_id

    refundable = shop.refundable(order_id)
    assert refundable == Decimal(order.amount_cents) / 100
    refund = shop.give(
        GestureRequest(
            kind=GestureKind.REFUND,
            marker="demo-refund-1",
            customer_id=customer_id,
            currency="USD",
            amount=Decimal("5.00"),
            order_id=order_id,
            reason="Chipped mug",
        )
    )
    replacement = shop.give(
        GestureRequest(
            kind=GestureKind.REPLACEMENT,
            marker="demo-replace-1",
            customer_id=customer_id,
            currency="USD",
            order_id=order_id,
        )
    )
    session.commit()

    assert refund.amount == Decimal("5.00")
    assert replacement.reference and replacement.reference.startswith("#R")
    assert shop.refundable(order_id) == refundable - 5
    with pytest.raises(ShopRefused, match="can still be refunded"):
        shop.give(
            GestureRequest(
                kind=GestureKind.REFUND,
                marker="demo-refund-2",
                customer_id=customer_id,
                currency="USD",
                amount=refundable,
                order_id=order_id,
            )
        )


def test_the_demo_shop_survives_a_new_session(
    app: Flask, session: Session, demo_installation: Installation
) -> None:
    margaret, _order = margaret_and_her_latest_order(session, demo_installation)
    shop = shop_for(session, demo_installation, connections=connections(app))
    assert shop is not None
    card = GestureRequest(
        kind=GestureKind.GIFT_CARD,
        marker="demo-card-1",
        customer_id=shop_customer_id(session, demo_installation, margaret),
        currency="USD",
        amount=Decimal("15"),
    )
    given = shop.give(card)
    session.commit()

    with db.database(app).sessions() as later:
        installation = later.get(Installation, demo_installation.id)
        assert installation is not None
        again = shop_for(later, installation, connections=connections(app))
        assert again is not None
        found = again.find(card)
        assert later.get(DemoShopState, installation.id) is not None
    assert found is not None and found.shop_id == given.shop_id


def test_an_installation_without_a_shop_has_none_and_a_connected_one_has_shopify(
    app: Flask, session: Session
) -> None:
    acme = Installation(platform="zendesk", account="acme", display_name="Acme")
    session.add(acme)
    session.flush()
    assert shop_for(session, acme, connections=connections(app)) is None

    vault: CredentialsVault = app.extensions[EXTENSION_KEY]
    connect_shopify(session, acme, vault, shop="acme", access_token="shpat_x")
    shop = shop_for(session, acme, connections=connections(app))
    assert isinstance(shop, ShopifyGestureShop)
    assert repr(shop) == "<ShopifyGestureShop acme.myshopify.com>"


def test_shopify_ids_come_from_the_synced_customer_and_order(session: Session) -> None:
    acme = Installation(platform="zendesk", account="acme", display_name="Acme")
    session.add(acme)
    session.flush()
    synced = Customer(installation_id=acme.id, external_id="shopify:7001", name="Priya")
    imported = Customer(installation_id=acme.id, external_id="C-1", name="Ada")
    session.add_all([synced, imported])
    session.flush()
    order = Order(
        installation_id=acme.id,
        customer_id=synced.id,
        external_id="shopify:5501",
        placed_at=sa.func.now(),
        amount_cents=100,
        source="shopify",
    )
    csv_order = Order(
        installation_id=acme.id,
        customer_id=imported.id,
        external_id="ORD-1",
        placed_at=sa.func.now(),
        amount_cents=100,
        source="csv",
    )

    assert shop_customer_id(session, acme, synced) == "gid://shopify/Customer/7001"
    assert shop_customer_id(session, acme, imported) is None
    assert shop_order_id(acme, order) == "gid://shopify/Order/5501"
    assert shop_order_id(acme, csv_order) is None


# --- The demo shop page ------------------------------------------------------------------------


def test_the_demo_shop_page_lists_what_was_given_escaped_with_last_4_only(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    margaret, _order = margaret_and_her_latest_order(session, demo_installation)
    shop = shop_for(session, demo_installation, connections=connections(app))
    assert shop is not None
    customer_id = shop_customer_id(session, demo_installation, margaret)
    card = shop.give(
        GestureRequest(
            kind=GestureKind.GIFT_CARD,
            marker="demo-card-2",
            customer_id=customer_id,
            currency="USD",
            amount=Decimal("15"),
        )
    )
    shop.give(
        GestureRequest(
            kind=GestureKind.DISCOUNT_CODE,
            marker="demo-code-2",
            customer_id=customer_id,
            currency="USD",
            percent=Decimal(10),
            code="SORRY-10-DEMO",
        )
    )
    _margaret, order = margaret_and_her_latest_order(session, demo_installation)
    shop.give(
        GestureRequest(
            kind=GestureKind.REFUND,
            marker="demo-refund-3",
            customer_id=customer_id,
            currency="USD",
            amount=Decimal("3"),
            order_id=shop_order_id(demo_installation, order),
            reason="<script>alert(1)</script>",
        )
    )
    session.commit()

    page = client.get("/demo/shop")
    html = page.get_data(as_text=True)

    assert page.status_code == 200
    assert "default-src" in page.headers["Content-Security-Policy"]
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert card.gift_card_code and card.gift_card_code not in html
    assert f"…{card.code_last4}" in html
    assert "SORRY-10-DEMO" in html and "10 % off" in html
    assert "Margaret Okafor" in html
    assert f"3.00 USD on {order.external_id}" in html


def test_the_demo_shop_page_says_when_nothing_was_given_and_the_desk_links_to_it(
    client: FlaskClient, demo_installation: Installation
) -> None:
    html = client.get("/demo/shop").get_data(as_text=True)
    desk = client.get("/demo").get_data(as_text=True)

    assert "Nothing has been given in the shop yet" in html
    assert re.search(r'href="/demo/shop"', desk)


def test_the_demo_shop_page_without_data_says_how_to_seed(client: FlaskClient) -> None:
    answer = client.get("/demo/shop")
    assert answer.status_code == 503 and "demo seed" in answer.get_data(as_text=True)


def test_the_demo_shop_keeps_what_was_given_on_both_databases(
    database_url: str, tmp_path: Path, seeded_demos: SeededDemos
) -> None:
    app = build_app(database_url, tmp_path / "instance")
    try:
        with db.database(app).sessions() as session:
            installation = seeded_demos.load(app, session)
            margaret, order = margaret_and_her_latest_order(session, installation)
            shop = shop_for(session, installation, connections=connections(app))
            assert shop is not None
            refund = GestureRequest(
                kind=GestureKind.REFUND,
                marker="demo-refund-pg",
                customer_id=shop_customer_id(session, installation, margaret),
                currency="USD",
                amount=Decimal("4.50"),
                order_id=shop_order_id(installation, order),
            )
            given = shop.give(refund)
            session.commit()
        with db.database(app).sessions() as session:
            reread = session.get(Installation, installation.id)
            assert reread is not None
            again = shop_for(session, reread, connections=connections(app))
            assert again is not None
            found = again.find(refund)
    finally:
        dispose_app(app)
    assert found is not None and found.shop_id == given.shop_id
