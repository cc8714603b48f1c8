"""The benchmark's synthetic installation: customers and their orders written as two CSV files.

Generated deterministically (seeded): customers with company ids, names, most with an email,
many with a phone, some with a helpdesk id and an account start date; orders over three
years with Zipf-like counts per customer (most buy once or twice, a few businesses buy every
day, a mean of `orders / customers`), log-normal amounts, discount codes (deal seekers use
them on most orders), categories with a favourite per customer, seasonal gift buyers, lapsed
customers. The orders are written in the order they were placed, as a shop's export lists
them: never more than one week of orders is held in memory.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

NOW = datetime(2026, 11, 24, 12, 0)
SPAN_DAYS = 3 * 365
SEED = 20261124

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


@dataclass(frozen=True)
class Dataset:
    folder: str
    customers: int
    orders: int
    customers_csv: str
    orders_csv: str
    seconds: float


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
