"""A per-process cache of what the sidebar reads from the service's own database.

A warm sidebar view reads things that change rarely: the installation's row, its field
mappings, guidance and personas, the requester's customer card and profile, their recent
orders, and for the suggestions card who the customer is, their grants and the order the
ticket is about. Reading them from the database on every view cost a dozen queries, most of a
warm view's time. Here each
is kept for a few seconds (`ttl_seconds`) and dropped at once when this process writes
anything that could change it:

- a SQLAlchemy `after_flush` hook bumps the generation of every installation whose rows a
  session of this process flushed (any model but the few the sidebar writes on every view);
  a bulk `UPDATE`/`DELETE`/`INSERT` run through a session bumps them all;
- an entry is used only if it was stored under the installation's current generation and is
  younger than the TTL, so an edit made by another process (another gunicorn worker, a CLI
  command, another host) shows within the TTL.

So a supervisor's edit in the console shows on the next view served by the same process, and
within `ttl_seconds` on the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import ORMExecuteState, Session

T = TypeVar("T")

DEFAULT_MAX_ENTRIES = 20_000
# Tables that feed nothing cached here, written on the sidebar's and the events' hot paths: a
# view's seen ticket and shared answers, a launch's token id, a card's rule exposures, and a
# helpdesk event's delivery, queue row and arrival time. A write to them must not drop the
# process's reads: the events' delivery clean-up is a bulk DELETE (which drops everything),
# so before, every event emptied the read caches of the worker that took it.
IGNORED_TABLES = frozenset(
    {
        "seen_tickets",
        "shared_cache",
        "launch_token_uses",
        "rule_exposures",
        "event_deliveries",
        "event_sources",
        "snapshot_refreshes",
    }
)


@dataclass(frozen=True)
class _Entry:
    value: object
    generation: int
    stored_at: float


class Generations:
    """A counter per installation (and one for all) that moves on every write seen here."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._everything = 0
        self._by_installation: dict[int, int] = {}

    def of(self, installation_id: int) -> int:
        with self._lock:
            return self._everything + self._by_installation.get(installation_id, 0)

    def bump(self, installation_id: int | None) -> None:
        """Invalidate one installation's entries, or every installation's when None."""
        with self._lock:
            if installation_id is None:
                self._everything += 1
            else:
                self._by_installation[installation_id] = (
                    self._by_installation.get(installation_id, 0) + 1
                )


# One per process: every session of the process reports its writes here.
GENERATIONS = Generations()


class ReadCache:
    """Values computed from the database, by installation and key, for `ttl_seconds` at most."""

    def __init__(
        self,
        *,
        ttl_seconds: float,
        generations: Generations = GENERATIONS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._generations = generations
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, Hashable], _Entry] = {}
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def get(self, installation_id: int, key: Hashable, load: Callable[[], T]) -> T:
        """The cached value if still valid, else `load()` (stored unless a write raced it)."""
        if not self.enabled:
            return load()
        full_key = (installation_id, key)
        generation = self._generations.of(installation_id)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(full_key)
            if (
                entry is not None
                and entry.generation == generation
                and now - entry.stored_at < self._ttl
            ):
                self.hits += 1
                return entry.value  # type: ignore[return-value]
            self.misses += 1
        value = load()
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()  # rare: a simple bound beats an LRU's bookkeeping here
            # Stored under the generation read before loading: a write meanwhile makes it old.
            self._entries[full_key] = _Entry(value=value, generation=generation, stored_at=now)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _installation_of(instance: object) -> int | None:
    """The installation a flushed row belongs to; None for rows of no one installation."""
    table = getattr(instance, "__tablename__", None)
    if table == "installations":
        value = getattr(instance, "id", None)
    else:
        value = getattr(instance, "installation_id", None)
    return value if isinstance(value, int) else None


def _after_flush(session: Session, _context: Any) -> None:
    for instance in (*session.new, *session.dirty, *session.deleted):
        if getattr(instance, "__tablename__", None) in IGNORED_TABLES:
            continue
        GENERATIONS.bump(_installation_of(instance))


def _after_bulk(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    if isinstance(table, sa.Table) and table.name in IGNORED_TABLES:
        return
    GENERATIONS.bump(None)


def install_hooks() -> None:
    """Have every session of this process report its writes (idempotent)."""
    if not sa.event.contains(Session, "after_flush", _after_flush):
        sa.event.listen(Session, "after_flush", _after_flush)
        sa.event.listen(Session, "do_orm_execute", _after_bulk)
