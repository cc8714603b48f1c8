"""What the banner reads but does not store, stored when the sidebar's page asks for it.

A banner GET writes nothing but caches and the seen-ticket counter. It reads the requester's
customer from the installation's shop through the upstream cache (`read_shop`), and builds
the banner from what is stored; when the shop's answer, or the helpdesk facts mapped from the
requester, hold something not stored yet, the banner says so and the page posts for the write
(`POST /sidebar/sync`, `POST /freshdesk/sync`): `store_unstored` stores both, and the page
shows the banner built again from what is now stored.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from plugin.customers import lookup as customers
from plugin.customers.records import normalize_email
from plugin.customers.shopify import ShopifySyncError, sync_customer
from plugin.customers.shopify_client import ShopifyClient, ShopifyCustomer
from plugin.domain.helpdesk import Person
from plugin.helpdesks import field_mappings
from plugin.models import Installation
from plugin.sidebar.upstream import UpstreamCache, UpstreamPolicy, upstream_group


@dataclass(frozen=True)
class ShopRead:
    """The shop's answer about a requester's email, as the upstream cache holds it."""

    key: Hashable
    customer: ShopifyCustomer | None  # None: the shop knows nobody with that email
    fetched_at: datetime
    stale_reason: str | None = None

    def stored_in(self, synced: Mapping[Hashable, datetime]) -> bool:
        """True when nothing of this answer waits to be stored (`synced`: what this process
        stored, by cache key: the time each stored answer was fetched)."""
        return self.customer is None or synced.get(self.key) == self.fetched_at


def read_shop(
    installation_id: int,
    requester: Person,
    *,
    client: ShopifyClient | None,
    cache: UpstreamCache,
    policy: UpstreamPolicy,
    deadline: float,
) -> ShopRead | None:
    """The shop's answer about the requester's email, by the deadline; None without a shop.

    The shop is asked at most once per `shop_fresh_seconds` per email; when it is slow or
    failing the last answer is served, marked stale. Raises `HelpdeskError` (a `ShopifyError`
    or `UpstreamTimeout`) when it fails and nothing was cached: the banner shows what is stored.
    """
    if client is None or not requester.email:
        return None
    email = normalize_email(requester.email)
    key = (installation_id, "shop", email)
    fetched = cache.lookup(
        key,
        lambda: client.customer_by_email(email),
        fresh_for=policy.shop_fresh_seconds,
        group=upstream_group(installation_id, "shop"),
    ).result(deadline)
    return ShopRead(
        key=key,
        customer=fetched.value,
        fetched_at=fetched.fetched_at,
        stale_reason=fetched.stale_reason,
    )


def store_unstored(
    session: Session,
    installation: Installation,
    requester: Person,
    *,
    shop: ShopRead | None,
    synced: MutableMapping[Hashable, datetime],
    facts_fetched_at: datetime,
) -> str | None:
    """Store the shop's answer and the requester's mapped helpdesk facts, and commit.

    Idempotent: storing what is stored already writes nothing. The shop's customer is stored
    first, so that a requester the shop has just made a customer gets their helpdesk facts in
    the same request. Returns why the shop's answer could not be stored, or None.
    """
    problem = None
    if shop is not None and shop.customer is not None:
        try:
            sync_customer(session, installation, shop.customer, now=shop.fetched_at)
            session.commit()
        except ShopifySyncError as refused:
            session.rollback()
            problem = str(refused)
        # A refused answer would be refused again: the banner stops asking until it changes.
        synced[shop.key] = shop.fetched_at
    record_helpdesk_facts(session, installation, requester, fetched_at=facts_fetched_at)
    session.commit()
    return problem


def record_helpdesk_facts(
    session: Session, installation: Installation, requester: Person, *, fetched_at: datetime
) -> None:
    """Store the helpdesk fields and tags the installation maps to facts on the requester's
    customer, as read off the requester (a value that did not change is not written)."""
    customer = customers.find_customer(session, installation_id=installation.id, person=requester)
    if customer is None:
        return
    customers.record_facts(
        session,
        customer=customer,
        facts=field_mappings.mapped_facts(
            requester, field_mappings.list_mappings(session, installation)
        ),
        source=installation.platform,
        now=fetched_at,
    )
