"""The exception catalog: the service-recovery gestures agents may grant, and what they cost.

Also what limits the gestures: the goodwill a customer has already been granted (`Grant`,
`Goodwill`) and the monthly budget of a segment (`Budget`, `BudgetStatus`). Definitions arrive
as parsed JSON from the console; `parse_exception_type` and `parse_budget` report every problem
at its path (`cost.percent`, `apply_reasons[1].code`), as persona conditions do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from typing import TypeGuard

from babel import Locale
from babel.numbers import NumberPattern, get_currency_symbol, parse_pattern

from plugin.domain.gesture_binding import GestureBinding, read_binding
from plugin.domain.personas import ConditionError, InvalidConditions
from plugin.domain.recognition import segment_label
from plugin.domain.segments import SEGMENT_FIELDS
from plugin.domain.wording import N_, Amount, ngettext


@dataclass(frozen=True)
class TextShape:
    """A pattern a stored text must match, and how to say it to whoever typed the text."""

    pattern: re.Pattern[str]
    description: str


# Keys and reason codes are short stored codes: "free_expedited_shipping", "late_delivery".
CODE = TextShape(
    re.compile(r"[a-z][a-z0-9_]{0,39}"),
    "lowercase letters, digits and underscores, starting with a letter",
)
CURRENCY = TextShape(re.compile(r"[A-Z]{3}"), "a three-letter currency code such as USD")
NAME_MAX_LENGTH = 100
DESCRIPTION_MAX_LENGTH = 1000
# One million in any currency: no single gesture or monthly budget is larger; a typo is.
MAX_CENTS = 100_000_000
# The sidebar says a budget is running out once this share of it is used.
RUNNING_OUT_SHARE = Fraction(4, 5)
# The window of the goodwill sentence: "$38 granted in the last 90 days".
GOODWILL_DAYS = 90


# Pure, and Babel's formatting costs about 20 µs: a card shows the same few amounts each view.
@lru_cache(maxsize=4096)
def money(
    cents: int, currency: str = "USD", locale: str = "en_US", *, to_the_cent: bool = False
) -> str:
    """Format cents for a locale: whole units, half up, unless `to_the_cent` and it has cents.

    123456 -> "$1,235" (en_US), "1.235 €" (de, EUR); 250 -> "$3": whole units are rounded in
    integers (through a float, round() rounds half to even, and 250 cents showed as "$2").
    `to_the_cent` shows cents only when there are some: "$7.88", "$15".
    """
    if to_the_cent and cents % 100:
        pattern, parsed = _number_pattern(locale, currency, 2)
        return str(pattern.apply(Decimal(cents) / 100, parsed, currency=currency))
    pattern, parsed = _number_pattern(locale, currency, 0)
    return str(
        pattern.apply(Decimal(whole_units(cents)), parsed, currency=currency, currency_digits=False)
    )


def amount(cents: int, currency: str = "USD", *, to_the_cent: bool = False) -> Amount:
    """`money` in US English, keeping its numbers so the web layer formats it for the agent."""
    return Amount(money(cents, currency, to_the_cent=to_the_cent), cents, currency, to_the_cent)


@lru_cache(maxsize=256)
def _number_pattern(locale: str, currency: str, decimals: int) -> tuple[NumberPattern, Locale]:
    """`_pattern` parsed, and the locale: what Babel's `format_currency` would parse again on
    every amount (a sidebar view shows several)."""
    return parse_pattern(_pattern(locale, currency, decimals)), Locale.parse(locale)


@lru_cache(maxsize=256)
def _pattern(locale: str, currency: str, decimals: int) -> str:
    """The locale's currency pattern with `decimals` fraction digits.

    A code without a symbol ("SEK") gets a space next to the number, as CLDR's currency
    spacing asks and Babel does not: "SEK 5", not "SEK5".
    """
    pattern = str(Locale.parse(locale).currency_formats["standard"].pattern).split(";")[0]
    pattern = pattern.replace(".00", "." + "0" * decimals if decimals else "")
    symbol = get_currency_symbol(currency, locale)
    if symbol[-1:].isalpha() and pattern.startswith("¤#"):
        pattern = "¤\u00a0" + pattern[1:]
    elif symbol[:1].isalpha() and pattern.endswith("0¤"):
        pattern = pattern[:-1] + "\u00a0¤"
    return pattern


def whole_units(cents: int) -> int:
    """Cents as whole units, half away from zero: 250 -> 3, 249 -> 2, -250 -> -3."""
    units = (abs(cents) + 50) // 100
    return -units if cents < 0 else units


class InvalidExceptionType(InvalidConditions):
    """A catalog entry that does not validate, with every problem at its path."""


class InvalidBudget(InvalidConditions):
    """A budget that does not validate, with every problem at its path."""


class DefinitionReader:
    """Reads a definition from parsed JSON, collecting every problem at its path."""

    def __init__(self) -> None:
        self.errors: list[ConditionError] = []

    def error(self, path: str, message: str) -> None:
        """Report a problem; only the first at a path, so a missing value is not also wrong."""
        if all(e.path != path for e in self.errors):
            self.errors.append(ConditionError(path, message))

    def fields(
        self,
        raw: object,
        path: str,
        *,
        required: Sequence[str],
        optional: Sequence[str] = (),
    ) -> Mapping[str, object] | None:
        """Return `raw` as an object after reporting unknown and missing keys; None if none."""
        if not isinstance(raw, Mapping):
            self.error(path, "expected an object with " + ", ".join((*required, *optional)))
            return None
        for key in raw:
            if key not in required and key not in optional:
                self.error(_at(path, str(key)), "unknown key")
        for key in required:
            if key not in raw:
                self.error(_at(path, key), "missing")
        return raw

    def cents(self, value: object, path: str) -> int | None:
        """An amount in cents, from nothing to MAX_CENTS."""
        return self.integer(value, path, minimum=0, maximum=MAX_CENTS)

    def integer(self, value: object, path: str, *, minimum: int, maximum: int) -> int | None:
        """A whole number within bounds, or None after reporting why not."""
        if not _is_integer(value):
            self.error(path, "expected a whole number")
            return None
        if not minimum <= value <= maximum:
            self.error(path, f"must be from {minimum:,} to {maximum:,}")
            return None
        return value

    def text(
        self, value: object, path: str, *, max_length: int, shape: TextShape | None = None
    ) -> str | None:
        """A non-blank string, at most `max_length` long and of the `shape` if given."""
        if not isinstance(value, str) or not value.strip():
            self.error(path, "expected a non-blank text")
            return None
        if len(value) > max_length:
            self.error(path, f"at most {max_length} characters")
            return None
        if shape is not None and not shape.pattern.fullmatch(value):
            self.error(path, f"expected {shape.description}")
            return None
        return value

    def items(self, value: object, path: str, *, allow_empty: bool = True) -> list[object]:
        """A list's items; an empty list after reporting a value that is not a list."""
        if not isinstance(value, list):
            self.error(path, "expected a list")
            return []
        if not value and not allow_empty:
            self.error(path, "needs at least one")
        return value

    def absorb(self, error: InvalidConditions, path: str) -> None:
        """Take the problems of a nested definition, each moved under `path`."""
        self.errors.extend(ConditionError(_at(path, e.path), e.message) for e in error.errors)


def _at(path: str, key: str) -> str:
    """The path of `key` under `path`: "cost" + "percent" -> "cost.percent"."""
    if not key:
        return path
    if not path or key.startswith("["):
        return path + key
    return f"{path}.{key}"


def _is_integer(value: object) -> TypeGuard[int]:
    """Whether a value is a whole number; JSON true/false arrive as bool, which is an int."""
    return isinstance(value, int) and not isinstance(value, bool)


# The catalog ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReasonCode:
    """Why an agent applied or dismissed an exception: a stored code and what agents read."""

    code: str
    label: str


class CostKind(StrEnum):
    FIXED = "fixed"
    PERCENT = "percent"


@dataclass(frozen=True)
class FixedCost:
    """A gesture that costs the same every time, such as waiving a $12 fee."""

    cents: int

    def estimate(self, order_value_cents: int | None) -> int:
        """The cost, whatever the order."""
        return self.cents

    def describe(self, currency: str) -> str:
        return amount(self.cents, currency)


@dataclass(frozen=True)
class PercentCost:
    """A share of the order's value, such as a 10% refund, kept within optional bounds."""

    percent: Decimal
    min_cents: int | None = None
    max_cents: int | None = None

    def estimate(self, order_value_cents: int | None) -> int | None:
        """The share of the order in whole cents (half up), within the bounds; None without one."""
        if order_value_cents is None:
            return None
        share = (Decimal(order_value_cents) * self.percent / 100).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
        cents = int(share)
        if self.min_cents is not None:
            cents = max(cents, self.min_cents)
        if self.max_cents is not None:
            cents = min(cents, self.max_cents)
        return cents

    def describe(self, currency: str) -> str:
        """Say the cost: "10% of the order, at least $5, at most $50"."""
        share = f"{self.percent.normalize():f}%"
        low = None if self.min_cents is None else amount(self.min_cents, currency)
        high = None if self.max_cents is None else amount(self.max_cents, currency)
        if low is not None and high is not None:
            return N_(
                "%(share)s of the order, at least %(low)s, at most %(high)s",
                share=share,
                low=low,
                high=high,
            )
        if low is not None:
            return N_("%(share)s of the order, at least %(low)s", share=share, low=low)
        if high is not None:
            return N_("%(share)s of the order, at most %(high)s", share=share, high=high)
        return N_("%(share)s of the order", share=share)


CostModel = FixedCost | PercentCost


@dataclass(frozen=True)
class AmountLimits:
    """The amounts an agent may change an editable exception to, inclusive."""

    min_cents: int
    max_cents: int

    def clamp(self, cents: int) -> int:
        return min(max(cents, self.min_cents), self.max_cents)


@dataclass(frozen=True)
class ExceptionType:
    """A catalog entry: a gesture agents may grant, its cost, and the reasons they may give.

    `editable` is None when the agent grants the amount as estimated; otherwise the agent may
    change it within the limits, and the estimate is kept within them too.
    """

    key: str
    name: str
    description: str
    cost: CostModel
    apply_reasons: tuple[ReasonCode, ...]
    dismiss_reasons: tuple[ReasonCode, ...]
    currency: str = "USD"
    editable: AmountLimits | None = None
    # What the shop gives when it is applied; None: record only (`gesture_binding`).
    gesture: GestureBinding | None = None

    def estimate(self, order_value_cents: int | None) -> int | None:
        """What granting it would cost for this order; None when a share has no order to price."""
        cents = self.cost.estimate(order_value_cents)
        if cents is None or self.editable is None:
            return cents
        return self.editable.clamp(cents)


def parse_exception_type(raw: object) -> ExceptionType:
    """Validate a catalog entry such as `{"key": ..., "cost": {"kind": "fixed", ...}, ...}`.

    Raises InvalidExceptionType listing every problem, each at its path.
    """
    reader = DefinitionReader()
    entry = reader.fields(
        raw,
        "",
        required=("key", "name", "currency", "cost", "apply_reasons", "dismiss_reasons"),
        optional=("description", "editable", "gesture"),
    )
    if entry is None:
        raise InvalidExceptionType(reader.errors)
    key = reader.text(entry.get("key"), "key", max_length=40, shape=CODE)
    name = reader.text(entry.get("name"), "name", max_length=NAME_MAX_LENGTH)
    description = entry.get("description", "")
    if not isinstance(description, str) or len(description) > DESCRIPTION_MAX_LENGTH:
        reader.error(
            "description", f"expected a text of at most {DESCRIPTION_MAX_LENGTH} characters"
        )
    currency = reader.text(entry.get("currency"), "currency", max_length=3, shape=CURRENCY)
    editable = _editable(entry.get("editable"), reader)
    cost = _cost(entry.get("cost"), reader, editable)
    apply_reasons = _reasons(entry.get("apply_reasons"), "apply_reasons", reader)
    dismiss_reasons = _reasons(entry.get("dismiss_reasons"), "dismiss_reasons", reader)
    gesture = read_binding(entry.get("gesture"), reader, percent_cost=isinstance(cost, PercentCost))
    if reader.errors:
        raise InvalidExceptionType(reader.errors)
    assert key and name and currency and cost and isinstance(description, str)
    return ExceptionType(
        key=key,
        name=name,
        description=description,
        cost=cost,
        apply_reasons=apply_reasons,
        dismiss_reasons=dismiss_reasons,
        currency=currency,
        editable=editable,
        gesture=gesture,
    )


def _cost(raw: object, reader: DefinitionReader, editable: AmountLimits | None) -> CostModel | None:
    """Read the cost model; its amounts must lie within the editable limits, if any."""
    kind = raw.get("kind") if isinstance(raw, Mapping) else None
    if kind == CostKind.FIXED:
        fields = reader.fields(raw, "cost", required=("kind", "cents"))
        assert fields is not None
        cents = reader.cents(fields.get("cents"), "cost.cents")
        _within(cents, editable, "cost.cents", reader)
        return None if cents is None else FixedCost(cents)
    if kind == CostKind.PERCENT:
        fields = reader.fields(
            raw, "cost", required=("kind", "percent"), optional=("min_cents", "max_cents")
        )
        assert fields is not None
        found = len(reader.errors)
        percent = fields.get("percent")
        if (
            not isinstance(percent, int | float)
            or isinstance(percent, bool)
            or not (0 < percent <= 100)
        ):
            reader.error("cost.percent", "expected a number above 0 and at most 100")
        bounds = {
            name: reader.cents(fields[name], f"cost.{name}") if name in fields else None
            for name in ("min_cents", "max_cents")
        }
        low, high = bounds["min_cents"], bounds["max_cents"]
        if low is not None and high is not None and low > high:
            reader.error("cost.max_cents", "must be at least min_cents")
        _within(low, editable, "cost.min_cents", reader)
        _within(high, editable, "cost.max_cents", reader)
        if not isinstance(percent, int | float) or len(reader.errors) > found:
            return None
        return PercentCost(Decimal(str(percent)), low, high)
    reader.error(
        "cost.kind" if isinstance(raw, Mapping) else "cost",
        f"expected {CostKind.FIXED} (with cents) or {CostKind.PERCENT} (with percent)",
    )
    return None


def _within(
    cents: int | None, editable: AmountLimits | None, path: str, reader: DefinitionReader
) -> None:
    """Report an amount outside what agents may grant."""
    if cents is not None and editable is not None and editable.clamp(cents) != cents:
        reader.error(
            path,
            f"must lie within the editable amount, {editable.min_cents:,} to "
            f"{editable.max_cents:,} cents",
        )


def _editable(raw: object, reader: DefinitionReader) -> AmountLimits | None:
    """Read the editable limits; null or absent means the amount is not editable."""
    if raw is None:
        return None
    fields = reader.fields(raw, "editable", required=("min_cents", "max_cents"))
    if fields is None:
        return None
    low = reader.cents(fields.get("min_cents"), "editable.min_cents")
    high = reader.cents(fields.get("max_cents"), "editable.max_cents")
    if low is None or high is None:
        return None
    if low > high:
        reader.error("editable.max_cents", "must be at least min_cents")
        return None
    return AmountLimits(low, high)


def _reasons(raw: object, path: str, reader: DefinitionReader) -> tuple[ReasonCode, ...]:
    """Read a non-empty list of reason codes with labels, each code once."""
    reasons: list[ReasonCode] = []
    for i, item in enumerate(reader.items(raw, path, allow_empty=False)):
        item_path = f"{path}[{i}]"
        fields = reader.fields(item, item_path, required=("code", "label"))
        if fields is None:
            continue
        code = reader.text(fields.get("code"), f"{item_path}.code", max_length=40, shape=CODE)
        label = reader.text(fields.get("label"), f"{item_path}.label", max_length=NAME_MAX_LENGTH)
        if code is not None and any(r.code == code for r in reasons):
            reader.error(f"{item_path}.code", f"{code} is listed twice")
        elif code is not None and label is not None:
            reasons.append(ReasonCode(code, label))
    return tuple(reasons)


# Goodwill already granted ---------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """An exception granted to the customer before: which, for how much, and when."""

    exception: str
    amount_cents: int
    granted_at: datetime


def granted_within(grants: Iterable[Grant], *, now: datetime, days: int) -> list[Grant]:
    """The grants of the `days` days up to `now`: after now - days, not after now."""
    since = now - timedelta(days=days)
    return [grant for grant in grants if since < grant.granted_at <= now]


@dataclass(frozen=True)
class Goodwill:
    """What a customer was granted in a recent window, for the "why" of a suggestion."""

    count: int
    cents: int
    days: int
    currency: str

    @classmethod
    def of(
        cls, grants: Iterable[Grant], *, now: datetime, currency: str, days: int = GOODWILL_DAYS
    ) -> Goodwill:
        recent = granted_within(grants, now=now, days=days)
        return cls(len(recent), sum(g.amount_cents for g in recent), days, currency)

    @property
    def sentence(self) -> str:
        """Say it: "$38 granted in the last 90 days" or "Nothing granted in the last 90 days"."""
        if not self.count:
            return ngettext(
                "Nothing granted in the last %(num)d day",
                "Nothing granted in the last %(num)d days",
                self.days,
            )
        return ngettext(
            "%(amount)s granted in the last %(num)d day",
            "%(amount)s granted in the last %(num)d days",
            self.days,
            amount=amount(self.cents, self.currency),
        )


# Budgets ----------------------------------------------------------------------------------

# A tier's segment, as the banner says it.
TIER_LABELS = {"high": N_("High value"), "medium": N_("Medium value"), "low": N_("Low value")}

# A budget belongs to one value of a segment field that has a fixed list of values.
BUDGET_FIELDS = {name: spec for name, spec in SEGMENT_FIELDS.items() if spec.choices}


@dataclass(frozen=True)
class SegmentRef:
    """One segment: a value of a segment field, such as tier high or rfm_segment champions."""

    field: str
    value: str

    @property
    def label(self) -> str:
        """Say the segment as agents read it: "High value", "Champions", "Deal seeker"."""
        if self.field == "tier":
            return TIER_LABELS.get(self.value) or N_("%(tier)s value", tier=self.value)
        return segment_label(self.value)


def read_segment_ref(raw: object, path: str, reader: DefinitionReader) -> SegmentRef | None:
    """Read `{"field": "tier", "value": "high"}`, reporting problems under `path`."""
    fields = reader.fields(raw, path, required=("field", "value"))
    if fields is None:
        return None
    name, value = fields.get("field"), fields.get("value")
    spec = BUDGET_FIELDS.get(name) if isinstance(name, str) else None
    if "field" in fields and spec is None:
        reader.error(_at(path, "field"), "expected one of " + ", ".join(BUDGET_FIELDS))
        return None
    if spec is None or "value" not in fields:
        return None
    if not isinstance(value, str) or value not in spec.choices:
        reader.error(_at(path, "value"), "expected one of " + ", ".join(spec.choices))
        return None
    assert isinstance(name, str)
    return SegmentRef(name, value)


@dataclass(frozen=True)
class Budget:
    """What the gestures charged to a segment may cost in a calendar month."""

    segment: SegmentRef
    monthly_cents: int


def parse_budget(raw: object) -> Budget:
    """Validate `{"segment": {"field": ..., "value": ...}, "monthly_cents": ...}`.

    Raises InvalidBudget listing every problem, each at its path.
    """
    reader = DefinitionReader()
    fields = reader.fields(raw, "", required=("segment", "monthly_cents"))
    if fields is None:
        raise InvalidBudget(reader.errors)
    segment = read_segment_ref(fields.get("segment"), "segment", reader)
    monthly = reader.cents(fields.get("monthly_cents"), "monthly_cents")
    if reader.errors:
        raise InvalidBudget(reader.errors)
    assert segment is not None and monthly is not None
    return Budget(segment, monthly)


@dataclass(frozen=True)
class BudgetStatus:
    """A budget and what was spent from it so far this month."""

    budget: Budget
    spent_cents: int

    @property
    def share_used(self) -> Fraction:
        """The share spent; a budget of nothing counts as fully used."""
        if self.budget.monthly_cents <= 0:
            return Fraction(1)
        return Fraction(self.spent_cents, self.budget.monthly_cents)

    @property
    def percent_used(self) -> int:
        """The share spent in whole percent, rounded down: 79.9% used is not yet 80%."""
        return int(self.share_used * 100)

    @property
    def running_out(self) -> bool:
        return self.share_used >= RUNNING_OUT_SHARE

    def allows(self, cents: int) -> bool:
        """Whether spending `cents` more stays within the month's budget."""
        return self.spent_cents + cents <= self.budget.monthly_cents

    def sentence(self, currency: str) -> str:
        """Say what is used: "$412 of $1,000 this month"."""
        spent = amount(self.spent_cents, currency)
        return N_(
            "%(spent)s of %(budget)s this month",
            spent=spent,
            budget=amount(self.budget.monthly_cents, currency),
        )
