"""The recognition banner: who this customer is to the business, from their facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from plugin.domain.helpdesk import ContactHistory, Person
from plugin.domain.tiers import Tier, TierThresholds, value_tier

STALE_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class OrderStats:
    """A customer's purchases, as of `as_of`, from one source."""

    order_count: int
    total_spend_cents: int
    orders_12m: int
    spend_12m_cents: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    top_categories: tuple[str, ...]
    source: str
    as_of: datetime


@dataclass(frozen=True)
class Banner:
    """What the sidebar says about a requester; formatting is left to the template."""

    name: str
    first_name: str
    is_customer: bool
    tier: Tier
    customer_since: date | None
    orders: OrderStats | None
    # None when the helpdesk could not give the requester's ticket history in time.
    contact: ContactHistory | None
    data_as_of: datetime | None
    is_stale: bool
    # Facts the helpdesk holds on the requester (mapped fields and tags), by fact name.
    helpdesk_facts: tuple[tuple[str, object], ...] = ()

    @property
    def has_orders(self) -> bool:
        return self.orders is not None and self.orders.order_count > 0


def build_banner(
    *,
    requester: Person,
    customer_name: str | None,
    customer_since: date | None,
    orders: OrderStats | None,
    contact: ContactHistory | None,
    thresholds: TierThresholds,
    helpdesk_facts: Mapping[str, object] | None = None,
    now: datetime,
) -> Banner:
    """Combine stored facts and live helpdesk history into the banner for one requester."""
    name = customer_name or requester.name
    tier = (
        value_tier(orders.orders_12m, orders.spend_12m_cents, thresholds)
        if orders is not None
        else Tier.LOW
    )
    since = customer_since
    if orders is not None and orders.first_order_at is not None:
        first_order = orders.first_order_at.date()
        since = min(since, first_order) if since else first_order
    data_as_of = orders.as_of if orders is not None else None
    return Banner(
        name=name,
        first_name=name.split()[0] if name.strip() else name,
        is_customer=customer_name is not None,
        tier=tier,
        customer_since=since,
        orders=orders,
        contact=contact,
        data_as_of=data_as_of,
        is_stale=data_as_of is not None and now - data_as_of > STALE_AFTER,
        helpdesk_facts=tuple(sorted((helpdesk_facts or {}).items())),
    )
