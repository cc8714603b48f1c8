"""`flask effects compute` at scale: N synthetic exposures with orders and seen tickets in a
fresh SQLite file (or the database `--url` names), then one compute, its time and peak memory.

    .venv/bin/python -m bench.effects_compute --exposures 1000000
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.models import (
    Base,
    Installation,
    Order,
    Rule,
    RuleExposure,
    SeenTicket,
    TicketRating,
)
from plugin.reports.outcomes import compute_outcomes

NOW = datetime(2026, 12, 1)
CHUNK = 50_000


def _fill(session: Session, exposures: int, rng: random.Random) -> None:
    installation = Installation(platform="zendesk", account="bench", display_name="Bench")
    session.add(installation)
    session.flush()
    rule = Rule(installation_id=installation.id, key="bench", current_version=1)
    session.add(rule)
    session.flush()
    customers = max(1, exposures // 4)
    connection = session.connection()
    connection.execute(
        sa.text(
            "INSERT INTO customers (id, installation_id, helpdesk_user_id, name, created_at,"
            " updated_at) VALUES (:id, :i, :u, '', :t, :t)"
        ),
        [{"id": c, "i": installation.id, "u": f"u{c}", "t": NOW} for c in range(1, customers + 1)],
    )
    for start in range(0, exposures, CHUNK):
        rows, orders, seen, rated = [], [], [], []
        for n in range(start, min(exposures, start + CHUNK)):
            customer = rng.randint(1, customers)
            at = NOW - timedelta(days=rng.randint(1, 400), minutes=rng.randint(0, 1439))
            rows.append(
                {
                    "installation_id": installation.id,
                    "ticket_id": f"t{n}",
                    "rule_id": rule.id,
                    "rule_version": 1,
                    "requester_id": f"u{customer}",
                    "customer_id": customer,
                    "segment": "high",
                    "held_out": n % 5 == 0,
                    "exception_key": "credit",
                    "cost_cents": 900,
                    "seen_at": at,
                    "outcomes_final": False,
                }
            )
            if rng.random() < 0.6:
                orders.append(
                    {
                        "installation_id": installation.id,
                        "customer_id": customer,
                        "external_id": f"o{n}",
                        "placed_at": at + timedelta(days=rng.randint(1, 200)),
                        "amount_cents": rng.randint(1000, 20000),
                        "source": "bench",
                    }
                )
            if rng.random() < 0.3:  # a third of the tickets got a survey answer
                rated.append(
                    {
                        "installation_id": installation.id,
                        "ticket_id": f"t{n}",
                        "rating_id": f"r{n}",
                        "satisfied": rng.random() < 0.8,
                        "rated_at": at + timedelta(days=2),
                        "read_at": NOW,
                    }
                )
            seen.append(
                {
                    "installation_id": installation.id,
                    "ticket_id": f"t{n}",
                    "requester_id": f"u{customer}",
                    "subject": "",
                    "first_seen_at": at,
                    "last_seen_at": at,
                    "view_count": 1,
                }
            )
        connection.execute(sa.insert(RuleExposure), rows)
        connection.execute(sa.insert(Order), orders)
        connection.execute(sa.insert(SeenTicket), seen)
        connection.execute(sa.insert(TicketRating), rated)
    session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exposures", type=int, default=100_000)
    parser.add_argument("--url", default=None, help="an empty database (default: a temp SQLite)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="effects-bench-")
    url = args.url or f"sqlite:///{Path(folder) / 'bench.db'}"
    engine = sa.create_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        started = time.perf_counter()
        _fill(session, args.exposures, random.Random(1))
        filled = time.perf_counter() - started
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run = compute_outcomes(session, now=NOW)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        again = compute_outcomes(session, now=NOW)
    print(
        f"{args.exposures:,} exposures (filled in {filled:.0f}s): computed {run.rows:,} in "
        f"{run.batches} batches, {run.seconds:.1f}s, {run.finalised:,} final; peak RSS "
        f"{peak / 1024:.0f} MB ({before / 1024:.0f} MB before the compute); a second run read "
        f"{again.rows:,} rows in {again.seconds:.1f}s"
    )


if __name__ == "__main__":
    main()
