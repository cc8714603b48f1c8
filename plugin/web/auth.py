"""Authentication for web requests: launch tokens in, sidebar sessions out."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
from flask import current_app, request

from plugin import db
from plugin.clock import utcnow
from plugin.helpdesks import connect, is_allowed_origin, zendesk, zendesk_installations
from plugin.helpdesks.interface import HelpdeskError
from plugin.helpdesks.launch_replays import record_launch_jti
from plugin.helpdesks.runtime import helpdesks
from plugin.helpdesks.tokens import (
    InstallationFinder,
    InvalidToken,
    KeyRefresher,
    Launch,
    SidebarSession,
    SidebarSessions,
    verify_launch_token,
)
from plugin.models import Installation
from plugin.sidebar.upstream import LockedTTLCache
from plugin.web.settings import settings

KEY_REFRESH_INTERVAL = timedelta(seconds=60)
FIRST_LAUNCHES_KEY = "regulars.first_launches"


def find_installation_by_audience(audiences: list[str]) -> Installation | None:
    if not audiences:
        return None
    return db.session().scalars(_by_audience(), {"audiences": audiences}).first()


@cache
def _by_audience() -> sa.Select[Installation]:
    """Built once, with its values bound per launch: building it cost more than running it."""
    return sa.select(Installation).where(
        Installation.token_audience.in_(sa.bindparam("audiences", expanding=True))
    )


def verify_launch(token: str, *, cached: bool = False) -> tuple[Launch, Installation]:
    """Verify the launch token the helpdesk posted with the app's first request; the launch
    and its installation, as read to verify it (so it is not read again).

    `cached` (the sidebar's launch) takes the installation from the process's read cache, as
    the sidebar's views then do (`current_sidebar_session(cached=True)`): a detached copy, a
    few seconds old at most from other processes. Whatever a cached copy cannot decide is
    verified again on the row itself: an audience not known here yet (a first launch), an
    installation without a key, a signature the cached key does not verify (the helpdesk may
    have rotated it: the row's key is fetched again).
    """
    if cached:
        try:
            return _verify(token, find=_cached_by_audience, refresh_key=_needs_the_row)
        except _NeedsTheRow:
            pass
    return _verify(token, find=find_or_first_launch(token), refresh_key=refresh_public_key_if_due)


class _NeedsTheRow(Exception):
    """A cached installation cannot decide this launch: verify it on the row itself."""


def _needs_the_row(_installation: Installation) -> bool:
    raise _NeedsTheRow


def _cached_by_audience(audiences: list[str]) -> Installation | None:
    """The audience's installation through the read cache; an audience not found is left to
    the row's own path (`find_or_first_launch`), which may register a first launch."""
    if len(audiences) != 1:
        raise _NeedsTheRow

    reads = helpdesks().reads

    def load() -> int | None:
        with db.database().sessions() as own:
            found = own.scalars(_by_audience(), {"audiences": audiences}).first()
            if found is None:
                return None
            own.expunge(found)
        # The row as read is the process's copy (`cached_installation`) unless one is kept.
        reads.get(found.id, "installation", lambda: found)
        return found.id

    # Which installation an audience names is kept under none (0); the row it names, kept
    # under its own and dropped by any write to it, must still have that audience.
    installation_id: int | None = reads.get(0, ("launch audience", audiences[0]), load)
    installation = cached_installation(installation_id) if installation_id is not None else None
    if installation is None or installation.token_audience != audiences[0]:
        raise _NeedsTheRow
    return installation


def _verify(
    token: str, *, find: InstallationFinder, refresh_key: KeyRefresher
) -> tuple[Launch, Installation]:
    found: list[Installation] = []

    def finding(audiences: list[str]) -> Installation | None:
        installation = find(audiences)
        if installation is not None:
            found.append(installation)
        return installation

    launch = verify_launch_token(
        token,
        find_installation=finding,
        leeway=settings().jwt_leeway_seconds,
        refresh_key=refresh_key,
        record_jti=record_jti_once,
    )
    return launch, found[-1]


def find_or_first_launch(token: str) -> InstallationFinder:
    """Find the audience's installation; an unknown Zendesk one is a first launch to verify
    with its account's key (plugin/helpdesks/connect.py), when the operator set the app id.
    """

    def find(audiences: list[str]) -> Installation | None:
        found = find_installation_by_audience(audiences)
        config = settings()
        if found is not None or len(audiences) != 1 or not config.zendesk_app_id:
            return found
        parsed = connect.parse_audience(audiences[0])
        if parsed is None:
            return None
        if not first_launch_due(parsed[0]):
            raise InvalidToken(
                "Regulars checked this account's launch moments ago; reopen it in a minute."
            )
        base_url = zendesk.base_url_for(parsed[0], config.zendesk_api_base_url or None)
        connections = helpdesks().connections
        session = db.session()
        try:
            installation = connect.first_launch(
                session,
                token,
                audiences[0],
                config=connect.FirstLaunchSettings(
                    app_id=config.zendesk_app_id,
                    allowed_accounts=config.allowed_accounts,
                    api_base_url=config.zendesk_api_base_url or None,
                    leeway=config.jwt_leeway_seconds,
                    timeout=connections.timeout,
                ),
                http_session=connections.accounts.session(base_url),
                now=utcnow(),
            )
        except Exception:
            session.rollback()
            raise
        session.commit()
        return installation

    return find


def first_launch_due(subdomain: str) -> bool:
    """At most one first-launch key fetch a minute per account, so forged tokens naming
    accounts cost little; a genuine launch stores its installation and needs no more."""
    attempts: LockedTTLCache[str, bool] = current_app.extensions.setdefault(
        FIRST_LAUNCHES_KEY,
        LockedTTLCache(maxsize=10_000, ttl=KEY_REFRESH_INTERVAL.total_seconds()),
    )
    if subdomain in attempts:
        return False
    attempts[subdomain] = True
    return True


def record_jti_once(installation: Installation, jti: str, until: datetime) -> bool:
    """Record a launch token's id in a transaction of its own; False for a replay.

    Committed without waiting for the disk: a power cut may forget the ids of the last
    moments' launches, tokens that expire minutes later.
    """
    with db.database().unsynced_session() as own:
        return record_launch_jti(own, installation.id, jti, until=until, now=utcnow())


def launched_installation(*, cached: bool = False) -> tuple[Launch, Installation]:
    """Verify the signed POST that opens an app location, and that it comes from its helpdesk.

    Zendesk's SDK needs the `origin` and `app_guid` query parameters, and the origin must be
    the installation's own helpdesk. `cached`: the installation as `verify_launch` reads it
    with `cached`, a read-only copy.
    """
    launched, installation = verify_launch(request.form.get("token", ""), cached=cached)
    refusal = _launch_refusal(launched, installation)
    if refusal is not None and cached:
        # A copy a few seconds old may predate the connection or the origin that admits this
        # launch: the row itself decides a refusal.
        row = db.session().get(Installation, installation.id)
        if row is None:
            raise InvalidToken("This installation no longer exists.")
        installation, refusal = row, _launch_refusal(launched, row)
    if refusal is not None:
        raise refusal
    return launched, installation


def _launch_refusal(launched: Launch, installation: Installation) -> InvalidToken | None:
    origin = request.args.get("origin", "")
    if not origin or not request.args.get("app_guid", ""):
        return InvalidToken("The app was opened without its origin and app_guid parameters.")
    if not is_allowed_origin(installation, origin, service_origin=request.host_url.rstrip("/")):
        return InvalidToken(
            "The app was opened from a page that is not this installation's helpdesk."
        )
    if installation.platform == zendesk.PLATFORM and not installation.credentials_encrypted:
        return connect.NotConnected(installation, launched.user_id)
    return None


def refresh_public_key_if_due(installation: Installation) -> bool:
    """Fetch the installation's public key again, at most once a minute; True if it changed.

    Called when a launch token does not verify with the stored key: a rotated key is picked up
    at once, and a stream of forged tokens costs at most one fetch a minute.
    """
    if installation.platform != zendesk.PLATFORM or not installation.app_id:
        return False
    now = utcnow()
    fetched_at = installation.public_key_fetched_at
    if fetched_at is not None and now - fetched_at < KEY_REFRESH_INTERVAL:
        return False
    session = db.session()
    connections = helpdesks().connections
    base_url = zendesk.base_url_for(installation.account, installation.api_base_url)
    try:
        changed = zendesk_installations.refresh_public_key(
            session,
            installation,
            http_session=connections.accounts.session(base_url),
            timeout=connections.timeout,
            now=now,
        )
    except HelpdeskError as error:
        current_app.logger.warning(
            "could not refresh the public key of installation %s: %s", installation.id, error
        )
        installation.public_key_fetched_at = now  # throttle retries of a failing fetch too
        session.commit()
        return False
    session.commit()
    return changed


def sidebar_sessions() -> SidebarSessions:
    sessions: SidebarSessions = current_app.extensions["regulars.sidebar_sessions"]
    return sessions


def current_sidebar_session(*, cached: bool = False) -> tuple[SidebarSession, Installation]:
    """Return the session named by the request's bearer token, and its installation.

    `cached` (the sidebar's banner) takes the installation's row from the process's read cache
    (`plugin/sidebar/read_cache.py`: dropped by any write to it here, a few seconds old at most from
    other processes): a detached copy shared by the process's requests, to read and never to
    change or add to a session. Whatever changes an installation or shows its settings for
    editing (the console) reads the row itself.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        raise InvalidToken("The sidebar session is missing. Reload the app.")
    sidebar_session = sidebar_sessions().verify(token.strip())
    installation = (
        cached_installation(sidebar_session.installation_id)
        if cached
        else db.session().get(Installation, sidebar_session.installation_id)
    )
    if installation is None:
        raise InvalidToken("This installation no longer exists.")
    return sidebar_session, installation


def cached_installation(installation_id: int) -> Installation | None:
    """The installation's row from the read cache: a detached, read-only copy."""

    def load() -> Installation | None:
        # A copy of its own, every column loaded, that no request's session holds.
        with db.database().sessions() as own:
            row = own.get(Installation, installation_id)
            if row is not None:
                own.expunge(row)
            return row

    row: Installation | None = helpdesks().reads.get(installation_id, "installation", load)
    return row
