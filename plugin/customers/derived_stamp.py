"""Stamps on derived rows: what a customer's segment and order facts were derived from.

A profile pass that writes a customer's order facts and segment row writes, in the same row and
transaction, a stamp "rules|as-of moment|orders digest". `segments recompute` skips a customer
whose stamp shows that it would write the same rows again (`Stamper.still_holds`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.order_history import TRAILING_YEAR
from plugin.domain.rfm import RfmCutPoints
from plugin.domain.tiers import TierThresholds
from plugin.models import Persona

# A customer's orders as profiled: (placed_at, amount_cents, discounted, category).
OrderTuple = tuple[datetime, int, bool, str | None]

_PACKAGE = Path(__file__).resolve().parent
# The code whose change can change a derived row: the rules, and how rows are drawn from them.
_CODE = (
    *sorted((_PACKAGE.parent / "domain").glob("*.py")),
    _PACKAGE / "orders.py",
    _PACKAGE / "bulk_writes.py",
    _PACKAGE / "histories.py",
    _PACKAGE / "segmentation.py",
    Path(__file__).resolve(),
)


@functools.cache
def code_fingerprint() -> str:
    """A digest of the rules' source: another version of the code stamps differently."""
    digest = hashlib.blake2b(digest_size=8)
    for path in _CODE:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def rules_fingerprint(
    session: Session,
    installation_id: int,
    thresholds: TierThresholds,
    cut_points: RfmCutPoints,
) -> str:
    """Everything besides a customer's own orders and `now` that their derived rows depend on:
    the code, the installation, its tier bars, the RFM cut points and its enabled personas as
    stored (all of them, in the order they are matched)."""
    personas = [
        [name, priority, conditions]
        for name, priority, conditions in session.execute(
            sa.select(Persona.name, Persona.priority, Persona.conditions)
            .where(Persona.installation_id == installation_id, Persona.enabled.is_(True))
            .order_by(Persona.priority, Persona.name)
        )
    ]
    described = json.dumps(
        [
            code_fingerprint(),
            installation_id,
            [
                thresholds.medium_min_orders,
                thresholds.medium_min_spend_cents,
                thresholds.high_min_orders,
                thresholds.high_min_spend_cents,
            ],
            [
                list(cut_points.recency_days),
                list(cut_points.frequency),
                list(cut_points.monetary_cents),
                cut_points.base_size,
            ],
            personas,
        ],
        sort_keys=True,
        default=str,
    )
    return hashlib.blake2b(described.encode(), digest_size=8).hexdigest()


def orders_digest(since: date | None, orders: list[OrderTuple]) -> str:
    """A digest of what a customer's rows are derived from: account date and every order."""
    return hashlib.blake2b(repr((since, orders)).encode(), digest_size=12).hexdigest()


@dataclass(frozen=True)
class Stamper:
    """Stamps rows derived under these rules as of `now`; picklable, for the worker processes."""

    rules: str
    now: datetime

    def stamp(self, since: date | None, orders: list[OrderTuple]) -> str:
        return f"{self.rules}|{self.now.isoformat()}|{orders_digest(since, orders)}"

    def still_holds(self, stored: str | None, stamp: str, orders: list[OrderTuple]) -> bool:
        """True if rows stamped `stored` are what deriving them now (`stamp`) would write.

        The same rules and the same orders (digest), and as of the same day, with no order
        placed between the two moments nor a year before either (the 12-month window's edge):
        the rules read `now` only as its day, except to leave out orders placed after it and
        to cut the trailing year, so nothing else can differ. Only when each row was stamped
        is skipped: `computed_at` and `fetched_at` keep the moment they were derived at.
        """
        if stored is None:
            return False
        if stored == stamp:
            return True
        rules, moment, digest = stored.split("|")
        mine_rules, _mine_moment, mine_digest = stamp.split("|")
        if rules != mine_rules or digest != mine_digest:
            return False
        try:
            then = datetime.fromisoformat(moment)
        except ValueError:
            return False
        if then.date() != self.now.date() or (then.tzinfo is None) != (self.now.tzinfo is None):
            return False
        low, high = sorted((then, self.now))
        year_low, year_high = low - TRAILING_YEAR, high - TRAILING_YEAR
        return not any(
            low < placed_at <= high or year_low < placed_at <= year_high
            for placed_at, *_rest in orders
        )
