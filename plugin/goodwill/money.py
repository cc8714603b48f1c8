"""Amounts in words for agents and supervisors: to the cent, and as an amount input shows them."""

from __future__ import annotations

from decimal import Decimal

from plugin.domain.exceptions import amount, money
from plugin.domain.wording import Amount


def exact_money(cents: int, currency: str, locale: str = "en_US") -> str:
    """An amount to the cent when it has cents: "$7.88", "$15", "$1,250"; "7,88 €" in German."""
    return money(cents, currency, locale, to_the_cent=True)


def exact_amount(cents: int, currency: str) -> Amount:
    """`exact_money` in US English, kept as numbers for the web layer to format for the agent."""
    return amount(cents, currency, to_the_cent=True)


def cents_as_units(cents: int) -> str:
    """Cents as a number an amount input shows: 1500 -> "15.00"."""
    return f"{Decimal(cents) / 100:.2f}"
