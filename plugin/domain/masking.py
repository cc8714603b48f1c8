"""Masking by role: which customer fields a helpdesk role sees, and those fields hidden.

An admin chooses, per helpdesk role, which of five field groups its agents see. Pure: the
sidebar, the notes and the console apply it (`plugin/masking/`); docs/privacy.md says what
each group covers and where masks apply.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from plugin.domain.recognition import Banner


class FieldGroup(StrEnum):
    """A kind of customer data a role may be kept from seeing."""

    EMAIL = "email"
    PHONE = "phone"
    # What the customer spent: the last 12 months' spend, order totals, the order a share of
    # is priced from. Never the offer's own amount, which the agent needs to give it.
    MONEY = "money"
    # The customer's spend over all time ("$4,852 lifetime", "in all").
    LIFETIME_VALUE = "lifetime_value"
    # The orders card's lines (numbers, dates, items, statuses, tracking) and what they add up
    # to in words ("Buys most: coffee, mugs").
    ORDER_LINES = "order_lines"


# The order the console lists them in.
FIELD_GROUPS = tuple(FieldGroup)


@dataclass(frozen=True)
class Mask:
    """The field groups a viewer does not see; the empty mask shows everything."""

    hidden: frozenset[FieldGroup] = frozenset()

    def hides(self, group: FieldGroup | str) -> bool:
        return FieldGroup(group) in self.hidden

    @property
    def key(self) -> tuple[str, ...]:
        """The mask as a sorted tuple of values: part of what a rendered banner is cached by."""
        return tuple(sorted(group.value for group in self.hidden))

    def stricter(self, other: Mask) -> Mask:
        """What neither mask lets through: the two hidden sets together."""
        return Mask(self.hidden | other.hidden)

    @classmethod
    def of(cls, hidden: Iterable[str]) -> Mask:
        """The mask hiding these groups by value; values that name no group are ignored."""
        known = {group.value for group in FieldGroup}
        return cls(frozenset(FieldGroup(value) for value in hidden if value in known))


SHOW_EVERYTHING = Mask()
HIDE_EVERYTHING = Mask(frozenset(FieldGroup))


@dataclass(frozen=True)
class ViewerRoles:
    """What the helpdesk says of the agent looking: their base role ("agent", "admin") and
    their finer roles (a Zendesk custom role's id, Freshdesk role ids, and their names when an
    admin named a mask's role by name), all compared case-insensitively."""

    base: str | None
    specific: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoleMasks:
    """An installation's masks: one per role an admin listed, and one for the roles not listed.

    `by_role` is keyed by the role as typed, casefolded (an id or a name).
    """

    by_role: Mapping[str, Mask] = field(default_factory=dict)
    default: Mask = SHOW_EVERYTHING

    def for_viewer(self, viewer: ViewerRoles | None) -> Mask:
        """The mask for this viewer; None (the helpdesk did not say who they are): the strictest.

        The viewer's finer roles decide when any is listed (a field shows when one of them
        shows it, as a Freshdesk agent's roles add up); else their base role when listed; else
        the default.
        """
        if viewer is None:
            return self.strictest()
        held = (role.casefold() for role in viewer.specific)
        listed = [self.by_role[role] for role in held if role in self.by_role]
        if listed:
            return Mask(frozenset.intersection(*(mask.hidden for mask in listed)))
        base = (viewer.base or "").casefold()
        return self.by_role.get(base, self.default) if base else self.default

    def strictest(self) -> Mask:
        """Everything any listed role or the default hides: for whoever cannot be told apart."""
        mask = self.default
        for listed in self.by_role.values():
            mask = mask.stricter(listed)
        return mask


def mask_banner(banner: Banner, mask: Mask) -> Banner:
    """The banner with the values its mask hides taken out, so they cannot be rendered.

    The template says "hidden" where a figure was (it reads the mask); the values themselves
    are zeroed or dropped here, so no attribute, tooltip or cached entry can carry them.
    """
    if not mask.hidden:
        return banner
    orders = banner.orders
    if orders is not None:
        orders = dataclasses.replace(
            orders,
            spend_12m_cents=0 if mask.hides(FieldGroup.MONEY) else orders.spend_12m_cents,
            total_spend_cents=0
            if mask.hides(FieldGroup.LIFETIME_VALUE)
            else orders.total_spend_cents,
            top_categories=() if mask.hides(FieldGroup.ORDER_LINES) else orders.top_categories,
        )
    facts = tuple(
        (name, HIDDEN if fact_group(name, value) in mask.hidden else value)
        for name, value in banner.helpdesk_facts
    )
    return dataclasses.replace(banner, orders=orders, helpdesk_facts=facts)


class Hidden:
    """The value of a fact the viewer's mask hides (one instance, `HIDDEN`)."""

    def __repr__(self) -> str:
        return "HIDDEN"

    def __reduce__(self) -> str:
        return "HIDDEN"  # pickled by name, so a cached banner's key stays stable


HIDDEN = Hidden()

_EMAIL = re.compile(r"[^\s@<>()\[\]\"',;:]+@[^\s@<>()\[\]\"',;:]+\.[a-z]{2,}", re.IGNORECASE)
# Seven digits or more, with the separators phone numbers are written with.
_PHONE = re.compile(r"(?<![\w.])\+?\(?\d[\d ().\-/]{5,}\d(?![\w.])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
PHONE_MIN_DIGITS = 7
_MONEY = re.compile(
    r"(?:[$€£¥]\s?\d(?:[\d,.']*\d)?|\b\d(?:[\d,.']*\d)?\s?(?:USD|EUR|GBP|CAD|AUD|€|\$)(?!\w))",
    re.IGNORECASE,
)
_FACT_WORDS: tuple[tuple[FieldGroup, tuple[str, ...]], ...] = (
    (FieldGroup.EMAIL, ("email", "e-mail", "e_mail")),
    (FieldGroup.PHONE, ("phone", "mobile", "tel", "cell", "whatsapp", "sms")),
    (FieldGroup.LIFETIME_VALUE, ("lifetime", "ltv", "clv")),
    (FieldGroup.MONEY, ("spend", "spent", "revenue", "cents", "amount", "aov", "order_value")),
)


def fact_group(name: str, value: object) -> FieldGroup | None:
    """The group a helpdesk fact belongs to, by its name or, for a text, by what it looks like."""
    words = name.casefold()
    for group, markers in _FACT_WORDS:
        if any(marker in words for marker in markers):
            return group
    if isinstance(value, str):
        if _EMAIL.search(value):
            return FieldGroup.EMAIL
        if _is_phone(value.strip()) and _PHONE.fullmatch(value.strip()):
            return FieldGroup.PHONE
    return None


def scrub_text(text: str, mask: Mask, hidden_word: str = "[hidden]") -> str:
    """Free text (an agent's words in a note) with the emails, phone numbers and money amounts
    the mask hides replaced by `hidden_word`. Amounts are hidden when spend or lifetime value
    is: words cannot tell which a number is."""
    if mask.hides(FieldGroup.EMAIL):
        text = _EMAIL.sub(hidden_word, text)
    if mask.hides(FieldGroup.MONEY) or mask.hides(FieldGroup.LIFETIME_VALUE):
        text = _MONEY.sub(hidden_word, text)
    if mask.hides(FieldGroup.PHONE):
        text = _PHONE.sub(lambda m: hidden_word if _is_phone(m.group()) else m.group(), text)
    return text


def _is_phone(text: str) -> bool:
    """Enough digits for a phone number, and not an ISO date."""
    return sum(c.isdigit() for c in text) >= PHONE_MIN_DIGITS and not _DATE.fullmatch(text)
