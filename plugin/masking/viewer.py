"""Whose eyes a sidebar view is for: the viewing agent's roles, as the helpdesk says them.

The roles are asked of the helpdesk once per sidebar session (at the Zendesk launch, then
carried in the signed session token) or once per cache period for the Freshdesk app (whose
agent check reads the agent's record anyway), never per card. A helpdesk that cannot say in
time does not block the view: the viewer is unknown (None), and an unknown viewer gets the
strictest mask the installation has (docs/privacy.md). No Flask: `plugin/web/masking.py`
hands in the client and the cache and keeps the answer for the request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

from plugin.domain.helpdesk import Person
from plugin.domain.masking import RoleMasks, ViewerRoles
from plugin.helpdesks.interface import Helpdesk, HelpdeskError
from plugin.masking.settings import names_roles
from plugin.sidebar.upstream import UpstreamCache, UpstreamTimeout, upstream_group

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoleSource:
    """Where the roles come from: the installation's helpdesk, through the upstream cache for a
    remote one (answers kept `fresh_for` seconds), within the view's `deadline` (monotonic)."""

    installation_id: int
    helpdesk: Helpdesk
    cache: UpstreamCache
    fresh_for: float
    deadline: float

    def ask(self, key: tuple[Hashable, ...], load: Callable[[], T]) -> T:
        """`load()`'s answer, cached; raises HelpdeskError or UpstreamTimeout."""
        if not self.helpdesk.remote:
            return load()
        # In the helpdesk's group: while it is in trouble, a lookup is held back at once
        # instead of waiting out the view's budget (the viewer then gets the strictest mask).
        fetched = self.cache.lookup(
            (self.installation_id, *key),
            load,
            fresh_for=self.fresh_for,
            group=upstream_group(self.installation_id, "helpdesk"),
        ).result(self.deadline)
        value: T = fetched.value
        return value


def look_up_viewer(source: RoleSource, user_id: str | None, masks: RoleMasks) -> ViewerRoles | None:
    """The agent's roles as the helpdesk says them in time; None when it cannot say."""
    if user_id is None:
        return None
    try:
        # The same key as the Freshdesk app's agent check: one answer serves both.
        person = source.ask(("agent", user_id), lambda: source.helpdesk.user(user_id=user_id))
    except (HelpdeskError, UpstreamTimeout) as error:
        log.info(
            "the roles of a viewer of installation %s are unknown (%s): strictest mask",
            source.installation_id,
            error or "timed out",
        )
        return None
    return viewer_of(source, person, masks)


def viewer_of(source: RoleSource, person: Person, masks: RoleMasks) -> ViewerRoles | None:
    """The roles of an agent the helpdesk described, with their names when a mask names a role
    by name (one more call, cached); None when those names cannot be had in time."""
    specific = tuple(person.role_ids)
    if specific and names_roles(masks):
        try:
            named = source.ask(
                ("role names", specific), lambda: source.helpdesk.role_names(role_ids=specific)
            )
        except (HelpdeskError, UpstreamTimeout) as error:
            log.info(
                "role names unknown for installation %s (%s): strictest mask",
                source.installation_id,
                error or "timed out",
            )
            return None
        specific = (*specific, *named)
    return ViewerRoles(base=person.role, specific=specific)
