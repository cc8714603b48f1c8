"""The fake Shopify: its rules and faults, through the real client and gesture shop, and a look
after an unknown outcome finding exactly what was created.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from plugin.customers.shopify_client import ShopifyClient
from plugin.demo.fake_shopify import ACCESS_TOKEN, FakeShopifyEngine, Faults
from plugin.demo.fake_shopify_transport import FAKE_BASE_URL, fake_session
from plugin.gestures.interface import (
    GestureKind,
    GestureRequest,
    ShopRefused,
    ShopUnavailable,
)
from plugin.gestures.shopify_documents import GIFT_CARD_CREATE, refund_create
from plugin.gestures.shopify_shop import ShopifyGestureShop
from plugin.helpdesks.http import CallBudget

MARGARET = "gid://shopify/Customer/1"
TYLER = "gid://shopify/Customer/2"
MUGS = "gid://shopify/Order/12185"
TYLERS = "gid://shopify/Order/12190"


def engine(**faults: Any) -> FakeShopifyEngine:
    fake = FakeShopifyEngine(faults=Faults(**faults), rng=random.Random(7))
    fake.add_customer(MARGARET, "Margaret Okafor")
    fake.add_customer(TYLER, "Tyler Brennan")
    fake.add_order(
        MUGS,
        name="ORD-12185",
        customer_id=MARGARET,
        total=Decimal("64.00"),
        line_items=[("gid://shopify/LineItem/1", "gid://shopify/ProductVariant/10", 2)],
    )
    fake.add_order(TYLERS, name="ORD-12190", customer_id=TYLER, total=Decimal("20.00"))
    return fake


def shop_of(fake: FakeShopifyEngine, *, timeout: float = 2.0) -> ShopifyGestureShop:
    client = ShopifyClient(
        session=fake_session(fake),
        shop="demo",
        access_token=ACCESS_TOKEN,
        budget=CallBudget(calls_per_minute=10_000),
        timeout=timeout,
        api_base_url=FAKE_BASE_URL,
    )
    return ShopifyGestureShop(client)


def gesture(kind: GestureKind, marker: str = "rg-1", **fields: Any) -> GestureRequest:
    return GestureRequest(kind=kind, marker=marker, customer_id=MARGARET, currency="USD", **fields)


CODE: dict[str, Any] = {"amount": Decimal(8), "code": "THANKS-RG1"}
CARD: dict[str, Any] = {"amount": Decimal(15), "reason": "Chipped mug"}
REFUND: dict[str, Any] = {"amount": Decimal(12), "order_id": MUGS, "reason": "Late"}
REPLACE: dict[str, Any] = {"order_id": MUGS, "reason": "Broken"}
SHIPPING: dict[str, Any] = {"code": "SHIP-RG1"}
EVERY_KIND = [
    (GestureKind.DISCOUNT_CODE, CODE),
    (GestureKind.GIFT_CARD, CARD),
    (GestureKind.REFUND, REFUND),
    (GestureKind.REPLACEMENT, REPLACE),
    (GestureKind.FREE_SHIPPING, SHIPPING),
]


def made(fake: FakeShopifyEngine, kind: GestureKind) -> int:
    """How many things of this kind the fake shop holds."""
    state = fake.snapshot()
    counts: dict[GestureKind, int] = {
        GestureKind.DISCOUNT_CODE: sum(d["kind"] == "basic" for d in state["discounts"].values()),
        GestureKind.FREE_SHIPPING: sum(
            d["kind"] == "free_shipping" for d in state["discounts"].values()
        ),
        GestureKind.GIFT_CARD: len(state["gift_cards"]),
        GestureKind.REFUND: len(state["refunds"]),
        GestureKind.REPLACEMENT: sum(bool(o.get("replacement")) for o in state["orders"].values()),
    }
    return counts[kind]


# --- Rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "fields"), EVERY_KIND)
def test_every_kind_is_given_once_and_found_again(
    kind: GestureKind, fields: dict[str, Any]
) -> None:
    fake = engine()
    shop = shop_of(fake)

    assert shop.find(gesture(kind, **fields)) is None
    given = shop.give(gesture(kind, **fields))
    found = shop.find(gesture(kind, **fields))

    assert found is not None and found.shop_id == given.shop_id
    assert made(fake, kind) == 1


def test_a_code_is_taken_once() -> None:
    shop = shop_of(engine())
    shop.give(gesture(GestureKind.DISCOUNT_CODE, **CODE))

    with pytest.raises(ShopRefused, match="already taken"):
        shop.give(gesture(GestureKind.DISCOUNT_CODE, marker="rg-2", **CODE))


def test_giving_a_code_again_after_a_lost_answer_answers_the_code_made() -> None:
    fake = engine()
    shop = shop_of(fake)
    first = shop.give(gesture(GestureKind.DISCOUNT_CODE, **CODE))

    again = shop.give(gesture(GestureKind.DISCOUNT_CODE, **CODE))

    assert again.shop_id == first.shop_id and made(fake, GestureKind.DISCOUNT_CODE) == 1


def test_refunds_never_exceed_what_is_refundable() -> None:
    fake = engine()
    shop = shop_of(fake)
    shop.give(gesture(GestureKind.REFUND, **REFUND))

    assert shop.refundable(MUGS) == Decimal("52.00")
    with pytest.raises(ShopRefused, match=r"Only 52\.00 USD"):
        shop.give(gesture(GestureKind.REFUND, marker="rg-2", amount=Decimal(53), order_id=MUGS))
    assert made(fake, GestureKind.REFUND) == 1


def test_the_engine_itself_refuses_a_refund_above_refundable_and_one_without_a_key() -> None:
    fake = engine()
    transaction = {
        "orderId": MUGS,
        "gateway": "shopify_payments",
        "kind": "REFUND",
        "amount": "70.00",
        "parentId": "gid://shopify/OrderTransaction/12185",
    }
    body = {"orderId": MUGS, "transactions": [transaction]}

    over = fake.handle(ACCESS_TOKEN, {"query": refund_create("k-1"), "variables": {"input": body}})
    keyless = refund_create("k-1").replace(' @idempotent(key: "k-1")', "")
    without_key = fake.handle(ACCESS_TOKEN, {"query": keyless, "variables": {"input": body}})

    errors = over.body["data"]["refundCreate"]["userErrors"]
    assert "less than or equal to 64.00" in errors[0]["message"]
    assert without_key.body["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_REQUIRED"
    assert made(fake, GestureKind.REFUND) == 0


def test_a_repeated_idempotency_key_answers_the_first_refund() -> None:
    fake = engine()
    transaction = {
        "orderId": MUGS,
        "gateway": "shopify_payments",
        "kind": "REFUND",
        "amount": "10.00",
        "parentId": "gid://shopify/OrderTransaction/12185",
    }
    call = {
        "query": refund_create("k-1"),
        "variables": {"input": {"orderId": MUGS, "transactions": [transaction]}},
    }

    first = fake.handle(ACCESS_TOKEN, call)
    second = fake.handle(ACCESS_TOKEN, call)

    assert first.body["data"] == second.body["data"]
    assert made(fake, GestureKind.REFUND) == 1


def test_an_unknown_order_or_another_customers_order_is_refused() -> None:
    shop = shop_of(engine())

    with pytest.raises(ShopRefused, match="no such order"):
        shop.give(gesture(GestureKind.REFUND, amount=Decimal(5), order_id="gid://shopify/Order/9"))
    with pytest.raises(ShopRefused, match="another customer's"):
        shop.give(gesture(GestureKind.REFUND, amount=Decimal(5), order_id=TYLERS))
    with pytest.raises(ShopRefused, match="another customer's"):
        shop.give(gesture(GestureKind.REPLACEMENT, order_id=TYLERS))


def test_a_gift_card_for_an_unknown_customer_is_refused() -> None:
    shop = shop_of(engine())
    unknown = GestureRequest(
        kind=GestureKind.GIFT_CARD,
        marker="rg-9",
        customer_id="gid://shopify/Customer/999",
        currency="USD",
        amount=Decimal(5),
    )

    with pytest.raises(ShopRefused, match="Customer does not exist"):
        shop.give(unknown)


def test_a_wrong_token_is_refused_and_a_missing_scope_named() -> None:
    fake = engine()
    fake.scopes = frozenset({"read_customers", "read_orders"})

    assert fake.handle("wrong", {"query": GIFT_CARD_CREATE}).status == 401
    with pytest.raises(ShopRefused, match="lacks a scope gift cards need"):
        shop_of(fake).give(gesture(GestureKind.GIFT_CARD, **CARD))


# --- Faults --------------------------------------------------------------------------------------


def test_server_errors_are_unavailable_and_counted() -> None:
    fake = engine(server_error=1.0)

    with pytest.raises(ShopUnavailable) as raised:
        shop_of(fake).give(gesture(GestureKind.GIFT_CARD, **CARD))

    assert raised.value.kind == "server_error" and not raised.value.outcome_unknown
    assert fake.calls["giftCardCreate"] == 1 and fake.faults_injected["server_error"] == 1
    assert made(fake, GestureKind.GIFT_CARD) == 0


def test_throttling_answers_thottled_with_the_buckets_state() -> None:
    fake = engine(throttled=1.0)

    answer = fake.handle(ACCESS_TOKEN, {"query": GIFT_CARD_CREATE, "variables": {}})

    assert answer.status == 200
    assert answer.body["errors"][0]["extensions"]["code"] == "THROTTLED"
    throttle = answer.body["extensions"]["cost"]["throttleStatus"]
    assert throttle["currentlyAvailable"] == 0 and throttle["restoreRate"] > 0
    with pytest.raises(ShopUnavailable) as raised:
        shop_of(fake).give(gesture(GestureKind.GIFT_CARD, **CARD))
    assert raised.value.kind == "throttled" and raised.value.retry_after


def test_rate_limiting_answers_429_with_retry_after() -> None:
    fake = engine(rate_limited=1.0, retry_after_seconds=4.0)

    answer = fake.handle(ACCESS_TOKEN, {"query": GIFT_CARD_CREATE, "variables": {}})

    assert answer.status == 429 and answer.headers["Retry-After"] == "4.0"
    with pytest.raises(ShopUnavailable) as raised:
        shop_of(fake).give(gesture(GestureKind.GIFT_CARD, **CARD))
    assert raised.value.retry_after == 4.0


def test_a_slow_answer_within_the_timeout_arrives() -> None:
    fake = engine(hang=1.0, hang_seconds=0.05)

    given = shop_of(fake, timeout=2.0).give(gesture(GestureKind.GIFT_CARD, **CARD))

    assert given.code_last4 is not None


@pytest.mark.parametrize("fault", ["hang", "lost_answer"])
@pytest.mark.parametrize(("kind", "fields"), EVERY_KIND)
def test_after_an_unknown_outcome_find_finds_exactly_what_was_created(
    fault: str, kind: GestureKind, fields: dict[str, Any]
) -> None:
    fake = engine()
    shop = shop_of(fake, timeout=0.5)
    # Only the write is struck: the lookups before it answer.
    fake.faults = Faults(**{fault: 1.0}, hang_seconds=5.0, only_writes=True)

    with pytest.raises(ShopUnavailable) as raised:
        shop.give(gesture(kind, **fields))
    assert raised.value.outcome_unknown

    fake.faults = Faults()
    found = shop.find(gesture(kind, **fields))
    if kind is GestureKind.REPLACEMENT and found is None:
        # Its draft was made, not completed: giving again completes that draft.
        found = shop.give(gesture(kind, **fields))
        assert len(fake.snapshot()["drafts"]) == 1
    assert found is not None
    assert made(fake, kind) == 1
    if kind is GestureKind.GIFT_CARD:
        assert found.gift_card_code is None and found.code_last4


def test_giving_a_refund_again_answers_the_refund_made_even_when_nothing_is_left() -> None:
    fake = engine()
    shop = shop_of(fake)
    everything = gesture(GestureKind.REFUND, amount=Decimal(64), order_id=MUGS)
    first = shop.give(everything)

    again = shop.give(everything)

    assert again.shop_id == first.shop_id and made(fake, GestureKind.REFUND) == 1
