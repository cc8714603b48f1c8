"""A launch token's jti is used once per installation, across processes, until it expires."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.helpdesks.launch_replays import record_launch_jti
from plugin.models import Installation, LaunchTokenUse
from tests.console.test_views import QUERY, launch_token

NOW = datetime(2026, 12, 4, 12, 0)


def test_a_replayed_launch_is_refused_with_a_401(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    token = launch_token(app, demo_installation, jti="once-only")
    first = client.post("/sidebar", query_string=QUERY, data={"token": token})
    assert first.status_code == 200
    again = client.post("/sidebar", query_string=QUERY, data={"token": token})
    assert again.status_code == 401
    assert "already used" in again.get_data(as_text=True)
    assert "data-session-token" not in again.get_data(as_text=True)


def test_ids_are_kept_per_installation_and_dropped_once_expired(
    session: Session, demo_installation: Installation
) -> None:
    other = Installation(platform="zendesk", account="globex", display_name="Globex")
    session.add(other)
    session.commit()
    until = NOW + timedelta(minutes=5)
    assert record_launch_jti(session, demo_installation.id, "j1", until=until, now=NOW)
    assert not record_launch_jti(session, demo_installation.id, "j1", until=until, now=NOW)
    assert record_launch_jti(session, other.id, "j1", until=until, now=NOW)
    later = until + timedelta(seconds=1)
    assert record_launch_jti(session, demo_installation.id, "j1", until=later, now=later)


def test_expired_ids_are_dropped_at_most_once_a_minute_and_never_block_a_new_token(
    session: Session, demo_installation: Installation
) -> None:
    def stored() -> set[str]:
        return set(session.scalars(sa.select(LaunchTokenUse.jti)))

    start = NOW + timedelta(hours=1)
    assert record_launch_jti(session, demo_installation.id, "a", until=start, now=start)
    later = start + timedelta(seconds=10)
    assert record_launch_jti(session, demo_installation.id, "b", until=later, now=later)
    assert stored() >= {"a", "b"}  # "a" expired, not dropped yet: dropped a minute at most
    # An expired id that is not dropped yet is not a use: it is dropped, and the token passes.
    assert record_launch_jti(session, demo_installation.id, "a", until=later, now=later)
    assert not record_launch_jti(session, demo_installation.id, "a", until=later, now=later)
    minute_on = later + timedelta(minutes=1)
    assert record_launch_jti(session, demo_installation.id, "c", until=minute_on, now=minute_on)
    assert stored() == {"c"}
