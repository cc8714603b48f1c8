"""The scale-out deployment, run for real: two service processes, two outbox workers, one
PostgreSQL database, and a fake Zendesk on 127.0.0.1.

Each service process is its own gunicorn (one worker, `packaging/gunicorn.conf.py`) on its own
port, and each outbox worker its own `flask outbox work`; every process has its own instance
folder, so nothing is shared but the database and the environment an admin sets on each host
(`DATABASE_URL`, `REGULARS_SECRET_KEY`, `REGULARS_ENCRYPTION_KEYS`). The database is migrated,
the account registered and the rules imported once, with the commands an admin runs (`flask db
upgrade`, `flask zendesk register`, `flask rules import`, `flask segments recompute`).

`tests/e2e/test_scale_out.py` drives it; README, "Scale out: two processes, two workers, one
PostgreSQL", describes the deployment.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from sqlalchemy.engine import Engine

from bench import fake_zendesk
from bench.fake_zendesk import FakeZendeskServer
from bench.load import Client, Response
from bench.service import ORIGIN, SUBDOMAIN, free_port, launch_token, service_environment
from plugin import create_app, db
from plugin.clock import utcnow
from plugin.config import load_settings
from plugin.db import create_engine
from plugin.delivery.notes import marker_for
from plugin.demo.exceptions_seed import demo_rules_file
from plugin.demo.sample_data import build_sample_data
from plugin.demo.seed import insert_sample_customers
from plugin.helpdesks.zendesk_installations import zendesk_installation
from plugin.models import Action, Delivery, Rule
from tests import tokens

REPO = Path(__file__).resolve().parents[2]
GUNICORN_CONFIG = REPO / "packaging" / "gunicorn.conf.py"
STARTUP_SECONDS = 90.0
# A worker's hold on the actions it claimed. Production keeps the default (120 s); here a
# killed worker's actions are taken over after a few seconds, so the test stays short.
LEASE_SECONDS = 4
# How long a rule change made through one service process takes to be in force in another
# (README, "Scale out"): none. The suggestions card checks the rule book's fingerprint in the
# database on every request, so the first request any process starts after the change was
# committed evaluates the new rules. (What the banner reads is kept per process for at most
# REGULARS_READ_CACHE_SECONDS, 10 s; the rules, catalog and budgets are not.)
RULE_PROPAGATION_BOUND_SECONDS = 0.0
AGENTS = ("80001", "80002", "80003")
ADMIN = "80004"  # the fake account's admin: the console lets them in
_SESSION_TOKEN = re.compile(r'data-session-token="([^"]+)"')
_OFFER = re.compile(r'<li class="rg-offer" data-exception="([^"]+)" data-rule="([^"]+)"')
_STOPPED = re.compile(r"Outbox worker (\S+) stopped: (\d+) delivered \((\d+) found on the ticket")


class ScaleOutError(RuntimeError):
    """The deployment could not start or answer as expected; the message says what."""


# --- HTTP: bench.load.Client, one keep-alive connection to a service process ---------

# --- Processes ----------------------------------------------------------------------------


@dataclass
class Service:
    """One service process: gunicorn with the production configuration and one worker."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Worker:
    """One `flask outbox work` process."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass(frozen=True)
class WorkerReport:
    """What a worker said when it stopped: how many it delivered, how many it found there."""

    name: str
    delivered: int
    found_on_ticket: int
    takeovers: int


def _wait_for(check: Callable[[], bool], *, timeout: float, what: str, interval: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise ScaleOutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _stop(process: subprocess.Popen[bytes], *, timeout: float = 30.0) -> None:
    _stop_together([process], timeout=timeout)


def _stop_together(processes: list[subprocess.Popen[bytes]], *, timeout: float = 30.0) -> None:
    """SIGTERM them all, then wait for each; SIGKILL what has not stopped by the deadline."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _start_service(name: str, env: Mapping[str, str], folder: Path) -> Service:
    """`gunicorn -c packaging/gunicorn.conf.py 'plugin:create_app()'` on 127.0.0.1, 1 worker."""
    port = free_port()
    log = folder / f"service-{name}.log"
    environment = dict(env) | {
        "REGULARS_BIND": f"127.0.0.1:{port}",
        "REGULARS_WORKERS": "1",
        "REGULARS_THREADS": "4",
        "PROMETHEUS_MULTIPROC_DIR": str(folder / f"metrics-{name}"),
    }
    command = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), "plugin:create_app()"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=environment, stdout=out, stderr=subprocess.STDOUT
        )
    return Service(name=name, port=port, process=process, log=log)


def _wait_until_ready(service: Service) -> None:
    """Until /readyz answers 200: the database is reachable and at the expected migration."""
    probe = Client(service.port, timeout=2)

    def ready() -> bool:
        if service.process.poll() is not None:
            raise ScaleOutError(
                f"service {service.name} exited:\n{service.log.read_text()[-3000:]}"
            )
        try:
            return probe.get("/readyz").status == 200
        except OSError:
            probe.close()
            return False

    try:
        _wait_for(ready, timeout=STARTUP_SECONDS, what=f"service {service.name}", interval=0.1)
    finally:
        probe.close()


class Workers:
    """The outbox workers: started, SIGKILLed, stopped with their reports."""

    def __init__(self, env: Mapping[str, str], folder: Path) -> None:
        self._env = dict(env)
        self._folder = folder
        self.running: dict[str, Worker] = {}

    def start(self, name: str) -> Worker:
        log = self._folder / f"worker-{name}.log"
        command = [sys.executable, "-m", "flask", "--app", "plugin", "outbox", "work"]
        command += ["--worker-id", f"scale-out-{name}"]
        env = self._env | {"REGULARS_INSTANCE_PATH": str(self._folder / f"instance-worker-{name}")}
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        worker = Worker(name=name, process=process, log=log)
        self.running[name] = worker
        return worker

    def wait_started(self) -> None:
        """Until every running worker says it started (its app is loaded, it polls)."""

        def started() -> bool:
            self.check_alive()
            return all(
                "started" in worker.log.read_text(errors="replace")
                for worker in self.running.values()
            )

        _wait_for(started, timeout=STARTUP_SECONDS, what="the outbox workers", interval=0.05)

    def kill(self, name: str) -> None:
        """SIGKILL: no chance to finish or release what it holds."""
        worker = self.running.pop(name)
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait()

    def stop(self, name: str) -> WorkerReport:
        """SIGTERM, as a deployment stops a worker; what it said it did."""
        worker = self.running.pop(name)
        _stop(worker.process, timeout=30)
        text = worker.log.read_text(errors="replace")
        found = _STOPPED.search(text)
        if found is None:
            raise ScaleOutError(f"outbox worker {name} did not report:\n{text[-3000:]}")
        return WorkerReport(
            name=name,
            delivered=int(found.group(2)),
            found_on_ticket=int(found.group(3)),
            takeovers=text.count("lease ran out"),
        )

    def stop_all(self) -> list[WorkerReport]:
        _stop_together([worker.process for worker in self.running.values()])
        return [self.stop(name) for name in list(self.running)]

    def check_alive(self) -> None:
        for worker in self.running.values():
            if worker.process.poll() is not None:
                raise ScaleOutError(
                    f"outbox worker {worker.name} exited with {worker.process.returncode}:\n"
                    + worker.log.read_text(errors="replace")[-3000:]
                )

    def close(self) -> None:
        _stop_together([worker.process for worker in self.running.values()])
        self.running.clear()


# --- The deployment -----------------------------------------------------------------------


@dataclass
class Agent:
    """An agent's sidebar session, launched through one process, used through any."""

    user_id: str
    bearer: dict[str, str]


@dataclass(frozen=True)
class Notes:
    """The outbox's result as the fake Zendesk holds it, against the action log."""

    actions: int
    delivered: int
    dead: int
    open: int
    duplicates: int
    lost: int
    misplaced: int
    out_of_order_tickets: int


@dataclass
class Deployment:
    fake: FakeZendeskServer
    key: RSAPrivateKey
    engine: Engine
    services: dict[str, Service]
    workers: Workers
    folder: Path
    clients: dict[str, Client] = field(default_factory=dict)

    # Sessions

    def http(self, service: str) -> Client:
        """The test's own keep-alive connection to a service (one thread at a time)."""
        if service not in self.clients:
            self.clients[service] = Client(self.services[service].port)
        return self.clients[service]

    def sidebar_session(self, service: str, user_id: str) -> Agent:
        """Launch the sidebar through `service` as Zendesk does (a signed POST)."""
        return Agent(user_id, self._launch(service, "/sidebar", user_id))

    def console_session(self, service: str, user_id: str = ADMIN) -> dict[str, str]:
        """Launch the console through `service`: the bearer header its requests carry."""
        return self._launch(service, "/console", user_id)

    def _launch(self, service: str, path: str, user_id: str) -> dict[str, str]:
        # A connection of its own, as a browser's launch is: safe from any thread.
        client = Client(self.services[service].port)
        try:
            page = client.post_form(
                path,
                form={"token": launch_token(self.key, user_id)},
                query={"origin": ORIGIN, "app_guid": "scale-out"},
            )
        finally:
            client.close()
        found = _SESSION_TOKEN.search(page.text)
        if page.status != 200 or found is None:
            raise ScaleOutError(f"launching {path} failed: HTTP {page.status}\n{page.text[:500]}")
        return {"Authorization": f"Bearer {found.group(1)}"}

    # The sidebar

    def requester_of(self, ticket_id: int) -> str:
        with self.fake.app_state.lock:
            return str(self.fake.app_state.data.tickets[ticket_id]["requester_id"])

    def tickets(self) -> list[int]:
        with self.fake.app_state.lock:
            return sorted(self.fake.app_state.data.tickets)

    def card(self, service: str, agent: Agent, ticket_id: int) -> Response:
        return self.http(service).get(
            "/sidebar/suggestions",
            query={"ticket_id": str(ticket_id), "requester_id": self.requester_of(ticket_id)},
            headers=agent.bearer,
        )

    def offers(self, service: str, agent: Agent, ticket_id: int) -> list[tuple[str, str]]:
        """The card's offers as (exception, rule) pairs, as the service shows them now."""
        answer = self.card(service, agent, ticket_id)
        if answer.status != 200:
            raise ScaleOutError(f"card of ticket {ticket_id}: HTTP {answer.status}")
        return _OFFER.findall(answer.text)

    def act(self, client: Client, agent: Agent, form: Mapping[str, str]) -> Response:
        """POST the card's form, as its Apply or Dismiss button does."""
        return client.post_form("/sidebar/actions", form=form, headers=agent.bearer)

    def action_form(
        self, ticket_id: int, exception: str, kind: str, reason: str, key: str
    ) -> dict[str, str]:
        return {
            "ticket_id": str(ticket_id),
            "requester_id": self.requester_of(ticket_id),
            "exception": exception,
            "kind": kind,
            "reason": reason,
            "idempotency_key": key,
        }

    # The console

    def set_rule_enabled(self, service: str, console: dict[str, str], key: str, on: bool) -> None:
        """Turn a rule on or off through a service process's console, as a supervisor does."""
        with self.engine.connect() as connection:
            rule_id = connection.execute(sa.select(Rule.id).where(Rule.key == key)).scalar_one()
        answer = self.http(service).post_form(
            f"/console/rules/{rule_id}/enabled",
            form={"enabled": "true" if on else "false"},
            headers=console,
        )
        if answer.status != 200 or ("is on" if on else "is off") not in answer.text:
            raise ScaleOutError(f"turning {key} {'on' if on else 'off'}: HTTP {answer.status}")

    # The outbox

    def open_deliveries(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    sa.select(sa.func.count())
                    .select_from(Delivery)
                    .where(Delivery.status.in_(("pending", "in_flight")))
                ).scalar_one()
            )

    def wait_until_delivered(self, *, timeout: float) -> None:
        def done() -> bool:
            self.workers.check_alive()
            return self.open_deliveries() == 0

        _wait_for(done, timeout=timeout, what="the outbox to empty", interval=0.1)

    def notes_on(self, ticket_id: int) -> list[str]:
        with self.fake.app_state.lock:
            return [str(note["body"]) for note in self.fake.app_state.data.notes.get(ticket_id, [])]

    def notes(self) -> Notes:
        """Each action's marker looked for in every note the fake holds."""
        with self.fake.app_state.lock:
            bodies = {
                ticket: [str(note["body"]) for note in notes]
                for ticket, notes in self.fake.app_state.data.notes.items()
            }
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(Action.ticket_id, Action.idempotency_key, Delivery.status)
                .join(Delivery, Delivery.action_id == Action.id)
                .order_by(Action.id)
            ).all()
        duplicates = lost = misplaced = delivered = dead = still_open = 0
        order: dict[int, list[int]] = {}
        for ticket, key, status in rows:
            marker = marker_for(Action(idempotency_key=key))
            here = [i for i, body in enumerate(bodies.get(int(ticket), [])) if marker in body]
            everywhere = sum(marker in body for notes in bodies.values() for body in notes)
            delivered += status == "delivered"
            dead += status == "dead"
            still_open += status in ("pending", "in_flight")
            duplicates += max(0, everywhere - 1)
            misplaced += everywhere - len(here)
            lost += everywhere == 0 and status == "delivered"
            if here:
                order.setdefault(int(ticket), []).append(here[0])
        out_of_order = sum(positions != sorted(positions) for positions in order.values())
        return Notes(
            actions=len(rows),
            delivered=delivered,
            dead=dead,
            open=still_open,
            duplicates=duplicates,
            lost=lost,
            misplaced=misplaced,
            out_of_order_tickets=out_of_order,
        )

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        self.clients.clear()


class Admin:
    """What an admin runs once, with the service's own commands: `flask db upgrade`, `flask
    zendesk register` (the connection check included), `flask rules import`, `flask segments
    recompute`; and the shop's customers. In this process, to keep the test short: the
    service processes and workers start meanwhile."""

    def __init__(self, env: Mapping[str, str]) -> None:
        instance = Path(env["REGULARS_INSTANCE_PATH"])
        self.folder = instance
        self.app = create_app(load_settings(env, instance), instance_path=str(instance))

    def flask(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        result = self.app.test_cli_runner().invoke(args=list(args), env=env)
        if result.exit_code != 0:
            raise ScaleOutError(f"flask {' '.join(args[:2])} failed:\n{result.output}")

    def register(self, zendesk_url: str) -> None:
        self.flask(
            "zendesk",
            "register",
            "--subdomain",
            SUBDOMAIN,
            "--app-id",
            str(fake_zendesk.DEFAULT_APP_ID),
            "--email",
            fake_zendesk.ADMIN_EMAIL,
            "--api-base-url",
            zendesk_url,
            env={"ZENDESK_API_TOKEN": fake_zendesk.DEFAULT_API_TOKEN},
        )
        with db.database(self.app).sessions() as session:
            installation = zendesk_installation(session, SUBDOMAIN)
            if installation is None:
                raise ScaleOutError("the registered installation is not in the database")
            now = utcnow()
            insert_sample_customers(
                session, installation.id, build_sample_data(now.date()), now=now
            )
            session.commit()

    def seed_rules(self) -> None:
        """The demo's catalog, budgets and rules, and every customer's segment."""
        self.folder.mkdir(parents=True, exist_ok=True)
        rules = self.folder / "rules.json"
        rules.write_text(json.dumps(demo_rules_file()))
        self.flask("rules", "import", str(rules), "--installation", SUBDOMAIN, "--author", "admin")
        self.flask("segments", "recompute", "--installation", SUBDOMAIN)

    def close(self) -> None:
        self.app.extensions["regulars.helpdesks"].close()
        db.database(self.app).dispose()


@contextmanager
def deployment(database_url: str, folder: Path) -> Iterator[Deployment]:
    """Migrate and register once, then run services "a" and "b" and workers "1" and "2"."""
    key = tokens.new_key()
    data = fake_zendesk.from_sample_data(utcnow().date(), public_key_pem=tokens.public_pem(key))
    with ExitStack() as stack:
        fake = stack.enter_context(FakeZendeskServer(data, rate_limit=100_000))
        shared = service_environment(
            database_url=database_url,
            instance_path=folder / "instance-admin",
            secret_key="scale-out-" + Fernet.generate_key().decode(),
            encryption_key=Fernet.generate_key().decode(),
        ) | {
            # Four processes call Zendesk: each takes a fifth of the account's rate limit.
            "REGULARS_HELPDESK_BUDGET_SHARE": "0.2",
            "REGULARS_OUTBOX_IN_PROCESS": "false",
            "REGULARS_OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
            # No undo window: each action is sent at once, alone, and counted by its own note.
            "REGULARS_UNDO_SECONDS": "0",
            "PYTHONPATH": str(REPO),
        }
        admin = Admin(shared)
        stack.callback(admin.close)
        admin.flask("db", "upgrade")

        def own(name: str) -> dict[str, str]:
            # Each process has its own instance folder: only the database is shared.
            return shared | {"REGULARS_INSTANCE_PATH": str(folder / f"instance-{name}")}

        services = {name: _start_service(name, own(name), folder) for name in ("a", "b")}
        stack.callback(_stop_together, [service.process for service in services.values()])
        workers = Workers(shared, folder)
        stack.callback(workers.close)
        for name in ("1", "2"):
            workers.start(name)
        admin.register(fake.url)
        admin.seed_rules()
        engine = create_engine(database_url)
        stack.callback(engine.dispose)
        for service in services.values():
            _wait_until_ready(service)
        workers.wait_started()
        world = Deployment(
            fake=fake, key=key, engine=engine, services=services, workers=workers, folder=folder
        )
        stack.callback(world.close)
        yield world


def logs(folder: Path) -> str:
    """The tail of every process's log, for a failure's message."""
    parts = []
    for path in sorted(folder.glob("*.log")):
        parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}")
    return "\n".join(parts)
