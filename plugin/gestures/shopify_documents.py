"""The GraphQL Admin API documents that give and find gestures in a Shopify store.

Each document's root field is the mutation or query it runs (the fake shop in
plugin/demo/fake_shopify.py answers by that name). The facts behind their shapes, with where
they were found, are in plugin/gestures/shopify_shop.py's docstring.
"""

from __future__ import annotations

import re

_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,255}")

DISCOUNT_CODE_CREATE = """\
mutation RegularsDiscountCode($input: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $input) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}
"""

FREE_SHIPPING_CREATE = """\
mutation RegularsFreeShippingCode($input: DiscountCodeFreeShippingInput!) {
  discountCodeFreeShippingCreate(freeShippingCodeDiscount: $input) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}
"""

FIND_CODE = """\
query RegularsFindCode($code: String!) {
  codeDiscountNodeByCode(code: $code) {
    id
    codeDiscount {
      __typename
      ... on DiscountCodeBasic { title }
      ... on DiscountCodeFreeShipping { title }
    }
  }
}
"""

GIFT_CARD_CREATE = """\
mutation RegularsGiftCard($input: GiftCardCreateInput!) {
  giftCardCreate(input: $input) {
    giftCard { id lastCharacters balance { amount currencyCode } }
    giftCardCode
    userErrors { field code message }
  }
}
"""

# The search syntax has no note filter: the latest cards issued through the API are read
# and their notes searched for the marker.
FIND_GIFT_CARD = """\
query RegularsFindGiftCard($query: String!) {
  giftCards(first: 100, query: $query, reverse: true) {
    nodes { id note lastCharacters balance { amount currencyCode } }
  }
}
"""

ORDER_FOR_REFUND = """\
query RegularsOrderRefundable($id: ID!) {
  order(id: $id) {
    id
    name
    customer { id }
    suggestedRefund(suggestFullRefund: true) {
      maximumRefundableSet { shopMoney { amount currencyCode } }
      suggestedTransactions {
        gateway
        parentTransaction { id }
        maximumRefundableSet { shopMoney { amount } }
      }
    }
    refunds(first: 50) { id note totalRefundedSet { shopMoney { amount currencyCode } } }
  }
}
"""

ORDER_LINE_ITEMS = """\
query RegularsOrderLineItems($id: ID!) {
  order(id: $id) {
    id
    name
    customer { id }
    lineItems(first: 100) { nodes { id quantity variant { id } } }
  }
}
"""

DRAFT_ORDER_CREATE = """\
mutation RegularsReplacement($input: DraftOrderInput!) {
  draftOrderCreate(input: $input) {
    draftOrder { id }
    userErrors { field message }
  }
}
"""

DRAFT_ORDER_COMPLETE = """\
mutation RegularsCompleteReplacement($id: ID!) {
  draftOrderComplete(id: $id) {
    draftOrder { id order { id name } }
    userErrors { field message }
  }
}
"""

FIND_DRAFT_ORDER = """\
query RegularsFindReplacement($query: String!) {
  draftOrders(first: 5, query: $query) {
    nodes { id tags order { id name } }
  }
}
"""


def refund_create(idempotency_key: str) -> str:
    """The refundCreate mutation with its idempotency key, which 2026-04 and later require.

    The key is written into the document, as Shopify's examples do; only plain characters
    are accepted, so nothing can break out of the string.
    """
    if not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise ValueError("an idempotency key is 1 to 255 letters, digits and . _ : -")
    return f"""\
mutation RegularsRefund($input: RefundInput!) {{
  refundCreate(input: $input) @idempotent(key: "{idempotency_key}") {{
    refund {{ id note totalRefundedSet {{ shopMoney {{ amount currencyCode }} }} }}
    userErrors {{ field message }}
  }}
}}
"""


def search_value(name: str, value: str) -> str:
    """A search term `name:"value"`, escaped as Shopify's search syntax asks."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}:"{escaped}"'
