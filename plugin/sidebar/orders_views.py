"""The sidebar's recent orders card: the customer's last orders and the one the ticket names.

`GET /sidebar/orders` (the sidebar's bearer session, as the other cards) renders the card, or
answers 204 when the customer has no orders to show. Live from the connected shop through the
banner's upstream cache, else from stored orders; it writes nothing but caches.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from plugin import db
from plugin.customers import recent_orders
from plugin.customers.recent_orders import RecentOrders
from plugin.domain.masking import FieldGroup
from plugin.goodwill.money import exact_money
from plugin.helpdesks.runtime import helpdesks
from plugin.models import Installation
from plugin.sidebar.recognition import customer_id_of, stored_orders
from plugin.sidebar.snapshot import HelpdeskSnapshot
from plugin.sidebar.views import (
    CardRequest,
    card_to_show,
    shop_answer,
)
from plugin.web.i18n import lazy_gettext, request_locale
from plugin.web.masking import viewer_mask

bp = Blueprint("orders", __name__, url_prefix="/sidebar")
TEMPLATE = "sidebar/_orders.html"

# Words for the statuses of plugin/customers/records.py, in the request's language.
STATUS_WORDS = {
    "pending": lazy_gettext("Payment pending"),
    "authorized": lazy_gettext("Payment authorized"),
    "paid": lazy_gettext("Paid"),
    "partially_paid": lazy_gettext("Partly paid"),
    "partially_refunded": lazy_gettext("Partly refunded"),
    "refunded": lazy_gettext("Refunded"),
    "voided": lazy_gettext("Voided"),
    "unfulfilled": lazy_gettext("Not shipped"),
    "partial": lazy_gettext("Partly shipped"),
    "fulfilled": lazy_gettext("Shipped"),
    "returned": lazy_gettext("Returned"),
}


@bp.get("/orders")
def card() -> ResponseReturnValue:
    """Render the orders card for the ticket the page is showing; 204 without orders."""
    opened = card_to_show(request.args, use_page_ticket=True)
    if not isinstance(opened, CardRequest):
        return opened
    orders = read_orders(opened.installation, opened.snapshot, now=opened.now)
    if orders is None or not orders.orders:
        return "", 204
    return render_orders(opened.installation, orders), 200


def read_orders(
    installation: Installation, snapshot: HelpdeskSnapshot, *, now: datetime
) -> RecentOrders | None:
    """The requester's recent orders: the shop's (cached) answer, else what is stored."""
    text = snapshot.ticket.order_text
    shared = helpdesks()
    deadline = time.monotonic() + shared.policy.budget_seconds
    shop = shop_answer(installation, snapshot, deadline)
    if shop is not None and shop.customer is not None:
        return recent_orders.from_shop(shop.customer, ticket_text=text)

    def stored() -> RecentOrders | None:
        session = db.session()
        customer_id = customer_id_of(
            session, installation.id, snapshot.requester, reads=shared.reads
        )
        if customer_id is None:
            return None
        return stored_orders(
            session, installation.id, customer_id, ticket_text=text, now=now, reads=shared.reads
        )

    # Kept a few seconds per process, as the banner's stored facts are (read_cache.py): keyed
    # by the requester exactly as fetched and the text that may name an order.
    key = ("recent orders", repr(snapshot.requester), text)
    found: RecentOrders | None = shared.reads.get(installation.id, key, stored)
    return found


def render_orders(installation: Installation, orders: RecentOrders) -> str:
    """The card's HTML, amounts in each order's currency (the installation's when unsaid).

    The viewer's mask may hide the order lines (the card then says only how many there are)
    or their totals; what it hides is not handed to the template at all.
    """
    mask = viewer_mask(installation)
    locale = request_locale()

    def render() -> str:
        if mask.hides(FieldGroup.ORDER_LINES):
            return render_template(TEMPLATE, orders=None, count=len(orders.orders))
        hides_money = mask.hides(FieldGroup.MONEY)
        return render_template(
            TEMPLATE,
            orders=_without_totals(orders) if hides_money else orders,
            hides_money=hides_money,
            status_words=STATUS_WORDS,
            total=lambda cents, currency: exact_money(
                cents, currency or installation.currency, locale
            ),
        )

    # Everything the template reads, as values (it says no relative time): kept rendered.
    inputs = (TEMPLATE, installation.id, installation.currency, mask.key, locale, orders)
    return helpdesks().rendered.render(inputs, render)


def _without_totals(orders: RecentOrders) -> RecentOrders:
    """The orders with their totals zeroed: a masked viewer's card says "hidden" instead."""
    return replace(
        orders,
        orders=tuple(replace(order, amount_cents=0) for order in orders.orders),
        named=replace(orders.named, amount_cents=0) if orders.named else None,
    )
