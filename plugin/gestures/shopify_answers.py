"""What goes to Shopify for a gesture and what comes back, in the gesture interface's terms:
a request checked before anything is sent, the inputs built from it, answers and failures read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from plugin.customers.shopify_client import ShopifyError
from plugin.gestures.interface import (
    ORDER_KINDS,
    GestureKind,
    GestureRequest,
    GivenGesture,
    ShopRefused,
    ShopUnavailable,
)
from plugin.gestures.scopes import GESTURE_SCOPES, KIND_LABELS

CENT = Decimal("0.01")
MAX_CODE = 255
MAX_NOTE = 500
MAX_WORDS = 200
_CODE = re.compile(r"[A-Za-z0-9_-]{4,255}")
_MARKER = re.compile(r"[A-Za-z0-9._:-]{1,100}")
_GID = re.compile(r"gid://shopify/(?P<kind>[A-Za-z]+)/(?P<id>[0-9]{1,30})")
_CURRENCY = re.compile(r"[A-Z]{3}")
# Transports after which the request may have reached Shopify.
_MAYBE_SENT = frozenset({"timeout", "broken", "connection"})


# --- Reading failures -------------------------------------------------------------------


def shop_error(
    error: ShopifyError, kind: GestureKind, *, write: bool
) -> ShopRefused | ShopUnavailable:
    """The interface's failure for a failed call: refused (nothing given) or unavailable."""
    if error.code == "ACCESS_DENIED":
        scopes = ", ".join(GESTURE_SCOPES[kind])
        return ShopRefused(
            f"The Shopify connection lacks a scope {KIND_LABELS[kind]} need ({scopes}): an "
            "admin must add it to the store's app and connect its new token"
        )
    if error.status == 429 or error.code == "THROTTLED":
        return ShopUnavailable(
            "Shopify is throttling this app", kind="throttled", retry_after=error.retry_after
        )
    if error.transport is not None:
        unknown = write and error.transport in _MAYBE_SENT
        return ShopUnavailable(
            "The shop did not answer" + (": the gesture may have been given" if unknown else ""),
            kind="timeout" if error.transport == "timeout" else "unreachable",
            outcome_unknown=unknown,
        )
    if error.status is not None and error.status >= 500:
        return ShopUnavailable(
            f"Shopify had an error ({error.status})",
            kind="server_error",
            outcome_unknown=write and error.status != 503,
        )
    if error.retryable:
        # The store's call budget is spent, or a GraphQL INTERNAL_SERVER_ERROR.
        internal = error.code == "INTERNAL_SERVER_ERROR"
        return ShopUnavailable(
            "Shopify had an error" if internal else "The store's call budget is spent",
            kind="server_error" if internal else "budget",
            retry_after=error.retry_after,
            outcome_unknown=write and internal,
        )
    return ShopRefused(f"{error}"[:MAX_WORDS])


def refuse_user_errors(
    payload: Mapping[str, Any], kind: GestureKind, *, code: str | None = None
) -> None:
    errors = payload.get("userErrors")
    if not isinstance(errors, list) or not errors:
        return
    first = errors[0] if isinstance(errors[0], dict) else {}
    message = str(first.get("message") or "no reason given")[:MAX_WORDS]
    if first.get("code") == "TAKEN" and code is not None:
        raise ShopRefused(f"The discount code {code} is already taken in the shop")
    raise ShopRefused(f"Shopify refused the {KIND_LABELS[kind][:-1]}: {message}")


def code_taken(payload: Mapping[str, Any]) -> bool:
    """Whether a code mutation was refused because the code exists already."""
    errors = payload.get("userErrors")
    return isinstance(errors, list) and any(
        isinstance(error, dict) and error.get("code") == "TAKEN" for error in errors
    )


def unreadable(kind: GestureKind) -> ShopUnavailable:
    # Something may have been made: the next attempt looks before it gives.
    return ShopUnavailable(
        f"Shopify's answer to the {KIND_LABELS[kind][:-1]} could not be read",
        kind="unreadable",
        outcome_unknown=True,
    )


def payload(data: Mapping[str, Any], field: str) -> dict[str, Any]:
    payload = data.get(field)
    if not isinstance(payload, dict):
        raise ShopUnavailable(
            f"Shopify's answer has no {field}", kind="unreadable", outcome_unknown=True
        )
    return payload


# --- Checking a request before anything is sent -------------------------------------------


def validate(request: GestureRequest) -> None:
    if not _MARKER.fullmatch(request.marker):
        raise ShopRefused("The gesture's marker cannot be sent to Shopify")
    if not _CURRENCY.fullmatch(request.currency):
        raise ShopRefused(f"{request.currency!r} is not a currency code")
    if request.amount is not None and request.percent is not None:
        raise ShopRefused("A gesture is a fixed amount or a percent, not both")
    if request.amount is not None and not (request.amount.is_finite() and request.amount > 0):
        raise ShopRefused("The amount must be more than zero")
    if request.percent is not None and not (
        request.percent.is_finite() and 0 < request.percent <= 100
    ):
        raise ShopRefused("The percent must be more than 0 and at most 100")
    if request.minimum_order is not None and not (
        request.minimum_order.is_finite() and request.minimum_order > 0
    ):
        raise ShopRefused("The minimum order must be more than zero")
    if request.kind in ORDER_KINDS:
        required_order(request)
    if request.customer_id is not None:
        gid(request.customer_id, "Customer", "the customer")


def gid(value: str, kind: str, what: str) -> str:
    match = _GID.fullmatch(value)
    if match is None or match["kind"] != kind:
        raise ShopRefused(f"{what.capitalize()} is not a Shopify {kind} id")
    return value


def required_order(request: GestureRequest) -> str:
    if not request.order_id:
        raise ShopRefused(
            f"{KIND_LABELS[request.kind].capitalize()} need the order the ticket names"
        )
    return gid(request.order_id, "Order", "the order")


def required_customer(request: GestureRequest) -> str:
    if not request.customer_id:
        raise ShopRefused(
            f"{KIND_LABELS[request.kind].capitalize()} need the customer's Shopify id"
        )
    return request.customer_id


def required_amount(request: GestureRequest) -> Decimal:
    if request.amount is None:
        raise ShopRefused(f"{KIND_LABELS[request.kind].capitalize()} need an amount")
    return request.amount


def required_code(request: GestureRequest) -> str:
    if not request.code or not _CODE.fullmatch(request.code):
        raise ShopRefused("A discount code is 4 to 255 letters, digits, - and _")
    return request.code


def own_order(request: GestureRequest, order: Mapping[str, Any]) -> None:
    owner = (order.get("customer") or {}).get("id")
    if request.customer_id is not None and owner != request.customer_id:
        raise ShopRefused(f"Order {order.get('name')} is another customer's: nothing was given")


# --- Building inputs and reading answers ---------------------------------------------------


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def decimal(value: object) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def note(request: GestureRequest, *, prefix: str = "") -> str:
    """The reason, then the marker in brackets: what `find` looks for."""
    reason = (prefix + request.reason.strip())[: MAX_NOTE - len(request.marker) - 3]
    return f"{reason} [{request.marker}]".strip()


def marked(note: object, marker: str) -> bool:
    return isinstance(note, str) and f"[{marker}]" in note


def discount_value(request: GestureRequest) -> dict[str, Any]:
    if request.percent is not None:
        return {"percentage": float(request.percent / 100)}
    amount = required_amount(request)
    return {"discountAmount": {"amount": money(amount), "appliesOnEachItem": False}}


def code_given(request: GestureRequest, node_id: str) -> GivenGesture:
    return GivenGesture(
        kind=request.kind,
        shop_id=node_id,
        amount=request.amount,
        currency=request.currency,
        percent=request.percent,
        code=request.code,
    )


def gift_card(request: GestureRequest, card: Mapping[str, Any]) -> GivenGesture:
    balance = card.get("balance") or {}
    return GivenGesture(
        kind=GestureKind.GIFT_CARD,
        shop_id=str(card.get("id")),
        amount=request.amount,
        currency=str(balance.get("currencyCode") or request.currency),
        code_last4=str(card.get("lastCharacters") or "")[-4:] or None,
        balance=decimal(balance.get("amount")) if balance.get("amount") is not None else None,
    )


def with_full_code(given: GivenGesture, full_code: str) -> GivenGesture:
    return GivenGesture(
        kind=given.kind,
        shop_id=given.shop_id,
        amount=given.amount,
        currency=given.currency,
        gift_card_code=full_code,
        code_last4=full_code[-4:],
        balance=given.balance,
    )


def refundable(
    order: Mapping[str, Any],
) -> tuple[Decimal, str | None, list[tuple[str, str | None, Decimal]]]:
    """What the order can still refund, in which currency, and through which transactions."""
    suggested = order.get("suggestedRefund") or {}
    money = (suggested.get("maximumRefundableSet") or {}).get("shopMoney") or {}
    transactions = [
        (
            str(item.get("gateway") or ""),
            (item.get("parentTransaction") or {}).get("id"),
            decimal(
                ((item.get("maximumRefundableSet") or {}).get("shopMoney") or {}).get("amount")
            ),
        )
        for item in suggested.get("suggestedTransactions") or ()
        if isinstance(item, dict)
    ]
    return decimal(money.get("amount")), money.get("currencyCode"), transactions


def refund_transactions(
    order_id: str, amount: Decimal, transactions: list[tuple[str, str | None, Decimal]]
) -> list[dict[str, Any]]:
    """Spread the amount over the order's refundable transactions, the first first."""
    left, chosen = amount, []
    for gateway, parent, most in transactions:
        if left <= 0:
            break
        part = min(left, most) if most > 0 else left
        entry: dict[str, Any] = {
            "orderId": order_id,
            "gateway": gateway,
            "kind": "REFUND",
            "amount": money(part),
        }
        if parent:
            entry["parentId"] = parent
        chosen.append(entry)
        left -= part
    if left > 0:
        raise ShopRefused("The order's payments cannot carry this refund: nothing was refunded")
    return chosen


def refund_given(request: GestureRequest, refund: Mapping[str, Any]) -> GivenGesture:
    money = (refund.get("totalRefundedSet") or {}).get("shopMoney") or {}
    refund_id = str(refund.get("id"))
    return GivenGesture(
        kind=GestureKind.REFUND,
        shop_id=refund_id,
        amount=decimal(money.get("amount")) if money.get("amount") is not None else request.amount,
        currency=str(money.get("currencyCode") or request.currency),
        reference=refund_id.rsplit("/", 1)[-1],
    )


def refund_found(request: GestureRequest, order: Mapping[str, Any]) -> GivenGesture | None:
    for refund in order.get("refunds") or ():
        if isinstance(refund, dict) and marked(refund.get("note"), request.marker):
            return refund_given(request, refund)
    return None


def replacement(draft: Mapping[str, Any]) -> GivenGesture:
    order = draft.get("order") or {}
    return GivenGesture(
        kind=GestureKind.REPLACEMENT,
        shop_id=str(order.get("id")),
        reference=str(order.get("name") or "") or None,
    )
