"""Launch-token verification: only a genuine, current RS256 token for a registered installation."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from plugin.helpdesks.tokens import (
    InvalidToken,
    Launch,
    SidebarSession,
    SidebarSessions,
    verify_launch_token,
)
from plugin.models import Installation
from tests import tokens

AUDIENCE = "https://acme.zendesk.com/api/v2/apps/installations/42.json"
KEY = tokens.new_key()
OTHER_KEY = tokens.new_key()
INSTALLATION = Installation(
    id=7,
    platform="zendesk",
    account="acme",
    token_audience=AUDIENCE,
    public_key_pem=tokens.public_pem(KEY),
)


def find(audiences: list[str]) -> Installation | None:
    return INSTALLATION if AUDIENCE in audiences else None


def verify(token: str) -> Launch:
    return verify_launch_token(token, find_installation=find, leeway=60)


def test_genuine_token_names_installation_and_agent() -> None:
    launch = verify_launch_token(
        tokens.rs256(KEY, tokens.claims(AUDIENCE)), find_installation=find, leeway=60
    )
    assert launch.installation_id == 7
    assert launch.user_id == "80001"


def test_agent_id_from_a_user_url_subject() -> None:
    payload = tokens.claims(AUDIENCE) | {"sub": "https://acme.zendesk.com/api/v2/users/5.json"}
    assert verify(tokens.rs256(KEY, payload)).user_id == "5"


def test_slightly_expired_token_passes_within_leeway() -> None:
    issued = datetime.now(UTC) - timedelta(seconds=320)
    assert verify(tokens.rs256(KEY, tokens.claims(AUDIENCE, issued=issued)))


def without(claims: dict[str, object], name: str) -> dict[str, object]:
    return {key: value for key, value in claims.items() if key != name}


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "No launch token"),
        ("not-a-jwt", "malformed"),
        ("x" * 9000, "too large"),
        (tokens.unsigned(tokens.claims(AUDIENCE)), "'none'"),
        (tokens.hs256_with_public_key(KEY, tokens.claims(AUDIENCE)), "'HS256'"),
        (
            tokens.rs256(
                KEY, tokens.claims(AUDIENCE, issued=datetime.now(UTC) - timedelta(hours=1))
            ),
            "expired",
        ),
        (
            tokens.rs256(
                KEY,
                tokens.claims(AUDIENCE, issued=datetime.now(UTC) + timedelta(hours=1))
                | {"nbf": datetime.now(UTC) + timedelta(hours=1)},
            ),
            "not valid yet",
        ),
        (tokens.rs256(OTHER_KEY, tokens.claims(AUDIENCE)), "signature does not match"),
        (
            tokens.tampered(tokens.rs256(KEY, tokens.claims(AUDIENCE)), sub="1"),
            "signature does not match",
        ),
        (tokens.rs256(KEY, tokens.claims("https://evil.zendesk.com/x.json")), "not for an"),
        (
            tokens.rs256(KEY, {k: v for k, v in tokens.claims(AUDIENCE).items() if k != "exp"}),
            "'exp'",
        ),
        (
            lambda: tokens.rs256(KEY, tokens.claims(AUDIENCE) | {"iss": "evil.zendesk.com"}),
            "issued by another account",
        ),
        (
            lambda: tokens.rs256(
                KEY, {k: v for k, v in tokens.claims(AUDIENCE).items() if k != "iss"}
            ),
            "'iss'",
        ),
        (
            lambda: tokens.rs256(
                KEY, {k: v for k, v in tokens.claims(AUDIENCE).items() if k != "sub"}
            ),
            "'sub'",
        ),
        (
            tokens.rs256(
                KEY, tokens.claims(AUDIENCE) | {"aud": ["https://evil.example", AUDIENCE]}
            ),
            "audience must be one installation",
        ),
        (
            tokens.rs256(KEY, tokens.claims(AUDIENCE) | {"aud": [AUDIENCE]}),
            "audience must be one installation",
        ),
        (
            tokens.rs256(KEY, tokens.claims(AUDIENCE, lifetime=10 * 365 * 86400)),
            "lives too long",
        ),
        (
            lambda: tokens.rs256(
                KEY, tokens.claims(AUDIENCE) | {"exp": str(int(time.time()) + 300)}
            ),
            "must be numbers",
        ),
    ],
    ids=[
        "missing",
        "garbage",
        "oversized",
        "alg-none",
        "hs256-public-key",
        "expired",
        "not-yet-valid",
        "wrong-key",
        "tampered-payload",
        "unknown-installation",
        "no-exp",
        "foreign-iss",
        "no-iss",
        "no-sub",
        "aud-list-foreign-first",
        "aud-list",
        "ten-year-life",
        "exp-as-string",
    ],
)
def test_refused_tokens_say_why(token: str | Callable[[], str], reason: str) -> None:
    # Tokens with a lifetime are made when the test runs: made at collection, they could
    # expire before a long parallel run reaches them, and be refused for that instead.
    with pytest.raises(InvalidToken, match=reason):
        verify(token() if callable(token) else token)


def test_a_replayed_jti_is_refused_and_ids_are_kept_per_installation() -> None:
    seen: set[tuple[int, str]] = set()
    kept_until: list[datetime] = []

    def record(installation: Installation, jti: str, until: datetime) -> bool:
        kept_until.append(until)
        if (installation.id, jti) in seen:
            return False
        seen.add((installation.id, jti))
        return True

    token = tokens.rs256(KEY, tokens.claims(AUDIENCE) | {"jti": "launch-1"})
    verify_launch_token(token, find_installation=find, leeway=60, record_jti=record)
    with pytest.raises(InvalidToken, match="already used"):
        verify_launch_token(token, find_installation=find, leeway=60, record_jti=record)
    other = tokens.rs256(KEY, tokens.claims(AUDIENCE) | {"jti": "launch-2"})
    verify_launch_token(other, find_installation=find, leeway=60, record_jti=record)
    # Kept for the token's life plus the leeway, no longer.
    assert all(
        timedelta(seconds=300)
        < until - datetime.now(UTC).replace(tzinfo=None)
        <= timedelta(seconds=361)
        for until in kept_until
    )


@pytest.mark.parametrize("jti", ["", 5, "x" * 300])
def test_a_malformed_jti_is_refused(jti: object) -> None:
    with pytest.raises(InvalidToken, match="jti"):
        verify(tokens.rs256(KEY, tokens.claims(AUDIENCE) | {"jti": jti}))


def test_installation_without_public_key_is_refused() -> None:
    keyless = Installation(id=8, platform="zendesk", account="acme", token_audience=AUDIENCE)
    with pytest.raises(InvalidToken, match="no public key"):
        verify_launch_token(
            tokens.rs256(KEY, tokens.claims(AUDIENCE)),
            find_installation=lambda _a: keyless,
            leeway=60,
        )


def test_sidebar_session_round_trip_and_refusals() -> None:
    sessions = SidebarSessions("s" * 40, ttl_seconds=60)
    token = sessions.issue(SidebarSession(installation_id=3, user_id="80001"))
    assert sessions.verify(token) == SidebarSession(installation_id=3, user_id="80001")
    with pytest.raises(InvalidToken, match="not valid"):
        SidebarSessions("t" * 40, ttl_seconds=60).verify(token)
    with pytest.raises(InvalidToken, match="not valid"):
        sessions.verify(token[:-2] + "xx")
    with pytest.raises(InvalidToken, match="missing"):
        sessions.verify("")


def test_sidebar_session_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = SidebarSessions("s" * 40, ttl_seconds=60)
    token = sessions.issue(SidebarSession(installation_id=3, user_id=None))
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 120)
    with pytest.raises(InvalidToken, match="expired"):
        sessions.verify(token)


def test_a_remembered_sidebar_session_still_expires_on_time() -> None:
    sessions = SidebarSessions("s" * 40, ttl_seconds=1)
    token = sessions.issue(SidebarSession(installation_id=7, user_id="42"))
    assert sessions.verify(token) == SidebarSession(installation_id=7, user_id="42")
    assert sessions.verify(token) == SidebarSession(installation_id=7, user_id="42")  # kept
    with pytest.raises(InvalidToken):
        sessions.verify(token[:-2] + "xx")  # a forged variant is checked, not remembered
    time.sleep(2.1)
    with pytest.raises(InvalidToken, match="expired"):
        sessions.verify(token)
