"""Authentication for web requests: launch tokens in, sidebar sessions out."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, request

from plugin import db
from plugin.models import Installation
from plugin.tokens import InvalidToken, Launch, SidebarSession, SidebarSessions, verify_launch_token
from plugin.web.settings import settings


def find_installation_by_audience(audiences: list[str]) -> Installation | None:
    if not audiences:
        return None
    return (
        db.session()
        .scalars(sa.select(Installation).where(Installation.token_audience.in_(audiences)))
        .first()
    )


def verify_launch(token: str) -> Launch:
    """Verify the launch token the helpdesk posted with the app's first request."""
    return verify_launch_token(
        token,
        find_installation=find_installation_by_audience,
        leeway=settings().jwt_leeway_seconds,
    )


def sidebar_sessions() -> SidebarSessions:
    sessions: SidebarSessions = current_app.extensions["regulars.sidebar_sessions"]
    return sessions


def current_sidebar_session() -> tuple[SidebarSession, Installation]:
    """Return the session named by the request's bearer token, and its installation."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        raise InvalidToken("The sidebar session is missing. Reload the app.")
    sidebar_session = sidebar_sessions().verify(token.strip())
    installation = db.session().get(Installation, sidebar_session.installation_id)
    if installation is None:
        raise InvalidToken("This installation no longer exists.")
    return sidebar_session, installation
