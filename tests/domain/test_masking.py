"""Masks by role: which one a viewer gets, and what a mask takes out of a banner or a text."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from plugin.domain.masking import (
    HIDDEN,
    HIDE_EVERYTHING,
    SHOW_EVERYTHING,
    FieldGroup,
    Mask,
    RoleMasks,
    ViewerRoles,
    fact_group,
    mask_banner,
    scrub_text,
)
from plugin.domain.recognition import Banner, OrderStats
from plugin.domain.tiers import Tier

MONEY = Mask(frozenset({FieldGroup.MONEY}))
CONTACT = Mask(frozenset({FieldGroup.EMAIL, FieldGroup.PHONE}))
MASKS = RoleMasks(
    by_role={"agent": MONEY, "360001": CONTACT, "team lead": SHOW_EVERYTHING},
    default=Mask(frozenset({FieldGroup.ORDER_LINES})),
)


def test_the_finer_role_decides_then_the_base_role_then_the_default() -> None:
    assert MASKS.for_viewer(ViewerRoles("agent", ("360001",))) == CONTACT
    assert MASKS.for_viewer(ViewerRoles("agent", ("999",))) == MONEY
    assert MASKS.for_viewer(ViewerRoles("admin")) == MASKS.default
    # Names compare case-insensitively; roles add up: a field shows if one role shows it.
    assert MASKS.for_viewer(ViewerRoles("agent", ("360001", "Team Lead"))) == SHOW_EVERYTHING


def test_an_unknown_viewer_gets_the_strictest_mask_of_the_installation() -> None:
    assert MASKS.for_viewer(None) == Mask(
        frozenset({FieldGroup.MONEY, FieldGroup.EMAIL, FieldGroup.PHONE, FieldGroup.ORDER_LINES})
    )
    # With nothing configured, nothing is hidden from anyone, as before masking.
    assert RoleMasks().for_viewer(None) == SHOW_EVERYTHING


def banner(**facts: object) -> Banner:
    now = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)
    orders = OrderStats(
        order_count=131,
        total_spend_cents=1_723_200,
        orders_12m=31,
        spend_12m_cents=530_700,
        first_order_at=now,
        last_order_at=now,
        top_categories=("Coffee beans",),
        source="demo",
        as_of=now,
    )
    return Banner(
        name="Margaret Okafor",
        first_name="Margaret",
        is_customer=True,
        tier=Tier.HIGH,
        customer_since=None,
        orders=orders,
        contact=None,
        data_as_of=now,
        is_stale=False,
        helpdesk_facts=tuple(sorted(facts.items())),
    )


def test_a_masked_banner_holds_none_of_the_hidden_values() -> None:
    full = banner(mobile="+44 20 7946 0958", backup="m.okafor@example.com", plan="gold")
    masked = mask_banner(full, HIDE_EVERYTHING)
    assert masked.orders is not None
    assert (masked.orders.spend_12m_cents, masked.orders.total_spend_cents) == (0, 0)
    assert masked.orders.top_categories == ()
    assert dict(masked.helpdesk_facts) == {"mobile": HIDDEN, "backup": HIDDEN, "plan": "gold"}
    data = pickle.dumps(masked)
    for value in (b"7946", b"okafor@", b"Coffee", (530_700).to_bytes(4, "little")):
        assert value not in data
    # The tier still shows; an empty mask changes nothing.
    assert masked.tier is Tier.HIGH and mask_banner(full, SHOW_EVERYTHING) is full
    assert pickle.loads(data).helpdesk_facts == masked.helpdesk_facts  # noqa: S301 - own bytes


@pytest.mark.parametrize(
    ("name", "value", "group"),
    [
        ("email", "x", FieldGroup.EMAIL),
        ("Mobile number", 1, FieldGroup.PHONE),
        ("ltv_cents", 5, FieldGroup.LIFETIME_VALUE),
        ("lifetime_spend", 5, FieldGroup.LIFETIME_VALUE),
        ("spend_last_year", 5, FieldGroup.MONEY),
        ("notes", "reach me at a.b@example.org", FieldGroup.EMAIL),
        ("contact", "+1 (555) 010-9999", FieldGroup.PHONE),
        ("since", "2024-05-01", None),
        ("plan", "gold", None),
    ],
)
def test_a_fact_is_grouped_by_its_name_or_how_its_text_looks(
    name: str, value: object, group: FieldGroup | None
) -> None:
    assert fact_group(name, value) is group


def test_free_text_loses_what_the_mask_hides_and_keeps_the_rest() -> None:
    text = "Called +1 (555) 010-9999, wrote to m.okafor@example.com on 2026-05-01; spent $4,852.50."
    assert scrub_text(text, SHOW_EVERYTHING) == text
    assert scrub_text(text, HIDE_EVERYTHING) == (
        "Called [hidden], wrote to [hidden] on 2026-05-01; spent [hidden]."
    )
    assert scrub_text(text, CONTACT) == (
        "Called [hidden], wrote to [hidden] on 2026-05-01; spent $4,852.50."
    )
    assert scrub_text("Order ORD-12185 came late", HIDE_EVERYTHING) == "Order ORD-12185 came late"
    assert scrub_text("refunded 30 EUR", MONEY) == "refunded [hidden]"
