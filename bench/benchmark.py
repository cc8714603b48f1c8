"""How fast the sidebar is and what it costs the helpdesk, measured end to end; prints JSON.

    python -m bench.benchmark [--quick] [--database sqlite|postgresql ...] [--latency-ms 100]

One run starts a fake Zendesk API on 127.0.0.1 (a set latency per call; it counts the calls
it gets) serving the demo's data plus a synthetic account (bench/workload.py), and then, for
each database, the service under gunicorn on 127.0.0.1 in a production-like configuration
(migrated with `flask db upgrade`, the account registered with `flask zendesk register`, no
demo, shared keys), and measures:

- sidebar latency, cold (nothing cached: the ticket and the requester's history in one
  parallel wave) and warm (the ticket reopened within the cache TTL), one view at a time;
- sidebar renders per second at saturation (warm views from 16 clients), and the server's CPU
  time per render; the same two figures for the no-op route `/healthz`;
- upstream calls per ticket view on a replayed trace of ticket views (agents, customers drawn
  from a Zipf law, tickets reopened), with the cache TTLs in force, next to what a model of
  the cache predicts for one shared cache and for one cache per worker;
- the bytes one sidebar view transfers: the launch page, its CSS and JS, the banner (not the
  helpdesk's SDK);
- the same latency, throughput and call figures for a naive configuration (no cache, and the
  ticket and the history fetched one after the other), for the ratios.

The trace is replayed 120 times faster than it was simulated (`Options.speedup`), with the
cache TTLs and the fake's latency divided by the same factor, so that the cache sees the
trace's time scale. The load generator runs on the same two cores as the server and competes
with it for CPU: the server's own CPU time per request is printed next to each throughput for
that reason.
`--quick` is the short version CI runs: SQLite only, one worker, fewer views, shorter loops.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from bench import events_replay, workload
from bench.agent_view import one_upstream_call, views_one_at_a_time
from bench.banner_load import (
    PRODUCTION_TTLS,
    Saturation,
    agent_id,
    banner_requests,
    noop_latency,
    noop_request,
    one_at_a_time,
    prewarm,
    repeat,
    replay,
    saturate,
    view_bytes,
)
from bench.load import Client, percentiles
from bench.service import (
    BenchError,
    Gunicorn,
    fake_account_process,
    gunicorn,
    launch_token,
    prepare_database,
    report,
    service_environment,
)
from bench.targets import assess, summary
from plugin.clock import utcnow

JSONObject = dict[str, Any]
# High enough that the fake never refuses a call: the benchmark counts demand, not throttling.
FAKE_RATE_LIMIT = 10_000_000
NO_RESTARTS = 100_000_000


@dataclass(frozen=True)
class Options:
    """What one run measures, and how hard."""

    databases: tuple[str, ...] = ("sqlite", "postgresql")
    latency_ms: float = 100.0
    cold_views: int = 60
    naive_cold_views: int = 40
    warm_tickets: int = 20
    warm_views: int = 300
    # Whole views (launch, banner, cards: bench/agent_view.py), cold and warm.
    cold_agent_views: int = 40
    warm_agent_views: int = 100
    noop_views: int = 300
    upstream_calls: int = 30
    concurrency: int = 16
    # In all, per configuration: split into rounds that alternate with the no-op route's.
    saturation_seconds: float = 9.0
    saturation_rounds: int = 3
    speedup: int = 120
    trace: workload.TraceConfig = field(default_factory=workload.TraceConfig)
    # Served as in production (packaging/gunicorn.conf.py: JSON access logs and all), except
    # that no worker is replaced within a run, where it would only drop the caches it warmed.
    gunicorn: Gunicorn = field(
        default_factory=lambda: Gunicorn(production_config=True, max_requests=NO_RESTARTS)
    )

    @classmethod
    def quick(cls) -> Options:
        """The CI version: SQLite only, a short trace, short loops; same structure."""
        return cls(
            databases=("sqlite",),
            latency_ms=20.0,
            cold_views=10,
            naive_cold_views=6,
            warm_tickets=5,
            warm_views=40,
            noop_views=40,
            cold_agent_views=8,
            warm_agent_views=20,
            upstream_calls=10,
            concurrency=4,
            saturation_seconds=1.5,
            saturation_rounds=1,
            speedup=120,
            trace=replace(workload.TraceConfig(), agents=6, minutes=12, warmup_minutes=4),
            # One worker, one cache: which worker a view lands on cannot make a warm view cost
            # a call, so the call counts the test checks are exact.
            gunicorn=Gunicorn(
                workers=1, threads=8, production_config=True, max_requests=NO_RESTARTS
            ),
        )


@dataclass(frozen=True)
class Bench:
    """What every phase needs: the fake, the signing key, the account and the trace."""

    options: Options
    zendesk_port: int
    key: RSAPrivateKey
    trace: workload.Trace
    workdir: Path
    # One upstream call's latency as measured (p50), the unit of the cold-latency target.
    upstream_ms: float

    # --- The fake's counters --------------------------------------------------------------

    def zendesk(self, method: str, path: str, body: JSONObject | None = None) -> JSONObject:
        client = Client(self.zendesk_port)
        try:
            answer = client.get(path) if method == "GET" else client.post_json(path, body or {})
        finally:
            client.close()
        if answer.status != 200:
            raise BenchError(f"the fake Zendesk answered {answer.status} to {path}")
        result: JSONObject = json.loads(answer.body)
        return result

    def reset_calls(self) -> None:
        self.zendesk("POST", "/_fake/reset")

    def calls(self) -> dict[str, int]:
        stats = self.zendesk("GET", "/_fake/stats")
        return {name: int(count) for name, count in stats["calls"].items()}

    def set_latency(self, latency_ms: float) -> None:
        self.zendesk("POST", "/_fake/config", {"latency_ms": latency_ms})


# --- The pieces of a run ---------------------------------------------------------------------


def run(options: Options) -> JSONObject:
    """Run every measurement the options ask for; return the results as JSON-ready data."""
    started = time.monotonic()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    trace = workload.build_trace(options.trace)
    results: JSONObject = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1_5_15_min_at_start": [round(load, 2) for load in os.getloadavg()],
        },
        "setup": setup_description(options, trace),
    }
    with tempfile.TemporaryDirectory(prefix="regulars-bench-") as folder:
        workdir = Path(folder)
        with fake_zendesk_process(workdir, key, trace, options.latency_ms) as zendesk_port:
            upstream = upstream_call_latency(
                zendesk_port, trace.account.tickets[0].id, options.upstream_calls
            )
            results["setup"]["upstream_call_latency_ms"] = upstream
            bench = Bench(options, zendesk_port, key, trace, workdir, upstream["p50_ms"])
            bench.reset_calls()
            for kind in options.databases:
                with database(kind, workdir) as url:
                    results[kind] = measure_database(bench, kind, url)
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)
    # Anything else the machine ran meanwhile slowed the figures: say how busy it was.
    results["machine"]["load_average_1_5_15_min_at_end"] = [
        round(load, 2) for load in os.getloadavg()
    ]
    return results


def upstream_call_latency(zendesk_port: int, ticket_id: int, calls: int) -> JSONObject:
    """One upstream call as the service makes it (a ticket, its users sideloaded), timed from
    here: the fake's set latency plus its own work and the loopback round trip."""
    return percentiles([one_upstream_call(zendesk_port, ticket_id) for _ in range(calls)])


def setup_description(options: Options, trace: workload.Trace) -> JSONObject:
    counted = trace.counted_views
    return {
        "gunicorn": options.gunicorn.describe(),
        "upstream_latency_ms": options.latency_ms,
        "cache_ttl_seconds": PRODUCTION_TTLS,
        "load": {
            "concurrency": options.concurrency,
            "saturation_seconds": options.saturation_seconds,
            "generator": "python threads, http.client keep-alive, on the same cores",
        },
        "trace": asdict(options.trace)
        | {
            "views": len(trace.views),
            "counted_views": len(counted),
            "new_ticket_views": sum(view.new_ticket for view in counted),
            "distinct_tickets": len({view.ticket_id for view in counted}),
            "replay_speedup": options.speedup,
        },
    }


@contextmanager
def fake_zendesk_process(
    workdir: Path, key: RSAPrivateKey, trace: workload.Trace, latency_ms: float
) -> Iterator[int]:
    """Run bench.fake_account with the trace's account as its own process; yield its port."""
    with fake_account_process(
        workdir,
        public_key_pem=key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        records=workload.zendesk_records(trace.account, today=utcnow().date()),
        latency_ms=latency_ms,
        rate_limit=FAKE_RATE_LIMIT,
    ) as port:
        yield port


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or a database on a throwaway PostgreSQL cluster."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'regulars.sqlite3'}"
        return
    if kind != "postgresql":
        raise BenchError(f"unknown database {kind!r}")
    from tests.postgres_cluster import create_database, throwaway_cluster

    with throwaway_cluster() as base_url:
        yield create_database(base_url)


def measure_database(bench: Bench, kind: str, url: str) -> JSONObject:
    """Every figure for one database: tuned and naive configurations, then the ratios."""
    options = bench.options
    instance = bench.workdir / f"instance-{kind}"
    env = service_environment(
        database_url=url,
        instance_path=instance,
        secret_key="bench-secret-" + Fernet.generate_key().decode(),
        encryption_key=Fernet.generate_key().decode(),
    ) | {"REGULARS_HELPDESK_BUDGET_SHARE": str(round(0.8 / options.gunicorn.workers, 3))}
    # The service learns the fake's URL from the registration, as it would a proxy's.
    prepare_database(
        env,
        zendesk_url=f"http://127.0.0.1:{bench.zendesk_port}",
        customers=workload.shop_customers(bench.trace.account, today=utcnow().date()),
    )
    log = bench.workdir / f"gunicorn-{kind}.log"
    cold_tickets, naive_cold_tickets, warm_tickets, cold_view_tickets = _ticket_sets(bench)

    def token() -> str:
        return launch_token(bench.key, agent_id(0))

    tuned: JSONObject = {}
    noop: JSONObject = {}
    with gunicorn(env, options.gunicorn, log) as service:
        tuned["latency_ms"] = {
            "cold": one_at_a_time(bench, service, cold_tickets, hint=True),
        }
        bench.reset_calls()
        cold_views = views_one_at_a_time(
            service, cold_view_tickets, token, zendesk_port=bench.zendesk_port
        )
        # Less the one call timed beside each view.
        cold_views["upstream_calls_per_view"] = round(
            (sum(bench.calls().values()) - len(cold_view_tickets)) / len(cold_view_tickets), 3
        )
        tuned["view_ms"] = {"cold": cold_views}
        prewarm(bench, service, warm_tickets)
        tuned["latency_ms"]["warm"] = one_at_a_time(
            bench, service, repeat(warm_tickets, options.warm_views), hint=True
        )
        bench.reset_calls()
        warm_views = views_one_at_a_time(
            service, repeat(warm_tickets, options.warm_agent_views), token
        )
        warm_views["upstream_calls_per_view"] = round(
            sum(bench.calls().values()) / options.warm_agent_views, 3
        )
        tuned["view_ms"]["warm"] = warm_views
        noop["latency_ms"] = noop_latency(service, options.noop_views)
        # Rounds of the sidebar and of the no-op route take turns, so that whatever else the
        # machine does slows both alike; the median round of each is the figure.
        warm, idle = Saturation(), Saturation()
        setup, request = banner_requests(bench, warm_tickets, hint=True)
        for _ in range(options.saturation_rounds):
            saturate(bench, service, request, warm, setup)
            saturate(bench, service, noop_request, idle)
        tuned |= warm.figures("render")
        noop |= idle.figures("request")
        bytes_per_view = view_bytes(bench, service, warm_tickets[0])
    ttl_scale = {
        "REGULARS_TICKET_CACHE_SECONDS": _scaled(PRODUCTION_TTLS["ticket"], options.speedup),
        "REGULARS_HISTORY_CACHE_SECONDS": _scaled(PRODUCTION_TTLS["history"], options.speedup),
    }
    with gunicorn(env | ttl_scale, options.gunicorn, log) as service:
        tuned["upstream_calls_per_view"] = replay(bench, service, hint=True)
    # The same trace with helpdesk events ahead of new tickets' first views, every one
    # arriving and a fifth lost; each on a fresh service and an empty shared cache.
    for name, lost in (("events", 0.0), ("events_20_percent_lost", 0.2)):
        with gunicorn(env | ttl_scale, options.gunicorn, log) as service:
            tuned[name] = events_replay.replay_with_events(
                bench, service, env | ttl_scale, events_replay.EventPlan(lost_share=lost)
            )

    naive: JSONObject = {}
    no_cache = {
        "REGULARS_TICKET_CACHE_SECONDS": "0",
        "REGULARS_HISTORY_CACHE_SECONDS": "0",
        "REGULARS_READ_CACHE_SECONDS": "0",
        "REGULARS_SEEN_TICKET_WRITE_SECONDS": "0",
        "REGULARS_SHARED_CACHE": "false",
    }
    with gunicorn(env | no_cache, options.gunicorn, log) as service:
        naive["latency_ms"] = {
            "cold": one_at_a_time(bench, service, naive_cold_tickets, hint=False)
        }
        loaded = Saturation()
        setup, request = banner_requests(bench, warm_tickets, hint=False)
        saturate(bench, service, request, loaded, setup)
        naive |= loaded.figures("render")
        naive["upstream_calls_per_view"] = replay(bench, service, hint=False)
    return {
        "sidebar": tuned,
        "noop": noop,
        "naive": naive,
        "bytes_per_view": bytes_per_view,
    } | assess(bench, tuned, noop, naive, bytes_per_view)


def _scaled(seconds: int, speedup: int) -> str:
    return str(max(1, round(seconds / speedup)))


def _ticket_sets(
    bench: Bench,
) -> tuple[
    list[workload.Ticket], list[workload.Ticket], list[workload.Ticket], list[workload.Ticket]
]:
    """Tickets for the cold, naive cold and warm banners and the cold whole views, each of a
    different requester.

    Taken from the tail of the account, customers the trace seldom meets, one ticket each,
    so no cold view finds its requester's history cached by an earlier one.
    """
    options = bench.options
    first_ticket: dict[int, workload.Ticket] = {}
    for ticket in bench.trace.account.tickets:
        first_ticket.setdefault(ticket.requester_id, ticket)
    tail = [first_ticket[customer] for customer in reversed(bench.trace.account.customer_ids)]
    needed = options.cold_views + options.naive_cold_views + options.warm_tickets
    if len(tail) < needed + options.cold_agent_views:
        raise BenchError(f"the account has {len(tail)} customers; the run needs {needed}")
    cold = tail[: options.cold_views]
    naive = tail[options.cold_views : options.cold_views + options.naive_cold_views]
    views = tail[needed : needed + options.cold_agent_views]
    return cold, naive, tail[needed - options.warm_tickets : needed], views


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.benchmark", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="the short CI version (SQLite)")
    parser.add_argument(
        "--database",
        action="append",
        choices=("sqlite", "postgresql"),
        help="measure this database (repeatable; default: both, or SQLite with --quick)",
    )
    parser.add_argument("--latency-ms", type=float, help="each upstream call's latency")
    parser.add_argument("--agents", type=int, help="agents in the trace")
    parser.add_argument("--workers", type=int, help="gunicorn workers")
    parser.add_argument("--threads", type=int, help="threads per gunicorn worker")
    parser.add_argument("--output", type=Path, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    options = Options.quick() if args.quick else Options()
    if args.database:
        options = replace(options, databases=tuple(dict.fromkeys(args.database)))
    if args.latency_ms is not None:
        options = replace(options, latency_ms=args.latency_ms)
    if args.agents is not None:
        options = replace(options, trace=replace(options.trace, agents=args.agents))
    if args.workers is not None or args.threads is not None:
        options = replace(
            options,
            gunicorn=replace(
                options.gunicorn,
                workers=args.workers or options.gunicorn.workers,
                threads=args.threads or options.gunicorn.threads,
            ),
        )
    results = report("benchmark", argv, lambda: run(options), summary, args.output)
    return 1 if results is None else 0


if __name__ == "__main__":
    sys.exit(main())
