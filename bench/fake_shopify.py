"""The fake Shopify Admin GraphQL API (plugin/demo/fake_shopify.py) served over HTTP on
127.0.0.1, with injected faults, for the gesture fault bench and end-to-end tests.

In-process:

    engine = stocked_engine(customers=50, faults=Faults(server_error=0.3, throttled=0.1))
    with FakeShopifyServer(engine) as server:
        # connect an installation's Shopify to server.url with the token ACCESS_TOKEN
        # (shopify_connection.connect_shopify(..., shop="bench", api_base_url=server.url))
        ...
        given = engine.snapshot()  # codes, gift cards, refunds, drafts, orders

As its own process (prints its URL once listening, stops on SIGINT or SIGTERM):

    python -m bench.fake_shopify --port 8765 --customers 50 --server-error 0.3 \\
        --throttled 0.1 --rate-limited 0.0 --hang 0.05 --hang-seconds 1.5 --lost-answer 0.05

Routes: `POST /admin/api/<version>/graphql.json` (the API; token in X-Shopify-Access-Token),
`GET /_fake/stats` (calls by operation, faults injected), `GET /_fake/snapshot` (everything
the shop holds, gift cards' full codes included: it is the fake's own store),
`POST /_fake/faults` (JSON with any of the `Faults` fields: change the fault rates).

The stock: customers `gid://shopify/Customer/<n>` (n = 1..customers), each with one paid order
`gid://shopify/Order/<100000 + n>` of `--order-total` (default 100.00) with two line items.
A hung answer is made first and answered `--hang-seconds` later (past a client's timeout the
outcome is unknown, and a look finds it); a lost answer is made and answered only after
`--hang-seconds`, never in time.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from flask import Flask, Response, jsonify, request

from bench.fake_base import FakeApiServer, FakeApiState, json_response, serve_until_signalled
from plugin.demo.fake_shopify import ACCESS_TOKEN, FakeShopifyEngine, Faults

FIRST_ORDER = 100_000


def customer_id(n: int) -> str:
    return f"gid://shopify/Customer/{n}"


def order_id(n: int) -> str:
    return f"gid://shopify/Order/{FIRST_ORDER + n}"


def stocked_engine(
    *,
    customers: int = 50,
    order_total: Decimal = Decimal("100.00"),
    faults: Faults | None = None,
    seed: int | None = None,
) -> FakeShopifyEngine:
    """An engine holding `customers` customers, each with one paid order (see the module)."""
    engine = FakeShopifyEngine(faults=faults, rng=random.Random(seed))
    for n in range(1, customers + 1):
        engine.add_customer(customer_id(n), f"Bench customer {n}")
        engine.add_order(
            order_id(n),
            name=f"#{FIRST_ORDER + n}",
            customer_id=customer_id(n),
            total=order_total,
            line_items=[
                (f"gid://shopify/LineItem/{n}1", "gid://shopify/ProductVariant/1", 1),
                (f"gid://shopify/LineItem/{n}2", "gid://shopify/ProductVariant/2", 2),
            ],
        )
    return engine


class FakeShopifyState(FakeApiState[FakeShopifyEngine]):
    """The served engine, with fake_base's pause (cut short when the server stops)."""


def create_app(state: FakeShopifyState) -> Flask:
    app = Flask(__name__)
    engine = state.data

    @app.post("/admin/api/<version>/graphql.json")
    def graphql(version: str) -> Response:
        answer = engine.handle(
            request.headers.get("X-Shopify-Access-Token"), request.get_json(silent=True)
        )
        if answer.lost:
            # Made, but its answer never arrives in time.
            state.pause(engine.faults.hang_seconds)
        state.pause(answer.delay_seconds)
        response = json_response(answer.body, answer.status)
        response.headers.update(dict(answer.headers))
        return response

    @app.get("/_fake/stats")
    def stats() -> Response:
        return jsonify(calls=dict(engine.calls), faults=dict(engine.faults_injected))

    @app.get("/_fake/snapshot")
    def snapshot() -> Response:
        return jsonify(engine.snapshot())

    @app.post("/_fake/faults")
    def faults() -> Response:
        changes: Any = request.get_json(silent=True) or {}
        known = {field.name for field in dataclasses.fields(Faults)}
        try:
            if not isinstance(changes, dict) or set(changes) - known:
                raise ValueError(f"faults are any of {', '.join(sorted(known))}")
            engine.faults = dataclasses.replace(engine.faults, **changes)
        except (TypeError, ValueError) as error:
            return json_response({"error": str(error)}, 400)
        return jsonify(dataclasses.asdict(engine.faults))

    return app


class FakeShopifyServer(FakeApiServer[FakeShopifyState]):
    """Serve a fake Shopify engine on 127.0.0.1 from a daemon thread (see `FakeApiServer`)."""

    def __init__(self, engine: FakeShopifyEngine, port: int = 0) -> None:
        super().__init__(FakeShopifyState(engine), create_app, name="Shopify", port=port)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a stocked fake Shopify until SIGINT or SIGTERM; print the URL once listening."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.fake_shopify",
        description="A fake Shopify Admin GraphQL API on 127.0.0.1 with injected faults.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument("--customers", type=int, default=50, help="customers, one order each")
    parser.add_argument("--order-total", type=Decimal, default=Decimal("100.00"))
    parser.add_argument("--seed", type=int, default=None, help="the fault sequence's seed")
    for name, help_text in (
        ("server-error", "share of calls answered 503"),
        ("throttled", "share of calls answered THROTTLED"),
        ("rate-limited", "share of calls answered 429 with Retry-After"),
        ("hang", "share of calls made, then answered after --hang-seconds"),
        ("lost-answer", "share of writes made whose answer never arrives in time"),
    ):
        parser.add_argument(f"--{name}", type=float, default=0.0, help=help_text)
    parser.add_argument("--hang-seconds", type=float, default=30.0)
    parser.add_argument("--retry-after-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    try:
        faults = Faults(
            server_error=args.server_error,
            throttled=args.throttled,
            rate_limited=args.rate_limited,
            hang=args.hang,
            lost_answer=args.lost_answer,
            hang_seconds=args.hang_seconds,
            retry_after_seconds=args.retry_after_seconds,
        )
    except ValueError as error:
        parser.error(str(error))
    engine = stocked_engine(
        customers=args.customers, order_total=args.order_total, faults=faults, seed=args.seed
    )
    print(f"access token: {ACCESS_TOKEN}", file=sys.stderr)
    return serve_until_signalled(FakeShopifyServer(engine, port=args.port))


if __name__ == "__main__":
    sys.exit(main())
