"""Order numbers a ticket's text names, and which of a customer's orders that is."""

from __future__ import annotations

import pytest

from plugin.domain.order_numbers import named_order, order_numbers


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("Espresso beans order ORD-12185 still not here", ["ORD-12185"]),
        ("Where is #1234?", ["1234"]),
        ("order 1234 arrived broken", ["1234"]),
        ("Order no. 55, and 3 mugs", ["55", "3"]),
        ("Re: 10234 and order #77", ["77", "10234"]),
        ("Nothing to see here", []),
    ],
)
def test_marked_numbers_come_before_other_words_with_digits(text: str, numbers: list[str]) -> None:
    assert order_numbers(text) == numbers


def test_the_first_number_that_is_one_of_theirs_is_the_named_order() -> None:
    theirs = ["ORD-12185", "ORD-12100", "#1001"]
    assert named_order("ORD-99999 or maybe ord-12100?", theirs) == "ORD-12100"
    assert named_order("my order 1001", theirs) == "#1001"
    assert named_order("Where is #1001", ["1001"]) == "1001"


def test_no_number_of_theirs_names_no_order() -> None:
    assert named_order("order 555 is late", ["ORD-12185"]) is None
    assert named_order("Late again", ["ORD-12185"]) is None
    assert named_order("Order #1", []) is None
