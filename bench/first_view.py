"""The first view of a ticket that had a helpdesk event, in process: timed, profiled, its SQL.

    python -m bench.first_view [--views 80] [--database sqlite|postgresql]
                               [--profile [--sort tottime] [--lines 60 | --callees NAME]
                                | --by-package]
                               [--statements [--caller "SELECT ... FROM customers"]]
                               [--warm 2000]

What the benchmark's event replay (`bench/events_replay.py`) times under gunicorn, taken apart:
the bench's account and customers as `bench.benchmark` prepares them, a signed ticket event
for each of `--views` new requesters, the refresher run until the queue is empty, then each
ticket's whole view (the launch POST, then `/sidebar/view`) through the WSGI app in this
process, one after another, after five views that warm the installation's own caches. It
prints the launch's and the view's median wall time, the CPU per whole view, and with:

- `--profile`: cProfile of the timed views (`--sort`, `--lines`; `--callees NAME`: what the
  functions matching NAME call), or `--by-package`, its own time added up by package
  (SQLAlchemy, Jinja, Werkzeug, plugin/...);
- `--statements`: each SQL statement's count and time per view (the cursor's own time, on
  any thread), slowest first; with `--caller TEXT`, the plugin frames that ran the statements
  whose text (spaces squeezed) contains TEXT.
- `--warm N`: then N warm banners of the same tickets (`/sidebar/banner`, as the throughput
  bench asks for them) and N no-op requests (`/healthz`), in rounds taken in turn: the CPU
  of each a request and their ratio, what the warm / no-op throughput target turns on. The
  profile and the statements are then the warm banners'.

The fake Zendesk answers in 20 ms; a view of an event's ticket makes no call.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from flask.testing import FlaskClient

from bench import events_replay, workload
from bench.agent_view import page_query, timing_parts_ms
from bench.banner_load import agent_id
from bench.benchmark import Options, database, fake_zendesk_process
from bench.service import ORIGIN, prepare_database, service_environment
from bench.service import launch_token as signed_launch
from plugin import create_app, db
from plugin.clock import utcnow
from plugin.config import load_settings
from plugin.helpdesks.zendesk_webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_for
from plugin.sidebar.event_cli import refresher_for

WARMUP_VIEWS = 5
_SESSION_TOKEN = re.compile(r'data-session-token="([^"]+)"')


@dataclass
class Statements:
    """Each statement's count and cursor time, and who ran the ones asked about."""

    caller: str | None
    timed: dict[str, list[float]] = field(default_factory=dict)
    stacks: dict[str, int] = field(default_factory=dict)

    @contextmanager
    def listening(self, engine: sa.Engine) -> Iterator[None]:
        started: dict[int, float] = {}

        def before(_c: Any, cursor: Any, statement: str, *_: Any) -> None:
            started[id(cursor)] = time.perf_counter()
            if self.caller and self.caller in " ".join(statement.split()):
                frames = "".join(
                    f"    {frame.filename.rsplit('/plugin/', 1)[-1]}:{frame.lineno} {frame.name}\n"
                    for frame in traceback.extract_stack()
                    if f"{os.sep}plugin{os.sep}" in frame.filename
                )
                self.stacks[frames] = self.stacks.get(frames, 0) + 1

        def after(_c: Any, cursor: Any, statement: str, *_: Any) -> None:
            seconds = time.perf_counter() - started.pop(id(cursor), time.perf_counter())
            self.timed.setdefault(" ".join(statement.split()), []).append(seconds)

        sa.event.listen(engine, "before_cursor_execute", before)
        sa.event.listen(engine, "after_cursor_execute", after)
        try:
            yield
        finally:
            sa.event.remove(engine, "before_cursor_execute", before)
            sa.event.remove(engine, "after_cursor_execute", after)

    def report(self, views: int) -> None:
        count = sum(len(times) for times in self.timed.values())
        print(f"{count / views:.1f} statements per view")
        slowest = sorted(self.timed.items(), key=lambda item: -sum(item[1]))
        for statement, times in slowest[:30]:
            print(f"{len(times):5d} {1000 * sum(times) / views:7.3f} ms/view  {statement[:150]}")
        for frames, times_run in self.stacks.items():
            print(f"{times_run} times from:\n{frames}")


def _events_sent(client: FlaskClient, installation_id: int, views: Sequence[workload.View]) -> None:
    for view in views:
        body = events_replay._event_body(view)
        stamp = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_for(events_replay.SECRET, stamp, body),
            TIMESTAMP_HEADER: stamp,
        }
        answer = client.post(f"/events/zendesk/{installation_id}", data=body, headers=headers)
        if answer.status_code != 202:
            raise SystemExit(f"an event was refused: HTTP {answer.status_code}")


def _whole_view(
    client: FlaskClient, key: RSAPrivateKey, view: workload.View
) -> tuple[float, float, dict[str, float]]:
    """The launch, then the view: each one's wall time in milliseconds, and the view's parts'
    (banner, cards) server time as its Server-Timing gives them."""
    token = signed_launch(key, agent_id(view.agent))
    started = time.perf_counter()
    page = client.post(
        "/sidebar", query_string={"origin": ORIGIN, "app_guid": "bench"}, data={"token": token}
    )
    launched = time.perf_counter()
    found = _SESSION_TOKEN.search(page.get_data(as_text=True))
    if page.status_code != 200 or found is None:
        raise SystemExit(f"the launch failed: HTTP {page.status_code}")
    ticket = workload.Ticket(view.ticket_id, view.requester_id, days_ago=0)
    answer = client.get(
        "/sidebar/view",
        query_string=page_query(ticket),
        headers={"Authorization": f"Bearer {found.group(1)}", "Accept": "text/html"},
    )
    done = time.perf_counter()
    if answer.status_code != 200 or 'id="rg-suggestions"' not in answer.get_data(as_text=True):
        raise SystemExit(f"the view failed: HTTP {answer.status_code}")
    return (
        1000 * (launched - started),
        1000 * (done - launched),
        timing_parts_ms(answer.headers.get("server-timing", "")),
    )


def _by_package(profile: cProfile.Profile, views: int) -> None:
    """The profile's own time added up by package, per view."""
    totals: dict[str, float] = {}
    stats: Any = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, own, _cum, _callers) in stats.items():
        if "site-packages/" in filename:
            where = filename.split("site-packages/")[1].split("/")[0]
        elif f"{os.sep}plugin{os.sep}" in filename:
            where = "plugin/" + filename.rsplit(f"{os.sep}plugin{os.sep}", 1)[1].split(os.sep)[0]
        elif f"{os.sep}templates{os.sep}" in filename:
            where = "templates"
        elif filename == "~":
            where = name[:40]
        else:
            where = Path(filename).name
        totals[where] = totals.get(where, 0.0) + own
    whole = sum(totals.values())
    for where, own in sorted(totals.items(), key=lambda item: -item[1])[:25]:
        print(f"{100 * own / whole:5.1f} %  {1000 * own / views:6.2f} ms/view  {where}")


def run(arguments: argparse.Namespace) -> None:
    options = Options()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    trace = workload.build_trace(options.trace)
    new_requesters: dict[str, workload.View] = {}
    for view in trace.views:
        if view.new_ticket:
            new_requesters.setdefault(str(view.requester_id), view)
    picked = list(new_requesters.values())[: arguments.views + WARMUP_VIEWS]
    with (
        tempfile.TemporaryDirectory(prefix="regulars-first-view-") as folder,
        fake_zendesk_process(Path(folder), key, trace, 20.0) as zendesk_port,
        database(arguments.database, Path(folder)) as url,
    ):
        env = service_environment(
            database_url=url,
            instance_path=Path(folder) / "instance",
            secret_key="bench-secret-" + Fernet.generate_key().decode(),
            encryption_key=Fernet.generate_key().decode(),
        )
        prepare_database(
            env,
            zendesk_url=f"http://127.0.0.1:{zendesk_port}",
            customers=workload.shop_customers(trace.account, today=utcnow().date()),
        )
        installation_id = events_replay._enable_events(env)
        instance = env["REGULARS_INSTANCE_PATH"]
        app = create_app(load_settings(env, Path(instance)), instance_path=instance)
        client = app.test_client()
        _events_sent(client, installation_id, picked)
        print("refreshed:", refresher_for(app).run(until_empty=True))
        for view in picked[:WARMUP_VIEWS]:
            _whole_view(client, key, view)
        timed = picked[WARMUP_VIEWS:]
        statements = Statements(arguments.caller)
        profile = cProfile.Profile() if arguments.profile or arguments.by_package else None
        launches: list[float] = []
        views: list[float] = []
        parts: dict[str, list[float]] = {}
        with statements.listening(db.database(app).engine) if arguments.statements else _nothing():
            cpu, wall = time.process_time(), time.perf_counter()
            if profile is not None:
                profile.enable()
            for view in timed:
                launch_ms, view_ms, view_parts = _whole_view(client, key, view)
                launches.append(launch_ms)
                views.append(view_ms)
                for name, ms in view_parts.items():
                    parts.setdefault(name, []).append(ms)
            if profile is not None:
                profile.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"{len(timed)} views: launch p50 {statistics.median(launches):.2f} ms, view p50 "
            f"{statistics.median(views):.2f} ms; per whole view {1000 * cpu / len(timed):.2f} ms "
            f"of CPU, {1000 * wall / len(timed):.2f} ms of wall time"
        )
        print(
            "the view's parts, p50:",
            ", ".join(f"{name} {statistics.median(ms):.2f} ms" for name, ms in parts.items()),
        )
        counted = len(timed)
        if arguments.warm:
            # The throughput bench's warm banner and no-op, each its CPU a request; the
            # profile and the statements are then the warm banners'.
            profile = cProfile.Profile() if profile is not None else None
            statements = Statements(arguments.caller)
            counted = arguments.warm
            with (
                statements.listening(db.database(app).engine)
                if arguments.statements
                else _nothing()
            ):
                _warm_and_noop(client, key, timed, arguments.warm, profile)
        if arguments.statements:
            statements.report(counted)
        if profile is not None and arguments.by_package:
            _by_package(profile, counted)
        elif profile is not None:
            stats = pstats.Stats(profile).sort_stats(arguments.sort)
            if arguments.callees:
                stats.print_callees(arguments.callees)
            else:
                stats.print_stats(arguments.lines)
        app.extensions["regulars.helpdesks"].close()
        db.database(app).dispose()


def _warm_and_noop(
    client: FlaskClient,
    key: RSAPrivateKey,
    views: Sequence[workload.View],
    requests: int,
    profile: cProfile.Profile | None,
) -> None:
    """`requests` warm banners of the tickets just viewed, round the tickets as an agent's
    page asks for them, against as many no-op requests (`/healthz`): CPU per request, in
    rounds taken in turn."""
    sessions = []
    for view in views:
        page = client.post(
            "/sidebar",
            query_string={"origin": ORIGIN, "app_guid": "bench"},
            data={"token": signed_launch(key, agent_id(view.agent))},
        )
        found = _SESSION_TOKEN.search(page.get_data(as_text=True))
        assert found is not None, "the launch answered its page"
        ticket = workload.Ticket(view.ticket_id, view.requester_id, days_ago=0)
        sessions.append((found.group(1), page_query(ticket)))

    def banner(n: int) -> None:
        token, query = sessions[n % len(sessions)]
        answer = client.get(
            "/sidebar/banner",
            query_string=query,
            headers={"Authorization": f"Bearer {token}", "Accept": "text/html"},
        )
        assert answer.status_code == 200, answer.status_code

    def noop(_n: int) -> None:
        assert client.get("/healthz").status_code == 200

    for n in range(len(sessions)):
        banner(n)  # every ticket's banner rendered once: what follows is warm
    cpu: dict[str, list[float]] = {"banner": [], "noop": []}
    rounds = 5
    for _ in range(rounds):
        for name, request in (("banner", banner), ("noop", noop)):
            if profile is not None and name == "banner":
                profile.enable()
            started = time.process_time()
            for n in range(requests // rounds):
                request(n)
            cpu[name].append(1000 * (time.process_time() - started) / (requests // rounds))
            if profile is not None and name == "banner":
                profile.disable()
    warm, idle = statistics.median(cpu["banner"]), statistics.median(cpu["noop"])
    print(
        f"warm banner {warm:.3f} ms of CPU a request, no-op {idle:.3f} ms "
        f"(medians of {rounds} rounds): warm / no-op CPU {warm / idle:.2f}"
    )


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=80, help="timed views (new requesters)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--warm", type=int, default=0, help="then N warm banners against N no-op requests"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the timed views")
    parser.add_argument("--by-package", action="store_true", help="profile, added up by package")
    parser.add_argument("--sort", default="cumulative", help="the profile's order")
    parser.add_argument("--lines", type=int, default=60, help="the profile's lines")
    parser.add_argument("--callees", help="with --profile: what the functions matching this call")
    parser.add_argument("--statements", action="store_true", help="each SQL statement's time")
    parser.add_argument("--caller", help="with --statements: who runs statements with this text")
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
