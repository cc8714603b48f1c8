"""What the console's goodwill forms share: amounts typed in currency units and shown back,
and one message per input, each a sentence.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from plugin.domain.field_errors import FieldErrors

CENTS = 100


class InvalidForm(FieldErrors):
    """A form with problems: one message per input, keyed as the form names its inputs."""


def _sentence(message: str) -> str:
    text = message.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def add_error(errors: dict[str, str], key: str, message: str) -> None:
    """Add a problem to an input's message, as a sentence after any already there."""
    errors[key] = f"{errors[key]} {_sentence(message)}" if key in errors else _sentence(message)


def parse_units(text: str) -> int | None:
    """An amount as typed ("12.50", "1,500") in cents; None when it is not one."""
    cleaned = text.strip().replace(",", "")
    try:
        units = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not units.is_finite() or units < 0 or units != units.quantize(Decimal("0.01")):
        return None
    return int(units * CENTS)


def units(cents: object) -> str:
    """Cents as the form shows them: 1500 -> "15", 1250 -> "12.50"."""
    if not isinstance(cents, int) or isinstance(cents, bool):
        return "" if cents is None else str(cents)
    return str(cents // CENTS) if cents % CENTS == 0 else f"{Decimal(cents) / CENTS:.2f}"


def whole_number(text: str) -> int | None:
    """A whole number as typed ("1,500"); None when it is not one."""
    cleaned = text.strip().replace(",", "")
    return int(cleaned) if re.fullmatch(r"\d+", cleaned) else None
