"""Helpdesk answers kept in the database, so that the service's processes fetch each once.

Every gunicorn worker (and every host) has its own in-memory upstream cache; without a shared
one, each would spend the account's rate limit on the same answers. A worker that misses its
own cache reads here first (one indexed query), and stores what it fetched from the helpdesk.
The store is an optimisation: when the database fails, the read is a miss and the write is
skipped, and the sidebar goes on as if there were no shared cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from plugin.clock import utcnow
from plugin.models import SharedCacheEntry

log = logging.getLogger(__name__)

# How often a process deletes entries older than the store keeps them.
PRUNE_INTERVAL_SECONDS = 600.0


def split_key(key: Hashable) -> tuple[int, str] | None:
    """(installation id, text key) of an upstream cache key; None for keys of no installation."""
    if not isinstance(key, tuple) or len(key) < 2 or not isinstance(key[0], int):
        return None
    text = ":".join(str(part) for part in key[1:])
    return (key[0], text) if len(text) <= 200 else None


class DatabaseSharedStore:
    """A `plugin.sidebar.upstream.SharedStore` in the `shared_cache` table."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        keep_seconds: float,
        read_sessions: sessionmaker[Session] | None = None,
    ) -> None:
        """`sessions` write; `read_sessions` (the database's `apart_sessions`: one statement
        needs no transaction, so no BEGIN and ROLLBACK round trips) read, else `sessions`."""
        self._sessions = sessions
        self._read_sessions = read_sessions or sessions
        self._keep = timedelta(seconds=keep_seconds)
        self._lock = threading.Lock()
        self._next_prune = time.monotonic() + PRUNE_INTERVAL_SECONDS

    def read(self, key: Hashable) -> tuple[object, datetime] | None:
        parts = split_key(key)
        if parts is None:
            return None
        installation_id, text = parts
        try:
            with self._read_sessions() as session:
                bound = {"installation_id": installation_id, "key": text}
                row = session.execute(_read_query(), bound).first()
        except SQLAlchemyError as error:
            log.warning("shared cache not readable: %s", error)
            return None
        return None if row is None else (row.value, row.fetched_at)

    def write(self, key: Hashable, payload: object, fetched_at: datetime) -> None:
        parts = split_key(key)
        if parts is None:
            return
        installation_id, text = parts
        where = (SharedCacheEntry.installation_id == installation_id, SharedCacheEntry.key == text)
        try:
            with self._sessions() as session:
                updated = session.execute(
                    sa.update(SharedCacheEntry)
                    .where(*where, SharedCacheEntry.fetched_at <= fetched_at)
                    .values(value=payload, fetched_at=fetched_at)
                )
                if not getattr(updated, "rowcount", 0):
                    exists = session.scalar(sa.select(SharedCacheEntry.id).where(*where))
                    if exists is None:
                        session.add(
                            SharedCacheEntry(
                                installation_id=installation_id,
                                key=text,
                                value=payload,
                                fetched_at=fetched_at,
                            )
                        )
                session.commit()
                self._prune_if_due(session)
        except IntegrityError:
            pass  # another process stored the same answer at the same moment: theirs will do
        except SQLAlchemyError as error:
            log.warning("shared cache not writable: %s", error)

    def _prune_if_due(self, session: Session) -> None:
        with self._lock:
            if time.monotonic() < self._next_prune:
                return
            self._next_prune = time.monotonic() + PRUNE_INTERVAL_SECONDS
        session.execute(
            sa.delete(SharedCacheEntry).where(SharedCacheEntry.fetched_at < utcnow() - self._keep)
        )
        session.commit()


@cache
def _read_query() -> sa.Select[Any]:
    """Built once, with bound values: a view that misses its process's cache runs it."""
    return sa.select(SharedCacheEntry.value, SharedCacheEntry.fetched_at).where(
        SharedCacheEntry.installation_id == sa.bindparam("installation_id"),
        SharedCacheEntry.key == sa.bindparam("key"),
    )
