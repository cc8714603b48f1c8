"""Typed settings, read once from the environment by the application factory."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from plugin.helpdesks.credentials import generate_key, is_valid_key
from plugin.observability import LogFormat

ZENDESK_CDN_SDK = "https://static.zdassets.com/zendesk_app_framework_sdk/2.0/zaf_sdk.min.js"
# Where create_app keeps the Settings in app.extensions, for request code and commands alike.
EXTENSION_KEY = "regulars.settings"


class ConfigError(ValueError):
    """A setting in the environment has a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything the service can be configured with; see .env.example for the documentation."""

    secret_key: str = field(repr=False)
    database_url: str = field(repr=False)  # may hold a password
    demo_enabled: bool = True
    sidebar_session_ttl_seconds: int = 3600
    jwt_leeway_seconds: int = 60
    max_content_length: int = 1_048_576
    # Uploads in the console (CSV imports) may be larger than other requests.
    max_upload_bytes: int = 52_428_800
    zaf_sdk_url: str = ZENDESK_CDN_SDK
    frame_ancestors: tuple[str, ...] = ("https://*.zendesk.com",)
    log_level: str = "INFO"
    # text for a terminal; json (one object a line, with an access line per request) to ship.
    log_format: LogFormat = "text"
    # /metrics answers only a request with this bearer token; empty turns /metrics off.
    metrics_token: str = field(default="", repr=False)
    # Reverse proxies in front of the service whose X-Forwarded-* headers are believed.
    trusted_proxies: int = 0
    # Fernet keys for stored helpdesk credentials, newest first: the first encrypts, all decrypt.
    # Empty means the key generated into the instance folder (see instance_encryption_key).
    encryption_keys: tuple[str, ...] = field(default=(), repr=False)
    # The sidebar's wait for the helpdesk, and how long helpdesk answers stay fresh or usable.
    upstream_budget_ms: int = 2500
    upstream_timeout_seconds: int = 10
    upstream_workers: int = 16
    ticket_cache_seconds: int = 120
    history_cache_seconds: int = 600
    shop_cache_seconds: int = 900
    stale_keep_seconds: int = 86_400
    # How long a process keeps what the sidebar reads from the database (customer cards,
    # mappings, guidance); its own writes drop it at once. 0: read on every view.
    read_cache_seconds: int = 10
    # A seen ticket's row is written at most this often per process (views are counted).
    seen_ticket_write_seconds: int = 60
    # Keep helpdesk answers in the database for the other processes too (see shared_cache).
    shared_cache: bool = True
    # The service's public https address, where helpdesks send events (`/events/...`); empty:
    # `flask zendesk register` sets up no webhooks. And how old a signed event may be.
    public_url: str = ""
    event_replay_seconds: int = 300
    # The share of each helpdesk account's API rate limit this process may spend.
    helpdesk_budget_share: float = 0.8
    # The action log's outbox (plugin/delivery/outbox.py): an in-process worker thread (off
    # unless set, as in production; scripts/demo.sh turns it on for the demo's notes), failures
    # before an action is parked as dead, the first retry's delay (it
    # doubles, with jitter, up to the longest wait), how long a worker holds an action it is
    # sending, and how many it sends at once.
    outbox_in_process: bool = False
    outbox_max_failures: int = 8
    outbox_backoff_ms: int = 2000
    outbox_backoff_max_seconds: int = 600
    # Renewed by the worker's heartbeat every third of it: a dead worker's work moves on
    # within this long.
    outbox_lease_seconds: int = 10
    # After an unknown outcome, the wait before the marker check (a late write lands first).
    outbox_settle_seconds: int = 60
    outbox_concurrency: int = 4
    # The agent's undo window: an action is sent this long after it was taken at the earliest,
    # and may be undone or its reason changed until then. A ticket's actions taken close
    # together wait for each other and arrive as one note, at most `outbox_gather_seconds`
    # after the first of them.
    undo_seconds: int = 10
    outbox_gather_seconds: int = 120
    # Retention (`flask data purge`, plugin/customers/retention.py): days seen tickets, shared
    # cached helpdesk answers and delivered actions' personal fields are kept; 0 keeps them.
    retention_seen_ticket_days: int = 180
    retention_cached_answer_days: int = 1
    retention_delivered_days: int = 90
    # A console session's role is asked of the helpdesk again once this old, so a removed
    # supervisor loses access within it rather than at the session's end.
    console_role_recheck_seconds: int = 300
    # Connecting from the helpdesk (docs/connect.md): the Zendesk app's id, whose public key
    # each account serves (never read from a launch token); the accounts allowed to connect
    # (empty: any); the Zendesk OAuth client admins connect with (empty: the API-token form
    # only). The API base URLs replace https://{account}.zendesk.com / .freshdesk.com for
    # accounts connected this way: for a proxy or a test fake only.
    zendesk_app_id: str = ""
    allowed_accounts: tuple[str, ...] = ()
    zendesk_oauth_client_id: str = ""
    zendesk_oauth_client_secret: str = field(default="", repr=False)
    zendesk_api_base_url: str = ""
    freshdesk_api_base_url: str = ""

    def flask_config(self) -> dict[str, Any]:
        """Return the Flask and extension config keys that follow from these settings."""
        return {
            "SECRET_KEY": self.secret_key,
            "MAX_CONTENT_LENGTH": self.max_content_length,
            "WTF_CSRF_TIME_LIMIT": None,
        }


def _default(name: str) -> str:
    """A setting's default as the environment would spell it, taken from the Settings class."""
    (default,) = [f.default for f in fields(Settings) if f.name == name]
    return str(default).lower() if isinstance(default, bool) else str(default)


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _int(name: str, raw: str, *, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _fraction(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number between 0 and 1, not {raw!r}") from None
    if not 0 < value <= 1:
        raise ConfigError(f"{name} must be more than 0 and at most 1, not {value}")
    return value


def _log_format(raw: str) -> LogFormat:
    value = raw.strip().lower()
    if value == "json":
        return "json"
    if value == "text":
        return "text"
    raise ConfigError(f"REGULARS_LOG_FORMAT must be text or json, not {raw!r}")


def _metrics_token(raw: str) -> str:
    token = raw.strip()
    if token and len(token) < 24:
        raise ConfigError("REGULARS_METRICS_TOKEN must be at least 24 characters")
    return token


def _zendesk_app_id(raw: str) -> str:
    app_id = raw.strip()
    if app_id and not app_id.isdigit():
        raise ConfigError(f"REGULARS_ZENDESK_APP_ID must be the app's numeric id, not {raw!r}")
    return app_id


def normalize_database_url(url: str) -> str:
    """Point a plain postgres URL at the psycopg 3 driver the service ships with."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _secret_key(instance_path: Path) -> str:
    """Return a persistent secret for local use, generated once into the instance folder."""
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def instance_encryption_key(instance_path: Path) -> str:
    """Return the credentials key kept in the instance folder, generating it on first use."""
    key_file = instance_path / "encryption_key"
    if key_file.exists():
        key = key_file.read_text().strip()
        if not is_valid_key(key):
            raise ConfigError(
                f"{key_file} does not hold a Fernet key; restore it from a backup, since the "
                "stored helpdesk credentials need it, or set REGULARS_ENCRYPTION_KEYS"
            )
        return key
    instance_path.mkdir(parents=True, exist_ok=True)
    key_file.touch(mode=0o600)  # owner-only before the key is written
    key = generate_key()
    key_file.write_text(key)
    return key


def _encryption_keys(raw: str) -> tuple[str, ...]:
    keys = tuple(raw.replace(",", " ").split())
    if not keys:
        raise ConfigError("REGULARS_ENCRYPTION_KEYS is set but holds no key")
    for position, key in enumerate(keys, start=1):
        if not is_valid_key(key):
            # Say which key, never what it is: this message lands in terminals and logs.
            raise ConfigError(
                f"REGULARS_ENCRYPTION_KEYS: key {position} of {len(keys)} is not a Fernet key "
                "(32 bytes, URL-safe base64). Make one with: python -c 'from "
                "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            )
    return keys


def load_settings(env: Mapping[str, str], instance_path: Path) -> Settings:
    """Build settings from environment variables, with the documented defaults."""
    default_db = f"sqlite:///{instance_path / 'regulars.sqlite3'}"
    secret_key = env.get("REGULARS_SECRET_KEY") or _secret_key(instance_path)
    if len(secret_key) < 32:
        raise ConfigError("REGULARS_SECRET_KEY must be at least 32 characters")
    ancestors = env.get("REGULARS_FRAME_ANCESTORS", "https://*.zendesk.com").split()
    raw_keys = env.get("REGULARS_ENCRYPTION_KEYS")
    encryption_keys = (
        _encryption_keys(raw_keys) if raw_keys else (instance_encryption_key(instance_path),)
    )
    return Settings(
        secret_key=secret_key,
        database_url=normalize_database_url(env.get("DATABASE_URL") or default_db),
        demo_enabled=_bool("REGULARS_DEMO", env.get("REGULARS_DEMO", "true")),
        sidebar_session_ttl_seconds=_int(
            "REGULARS_SIDEBAR_SESSION_TTL",
            env.get("REGULARS_SIDEBAR_SESSION_TTL", "3600"),
            minimum=60,
        ),
        jwt_leeway_seconds=_int(
            "REGULARS_JWT_LEEWAY", env.get("REGULARS_JWT_LEEWAY", "60"), minimum=0
        ),
        max_content_length=_int(
            "REGULARS_MAX_CONTENT_LENGTH",
            env.get("REGULARS_MAX_CONTENT_LENGTH", "1048576"),
            minimum=1024,
        ),
        max_upload_bytes=_int(
            "REGULARS_MAX_UPLOAD_BYTES",
            env.get("REGULARS_MAX_UPLOAD_BYTES", "52428800"),
            minimum=1024,
        ),
        zaf_sdk_url=env.get("REGULARS_ZAF_SDK_URL", ZENDESK_CDN_SDK),
        frame_ancestors=tuple(ancestors),
        log_level=env.get("REGULARS_LOG_LEVEL", "INFO").upper(),
        log_format=_log_format(env.get("REGULARS_LOG_FORMAT", "text")),
        metrics_token=_metrics_token(env.get("REGULARS_METRICS_TOKEN", "")),
        trusted_proxies=_int(
            "REGULARS_TRUSTED_PROXIES", env.get("REGULARS_TRUSTED_PROXIES", "0"), minimum=0
        ),
        encryption_keys=encryption_keys,
        upstream_budget_ms=_int(
            "REGULARS_UPSTREAM_BUDGET_MS",
            env.get("REGULARS_UPSTREAM_BUDGET_MS", "2500"),
            minimum=100,
        ),
        upstream_timeout_seconds=_int(
            "REGULARS_UPSTREAM_TIMEOUT", env.get("REGULARS_UPSTREAM_TIMEOUT", "10"), minimum=1
        ),
        upstream_workers=_int(
            "REGULARS_UPSTREAM_WORKERS", env.get("REGULARS_UPSTREAM_WORKERS", "16"), minimum=1
        ),
        ticket_cache_seconds=_int(
            "REGULARS_TICKET_CACHE_SECONDS",
            env.get("REGULARS_TICKET_CACHE_SECONDS", "120"),
            minimum=0,
        ),
        history_cache_seconds=_int(
            "REGULARS_HISTORY_CACHE_SECONDS",
            env.get("REGULARS_HISTORY_CACHE_SECONDS", "600"),
            minimum=0,
        ),
        read_cache_seconds=_int(
            "REGULARS_READ_CACHE_SECONDS",
            env.get("REGULARS_READ_CACHE_SECONDS", "10"),
            minimum=0,
        ),
        seen_ticket_write_seconds=_int(
            "REGULARS_SEEN_TICKET_WRITE_SECONDS",
            env.get("REGULARS_SEEN_TICKET_WRITE_SECONDS", "60"),
            minimum=0,
        ),
        shared_cache=_bool("REGULARS_SHARED_CACHE", env.get("REGULARS_SHARED_CACHE", "true")),
        public_url=env.get("REGULARS_PUBLIC_URL", "").strip().rstrip("/"),
        event_replay_seconds=_int(
            "REGULARS_EVENT_REPLAY_SECONDS",
            env.get("REGULARS_EVENT_REPLAY_SECONDS", "300"),
            minimum=10,
        ),
        helpdesk_budget_share=_fraction(
            "REGULARS_HELPDESK_BUDGET_SHARE", env.get("REGULARS_HELPDESK_BUDGET_SHARE", "0.8")
        ),
        outbox_in_process=_bool(
            "REGULARS_OUTBOX_IN_PROCESS",
            env.get("REGULARS_OUTBOX_IN_PROCESS", _default("outbox_in_process")),
        ),
        outbox_max_failures=_int(
            "REGULARS_OUTBOX_MAX_FAILURES",
            env.get("REGULARS_OUTBOX_MAX_FAILURES", "8"),
            minimum=1,
        ),
        outbox_backoff_ms=_int(
            "REGULARS_OUTBOX_BACKOFF_MS", env.get("REGULARS_OUTBOX_BACKOFF_MS", "2000"), minimum=10
        ),
        outbox_backoff_max_seconds=_int(
            "REGULARS_OUTBOX_BACKOFF_MAX_SECONDS",
            env.get("REGULARS_OUTBOX_BACKOFF_MAX_SECONDS", "600"),
            minimum=1,
        ),
        outbox_lease_seconds=_int(
            "REGULARS_OUTBOX_LEASE_SECONDS",
            env.get("REGULARS_OUTBOX_LEASE_SECONDS", "10"),
            minimum=2,
        ),
        outbox_settle_seconds=_int(
            "REGULARS_OUTBOX_SETTLE_SECONDS",
            env.get("REGULARS_OUTBOX_SETTLE_SECONDS", "60"),
            minimum=0,
        ),
        outbox_concurrency=_int(
            "REGULARS_OUTBOX_CONCURRENCY", env.get("REGULARS_OUTBOX_CONCURRENCY", "4"), minimum=1
        ),
        undo_seconds=_int(
            "REGULARS_UNDO_SECONDS", env.get("REGULARS_UNDO_SECONDS", "10"), minimum=0
        ),
        outbox_gather_seconds=_int(
            "REGULARS_OUTBOX_GATHER_SECONDS",
            env.get("REGULARS_OUTBOX_GATHER_SECONDS", "120"),
            minimum=0,
        ),
        shop_cache_seconds=_int(
            "REGULARS_SHOP_CACHE_SECONDS",
            env.get("REGULARS_SHOP_CACHE_SECONDS", "900"),
            minimum=0,
        ),
        stale_keep_seconds=_int(
            "REGULARS_STALE_KEEP_SECONDS",
            env.get("REGULARS_STALE_KEEP_SECONDS", "86400"),
            minimum=1,
        ),
        retention_seen_ticket_days=_int(
            "REGULARS_RETENTION_SEEN_TICKET_DAYS",
            env.get("REGULARS_RETENTION_SEEN_TICKET_DAYS", "180"),
            minimum=0,
        ),
        retention_cached_answer_days=_int(
            "REGULARS_RETENTION_CACHED_ANSWER_DAYS",
            env.get("REGULARS_RETENTION_CACHED_ANSWER_DAYS", "1"),
            minimum=0,
        ),
        retention_delivered_days=_int(
            "REGULARS_RETENTION_DELIVERED_DAYS",
            env.get("REGULARS_RETENTION_DELIVERED_DAYS", "90"),
            minimum=0,
        ),
        console_role_recheck_seconds=_int(
            "REGULARS_CONSOLE_ROLE_RECHECK_SECONDS",
            env.get("REGULARS_CONSOLE_ROLE_RECHECK_SECONDS", "300"),
            minimum=0,
        ),
        zendesk_app_id=_zendesk_app_id(env.get("REGULARS_ZENDESK_APP_ID", "")),
        allowed_accounts=tuple(
            env.get("REGULARS_ALLOWED_ACCOUNTS", "").replace(",", " ").lower().split()
        ),
        zendesk_oauth_client_id=env.get("REGULARS_ZENDESK_OAUTH_CLIENT_ID", "").strip(),
        zendesk_oauth_client_secret=env.get("REGULARS_ZENDESK_OAUTH_CLIENT_SECRET", "").strip(),
        zendesk_api_base_url=env.get("REGULARS_ZENDESK_API_BASE_URL", "").strip().rstrip("/"),
        freshdesk_api_base_url=env.get("REGULARS_FRESHDESK_API_BASE_URL", "").strip().rstrip("/"),
    )


def settings_from_environment(instance_path: Path) -> Settings:
    """Read settings from this process's environment (called once, by create_app)."""
    return load_settings(os.environ, instance_path)
