"""Import and segment a large installation on SQLite and PostgreSQL, in bounded memory; print JSON.

    python -m bench.segments_scale [--customers 1000000 --orders 10000000]
                                   [--database sqlite|postgresql|both]

Generates a synthetic but realistic installation deterministically (seeded): customers with
company ids, names, most with an email, many with a phone, some with a helpdesk id and an
account start date; orders over three years with Zipf-like counts per customer (most buy once
or twice, a few businesses buy every day, a mean of `orders / customers`), log-normal amounts,
discount codes (deal seekers use them on most orders), categories with a favourite per
customer, seasonal gift buyers, lapsed customers. The data is streamed to two CSV files in a
temporary folder, the orders in the order they were placed, as a shop's export lists them:
never more than one week of orders is held in memory.

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
import math
import multiprocessing
import os
import platform
import random
import resource
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

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

NOW = datetime(2026, 11, 24, 12, 0)
SPAN_DAYS = 3 * 365
SEED = 20261124
DEFAULT_CUSTOMERS = 20_000
DEFAULT_ORDERS = 200_000

FIRST_NAMES = (
    "Priya",
    "Walter",
    "Amara",
    "Jonas",
    "Mei",
    "Carlos",
    "Fatima",
    "Oskar",
    "Lena",
    "Tomasz",
    "Aiko",
    "Diego",
    "Noor",
    "Elena",
    "Kwame",
    "Sofia",
    "Hugo",
    "Ines",
    "Rafael",
    "Yara",
    "Mateo",
    "Chloe",
    "Arjun",
    "Freya",
    "Luca",
    "Zara",
    "Omar",
    "Greta",
    "Kenji",
    "Nia",
)
LAST_NAMES = (
    "Raman",
    "Huang",
    "Okafor",
    "Berg",
    "Chen",
    "Silva",
    "Haddad",
    "Lind",
    "Novak",
    "Kowalski",
    "Tanaka",
    "Ortiz",
    "Rahman",
    "Rossi",
    "Mensah",
    "Costa",
    "Martin",
    "Duarte",
    "Alves",
    "Nasser",
    "Lopez",
    "Dubois",
    "Patel",
    "Nilsson",
    "Bianchi",
    "Ali",
    "Yilmaz",
    "Moreau",
    "Sato",
    "Adeyemi",
)
CATEGORIES = (
    "Tea",
    "Coffee beans",
    "Brewing gear",
    "Cups & mugs",
    "Gift sets",
    "Snacks",
    "Syrups",
    "Subscriptions",
    "Accessories",
    "Books",
    "Cleaning",
    "Clearance",
)
DISCOUNT_CODES = ("WELCOME10", "SPRING15", "BFCM25", "LOYAL5", "FREESHIP")

# Order counts per customer: a Pareto law (alpha near 1 is Zipf's), capped so that the biggest
# buyer, a business, orders a few times a day for three years; 4% never order (prospects).
PARETO_ALPHA = 1.15
MAX_WEIGHT = 1_000.0
PROSPECT_SHARE = 0.04
# Amounts: log-normal around $38 (median), most between $12 and $120.
AMOUNT_MU = math.log(3_800)
AMOUNT_SIGMA = 0.75
WEEK_BUCKETS = SPAN_DAYS // 7 + 2

JSONObject = dict[str, Any]


@dataclass(frozen=True)
class Dataset:
    folder: str
    customers: int
    orders: int
    customers_csv: str
    orders_csv: str
    seconds: float


# --- Data -----------------------------------------------------------------------------------


def order_counts(rng: random.Random, customers: int, orders: int) -> list[int]:
    """How many orders each customer places: Zipf-like, summing to exactly `orders`.

    A buyer places 1 + a Lomax-distributed (Pareto shifted to start at 0) number of further
    orders: a fifth buy once, nearly half at most twice, the top 1% over a hundred times.
    """
    weights = [
        -1.0
        if rng.random() < PROSPECT_SHARE
        else min(MAX_WEIGHT, rng.paretovariate(PARETO_ALPHA) - 1.0)
        for _ in range(customers)
    ]
    buyers = [n for n, w in enumerate(weights) if w >= 0]
    if not buyers or len(buyers) > orders:
        raise ValueError("need at least one order per buyer and at least one buyer")
    scale = (orders - len(buyers)) / max(sum(w for w in weights if w > 0), 1e-9)
    counts = [1 + int(w * scale + rng.random()) if w >= 0 else 0 for w in weights]
    difference = orders - sum(counts)
    while difference:
        n = buyers[rng.randrange(len(buyers))]
        if difference > 0:
            counts[n] += 1
            difference -= 1
        elif counts[n] > 1:
            counts[n] -= 1
            difference += 1
    return counts


def generate(folder: Path, *, customers: int, orders: int, seed: int = SEED) -> Dataset:
    """Write customers.csv and orders.csv (oldest order first) into `folder`."""
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    counts = order_counts(rng, customers, orders)
    start_of_data = NOW - timedelta(days=SPAN_DAYS)
    buckets_dir = folder / "weeks"
    buckets_dir.mkdir()
    buckets = [
        open(buckets_dir / f"{week:03d}.csv", "w", encoding="utf-8", newline="")  # noqa: SIM115
        for week in range(WEEK_BUCKETS)
    ]
    customers_csv = folder / "customers.csv"
    try:
        with open(customers_csv, "w", encoding="utf-8", newline="") as out:
            out.write("customer_id,name,email,phone,helpdesk_user_id,customer_since\n")
            for n, count in enumerate(counts, start=1):
                out.write(_customer_and_orders(rng, n, count, start_of_data, buckets))
    finally:
        for bucket in buckets:
            bucket.close()
    orders_csv = folder / "orders.csv"
    written = 0
    with open(orders_csv, "w", encoding="utf-8", newline="") as out:
        out.write("order_id,customer_id,customer_email,placed_at,amount,discount_code,category\n")
        for week in range(WEEK_BUCKETS):
            path = buckets_dir / f"{week:03d}.csv"
            with open(path, encoding="utf-8") as bucket:
                lines = bucket.readlines()
            path.unlink()
            lines.sort()  # by placed_at, then customer: the order a shop's export lists them
            chunk = []
            for line in lines:
                written += 1
                placed_at, rest = line.split(",", 1)
                customer_id, email, amount, code, category = rest.rstrip("\n").split(",")
                chunk.append(
                    f"O{written:09d},{customer_id},{email},{placed_at},{amount},{code},{category}\n"
                )
            out.writelines(chunk)
    buckets_dir.rmdir()
    assert written == orders, (written, orders)
    return Dataset(
        folder=str(folder),
        customers=customers,
        orders=orders,
        customers_csv=str(customers_csv),
        orders_csv=str(orders_csv),
        seconds=round(time.perf_counter() - started, 1),
    )


def _customer_and_orders(
    rng: random.Random, n: int, count: int, start_of_data: datetime, buckets: Sequence[IO[str]]
) -> str:
    """Write one customer's orders to the week buckets; return their customers.csv line."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    customer_id = f"C{n:08d}"
    email = f"{first.lower()}.{last.lower()}.{n}@example.com" if rng.random() < 0.92 else ""
    phone = f"+1{2_000_000_000 + n * 7}" if rng.random() < 0.55 else ""
    helpdesk_id = str(900_000_000 + n) if rng.random() < 0.3 else ""

    # When they buy: from a first day somewhere in the three years to the end of the data,
    # or, for a lapsed customer, to a day before it. Seasonal gift buyers only in Nov-Dec.
    kind = rng.random()
    seasonal = kind < 0.04 and count >= 4
    deal_seeker = 0.04 <= kind < 0.10
    # A business starts early and buys on most days.
    first_day = rng.randrange(0, 120) if count >= 400 else rng.randrange(0, SPAN_DAYS)
    last_day = SPAN_DAYS
    if rng.random() < 0.3:
        last_day = rng.randrange(first_day, SPAN_DAYS + 1)
    since = ""
    if rng.random() < 0.6:
        known_from = start_of_data + timedelta(days=first_day - rng.randrange(0, 400))
        since = known_from.date().isoformat()
    favourite = rng.choice(CATEGORIES)
    discount_share = 0.7 if deal_seeker else 0.12
    span_minutes = max(1, (last_day - first_day) * 1440)
    for _ in range(count):
        if seasonal:  # from mid-November to the end of December, in one of the years
            moment = datetime(NOW.year - rng.randrange(1, 4), 11, 15) + timedelta(
                days=rng.randrange(47), minutes=rng.randrange(1440)
            )
            if moment < start_of_data:
                moment += timedelta(days=365)
        else:
            moment = start_of_data + timedelta(days=first_day, minutes=rng.randrange(span_minutes))
        cents = max(100, min(2_000_000, int(rng.lognormvariate(AMOUNT_MU, AMOUNT_SIGMA))))
        category = favourite if rng.random() < 0.6 else rng.choice(CATEGORIES)
        code = rng.choice(DISCOUNT_CODES) if rng.random() < discount_share else ""
        # A few orders name the customer by email only, as some shops' exports do.
        by_email = email and rng.random() < 0.05
        week = (moment - start_of_data).days // 7
        buckets[week].write(
            f"{moment.isoformat(timespec='minutes')},"
            f"{'' if by_email else customer_id},{email if by_email else ''},"
            f"{cents // 100}.{cents % 100:02d},{code},{category}\n"
        )
    name = f'"{first} {last}"' if rng.random() < 0.01 else f"{first} {last}"
    return f"{customer_id},{name},{email},{phone},{helpdesk_id},{since}\n"


# --- Measuring ------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MiB (ru_maxrss is in KiB on Linux)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kib / 1024 if sys.platform != "darwin" else kib / 1024 / 1024, 1)


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
                started = time.perf_counter()
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
                    "rows_per_second": round(report.rows / seconds),
                }
                rss[f"after_import_{what}"] = peak_rss_mb()
            figures["import"] = imports

            with profiled(profile_dir, f"{kind}-recompute"):
                recomputed = recompute_installation(session, installation, now=NOW)
            figures["recompute"] = {
                "customers": recomputed.customers,
                "buyers": recomputed.buyers,
                "seconds": round(recomputed.seconds, 1),
            }
            rss["after_recompute"] = peak_rss_mb()

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
