"""Run the service as in production for a benchmark: migrated, registered, seeded, gunicorn.

Everything an admin would do goes through the same commands: `flask db upgrade` and `flask
zendesk register` (the API token in ZENDESK_API_TOKEN) against the fake Zendesk; the shop's
customers are inserted with the demo's seeding helper. The service then runs under gunicorn on
127.0.0.1, configured only by environment variables, with one secret key and one credentials
key shared by its workers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from bench import fake_zendesk
from bench.load import Client, Response
from plugin import create_app, db
from plugin.clock import utcnow
from plugin.config import load_settings
from plugin.demo.exceptions_seed import demo_rules_file
from plugin.demo.reviews_seed import HIGH_VALUE_REVIEW
from plugin.demo.sample_data import SampleCustomer, build_sample_data
from plugin.demo.seed import insert_sample_customers
from plugin.helpdesks.zendesk_installations import zendesk_installation
from plugin.reviews.checklists import save_template

REPO = Path(__file__).resolve().parent.parent
SUBDOMAIN = "bench"
ORIGIN = f"https://{SUBDOMAIN}.zendesk.com"
AUDIENCE = f"{ORIGIN}/api/v2/apps/installations/{fake_zendesk.DEFAULT_INSTALLATION_ID}.json"
STARTUP_SECONDS = 30.0
PRODUCTION_CONFIG = REPO / "packaging" / "gunicorn.conf.py"
_SESSION_TOKEN = re.compile(r'data-session-token="([^"]+)"')


class BenchError(RuntimeError):
    """The benchmark could not set up or measure something; the message says what."""


@dataclass(frozen=True)
class Gunicorn:
    """How gunicorn runs the service: gthread workers, each with request threads."""

    workers: int = 2
    threads: int = 8
    keepalive_seconds: int = 5
    # Also read packaging/gunicorn.conf.py, as production does (JSON logs, each worker's
    # share of the rate limits, metrics added up over the workers, request timeouts).
    production_config: bool = False
    # With the production configuration: requests before a worker is replaced (None: its
    # default), to make restarts happen within a run.
    max_requests: int | None = None

    def describe(self) -> dict[str, object]:
        return (
            {
                "worker_class": "gthread",
                "workers": self.workers,
                "threads": self.threads,
                "keepalive_seconds": self.keepalive_seconds,
            }
            | (
                {"config": str(PRODUCTION_CONFIG.relative_to(REPO))}
                if self.production_config
                else {}
            )
            | ({"max_requests": self.max_requests} if self.max_requests is not None else {})
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def service_environment(
    *, database_url: str, instance_path: Path, secret_key: str, encryption_key: str
) -> dict[str, str]:
    """The production-like environment: no demo, explicit shared keys, quiet logs."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("REGULARS_", "ZENDESK_")) and name != "DATABASE_URL"
    }
    return env | {
        "DATABASE_URL": database_url,
        "REGULARS_INSTANCE_PATH": str(instance_path),
        "REGULARS_SECRET_KEY": secret_key,
        "REGULARS_ENCRYPTION_KEYS": encryption_key,
        "REGULARS_DEMO": "false",
        "REGULARS_LOG_LEVEL": "WARNING",
    }


def _flask(env: Mapping[str, str], *args: str) -> str:
    command = [sys.executable, "-m", "flask", "--app", "plugin", *args]
    done = subprocess.run(
        command, env=dict(env), cwd=REPO, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"{' '.join(args[:2])} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def prepare_database(
    env: Mapping[str, str], *, zendesk_url: str, customers: list[SampleCustomer]
) -> None:
    """Migrate, register the fake's account (checking the connection), add the customers."""
    _flask(env, "db", "upgrade")
    _flask(
        dict(env) | {"ZENDESK_API_TOKEN": fake_zendesk.DEFAULT_API_TOKEN},
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
    )
    instance = Path(env["REGULARS_INSTANCE_PATH"])
    app = create_app(load_settings(env, instance), instance_path=str(instance))
    try:
        with db.database(app).sessions() as session:
            installation = zendesk_installation(session, SUBDOMAIN)
            if installation is None:
                raise BenchError("the registered installation is not in the database")
            now = utcnow()
            sample = build_sample_data(now.date())
            data = type(sample)(
                customers=(*sample.customers, *customers),
                agents=sample.agents,
                tickets=sample.tickets,
            )
            insert_sample_customers(session, installation.id, data, now=now)
            session.commit()
    finally:
        app.extensions["regulars.helpdesks"].close()
        db.database(app).dispose()


def seed_rules_and_reviews(env: Mapping[str, str]) -> None:
    """Give the registered installation what the suggestions and review cards need.

    The demo's catalog, budgets and rules through `flask rules import`, value tiers set from
    the customers' own spread (`flask segments suggest-tiers --apply`) and every customer's
    segment through `flask segments recompute`, as a supervisor and the nightly job would;
    and the demo's account review checklist for high-value customers.
    """
    instance = Path(env["REGULARS_INSTANCE_PATH"])
    instance.mkdir(parents=True, exist_ok=True)
    rules = instance / "bench-rules.json"
    rules.write_text(json.dumps(demo_rules_file()))
    _flask(env, "rules", "import", str(rules), "--installation", SUBDOMAIN, "--author", "bench")
    _flask(env, "segments", "suggest-tiers", "--installation", SUBDOMAIN, "--apply")
    _flask(env, "segments", "recompute", "--installation", SUBDOMAIN)
    app = create_app(load_settings(env, instance), instance_path=str(instance))
    try:
        with db.database(app).sessions() as session:
            installation = zendesk_installation(session, SUBDOMAIN)
            if installation is None:
                raise BenchError("the registered installation is not in the database")
            save_template(session, installation, HIGH_VALUE_REVIEW, now=utcnow())
    finally:
        app.extensions["regulars.helpdesks"].close()
        db.database(app).dispose()


@contextmanager
def fake_account_process(
    workdir: Path,
    *,
    public_key_pem: bytes,
    records: Mapping[str, object],
    latency_ms: float,
    rate_limit: int,
) -> Iterator[int]:
    """Run bench.fake_account (the fake Zendesk plus `records`) as its own process; its port."""
    key_file = workdir / "app_public_key.pem"
    key_file.write_bytes(public_key_pem)
    account_file = workdir / "account.json"
    account_file.write_text(json.dumps(records))
    command = [
        sys.executable,
        "-m",
        "bench.fake_account",
        "--public-key-file",
        str(key_file),
        "--account-file",
        str(account_file),
        "--latency-ms",
        str(latency_ms),
        "--rate-limit",
        str(rate_limit),
    ]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)", url)
            if match is None:
                raise BenchError(f"the fake Zendesk did not start (it printed {url!r})")
            yield int(match.group(1))
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@dataclass
class RunningService:
    port: int
    process: subprocess.Popen[bytes]

    def worker_pids(self) -> list[int]:
        """The gunicorn workers: the master's children."""
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The fields after the command name (which may hold spaces) start at its ')'.
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[1]) == self.process.pid:
                children.append(int(entry.name))
        return children

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the master and its workers have used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in (self.process.pid, *self.worker_pids()):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        return total


@contextmanager
def gunicorn(env: Mapping[str, str], config: Gunicorn, log_file: Path) -> Iterator[RunningService]:
    """Serve `plugin:create_app()` under gunicorn on 127.0.0.1 until the block ends."""
    port = free_port()
    env = dict(env)
    production = ["-c", str(PRODUCTION_CONFIG)] if config.production_config else []
    if config.production_config:
        # What the configuration file reads; the command line below still has the last word.
        env |= {
            "REGULARS_BIND": f"127.0.0.1:{port}",
            "REGULARS_WORKERS": str(config.workers),
            "REGULARS_THREADS": str(config.threads),
            "PROMETHEUS_MULTIPROC_DIR": str(log_file.parent / f"metrics-{port}"),
        }
        if config.max_requests is not None:
            env["REGULARS_MAX_REQUESTS"] = str(config.max_requests)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        *production,
        "plugin:create_app()",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(config.workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(config.threads),
        "--keep-alive",
        str(config.keepalive_seconds),
        "--log-level",
        "warning",
    ]
    with log_file.open("ab") as log:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    service = RunningService(port=port, process=process)
    try:
        _wait_until_serving(service, config.workers, log_file)
        yield service
    except BenchError as error:
        # What the service logged is the first thing to read when a measurement fails.
        raise BenchError(f"{error}\n--- gunicorn's log:\n{log_file.read_text()[-4000:]}") from None
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(service: RunningService, workers: int, log_file: Path) -> None:
    """Wait for /healthz and for every worker: the first measurements must not wait for one."""
    deadline = time.monotonic() + STARTUP_SECONDS
    client = Client(service.port, timeout=2)
    try:
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise BenchError(f"gunicorn exited:\n{log_file.read_text()[-3000:]}")
            try:
                serving = client.get("/healthz").status == 200
                if serving and len(service.worker_pids()) >= workers:
                    _touch_workers(service.port, workers)
                    return
            except OSError:
                client.close()
            time.sleep(0.1)
    finally:
        client.close()
    raise BenchError(f"gunicorn did not serve within {STARTUP_SECONDS:.0f} s")


def _touch_workers(port: int, workers: int) -> None:
    """Send requests on fresh connections so that each worker has served (and loaded) once."""
    for _ in range(10 * workers):
        client = Client(port, timeout=10)
        try:
            client.get("/healthz")
        finally:
            client.close()


def launch_token(key: RSAPrivateKey, agent_id: str) -> str:
    """Sign a launch token as Zendesk does for the app's installation."""
    now = datetime.now(UTC)
    return jwt.encode(
        {
            "iss": f"{SUBDOMAIN}.zendesk.com",
            "aud": AUDIENCE,
            "sub": agent_id,
            "iat": now,
            "exp": now + timedelta(minutes=5),
        },
        key,
        algorithm="RS256",
    )


def launch(client: Client, token: str) -> tuple[Response, str]:
    """POST the signed launch as Zendesk does; return the page and its session token."""
    page = client.post_form(
        "/sidebar", query={"origin": ORIGIN, "app_guid": "bench"}, form={"token": token}
    )
    match = _SESSION_TOKEN.search(page.text)
    if page.status != 200 or match is None:
        raise BenchError(f"the sidebar launch failed: HTTP {page.status}\n{page.text[:500]}")
    return page, match.group(1)


def report(
    name: str,
    argv: Sequence[str] | None,
    run: Callable[[], dict[str, Any]],
    summary: Callable[[dict[str, Any]], list[str]],
    output: Path | None,
) -> dict[str, Any] | None:
    """Run a bench command: its JSON on stdout (and in `output`), its summary on stderr.

    None, with the reason on stderr, when the run could not set up or measure something.
    """
    command = " ".join([f"python -m bench.{name}", *(argv if argv is not None else sys.argv[1:])])
    try:
        results = {"command": command} | run()
    except BenchError as error:
        print(f"{name} failed: {error}", file=sys.stderr)
        return None
    text = json.dumps(results, indent=2)
    print(text)
    print("\n".join(summary(results)), file=sys.stderr)
    if output:
        output.write_text(text + "\n")
    return results
