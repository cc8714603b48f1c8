"""The gestures' fault test: every gesture is given in the shop exactly once, however badly the
shop behaves and however often workers die.

    python -m bench.gesture_fault --gestures 200 --database both

For each database (SQLite, and PostgreSQL on a throwaway cluster) it:

1. starts the fake Shopify (`bench/fake_shopify.py`) with faults on every call: 30 % answered
   503, 10 % throttled (GraphQL THROTTLED), 3 % hanging past the client's timeout and 2 % of
   writes made but never answered (so the worker cannot know whether its gesture exists), and
   a fake Zendesk (no faults) for the notes;
2. writes the actions and their gestures (discount codes, free-shipping codes, gift cards,
   refunds and free replacements, for customers and orders the fake shop has) to a Zendesk
   installation connected to that shop, as the sidebar's Apply does: nothing but the outbox
   gives them;
3. runs `flask outbox work` processes (two at once on PostgreSQL, one on SQLite) and SIGKILLs a
   working one `--kills` times (at least 3), starting a new one each time;
4. once every delivery is delivered or dead, counts in the fake shop what carries each
   gesture's marker: exactly one thing each (a code, a gift card, a refund, a draft order).

It prints one JSON document: per database the gestures, given, refused, duplicates, missing,
dead, calls and faults by kind, leases taken over, finds after an unknown outcome, elapsed
seconds. The exit status is 1 if any gesture was duplicated, missing, refused or dead.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session, sessionmaker

from bench import fake_zendesk
from bench.delivery_fault import (
    Workers,
    _open_and_done,
    _worker_env,
    database,
    fake_data,
    run_with_kills,
)
from bench.fake_shopify import FIRST_ORDER, FakeShopifyServer, stocked_engine
from bench.fake_zendesk import FakeZendeskServer
from bench.fault_runs import add_run_options, count_in_logs, print_results, run_per_database
from plugin.customers.shopify_connection import connect_shopify
from plugin.db import create_engine
from plugin.demo.fake_shopify import ACCESS_TOKEN, FakeShopifyEngine, Faults
from plugin.gestures.interface import GestureKind
from plugin.gestures.planning import marker_for
from plugin.helpdesks.credentials import CredentialsVault
from plugin.helpdesks.zendesk import ZendeskCredentials
from plugin.models import Action, Base, Customer, Delivery, Gesture, Installation, Order

ACCOUNT = "faulty-shop"
# The shop's client gives up after 1 s; a hang lasts 1.5 s (the gesture is made, the answer
# comes too late); a heartbeat renews the 3 s lease while a worker waits.
HANG_SECONDS = 1.5
LEASE_SECONDS = 3
KINDS = (
    GestureKind.DISCOUNT_CODE,
    GestureKind.GIFT_CARD,
    GestureKind.REFUND,
    GestureKind.FREE_SHIPPING,
    GestureKind.REPLACEMENT,
)
ORDER_TOTAL = Decimal("100.00")
# A refund of $5 to $9: at most 20 refunds an order before its $100 is spent; the gestures go
# round the customers, so with this many customers no order is refunded past what it holds.
CUSTOMERS = 60


@dataclass(frozen=True)
class Options:
    gestures: int = 200
    kills: int = 3
    seed: int = 18
    timeout_seconds: float = 900.0
    server_error: float = 0.30
    throttled: float = 0.10
    hang: float = 0.03
    lost_answer: float = 0.02


def write_gestures(
    sessions: sessionmaker[Session],
    *,
    count: int,
    zendesk_url: str,
    shop_url: str,
    vault: CredentialsVault,
) -> int:
    """The installation (its helpdesk the fake Zendesk, its shop the fake Shopify), the
    customers and orders the shop has, and `count` applied actions with their gestures."""
    credentials = ZendeskCredentials.from_api_token(
        email=fake_zendesk.ADMIN_EMAIL, api_token=fake_zendesk.DEFAULT_API_TOKEN
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    data = fake_data()
    tickets = sorted(data.tickets)
    with sessions() as session:
        installation = Installation(
            platform="zendesk",
            account=ACCOUNT,
            display_name="Faulty shop",
            api_base_url=zendesk_url,
            credentials_encrypted=vault.encrypt(credentials.to_dict()),
        )
        session.add(installation)
        session.flush()
        connect_shopify(
            session,
            installation,
            vault,
            shop="bench",
            access_token=ACCESS_TOKEN,
            api_base_url=shop_url,
        )
        customers = []
        for n in range(1, CUSTOMERS + 1):
            customer = Customer(
                installation_id=installation.id,
                external_id=f"shopify:{n}",
                name=f"Bench customer {n}",
            )
            session.add(customer)
            session.flush()
            session.add(
                Order(
                    installation_id=installation.id,
                    customer_id=customer.id,
                    external_id=f"shopify:{FIRST_ORDER + n}",
                    placed_at=now - timedelta(days=3),
                    amount_cents=int(ORDER_TOTAL * 100),
                    source="bench",
                )
            )
            customers.append(n)
        session.commit()
        for number in range(count):
            kind = KINDS[number % len(KINDS)]
            n = customers[number % len(customers)]
            action = Action(
                installation_id=installation.id,
                ticket_id=str(tickets[number % len(tickets)]),
                requester_id=f"{90000 + n}",
                agent_id="80001",
                kind="applied",
                exception_key="goodwill",
                amount_cents=500 + number % 400,
                currency="USD",
                reason_code="late_delivery",
                text="",
                idempotency_key=f"gesture-fault-{number:06d}",
                created_at=now + timedelta(microseconds=number),
            )
            marker = marker_for(installation.id, action.idempotency_key)
            codes = (GestureKind.DISCOUNT_CODE, GestureKind.FREE_SHIPPING)
            gesture = Gesture(
                installation_id=installation.id,
                ticket_id=action.ticket_id,
                kind=kind.value,
                status="pending",
                marker=marker,
                code=marker if kind in codes else None,
                amount_cents=None if kind is GestureKind.REPLACEMENT else action.amount_cents,
                currency="USD",
                customer_ref=f"gid://shopify/Customer/{n}",
                order_ref=f"gid://shopify/Order/{FIRST_ORDER + n}",
                order_number=f"#{FIRST_ORDER + n}",
                reason="Late delivery",
                outcome_unknown=False,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
            gesture.action = action
            gesture.request_action = action
            session.add_all([action, gesture])
            if number % 100 == 99:
                session.commit()
        session.commit()
        return installation.id


def run_one(kind: str, options: Options, folder: Path) -> dict[str, Any]:
    with database(kind, folder) as url:
        return run_on(url, options, folder)


def run_on(url: str, options: Options, folder: Path) -> dict[str, Any]:
    """Run the fault test on an empty database at `url`; return its figures."""
    kind = "postgresql" if url.startswith("postgresql") else "sqlite"
    key = Fernet.generate_key().decode()
    vault = CredentialsVault((key,))
    parallel = 2 if kind == "postgresql" else 1
    engine_shop = stocked_engine(customers=CUSTOMERS, order_total=ORDER_TOTAL, seed=options.seed)
    with (
        FakeZendeskServer(fake_data(), rate_limit=1_000_000) as zendesk,
        FakeShopifyServer(engine_shop) as shop,
    ):
        engine = create_engine(url)
        try:
            Base.metadata.create_all(engine)
            sessions = sessionmaker(engine, expire_on_commit=False)
            write_gestures(
                sessions,
                count=options.gestures,
                zendesk_url=zendesk.url,
                shop_url=shop.url,
                vault=vault,
            )
            engine_shop.faults = Faults(
                server_error=options.server_error,
                throttled=options.throttled,
                hang=options.hang,
                lost_answer=options.lost_answer,
                hang_seconds=HANG_SECONDS,
                retry_after_seconds=0.5,
            )
            env = _worker_env(url, key, folder / f"instance-{kind}") | {
                "REGULARS_OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
                "REGULARS_LOG_LEVEL": "INFO",
            }
            kills, elapsed = run_with_kills(
                Workers(env, folder),
                parallel=parallel,
                total=options.gestures,
                kills=options.kills,
                timeout_seconds=options.timeout_seconds,
                open_and_done=lambda: _open_and_done(sessions),
                what="gestures",
            )
            engine_shop.faults = Faults()
            return _figures(kind, folder, sessions, engine_shop, kills, parallel, elapsed)
        finally:
            engine.dispose()


def _made_in_shop(engine: FakeShopifyEngine) -> Counter[str]:
    """How many things in the shop carry each marker."""
    state = engine.snapshot()
    found: Counter[str] = Counter()
    for code in state["discounts"]:
        found[code.upper()] += 1
    for table in ("gift_cards", "refunds"):
        for item in state[table].values():
            note = str(item.get("note") or "")
            if "[" in note:
                found[note.rsplit("[", 1)[1].rstrip("]")] += 1
    for draft in state["drafts"].values():
        for tag in draft.get("tags") or ():
            found[str(tag)] += 1
    return found


def _figures(
    kind: str,
    folder: Path,
    sessions: sessionmaker[Session],
    engine: FakeShopifyEngine,
    kills: int,
    workers: int,
    elapsed: float,
) -> dict[str, Any]:
    made = _made_in_shop(engine)
    stats = {"calls": dict(engine.calls), "faults": dict(engine.faults_injected)}
    with sessions() as session:
        rows = session.execute(
            sa.select(Gesture, Delivery.status).join(
                Delivery, Delivery.action_id == Gesture.action_id
            )
        ).all()
    statuses = Counter(gesture.status for gesture, _ in rows)
    dead = sum(1 for _, status in rows if status == "dead")
    duplicates = sum(max(0, made[gesture.marker] - 1) for gesture, _ in rows)
    missing = sum(1 for gesture, _ in rows if made[gesture.marker] == 0)
    refusals = Counter(str(gesture.refusal) for gesture, _ in rows if gesture.status == "refused")
    return {
        "database": kind,
        "workers_at_once": workers,
        "kills": kills,
        "gestures": len(rows),
        "by_kind": dict(Counter(gesture.kind for gesture, _ in rows)),
        "given": statuses.get("given", 0),
        "refused": statuses.get("refused", 0),
        "refusals": dict(refusals.most_common(3)),
        "duplicates_in_shop": duplicates,
        "missing_in_shop": missing,
        "dead": dead,
        "gesture_attempts": sum(gesture.attempts for gesture, _ in rows),
        "shop": stats,
        "lease_taken_over": count_in_logs(folder, "lease ran out"),
        "found_after_unknown_outcome": count_in_logs(folder, "found by its marker"),
        "elapsed_seconds": round(elapsed, 1),
        "passed": duplicates == 0 and missing == 0 and dead == 0 and not statuses.get("refused"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gesture_fault",
        description="Give gestures through the outbox while a fake Shopify misbehaves and "
        "workers are killed; check each exists exactly once in the shop.",
    )
    parser.add_argument("--gestures", type=int, default=200)
    add_run_options(parser, kills=3, seed=18)
    args = parser.parse_args(argv)
    options = Options(
        gestures=args.gestures, kills=args.kills, seed=args.seed, timeout_seconds=args.timeout
    )
    results = run_per_database(
        args.database, "gesture-fault-", lambda kind, folder: run_one(kind, options, folder)
    )
    return print_results({"gestures_requested": args.gestures, "results": results}, args.output)


if __name__ == "__main__":
    sys.exit(main())
