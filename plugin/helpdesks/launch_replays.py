"""Launch tokens used once: a `jti` seen again for the same installation is a replay."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.models import LaunchTokenUse

# How often a process drops an installation's expired ids on the way: a statement on every
# launch was a round trip of the launch's own on PostgreSQL.
PURGE_EVERY = timedelta(minutes=1)

_purged_at: dict[int, datetime] = {}
_lock = threading.Lock()


def record_launch_jti(
    session: Session, installation_id: int, jti: str, *, until: datetime, now: datetime
) -> bool:
    """Record the token id until it expires and commit; False if it was recorded already.

    The unique (installation, jti) row makes it one use across every process and host; the
    installation's expired ids are dropped on the way, at most once a minute per process (and
    before deciding that an id is in use: an expired one no longer counts), so the table holds
    live tokens and a minute's expired ones.
    """
    purged = _purge_due(installation_id, now) and _purge(session, installation_id, now)
    for _attempt in range(2):
        session.add(LaunchTokenUse(installation_id=installation_id, jti=jti, expires_at=until))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            if purged:
                return False
            purged = _purge(session, installation_id, now)
            continue
        return True
    return False


def _purge_due(installation_id: int, now: datetime) -> bool:
    with _lock:
        last = _purged_at.get(installation_id)
        return last is None or not last <= now < last + PURGE_EVERY


def _purge(session: Session, installation_id: int, now: datetime) -> bool:
    session.execute(
        sa.delete(LaunchTokenUse).where(
            LaunchTokenUse.installation_id == installation_id, LaunchTokenUse.expires_at < now
        )
    )
    with _lock:
        _purged_at[installation_id] = now
    return True
