"""Load and faults: agents at work on the service while the helpdesk goes down; prints JSON.

    python -m bench.load_faults [--quick] [--database sqlite|postgresql] [--agents 50]
        [--seconds 60] [--outage-at 20] [--outage-seconds 20] [--outage-mode down|hang]

One run starts, on 127.0.0.1:

- a fake Zendesk as its own process (`bench/fake_account.py`), answering every call after
  `--latency-ms` (100), serving the demo's data plus a synthetic account of customers drawn
  from a Zipf law (`bench/workload.py`), some of whose tickets are about late or damaged
  orders so that the rules suggest something;
- the service as in production: migrated, the account registered (`flask zendesk register`),
  the demo's rules imported (`flask rules import`), segments computed (`flask segments
  recompute`), a review checklist for high-value customers, then gunicorn with
  `packaging/gunicorn.conf.py` (2 workers x 8 threads); SQLite, or PostgreSQL on a
  throwaway cluster;
- one `flask outbox work` process, which delivers the actions as notes on their tickets.

Then `--agents` simulated agents work for `--seconds`, each a closed loop with think time:
open a ticket (a signed launch, then the banner, the suggestions card and the review card, as
the sidebar page loads them), now and then apply or dismiss a suggestion or check a review
item (each with its own idempotency key), then the next ticket. Tickets come from a trace of
the Zipf account: new tickets (their requester often never seen) and reopened ones.

At `--outage-at` the fake helpdesk goes down (`mode: down`: every call answers 503; or
`hang`) for `--outage-seconds`, then comes back. During the outage every sidebar view must
answer within the time budget (REGULARS_UPSTREAM_BUDGET_MS plus `--margin-ms`), from the
cache, marked stale when the cached answer is past its TTL; a requester never seen gets a
clear "the helpdesk is not answering" card (503), which is counted as `no_data`, not as an
error. After the load the outbox is drained (bounded wait) and every action is looked for on
its ticket by its marker: recorded, delivered, duplicated, lost, dead.

The cache TTLs are shortened for the run (ticket 5 s, history 10 s instead of 120 s and
600 s): with production's, nothing cached in a 60-second run would be past its TTL during a
20-second outage, and the stale path would never run. A real outage longer than the TTL is
what the shortened run reproduces.

The exit status is 1 if any target fails: an error, an outage view over budget, no stale
answer during the outage, an action lost, duplicated, misplaced or dead.
`--quick` is the CI version: 10 agents for 15 s, the outage at 5 s for 5 s.
"""

from __future__ import annotations

import argparse
import html
import http.client
import itertools
import json
import os
import platform
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from sqlalchemy.orm import Session, sessionmaker

from bench import benchmark, fake_zendesk, fake_zendesk_app, workload
from bench.load import Client, Response, latency_summary
from bench.service import (
    ORIGIN,
    REPO,
    BenchError,
    Gunicorn,
    fake_account_process,
    gunicorn,
    launch_token,
    prepare_database,
    report,
    seed_rules_and_reviews,
    service_environment,
)
from plugin.db import create_engine
from plugin.delivery.notes import marker_for
from plugin.helpdesks.zendesk import ZendeskCredentials
from plugin.models import Action, Delivery

JSONObject = dict[str, Any]
KINDS = ("launch", "banner", "suggestions", "review", "action", "review_check")
# What the budget is checked on: every request that reads the helpdesk through the cache.
BUDGETED = ("banner", "suggestions", "review", "action", "review_check")
WINDOWS = ("before", "during", "after")
# High enough that the fake never refuses a call for its rate limit.
FAKE_RATE_LIMIT = 10_000_000
# A failure of the helpdesk can reach an answer a little after it came back: a call made
# just before answers 503 one latency later; in mode "hang", a call made just before hangs
# until the service's client gives up on it (REGULARS_UPSTREAM_TIMEOUT, 10 s by default).
RECOVERY_GRACE_SECONDS = 1.0
UPSTREAM_TIMEOUT_SECONDS = 10
CLIENT_TIMEOUT_SECONDS = 30.0
# The sidebar page retries a 503 that says Retry-After (the helpdesk slow, nothing cached).
PAGE_RETRIES = 3
STALE_MARK = 'data-stale="helpdesk"'
PROBLEM_MARK = "rg-problem"
DONE_MARK = 'data-result="done"'
OFFER_MARK = '<li class="rg-offer" data-exception="'
_SESSION_TOKEN = re.compile(r'data-session-token="([^"]+)"')
_RESULT = re.compile(r'data-result="done">([^<]*)<')
_UNCHECKED = re.compile(r'data-item="(\d+)" data-checked="false"')


@dataclass(frozen=True)
class Options:
    """One run: how many agents, how long, when and how the helpdesk fails, what passes."""

    database: str = "sqlite"
    agents: int = 50
    seconds: float = 60.0
    outage_at: float = 20.0
    outage_seconds: float = 20.0
    outage_mode: str = "down"
    # In mode "hang", how long each call hangs before answering.
    hang_seconds: float = 30.0
    latency_ms: float = 100.0
    think_min_seconds: float = 0.5
    think_max_seconds: float = 2.0
    customers: int = 1000
    # Of the views whose card offers something, the share where the agent acts on an offer;
    # of those actions, the share that applies (else dismisses).
    act_share: float = 0.5
    apply_share: float = 0.4
    # Of the views with a review card, the share where the agent checks an item.
    check_share: float = 0.5
    budget_ms: int = 2500
    margin_ms: int = 500
    ticket_ttl_seconds: int = 5
    history_ttl_seconds: int = 10
    drain_timeout_seconds: float = 180.0
    seed: int = 9
    gunicorn: Gunicorn = field(default_factory=lambda: Gunicorn(production_config=True))

    @classmethod
    def quick(cls) -> Options:
        """The CI version: 10 agents for 15 s, the helpdesk down from 5 s to 10 s.

        The TTLs are shorter still (history 3 s), so that what the first seconds cached is
        past its TTL during the outage; the agents act on every offer and review they see.
        """
        return cls(
            agents=10,
            seconds=15.0,
            outage_at=5.0,
            outage_seconds=5.0,
            customers=300,
            act_share=1.0,
            check_share=1.0,
            ticket_ttl_seconds=2,
            history_ttl_seconds=3,
            drain_timeout_seconds=90.0,
        )

    @property
    def outage_end(self) -> float:
        return self.outage_at + self.outage_seconds


@dataclass(frozen=True)
class Sample:
    """One request: what, when (seconds since the load began), how long, and what came back."""

    kind: str
    started: float
    seconds: float
    status: str
    # fresh, stale (banner), ok, offers (a suggestions card offering something), none (no
    # review), no_data (the helpdesk's problem card), recorded, already (a check already
    # made), refused (409), failed.
    outcome: str
    # Why this request counts as an error; None when it does not.
    error: str | None = None
    requester_id: int = 0


@dataclass
class Outage:
    """When the helpdesk was really down: from the request that took it down being sent to
    the answer of the one that brought it back (seconds since the load began)."""

    down_at: float | None = None
    up_at: float | None = None
    # How long after the helpdesk came back its failure may still reach an answer.
    grace_seconds: float = RECOVERY_GRACE_SECONDS

    def overlaps(self, started: float, ended: float) -> bool:
        """Could the outage have touched a request over this interval?"""
        if self.down_at is None:
            return False
        up = (self.up_at if self.up_at is not None else float("inf")) + self.grace_seconds
        return started < up and ended > self.down_at

    def window(self, started: float) -> str:
        if self.down_at is None or started < self.down_at:
            return "before"
        if self.up_at is None or started < self.up_at:
            return "during"
        return "after"


@dataclass(frozen=True)
class PageTicket:
    """A ticket as the fake holds it and as the page sends its fields."""

    id: int
    requester_id: int
    fields: Mapping[str, str]


# --- The account ----------------------------------------------------------------------------


def account_records(
    account: workload.Account, *, today: date
) -> tuple[dict[str, list[dict[str, Any]]], dict[int, PageTicket]]:
    """The Zipf account as the fake serves it, with tickets the rules have something to say
    about: a late order (tag and subject), a damaged one (an incident), a plain incident."""
    records = workload.zendesk_records(account, today=today)
    tickets: dict[int, PageTicket] = {}
    for ticket in records["tickets"]:
        number = int(ticket["id"])
        variant = number % 6
        if variant == 0:
            ticket["subject"] = ticket["raw_subject"] = f"My order is late ({number})"
            ticket["tags"] = ["late_delivery"]
        elif variant == 1:
            ticket["subject"] = ticket["raw_subject"] = f"Damaged on arrival ({number})"
            ticket["tags"] = ["damaged_item"]
            ticket["type"] = "incident"
        elif variant == 2:
            ticket["type"] = "incident"
        tickets[number] = PageTicket(
            id=number,
            requester_id=int(ticket["requester_id"]),
            fields={
                "subject": str(ticket["subject"]),
                "status": str(ticket["status"]),
                "channel": "email",
                "priority": str(ticket["priority"]),
                "type": str(ticket["type"]),
                "tags": " ".join(ticket["tags"]),
            },
        )
    return records, tickets


# --- The agents -----------------------------------------------------------------------------


class LoadRun:
    """The agents' shared state: the service, the clock, the outage, and what came back."""

    def __init__(
        self,
        options: Options,
        *,
        port: int,
        key: RSAPrivateKey,
        views: Mapping[int, list[workload.View]],
        tickets: Mapping[int, PageTicket],
    ) -> None:
        self.options = options
        self.port = port
        self.key = key
        self.views = views
        self.tickets = tickets
        self.outage = Outage(
            grace_seconds=RECOVERY_GRACE_SECONDS
            + (UPSTREAM_TIMEOUT_SECONDS if options.outage_mode == "hang" else 0)
        )
        self.origin = 0.0
        self.end = 0.0
        self.run_id = secrets.token_hex(3)
        self._lock = threading.Lock()
        self.samples: list[Sample] = []
        # Requesters the service has answered a banner for: when, first (seconds).
        self.seen: dict[int, float] = {}
        # Idempotency keys of the actions the service said it recorded, and when.
        self.recorded: dict[str, float] = {}

    def now(self) -> float:
        return time.perf_counter() - self.origin

    def seen_before(self, requester_id: int, moment: float) -> bool:
        with self._lock:
            first = self.seen.get(requester_id)
        return first is not None and first < moment

    def add(self, samples: list[Sample], recorded: dict[str, float]) -> None:
        with self._lock:
            self.samples += samples
            self.recorded |= recorded

    def mark_seen(self, requester_id: int, moment: float) -> None:
        with self._lock:
            self.seen.setdefault(requester_id, moment)


class Agent:
    """One simulated agent: a closed loop over ticket views, with think time between steps."""

    def __init__(self, run: LoadRun, index: int) -> None:
        self.run = run
        self.index = index
        self.agent_id = str(workload.FIRST_AGENT_ID + index)
        self.rng = random.Random(f"{run.options.seed}-agent-{index}")
        self.samples: list[Sample] = []
        self.recorded: dict[str, float] = {}
        self._actions = 0

    def work(self) -> None:
        run = self.run
        views = run.views.get(self.index) or []
        # A bounded loop: the deadline ends it, and at most one ticket a think time anyway.
        max_views = int(run.options.seconds / run.options.think_min_seconds) + 1
        try:
            for number in range(max_views):
                if not views or run.now() >= run.options.seconds:
                    break
                view = views[number % len(views)]
                client = Client(run.port, timeout=CLIENT_TIMEOUT_SECONDS)
                try:
                    self.view(client, run.tickets[view.ticket_id])
                finally:
                    client.close()
                self.think()
        finally:
            run.add(self.samples, self.recorded)

    def think(self) -> None:
        pause = self.rng.uniform(
            self.run.options.think_min_seconds, self.run.options.think_max_seconds
        )
        time.sleep(max(0.0, min(pause, self.run.options.seconds - self.run.now())))

    def time_left(self) -> bool:
        return self.run.now() < self.run.options.seconds

    def view(self, client: Client, ticket: PageTicket) -> None:
        """Open a ticket as the sidebar page does; then maybe act on a suggestion or check."""
        session = self.launch(client, ticket)
        if session is None:
            return
        query = {
            "ticket_id": str(ticket.id),
            "requester_id": str(ticket.requester_id),
            **ticket.fields,
        }
        headers = {"Authorization": f"Bearer {session}", "Accept": "text/html"}
        banner = self.banner(client, ticket, query, headers)
        if banner is None or banner.status != 200 or not self.time_left():
            return
        card = self.request(
            "suggestions",
            ticket,
            lambda: client.get("/sidebar/suggestions", query=query, headers=headers),
        )
        review = (
            self.request(
                "review",
                ticket,
                lambda: client.get("/sidebar/review", query=query, headers=headers),
            )
            if self.time_left()
            else None
        )
        if (
            card is not None
            and card.status == 200
            and self.rng.random() < self.run.options.act_share
        ):
            form = self.action_form(card.text, ticket)
            if form is not None:
                self.think()
                if self.time_left():
                    self.post(client, "action", "/sidebar/actions", form, headers, ticket)
        if (
            review is not None
            and review.status == 200
            and self.rng.random() < self.run.options.check_share
        ):
            items = _UNCHECKED.findall(review.text)
            if items:
                self.think()
                if self.time_left():
                    form = {
                        "ticket_id": str(ticket.id),
                        "requester_id": str(ticket.requester_id),
                        "item": self.rng.choice(items),
                        "checked": "true",
                        "idempotency_key": self.new_key(),
                    }
                    self.post(
                        client, "review_check", "/sidebar/review/check", form, headers, ticket
                    )

    def launch(self, client: Client, ticket: PageTicket) -> str | None:
        token = launch_token(self.run.key, self.agent_id)
        answer = self.request(
            "launch",
            ticket,
            lambda: client.post_form(
                "/sidebar", query={"origin": ORIGIN, "app_guid": "load"}, form={"token": token}
            ),
        )
        if answer is None or answer.status != 200:
            return None
        match = _SESSION_TOKEN.search(answer.text)
        return match.group(1) if match else None

    def banner(
        self,
        client: Client,
        ticket: PageTicket,
        query: Mapping[str, str],
        headers: Mapping[str, str],
    ) -> Response | None:
        """The banner, retried as the page does when a 503 says Retry-After."""
        answer = None
        for _ in range(1 + PAGE_RETRIES):
            answer = self.request(
                "banner",
                ticket,
                lambda: client.get("/sidebar/banner", query=query, headers=headers),
            )
            wait = answer.headers.get("retry-after", "") if answer is not None else ""
            if answer is None or answer.status != 503 or not wait.isdigit():
                break
            time.sleep(min(float(wait), max(0.0, self.run.options.seconds - self.run.now())))
            if not self.time_left():
                break
        return answer

    def action_form(self, card: str, ticket: PageTicket) -> dict[str, str] | None:
        """An apply or a dismiss of one of the card's offers, as its form would send it."""
        offers = card.split(OFFER_MARK)[1:]
        if not offers:
            return None
        block = self.rng.choice(offers)
        exception = block.split('"', 1)[0]
        applying = self.rng.random() < self.run.options.apply_share
        # Apply sends the preselected reason (one click); dismiss sends the chip clicked.
        chosen = (
            re.search(
                rf'id="rg-{re.escape(exception)}-reason"[^>]*>\s*<option value="([^"]+)"', block
            )
            if applying
            else re.search(r'<button type="submit" name="reason" value="([^"]+)"', block)
        )
        if chosen is None:
            return None
        if not applying:
            kind = "dismiss"
        elif 'data-flag="needs-approval"' in block:
            kind = "escalate"
        else:
            kind = "apply"
        return {
            "ticket_id": str(ticket.id),
            "requester_id": str(ticket.requester_id),
            "exception": html.unescape(exception),
            "kind": kind,
            "reason": html.unescape(chosen.group(1)),
            "idempotency_key": self.new_key(),
        }

    def new_key(self) -> str:
        self._actions += 1
        return f"lf-{self.run.run_id}-{self.index:03d}-{self._actions:05d}"

    def post(
        self,
        client: Client,
        kind: str,
        path: str,
        form: dict[str, str],
        headers: Mapping[str, str],
        ticket: PageTicket,
    ) -> None:
        answer = self.request(
            kind, ticket, lambda: client.post_form(path, form=form, headers=headers)
        )
        if answer is not None and self.samples[-1].outcome == "recorded":
            self.recorded[form["idempotency_key"]] = self.samples[-1].started

    def request(
        self, kind: str, ticket: PageTicket, send: Callable[[], Response]
    ) -> Response | None:
        """Send one request, time it, and record what it was (see `classify`)."""
        started = self.run.now()
        try:
            answer = send()
        except (OSError, http.client.HTTPException) as failure:
            name = type(failure).__name__
            seconds = self.run.now() - started
            self.samples.append(
                Sample(kind, started, seconds, name, "failed", name, ticket.requester_id)
            )
            return None
        outcome, error = classify(
            self.run, kind, answer, requester_id=ticket.requester_id, started=started
        )
        self.samples.append(
            Sample(
                kind,
                started,
                answer.seconds,
                str(answer.status),
                outcome,
                error,
                ticket.requester_id,
            )
        )
        if kind == "banner" and outcome in ("fresh", "stale"):
            self.run.mark_seen(ticket.requester_id, started + answer.seconds)
        return answer


def classify(
    run: LoadRun, kind: str, answer: Response, *, requester_id: int, started: float
) -> tuple[str, str | None]:
    """What an answer was, and why it is an error if it is one.

    The one expected non-2xx answers: a 409 refusing an action (a cap or budget another
    agent's action used up since the card was shown: the card says why), and the helpdesk's
    problem card (503) during the outage for a requester the service had never answered
    (nothing to serve from the cache). A 503 for a requester it had answered before, or any
    503 outside the outage, is an error; so is every other status, timeout or broken
    connection.
    """
    status, text = answer.status, answer.text
    ended = started + answer.seconds
    if kind == "launch":
        ok = status == 200 and _SESSION_TOKEN.search(text) is not None
        return ("ok", None) if ok else ("failed", f"launch answered HTTP {status}")
    if status == 503 and PROBLEM_MARK in text:
        if not run.outage.overlaps(started, ended):
            return "no_data", "the helpdesk's problem card (503) outside the outage"
        if run.seen_before(requester_id, started):
            return "no_data", "a requester answered before the outage was not served from the cache"
        return "no_data", None
    if kind == "banner" and status == 200:
        return ("stale" if STALE_MARK in text else "fresh"), None
    if kind == "suggestions" and status == 200:
        return ("offers" if OFFER_MARK in text else "ok"), None
    if kind == "review" and status == 200:
        return "ok", None
    if kind == "review" and status == 204:
        return "none", None
    if kind in ("action", "review_check") and status == 200:
        if DONE_MARK not in text:
            return "failed", f"{kind} answered 200 without a result"
        match = _RESULT.search(text)
        already = match is not None and match.group(1).strip().startswith("Already")
        return ("already" if already else "recorded"), None
    if kind == "action" and status == 409:
        return "refused", None
    return "failed", f"{kind} answered HTTP {status}"


# --- The run --------------------------------------------------------------------------------


def run(options: Options) -> JSONObject:
    """Set everything up, run the agents with the outage in the middle, count; the figures."""
    started = time.monotonic()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    trace = workload.build_trace(
        replace(
            workload.TraceConfig(),
            agents=options.agents,
            customers=options.customers,
            minutes=max(10.0, options.seconds),
            warmup_minutes=0.0,
            seed=options.seed,
        )
    )
    records, tickets = account_records(trace.account, today=datetime.now(UTC).date())
    views: dict[int, list[workload.View]] = {}
    for view in trace.views:
        views.setdefault(view.agent, []).append(view)
    results: JSONObject = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1_5_15_min_at_start": _load_average(),
        },
        "setup": _setup(options),
    }
    with tempfile.TemporaryDirectory(prefix="regulars-load-faults-") as folder:
        workdir = Path(folder)
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with fake_account_process(
            workdir,
            public_key_pem=public_pem,
            records=records,
            latency_ms=options.latency_ms,
            rate_limit=FAKE_RATE_LIMIT,
        ) as zendesk_port:
            fake = Fake(zendesk_port)
            with benchmark.database(options.database, workdir) as url:
                results |= _run_on(options, url, workdir, fake, key, views, tickets, trace)
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)
    results["machine"]["load_average_1_5_15_min_at_end"] = _load_average()
    return results


def _setup(options: Options) -> JSONObject:
    return {
        "database": options.database,
        "agents": options.agents,
        "seconds": options.seconds,
        "think_seconds": [options.think_min_seconds, options.think_max_seconds],
        "upstream_latency_ms": options.latency_ms,
        "outage": {
            "mode": options.outage_mode,
            "at_seconds": options.outage_at,
            "for_seconds": options.outage_seconds,
        }
        | ({"hang_seconds": options.hang_seconds} if options.outage_mode == "hang" else {}),
        "budget_ms": options.budget_ms,
        "margin_ms": options.margin_ms,
        "cache_ttl_seconds": {
            "ticket": options.ticket_ttl_seconds,
            "history": options.history_ttl_seconds,
        },
        "customers": options.customers,
        "gunicorn": options.gunicorn.describe(),
        "agent": {
            "act_share": options.act_share,
            "apply_share": options.apply_share,
            "check_share": options.check_share,
        },
        "seed": options.seed,
    }


class Fake:
    """The fake Zendesk's controls and its API, as seen from the run."""

    def __init__(self, port: int) -> None:
        self.port = port
        credentials = ZendeskCredentials.from_api_token(
            email=fake_zendesk.ADMIN_EMAIL, api_token=fake_zendesk.DEFAULT_API_TOKEN
        )
        self.authorization = credentials.authorization_header()

    def control(self, path: str, body: JSONObject | None = None) -> JSONObject:
        client = Client(self.port, timeout=10)
        try:
            answer = client.get(path) if body is None else client.post_json(path, body)
        finally:
            client.close()
        if answer.status != 200:
            raise BenchError(f"the fake Zendesk answered {answer.status} to {path}")
        result: JSONObject = json.loads(answer.body)
        return result

    def configure(self, **settings: object) -> None:
        self.control("/_fake/config", dict(settings))

    def calls(self) -> int:
        return int(self.control("/_fake/stats")["total_calls"])

    def notes(self, ticket_id: int) -> list[str]:
        """Every note on a ticket, through the API the outbox's marker check uses."""
        client = Client(self.port, timeout=30)
        bodies: list[str] = []
        try:
            for page in range(1, 1000):
                answer = client.get(
                    f"/api/v2/tickets/{ticket_id}/comments.json",
                    query={"page": str(page), "per_page": str(fake_zendesk_app.PAGE_SIZE)},
                    headers={"Authorization": self.authorization},
                )
                if answer.status != 200:
                    raise BenchError(f"reading ticket {ticket_id}'s notes: HTTP {answer.status}")
                body = json.loads(answer.body)
                bodies += [str(comment["body"]) for comment in body["comments"]]
                if not body.get("next_page"):
                    break
        finally:
            client.close()
        return bodies


def _run_on(
    options: Options,
    url: str,
    workdir: Path,
    fake: Fake,
    key: RSAPrivateKey,
    views: Mapping[int, list[workload.View]],
    tickets: Mapping[int, PageTicket],
    trace: workload.Trace,
) -> JSONObject:
    instance = workdir / "instance"
    env = service_environment(
        database_url=url,
        instance_path=instance,
        secret_key="load-faults-" + Fernet.generate_key().decode(),
        encryption_key=Fernet.generate_key().decode(),
    ) | {
        "REGULARS_UPSTREAM_BUDGET_MS": str(options.budget_ms),
        "REGULARS_TICKET_CACHE_SECONDS": str(options.ticket_ttl_seconds),
        "REGULARS_HISTORY_CACHE_SECONDS": str(options.history_ttl_seconds),
        "REGULARS_UPSTREAM_TIMEOUT": str(UPSTREAM_TIMEOUT_SECONDS),
        # No undo window: each action is sent at once, alone, and counted by its own note.
        "REGULARS_UNDO_SECONDS": "0",
    }
    setup_started = time.monotonic()
    prepare_database(
        env,
        zendesk_url=f"http://127.0.0.1:{fake.port}",
        customers=workload.shop_customers(trace.account, today=datetime.now(UTC).date()),
    )
    seed_rules_and_reviews(env)
    setup_seconds = time.monotonic() - setup_started
    log = workdir / "gunicorn.log"
    worker_log = workdir / "outbox-worker.log"
    engine = create_engine(url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    try:
        with gunicorn(env, options.gunicorn, log) as service, outbox_worker(env, worker_log):
            fake.control("/_fake/reset", {})
            load_run = LoadRun(options, port=service.port, key=key, views=views, tickets=tickets)
            cpu_before = service.cpu_seconds()
            calls, load_averages = _drive(load_run, fake)
            server_cpu = service.cpu_seconds() - cpu_before
            drained, drain_seconds = _drain(sessions, options.drain_timeout_seconds)
        fake.configure(mode="normal", latency_ms=0)
        actions = _count_actions(sessions, fake, load_run)
    finally:
        engine.dispose()
    actions |= {"open_after_drain": drained, "drain_seconds": round(drain_seconds, 1)}
    figures = _figures(load_run, calls, actions)
    figures["setup_seconds"] = round(setup_seconds, 1)
    figures["server"] = {
        "cpu_seconds": round(server_cpu, 1),
        "log_error_lines": _error_lines(log),
        "outbox_worker_log_error_lines": _error_lines(worker_log),
    }
    figures["machine_during"] = {"load_average_1_min_samples": load_averages}
    figures["targets"] = _targets(figures)
    figures["passed"] = all(target["met"] for target in figures["targets"].values())
    return figures


@contextmanager
def outbox_worker(env: Mapping[str, str], log_file: Path) -> Iterator[subprocess.Popen[bytes]]:
    """One `flask outbox work` process, as production runs it beside the web workers."""
    command = [sys.executable, "-m", "flask", "--app", "plugin", "outbox", "work"]
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [*command, "--worker-id", "load-faults"],
            env=dict(env) | {"REGULARS_OUTBOX_IN_PROCESS": "false"},
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _drive(run: LoadRun, fake: Fake) -> tuple[dict[str, int], list[float]]:
    """Start the agents, take the helpdesk down and up on time, wait for the agents.

    Returns the upstream calls the fake counted before, during and after the outage, and the
    machine's 1-minute load average sampled every 5 s.
    """
    options = run.options
    agents = [Agent(run, index) for index in range(options.agents)]
    threads = [threading.Thread(target=agent.work, daemon=True) for agent in agents]
    load_averages: list[float] = []
    calls: dict[str, int] = {}
    run.origin = time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        steps = [
            (options.outage_at, "down"),
            (options.outage_end, "up"),
            (options.seconds, "end"),
        ]
        next_sample = 0.0
        for at, step in steps:
            while run.now() < at:
                if run.now() >= next_sample:
                    load_averages.append(round(os.getloadavg()[0], 2))
                    next_sample += 5.0
                time.sleep(max(0.0, min(0.2, at - run.now())))
            if step == "down" and options.outage_seconds > 0:
                calls["before"] = fake.calls()
                run.outage.down_at = run.now()
                if options.outage_mode == "hang":
                    fake.configure(mode="hang", hang_seconds=options.hang_seconds)
                else:
                    fake.configure(mode="down")
            elif step == "up" and run.outage.down_at is not None:
                fake.configure(mode="normal")
                run.outage.up_at = run.now()
                calls["during"] = fake.calls() - calls["before"]
    finally:
        # Whatever happened, the helpdesk comes back before anything is counted.
        fake.configure(mode="normal")
        if run.outage.down_at is not None and run.outage.up_at is None:
            run.outage.up_at = run.now()
    for thread in threads:
        thread.join(CLIENT_TIMEOUT_SECONDS + 2 * options.think_max_seconds + 10)
    if any(thread.is_alive() for thread in threads):
        raise BenchError("an agent did not finish")
    total = fake.calls()
    calls["after"] = total - calls.get("before", 0) - calls.get("during", 0)
    calls["total"] = total
    return calls, load_averages


def _drain(sessions: sessionmaker[Session], timeout: float) -> tuple[int, float]:
    """Wait until every delivery is delivered or dead, at most `timeout`; (still open, seconds)."""
    started = time.monotonic()
    open_count = 0
    while time.monotonic() - started < timeout:
        with sessions() as session:
            rows = dict(
                session.execute(
                    sa.select(Delivery.status, sa.func.count()).group_by(Delivery.status)
                ).all()
            )
        open_count = sum(
            int(count) for status, count in rows.items() if status not in ("delivered", "dead")
        )
        if open_count == 0:
            break
        time.sleep(0.5)
    return open_count, time.monotonic() - started


def _count_actions(sessions: sessionmaker[Session], fake: Fake, run: LoadRun) -> JSONObject:
    """Every action in the log against the notes on the fake's tickets, by marker."""
    with sessions() as session:
        rows = session.execute(
            sa.select(Action, Delivery).outerjoin(Delivery, Delivery.action_id == Action.id)
        ).all()
    tickets = sorted({int(action.ticket_id) for action, _ in rows})
    notes = {ticket: fake.notes(ticket) for ticket in tickets}
    stored_keys = {action.idempotency_key for action, _ in rows}
    delivered = dead = duplicates = lost = misplaced = attempts = during = 0
    kinds: Counter[str] = Counter()
    for action, delivery in rows:
        marker = marker_for(action)
        here = sum(marker in body for body in notes.get(int(action.ticket_id), []))
        everywhere = sum(marker in body for bodies in notes.values() for body in bodies)
        status = delivery.status if delivery is not None else "none"
        kinds[action.kind] += 1
        attempts += delivery.attempts if delivery is not None else 0
        delivered += everywhere > 0 and status == "delivered"
        dead += status == "dead"
        duplicates += max(0, everywhere - 1)
        misplaced += everywhere - here
        lost += everywhere == 0 and status != "dead"
        recorded_at = run.recorded.get(action.idempotency_key)
        during += recorded_at is not None and run.outage.window(recorded_at) == "during"
    # What the service said it recorded, and is not in the action log, is lost too.
    not_stored = len(set(run.recorded) - stored_keys)
    return {
        "recorded": len(rows),
        "recorded_by_kind": dict(sorted(kinds.items())),
        "recorded_during_outage": during,
        "answered_recorded": len(run.recorded),
        "answered_recorded_not_stored": not_stored,
        "delivered": delivered,
        "duplicates": duplicates,
        "lost": lost + not_stored,
        "misplaced": misplaced,
        "dead": dead,
        "delivery_attempts": attempts,
        "retries": attempts - len(rows),
    }


def _figures(run: LoadRun, calls: dict[str, int], actions: JSONObject) -> JSONObject:
    options = run.options
    samples = run.samples
    outage = run.outage
    errors = [sample for sample in samples if sample.error is not None]
    elapsed = max([options.seconds, *(s.started + s.seconds for s in samples)])
    spans = {
        "before": (0.0, outage.down_at if outage.down_at is not None else elapsed),
        "during": (outage.down_at or 0.0, outage.up_at or 0.0),
        "after": (outage.up_at if outage.up_at is not None else elapsed, elapsed),
    }
    by_window: JSONObject = {}
    for window in WINDOWS:
        chosen = [s for s in samples if outage.window(s.started) == window]
        start, end = spans[window]
        by_window[window] = _section(chosen) | {
            "from_second": round(start, 1),
            "to_second": round(end, 1),
            "requests_per_second": round(len(chosen) / (end - start), 1) if end > start else 0.0,
        }
    touched = [s for s in samples if outage.overlaps(s.started, s.started + s.seconds)]
    budget = (options.budget_ms + options.margin_ms) / 1000
    budgeted = [s for s in touched if s.kind in BUDGETED]
    over = [s for s in budgeted if s.seconds > budget]
    in_outage = [s for s in samples if outage.window(s.started) == "during"]
    return {
        "load": _section(samples)
        | {
            "seconds": round(elapsed, 1),
            "requests_per_second": round(len(samples) / elapsed, 1) if elapsed else 0.0,
            "errors_by_cause": dict(Counter(s.error for s in errors if s.error).most_common()),
            "error_examples": [asdict(s) for s in errors[:5]],
            "slowest": [asdict(s) for s in sorted(samples, key=lambda s: s.seconds)[-5:]],
        },
        "by_window": by_window,
        # Workers are replaced after max_requests (with jitter, one at a time): a second with
        # no answer at all would be every worker restarting together.
        "serving": {
            "max_requests": options.gunicorn.max_requests,
            "longest_gap_seconds": round(_longest_gap(samples), 2),
        },
        "outage": {
            "mode": options.outage_mode,
            "down_at_second": None if outage.down_at is None else round(outage.down_at, 2),
            "up_at_second": None if outage.up_at is None else round(outage.up_at, 2),
            # Answers by kind and outcome, for the requests sent while the helpdesk was down.
            "answers": {
                kind: dict(sorted(Counter(s.outcome for s in in_outage if s.kind == kind).items()))
                for kind in KINDS
            },
            "banner_stale": sum(s.kind == "banner" and s.outcome == "stale" for s in in_outage),
            "banner_fresh_from_cache": sum(
                s.kind == "banner" and s.outcome == "fresh" for s in in_outage
            ),
            "no_data_never_seen": sum(s.outcome == "no_data" and s.error is None for s in touched),
            "no_data_though_seen": sum(
                s.outcome == "no_data" and s.error is not None for s in touched
            ),
            "stale_after_recovery": sum(
                s.kind == "banner" and s.outcome == "stale" and outage.window(s.started) == "after"
                for s in samples
            ),
            "budget_ms": options.budget_ms,
            "budget_with_margin_ms": options.budget_ms + options.margin_ms,
            "max_view_ms": round(max((s.seconds for s in budgeted), default=0.0) * 1000, 1),
            "over_budget": len(over),
            "upstream_calls": calls,
        },
        "actions": actions,
    }


def _longest_gap(samples: Sequence[Sample]) -> float:
    """The longest time between two answers in a row (connection failures count as answers)."""
    ends = sorted(s.started + s.seconds for s in samples)
    return max((later - earlier for earlier, later in itertools.pairwise(ends)), default=0.0)


def _section(samples: Sequence[Sample]) -> JSONObject:
    """Requests, errors and latency: overall and by kind."""
    return {
        "requests": len(samples),
        "errors": sum(s.error is not None for s in samples),
        "latency_ms": latency_summary([s.seconds for s in samples]),
        "by_kind": {
            kind: {
                "requests": len(chosen),
                "errors": sum(s.error is not None for s in chosen),
                "outcomes": dict(sorted(Counter(s.outcome for s in chosen).items())),
                "latency_ms": latency_summary([s.seconds for s in chosen]),
            }
            for kind in KINDS
            if (chosen := [s for s in samples if s.kind == kind])
        },
    }


def _targets(figures: JSONObject) -> JSONObject:
    outage, actions = figures["outage"], figures["actions"]
    values = {
        "errors": figures["load"]["errors"],
        "outage_answers_over_budget": outage["over_budget"],
        "actions_lost": actions["lost"],
        "actions_duplicated": actions["duplicates"],
        "actions_misplaced": actions["misplaced"],
        "actions_dead": actions["dead"],
    }
    targets: JSONObject = {
        name: {"value": value, "at_most": 0, "met": value == 0} for name, value in values.items()
    }
    stale = outage["banner_stale"]
    targets["outage_banners_marked_stale"] = {
        "value": stale,
        "at_least": 1,
        "met": stale >= 1 or outage["down_at_second"] is None,
    }
    return targets


def _error_lines(log: Path) -> int:
    """Lines the service logged at ERROR or worse (JSON or text), and tracebacks."""
    if not log.exists():
        return 0
    count = 0
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            count += line.startswith("Traceback") or " ERROR " in line
            continue
        count += isinstance(record, dict) and record.get("level") in ("ERROR", "CRITICAL")
    return count


def _load_average() -> list[float]:
    return [round(load, 2) for load in os.getloadavg()]


# --- Reporting ------------------------------------------------------------------------------


def summary(results: JSONObject) -> list[str]:
    """The figures for people and CI logs, one line each."""
    setup, load, outage, actions = (
        results["setup"],
        results["load"],
        results["outage"],
        results["actions"],
    )
    lines = [
        f"{setup['database']}: {setup['agents']} agents for {setup['seconds']:g} s, helpdesk "
        f"{outage['mode']} from {outage['down_at_second']} s to {outage['up_at_second']} s; "
        f"load average {results['machine']['load_average_1_5_15_min_at_start']} at start, "
        f"{results['machine']['load_average_1_5_15_min_at_end']} at end",
        f"requests {load['requests']} ({load['requests_per_second']}/s), errors "
        f"{load['errors']} {load['errors_by_cause'] or ''}".rstrip(),
        f"all requests: {_latency(load['latency_ms'])}",
    ]
    lines += [
        f"  {kind}: {entry['requests']} requests, {_latency(entry['latency_ms'])}, "
        f"{entry['outcomes']}"
        for kind, entry in load["by_kind"].items()
    ]
    for window, entry in results["by_window"].items():
        lines.append(
            f"{window} ({entry['from_second']}-{entry['to_second']} s): {entry['requests']} "
            f"requests, {entry['errors']} errors, {_latency(entry['latency_ms'])}"
        )
        if "banner" in entry["by_kind"]:
            lines.append(f"  banner: {_latency(entry['by_kind']['banner']['latency_ms'])}")
    lines += [
        f"outage: banners stale {outage['banner_stale']}, fresh from cache "
        f"{outage['banner_fresh_from_cache']}; no data (never seen) "
        f"{outage['no_data_never_seen']}, no data though seen {outage['no_data_though_seen']}; "
        f"slowest view {outage['max_view_ms']} ms against {outage['budget_with_margin_ms']} ms "
        f"({outage['over_budget']} over)",
        f"actions: recorded {actions['recorded']} ({actions['recorded_during_outage']} during "
        f"the outage), delivered {actions['delivered']}, duplicated {actions['duplicates']}, "
        f"lost {actions['lost']}, misplaced {actions['misplaced']}, dead {actions['dead']}; "
        f"drained in {actions['drain_seconds']} s, {actions['retries']} retries",
        f"longest time without an answer {results['serving']['longest_gap_seconds']} s "
        f"(workers replaced after {results['serving']['max_requests'] or 'the default'} requests)",
        f"server log error lines {results['server']['log_error_lines']}, outbox worker "
        f"{results['server']['outbox_worker_log_error_lines']}",
    ]
    lines += [
        f"target {name}: {target['value']} ({'met' if target['met'] else 'NOT met'})"
        for name, target in results["targets"].items()
    ]
    return lines


def _latency(figures: Mapping[str, float]) -> str:
    if not figures.get("n"):
        return "none"
    return (
        f"p50 {figures['p50_ms']} / p95 {figures['p95_ms']} / p99 {figures['p99_ms']} / "
        f"max {figures['max_ms']} ms"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load_faults", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="the CI version: 10 agents, 15 s")
    parser.add_argument("--database", choices=("sqlite", "postgresql"))
    parser.add_argument("--agents", type=int)
    parser.add_argument("--seconds", type=float, help="how long the agents work")
    parser.add_argument("--outage-at", type=float, help="seconds into the run")
    parser.add_argument("--outage-seconds", type=float, help="0: no outage")
    parser.add_argument("--outage-mode", choices=("down", "hang"))
    parser.add_argument("--hang-seconds", type=float, help="in mode hang, each call's hang")
    parser.add_argument("--latency-ms", type=float, help="each upstream call's latency")
    parser.add_argument("--think-min", type=float, help="seconds between an agent's steps")
    parser.add_argument("--think-max", type=float)
    parser.add_argument("--customers", type=int, help="in the synthetic account")
    parser.add_argument("--workers", type=int, help="gunicorn workers")
    parser.add_argument("--threads", type=int, help="threads per gunicorn worker")
    parser.add_argument(
        "--max-requests", type=int, help="requests before a worker is replaced (restarts in a run)"
    )
    parser.add_argument("--budget-ms", type=int, help="REGULARS_UPSTREAM_BUDGET_MS")
    parser.add_argument("--margin-ms", type=int, help="allowed over the budget")
    parser.add_argument("--ticket-ttl", type=int, help="REGULARS_TICKET_CACHE_SECONDS")
    parser.add_argument("--history-ttl", type=int, help="REGULARS_HISTORY_CACHE_SECONDS")
    parser.add_argument("--drain-timeout", type=float, help="seconds to wait for the outbox")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--output", type=Path, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    options = Options.quick() if args.quick else Options()
    chosen = {
        "database": args.database,
        "agents": args.agents,
        "seconds": args.seconds,
        "outage_at": args.outage_at,
        "outage_seconds": args.outage_seconds,
        "outage_mode": args.outage_mode,
        "hang_seconds": args.hang_seconds,
        "latency_ms": args.latency_ms,
        "think_min_seconds": args.think_min,
        "think_max_seconds": args.think_max,
        "customers": args.customers,
        "budget_ms": args.budget_ms,
        "margin_ms": args.margin_ms,
        "ticket_ttl_seconds": args.ticket_ttl,
        "history_ttl_seconds": args.history_ttl,
        "drain_timeout_seconds": args.drain_timeout,
        "seed": args.seed,
    }
    options = replace(
        options, **{name: value for name, value in chosen.items() if value is not None}
    )
    if args.workers is not None or args.threads is not None or args.max_requests is not None:
        options = replace(
            options,
            gunicorn=replace(
                options.gunicorn,
                workers=args.workers or options.gunicorn.workers,
                threads=args.threads or options.gunicorn.threads,
                max_requests=args.max_requests or options.gunicorn.max_requests,
            ),
        )
    if options.outage_end > options.seconds:
        parser.error("the outage must end before the run does")
    results = report("load_faults", argv, lambda: run(options), summary, args.output)
    return 0 if results is not None and results["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
