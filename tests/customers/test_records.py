"""Customer and order records: every field validated, with the field named in the error."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.customers.records import (
    FieldProblem,
    customer_record,
    order_record,
    order_row,
    order_row_of,
)

CUSTOMER = {"customer_id": "C-1", "name": "Priya Raman"}
ORDER = {"order_id": "O-1", "customer_id": "C-1", "placed_at": "2026-03-01", "amount": "12.50"}


def test_a_customer_with_every_field() -> None:
    record = customer_record(
        CUSTOMER
        | {
            "email": "  Priya@Example.COM ",
            "phone": "+1 (555) 555-0101",
            "helpdesk_user_id": 90001,
            "customer_since": "2021-04-05",
        },
        phone_region="US",
    )
    assert record.email == "priya@example.com"
    assert record.phone == "+15555550101"
    assert record.helpdesk_user_id == "90001"
    assert record.customer_since == date(2021, 4, 5)


def test_empty_optional_fields_are_absent() -> None:
    record = customer_record(CUSTOMER | {"email": "", "phone": "  "}, phone_region="US")
    assert record.email is None and record.phone is None


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"customer_id": ""}, "customer_id", "required"),
        ({"name": None}, "name", "required"),
        ({"email": "not-an-email"}, "email", "not an email"),
        ({"phone": "12"}, "phone", "'12' is not a phone number in region US"),
        ({"customer_since": "31/04/2021"}, "customer_since", "not a date"),
        ({"name": "x" * 256}, "name", "longer than 255"),
        ({"name": "bad\x07name"}, "name", "control characters"),
        ({"name": ["a list"]}, "name", "must be text"),
    ],
)
def test_a_bad_customer_field_is_named(changes: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(FieldProblem) as raised:
        customer_record(CUSTOMER | changes, phone_region="US")
    assert raised.value.field == field and words in raised.value.message


def test_an_order_in_currency_units_or_cents() -> None:
    assert order_record(ORDER).amount_cents == 1250
    assert order_record(ORDER | {"amount": 99}).amount_cents == 9900
    assert order_record(ORDER | {"amount": None, "amount_cents": "1999"}).amount_cents == 1999


def test_order_times_become_naive_utc() -> None:
    record = order_record(ORDER | {"placed_at": "2026-03-01T10:00:00+02:00"})
    assert record.placed_at == datetime(2026, 3, 1, 8, 0)
    assert order_record(ORDER | {"placed_at": "2026-03-01T10:00:00Z"}).placed_at.hour == 10


def test_an_order_can_name_its_customer_by_email() -> None:
    record = order_record(ORDER | {"customer_id": None, "customer_email": "A@B.co"})
    assert record.customer_external_id is None and record.customer_email == "a@b.co"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"order_id": " "}, "order_id", "required"),
        ({"customer_id": None}, "customer_id", "customer_id or customer_email"),
        ({"placed_at": "yesterday"}, "placed_at", "not a date or time"),
        ({"amount": "12.345"}, "amount", "two decimal places"),
        ({"amount": "-5"}, "amount", "negative"),
        ({"amount": "NaN"}, "amount", "finite"),
        ({"amount": "twelve"}, "amount", "not a number"),
        ({"amount": None}, "amount", "required"),
        ({"amount": "1e20"}, "amount", "implausibly large"),
        ({"amount": None, "amount_cents": "12.5"}, "amount_cents", "whole number"),
        ({"amount": True}, "amount", "number"),
    ],
)
def test_a_bad_order_field_is_named(changes: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(FieldProblem) as raised:
        order_record(ORDER | changes)
    assert raised.value.field == field and words in raised.value.message


def test_an_order_may_say_where_it_stands() -> None:
    record = order_record(
        ORDER
        | {
            "status": "Partially Refunded",
            "fulfillment_status": "fulfilled",
            "tracking_url": "https://tracking.example.com/1Z999",
            "item_count": "3",
        }
    )
    assert record.status == "partially_refunded" and record.fulfillment_status == "fulfilled"
    assert record.tracking_url == "https://tracking.example.com/1Z999"
    assert record.item_count == 3
    bare = order_record(ORDER | {"status": "", "tracking_url": " "})
    assert (bare.status, bare.fulfillment_status, bare.tracking_url, bare.item_count) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"status": "shipped"}, "status", "not one of"),
        ({"fulfillment_status": "paid"}, "fulfillment_status", "not one of"),
        ({"tracking_url": "javascript:alert(1)"}, "tracking_url", "http"),
        ({"tracking_url": "ftp://example.com/x"}, "tracking_url", "http"),
        ({"tracking_url": "https://"}, "tracking_url", "http"),
        ({"tracking_url": "https://a.example/" + "x" * 2100}, "tracking_url", "longer"),
        ({"item_count": "-1"}, "item_count", "0 to"),
        ({"item_count": "two"}, "item_count", "whole number"),
    ],
)
def test_a_bad_order_status_or_link_is_refused_with_a_reason(
    changes: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(FieldProblem) as raised:
        order_record(ORDER | changes)
    assert raised.value.field == field and words in raised.value.message


# Text a CSV line's fields may hold: digits, dates, signs, spaces, case, control characters,
# non-ASCII digits and letters whose case changes their length.
_FIELD_TEXT = st.one_of(
    st.sampled_from(
        [
            *("", " ", "  7 ", "\t5", "12", "12.5", "12.50", "12.345", "007.50", "19.", ".5"),
            *("+3", "-1", "1_000", "1e3", "NaN", "²", "٣", "99999999999999", "10000000000.00"),
            *("2026-03-01", "2026-03-01T10:00", "2026-03-01 10:00:00.5", "2026-03-01T10:00Z"),
            *("2026-03-01T10:00:00+02:00", "1899-12-31", "2999-01-01", "2026-02-30", "yesterday"),
            *("paid", "PAID", " Partially Refunded ", "partially-refunded", "shipped", "İ"),
            *("https://t.example/1", "javascript:alert(1)", "https://", "a b", "C-1", "A@B.co"),
            *("x" * 65, "y" * 101, "bad\x07text", "\ud800", "\u00a0x\u00a0", "100001", "100000"),
        ]
    ),
    st.text(max_size=12),
    st.integers(min_value=-5, max_value=10**13),
    st.none(),
    st.just(True),
)
_ORDER_FIELDS = (
    *("order_id", "customer_id", "customer_email", "placed_at", "amount", "amount_cents"),
    *("discount_code", "category", "status", "fulfillment_status", "tracking_url", "item_count"),
)


@given(st.dictionaries(st.sampled_from(_ORDER_FIELDS), _FIELD_TEXT), st.booleans())
@settings(max_examples=3000, deadline=None)
def test_an_order_row_is_its_records_values_with_the_same_refusals(
    changes: dict[str, object], whole: bool
) -> None:
    fields = (ORDER | changes) if whole else changes
    try:
        expected: object = order_row_of(order_record(fields))
    except FieldProblem as problem:
        expected = (problem.field, problem.message)
    try:
        got: object = order_row(fields)
    except FieldProblem as problem:
        got = (problem.field, problem.message)
    assert got == expected
