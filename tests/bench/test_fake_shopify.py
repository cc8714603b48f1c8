"""The fake Shopify served over HTTP: the real client gives through it, its faults are set at
run time, a lost answer leaves a gesture the next look finds, and `shopify check` reads the
scopes it grants.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
from flask import Flask
from sqlalchemy.orm import Session

from bench.fake_shopify import FakeShopifyServer, customer_id, order_id, stocked_engine
from plugin.customers.shopify_client import ShopifyClient
from plugin.customers.shopify_connection import check_shopify, connect_shopify
from plugin.demo.fake_shopify import ACCESS_TOKEN, Faults
from plugin.gestures.interface import GestureKind, GestureRequest, ShopUnavailable
from plugin.gestures.shopify_shop import ShopifyGestureShop
from plugin.helpdesks.credentials import EXTENSION_KEY, CredentialsVault
from plugin.helpdesks.http import CallBudget, new_session
from plugin.helpdesks.installations import CheckStatus
from plugin.models import Installation


def shop_at(url: str, *, timeout: float = 2.0) -> ShopifyGestureShop:
    client = ShopifyClient(
        session=new_session(),
        shop="bench",
        access_token=ACCESS_TOKEN,
        budget=CallBudget(calls_per_minute=10_000),
        timeout=timeout,
        api_base_url=url,
    )
    return ShopifyGestureShop(client)


def refund(marker: str, amount: str = "10") -> GestureRequest:
    return GestureRequest(
        kind=GestureKind.REFUND,
        marker=marker,
        customer_id=customer_id(1),
        currency="USD",
        amount=Decimal(amount),
        order_id=order_id(1),
    )


def test_gestures_are_given_over_http_and_counted() -> None:
    engine = stocked_engine(customers=2)
    with FakeShopifyServer(engine) as server:
        shop = shop_at(server.url)
        given = shop.give(refund("bench-1"))
        stats = requests.get(f"{server.url}/_fake/stats", timeout=2).json()
        snapshot = requests.get(f"{server.url}/_fake/snapshot", timeout=2).json()

    assert given.amount == Decimal("10.00")
    assert stats["calls"] == {"order": 1, "refundCreate": 1}
    assert len(snapshot["refunds"]) == 1
    assert snapshot["orders"][order_id(1)]["refunded"] == "10.00"


def test_faults_set_at_run_time_and_a_lost_answer_found_after() -> None:
    engine = stocked_engine(customers=1, seed=3)
    with FakeShopifyServer(engine) as server:
        changed = requests.post(
            f"{server.url}/_fake/faults",
            json={"lost_answer": 1.0, "hang_seconds": 1.0},
            timeout=2,
        )
        refused = requests.post(f"{server.url}/_fake/faults", json={"nope": 1}, timeout=2)
        shop = shop_at(server.url, timeout=0.3)
        with pytest.raises(ShopUnavailable) as raised:
            shop.give(refund("bench-2"))
        engine.faults = Faults()
        found = shop.find(refund("bench-2"))

    assert changed.status_code == 200 and changed.json()["lost_answer"] == 1.0
    assert refused.status_code == 400
    assert raised.value.outcome_unknown
    assert found is not None
    assert len(engine.snapshot()["refunds"]) == 1


def test_server_errors_over_http_are_unavailable() -> None:
    engine = stocked_engine(customers=1, faults=Faults(server_error=1.0))
    with FakeShopifyServer(engine) as server, pytest.raises(ShopUnavailable) as raised:
        shop_at(server.url).give(refund("bench-3"))
    assert raised.value.kind == "server_error"
    assert engine.faults_injected["server_error"] == 1


@pytest.mark.parametrize(
    ("scopes", "words"),
    [
        (None, "Can give discount codes, gift cards, refunds, free replacements"),
        (
            frozenset({"read_customers", "read_orders", "write_discounts"}),
            "gift cards need write_gift_cards, write_customers; refunds need write_orders",
        ),
    ],
)
def test_shopify_check_says_which_gestures_the_connection_can_give(
    app: Flask, session: Session, scopes: frozenset[str] | None, words: str
) -> None:
    acme = Installation(platform="zendesk", account="acme", display_name="Acme")
    session.add(acme)
    session.flush()
    vault: CredentialsVault = app.extensions[EXTENSION_KEY]
    engine = stocked_engine(customers=1)
    if scopes is not None:
        engine.scopes = scopes
    with FakeShopifyServer(engine) as server:
        connect_shopify(
            session, acme, vault, shop="bench", access_token=ACCESS_TOKEN, api_base_url=server.url
        )
        with new_session() as http:
            report = check_shopify(acme, vault, http_session=http, timeout=2)

    gestures = report.checks[-1]
    assert gestures.name == "Gestures the shop can give"
    assert gestures.status is CheckStatus.OK
    assert words in gestures.message
