"""`flask outbox`: run the action log's delivery worker, see where it stands, retry the dead.

Also starts the worker as a thread inside the service when REGULARS_OUTBOX_IN_PROCESS says
so (scripts/demo.sh turns it on), on the first request rather than at import, so commands such as
`flask db upgrade` never start one.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from types import FrameType

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from plugin import db, observability
from plugin.clock import utcnow
from plugin.config import EXTENSION_KEY as SETTINGS_KEY
from plugin.config import Settings
from plugin.delivery import outbox as delivery
from plugin.delivery.worker import OutboxWorker, writers_for
from plugin.gestures.shops import shop_for
from plugin.helpdesks.installations import RegistrationError, installation_named
from plugin.helpdesks.runtime import EXTENSION_KEY as HELPDESKS_KEY
from plugin.helpdesks.runtime import Helpdesks
from plugin.models import Delivery

outbox_cli = AppGroup("outbox", help="Deliver the action log to the helpdesk as ticket notes.")

IN_PROCESS_KEY = "regulars.outbox_worker"
logger = logging.getLogger(__name__)


def worker_for(app: Flask, *, worker_id: str | None = None) -> OutboxWorker:
    """An outbox worker on the app's database, with the app's helpdesk connections."""
    settings: Settings = app.extensions[SETTINGS_KEY]
    shared: Helpdesks = app.extensions[HELPDESKS_KEY]
    return OutboxWorker(
        db.database(app).sessions,
        writers_for(shared.connections),
        policy=delivery.policy_from(settings),
        worker_id=worker_id or f"{socket.gethostname()}-{os.getpid()}",
        # Gestures are given in the installation's shop, on the same connections.
        shops=lambda session, installation: shop_for(
            session, installation, connections=shared.connections
        ),
    )


@outbox_cli.command("work")
@click.option("--once", is_flag=True, help="Claim and send one batch, then exit.")
@click.option("--until-empty", is_flag=True, help="Exit once every action is delivered or dead.")
@click.option("--worker-id", help="A name for this worker in logs (default: host-pid).")
def work_command(once: bool, until_empty: bool, worker_id: str | None) -> None:
    """Send pending actions to their tickets until SIGTERM or SIGINT (or as the flags say)."""
    worker = worker_for(current_app, worker_id=worker_id)

    def _stop(signum: int, _frame: FrameType | None) -> None:
        click.echo(f"{signal.Signals(signum).name}: finishing the actions in hand, then exiting.")
        worker.stop()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        _work(worker, once=once, until_empty=until_empty)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _work(worker: OutboxWorker, *, once: bool, until_empty: bool) -> None:
    if once:
        if not worker.hold_lease():
            raise click.ClickException("another worker holds the outbox (SQLite runs one)")
        try:
            sent = worker.run_once()
        finally:
            worker.release_lease()
        click.echo(f"Attempted {sent} action(s).")
        return
    click.echo(f"Outbox worker {worker.worker_id} started.")
    stats = worker.run(until_empty=until_empty)
    retried = ", ".join(f"{kind} {n}" for kind, n in sorted(stats.retried.items())) or "none"
    click.echo(
        f"Outbox worker {worker.worker_id} stopped: {stats.delivered} delivered "
        f"({stats.found_on_ticket} found on the ticket already), {stats.dead} dead, "
        f"retries by cause: {retried}."
    )


@outbox_cli.command("status")
@click.option("--installation", "name", help="account or platform:account (default: all)")
def status_command(name: str | None) -> None:
    """Count deliveries by state: pending, in flight, delivered, dead, retrying, stuck."""
    with db.database().sessions() as session:
        installation_id = _installation_id(session, name)
        counted = delivery.counts(session, now=utcnow(), installation_id=installation_id)
    click.echo(
        f"pending {counted.pending} (retrying {counted.retrying}), in flight "
        f"{counted.in_flight}, delivered {counted.delivered}, dead {counted.dead}, "
        f"stuck {counted.stuck}"
    )
    if counted.stuck:
        click.echo("Stuck deliveries mean no worker is running: start `flask outbox work`.")


@outbox_cli.command("retry")
@click.option("--dead", "all_dead", is_flag=True, help="Retry every dead delivery.")
@click.option("--installation", "name", help="account or platform:account (default: all)")
@click.argument("action_ids", nargs=-1, type=int)
def retry_command(all_dead: bool, name: str | None, action_ids: tuple[int, ...]) -> None:
    """Send dead actions again now: all of them (--dead) or the ACTION_IDS given."""
    if not all_dead and not action_ids:
        raise click.UsageError("give --dead, or the ids of the actions to retry")
    with db.database().sessions() as session:
        installation_id = _installation_id(session, name)
        count = delivery.retry(
            session,
            now=utcnow(),
            installation_id=installation_id,
            action_ids=list(action_ids) if action_ids else None,
        )
    click.echo(f"{count} action(s) will be sent again.")


def _installation_id(session: Session, name: str | None) -> int | None:
    if name is None:
        return None
    try:
        return installation_named(session, name).id
    except RegistrationError as error:
        raise click.UsageError(str(error)) from None


# --- In process ---------------------------------------------------------------------------


def init_app(app: Flask, settings: Settings) -> None:
    """Register the commands; start the in-process worker on the first request if asked."""
    app.cli.add_command(outbox_cli)
    observability.add_gauge_source(outbox_gauges)
    if not settings.outbox_in_process:
        return
    lock = threading.Lock()

    @app.before_request
    def _start_outbox_worker() -> None:
        if IN_PROCESS_KEY in app.extensions:
            return
        with lock:
            if IN_PROCESS_KEY not in app.extensions:
                app.extensions[IN_PROCESS_KEY] = start_in_process(app)


def outbox_gauges(app: Flask) -> Iterator[observability.Gauge]:
    """The outbox's depth, its oldest undelivered action's age, and the dead, for /metrics."""
    now = utcnow()
    with db.database(app).sessions() as session:
        counts = delivery.counts(session, now=now)
        oldest = session.scalar(
            sa.select(sa.func.min(Delivery.created_at)).where(
                Delivery.status.in_(
                    [delivery.DeliveryStatus.PENDING.value, delivery.DeliveryStatus.IN_FLIGHT.value]
                )
            )
        )
    yield (
        "regulars_outbox_depth",
        "Actions not delivered to their ticket yet (pending or being sent)",
        counts.pending + counts.in_flight,
    )
    yield (
        "regulars_outbox_oldest_age_seconds",
        "How long the oldest undelivered action has waited (0 when none waits)",
        (now - oldest).total_seconds() if oldest else 0.0,
    )
    yield ("regulars_outbox_dead", "Actions parked as dead, waiting for an admin", counts.dead)


def start_in_process(app: Flask) -> OutboxWorker:
    """Run a worker in a daemon thread of this process; `stop_in_process` ends it."""
    worker = worker_for(app, worker_id=f"{socket.gethostname()}-{os.getpid()}-in-process")
    thread = threading.Thread(
        target=_run_logged, args=(worker,), name="regulars-outbox", daemon=True
    )
    thread.start()
    logger.info("outbox: in-process worker %s started", worker.worker_id)
    return worker


def stop_in_process(app: Flask) -> None:
    worker: OutboxWorker | None = app.extensions.pop(IN_PROCESS_KEY, None)
    if worker is not None:
        worker.stop()


def _run_logged(worker: OutboxWorker) -> None:
    try:
        worker.run()
    except Exception:  # the thread must say why it ended; the service keeps serving
        logger.exception("outbox: the in-process worker stopped")
