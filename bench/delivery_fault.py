"""The outbox's fault test: every action arrives exactly once, however badly Zendesk behaves.

    python -m bench.delivery_fault --actions 1000 --database both

For each database (SQLite, and PostgreSQL on a throwaway cluster) it:

1. starts the fake Zendesk (`bench/fake_zendesk.py`) on 127.0.0.1 with injected faults on the
   ticket update and comment list routes: 30% answered 5xx, 10% 429 with `Retry-After`, and
   5% hanging past the client's timeout, half of those after the note WAS written, so the
   worker really does not know whether its note arrived;
2. writes the actions to the action log of a Zendesk installation pointed at the fake,
   spread over the fake's tickets (so per-ticket order matters), with the ORM, as the
   sidebar does: nothing but the outbox sends them;
3. runs `flask outbox work` worker processes (two at once on PostgreSQL, one on SQLite, where
   one works at a time) and SIGKILLs a working one `--kills` times along the way, starting
   a new one each time;
4. once every delivery is delivered or dead, checks the fake's notes: each action's marker
   must be in exactly one note on its own ticket.

It prints one JSON document: per database the actions, delivered, duplicates, lost, dead,
attempts, retries by cause (the faults the fake injected, and leases taken over from killed
workers) and elapsed seconds. The exit status is 1 if any action was duplicated, lost or dead.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.orm import Session, sessionmaker

from bench import fake_zendesk
from bench.fake_zendesk import FakeZendeskServer, FaultPlan
from bench.fault_runs import add_run_options, count_in_logs, print_results, run_per_database
from plugin.db import create_engine
from plugin.delivery.notes import marker_for
from plugin.helpdesks.credentials import CredentialsVault
from plugin.helpdesks.zendesk import ZendeskCredentials
from plugin.models import Action, Base, Delivery, Installation

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "faulty"
# The client gives up after 1 s; a hang lasts 1.5 s; a worker holds an action for 4 s, more
# than the two calls (marker check, update) one attempt can make.
CLIENT_TIMEOUT_SECONDS = 1
HANG_SECONDS = 1.5
LEASE_SECONDS = 4
# A timed-out note is looked for again only once the longest hang is over.
SETTLE_SECONDS = 2
# With 45% of calls failing, eight failures in a row happen; the test is about exactly once,
# not about parking, so the limit is out of reach.
MAX_FAILURES = 40
BACKOFF_MS = 100
# Retries wait at most 2 s here: a run is about faults, not about waiting them out.
BACKOFF_MAX_SECONDS = 2
# Synthetic tickets beyond the demo's, so that a thousand actions are not all queued behind
# each other on a few tickets.
EXTRA_TICKETS = 60
FIRST_EXTRA_TICKET = 5001


@dataclass(frozen=True)
class Options:
    actions: int = 1000
    kills: int = 2
    seed: int = 6
    timeout_seconds: float = 900.0
    server_error_rate: float = 0.30
    rate_limit_rate: float = 0.10
    hang_rate: float = 0.05


class FaultTestError(RuntimeError):
    pass


# --- Setting up ---------------------------------------------------------------------------


def _public_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def fake_data() -> fake_zendesk.FakeZendeskData:
    """The demo's Zendesk account plus synthetic tickets for the same requester."""
    data = fake_zendesk.from_sample_data(datetime.now(UTC).date(), public_key_pem=_public_key_pem())
    template = next(iter(data.tickets.values()))
    for number in range(FIRST_EXTRA_TICKET, FIRST_EXTRA_TICKET + EXTRA_TICKETS):
        data.tickets[number] = template | {"id": number, "tags": [], "subject": f"Ticket {number}"}
    return data


def write_actions(
    sessions: sessionmaker[Session], *, count: int, tickets: list[int], base_url: str, vault: Any
) -> int:
    """Create the installation and its actions; return the installation's id."""
    credentials = ZendeskCredentials.from_api_token(
        email=fake_zendesk.ADMIN_EMAIL, api_token=fake_zendesk.DEFAULT_API_TOKEN
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    with sessions() as session:
        installation = Installation(
            platform="zendesk",
            account=ACCOUNT,
            display_name="Faulty Zendesk",
            api_base_url=base_url,
            credentials_encrypted=vault.encrypt(credentials.to_dict()),
        )
        session.add(installation)
        session.commit()
        kinds = ("applied", "dismissed", "escalated", "approved", "refused")
        for number in range(count):
            session.add(
                Action(
                    installation_id=installation.id,
                    ticket_id=str(tickets[number % len(tickets)]),
                    requester_id="90001",
                    agent_id="80001",
                    kind=kinds[number % len(kinds)],
                    exception_key="free_shipping",
                    amount_cents=500 + number,
                    currency="USD",
                    reason_code="late_delivery",
                    text=f"Fault test action {number}",
                    idempotency_key=f"fault-{number:06d}",
                    created_at=now + timedelta(microseconds=number),
                )
            )
            if number % 200 == 199:
                session.commit()
        session.commit()
        return installation.id


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or one on a throwaway PostgreSQL cluster."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'delivery-fault.sqlite3'}"
        return
    from tests.postgres_cluster import create_database, throwaway_cluster

    with throwaway_cluster() as base_url:
        yield create_database(base_url)


# --- Workers ------------------------------------------------------------------------------


class Workers:
    """`flask outbox work` processes, started, killed and replaced."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self._env = env
        self._log_dir = log_dir
        self._started = 0
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self._started += 1
        log = (self._log_dir / f"worker-{self._started}.log").open("wb")
        command = [sys.executable, "-m", "flask", "--app", "plugin", "outbox", "work"]
        command += ["--worker-id", f"fault-worker-{self._started}"]
        process = subprocess.Popen(
            command, cwd=ROOT, env=self._env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.running.append(process)

    def kill_oldest(self) -> None:
        """SIGKILL the longest-running worker (on SQLite, the one holding the outbox)."""
        process = self.running.pop(0)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.running:
            process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running.clear()

    def check_alive(self) -> None:
        for process in self.running:
            if process.poll() is not None:
                raise FaultTestError(
                    f"a worker exited with {process.returncode}; see {self._log_dir}"
                )


def _open_and_done(sessions: sessionmaker[Session]) -> tuple[int, int]:
    with sessions() as session:
        rows = dict(
            session.execute(
                sa.select(Delivery.status, sa.func.count()).group_by(Delivery.status)
            ).all()
        )
    done = int(rows.get("delivered", 0)) + int(rows.get("dead", 0))
    return sum(int(n) for n in rows.values()) - done, done


def run_with_kills(
    workers: Workers,
    *,
    parallel: int,
    total: int,
    kills: int,
    timeout_seconds: float,
    open_and_done: Callable[[], tuple[int, int]],
    what: str,
) -> tuple[int, float]:
    """Run `parallel` workers until nothing is open, SIGKILLing the oldest (and starting
    another) `kills` times, evenly spread over the `total` items; the kills and seconds it took.
    """
    started = time.monotonic()
    for _ in range(parallel):
        workers.start()
    kills_at = [total * (n + 1) // (kills + 1) for n in range(kills)]
    killed = 0
    try:
        while True:
            open_count, done = open_and_done()
            if open_count == 0:
                break
            if time.monotonic() - started > timeout_seconds:
                raise FaultTestError(f"{open_count} {what} still open after the timeout")
            if kills_at and done >= kills_at[0]:
                kills_at.pop(0)
                workers.kill_oldest()
                killed += 1
                workers.start()
            workers.check_alive()
            time.sleep(0.1)
    finally:
        workers.stop_all()
    return killed, time.monotonic() - started


# --- The test -----------------------------------------------------------------------------


def run_one(kind: str, options: Options, folder: Path) -> dict[str, Any]:
    """Run the fault test on a fresh database of this kind; return its figures."""
    with database(kind, folder) as url:
        return run_on(url, options, folder)


def run_on(url: str, options: Options, folder: Path) -> dict[str, Any]:
    """Run the fault test on an empty database at `url`; return its figures."""
    kind = "postgresql" if url.startswith("postgresql") else "sqlite"
    key = Fernet.generate_key().decode()
    vault = CredentialsVault((key,))
    parallel = 2 if kind == "postgresql" else 1
    data = fake_data()
    tickets = sorted(data.tickets)
    with FakeZendeskServer(data, rate_limit=1_000_000) as fake:
        engine = create_engine(url)
        try:
            Base.metadata.create_all(engine)
            sessions = sessionmaker(engine, expire_on_commit=False)
            write_actions(
                sessions, count=options.actions, tickets=tickets, base_url=fake.url, vault=vault
            )
            fake.app_state.set_faults(
                FaultPlan(
                    server_error_rate=options.server_error_rate,
                    rate_limit_rate=options.rate_limit_rate,
                    hang_rate=options.hang_rate,
                    hang_seconds=HANG_SECONDS,
                    retry_after_seconds=1,
                    seed=options.seed,
                )
            )
            env = _worker_env(url, key, folder / f"instance-{kind}")
            kills, elapsed = run_with_kills(
                Workers(env, folder),
                parallel=parallel,
                total=options.actions,
                kills=options.kills,
                timeout_seconds=options.timeout_seconds,
                open_and_done=lambda: _open_and_done(sessions),
                what="actions",
            )
            return _figures(kind, folder, sessions, fake, options, kills, parallel, elapsed)
        finally:
            engine.dispose()


def _worker_env(url: str, key: str, instance: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGULARS_")}
    return env | {
        "DATABASE_URL": url,
        "REGULARS_INSTANCE_PATH": str(instance),
        "REGULARS_SECRET_KEY": "fault-test-" + Fernet.generate_key().decode(),
        "REGULARS_ENCRYPTION_KEYS": key,
        "REGULARS_DEMO": "false",
        "REGULARS_OUTBOX_IN_PROCESS": "false",
        "REGULARS_UPSTREAM_TIMEOUT": str(CLIENT_TIMEOUT_SECONDS),
        "REGULARS_OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
        "REGULARS_OUTBOX_SETTLE_SECONDS": str(SETTLE_SECONDS),
        "REGULARS_OUTBOX_BACKOFF_MS": str(BACKOFF_MS),
        "REGULARS_OUTBOX_BACKOFF_MAX_SECONDS": str(BACKOFF_MAX_SECONDS),
        "REGULARS_OUTBOX_MAX_FAILURES": str(MAX_FAILURES),
        "REGULARS_OUTBOX_CONCURRENCY": "8",
        # No undo window: each action is sent at once, alone, and counted by its own note.
        "REGULARS_UNDO_SECONDS": "0",
        "REGULARS_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def _figures(
    kind: str,
    folder: Path,
    sessions: sessionmaker[Session],
    fake: FakeZendeskServer,
    options: Options,
    kills: int,
    workers: int,
    elapsed: float,
) -> dict[str, Any]:
    state = fake.app_state
    with state.lock:
        notes = {
            ticket: [str(note["body"]) for note in ticket_notes]
            for ticket, ticket_notes in state.data.notes.items()
        }
        faults = Counter(state.faults)
        calls = state.calls
    with sessions() as session:
        rows = session.execute(
            sa.select(Action, Delivery).join(Delivery, Delivery.action_id == Action.id)
        ).all()
        delivered = dead = attempts = duplicates = lost = misplaced = 0
        for action, delivery in rows:
            marker = marker_for(action)
            here = sum(marker in body for body in notes.get(int(action.ticket_id), []))
            everywhere = sum(marker in body for bodies in notes.values() for body in bodies)
            attempts += delivery.attempts
            delivered += delivery.status == "delivered"
            dead += delivery.status == "dead"
            duplicates += max(0, everywhere - 1)
            misplaced += everywhere - here
            lost += everywhere == 0 and delivery.status != "dead"
    return {
        "database": kind,
        "workers_at_once": workers,
        "kills": kills,
        "actions": len(rows),
        "delivered": delivered,
        "duplicates": duplicates,
        "lost": lost,
        "misplaced": misplaced,
        "dead": dead,
        "attempts": attempts,
        "retries": attempts - len(rows),
        "retries_by_cause": {
            "server_error_5xx": faults["server_error"],
            "rate_limited_429": faults["rate_limited"],
            "timeout_nothing_written": faults["hang_before"],
            "timeout_after_write": faults["hang_after"],
            # Each worker logs the actions it takes over from a killed one.
            "lease_taken_over": count_in_logs(folder, "lease ran out"),
        },
        "marker_checks": calls["comments"],
        "ticket_updates": calls["update_ticket"],
        "elapsed_seconds": round(elapsed, 1),
        "actions_per_second": round(len(rows) / elapsed, 1) if elapsed else None,
        "passed": duplicates == 0 and lost == 0 and misplaced == 0 and dead == 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.delivery_fault",
        description="Send actions through the outbox while a fake Zendesk misbehaves and "
        "workers are killed; check each arrives exactly once.",
    )
    parser.add_argument("--actions", type=int, default=1000)
    add_run_options(parser, kills=2, seed=6)
    args = parser.parse_args(argv)
    options = Options(
        actions=args.actions, kills=args.kills, seed=args.seed, timeout_seconds=args.timeout
    )
    results = run_per_database(
        args.database, "delivery-fault-", lambda kind, folder: run_one(kind, options, folder)
    )
    return print_results({"actions_requested": args.actions, "results": results}, args.output)


if __name__ == "__main__":
    sys.exit(main())
