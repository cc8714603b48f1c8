"""The queued snapshot refreshes, made off the request path: each requester's one row is
claimed, refreshed in the shared cache (from the event's own ticket when it carried it whole,
else with one call to the helpdesk), and deleted unless another event came meanwhile.

A refresh that fails is tried again once its claim runs out; one the helpdesk refuses for
good is dropped. Either way a view behaves as it does without events (TTL, stale while
failing): events only make views warm sooner, never wrong.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from plugin.clock import utcnow
from plugin.helpdesks.interface import Helpdesk, HelpdeskError
from plugin.models import Installation
from plugin.models.events import SnapshotRefresh
from plugin.sidebar.events import merged_tickets
from plugin.sidebar.snapshot import REQUESTER_CODEC, reads_requesters
from plugin.sidebar.upstream import SharedStore, UpstreamCache, UpstreamPolicy

logger = logging.getLogger(__name__)

CLAIM_SECONDS = 30.0
BATCH = 50
IDLE_WAIT_SECONDS = 0.5

# Gives an installation's helpdesk client, on the worker's session.
ClientFactory = Callable[[Session, Installation], Helpdesk]


@dataclass
class RefreshStats:
    """What a pass did: refreshes made with a call, without one, and failed."""

    fetched: int = 0
    merged: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        return self.fetched + self.merged + self.failed


@dataclass(frozen=True)
class _Claimed:
    id: int
    version: int
    installation_id: int
    requester_id: str
    needs_fetch: bool
    tickets: list[object]


def refresh_due(
    sessions: sessionmaker[Session],
    *,
    clients: ClientFactory,
    shared: SharedStore,
    cache: UpstreamCache | None,
    policy: UpstreamPolicy,
    keep_seconds: float,
    now: Callable[[], datetime] = utcnow,
    batch: int = BATCH,
) -> RefreshStats:
    """Claim up to `batch` queued refreshes and make them; return what was done."""
    stats = RefreshStats()
    with sessions() as session:
        for held in _claim(session, now(), batch):
            installation = session.get(Installation, held.installation_id)
            if installation is None:
                continue
            try:
                made_call = _refresh(
                    held,
                    clients(session, installation),
                    shared=shared,
                    cache=cache,
                    policy=policy,
                    keep_seconds=keep_seconds,
                    now=now(),
                )
            except HelpdeskError as error:
                stats.failed += 1
                logger.info(
                    "events: refresh of requester %s of installation %s failed: %s",
                    held.requester_id,
                    held.installation_id,
                    error,
                )
                if error.retryable:
                    continue  # claimed: tried again once the claim runs out
            else:
                if made_call:
                    stats.fetched += 1
                else:
                    stats.merged += 1
            _finish(session, held)
    return stats


def _claim(session: Session, now: datetime, batch: int) -> list[_Claimed]:
    free = sa.or_(SnapshotRefresh.claimed_until.is_(None), SnapshotRefresh.claimed_until < now)
    rows = session.scalars(
        sa.select(SnapshotRefresh).where(free).order_by(SnapshotRefresh.queued_at).limit(batch)
    ).all()
    claimed: list[_Claimed] = []
    for row in rows:
        taken = session.execute(
            sa.update(SnapshotRefresh)
            .where(SnapshotRefresh.id == row.id, SnapshotRefresh.version == row.version, free)
            .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
            .execution_options(synchronize_session=False)
        )
        if getattr(taken, "rowcount", 0) == 1:
            claimed.append(
                _Claimed(
                    id=row.id,
                    version=row.version,
                    installation_id=row.installation_id,
                    requester_id=row.requester_id,
                    needs_fetch=row.needs_fetch,
                    tickets=list(row.tickets or []),
                )
            )
    session.commit()
    return claimed


def _finish(session: Session, held: _Claimed) -> None:
    """Delete the row, unless an event came while it was refreshed: then free it again."""
    gone = session.execute(
        sa.delete(SnapshotRefresh).where(
            SnapshotRefresh.id == held.id, SnapshotRefresh.version == held.version
        )
    )
    if not getattr(gone, "rowcount", 0):
        session.execute(
            sa.update(SnapshotRefresh)
            .where(SnapshotRefresh.id == held.id)
            .values(claimed_until=None)
            .execution_options(synchronize_session=False)
        )
    session.commit()


def _refresh(
    held: _Claimed,
    helpdesk: Helpdesk,
    *,
    shared: SharedStore,
    cache: UpstreamCache | None,
    policy: UpstreamPolicy,
    keep_seconds: float,
    now: datetime,
) -> bool:
    """Refresh one requester's snapshot; True when it took a call to the helpdesk."""
    key: Hashable = (held.installation_id, "requester", held.requester_id)
    if not held.needs_fetch:
        stored = shared.read(key)
        if stored is not None and (now - stored[1]).total_seconds() < keep_seconds:
            payload, _ = stored
            if isinstance(payload, dict):
                merged = {**payload, "tickets": merged_tickets(payload.get("tickets"), None)}
                for ticket in held.tickets:
                    if isinstance(ticket, dict):
                        merged["tickets"] = merged_tickets(merged["tickets"], ticket)
                try:
                    REQUESTER_CODEC.decode(merged)  # what a view will read must decode
                except (KeyError, TypeError, ValueError):
                    pass
                else:
                    shared.write(key, merged, now)
                    if cache is not None:
                        cache.invalidate(key)  # this process reads the new one next
                    return False
    if helpdesk.remote and reads_requesters(helpdesk):
        value = helpdesk.requester_with_tickets(requester_id=held.requester_id)
        shared.write(key, REQUESTER_CODEC.encode(value), now)
        if cache is not None:
            cache.invalidate(key)
        return True
    if cache is not None and helpdesk.remote:
        # A helpdesk without a one-call requester read (Freshdesk): this process's own cache
        # of the requester's tickets is refreshed, as a view would read it.
        requester_id = held.requester_id
        cache.lookup(
            (held.installation_id, "requested", requester_id),
            lambda: helpdesk.requester_tickets(requester_id=requester_id),
            fresh_for=policy.history_fresh_seconds,
            refresh=True,
        ).result(deadline=time.monotonic() + CLAIM_SECONDS)
        return True
    return False


class EventRefresher:
    """Makes the queued refreshes in a loop until stopped (a thread, or `flask events work`)."""

    def __init__(self, run_pass: Callable[[], RefreshStats]) -> None:
        self._run_pass = run_pass
        self._stop = threading.Event()
        self.totals = RefreshStats()

    def stop(self) -> None:
        self._stop.set()

    def run(self, *, until_empty: bool = False) -> RefreshStats:
        while not self._stop.is_set():
            try:
                stats = self._run_pass()
            except Exception:  # the loop must outlive a database blip; the next pass retries
                logger.exception("events: a refresh pass failed")
                stats = RefreshStats()
            self.totals.fetched += stats.fetched
            self.totals.merged += stats.merged
            self.totals.failed += stats.failed
            if not stats.done:
                if until_empty:
                    break
                self._stop.wait(IDLE_WAIT_SECONDS)
        return self.totals
