"""Amounts in words for agents and supervisors: to the cent, and as an amount input shows them."""

from __future__ import annotations

from decimal import Decimal

from plugin.domain.exceptions import money


def exact_money(cents: int, currency: str) -> str:
    """An amount to the cent when it has cents: "$7.88", "$15", "$1,250"."""
    if cents % 100 == 0:
        return money(cents, currency)
    whole = money(0, currency)[:-1]  # the symbol: "$", "CA$", "NOK "
    sign = "-" if cents < 0 else ""
    return f"{sign}{whole}{Decimal(abs(cents)) / 100:,.2f}"


def cents_as_units(cents: int) -> str:
    """Cents as a number an amount input shows: 1500 -> "15.00"."""
    return f"{Decimal(cents) / 100:.2f}"
