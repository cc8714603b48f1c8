"""The app's shared helpdesk state: pooled sessions, call budgets, worker threads and the cache."""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from plugin import db
from plugin.config import Settings
from plugin.customers.shopify_client import ShopifyClient
from plugin.customers.shopify_connection import shopify_client_for
from plugin.goodwill.holdouts import ExposureRecords
from plugin.helpdesks import Connections, helpdesk_for
from plugin.helpdesks.http import AccountSessions
from plugin.helpdesks.interface import Helpdesk
from plugin.models import Installation
from plugin.sidebar import read_cache
from plugin.sidebar.read_cache import ReadCache
from plugin.sidebar.rendered import RenderedParts
from plugin.sidebar.seen import SeenTicketWrites
from plugin.sidebar.shared_cache import DatabaseSharedStore
from plugin.sidebar.upstream import (
    DEFAULT_MAX_ENTRIES,
    LockedTTLCache,
    UpstreamCache,
    UpstreamPolicy,
)
from plugin.sidebar.view_budget import ViewBudgets
from plugin.sidebar.writes_apart import WritesApart

EXTENSION_KEY = "regulars.helpdesks"
CLIENT_CACHE_SECONDS = 300

# Each live app's seen-ticket buffer and its database, for the flush at exit. Held weakly, so
# an app that is dropped (tests build hundreds) is collected with its engine and threads.
_unflushed: weakref.WeakKeyDictionary[SeenTicketWrites, db.Database] = weakref.WeakKeyDictionary()


@dataclass
class Helpdesks:
    """One per app: everything a request needs to talk to an installation's helpdesk."""

    connections: Connections
    cache: UpstreamCache
    policy: UpstreamPolicy
    executor: ThreadPoolExecutor
    # Which shop answers (by cache key) have been stored, so each is stored once per process.
    shop_synced: LockedTTLCache[Hashable, datetime]
    # What the sidebar reads from the database, kept a few seconds (plugin/sidebar/read_cache.py).
    reads: ReadCache
    # What views record for reports, written after their answer on the executor's threads.
    writes: WritesApart
    # The sidebar's records of seen tickets, written at most once a minute per ticket.
    seen: SeenTicketWrites
    # The rules' exposures of each ticket, for the effects report, written once a ticket.
    exposures: ExposureRecords
    # The banner and cards as rendered, by the values they show (plugin/sidebar/rendered.py).
    rendered: RenderedParts
    # One deadline per agent's view of a ticket, shared by the banner and its cards.
    views: ViewBudgets
    # Remote clients by installation and credentials: decrypting them once, not every view.
    clients: LockedTTLCache[Hashable, Helpdesk] = field(
        default_factory=lambda: LockedTTLCache(maxsize=1000, ttl=CLIENT_CACHE_SECONDS)
    )

    def close(self) -> None:
        """Stop the worker threads and close pooled connections (tests, shutdown)."""
        self.writes.wait(timeout=5)
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.connections.accounts.close()


def init_app(app: Flask, settings: Settings) -> None:
    executor = ThreadPoolExecutor(
        max_workers=settings.upstream_workers, thread_name_prefix="regulars-upstream"
    )
    read_cache.install_hooks()
    database = db.database(app)
    shared = (
        DatabaseSharedStore(
            database.sessions,
            keep_seconds=settings.stale_keep_seconds,
            read_sessions=database.apart_sessions,
        )
        if settings.shared_cache
        else None
    )
    writes = WritesApart(executor)
    seen = SeenTicketWrites(
        interval_seconds=settings.seen_ticket_write_seconds,
        sessions=database.sessions,
        writes=writes,
    )
    _unflushed[seen] = database
    app.extensions[EXTENSION_KEY] = Helpdesks(
        connections=Connections(
            vault=app.extensions["regulars.vault"],
            accounts=AccountSessions(usable_fraction=settings.helpdesk_budget_share),
            timeout=float(settings.upstream_timeout_seconds),
        ),
        cache=UpstreamCache(
            executor=executor, keep_seconds=settings.stale_keep_seconds, shared=shared
        ),
        policy=UpstreamPolicy(
            budget_seconds=settings.upstream_budget_ms / 1000,
            ticket_fresh_seconds=settings.ticket_cache_seconds,
            history_fresh_seconds=settings.history_cache_seconds,
            shop_fresh_seconds=settings.shop_cache_seconds,
        ),
        shop_synced=LockedTTLCache(maxsize=DEFAULT_MAX_ENTRIES, ttl=settings.stale_keep_seconds),
        executor=executor,
        reads=ReadCache(ttl_seconds=settings.read_cache_seconds),
        writes=writes,
        seen=seen,
        exposures=ExposureRecords(database.unsynced_session, writes),
        # Off with the read cache, so that the naive configuration caches nothing.
        rendered=RenderedParts(enabled=settings.read_cache_seconds > 0),
        views=ViewBudgets(budget_seconds=settings.upstream_budget_ms / 1000),
    )


@atexit.register
def flush_seen_at_exit() -> None:
    """Write the views counted and not yet written by every live app (best effort)."""
    for seen, database in list(_unflushed.items()):
        if not len(seen):
            continue
        try:
            with database.sessions() as session:
                seen.flush(session)
        except SQLAlchemyError:
            pass  # the database is gone first: at most a minute of view counts is lost


def helpdesks() -> Helpdesks:
    value: Helpdesks = current_app.extensions[EXTENSION_KEY]
    return value


def shop_client_for(installation: Installation) -> ShopifyClient | None:
    """Return a client for the installation's shop, or None when none is connected."""
    connections = helpdesks().connections
    return shopify_client_for(
        installation, connections.vault, connections.accounts, timeout=connections.timeout
    )


def client_for(installation: Installation) -> Helpdesk:
    """Return the client for the installation's helpdesk, sharing the app's sessions.

    A remote client holds no request state, so one is kept per installation for a few minutes
    (new credentials make a new key); the demo's reads this request's database session.
    """
    shared = helpdesks()
    key = (
        installation.id,
        installation.platform,
        installation.account,
        installation.api_base_url,
        installation.credentials_encrypted,
    )
    client = shared.clients.get(key)
    if client is None:
        client = helpdesk_for(installation, db.session(), connections=shared.connections)
        if client.remote:
            shared.clients[key] = client
    return client
