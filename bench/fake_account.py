"""Run the fake Zendesk (bench/fake_zendesk.py) with a benchmark's synthetic account added.

    python -m bench.fake_account --public-key-file KEY.pem --account-file ACCOUNT.json \
        [--latency-ms 100] [--rate-limit N] [--port 0]

The fake serves the demo's sample data; this adds the users and tickets of the JSON file
(`{"users": [...], "tickets": [...]}` as `workload.zendesk_records` makes them) and serves
until SIGINT or SIGTERM, printing its URL once it listens. It runs as its own process so that
the benchmark's load generator and the fake do not share one interpreter's lock.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import fake_zendesk
from bench.fake_base import DEFAULT_RATE_LIMIT, serve_until_signalled


def load_account(data: fake_zendesk.FakeZendeskData, account_file: Path) -> None:
    """Add the file's users and tickets to the fake's data."""
    records = json.loads(account_file.read_text())
    for user in records["users"]:
        data.users[int(user["id"])] = user
    for ticket in records["tickets"]:
        data.tickets[int(ticket["id"])] = ticket


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the sample data plus the synthetic account; print the URL once listening."""
    parser = argparse.ArgumentParser(prog="python -m bench.fake_account", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=int, default=DEFAULT_RATE_LIMIT)
    parser.add_argument("--public-key-file", type=Path, required=True)
    parser.add_argument("--account-file", type=Path, required=True)
    args = parser.parse_args(argv)
    data = fake_zendesk.from_sample_data(
        datetime.now(UTC).date(),
        public_key_pem=args.public_key_file.read_text(),
    )
    load_account(data, args.account_file)
    server = fake_zendesk.FakeZendeskServer(
        data, port=args.port, rate_limit=args.rate_limit, latency_seconds=args.latency_ms / 1000
    )
    return serve_until_signalled(server)


if __name__ == "__main__":
    sys.exit(main())
