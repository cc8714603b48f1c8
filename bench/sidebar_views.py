"""Measure sidebar views against a fake Zendesk with a set latency per call; print JSON.

    python -m bench.sidebar_views [--latency-ms 100] [--views 20]

The service runs in-process (Flask's test client, SQLite in a temporary folder); the fake
Zendesk runs on 127.0.0.1 and counts the calls it gets. For each ticket it measures a cold
view (nothing cached, in memory or in the shared cache) and then a warm one (the agent reopens
the ticket), with the page's requester hint as the sidebar sends it (one call: the requester's
tickets, the requester sideloaded), and once more without the hint (two waves: the ticket,
then the history) for comparison.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient

from bench import fake_zendesk
from plugin import create_app, db
from plugin.clock import utcnow
from plugin.config import Settings
from plugin.demo.sample_data import build_sample_data
from plugin.demo.seed import insert_sample_customers
from plugin.helpdesks import zendesk_installations
from plugin.helpdesks.zendesk import ZendeskCredentials
from plugin.models import Base, SharedCacheEntry

SUBDOMAIN = "bench"
ORIGIN = f"https://{SUBDOMAIN}.zendesk.com"
AUDIENCE = f"{ORIGIN}/api/v2/apps/installations/{fake_zendesk.DEFAULT_INSTALLATION_ID}.json"


@contextmanager
def service(folder: Path, zendesk_url: str, database_url: str | None = None) -> Iterator[Flask]:
    """The service on SQLite in `folder` (or on `database_url`), the fake's account registered."""
    settings = Settings(
        secret_key="bench-secret-key-" + "x" * 32,
        database_url=database_url or f"sqlite:///{folder / 'bench.sqlite3'}",
        demo_enabled=False,
    )
    app = create_app(settings, instance_path=str(folder / "instance"))
    Base.metadata.create_all(db.database(app).engine)
    with db.database(app).sessions() as session:
        installation = zendesk_installations.register_zendesk(
            session,
            app.extensions["regulars.vault"],
            subdomain=SUBDOMAIN,
            app_id=str(fake_zendesk.DEFAULT_APP_ID),
            app_installation_id=str(fake_zendesk.DEFAULT_INSTALLATION_ID),
            credentials=ZendeskCredentials.from_api_token(
                email=fake_zendesk.ADMIN_EMAIL, api_token=fake_zendesk.DEFAULT_API_TOKEN
            ),
            api_base_url=zendesk_url,
        )
        now = utcnow()
        insert_sample_customers(session, installation.id, build_sample_data(now.date()), now=now)
        session.commit()
    try:
        yield app
    finally:
        app.extensions["regulars.helpdesks"].close()
        db.database(app).dispose()


def forget_shared(app: Flask) -> None:
    """Empty the shared cache too, so that a cold view is cold in every process."""
    with db.database(app).sessions() as session:
        session.execute(sa.delete(SharedCacheEntry))
        session.commit()


def session_token(client: FlaskClient, key: rsa.RSAPrivateKey) -> str:
    now = datetime.now(UTC)
    token = jwt.encode(
        {
            "iss": f"{SUBDOMAIN}.zendesk.com",
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + timedelta(minutes=5),
            "sub": "80001",
        },
        key,
        algorithm="RS256",
    )
    page = client.post(
        "/sidebar", query_string={"origin": ORIGIN, "app_guid": "bench"}, data={"token": token}
    ).get_data(as_text=True)
    match = re.search(r'data-session-token="([^"]+)"', page)
    if match is None:
        raise SystemExit(f"the sidebar launch failed:\n{page[:500]}")
    return match.group(1)


def view(client: FlaskClient, token: str, ticket_id: str, hint: str | None) -> tuple[float, int]:
    query = {"ticket_id": ticket_id} | ({"requester_id": hint} if hint else {})
    started = time.perf_counter()
    response = client.get(
        "/sidebar/banner", query_string=query, headers={"Authorization": f"Bearer {token}"}
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"ticket {ticket_id}: HTTP {response.status_code}")
    return elapsed * 1000, response.status_code


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1),
        "max_ms": round(ordered[-1], 1),
    }


def run(latency_ms: int, views: int) -> dict[str, object]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    data = fake_zendesk.from_sample_data(utcnow().date(), public_key_pem=pem)
    tickets = sorted(data.tickets.values(), key=lambda t: int(t["id"]))[:views]
    results: dict[str, object] = {"upstream_latency_ms": latency_ms, "tickets": len(tickets)}
    with (
        fake_zendesk.FakeZendeskServer(data, latency_seconds=latency_ms / 1000) as zendesk,
        tempfile.TemporaryDirectory() as folder,
        service(Path(folder), zendesk.url) as app,
    ):
        client = app.test_client()
        token = session_token(client, key)
        for label, with_hint in (("with_requester_hint", True), ("without_hint", False)):
            cache = app.extensions["regulars.helpdesks"].cache
            cold: list[float] = []
            warm: list[float] = []
            cold_calls = warm_calls = 0
            for ticket in tickets:
                hint = str(ticket["requester_id"]) if with_hint else None
                cache.clear()
                forget_shared(app)
                zendesk.app_state.reset_counts()
                cold.append(view(client, token, str(ticket["id"]), hint)[0])
                cold_calls += zendesk.app_state.total_calls()
                zendesk.app_state.reset_counts()
                warm.append(view(client, token, str(ticket["id"]), hint)[0])
                warm_calls += zendesk.app_state.total_calls()
            results[label] = {
                "cold": summary(cold) | {"upstream_calls_per_view": cold_calls / len(tickets)},
                "warm": summary(warm) | {"upstream_calls_per_view": warm_calls / len(tickets)},
            }
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--views", type=int, default=20, help="tickets to view, cold then warm")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.latency_ms, args.views), indent=2))


if __name__ == "__main__":
    main()
