"""Helpdesk integrations behind one interface; `helpdesk_for` picks one per installation."""

from __future__ import annotations

from sqlalchemy.orm import Session

from plugin.models import Installation
from plugin.platforms import demo
from plugin.platforms.base import Helpdesk


class UnsupportedPlatform(LookupError):
    pass


def helpdesk_for(installation: Installation, session: Session) -> Helpdesk:
    """Return the client for an installation's helpdesk."""
    if installation.platform == demo.PLATFORM:
        return demo.DemoHelpdesk(session, installation_id=installation.id)
    raise UnsupportedPlatform(f"no client for platform {installation.platform!r} yet")


def is_allowed_origin(installation: Installation, origin: str, *, service_origin: str) -> bool:
    """Say whether the page framing the app may be this installation's helpdesk."""
    if installation.platform == demo.PLATFORM:
        return origin == service_origin
    if installation.platform == "zendesk":
        return origin == f"https://{installation.account}.zendesk.com"
    return False
