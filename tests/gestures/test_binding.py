"""A catalog entry's binding to a gesture: what validates, what is refused with its path, and
the console form that writes it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from plugin.demo.exceptions_seed import CATALOG
from plugin.domain.exceptions import InvalidExceptionType, parse_exception_type
from plugin.domain.gesture_binding import DEFAULT_GIFT_CARD_CAP_PERCENT, GestureValue
from plugin.gestures.interface import GestureKind
from plugin.goodwill.catalog_forms import CatalogForm, catalog_definition


def entry(key: str, gesture: object) -> dict[str, Any]:
    raw = copy.deepcopy(next(e for e in CATALOG if e["key"] == key))
    raw["gesture"] = gesture
    return raw


def problems(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidExceptionType) as refused:
        parse_exception_type(raw)
    return {e.path: e.message for e in refused.value.errors}


def test_an_entry_without_a_binding_is_record_only() -> None:
    assert parse_exception_type(entry("waive_shipping_fee", None)).gesture is None


def test_a_gift_card_binding_keeps_its_parameters_and_the_default_cap() -> None:
    bound = parse_exception_type(
        entry("waive_shipping_fee", {"kind": "gift_card", "expires_in_days": 90})
    ).gesture
    assert bound is not None
    assert (bound.kind, bound.expires_in_days) == (GestureKind.GIFT_CARD, 90)
    assert bound.gift_card_cap_percent == DEFAULT_GIFT_CARD_CAP_PERCENT == 150
    assert bound.describe() == "a gift card, expires after 90 days, at most 150 % of the order"


def test_a_percent_entry_may_be_a_percent_code_or_a_gift_card_of_its_priced_amount() -> None:
    code = parse_exception_type(
        entry("goodwill_credit", {"kind": "discount_code", "value": "percent"})
    ).gesture
    assert code is not None and code.value is GestureValue.PERCENT
    # Store credit of 10 % of the order: the card holds the amount the action was priced at.
    card = parse_exception_type(entry("goodwill_credit", {"kind": "gift_card"})).gesture
    assert card is not None and card.kind is GestureKind.GIFT_CARD
    assert problems(entry("waive_shipping_fee", {"kind": "discount_code", "value": "percent"})) == {
        "gesture.value": "a percent-off code needs a percent cost"
    }


def test_parameters_a_kind_does_not_take_are_refused_at_their_path() -> None:
    found = problems(
        entry(
            "waive_shipping_fee",
            {
                "kind": "refund",
                "expires_in_days": 30,
                "minimum_order_cents": 100,
                "gift_card_cap_percent": 120,
            },
        )
    )
    assert set(found) == {
        "gesture.expires_in_days",
        "gesture.minimum_order_cents",
        "gesture.gift_card_cap_percent",
    }
    assert problems(entry("waive_shipping_fee", {"kind": "voucher"})) == {
        "gesture.kind": "expected one of discount_code, gift_card, refund, replacement, "
        "free_shipping"
    }
    assert "gesture.expires_in_days" in problems(
        entry("waive_shipping_fee", {"kind": "gift_card", "expires_in_days": 0})
    )


def test_the_console_form_writes_the_binding_and_reads_it_back() -> None:
    raw = entry(
        "waive_shipping_fee",
        {"kind": "discount_code", "expires_in_days": 30, "minimum_order_cents": 5000},
    )
    form = CatalogForm.of(raw, enabled=True)
    assert (form.gesture_kind, form.gesture_expires_days, form.gesture_min_order) == (
        "discount_code",
        "30",
        "50",
    )
    definition, errors = catalog_definition(form, "USD")
    assert errors == {}
    assert definition["gesture"] == {
        "kind": "discount_code",
        "value": "fixed",
        "expires_in_days": 30,
        "minimum_order_cents": 5000,
    }
    assert parse_exception_type(definition).gesture is not None
    unbound, _ = catalog_definition(
        CatalogForm.of(entry("waive_shipping_fee", None), enabled=True), "USD"
    )
    assert "gesture" not in unbound
