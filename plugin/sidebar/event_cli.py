"""Helpdesk events in the running service: `flask zendesk webhooks install|remove`, `flask
freshdesk webhook secret`, `flask events work|status`, the refresher thread (started as the
outbox's is, on the first request when REGULARS_OUTBOX_IN_PROCESS says so) and /metrics.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from plugin import db, observability
from plugin.cli_support import timeout_option, vault
from plugin.clock import utcnow
from plugin.config import EXTENSION_KEY as SETTINGS_KEY
from plugin.config import Settings
from plugin.helpdesks import helpdesk_for
from plugin.helpdesks.freshdesk_installations import freshdesk_installation
from plugin.helpdesks.http import new_session
from plugin.helpdesks.interface import Helpdesk, HelpdeskError
from plugin.helpdesks.runtime import EXTENSION_KEY as HELPDESKS_KEY
from plugin.helpdesks.runtime import Helpdesks
from plugin.helpdesks.zendesk_installations import zendesk_installation
from plugin.helpdesks.zendesk_webhooks import connect_events, disconnect_events
from plugin.models import Installation
from plugin.models.events import EventSource, SnapshotRefresh
from plugin.sidebar.event_refresh import EventRefresher, RefreshStats, refresh_due
from plugin.sidebar.event_views import SECRET_HEADER
from plugin.sidebar.events import health_line
from plugin.sidebar.shared_cache import DatabaseSharedStore

logger = logging.getLogger(__name__)
IN_PROCESS_KEY = "regulars.event_refresher"

events_cli = AppGroup("events", help="Refresh snapshots the helpdesks' events said are stale.")
zendesk_webhooks_cli = AppGroup("webhooks", help="The webhooks that send Zendesk's events.")
freshdesk_webhook_cli = AppGroup("webhook", help="The automation rule's webhook secret.")


# --- The refresher ------------------------------------------------------------------------


def refresher_for(app: Flask) -> EventRefresher:
    """A refresher on the app's database, helpdesk connections and caches."""
    settings: Settings = app.extensions[SETTINGS_KEY]
    shared: Helpdesks = app.extensions[HELPDESKS_KEY]
    sessions = db.database(app).sessions
    store = DatabaseSharedStore(sessions, keep_seconds=settings.stale_keep_seconds)

    def client(session: Session, installation: Installation) -> Helpdesk:
        return helpdesk_for(installation, session, connections=shared.connections)

    def run_pass() -> RefreshStats:
        return refresh_due(
            sessions,
            clients=client,
            shared=store,
            cache=shared.cache,
            policy=shared.policy,
            keep_seconds=settings.stale_keep_seconds,
        )

    return EventRefresher(run_pass)


@events_cli.command("work")
@click.option("--until-empty", is_flag=True, help="Exit once no refresh is queued.")
def work_command(until_empty: bool) -> None:
    """Make queued snapshot refreshes until SIGTERM or SIGINT (or the queue is empty)."""
    totals = refresher_for(current_app).run(until_empty=until_empty)
    click.echo(f"{totals.fetched} fetched, {totals.merged} without a call, {totals.failed} failed")


@events_cli.command("status")
def status_command() -> None:
    """Each installation's last event and the refreshes waiting."""
    with db.database().sessions() as session:
        for line in health_lines(session):
            click.echo(line)


def health_lines(session: Session) -> list[str]:
    """One line per installation with events set up: when the last one came."""
    now = utcnow()
    rows = session.execute(
        sa.select(Installation)
        .join(EventSource, Installation.id == EventSource.installation_id)
        .order_by(Installation.platform, Installation.account)
    ).scalars()
    return [
        f"{installation.platform}:{installation.account}: "
        f"{health_line(session, installation.id, now=now)}"
        for installation in rows
    ]


def init_app(app: Flask, settings: Settings) -> None:
    """Register the commands and gauges; start the in-process refresher when asked."""
    from plugin.helpdesks.freshdesk_cli import freshdesk_cli
    from plugin.helpdesks.zendesk_cli import zendesk_cli

    app.cli.add_command(events_cli)
    zendesk_cli.add_command(zendesk_webhooks_cli)
    freshdesk_cli.add_command(freshdesk_webhook_cli)
    observability.add_gauge_source(event_gauges)
    if not settings.outbox_in_process:
        return
    lock = threading.Lock()

    @app.before_request
    def _start_event_refresher() -> None:
        if IN_PROCESS_KEY in app.extensions:
            return
        with lock:
            if IN_PROCESS_KEY not in app.extensions:
                refresher = refresher_for(app)
                threading.Thread(target=refresher.run, name="regulars-events", daemon=True).start()
                app.extensions[IN_PROCESS_KEY] = refresher


def stop_in_process(app: Flask) -> None:
    refresher: EventRefresher | None = app.extensions.pop(IN_PROCESS_KEY, None)
    if refresher is not None:
        refresher.stop()


def event_gauges(app: Flask) -> Iterator[observability.Gauge]:
    """The refreshes waiting, and the age of the newest event of any installation."""
    with db.database(app).sessions() as session:
        waiting = session.scalar(sa.select(sa.func.count()).select_from(SnapshotRefresh)) or 0
        newest = session.scalar(sa.select(sa.func.max(EventSource.last_event_at)))
    yield ("regulars_event_refreshes_waiting", "Snapshot refreshes queued by events", waiting)
    yield (
        "regulars_event_last_age_seconds",
        "Seconds since the newest helpdesk event arrived (-1 when none has)",
        (utcnow() - newest).total_seconds() if newest else -1.0,
    )


# --- Zendesk: the webhooks ------------------------------------------------------------------


def _public_url() -> str:
    settings: Settings = current_app.extensions[SETTINGS_KEY]
    if not settings.public_url:
        raise click.UsageError(
            "set REGULARS_PUBLIC_URL to the service's public https address first"
        )
    return settings.public_url


def _zendesk(session: Session, subdomain: str) -> Installation:
    installation = zendesk_installation(session, subdomain)
    if installation is None:
        raise click.UsageError(f"no Zendesk installation is registered for {subdomain!r}")
    return installation


@zendesk_webhooks_cli.command("install")
@click.option("--subdomain", required=True, help="The account's subdomain.")
@timeout_option("Zendesk")
def install_command(subdomain: str, timeout: float) -> None:
    """Create the webhooks and trigger that send the account's events to the service."""
    with db.database().sessions() as session:
        installation = _zendesk(session, subdomain)
        try:
            with new_session() as http_session:
                remote = connect_events(
                    session,
                    installation,
                    vault(),
                    http_session=http_session,
                    public_url=_public_url(),
                    timeout=timeout,
                )
        except HelpdeskError as error:
            raise click.ClickException(str(error)) from None
        session.commit()
    click.echo(
        f"Created webhooks {', '.join(remote.webhooks)} and trigger "
        f"{', '.join(remote.triggers)} for {subdomain}."
    )


@zendesk_webhooks_cli.command("remove")
@click.option("--subdomain", required=True, help="The account's subdomain.")
@timeout_option("Zendesk")
def remove_command(subdomain: str, timeout: float) -> None:
    """Delete the webhooks and trigger, and refuse the account's deliveries from now on."""
    with db.database().sessions() as session:
        installation = _zendesk(session, subdomain)
        with new_session() as http_session:
            left = disconnect_events(
                session, installation, vault(), http_session=http_session, timeout=timeout
            )
        session.commit()
    for problem in left:
        click.echo(f"Not removed in Zendesk (delete it in Admin Center): {problem}", err=True)
    click.echo(f"Events of {subdomain} are off.")


def install_on_connect(session: Session, installation: Installation, *, timeout: float) -> None:
    """After `flask zendesk register`: create the webhooks when the service knows its public
    address; say so and go on when Zendesk refuses (the sidebar works without events)."""
    settings: Settings = current_app.extensions[SETTINGS_KEY]
    if not settings.public_url:
        return
    try:
        with new_session() as http_session:
            connect_events(
                session,
                installation,
                vault(),
                http_session=http_session,
                public_url=settings.public_url,
                timeout=timeout,
            )
        session.commit()
        click.echo("Created the webhooks that send Zendesk's events.")
    except HelpdeskError as error:
        session.rollback()
        click.echo(f"Events not set up ({error}); retry with `flask zendesk webhooks install`.")


# --- Freshdesk: the automation rule's secret ------------------------------------------------


@freshdesk_webhook_cli.command("secret")
@click.option("--domain", required=True, help="The account's domain: acme.freshdesk.com.")
def secret_command(domain: str) -> None:
    """Make (or replace) the secret the automation rule's webhook sends; print it once."""
    with db.database().sessions() as session:
        installation = freshdesk_installation(session, domain)
        if installation is None:
            raise click.UsageError(f"no Freshdesk installation is registered for {domain!r}")
        secret = secrets.token_urlsafe(32)
        source = session.get(EventSource, installation.id)
        if source is None:
            source = EventSource(installation_id=installation.id, events_received=0, remote_ids={})
            session.add(source)
        source.secret_encrypted = vault().encrypt({"secret": secret})
        session.commit()
        installation_id = installation.id
    settings: Settings = current_app.extensions[SETTINGS_KEY]
    base = settings.public_url or "https://<the service's address>"
    click.echo(f"URL:    {base.rstrip('/')}/events/freshdesk/{installation_id}")
    click.echo(f"Header: {SECRET_HEADER}: {secret}")
    click.echo("Shown once: put both in the automation rule's webhook now (docs/admin.md).")
