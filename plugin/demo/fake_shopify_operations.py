"""The fake Shopify's operations: one handler per root field, each reading its variables,
checking Shopify's rules before it writes, and answering the fields the gesture client reads.

The state is plain JSON (amounts as strings) so it can live in memory or in a database row.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

State = dict[str, Any]
CENT = Decimal("0.01")

# The scopes each operation needs, as Shopify's reference pages state them (a write scope
# stands in for its read scope here, as it does in Shopify).
SCOPES: dict[str, tuple[str, ...]] = {
    "shop": (),
    "discountCodeBasicCreate": ("write_discounts",),
    "discountCodeFreeShippingCreate": ("write_discounts",),
    "codeDiscountNodeByCode": ("write_discounts",),
    "giftCardCreate": ("write_gift_cards", "write_customers"),
    "giftCards": ("write_gift_cards",),
    "order": ("write_orders",),
    "refundCreate": ("write_orders",),
    "draftOrderCreate": ("write_draft_orders",),
    "draftOrderComplete": ("write_draft_orders",),
    "draftOrders": ("write_draft_orders",),
}
ALL_SCOPES = frozenset(
    {
        "read_customers",
        "read_orders",
        "read_all_orders",
        *(scope for scopes in SCOPES.values() for scope in scopes),
    }
)
_TAG_QUERY = re.compile(r'tag:"((?:[^"\\]|\\.)*)"')


class GraphQLError(Exception):
    """A top-level GraphQL error (not a userError): the request was refused as a whole."""

    def __init__(self, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Context:
    shop_name: str
    scopes: frozenset[str]
    idempotency_key: str | None
    new_code: Callable[[], str]


def copy_state(state: State) -> State:
    return copy.deepcopy(state)


def money(value: object) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def text(amount: Decimal) -> str:
    return str(amount.quantize(CENT))


def _new_id(state: State, kind: str) -> str:
    state["next_id"] += 1
    return f"gid://shopify/{kind}/{state['next_id']}"


def _user_error(field: list[str], message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"field": field, "message": message}
    if code is not None:
        error["code"] = code
    return error


def new_order(
    state: State,
    order_id: str,
    *,
    name: str,
    customer_id: str,
    total: Decimal,
    line_items: list[tuple[str, str, int]],
    gateway: str,
) -> dict[str, Any]:
    """A paid order, as `add_order` and `draftOrderComplete` make it."""
    return {
        "id": order_id,
        "name": name,
        "customer_id": customer_id,
        "total": text(total),
        "refunded": "0.00",
        "gateway": gateway,
        "transaction_id": order_id.replace("/Order/", "/OrderTransaction/"),
        "line_items": [
            {"id": item_id, "variant_id": variant_id, "quantity": quantity}
            for item_id, variant_id, quantity in line_items
        ],
    }


def _refundable(order: State) -> Decimal:
    return (money(order["total"]) or Decimal(0)) - (money(order["refunded"]) or Decimal(0))


# --- The connection check ----------------------------------------------------------------


def shop(state: State, variables: dict[str, Any], context: Context) -> dict[str, Any]:
    return {
        "shop": {"name": context.shop_name, "currencyCode": state["currency"]},
        "currentAppInstallation": {
            "accessScopes": [{"handle": scope} for scope in sorted(context.scopes)]
        },
    }


# --- Codes --------------------------------------------------------------------------------


def _create_code(
    state: State, variables: dict[str, Any], *, kind: str, field: str, argument: str
) -> dict[str, Any]:
    body = variables.get("input")
    if not isinstance(body, dict):
        raise GraphQLError(f"Variable $input of type {argument} was provided invalid value")
    code = str(body.get("code") or "")
    errors = []
    if not code or not body.get("title") or not body.get("startsAt"):
        errors.append(_user_error([argument, "code"], "Code, title and startsAt are required"))
    if code.casefold() in state["discounts"]:
        errors.append(
            _user_error(
                [argument, "code"], "Code must be unique. Please try a different code.", "TAKEN"
            )
        )
    customers = ((body.get("context") or {}).get("customers") or {}).get("add") or []
    if not customers or any(customer not in state["customers"] for customer in customers):
        errors.append(_user_error([argument, "context"], "Customer does not exist", "INVALID"))
    value = ((body.get("customerGets") or {}).get("value")) or {}
    percentage = money(value.get("percentage")) if "percentage" in value else None
    amount = money((value.get("discountAmount") or {}).get("amount"))
    if kind == "basic":
        if percentage is not None and not 0 < percentage <= 1:
            errors.append(
                _user_error([argument, "customerGets"], "Value must be between 0.0 and 1.0")
            )
        if percentage is None and (amount is None or amount <= 0):
            errors.append(_user_error([argument, "customerGets"], "Value must be greater than 0"))
    if errors:
        return {field: {"codeDiscountNode": None, "userErrors": errors}}
    node_id = _new_id(state, "DiscountCodeNode")
    minimum = ((body.get("minimumRequirement") or {}).get("subtotal") or {}).get(
        "greaterThanOrEqualToSubtotal"
    )
    state["discounts"][code.casefold()] = {
        "id": node_id,
        "code": code,
        "kind": kind,
        "title": str(body.get("title")),
        "customer_ids": list(customers),
        "amount": text(amount) if amount is not None and percentage is None else None,
        "percentage": str(percentage) if percentage is not None else None,
        "minimum": minimum,
        "ends_at": body.get("endsAt"),
        "usage_limit": body.get("usageLimit"),
        "once_per_customer": bool(body.get("appliesOncePerCustomer")),
    }
    return {field: {"codeDiscountNode": {"id": node_id}, "userErrors": []}}


def discount_basic(state: State, variables: dict[str, Any], context: Context) -> dict[str, Any]:
    return _create_code(
        state,
        variables,
        kind="basic",
        field="discountCodeBasicCreate",
        argument="basicCodeDiscount",
    )


def discount_free_shipping(
    state: State, variables: dict[str, Any], context: Context
) -> dict[str, Any]:
    return _create_code(
        state,
        variables,
        kind="free_shipping",
        field="discountCodeFreeShippingCreate",
        argument="freeShippingCodeDiscount",
    )


def code_by_code(state: State, variables: dict[str, Any], context: Context) -> dict[str, Any]:
    found = state["discounts"].get(str(variables.get("code") or "").casefold())
    if found is None:
        return {"codeDiscountNodeByCode": None}
    typename = "DiscountCodeBasic" if found["kind"] == "basic" else "DiscountCodeFreeShipping"
    node = {"id": found["id"], "codeDiscount": {"__typename": typename, "title": found["title"]}}
    return {"codeDiscountNodeByCode": node}


# --- Gift cards ---------------------------------------------------------------------------


def gift_card_create(state: State, variables: dict[str, Any], context: Context) -> dict[str, Any]:
    body = variables.get("input")
    if not isinstance(body, dict):
        raise GraphQLError(
            "Variable $input of type GiftCardCreateInput! was provided invalid value"
        )
    value = money(body.get("initialValue"))
    customer = body.get("customerId")
    errors = []
    if value is None or value <= 0:
        errors.append(
            _user_error(["input", "initialValue"], "Initial value must be greater than 0")
        )
    if customer is not None and customer not in state["customers"]:
        errors.append(_user_error(["input", "customerId"], "Customer does not exist", "INVALID"))
    if errors or value is None:
        return {"giftCardCreate": {"giftCard": None, "giftCardCode": None, "userErrors": errors}}
    card_id = _new_id(state, "GiftCard")
    code = context.new_code()
    card = {
        "id": card_id,
        "code": code,
        "last_characters": code[-4:],
        "initial_value": text(value),
        "balance": text(value),
        "customer_id": customer,
        "note": body.get("note"),
        "expires_on": body.get("expiresOn"),
    }
    state["gift_cards"][card_id] = card
    return {
        "giftCardCreate": {
            "giftCard": _card_answer(state, card),
            "giftCardCode": code,
            "userErrors": [],
        }
    }


def _card_answer(state: State, card: State) -> dict[str, Any]:
    return {
        "id": card["id"],
        "note": card["note"],
        "lastCharacters": card["last_characters"],
        "balance": {"amount": card["balance"], "currencyCode": state["currency"]},
    }


def gift_cards(state: State, variables: dict[str, Any], context: Context) -> dict[str, Any]:
    # Every card here is issued through the API (source:api_client); the newest first.
    cards = sorted(state["gift_cards"].values(), key=lambda card: _number(card["id"]))
    nodes = [_card_answer(state, card) for card in reversed(cards)][:100]
    return {"giftCards": {"nodes": nodes}}


def _number(gid: str) -> int:
    return int(gid.rsplit("/", 1)[-1])


# --- Orders and refunds -------------------------------------------------------------------


def order(state: State, variables: dict[str, Any], context: Context) -> dict[str, Any]:
    found = state["orders"].get(variables.get("id"))
    if found is None:
        return {"order": None}
    refundable = _refundable(found)
    currency = state["currency"]
    refunds = [refund for refund in state["refunds"].values() if refund["order_id"] == found["id"]]
    return {
        "order": {
            "id": found["id"],
            "name": found["name"],
            "customer": {"id": found["customer_id"]},
            "suggestedRefund": {
                "maximumRefundableSet": {
                    "shopMoney": {"amount": text(refundable), "currencyCode": currency}
                },
                "suggestedTransactions": [
                    {
                        "gateway": found["gateway"],
                        "parentTransaction": {"id": found["transaction_id"]},
                        "maximumRefundableSet": {"shopMoney": {"amount": text(refundable)}},
                    }
                ]
                if refundable > 0
                else [],
            },
            "refunds": [_refund_answer(state, refund) for refund in refunds],
            "lineItems": {
                "nodes": [
                    {
                        "id": item["id"],
                        "quantity": item["quantity"],
                        "variant": {"id": item["variant_id"]},
                    }
                    for item in found["line_items"]
                ]
            },
        }
    }


def _refund_answer(state: State, refund: State) -> dict[str, Any]:
    return {
        "id": refund["id"],
        "note": refund["note"],
        "totalRefundedSet": {
            "shopMoney": {"amount": refund["amount"], "currencyCode": state["currency"]}
        },
    }


def refund_create(state: State, variables: dict[str, Any], context: Context) -> dict[str, Any]:
    key = context.idempotency_key
    if not key:
        # From 2026-04 a refund without the directive is an error at runtime.
        raise GraphQLError(
            "The @idempotent directive is required for this mutation", "IDEMPOTENCY_KEY_REQUIRED"
        )
    if key in state["idempotency"]:
        refund = state["refunds"][state["idempotency"][key]]
        return {"refundCreate": {"refund": _refund_answer(state, refund), "userErrors": []}}
    body = variables.get("input")
    if not isinstance(body, dict):
        raise GraphQLError("Variable $input of type RefundInput! was provided invalid value")
    found = state["orders"].get(body.get("orderId"))
    if found is None:
        errors = [_user_error(["orderId"], "Order does not exist")]
        return {"refundCreate": {"refund": None, "userErrors": errors}}
    total = Decimal(0)
    for transaction in body.get("transactions") or ():
        amount = money(transaction.get("amount")) if isinstance(transaction, dict) else None
        if (
            amount is None
            or amount <= 0
            or transaction.get("gateway") != found["gateway"]
            or transaction.get("parentId") != found["transaction_id"]
            or transaction.get("kind") != "REFUND"
        ):
            errors = [_user_error(["transactions"], "Transaction is not valid for this order")]
            return {"refundCreate": {"refund": None, "userErrors": errors}}
        total += amount
    if total <= 0:
        errors = [_user_error(["transactions"], "Refund amount must be greater than 0")]
        return {"refundCreate": {"refund": None, "userErrors": errors}}
    refundable = _refundable(found)
    if total > refundable:
        message = f"Refund amount must be less than or equal to {text(refundable)}"
        errors = [_user_error(["transactions", "0", "amount"], message)]
        return {"refundCreate": {"refund": None, "userErrors": errors}}
    refund_id = _new_id(state, "Refund")
    refund = {
        "id": refund_id,
        "order_id": found["id"],
        "amount": text(total),
        "note": body.get("note"),
    }
    state["refunds"][refund_id] = refund
    state["idempotency"][key] = refund_id
    found["refunded"] = text((money(found["refunded"]) or Decimal(0)) + total)
    return {"refundCreate": {"refund": _refund_answer(state, refund), "userErrors": []}}


# --- Replacements (draft orders) ----------------------------------------------------------


def draft_create(state: State, variables: dict[str, Any], context: Context) -> dict[str, Any]:
    body = variables.get("input")
    if not isinstance(body, dict):
        raise GraphQLError("Variable $input of type DraftOrderInput! was provided invalid value")
    customer = body.get("customerId")
    items = body.get("lineItems") or []
    variants = {
        item["variant_id"] for order in state["orders"].values() for item in order["line_items"]
    }
    errors = []
    if customer not in state["customers"]:
        errors.append(_user_error(["customerId"], "Customer does not exist"))
    if not items or any(
        not isinstance(item, dict) or item.get("variantId") not in variants for item in items
    ):
        errors.append(_user_error(["lineItems"], "Variant does not exist"))
    discount = body.get("appliedDiscount") or {}
    free = discount.get("valueType") == "PERCENTAGE" and money(discount.get("value")) == 100
    if errors:
        return {"draftOrderCreate": {"draftOrder": None, "userErrors": errors}}
    draft_id = _new_id(state, "DraftOrder")
    state["drafts"][draft_id] = {
        "id": draft_id,
        "customer_id": customer,
        "line_items": [
            {"variant_id": item["variantId"], "quantity": int(item.get("quantity") or 1)}
            for item in items
        ],
        "free": free,
        "tags": [str(tag) for tag in body.get("tags") or ()],
        "note": body.get("note"),
        "order_id": None,
    }
    return {"draftOrderCreate": {"draftOrder": {"id": draft_id}, "userErrors": []}}


def draft_complete(state: State, variables: dict[str, Any], context: Context) -> dict[str, Any]:
    draft = state["drafts"].get(variables.get("id"))
    if draft is None:
        errors = [_user_error(["id"], "Draft order does not exist")]
        return {"draftOrderComplete": {"draftOrder": None, "userErrors": errors}}
    if draft["order_id"] is None:
        order_id = _new_id(state, "Order")
        made = new_order(
            state,
            order_id,
            name=f"#R{_number(order_id)}",
            customer_id=draft["customer_id"],
            total=Decimal(0),
            line_items=[
                (f"{order_id}/item/{n}", item["variant_id"], item["quantity"])
                for n, item in enumerate(draft["line_items"])
            ],
            gateway="manual",
        )
        made["replacement"] = True
        state["orders"][order_id] = made
        draft["order_id"] = order_id
    return {"draftOrderComplete": {"draftOrder": _draft_answer(state, draft), "userErrors": []}}


def _draft_answer(state: State, draft: State) -> dict[str, Any]:
    made = state["orders"].get(draft["order_id"]) if draft["order_id"] else None
    return {
        "id": draft["id"],
        "tags": draft["tags"],
        "order": {"id": made["id"], "name": made["name"]} if made else None,
    }


def draft_orders(state: State, variables: dict[str, Any], context: Context) -> dict[str, Any]:
    match = _TAG_QUERY.search(str(variables.get("query") or ""))
    tag = re.sub(r"\\(.)", r"\1", match.group(1)) if match else None
    nodes = [
        _draft_answer(state, draft)
        for draft in state["drafts"].values()
        if tag is not None and tag in draft["tags"]
    ]
    return {"draftOrders": {"nodes": nodes[:5]}}


HANDLERS: dict[str, Callable[[State, dict[str, Any], Context], dict[str, Any]]] = {
    "shop": shop,
    "discountCodeBasicCreate": discount_basic,
    "discountCodeFreeShippingCreate": discount_free_shipping,
    "codeDiscountNodeByCode": code_by_code,
    "giftCardCreate": gift_card_create,
    "giftCards": gift_cards,
    "order": order,
    "refundCreate": refund_create,
    "draftOrderCreate": draft_create,
    "draftOrderComplete": draft_complete,
    "draftOrders": draft_orders,
}
