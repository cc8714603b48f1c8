"""Time the per-customer segment rules in one process, on the benchmark's generated histories.

    python -m bench.segment_rules [--customers 20000 --orders 200000] [--repeat 5]

Generates the installation `bench.segments_scale` imports (bench/segments_data.py), reads its
two CSV files into histories as the database would return them (no database), then times,
best of `--repeat`, with the garbage collector set as the bulk commands set it for their
workers (`bulk_work.few_collections`), the histories passed through pickle as the
workers receive them:

- `build_segment_profile` alone, on histories already built;
- `history_of` then `build_segment_profile`, as the workers run them;
- a worker's `_Profiler.rows` with stamps (an import's final recompute), in batches.

The default tier bars, the fixed RFM bands and no personas. Prints JSON: microseconds a
customer for each.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import pickle
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from bench.segments_data import NOW, generate
from plugin.customers.bulk_work import BULK_GC_THRESHOLD
from plugin.customers.derived_stamp import Stamper
from plugin.customers.histories import RawHistory, history_of
from plugin.customers.segmentation import _Profiler
from plugin.domain.rfm import FIXED_BANDS
from plugin.domain.segments import build_segment_profile
from plugin.domain.tiers import TierThresholds

Order = tuple[datetime, int, bool, str | None]
BATCH = 2_000


def read_histories(folder: Path) -> list[tuple[date | None, list[Order]]]:
    """Each customer's account date and orders (oldest first), from the generated CSV files."""
    since: dict[str, date | None] = {}
    by_email: dict[str, str] = {}
    with open(folder / "customers.csv", encoding="utf-8", newline="") as customers:
        for row in csv.DictReader(customers):
            started = row["customer_since"]
            since[row["customer_id"]] = date.fromisoformat(started) if started else None
            if row["email"]:
                by_email[row["email"]] = row["customer_id"]
    orders: dict[str, list[Order]] = defaultdict(list)
    with open(folder / "orders.csv", encoding="utf-8", newline="") as lines:
        for row in csv.DictReader(lines):
            customer = row["customer_id"] or by_email[row["customer_email"]]
            dollars, cents = row["amount"].split(".")
            orders[customer].append(
                (
                    datetime.fromisoformat(row["placed_at"]),
                    int(dollars) * 100 + int(cents),
                    bool(row["discount_code"]),
                    row["category"] or None,
                )
            )
    return [(since[c], sorted(orders.get(c, []), key=lambda o: o[0])) for c in since]


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """The shortest of `repeat` runs, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="segment-rules-") as folder:
        generate(Path(folder) / "data", customers=args.customers, orders=args.orders)
        read = read_histories(Path(folder) / "data")
    # Through pickle, as the workers receive their batches: each customer's objects then lie
    # together in memory, as in a worker (read from the CSV files they are scattered, and
    # every rule ran a fifth slower).
    raws = pickle.loads(pickle.dumps(read))  # noqa: S301 (our own bytes)
    del read
    gc.freeze()
    gc.set_threshold(BULK_GC_THRESHOLD, *gc.get_threshold()[1:])
    thresholds = TierThresholds()
    histories = [history_of(since, orders) for since, orders in raws]
    for history in histories:
        history.order_days  # noqa: B018 (cached, as the first rule to ask would)
    profiler = _Profiler(
        installation_id=1,
        thresholds=thresholds,
        cut_points=FIXED_BANDS,
        personas=(),
        now=NOW,
        stamper=Stamper(rules="bench", now=NOW),
        draws_facts=False,
    )
    batch: list[RawHistory] = [(n, since, orders, None) for n, (since, orders) in enumerate(raws)]
    timings = {
        "build_segment_profile": lambda: [
            build_segment_profile(h, thresholds=thresholds, cut_points=FIXED_BANDS, now=NOW)
            for h in histories
        ],
        "history_of_and_build_segment_profile": lambda: [
            build_segment_profile(
                history_of(since, orders), thresholds=thresholds, cut_points=FIXED_BANDS, now=NOW
            )
            for since, orders in raws
        ],
        "worker_rows_with_stamps": lambda: [
            profiler.rows(batch[start : start + BATCH]) for start in range(0, len(batch), BATCH)
        ],
    }
    print(
        json.dumps(
            {
                "customers": len(raws),
                "orders": sum(len(orders) for _, orders in raws),
                "microseconds_a_customer": {
                    name: round(best_of(args.repeat, run) * 1e6 / len(raws), 1)
                    for name, run in timings.items()
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
