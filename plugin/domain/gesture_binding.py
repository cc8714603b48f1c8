"""A catalog entry's binding to a gesture the shop gives (a discount code, a gift card, a
refund, a free replacement, free shipping), with its parameters, read from the entry's JSON.

An entry without a binding is record only: agents give it in their shop themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from plugin.domain.wording import N_
from plugin.gestures.interface import ORDER_KINDS, GestureKind

if TYPE_CHECKING:  # the reader lives with the catalog's parser, which imports this module
    from plugin.domain.exceptions import DefinitionReader

RECORD_ONLY = "Record only — give it in your shop"
# Intercom caps a gift card at 150 % of the order it is given about; so do we, by default.
DEFAULT_GIFT_CARD_CAP_PERCENT = 150
MAX_EXPIRY_DAYS = 3650
MAX_CAP_PERCENT = 1000

KIND_NAMES: Mapping[GestureKind, str] = {
    GestureKind.DISCOUNT_CODE: N_("a one-time discount code"),
    GestureKind.GIFT_CARD: N_("a gift card"),
    GestureKind.REFUND: N_("a refund on the order"),
    GestureKind.REPLACEMENT: N_("a free replacement of the order"),
    GestureKind.FREE_SHIPPING: N_("a free-shipping code"),
}


class GestureValue(StrEnum):
    """How a discount code takes the entry's amount: as money off, or as the entry's percent."""

    FIXED = "fixed"
    PERCENT = "percent"


@dataclass(frozen=True)
class GestureBinding:
    """What the shop gives when an agent applies the entry."""

    kind: GestureKind
    value: GestureValue = GestureValue.FIXED
    expires_in_days: int | None = None
    minimum_order_cents: int | None = None
    # A gift card may be worth at most this share of the order the ticket names.
    gift_card_cap_percent: int = DEFAULT_GIFT_CARD_CAP_PERCENT

    @property
    def needs_order(self) -> bool:
        return self.kind in ORDER_KINDS

    def describe(self) -> str:
        """Say it for the console: "a gift card, expires after 90 days, at most 150 % of the
        order"."""
        words = [KIND_NAMES[self.kind]]
        if self.kind is GestureKind.DISCOUNT_CODE and self.value is GestureValue.PERCENT:
            words[0] += " (the entry's percent off)"
        if self.expires_in_days is not None:
            words.append(f"expires after {self.expires_in_days} days")
        if self.minimum_order_cents is not None:
            words.append(f"on an order of at least {self.minimum_order_cents / 100:,.2f}")
        if self.kind is GestureKind.GIFT_CARD:
            words.append(f"at most {self.gift_card_cap_percent} % of the order")
        return ", ".join(words)


_EXPIRING = frozenset({GestureKind.DISCOUNT_CODE, GestureKind.GIFT_CARD, GestureKind.FREE_SHIPPING})
_CODES = frozenset({GestureKind.DISCOUNT_CODE, GestureKind.FREE_SHIPPING})


def read_binding(
    raw: object, reader: DefinitionReader, *, percent_cost: bool
) -> GestureBinding | None:
    """Read `{"kind": "gift_card", "expires_in_days": 90, ...}`; null or absent means none.

    Problems go to the reader under `gesture.`: a percent-off code for an entry without a
    percent cost, a parameter the kind does not take. A gift card or a money-off code of a
    percent entry holds the amount the action was priced at (the percent of the order).
    """
    if raw is None:
        return None
    fields = reader.fields(
        raw,
        "gesture",
        required=("kind",),
        optional=("value", "expires_in_days", "minimum_order_cents", "gift_card_cap_percent"),
    )
    if fields is None:
        return None
    found = len(reader.errors)
    kind_raw = fields.get("kind")
    if kind_raw not in tuple(GestureKind):
        reader.error("gesture.kind", "expected one of " + ", ".join(GestureKind))
        return None
    kind = GestureKind(str(kind_raw))
    value = GestureValue.FIXED
    if "value" in fields:
        if fields["value"] not in tuple(GestureValue):
            reader.error("gesture.value", "expected fixed or percent")
        elif kind is not GestureKind.DISCOUNT_CODE:
            reader.error("gesture.value", "only a discount code takes a value")
        else:
            value = GestureValue(str(fields["value"]))
    if value is GestureValue.PERCENT and not percent_cost:
        reader.error("gesture.value", "a percent-off code needs a percent cost")
    expires = None
    if "expires_in_days" in fields:
        if kind not in _EXPIRING:
            reader.error("gesture.expires_in_days", f"{KIND_NAMES[kind]} does not expire")
        else:
            expires = reader.integer(
                fields["expires_in_days"],
                "gesture.expires_in_days",
                minimum=1,
                maximum=MAX_EXPIRY_DAYS,
            )
    minimum = None
    if "minimum_order_cents" in fields:
        if kind not in _CODES:
            reader.error("gesture.minimum_order_cents", "only a code takes a minimum order")
        else:
            minimum = reader.cents(fields["minimum_order_cents"], "gesture.minimum_order_cents")
    cap = DEFAULT_GIFT_CARD_CAP_PERCENT
    if "gift_card_cap_percent" in fields:
        if kind is not GestureKind.GIFT_CARD:
            reader.error("gesture.gift_card_cap_percent", "only a gift card takes this cap")
        else:
            cap = (
                reader.integer(
                    fields["gift_card_cap_percent"],
                    "gesture.gift_card_cap_percent",
                    minimum=1,
                    maximum=MAX_CAP_PERCENT,
                )
                or cap
            )
    if len(reader.errors) > found:
        return None
    return GestureBinding(kind, value, expires, minimum, cap)
