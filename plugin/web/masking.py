"""The viewer's mask for a sidebar request: their roles asked through the app's helpdesk
client and cache, kept on the request (`flask.g`), and the installation's masks applied.

Every sidebar card asks `viewer_mask`; a request whose viewer was never set (or is unknown)
gets the installation's strictest mask, so forgetting to say who is looking hides more, never
less. The rules are in `plugin/domain/masking.py`, the lookup in `plugin/masking/viewer.py`.
"""

from __future__ import annotations

from flask import g

from plugin import db
from plugin.domain.helpdesk import Person
from plugin.domain.masking import Mask, RoleMasks, ViewerRoles
from plugin.helpdesks.runtime import client_for, helpdesks
from plugin.helpdesks.tokens import SidebarSession
from plugin.masking import viewer
from plugin.masking.settings import load_role_masks
from plugin.models import Installation

_VIEWER = "regulars_viewer"


def role_masks(installation_id: int) -> RoleMasks:
    """The installation's masks through the sidebar's read cache (a few seconds old at most;
    dropped at once by a save in this process)."""
    masks: RoleMasks = helpdesks().reads.get(
        installation_id, "field masks", lambda: load_role_masks(db.session(), installation_id)
    )
    return masks


def role_source(installation: Installation, deadline: float) -> viewer.RoleSource:
    shared = helpdesks()
    return viewer.RoleSource(
        installation_id=installation.id,
        helpdesk=client_for(installation),
        cache=shared.cache,
        fresh_for=shared.policy.history_fresh_seconds,
        deadline=deadline,
    )


def look_up_viewer(
    installation: Installation, user_id: str | None, *, deadline: float
) -> ViewerRoles | None:
    """The launching agent's roles (None: the helpdesk could not say by `deadline`).

    An installation that lists no role gives everyone its default row, the viewer unknown
    included: its launches cost the helpdesk no call. (A role listed later masks the sessions
    opened before with the strictest mask until the agent opens the app again.)
    """
    masks = role_masks(installation.id)
    if not masks.by_role:
        return None
    return viewer.look_up_viewer(role_source(installation, deadline), user_id, masks)


def viewer_of(installation: Installation, person: Person, *, deadline: float) -> ViewerRoles | None:
    """The roles of an agent the helpdesk has just described."""
    return viewer.viewer_of(
        role_source(installation, deadline), person, role_masks(installation.id)
    )


def use_session_viewer(
    installation: Installation, session: SidebarSession, *, deadline: float
) -> None:
    """Say whose eyes this card is for: the roles its session learnt at launch, or, when it
    did not (no role was listed then, or the helpdesk did not answer in time), the roles asked
    now, through the upstream cache, so a role listed later or a helpdesk back up applies
    from the next card instead of the strictest mask until the agent opens the app again."""
    roles = session.viewer
    if roles is None:
        roles = look_up_viewer(installation, session.user_id, deadline=deadline)
    use_viewer(roles)


def use_viewer(roles: ViewerRoles | None) -> None:
    """Say whose eyes this request's sidebar cards are for (None: unknown, strictest)."""
    setattr(g, _VIEWER, roles)


def viewer_mask(installation: Installation) -> Mask:
    """The mask for this request's viewer; the strictest when no viewer was set or known."""
    roles = getattr(g, _VIEWER, None)
    masks = role_masks(installation.id)
    return masks.for_viewer(roles) if isinstance(roles, ViewerRoles) else masks.strictest()
