"""Import and segment a large installation on SQLite and PostgreSQL, in bounded memory; print JSON.

    python -m bench.segments_scale [--customers 1000000 --orders 10000000]
                                   [--database sqlite|postgresql|both]

Generates a synthetic but realistic installation deterministically (bench/segments_data.py):
customers and three years of their orders, streamed to two CSV files in a temporary folder.

Then, for each database, in a fresh process (so each gets its own peak memory) on a fresh
database migrated with `plugin.db.upgrade`:

1. imports the customers, then the orders, through `import_csv`, as `flask data import` does;
2. runs `recompute_installation`, as `flask segments recompute` does;
3. pushes one new order for one customer through `store_orders`, as the push API does, and
   times it; only that customer's segment row may change.

It prints, per database: row counts, import rows per second, recompute seconds, the single
refresh in milliseconds, the peak RSS after each phase (`ru_maxrss`; cumulative, so a phase
that allocates shows as a step), the database's size on disk, and what the one refresh
changed. The default size is a quick run (20,000 customers, 200,000 orders).

PostgreSQL runs on a throwaway cluster started from the machine's binaries
(`tests/postgres_cluster.py`: fsync off, as a test server) unless `--postgresql-url` names a
server to create the benchmark's database on.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import os
import platform
import resource
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.segments_data import NOW, Dataset, generate
from plugin.customers.csv_import import Kind, import_csv
from plugin.customers.records import order_record
from plugin.customers.segmentation import recompute_installation
from plugin.customers.store import store_orders
from plugin.db import Database, upgrade
from plugin.models import (
    Base,
    Customer,
    CustomerFact,
    CustomerSegment,
    Installation,
    Order,
    SegmentBaseline,
)

DEFAULT_CUSTOMERS = 20_000
DEFAULT_ORDERS = 200_000

JSONObject = dict[str, Any]


# --- Measuring ------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MiB (ru_maxrss is in KiB on Linux)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kib / 1024 if sys.platform != "darwin" else kib / 1024 / 1024, 1)


def cpu_seconds() -> float:
    """User + system CPU of this process and its ended worker processes (a phase's pool ends
    with it), steadier than seconds on a shared machine; the database server's not included."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )


def server_cpu_seconds(session: Session) -> float | None:
    """User + system CPU of the PostgreSQL server this session talks to, all its processes
    (its ended backends are counted in the postmaster's children's time), when it runs on this
    machine and /proc shows it; None on SQLite or otherwise. The CPU columns leave the server
    out, and an import that moves work into set-based SQL moves it there.
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    backend = session.scalar(sa.text("SELECT pg_backend_pid()"))
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        postmaster = int(_proc_stat(int(backend or 0))[1])
        fields = _proc_stat(postmaster)
        total = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    child = _proc_stat(int(entry))
                except OSError:
                    continue
                if int(child[1]) == postmaster:
                    total += int(child[11]) + int(child[12])
    except (OSError, ValueError, IndexError):
        return None
    return total / ticks


def _proc_stat(pid: int) -> list[str]:
    """/proc/pid/stat's fields after the command's name: state, ppid, ... (index 0 = state)."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    return text[text.rindex(")") + 2 :].split()


def _server_cpu(session: Session, before: float | None) -> JSONObject:
    after = server_cpu_seconds(session)
    if before is None or after is None:
        return {}
    return {"server_cpu_seconds": round(after - before, 1)}


@contextmanager
def profiled(profile_dir: str | None, name: str) -> Iterator[None]:
    """Profile a phase with cProfile into `profile_dir/name.pstats` when asked to."""
    if profile_dir is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        os.makedirs(profile_dir, exist_ok=True)
        profiler.dump_stats(os.path.join(profile_dir, f"{name}.pstats"))


def measure_database(
    kind: str,
    url: str,
    data: Dataset,
    *,
    profile_dir: str | None = None,
    trace_memory: bool = False,
) -> JSONObject:
    """Import, recompute and refresh on one fresh database; return the figures."""
    if trace_memory:
        tracemalloc.start()
    figures: JSONObject = {"database": kind}
    rss: JSONObject = {"start": peak_rss_mb()}
    upgrade(url)
    database = Database(url)
    try:
        with database.sessions() as session:
            installation = Installation(platform="zendesk", account="scale", display_name="Scale")
            session.add(installation)
            session.commit()

            imports: JSONObject = {}
            kinds: tuple[tuple[Kind, str], ...] = (
                ("customers", data.customers_csv),
                ("orders", data.orders_csv),
            )
            for what, path in kinds:
                server = server_cpu_seconds(session)
                started, cpu = time.perf_counter(), cpu_seconds()
                with (
                    profiled(profile_dir, f"{kind}-import-{what}"),
                    open(path, encoding="utf-8", newline="") as stream,
                ):
                    report = import_csv(session, installation.id, stream, kind=what, now=NOW)
                seconds = time.perf_counter() - started
                imports[what] = {
                    "rows": report.rows,
                    "created": report.created,
                    "refused": len(report.problems),
                    "seconds": round(seconds, 1),
                    "cpu_seconds": round(cpu_seconds() - cpu, 1),
                    "rows_per_second": round(report.rows / seconds),
                    **_server_cpu(session, server),
                }
                rss[f"after_import_{what}"] = peak_rss_mb()
            figures["import"] = imports

            server = server_cpu_seconds(session)
            with profiled(profile_dir, f"{kind}-recompute"):
                cpu = cpu_seconds()
                recomputed = recompute_installation(session, installation, now=NOW)
            figures["recompute"] = {
                "customers": recomputed.customers,
                "buyers": recomputed.buyers,
                "rebuilt": recomputed.rebuilt,
                "seconds": round(recomputed.seconds, 1),
                "cpu_seconds": round(cpu_seconds() - cpu, 1),
                **_server_cpu(session, server),
            }
            rss["after_recompute"] = peak_rss_mb()
            # What a recompute costs when every customer's rows must be derived again (rules
            # changed): the one above keeps the rows the orders import's refresh stamped.
            server = server_cpu_seconds(session)
            with profiled(profile_dir, f"{kind}-recompute-all"):
                cpu = cpu_seconds()
                rebuilt = recompute_installation(session, installation, now=NOW, rebuild_all=True)
            figures["recompute_rebuilding_all"] = {
                "customers": rebuilt.customers,
                "rebuilt": rebuilt.rebuilt,
                "seconds": round(rebuilt.seconds, 1),
                "cpu_seconds": round(cpu_seconds() - cpu, 1),
                **_server_cpu(session, server),
            }
            rss["after_recompute_rebuilding_all"] = peak_rss_mb()

            figures["single_refresh"] = _single_refresh(session, installation.id)
            rss["after_single_refresh"] = peak_rss_mb()
            figures["rows"] = {
                model.__tablename__: _count(session, model)
                for model in (Customer, Order, CustomerFact, CustomerSegment, SegmentBaseline)
            }
            figures["database_mb"] = _database_mb(session, url)
    finally:
        database.dispose()
    figures["peak_rss_mb"] = rss
    # Worker processes that profiled customers (forked, so sharing this one's pages at first).
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    figures["peak_rss_mb_largest_worker"] = round(children / 1024, 1)
    if trace_memory:
        figures["tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    return figures


def _count(session: Session, model: type[Base]) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def _single_refresh(session: Session, installation_id: int) -> JSONObject:
    """Push one new order for a lapsed customer; time it; check only their row changed."""
    later = NOW + timedelta(hours=1)
    # Someone whose segment a new order changes: a lapsed customer, else anyone with orders.
    customer_id, external_id = session.execute(
        sa.select(CustomerSegment.customer_id, Customer.external_id)
        .join(Customer, Customer.id == CustomerSegment.customer_id)
        .where(
            CustomerSegment.installation_id == installation_id,
            CustomerSegment.lifecycle_stage.is_not(None),
        )
        .order_by(CustomerSegment.lifecycle_stage != "lapsed", CustomerSegment.customer_id)
        .limit(1)
    ).one()
    before = _segment_summary(session, customer_id)
    started = time.perf_counter()
    result = store_orders(
        session,
        installation_id,
        [
            order_record(
                {
                    "order_id": "PUSHED-1",
                    "customer_id": external_id,
                    "placed_at": later.isoformat(),
                    "amount": "84.00",
                    "category": "Gift sets",
                }
            )
        ],
        source="push",
        now=later,
    )
    session.commit()
    milliseconds = (time.perf_counter() - started) * 1000
    changed = list(
        session.scalars(
            sa.select(CustomerSegment.customer_id).where(
                CustomerSegment.installation_id == installation_id,
                CustomerSegment.computed_at != NOW,
            )
        )
    )
    return {
        "milliseconds": round(milliseconds, 1),
        "orders_created": result.created,
        "customer_id": customer_id,
        "segment_before": before,
        "segment_after": _segment_summary(session, customer_id),
        "segment_rows_changed": len(changed),
        "only_that_customer_changed": changed == [customer_id],
    }


def _segment_summary(session: Session, customer_id: int) -> JSONObject:
    segment = session.scalars(
        sa.select(CustomerSegment)
        .where(CustomerSegment.customer_id == customer_id)
        .execution_options(populate_existing=True)
    ).one()
    return {
        "tier": segment.tier,
        "rfm_segment": segment.rfm_segment,
        "lifecycle_stage": segment.lifecycle_stage,
        "behaviours": [b["behaviour"] for b in segment.behaviours],
    }


def _database_mb(session: Session, url: str) -> float:
    if url.startswith("sqlite"):
        path = Path(sa.make_url(url).database or "")
        files = [path, path.with_name(path.name + "-wal")]
        size = sum(f.stat().st_size for f in files if f.exists())
    else:
        size = session.scalar(sa.text("SELECT pg_database_size(current_database())"))
    return round(size / 2**20, 1)


# --- Running --------------------------------------------------------------------------------


@contextmanager
def database_url(kind: str, folder: Path, postgresql_url: str | None) -> Iterator[str]:
    """A fresh database: a SQLite file, or a new database on a PostgreSQL server."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'segments-scale.sqlite3'}"
        return
    from tests.postgres_cluster import create_database, drop_database, throwaway_cluster

    if postgresql_url is not None:
        url = create_database(postgresql_url)
        try:
            yield url
        finally:
            drop_database(postgresql_url, url)
        return
    with throwaway_cluster() as base_url:
        yield create_database(base_url)


def _child(
    kind: str, url: str, data: Dataset, profile_dir: str | None, trace_memory: bool, out: Any
) -> None:
    out.send(measure_database(kind, url, data, profile_dir=profile_dir, trace_memory=trace_memory))


def run(
    *,
    customers: int = DEFAULT_CUSTOMERS,
    orders: int = DEFAULT_ORDERS,
    databases: tuple[str, ...] = ("sqlite", "postgresql"),
    postgresql_url: str | None = None,
    workdir: str | None = None,
    separate_processes: bool = True,
    profile_dir: str | None = None,
    trace_memory: bool = False,
) -> JSONObject:
    """Generate the data once, then measure each database; return the JSON-able figures."""
    if workdir is not None:
        os.makedirs(workdir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="segments-scale-", dir=workdir) as tmp:
        folder = Path(tmp)
        data = generate(folder, customers=customers, orders=orders)
        results: JSONObject = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "sqlite": sqlite3.sqlite_version,
                "sqlalchemy": sa.__version__,
            },
            "data": {
                "customers": customers,
                "orders": orders,
                "generate_seconds": data.seconds,
                "customers_csv_mb": round(os.path.getsize(data.customers_csv) / 2**20, 1),
                "orders_csv_mb": round(os.path.getsize(data.orders_csv) / 2**20, 1),
            },
            "databases": {},
        }
        for kind in databases:
            with database_url(kind, folder, postgresql_url) as url:
                if separate_processes:
                    figures = _in_fresh_process(kind, url, data, profile_dir, trace_memory)
                else:
                    figures = measure_database(
                        kind, url, data, profile_dir=profile_dir, trace_memory=trace_memory
                    )
            results["databases"][kind] = figures
        return results


def _in_fresh_process(
    kind: str, url: str, data: Dataset, profile_dir: str | None, trace_memory: bool
) -> JSONObject:
    """Measure in a spawned process, so its peak memory is its own."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(
        target=_child, args=(kind, url, data, profile_dir, trace_memory, send)
    )
    process.start()
    send.close()
    try:
        figures: JSONObject = receive.recv()
    except EOFError:
        process.join()
        raise RuntimeError(f"the {kind} run failed (exit code {process.exitcode})") from None
    process.join()
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument("--orders", type=int, default=DEFAULT_ORDERS)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--postgresql-url",
        help="a server to create the database on (default: a throwaway cluster)",
    )
    parser.add_argument(
        "--workdir", help="where the CSV files and SQLite database go (created if need be)"
    )
    parser.add_argument("--profile-dir", help="write a cProfile .pstats file per phase here")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also report Python's traced peak (slow)"
    )
    args = parser.parse_args(argv)
    databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    results = run(
        customers=args.customers,
        orders=args.orders,
        databases=databases,
        postgresql_url=args.postgresql_url,
        workdir=args.workdir,
        profile_dir=args.profile_dir,
        trace_memory=args.tracemalloc,
    )
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
