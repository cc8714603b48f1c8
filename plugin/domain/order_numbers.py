"""Which of a customer's orders a ticket names: order numbers found in its text, matched."""

from __future__ import annotations

import re
from collections.abc import Iterable

# "ORD-12185", "#1234", "order 1234", "order no. 1234", "order #A-77": a word holding a digit,
# after "#" or "order", or shaped like a prefixed number (letters, a dash, digits).
_AFTER_MARK = re.compile(r"(?:#|\border\b(?:\s*(?:no\.?|number|#))?)\s*([\w-]*\d[\w-]*)", re.I)
_PREFIXED = re.compile(r"\b([A-Za-z]{1,10}-?\d[\w-]*)\b")
# Last, any word with a digit: an order id such as "10234" said without "#" or "order".
_ANY_NUMBER = re.compile(r"([\w-]*\d[\w-]*)")


def order_numbers(text: str) -> list[str]:
    """The candidate order numbers a text mentions, each once: marked ones ("#12", "order 12",
    "ORD-12") first, in order of appearance, then any other word holding a digit."""
    found: dict[str, int] = {}
    for rank, pattern in enumerate((_AFTER_MARK, _PREFIXED, _ANY_NUMBER)):
        for match in pattern.finditer(text):
            found.setdefault(match.group(1).strip("-"), rank * len(text) + match.start(1))
    return sorted((number for number in found if number), key=found.__getitem__)


# How many of a description's order numbers a ticket keeps, and how much of it is read.
MAX_MENTIONED = 5
MAX_DESCRIPTION_READ = 2000


def mentioned_orders(description: str | None) -> tuple[str, ...]:
    """The candidate order numbers in a ticket's description, at most a few, in rank order."""
    if not description:
        return ()
    return tuple(order_numbers(description[:MAX_DESCRIPTION_READ])[:MAX_MENTIONED])


def comparable(number: str) -> str:
    """An order number as compared: case and a leading "#" do not count ("#1001" is "1001")."""
    return number.strip().lstrip("#").casefold()


def named_order(text: str, numbers: Iterable[str]) -> str | None:
    """Which of `numbers` (a customer's order numbers or ids) the text names first, if any."""
    by_key = {comparable(number): number for number in numbers}
    for candidate in order_numbers(text):
        match = by_key.get(comparable(candidate))
        if match is not None:
            return match
    return None
