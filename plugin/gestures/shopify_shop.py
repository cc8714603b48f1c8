"""Give gestures in a Shopify store through its GraphQL Admin API (`ShopifyGestureShop`).

It shares the connection's client (`ShopifyClient.graphql`: the pinned API version, the
store's call budget, timeouts and error reading) and turns its failures into the gesture
interface's: a userError or a missing scope is `ShopRefused` in words an agent understands;
throttling, 429, 5xx and timeouts are `ShopUnavailable`, with `outcome_unknown` when a write
may have happened. Full gift-card codes appear in no log, message or repr.

Shopify facts relied on (found with the docs search; URLs as stored there):

- `discountCodeBasicCreate(basicCodeDiscount: DiscountCodeBasicInput!)` answers
  `codeDiscountNode` and `userErrors` (DiscountUserError: field, code, message); the input has
  code, title, startsAt, endsAt, usageLimit, appliesOncePerCustomer, minimumRequirement,
  customerGets and `context` ("target specific customer IDs"; `customerSelection` is
  deprecated); required on create: code, context, customerGets, startsAt, title:
  shopify.dev/docs/api/admin-graphql/2026-01/input-objects/DiscountCodeBasicInput and
  .../unstable/input-objects/discountcodebasicinput. `customerGets.value` takes
  `discountAmount { amount, appliesOnEachItem }` (false splits the amount across the items:
  .../latest/input-objects/DiscountAmountInput) or `percentage`, a fraction 0.00-1.00
  (developer.shopline.com's mirror of DiscountCustomerGetsValueInput). `context: { customers:
  { add: [ids] } }` and `minimumRequirement: { subtotal: { greaterThanOrEqualToSubtotal } }`
  are by our reading of those pages (the second as the update example at
  .../2026-07/mutations/discountCodeFreeShippingUpdate writes it). Scope write_discounts.
- `discountCodeFreeShippingCreate(freeShippingCodeDiscount: DiscountCodeFreeShippingInput!)`,
  same payload; input adds `destination` (DiscountShippingDestinationSelectionInput `all`):
  .../latest/mutations/discountCodeFreeShippingCreate.md, .../2027-01/input-objects/
  DiscountCodeFreeShippingInput. Scope write_discounts.
- `codeDiscountNodeByCode(code:)` returns the code discount by its case-insensitive code:
  .../2025-10/queries/codeDiscountNodeByCode; DiscountCodeNode needs read_discounts.
- `giftCardCreate(input: GiftCardCreateInput!)` answers `giftCard`, `giftCardCode` ("The
  created gift card's code", the only place the full code appears) and `userErrors`; input:
  initialValue (Decimal!), customerId ("Requires write_customers access_scope", 2024-01),
  expiresOn (Date), note ("isn't visible to the customer"), code (8-20 letters and digits):
  .../2026-10/mutations/giftCardCreate, .../2024-01/input-objects/GiftCardCreateInput.
  GiftCard has `lastCharacters` and `maskedCode`: .../2024-07/objects/giftcard. `giftCards`
  (read_gift_cards) filters by source (api_client), customer, dates, no note:
  .../2025-10/queries/giftcards.
- `refundCreate(input: RefundInput!)` answers `refund`, `order`, `userErrors`
  (.../latest/payloads/RefundCreatePayload.md); RefundInput: orderId, note, notify,
  transactions ([OrderTransactionInput]: orderId, gateway, kind, amount, parentId "the
  authorization of a capture"), allowOverRefunding (default false):
  .../2027-01/input-objects/RefundInput, .../latest/input-objects/OrderTransactionInput.md.
  The `@idempotent(key:)` directive is accepted by refundCreate since 2026-01 and required
  from 2026-04 ("calling these mutations without an idempotency directive will result in an
  error at runtime"); a retry with the same key returns the original result:
  shopify.dev/changelog/adding-idempotency-for-inventory-adjustments-and-refund-mutations and
  .../making-idempotency-mandatory-for-inventory-adjustments-and-refund-mutations. No gesture
  mutation besides refundCreate was listed as taking it.
- What can still be refunded, and through which gateway and parent transaction: the order's
  `suggestedRefund` (SuggestedRefund.maximumRefundableSet, suggestedTransactions with
  gateway, parentTransaction and maximumRefundableSet): .../latest/objects/SuggestedRefund and
  .../2026-07/objects/SuggestedOrderTransaction (read_orders). The `suggestFullRefund`
  argument and `Order.refunds(first:)` (id, note, totalRefundedSet) are by our reading and
  public code; refundCreate's scope write_orders is by our reading (Refund needs read_orders).
- `draftOrderCreate(input: DraftOrderInput!)` with `appliedDiscount { valueType: PERCENTAGE,
  value: 100 }` (DraftOrderAppliedDiscountInput, .../2026-07/input-objects/
  DraftOrderAppliedDiscountInput), tags and note; `draftOrderComplete(id:)` turns it into an
  order; scopes write_draft_orders (DraftOrderAppliedDiscount needs read_draft_orders:
  .../latest/objects/DraftOrderAppliedDiscount.md); the draftOrders `tag:` filter by our
  reading of the search syntax.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from plugin.customers.shopify_client import ShopifyClient, ShopifyError
from plugin.gestures import shopify_answers as answers
from plugin.gestures import shopify_documents as documents
from plugin.gestures.interface import (
    GestureKind,
    GestureRequest,
    GivenGesture,
    ShopRefused,
)

logger = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class ShopifyGestureShop:
    """Give, find and price gestures in one Shopify store, through its connection's client."""

    def __init__(self, client: ShopifyClient, *, clock: Callable[[], datetime] = _now) -> None:
        self._client = client
        self._clock = clock

    def __repr__(self) -> str:
        return f"<ShopifyGestureShop {self._client.shop}>"

    # --- The interface ------------------------------------------------------------------

    def give(self, request: GestureRequest) -> GivenGesture:
        answers.validate(request)
        match request.kind:
            case GestureKind.DISCOUNT_CODE | GestureKind.FREE_SHIPPING:
                return self._give_code(request)
            case GestureKind.GIFT_CARD:
                return self._give_gift_card(request)
            case GestureKind.REFUND:
                return self._give_refund(request)
            case GestureKind.REPLACEMENT:
                return self._give_replacement(request)
        raise ShopRefused(f"Regulars cannot give a {request.kind} in Shopify")

    def find(self, request: GestureRequest) -> GivenGesture | None:
        answers.validate(request)
        match request.kind:
            case GestureKind.DISCOUNT_CODE | GestureKind.FREE_SHIPPING:
                return self._find_code(request)
            case GestureKind.GIFT_CARD:
                return self._find_gift_card(request)
            case GestureKind.REFUND:
                order = self._order_for_refund(request, answers.required_order(request))
                return answers.refund_found(request, order)
            case GestureKind.REPLACEMENT:
                draft = self._find_draft(request)
                return answers.replacement(draft) if draft and draft.get("order") else None

    def refundable(self, order_id: str) -> Decimal:
        answers.gid(order_id, "Order", "the order")
        data = self._run(
            GestureKind.REFUND,
            "the refundable amount",
            documents.ORDER_FOR_REFUND,
            {"id": order_id},
            write=False,
        )
        order = data.get("order")
        if not isinstance(order, dict):
            raise ShopRefused("The shop has no such order")
        return answers.refundable(order)[0]

    # --- Codes --------------------------------------------------------------------------

    def _give_code(self, request: GestureRequest) -> GivenGesture:
        code = answers.required_code(request)
        shipping = request.kind == GestureKind.FREE_SHIPPING
        now = self._clock()
        body: dict[str, Any] = {
            "title": f"Regulars goodwill {request.marker}"[: answers.MAX_CODE],
            "code": code,
            "startsAt": answers.iso(now),
            "endsAt": answers.iso(request.expires_at) if request.expires_at else None,
            "context": {"customers": {"add": [answers.required_customer(request)]}},
            "usageLimit": 1,
            "appliesOncePerCustomer": True,
        }
        if request.minimum_order is not None:
            body["minimumRequirement"] = {
                "subtotal": {"greaterThanOrEqualToSubtotal": answers.money(request.minimum_order)}
            }
        if shipping:
            body["destination"] = {"all": True}
            query, field = documents.FREE_SHIPPING_CREATE, "discountCodeFreeShippingCreate"
        else:
            body["customerGets"] = {
                "value": answers.discount_value(request),
                "items": {"all": True},
            }
            query, field = documents.DISCOUNT_CODE_CREATE, "discountCodeBasicCreate"
        data = self._run(request.kind, "the discount code", query, {"input": body}, write=True)
        payload = answers.payload(data, field)
        if answers.code_taken(payload):
            # Taken by an earlier attempt of this gesture (its answer lost) is given, not refused.
            found = self._find_code(request)
            if found is not None:
                return found
        answers.refuse_user_errors(payload, request.kind, code=code)
        node = payload.get("codeDiscountNode")
        if not isinstance(node, dict) or not isinstance(node.get("id"), str):
            raise answers.unreadable(request.kind)
        return answers.code_given(request, node["id"])

    def _find_code(self, request: GestureRequest) -> GivenGesture | None:
        code = answers.required_code(request)
        data = self._run(
            request.kind, "the code lookup", documents.FIND_CODE, {"code": code}, write=False
        )
        node = data.get("codeDiscountNodeByCode")
        if not isinstance(node, dict):
            return None
        title = str((node.get("codeDiscount") or {}).get("title") or "")
        # The same code made by someone else is not this gesture: giving will be refused.
        if request.marker not in title or not isinstance(node.get("id"), str):
            return None
        return answers.code_given(request, node["id"])

    # --- Gift cards ---------------------------------------------------------------------

    def _give_gift_card(self, request: GestureRequest) -> GivenGesture:
        body: dict[str, Any] = {
            "initialValue": answers.money(answers.required_amount(request)),
            "customerId": answers.required_customer(request),
            "note": answers.note(request),
        }
        if request.expires_at is not None:
            body["expiresOn"] = request.expires_at.date().isoformat()
        payload, card = self._mutate(
            request, "the gift card", documents.GIFT_CARD_CREATE, body, "giftCardCreate", "giftCard"
        )
        full_code = payload.get("giftCardCode")
        given = answers.gift_card(request, card)
        if isinstance(full_code, str) and full_code:
            # Shown once to the agent: kept only in the answer, never logged.
            given = answers.with_full_code(given, full_code)
        logger.info("gave gift card %s (…%s)", given.shop_id, given.code_last4)
        return given

    def _find_gift_card(self, request: GestureRequest) -> GivenGesture | None:
        data = self._run(
            request.kind,
            "the gift card lookup",
            documents.FIND_GIFT_CARD,
            {"query": "source:api_client"},
            write=False,
        )
        connection = data.get("giftCards")
        nodes = connection.get("nodes") if isinstance(connection, dict) else None
        for card in nodes if isinstance(nodes, list) else ():
            if isinstance(card, dict) and answers.marked(card.get("note"), request.marker):
                return answers.gift_card(request, card)
        return None

    # --- Refunds ------------------------------------------------------------------------

    def _order_for_refund(self, request: GestureRequest, order_id: str) -> dict[str, Any]:
        data = self._run(
            request.kind,
            "the order's refundable amount",
            documents.ORDER_FOR_REFUND,
            {"id": order_id},
            write=False,
        )
        order = data.get("order")
        if not isinstance(order, dict):
            raise ShopRefused("The shop has no such order: nothing was refunded")
        answers.own_order(request, order)
        return order

    def _give_refund(self, request: GestureRequest) -> GivenGesture:
        order_id = answers.required_order(request)
        amount = answers.required_amount(request)
        order = self._order_for_refund(request, order_id)
        earlier = answers.refund_found(request, order)
        if earlier is not None:
            # Made by an attempt whose answer was lost: what is left to refund no longer counts.
            return earlier
        refundable, currency, transactions = answers.refundable(order)
        if currency and currency != request.currency:
            raise ShopRefused(f"Order {order.get('name')} is in {currency}, not {request.currency}")
        if amount > refundable:
            raise ShopRefused(
                f"Only {answers.money(refundable)} {currency or request.currency} of order "
                f"{order.get('name')} can still be refunded: nothing was refunded"
            )
        body = {
            "orderId": order_id,
            "note": answers.note(request),
            "notify": True,
            "transactions": answers.refund_transactions(order_id, amount, transactions),
        }
        _, refund = self._mutate(
            request,
            "the refund",
            documents.refund_create(request.marker),
            body,
            "refundCreate",
            "refund",
        )
        return answers.refund_given(request, refund)

    # --- Replacements -------------------------------------------------------------------

    def _find_draft(self, request: GestureRequest) -> dict[str, Any] | None:
        query = documents.search_value("tag", request.marker)
        data = self._run(
            request.kind,
            "the replacement lookup",
            documents.FIND_DRAFT_ORDER,
            {"query": query},
            write=False,
        )
        connection = data.get("draftOrders")
        nodes = connection.get("nodes") if isinstance(connection, dict) else None
        for draft in nodes if isinstance(nodes, list) else ():
            if isinstance(draft, dict) and request.marker in (draft.get("tags") or ()):
                return draft
        return None

    def _give_replacement(self, request: GestureRequest) -> GivenGesture:
        order_id = answers.required_order(request)
        # A draft an earlier attempt made but did not complete is completed, not made again.
        draft = self._find_draft(request)
        if draft is None:
            draft_id = self._create_draft(request, order_id)
        elif draft.get("order"):
            return answers.replacement(draft)
        else:
            draft_id = str(draft.get("id"))
        _, completed = self._mutate(
            request,
            "completing the replacement",
            documents.DRAFT_ORDER_COMPLETE,
            None,
            "draftOrderComplete",
            "draftOrder",
            variables={"id": draft_id},
        )
        if not isinstance(completed.get("order"), dict):
            raise answers.unreadable(request.kind)
        return answers.replacement(completed)

    def _create_draft(self, request: GestureRequest, order_id: str) -> str:
        data = self._run(
            request.kind,
            "the order's items",
            documents.ORDER_LINE_ITEMS,
            {"id": order_id},
            write=False,
        )
        order = data.get("order")
        if not isinstance(order, dict):
            raise ShopRefused("The shop has no such order: nothing was replaced")
        answers.own_order(request, order)
        wanted = set(request.line_item_ids)
        items = [
            {"variantId": item["variant"]["id"], "quantity": int(item.get("quantity") or 1)}
            for item in ((order.get("lineItems") or {}).get("nodes") or ())
            if isinstance(item, dict)
            and isinstance(item.get("variant"), dict)
            and (not wanted or item.get("id") in wanted)
        ]
        if not items:
            raise ShopRefused(f"Order {order.get('name')} has no items the shop can send again")
        customer = request.customer_id or (order.get("customer") or {}).get("id")
        body = {
            "customerId": customer,
            "lineItems": items,
            "appliedDiscount": {
                "valueType": "PERCENTAGE",
                "value": 100.0,
                "title": "Free replacement",
                "description": (request.reason or "Goodwill replacement")[: answers.MAX_WORDS],
            },
            "tags": [request.marker],
            "note": f"Replacement for {order.get('name')}: {answers.note(request)}"[
                : answers.MAX_NOTE
            ],
        }
        _, draft = self._mutate(
            request,
            "the replacement",
            documents.DRAFT_ORDER_CREATE,
            body,
            "draftOrderCreate",
            "draftOrder",
        )
        return str(draft["id"])

    # --- Calling Shopify ----------------------------------------------------------------

    def _mutate(
        self,
        request: GestureRequest,
        what: str,
        document: str,
        body: Mapping[str, object] | None,
        field: str,
        result: str,
        *,
        variables: Mapping[str, object] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run one write (its input `body`, or else `variables`), refuse on its userErrors, and
        answer its payload and the object it made (`result`, which must carry an id)."""
        data = self._run(request.kind, what, document, variables or {"input": body}, write=True)
        payload = answers.payload(data, field)
        answers.refuse_user_errors(payload, request.kind)
        made = payload.get(result)
        if not isinstance(made, dict) or not isinstance(made.get("id"), str):
            raise answers.unreadable(request.kind)
        return payload, made

    def _run(
        self,
        kind: GestureKind,
        what: str,
        query: str,
        variables: Mapping[str, object],
        *,
        write: bool,
    ) -> dict[str, Any]:
        try:
            return self._client.graphql(what, query, variables)
        except ShopifyError as error:
            raise answers.shop_error(error, kind, write=write) from None
