"""The value tier bars supervisors set: checking and storing them, suggesting them from the
installation's own orders, and counting the customers in each tier.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers.segmentation import STREAM_ROWS, thresholds_of
from plugin.customers.settings_forms import CENTS, InvalidForm, cents_as_units, whole_number
from plugin.domain.order_history import TRAILING_YEAR
from plugin.domain.segments import suggest_tier_thresholds
from plugin.domain.tiers import Tier, TierThresholds
from plugin.models import CustomerSegment, Installation, Order

ORDERS_BAR_MAX = 1_000_000
SPEND_BAR_MAX = 1_000_000_000  # currency units

TIER_FIELDS = ("medium_min_orders", "medium_min_spend", "high_min_orders", "high_min_spend")


@dataclass(frozen=True)
class TierForm:
    """The four bars as the form holds them: orders a year, and spend a year in currency units."""

    medium_min_orders: str = ""
    medium_min_spend: str = ""
    high_min_orders: str = ""
    high_min_spend: str = ""

    @classmethod
    def of(cls, thresholds: TierThresholds) -> TierForm:
        return cls(
            medium_min_orders=str(thresholds.medium_min_orders),
            medium_min_spend=cents_as_units(thresholds.medium_min_spend_cents),
            high_min_orders=str(thresholds.high_min_orders),
            high_min_spend=cents_as_units(thresholds.high_min_spend_cents),
        )


@dataclass(frozen=True)
class TierSuggestion:
    """Bars drawn from the installation's own base, and how many buyers they come from."""

    thresholds: TierThresholds
    buyers: int


@dataclass(frozen=True)
class TierCounts:
    """How many customers the stored segments put in each tier."""

    high: int = 0
    medium: int = 0
    low: int = 0


def tier_thresholds_from(form: TierForm) -> TierThresholds:
    """Check the four bars; raise InvalidForm naming each field that is wrong and why."""
    errors: dict[str, str] = {}
    bars: dict[str, int] = {}
    for name, most in (
        ("medium_min_orders", ORDERS_BAR_MAX),
        ("medium_min_spend", SPEND_BAR_MAX),
        ("high_min_orders", ORDERS_BAR_MAX),
        ("high_min_spend", SPEND_BAR_MAX),
    ):
        text = getattr(form, name).strip()
        number = whole_number(text)
        if not text:
            errors[name] = "Enter a whole number of 1 or more."
        elif number is None:
            errors[name] = f"{text!r} is not a whole number."
        elif number < 1:
            errors[name] = "Must be at least 1."
        elif number > most:
            errors[name] = f"Must be at most {most:,}."
        else:
            bars[name] = number
    for what in ("orders", "spend"):
        medium, high = bars.get(f"medium_min_{what}"), bars.get(f"high_min_{what}")
        if medium is not None and high is not None and high < medium:
            errors[f"high_min_{what}"] = (
                f"Must be at least the medium bar ({medium:,}): high customers reach both."
            )
    if errors:
        raise InvalidForm(errors)
    return TierThresholds(
        medium_min_orders=bars["medium_min_orders"],
        medium_min_spend_cents=bars["medium_min_spend"] * CENTS,
        high_min_orders=bars["high_min_orders"],
        high_min_spend_cents=bars["high_min_spend"] * CENTS,
    )


def apply_tier_thresholds(installation: Installation, thresholds: TierThresholds) -> None:
    """Make these the installation's bars; the caller commits."""
    installation.tier_medium_min_orders = thresholds.medium_min_orders
    installation.tier_medium_min_spend_cents = thresholds.medium_min_spend_cents
    installation.tier_high_min_orders = thresholds.high_min_orders
    installation.tier_high_min_spend_cents = thresholds.high_min_spend_cents


def save_tier_thresholds(
    session: Session, installation: Installation, form: TierForm
) -> TierThresholds:
    """Check and store the bars; raise InvalidForm. Commits."""
    thresholds = tier_thresholds_from(form)
    apply_tier_thresholds(installation, thresholds)
    session.commit()
    return thresholds


def suggest_tiers(session: Session, installation_id: int, *, now: datetime) -> TierSuggestion:
    """Suggest bars from every customer's orders and spend over the twelve months up to `now`.

    The same window the tiers are computed over; per-customer totals come from the database,
    streamed, so memory stays bounded whatever the base's size.
    """
    rows = session.execute(
        sa.select(sa.func.count(), sa.func.sum(Order.amount_cents))
        .where(
            Order.installation_id == installation_id,
            Order.placed_at > now - TRAILING_YEAR,
            Order.placed_at <= now,
        )
        .group_by(Order.customer_id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    buyers = 0

    def base() -> Iterator[tuple[int, int]]:
        nonlocal buyers
        for orders_12m, spend_12m_cents in rows:
            buyers += 1
            yield int(orders_12m), int(spend_12m_cents or 0)

    thresholds = suggest_tier_thresholds(base())
    return TierSuggestion(thresholds=thresholds, buyers=buyers)


def tier_counts(session: Session, installation_id: int) -> TierCounts:
    """How many customers the stored segments put in each tier."""
    rows = session.execute(
        sa.select(CustomerSegment.tier, sa.func.count())
        .where(CustomerSegment.installation_id == installation_id)
        .group_by(CustomerSegment.tier)
    )
    found = {str(tier): int(count) for tier, count in rows}
    return TierCounts(**{tier.value: found.get(tier.value, 0) for tier in Tier})


def current_tier_form(installation: Installation) -> TierForm:
    return TierForm.of(thresholds_of(installation))
