"""What the segment settings forms share: the error a form raises, and how typed text is read.

Every save checks everything at once and raises `InvalidForm` with one message per field,
keyed as the form names it (`name`, `tier.high`, `all[2].value`), so a form can show each
problem next to its input.
"""

from __future__ import annotations

import re

from plugin.domain.field_errors import FieldErrors

CENTS = 100


class InvalidForm(FieldErrors):
    """A form that does not validate: one message per field, keyed by the field's name."""


def clean_text(value: str) -> str:
    """Trim a submitted text and give it one kind of line break (browsers send CRLF)."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def check_length(errors: dict[str, str], key: str, value: str, most: int) -> None:
    """Note in `errors` under `key` when `value` is longer than `most` characters."""
    if len(value) > most:
        errors[key] = f"{len(value):,} characters; at most {most:,}."


def whole_number(text: str) -> int | None:
    """Read a whole number as typed ("1,500", "+3"); None when the text is not one."""
    cleaned = text.strip().replace(",", "").replace(" ", "")
    return int(cleaned) if re.fullmatch(r"[+-]?\d+", cleaned) else None


def cents_as_units(cents: float) -> str:
    """Cents as currency units, without a fraction when there is none: 150000 -> "1500"."""
    return str(int(cents) // CENTS) if cents % CENTS == 0 else f"{cents / CENTS:.2f}"
