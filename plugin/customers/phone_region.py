"""An installation's default phone region: where a number without a leading + is read.

Setting it re-reads the installation's stored numbers that were not phone numbers in the old
region (E.164 keys start with + and read the same in every region). While no admin has set
it, the connection check takes the helpdesk account's country (`adopt_account_region`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.phones import is_region, phone_key_or_none, region_or_default
from plugin.helpdesks.interface import HelpdeskError
from plugin.models import Customer, Installation

BATCH = 5_000


class NotARegion(ValueError):
    """The text is not an ISO 3166 alpha-2 region phone numbers are known for."""


@dataclass(frozen=True)
class RegionSet:
    """What setting the region did: the region, numbers re-keyed, numbers still unreadable."""

    region: str
    rekeyed: int
    unreadable: int


def phone_region(session: Session, installation_id: int) -> str:
    """The installation's default phone region ("US" when none was set)."""
    installation = session.get(Installation, installation_id)
    return region_or_default(installation.default_phone_region if installation else None)


def set_phone_region(session: Session, installation: Installation, code: str) -> RegionSet:
    """Store the region (any case: "gb" is "GB") and re-key the stored numbers it now reads;
    the caller commits. Raise NotARegion for a code phone numbers are not known for."""
    region = code.strip().upper()
    if not is_region(region):
        raise NotARegion(f"{code!r} is not a region code such as US, GB or DE (ISO 3166 alpha-2)")
    installation.default_phone_region = region
    rekeyed = unreadable = 0
    after = 0
    while True:
        rows = session.execute(
            sa.select(Customer.id, Customer.phone)
            .where(
                Customer.installation_id == installation.id,
                Customer.id > after,
                Customer.phone.is_not(None),
            )
            .order_by(Customer.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        after = rows[-1].id
        changes = []
        for row_id, phone in rows:
            key = phone_key_or_none(phone or "", region)  # never None: the query says so
            if key is None:
                unreadable += 1
            elif key != phone:
                changes.append({"id": row_id, "phone": key})
        if changes:
            session.execute(sa.update(Customer), changes)
            rekeyed += len(changes)
    session.flush()
    return RegionSet(region=region, rekeyed=rekeyed, unreadable=unreadable)


def adopt_account_region(
    session: Session, installation: Installation, read_region: Callable[[], str | None]
) -> str | None:
    """Store the helpdesk account's country as the region while none is set; return it.

    `read_region` asks the helpdesk (a client's `account_region`). A region the admin set is
    never replaced; a helpdesk that cannot say (no permission, no country, unreachable)
    leaves the default. The caller commits.
    """
    if installation.default_phone_region is not None:
        return None
    try:
        region = read_region()
    except HelpdeskError:
        return None
    if region is None:
        return None
    set_phone_region(session, installation, region)
    return region
