"""Verify the helpdesk's signed launch token and issue the sidebar's own short-lived session."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from jwt.exceptions import InvalidJTIError

from plugin.domain.masking import ViewerRoles
from plugin.models import Installation
from plugin.sidebar.upstream import LockedTTLCache

ACCEPTED_ALGORITHM = "RS256"
MAX_TOKEN_LENGTH = 8192
_USER_URL = re.compile(r"/users/([0-9]+)(?:\.json)?$")
# Verified sidebar session tokens remembered, and for how long at most (each to its expiry).
VERIFIED_TOKENS_KEPT = 10_000
VERIFIED_TOKENS_SECONDS = 600
# A launch token lives a few minutes (Zendesk's and the demo's: 5); longer ones are refused.
MAX_LAUNCH_TOKEN_SECONDS = 600
MAX_JTI_LENGTH = 255


class InvalidToken(Exception):
    """A token was refused; the message says why, in words an agent or admin can act on."""


@dataclass(frozen=True)
class Launch:
    """Who opened the app, from a verified launch token."""

    installation_id: int
    user_id: str | None
    claims: dict[str, Any]


InstallationFinder = Callable[[list[str]], Installation | None]
# Fetch the installation's current public key; True if it changed (the helpdesk rotated it).
KeyRefresher = Callable[[Installation], bool]
# Record a launch token's jti for the installation until the given (naive UTC) time; False if
# it was recorded before: the token is a replay.
JtiRecorder = Callable[[Installation, str, datetime], bool]


def _never_refresh(_installation: Installation) -> bool:
    return False


def _remember_nothing(_installation: Installation, _jti: str, _until: datetime) -> bool:
    return True


def expected_issuers(installation: Installation) -> list[str]:
    """The `iss` a genuine launch token of this installation carries: its account's host.

    Zendesk's is the account's subdomain host (`acme.zendesk.com`, with or without the scheme:
    the exact form is unconfirmed); other platforms' (the demo's) the host of their audience.
    """
    if installation.platform == "zendesk":
        host = f"{installation.account}.zendesk.com"
    else:
        host = urlsplit(installation.token_audience or "").hostname or ""
    return [host, f"https://{host}"] if host else []


def verify_launch_token(
    token: str,
    *,
    find_installation: InstallationFinder,
    leeway: int,
    refresh_key: KeyRefresher = _never_refresh,
    record_jti: JtiRecorder = _remember_nothing,
) -> Launch:
    """Verify a launch JWT: RS256 only, signed by the installation's key, in date, for it.

    One shape only: `aud` a single string (the installation's), `iss` the installation's
    account, `sub` present, numeric `iat` and `exp` at most a few minutes apart, and a `jti`
    (when sent) not seen before for the installation within the token's life.
    A signature that fails with the stored key is checked once more after `refresh_key`, so a
    key the helpdesk rotated is picked up on the next launch instead of locking everyone out.
    """
    if not token:
        raise InvalidToken("No launch token was sent. Open the app from the helpdesk.")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("The launch token is too large to be genuine.")
    try:
        # Header and claims in one unverified pass: they only say which key to verify with.
        unsigned = jwt.decode_complete(token, options={"verify_signature": False})
        header, unverified = unsigned["header"], unsigned["payload"]
    except InvalidJTIError:
        raise InvalidToken("The launch token's id (jti) is not valid.") from None
    except jwt.PyJWTError:
        raise InvalidToken("The launch token is malformed.") from None
    algorithm = header.get("alg")
    if algorithm != ACCEPTED_ALGORITHM:
        raise InvalidToken(
            f"The launch token is signed with {algorithm!r}; only {ACCEPTED_ALGORITHM} is accepted."
        )
    audience = unverified.get("aud")
    if not isinstance(audience, str):
        raise InvalidToken("The launch token's audience must be one installation.")
    installation = find_installation([audience])
    if installation is None or not installation.token_audience:
        raise InvalidToken("The launch token is not for an installation registered here.")
    if not installation.public_key_pem and not refresh_key(installation):
        raise InvalidToken("This installation has no public key yet; ask an admin to connect it.")
    try:
        try:
            claims = _decode(token, installation, leeway)
        except jwt.InvalidSignatureError:
            if not refresh_key(installation):
                raise
            claims = _decode(token, installation, leeway)
    except jwt.ExpiredSignatureError:
        raise InvalidToken("The launch token has expired. Reload the app.") from None
    except jwt.ImmatureSignatureError:
        raise InvalidToken("The launch token is not valid yet; check the server's clock.") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken("The launch token is for another installation.") from None
    except jwt.InvalidSignatureError:
        raise InvalidToken("The launch token's signature does not match.") from None
    except jwt.InvalidIssuerError:
        raise InvalidToken("The launch token was issued by another account.") from None
    except jwt.MissingRequiredClaimError as error:
        raise InvalidToken(f"The launch token has no {error.claim!r} claim.") from None
    except InvalidJTIError:
        raise InvalidToken("The launch token's id (jti) is not valid.") from None
    except jwt.PyJWTError:
        raise InvalidToken("The launch token could not be verified.") from None
    expires = _check_lifetime(claims)
    jti = claims.get("jti")
    if jti is not None:
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
            raise InvalidToken("The launch token's id (jti) is not valid.")
        until = datetime.fromtimestamp(expires + leeway, UTC).replace(tzinfo=None)
        if not record_jti(installation, jti, until):
            raise InvalidToken("This launch token was already used. Reload the app.")
    return Launch(installation_id=installation.id, user_id=_user_id(claims), claims=claims)


def _decode(token: str, installation: Installation, leeway: int) -> dict[str, Any]:
    assert installation.public_key_pem is not None
    claims: dict[str, Any] = jwt.decode(
        token,
        key=_public_key(installation.public_key_pem),
        algorithms=[ACCEPTED_ALGORITHM],
        audience=installation.token_audience,
        leeway=leeway,
        issuer=expected_issuers(installation),
        options={"require": ["exp", "iat", "aud", "iss", "sub"]},
    )
    return claims


def _check_lifetime(claims: dict[str, Any]) -> float:
    """Refuse times that are not numbers and tokens that live too long; return `exp`."""
    issued, expires = claims.get("iat"), claims.get("exp")
    for value in (issued, expires):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidToken("The launch token's times (iat, exp) must be numbers.")
    assert isinstance(issued, int | float) and isinstance(expires, int | float)
    if expires - issued > MAX_LAUNCH_TOKEN_SECONDS:
        raise InvalidToken("The launch token lives too long to be genuine.")
    return float(expires)


@lru_cache(maxsize=256)
def _public_key(pem: str) -> RSAPublicKey:
    """The installation's key, parsed once per process (an RSA key object is immutable)."""
    key = load_pem_public_key(pem.encode())
    if not isinstance(key, RSAPublicKey):
        raise InvalidToken("The installation's public key is not an RSA key.")
    return key


def _user_id(claims: dict[str, Any]) -> str | None:
    """Return the signed-in agent's id where the token carries one (its exact claim varies)."""
    context = claims.get("context")
    nested = context.get("user_id") if isinstance(context, dict) else None
    for value in (claims.get("sub"), nested):
        if isinstance(value, str | int) and str(value):
            # Some helpdesks name the user by API URL (".../users/123.json"): keep the id.
            match = _USER_URL.search(str(value))
            return match.group(1) if match else str(value)
    return None


@dataclass(frozen=True)
class SidebarSession:
    installation_id: int
    user_id: str | None
    # Set only for console sessions, from the role the helpdesk gave the user at launch.
    role: str | None = None
    # Sidebar sessions: the agent's helpdesk roles, asked at launch, which decide the fields
    # masked for them (plugin/masking/); None when the helpdesk could not say (strictest).
    viewer: ViewerRoles | None = None


class SidebarSessions:
    """Short-lived bearer tokens that the sidebar page sends with its own requests.

    The page sends the same token with every request: a token once verified is remembered
    (by its exact text, until it expires) so that the next requests skip the signature check.
    """

    def __init__(self, secret_key: str, *, ttl_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="regulars.sidebar-session")
        self._ttl = ttl_seconds
        self._verified: LockedTTLCache[str, tuple[SidebarSession, float]] = LockedTTLCache(
            maxsize=VERIFIED_TOKENS_KEPT, ttl=VERIFIED_TOKENS_SECONDS
        )

    def issue(self, session: SidebarSession) -> str:
        viewer = session.viewer
        return self._serializer.dumps(
            {
                "i": session.installation_id,
                "u": session.user_id,
                "r": session.role,
                "v": None if viewer is None else {"b": viewer.base, "s": list(viewer.specific)},
            }
        )

    def verify(self, token: str) -> SidebarSession:
        if not token:
            raise InvalidToken("The sidebar session is missing. Reload the app.")
        known = self._verified.get(token)
        if known is not None and time.time() < known[1]:
            return known[0]
        try:
            data, signed_at = self._serializer.loads(
                token, max_age=self._ttl, return_timestamp=True
            )
        except SignatureExpired:
            raise InvalidToken("The sidebar session has expired. Reload the app.") from None
        except BadSignature:
            raise InvalidToken("The sidebar session is not valid. Reload the app.") from None
        session = SidebarSession(
            installation_id=int(data["i"]),
            user_id=data.get("u"),
            role=data.get("r"),
            viewer=_viewer(data.get("v")),
        )
        self._verified[token] = (session, signed_at.timestamp() + self._ttl)
        return session


def _viewer(data: object) -> ViewerRoles | None:
    """The viewer's roles as a session token carries them (signed by the service)."""
    if not isinstance(data, dict):
        return None
    base, specific = data.get("b"), data.get("s")
    return ViewerRoles(
        base=base if isinstance(base, str) else None,
        specific=tuple(str(role) for role in specific) if isinstance(specific, list) else (),
    )
