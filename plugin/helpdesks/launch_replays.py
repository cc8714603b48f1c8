"""Launch tokens used once: a `jti` seen again for the same installation is a replay."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.models import LaunchTokenUse


def record_launch_jti(
    session: Session, installation_id: int, jti: str, *, until: datetime, now: datetime
) -> bool:
    """Record the token id until it expires and commit; False if it was recorded already.

    The unique (installation, jti) row makes it one use across every process and host; the
    installation's expired ids are dropped on the way, so the table holds live tokens only.
    """
    session.execute(
        sa.delete(LaunchTokenUse).where(
            LaunchTokenUse.installation_id == installation_id, LaunchTokenUse.expires_at < now
        )
    )
    session.add(LaunchTokenUse(installation_id=installation_id, jti=jti, expires_at=until))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True
