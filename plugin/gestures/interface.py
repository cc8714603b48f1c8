"""What a shop must do to give a gesture, and what it answers: the one interface the outbox's
gesture step calls, whichever shop (Shopify, the demo's shop, a test's fake) stands behind it.

`give` creates the gesture; `find` looks for one an earlier attempt may have created (by the
request's marker) before giving again after an unknown outcome; `refundable` tells how much of
an order can still be refunded. Failures are `ShopRefused` (the shop said no: nothing was given,
nothing is charged, the words go back to the agent) or `ShopUnavailable` (down, throttled,
timed out: retry, and look first when `outcome_unknown`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol


class GestureKind(StrEnum):
    """The gestures a catalog entry can be bound to."""

    DISCOUNT_CODE = "discount_code"
    GIFT_CARD = "gift_card"
    REFUND = "refund"
    REPLACEMENT = "replacement"
    FREE_SHIPPING = "free_shipping"


# Kinds that act on the order the ticket names, and so need one.
ORDER_KINDS = frozenset({GestureKind.REFUND, GestureKind.REPLACEMENT})


@dataclass(frozen=True)
class GestureRequest:
    """One gesture to give, as the outbox asks for it.

    `marker` is deterministic per action (the same on every retry) and unique per
    installation: it names the discount code, goes into the gift card's and the refund's note,
    and is what `find` looks for.
    """

    kind: GestureKind
    marker: str
    # Shopify's customer id (a gid) the code or card is for; None only for kinds not tied to one.
    customer_id: str | None
    currency: str
    # A fixed amount (discount, gift card, refund) or a percent (discount code), not both.
    amount: Decimal | None = None
    percent: Decimal | None = None
    # The named order, for refunds and replacements (a gid).
    order_id: str | None = None
    # Line items to replace (gids); empty means every item of the order.
    line_item_ids: tuple[str, ...] = ()
    expires_at: datetime | None = None
    minimum_order: Decimal | None = None
    # The reason in words, for the refund's note and the gift card's note.
    reason: str = ""
    # The discount code to create (deterministic, derived from the marker) for code kinds.
    code: str | None = None


@dataclass(frozen=True)
class GivenGesture:
    """What the shop gave, in the words and figures the sidebar and the note show."""

    kind: GestureKind
    # The shop's id of what was created (discount node, gift card, refund, order gid).
    shop_id: str
    amount: Decimal | None = None
    currency: str | None = None
    # A discount code in full (not a secret: it is for the customer to use).
    code: str | None = None
    # A gift card's full code exists only in the answer to its creation: shown once, never
    # logged, never stored past that showing. `code_last4` is what stays.
    gift_card_code: str | None = field(default=None, repr=False)
    code_last4: str | None = None
    balance: Decimal | None = None
    # A refund's id, or the replacement order's name (#1042).
    reference: str | None = None
    # A percent-off discount code's percent (0-100), where `amount` is None.
    percent: Decimal | None = None


class ShopRefused(Exception):
    """The shop refused the gesture (not refundable, code taken, ...): nothing was given."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ShopUnavailable(Exception):
    """The shop did not answer usefully: down (5xx), throttled, 429, timed out.

    `retry_after` is the shop's own wait when it named one; `outcome_unknown` says the gesture
    may have been created anyway (a timeout after sending), so the next attempt must `find`
    before it gives.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "server_error",
        retry_after: float | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after
        self.outcome_unknown = outcome_unknown


class GestureShop(Protocol):
    """A shop that can give gestures: Shopify's Admin GraphQL, or the demo's shop."""

    def give(self, request: GestureRequest) -> GivenGesture: ...

    def find(self, request: GestureRequest) -> GivenGesture | None: ...

    def refundable(self, order_id: str) -> Decimal: ...
