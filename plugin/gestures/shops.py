"""The shop an installation gives gestures in, and the shop's ids of its customers and orders.

`shop_for` is what the outbox's gesture step calls: the connected Shopify store (through the
connection's client, its call budget shared with the sidebar's reads), the demo's own fake
store for the demo installation, or None when no shop is connected (gestures stay record only).
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers.shopify import EXTERNAL_ID_PREFIX
from plugin.customers.shopify import SOURCE as SHOPIFY_SOURCE
from plugin.customers.shopify_connection import shopify_client_for
from plugin.demo import demo_shop
from plugin.gestures.interface import GestureShop
from plugin.gestures.shopify_shop import ShopifyGestureShop
from plugin.helpdesks import Connections
from plugin.helpdesks import demo as demo_helpdesk
from plugin.models import Customer, CustomerFact, Installation, Order

_DIGITS = re.compile(r"[0-9]{1,30}")


def shop_for(
    session: Session, installation: Installation, *, connections: Connections
) -> GestureShop | None:
    """The installation's gesture shop, or None when it has no shop connected.

    Raises CredentialsError when the stored Shopify token cannot be read.
    """
    if installation.platform == demo_helpdesk.PLATFORM:
        return demo_shop.demo_gesture_shop(session, installation)
    client = shopify_client_for(
        installation, connections.vault, connections.accounts, timeout=connections.timeout
    )
    return ShopifyGestureShop(client) if client is not None else None


def shop_customer_id(
    session: Session, installation: Installation, customer: Customer
) -> str | None:
    """The shop's id (a gid) of a stored customer, or None when the shop does not know them.

    A customer synced from Shopify carries it as a fact (`shopify_customer_id`) or in their
    external id (shopify:<id>); the demo's customers are the demo store's by their row id.
    """
    if customer.installation_id != installation.id:
        return None
    if installation.platform == demo_helpdesk.PLATFORM:
        return demo_shop.customer_gid(customer.id)
    fact = session.scalar(
        sa.select(CustomerFact.value).where(
            CustomerFact.installation_id == installation.id,
            CustomerFact.customer_id == customer.id,
            CustomerFact.name == "shopify_customer_id",
            CustomerFact.source == SHOPIFY_SOURCE,
        )
    )
    numeric = str(fact) if fact is not None else _shopify_number(customer.external_id)
    return f"gid://shopify/Customer/{numeric}" if numeric and _DIGITS.fullmatch(numeric) else None


def shop_order_id(installation: Installation, order: Order) -> str | None:
    """The shop's id (a gid) of a stored order, or None for an order the shop does not have
    (one imported by CSV or pushed, under the company's own number).
    """
    if order.installation_id != installation.id:
        return None
    if installation.platform == demo_helpdesk.PLATFORM:
        return demo_shop.order_gid(order.id)
    numeric = _shopify_number(order.external_id)
    return f"gid://shopify/Order/{numeric}" if numeric else None


def _shopify_number(external_id: str | None) -> str | None:
    if external_id is None or not external_id.startswith(EXTERNAL_ID_PREFIX):
        return None
    numeric = external_id.removeprefix(EXTERNAL_ID_PREFIX)
    return numeric if _DIGITS.fullmatch(numeric) else None
