"""The Shopify access scopes each gesture kind needs, and which kinds a connection can give.

Facts and where they were found are in the README's "Gestures in the shop" section and the
docstring of plugin/gestures/shopify_shop.py.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from plugin.gestures.interface import GestureKind

# What the app's token must be granted to give each kind (a write scope grants its read
# scope too, as Shopify's scopes do, so the lookups before giving need nothing more).
GESTURE_SCOPES: Mapping[GestureKind, tuple[str, ...]] = {
    # discountCodeBasicCreate, codeDiscountNodeByCode.
    GestureKind.DISCOUNT_CODE: ("write_discounts",),
    # discountCodeFreeShippingCreate, codeDiscountNodeByCode.
    GestureKind.FREE_SHIPPING: ("write_discounts",),
    # giftCardCreate and giftCards; its customerId input requires write_customers.
    GestureKind.GIFT_CARD: ("write_gift_cards", "write_customers"),
    # refundCreate, and the order's suggested refund and refunds.
    GestureKind.REFUND: ("write_orders",),
    # draftOrderCreate, draftOrderComplete, draftOrders, and the order's line items.
    GestureKind.REPLACEMENT: ("write_draft_orders", "read_orders"),
}

KIND_LABELS: Mapping[GestureKind, str] = {
    GestureKind.DISCOUNT_CODE: "discount codes",
    GestureKind.FREE_SHIPPING: "free-shipping codes",
    GestureKind.GIFT_CARD: "gift cards",
    GestureKind.REFUND: "refunds",
    GestureKind.REPLACEMENT: "free replacements",
}


def _granted(scope: str, granted: Collection[str]) -> bool:
    return scope in granted or scope.replace("read_", "write_", 1) in granted


def missing_scopes(kind: GestureKind, granted: Collection[str]) -> tuple[str, ...]:
    """The scopes `kind` needs that `granted` lacks; empty when the kind can be given."""
    return tuple(scope for scope in GESTURE_SCOPES[kind] if not _granted(scope, granted))


def givable_kinds(granted: Collection[str]) -> dict[GestureKind, tuple[str, ...]]:
    """Every kind with the scopes it lacks (empty: it can be given), in the kinds' order."""
    return {kind: missing_scopes(kind, granted) for kind in GestureKind}


def describe_gesture_scopes(granted: Collection[str]) -> str:
    """Say, for an admin, which gestures the connection can give and what the others lack."""
    kinds = givable_kinds(granted)
    able = [KIND_LABELS[kind] for kind, missing in kinds.items() if not missing]
    unable = [
        f"{KIND_LABELS[kind]} need {', '.join(missing)}"
        for kind, missing in kinds.items()
        if missing
    ]
    said = f"Can give {', '.join(able)}" if able else "Can give no gesture (record only)"
    if unable:
        said += f"; {'; '.join(unable)}"
    return said
