"""The Shopify gesture shop against Shopify's documented shapes: each mutation's request (the
document names it, the variables as Shopify expects, the token header) and its error mapping.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
import responses

from plugin.customers.shopify_client import API_VERSION, ShopifyClient
from plugin.gestures.interface import (
    GestureKind,
    GestureRequest,
    ShopRefused,
    ShopUnavailable,
)
from plugin.gestures.shopify_shop import ShopifyGestureShop
from plugin.helpdesks.http import CallBudget, new_session

SHOP = "regulars-test.myshopify.com"
URL = f"https://{SHOP}/admin/api/{API_VERSION}/graphql.json"
TOKEN = "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"
CUSTOMER = "gid://shopify/Customer/7001"
ORDER = "gid://shopify/Order/5501"
NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
FULL_CODE = "gk7x2m9q4w8z5rhu"
COST = {
    "cost": {
        "requestedQueryCost": 10,
        "actualQueryCost": 10,
        "throttleStatus": {
            "maximumAvailable": 2000.0,
            "currentlyAvailable": 1990.0,
            "restoreRate": 100.0,
        },
    }
}

Sent = list[dict[str, Any]]


def shop() -> ShopifyGestureShop:
    client = ShopifyClient(
        session=new_session(),
        shop=SHOP,
        access_token=TOKEN,
        budget=CallBudget(calls_per_minute=1000),
        timeout=2.0,
    )
    return ShopifyGestureShop(client, clock=lambda: NOW)


def request(kind: GestureKind, **fields: Any) -> GestureRequest:
    defaults: dict[str, Any] = {
        "marker": "rg-act-42",
        "customer_id": CUSTOMER,
        "currency": "USD",
    }
    return GestureRequest(kind=kind, **{**defaults, **fields})


def answer(rsps: responses.RequestsMock, data: dict[str, Any], sent: Sent) -> None:
    """Answer the next call with `data`, keeping what was sent (its body and token)."""

    def reply(call: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = json.loads(call.body or b"{}")
        sent.append({**body, "token": call.headers.get("X-Shopify-Access-Token")})
        return 200, {}, json.dumps({"data": data, "extensions": COST})

    rsps.add_callback(responses.POST, URL, callback=reply)


# --- Request shapes, one per mutation --------------------------------------------------------


def test_a_fixed_amount_code_for_one_customer_once(rsps: responses.RequestsMock) -> None:
    sent: Sent = []
    node = {"codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/1"}, "userErrors": []}
    answer(rsps, {"discountCodeBasicCreate": node}, sent)

    given = shop().give(
        request(
            GestureKind.DISCOUNT_CODE,
            amount=Decimal("8"),
            code="THANKS-8-X2Q",
            expires_at=datetime(2027, 1, 31),
            minimum_order=Decimal("30"),
        )
    )

    (call,) = sent
    assert "discountCodeBasicCreate(basicCodeDiscount: $input)" in call["query"]
    assert call["token"] == TOKEN
    assert call["variables"]["input"] == {
        "title": "Regulars goodwill rg-act-42",
        "code": "THANKS-8-X2Q",
        "startsAt": "2026-12-04T10:00:00Z",
        "endsAt": "2027-01-31T00:00:00Z",
        "context": {"customers": {"add": [CUSTOMER]}},
        "usageLimit": 1,
        "appliesOncePerCustomer": True,
        "minimumRequirement": {"subtotal": {"greaterThanOrEqualToSubtotal": "30.00"}},
        "customerGets": {
            "value": {"discountAmount": {"amount": "8.00", "appliesOnEachItem": False}},
            "items": {"all": True},
        },
    }
    assert given.code == "THANKS-8-X2Q"
    assert given.shop_id == "gid://shopify/DiscountCodeNode/1"
    assert given.amount == Decimal("8")


def test_a_percent_code_sends_a_fraction(rsps: responses.RequestsMock) -> None:
    sent: Sent = []
    node = {"codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/2"}, "userErrors": []}
    answer(rsps, {"discountCodeBasicCreate": node}, sent)

    given = shop().give(request(GestureKind.DISCOUNT_CODE, percent=Decimal(15), code="SORRY15"))

    value = sent[0]["variables"]["input"]["customerGets"]["value"]
    assert value == {"percentage": 0.15}
    assert "minimumRequirement" not in sent[0]["variables"]["input"]
    assert sent[0]["variables"]["input"]["endsAt"] is None
    assert given.percent == Decimal(15) and given.amount is None


def test_free_shipping_is_a_free_shipping_code(rsps: responses.RequestsMock) -> None:
    sent: Sent = []
    node = {"codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/3"}, "userErrors": []}
    answer(rsps, {"discountCodeFreeShippingCreate": node}, sent)

    given = shop().give(request(GestureKind.FREE_SHIPPING, code="SHIPFREE-42"))

    query, body = sent[0]["query"], sent[0]["variables"]["input"]
    assert "discountCodeFreeShippingCreate(freeShippingCodeDiscount: $input)" in query
    assert body["destination"] == {"all": True}
    assert body["usageLimit"] == 1 and body["appliesOncePerCustomer"] is True
    assert "customerGets" not in body
    assert given.kind is GestureKind.FREE_SHIPPING and given.code == "SHIPFREE-42"


def test_a_gift_card_answers_its_full_code_once_and_logs_only_its_last_4(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    sent: Sent = []
    card = {
        "id": "gid://shopify/GiftCard/88",
        "lastCharacters": FULL_CODE[-4:],
        "balance": {"amount": "15.0", "currencyCode": "USD"},
    }
    payload = {"giftCard": card, "giftCardCode": FULL_CODE, "userErrors": []}
    answer(rsps, {"giftCardCreate": payload}, sent)
    caplog.set_level(logging.DEBUG)

    given = shop().give(
        request(
            GestureKind.GIFT_CARD,
            amount=Decimal("15"),
            reason="Chipped mug",
            expires_at=datetime(2027, 12, 4, 12, 30),
        )
    )

    assert "giftCardCreate(input: $input)" in sent[0]["query"]
    assert sent[0]["variables"]["input"] == {
        "initialValue": "15.00",
        "customerId": CUSTOMER,
        "note": "Chipped mug [rg-act-42]",
        "expiresOn": "2027-12-04",
    }
    assert given.gift_card_code == FULL_CODE
    assert given.code_last4 == "5rhu" and given.balance == Decimal("15.0")
    assert FULL_CODE not in repr(given)
    assert FULL_CODE not in caplog.text
    assert "5rhu" in caplog.text


def refundable_order(
    *, refundable: str = "60.00", customer: str = CUSTOMER, refunds: list[Any] | None = None
) -> dict[str, Any]:
    return {
        "order": {
            "id": ORDER,
            "name": "#1042",
            "customer": {"id": customer},
            "suggestedRefund": {
                "maximumRefundableSet": {
                    "shopMoney": {"amount": refundable, "currencyCode": "USD"}
                },
                "suggestedTransactions": [
                    {
                        "gateway": "shopify_payments",
                        "parentTransaction": {"id": "gid://shopify/OrderTransaction/9"},
                        "maximumRefundableSet": {"shopMoney": {"amount": refundable}},
                    }
                ],
            },
            "refunds": refunds or [],
        }
    }


def test_a_refund_names_its_gateway_and_parent_and_carries_the_idempotency_key(
    rsps: responses.RequestsMock,
) -> None:
    sent: Sent = []
    answer(rsps, refundable_order(), sent)
    refund = {
        "id": "gid://shopify/Refund/31",
        "note": "Late delivery [rg-act-42]",
        "totalRefundedSet": {"shopMoney": {"amount": "12.5", "currencyCode": "USD"}},
    }
    answer(rsps, {"refundCreate": {"refund": refund, "userErrors": []}}, sent)

    given = shop().give(
        request(GestureKind.REFUND, amount=Decimal("12.50"), order_id=ORDER, reason="Late delivery")
    )

    lookup, mutation = sent
    assert lookup["variables"] == {"id": ORDER} and "suggestedRefund" in lookup["query"]
    assert 'refundCreate(input: $input) @idempotent(key: "rg-act-42")' in mutation["query"]
    assert mutation["variables"]["input"] == {
        "orderId": ORDER,
        "note": "Late delivery [rg-act-42]",
        "notify": True,
        "transactions": [
            {
                "orderId": ORDER,
                "gateway": "shopify_payments",
                "kind": "REFUND",
                "amount": "12.50",
                "parentId": "gid://shopify/OrderTransaction/9",
            }
        ],
    }
    assert given.amount == Decimal("12.5") and given.reference == "31"


def test_a_refund_above_what_is_refundable_is_refused_before_sending(
    rsps: responses.RequestsMock,
) -> None:
    sent: Sent = []
    answer(rsps, refundable_order(refundable="10.00"), sent)

    with pytest.raises(ShopRefused, match=r"Only 10\.00 USD of order #1042 can still be refunded"):
        shop().give(request(GestureKind.REFUND, amount=Decimal("12.50"), order_id=ORDER))
    assert len(sent) == 1  # the lookup only


def test_another_customers_order_is_refused(rsps: responses.RequestsMock) -> None:
    sent: Sent = []
    answer(rsps, refundable_order(customer="gid://shopify/Customer/1"), sent)

    with pytest.raises(ShopRefused, match="another customer's"):
        shop().give(request(GestureKind.REFUND, amount=Decimal("5"), order_id=ORDER))


def test_a_replacement_is_a_draft_order_at_100_percent_completed(
    rsps: responses.RequestsMock,
) -> None:
    sent: Sent = []
    answer(rsps, {"draftOrders": {"nodes": []}}, sent)
    items = [
        {
            "id": "gid://shopify/LineItem/1",
            "quantity": 2,
            "variant": {"id": "gid://shopify/ProductVariant/4"},
        },
        {
            "id": "gid://shopify/LineItem/2",
            "quantity": 1,
            "variant": {"id": "gid://shopify/ProductVariant/5"},
        },
    ]
    order = {
        "id": ORDER,
        "name": "#1042",
        "customer": {"id": CUSTOMER},
        "lineItems": {"nodes": items},
    }
    answer(rsps, {"order": order}, sent)
    answer(
        rsps,
        {
            "draftOrderCreate": {
                "draftOrder": {"id": "gid://shopify/DraftOrder/7"},
                "userErrors": [],
            }
        },
        sent,
    )
    completed = {
        "id": "gid://shopify/DraftOrder/7",
        "order": {"id": "gid://shopify/Order/6001", "name": "#1077"},
    }
    answer(rsps, {"draftOrderComplete": {"draftOrder": completed, "userErrors": []}}, sent)

    given = shop().give(
        request(
            GestureKind.REPLACEMENT,
            order_id=ORDER,
            line_item_ids=("gid://shopify/LineItem/1",),
            reason="Broken in transit",
        )
    )

    lookup, _order, create, complete = sent
    assert lookup["variables"] == {"query": 'tag:"rg-act-42"'}
    assert "draftOrderCreate(input: $input)" in create["query"]
    assert create["variables"]["input"] == {
        "customerId": CUSTOMER,
        "lineItems": [{"variantId": "gid://shopify/ProductVariant/4", "quantity": 2}],
        "appliedDiscount": {
            "valueType": "PERCENTAGE",
            "value": 100.0,
            "title": "Free replacement",
            "description": "Broken in transit",
        },
        "tags": ["rg-act-42"],
        "note": "Replacement for #1042: Broken in transit [rg-act-42]",
    }
    assert "draftOrderComplete(id: $id)" in complete["query"]
    assert complete["variables"] == {"id": "gid://shopify/DraftOrder/7"}
    assert given.shop_id == "gid://shopify/Order/6001" and given.reference == "#1077"


def test_find_reads_codes_gift_cards_refunds_and_replacements_by_their_marker(
    rsps: responses.RequestsMock,
) -> None:
    sent: Sent = []
    code = {
        "id": "gid://shopify/DiscountCodeNode/1",
        "codeDiscount": {"title": "Regulars goodwill rg-act-42"},
    }
    answer(rsps, {"codeDiscountNodeByCode": code}, sent)
    cards = [
        {
            "id": "gid://shopify/GiftCard/2",
            "note": "other [rg-act-4]",
            "lastCharacters": "aaaa",
            "balance": {"amount": "5", "currencyCode": "USD"},
        },
        {
            "id": "gid://shopify/GiftCard/1",
            "note": "Sorry [rg-act-42]",
            "lastCharacters": "5rhu",
            "balance": {"amount": "15", "currencyCode": "USD"},
        },
    ]
    answer(rsps, {"giftCards": {"nodes": cards}}, sent)
    refund = {
        "id": "gid://shopify/Refund/31",
        "note": "x [rg-act-42]",
        "totalRefundedSet": {"shopMoney": {"amount": "5", "currencyCode": "USD"}},
    }
    answer(rsps, refundable_order(refunds=[refund]), sent)
    drafts = [
        {
            "id": "gid://shopify/DraftOrder/7",
            "tags": ["rg-act-42"],
            "order": {"id": "gid://shopify/Order/6", "name": "#1077"},
        }
    ]
    answer(rsps, {"draftOrders": {"nodes": drafts}}, sent)
    gesture_shop = shop()

    found_code = gesture_shop.find(
        request(GestureKind.DISCOUNT_CODE, amount=Decimal(8), code="THANKS")
    )
    found_card = gesture_shop.find(request(GestureKind.GIFT_CARD, amount=Decimal(15)))
    found_refund = gesture_shop.find(request(GestureKind.REFUND, amount=Decimal(5), order_id=ORDER))
    found_replacement = gesture_shop.find(request(GestureKind.REPLACEMENT, order_id=ORDER))

    assert found_code is not None and found_code.shop_id == "gid://shopify/DiscountCodeNode/1"
    assert found_card is not None and found_card.code_last4 == "5rhu"
    assert found_card.gift_card_code is None  # the full code is never readable again
    assert found_refund is not None and found_refund.reference == "31"
    assert found_replacement is not None and found_replacement.reference == "#1077"
    assert sent[0]["variables"] == {"code": "THANKS"}
    assert sent[1]["variables"] == {"query": "source:api_client"}


def test_a_code_taken_by_someone_else_is_refused_in_words(rsps: responses.RequestsMock) -> None:
    sent: Sent = []
    taken = {
        "codeDiscountNode": None,
        "userErrors": [
            {
                "field": ["basicCodeDiscount", "code"],
                "code": "TAKEN",
                "message": "Code must be unique.",
            }
        ],
    }
    answer(rsps, {"discountCodeBasicCreate": taken}, sent)
    other = {"id": "gid://shopify/DiscountCodeNode/9", "codeDiscount": {"title": "Summer sale"}}
    answer(rsps, {"codeDiscountNodeByCode": other}, sent)

    with pytest.raises(ShopRefused, match="The discount code SUMMER is already taken in the shop"):
        shop().give(request(GestureKind.DISCOUNT_CODE, amount=Decimal(5), code="SUMMER"))


# --- Error mapping ------------------------------------------------------------------------------


def give_card() -> None:
    shop().give(request(GestureKind.GIFT_CARD, amount=Decimal("10")))


def test_user_errors_are_refusals_in_shopifys_words(rsps: responses.RequestsMock) -> None:
    errors = [
        {
            "field": ["input", "initialValue"],
            "code": "INVALID",
            "message": "Initial value is too large",
        }
    ]
    answer(
        rsps, {"giftCardCreate": {"giftCard": None, "giftCardCode": None, "userErrors": errors}}, []
    )

    with pytest.raises(
        ShopRefused, match="Shopify refused the gift card: Initial value is too large"
    ):
        give_card()


def test_throttled_is_unavailable_with_the_buckets_wait(rsps: responses.RequestsMock) -> None:
    throttled_cost = {
        "cost": {
            "requestedQueryCost": 10,
            "throttleStatus": {
                "maximumAvailable": 2000.0,
                "currentlyAvailable": 0.0,
                "restoreRate": 100.0,
            },
        }
    }
    body = {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": throttled_cost,
    }
    rsps.post(URL, json=body)

    with pytest.raises(ShopUnavailable) as raised:
        give_card()
    assert raised.value.kind == "throttled"
    assert raised.value.retry_after == pytest.approx(0.1)
    assert not raised.value.outcome_unknown


def test_429_is_unavailable_for_its_retry_after(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, status=429, json={"errors": "Throttled"}, headers={"Retry-After": "3.0"})

    with pytest.raises(ShopUnavailable) as raised:
        give_card()
    assert raised.value.kind == "throttled" and raised.value.retry_after == 3.0


@pytest.mark.parametrize(("status", "unknown"), [(500, True), (502, True), (503, False)])
def test_5xx_on_a_write_may_have_given_it(
    rsps: responses.RequestsMock, status: int, unknown: bool
) -> None:
    rsps.post(URL, status=status, body="oops")

    with pytest.raises(ShopUnavailable) as raised:
        give_card()
    assert raised.value.kind == "server_error"
    assert raised.value.outcome_unknown is unknown


def test_5xx_on_a_lookup_gave_nothing(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, status=500, body="oops")

    with pytest.raises(ShopUnavailable) as raised:
        shop().find(request(GestureKind.GIFT_CARD, amount=Decimal("10")))
    assert not raised.value.outcome_unknown


def test_a_timeout_after_sending_leaves_the_outcome_unknown(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(ShopUnavailable) as raised:
        give_card()
    assert raised.value.kind == "timeout" and raised.value.outcome_unknown


def test_a_refused_connection_gave_nothing(rsps: responses.RequestsMock) -> None:
    rsps.post(URL, body=requests.ConnectionError("refused"))

    with pytest.raises(ShopUnavailable) as raised:
        give_card()
    assert raised.value.outcome_unknown  # "connection": it may have been sent


def test_access_denied_names_the_scope_the_connection_lacks(rsps: responses.RequestsMock) -> None:
    denied = {
        "errors": [
            {
                "message": "Access denied for giftCardCreate field. Required access: "
                "`write_gift_cards` access scope.",
                "extensions": {"code": "ACCESS_DENIED"},
            }
        ],
        "data": None,
    }
    rsps.post(URL, json=denied)

    with pytest.raises(
        ShopRefused, match=r"lacks a scope gift cards need \(write_gift_cards, write_customers\)"
    ):
        give_card()


# --- Checked before anything is sent ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"kind": GestureKind.GIFT_CARD, "amount": Decimal(0)}, "more than zero"),
        ({"kind": GestureKind.GIFT_CARD, "amount": Decimal("NaN")}, "more than zero"),
        (
            {"kind": GestureKind.DISCOUNT_CODE, "percent": Decimal(120), "code": "X1234"},
            "at most 100",
        ),
        ({"kind": GestureKind.GIFT_CARD, "amount": Decimal(5), "currency": "usd"}, "currency"),
        ({"kind": GestureKind.REFUND, "amount": Decimal(5)}, "need the order"),
        (
            {"kind": GestureKind.REFUND, "amount": Decimal(5), "order_id": "ORD-12185"},
            "not a Shopify Order id",
        ),
        (
            {"kind": GestureKind.GIFT_CARD, "amount": Decimal(5), "customer_id": "42"},
            "not a Shopify Customer id",
        ),
        ({"kind": GestureKind.GIFT_CARD, "amount": Decimal(5), "marker": 'a" b'}, "marker"),
        (
            {"kind": GestureKind.DISCOUNT_CODE, "amount": Decimal(5), "code": "a b"},
            "discount code is",
        ),
        ({"kind": GestureKind.GIFT_CARD, "amount": Decimal(5), "percent": Decimal(5)}, "not both"),
    ],
)
def test_a_request_that_cannot_be_given_is_refused_without_a_call(
    rsps: responses.RequestsMock, fields: dict[str, Any], words: str
) -> None:
    kind = fields.pop("kind")
    with pytest.raises(ShopRefused, match=words):
        shop().give(request(kind, **fields))
    assert len(rsps.calls) == 0


def test_the_shop_names_only_its_store_in_its_repr() -> None:
    assert repr(shop()) == f"<ShopifyGestureShop {SHOP}>"
    assert TOKEN not in repr(shop())
