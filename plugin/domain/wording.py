"""Sentences the Python code builds for agents, in English and ready for their language.

A `Words` is the English sentence (a str: notes, logs, tests and exports read it as before)
that also keeps its catalog message and values, so the web layer (`plugin.web.i18n.say`) can
word it in the agent's language. `N_` and `ngettext` here only mark the message for
`pybabel extract` (both are among its default keywords); nothing is translated in this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class Words(str):
    """An English sentence with its catalog message (`text`, a plural pair with `num`) and values.

    Values are shown as they are, except an `Amount` (formatted for the agent's locale) and a
    nested `Words` (translated in turn).
    """

    text: str
    plural: str | None
    num: int
    values: Mapping[str, object]

    def __new__(
        cls, text: str, values: Mapping[str, object], plural: str | None = None, num: int = 0
    ) -> Words:
        chosen = text if plural is None or num == 1 else plural
        english = chosen % {"num": num, **values} if values or plural else chosen
        made = super().__new__(cls, english)
        made.text, made.plural, made.num, made.values = text, plural, num, dict(values)
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        # Cached cards are pickled: rebuild from the message, not from the English alone.
        return (Words, (self.text, self.values, self.plural, self.num))


class Amount(str):
    """An amount of money in US English ("$1,250") that the web layer formats for the agent."""

    cents: int
    currency: str
    to_the_cent: bool

    def __new__(cls, english: str, cents: int, currency: str, to_the_cent: bool = False) -> Amount:
        made = super().__new__(cls, english)
        made.cents, made.currency, made.to_the_cent = cents, currency, to_the_cent
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        return (Amount, (str(self), self.cents, self.currency, self.to_the_cent))


def N_(text: str, **values: object) -> Words:  # noqa: N802 (the name pybabel extracts)
    """A sentence for agents: `text` (English, `%(name)s` for values) with its values."""
    return Words(text, values)


def ngettext(singular: str, plural: str, num: int, **values: object) -> Words:
    """A sentence about a count: the singular or plural as English counts `num` (`%(num)d`)."""
    return Words(singular, values, plural, num)


def listed(items: Sequence[str]) -> Words:
    """Items joined with commas, each worded in turn: a list has no words of its own to look up."""
    return Words(
        ", ".join(f"%(v{n})s" for n in range(len(items))), {f"v{n}": i for n, i in enumerate(items)}
    )
