"""The trace replayed with helpdesk events: what the sidebar costs when the helpdesk says
"a ticket came" before the agent opens it.

Each new ticket of the trace gets a signed ticket event `lead_seconds` (simulated) before its
first view, as Zendesk's trigger would send it; `lost_share` of them never arrive. The
service's refresher runs in this process (`plugin.sidebar.event_cli.refresher_for`, as
`flask events work` would), so the upstream calls it makes are counted apart from the views':
the fake's total minus the refresher's is what the agents' views cost. The first view of each
new ticket is a whole view (launch, banner and cards; the others the launch and the banner);
its latency, as the client saw it and as the service's own time, is kept apart by whether
the ticket's event came.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client import REGISTRY

from bench import workload
from bench.agent_view import AgentView, agent_view, medians_ms
from bench.load import Client, percentiles
from bench.service import SUBDOMAIN, BenchError, RunningService, launch_token
from plugin import create_app, db
from plugin.clock import utcnow
from plugin.config import load_settings
from plugin.helpdesks.credentials import EXTENSION_KEY as VAULT_KEY
from plugin.helpdesks.zendesk_installations import zendesk_installation
from plugin.helpdesks.zendesk_webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_for
from plugin.models import SharedCacheEntry
from plugin.models.events import EventSource, SnapshotRefresh
from plugin.sidebar.event_cli import refresher_for

if TYPE_CHECKING:
    from bench.benchmark import Bench

JSONObject = dict[str, Any]
SECRET = "bench-webhook-signing-secret-0123456789"  # noqa: S105 (the fake's, not a real one)


@dataclass(frozen=True)
class EventPlan:
    """How many new tickets get an event ahead of their first view, and how many are lost."""

    lead_seconds: float = 180.0
    lost_share: float = 0.0
    seed: int = 19


def replay_with_events(
    bench: Bench, service: RunningService, env: Mapping[str, str], plan: EventPlan
) -> JSONObject:
    """Replay the trace with events on a service whose caches are empty; the figures."""
    installation_id = _enable_events(env)
    app = create_app(
        load_settings(env, Path(env["REGULARS_INSTANCE_PATH"])),
        instance_path=env["REGULARS_INSTANCE_PATH"],
    )
    refresher = refresher_for(app)
    worker = threading.Thread(target=refresher.run, name="bench-events", daemon=True)
    worker.start()
    try:
        return _replay(bench, service, installation_id, plan)
    finally:
        refresher.stop()
        worker.join(timeout=10)
        app.extensions["regulars.helpdesks"].close()
        db.database(app).dispose()


def _enable_events(env: Mapping[str, str]) -> int:
    """Give the account an event secret (as `flask zendesk webhooks install` stores
    Zendesk's) and empty the shared cache and the queue, so the replay starts cold."""
    instance = Path(env["REGULARS_INSTANCE_PATH"])
    app = create_app(load_settings(env, instance), instance_path=str(instance))
    try:
        with db.database(app).sessions() as session:
            installation = zendesk_installation(session, SUBDOMAIN)
            if installation is None:
                raise BenchError("the registered installation is not in the database")
            source = session.get(EventSource, installation.id)
            if source is None:
                source = EventSource(installation_id=installation.id, events_received=0)
                session.add(source)
            source.secret_encrypted = app.extensions[VAULT_KEY].encrypt({"1": SECRET})
            source.remote_ids = {}
            session.execute(sa.delete(SharedCacheEntry))
            session.execute(sa.delete(SnapshotRefresh))
            session.commit()
            return installation.id
    finally:
        app.extensions["regulars.helpdesks"].close()
        db.database(app).dispose()


def _event_body(view: workload.View) -> bytes:
    now = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    ticket = {
        "id": str(view.ticket_id),
        "requester_id": str(view.requester_id),
        "subject": f"Ticket {view.ticket_id}",
        "status": "Open",
        "priority": "Normal",
        "ticket_type": "-",
        "channel": "Mail",
        "tags": "",
        "created_at": now,
        "updated_at": now,
    }
    return json.dumps({"type": "regulars:ticket", "ticket": ticket}).encode()


def _send_event(port: int, installation_id: int, view: workload.View) -> int:
    body = _event_body(view)
    stamp = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    client = Client(port)
    try:
        answer = client.post_bytes(
            f"/events/zendesk/{installation_id}",
            body,
            {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: signature_for(SECRET, stamp, body),
                TIMESTAMP_HEADER: stamp,
            },
        )
        return answer.status
    finally:
        client.close()


def _refresher_calls() -> float:
    """The upstream calls this process (the refresher) has made so far."""
    total = 0.0
    for outcome in ("ok", "rate_limited", "error", "transport"):
        value = REGISTRY.get_sample_value(
            "regulars_upstream_calls_total", {"platform": "zendesk", "outcome": outcome}
        )
        total += value or 0.0
    return total


def _replay(
    bench: Bench, service: RunningService, installation_id: int, plan: EventPlan
) -> JSONObject:
    options = bench.options
    speedup = options.speedup
    trace = bench.trace
    rng = random.Random(plan.seed)
    bench.set_latency(options.latency_ms / speedup)
    first_views = [view for view in trace.views if view.new_ticket]
    sent = {view.ticket_id for view in first_views if rng.random() >= plan.lost_share}
    events = sorted(
        ((max(0.0, view.at - plan.lead_seconds), view) for view in first_views),
        key=lambda pair: pair[0],
    )
    lock = threading.Lock()
    latencies: dict[str, list[float]] = {"with_event": [], "without_event": []}
    server: dict[str, list[float]] = {"with_event": [], "without_event": []}
    by_request: dict[str, dict[str, list[float]]] = {"with_event": {}, "without_event": {}}
    by_part: dict[str, dict[str, list[float]]] = {"with_event": {}, "without_event": {}}
    failures: dict[str, int] = {}
    refused: dict[str, int] = {}
    by_agent: dict[int, list[workload.View]] = {}
    for view in trace.views:
        by_agent.setdefault(view.agent, []).append(view)
    origin = time.perf_counter() + 0.5
    counting = threading.Event()
    baseline = {"refresher": 0.0}

    def start_counting() -> None:
        nonlocal origin
        bench.reset_calls()
        baseline["refresher"] = _refresher_calls()
        counting.set()
        warmup_ends = origin + trace.account.config.warmup_minutes * 60 / speedup
        origin += max(0.0, time.perf_counter() - warmup_ends)

    warmed_up = threading.Barrier(len(by_agent), action=start_counting)

    def helpdesk() -> None:
        for at, view in events:
            time.sleep(max(0.0, origin + at / speedup - time.perf_counter()))
            if view.ticket_id not in sent:
                continue
            status = _send_event(service.port, installation_id, view)
            if status != 202:
                with lock:
                    refused[str(status)] = refused.get(str(status), 0) + 1

    def agent(views: list[workload.View]) -> None:
        counted = False
        for view in views:
            if view.counted and not counted:
                warmed_up.wait()
                counted = True
            time.sleep(max(0.0, origin + view.at / speedup - time.perf_counter()))
            # The views the figures are about, a new ticket's first view, are whole views;
            # the others (reopened tickets) are the launch and the banner, so that the
            # replay, 120 times faster than the trace, does not become a saturation test.
            timed = view.counted and view.new_ticket
            seen = _view(bench, service, view, cards=timed)
            with lock:
                status = seen if isinstance(seen, str) else str(seen.status)
                if status != "200" or isinstance(seen, str):
                    failures[status] = failures.get(status, 0) + 1
                elif timed:
                    kind = "with_event" if view.ticket_id in sent else "without_event"
                    latencies[kind].append(seen.client_ms / 1000)
                    server[kind].append(seen.server_ms / 1000)
                    for name, ms in seen.by_request_ms.items():
                        by_request[kind].setdefault(name, []).append(ms / 1000)
                    for name, ms in seen.parts_ms.items():
                        by_part[kind].setdefault(name, []).append(ms / 1000)
        if not counted:
            warmed_up.wait()

    threads = [threading.Thread(target=agent, args=(views,)) for views in by_agent.values()]
    threads.append(threading.Thread(target=helpdesk))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(0.2)
    calls = bench.calls()
    bench.set_latency(options.latency_ms)
    counted_views = len(trace.counted_views)
    total = sum(calls.values())
    on_events = _refresher_calls() - baseline["refresher"]
    counted_events = sum(1 for at, view in events if view.counted and view.ticket_id in sent)
    return {
        "lost_share": plan.lost_share,
        "lead_seconds": plan.lead_seconds,
        "events_sent": len(sent),
        "events_refused": refused,
        "views": counted_views,
        "failures": failures,
        "upstream_calls": {
            "total_per_view": round(total / counted_views, 3),
            # The fake counts a call when it arrives, this process when it is answered: a
            # refresh in flight when counting starts may be counted by one side only.
            "view_path_per_view": round(max(0.0, total - on_events) / counted_views, 3),
            "event_path": int(on_events),
            "event_path_per_event": round(on_events / max(1, counted_events), 3),
            "by_route": calls,
        },
        # New tickets' first views, whole (launch, banner, cards), by whether an event came
        # first: as the client saw them, and the service's own time for their requests.
        "view_latency_ms": {kind: percentiles(samples) for kind, samples in latencies.items()},
        "view_server_ms": {kind: percentiles(samples) for kind, samples in server.items()},
        "view_server_ms_by_request_p50": {
            kind: medians_ms(samples) for kind, samples in by_request.items() if samples
        },
        "view_server_ms_by_part_p50": {
            kind: medians_ms(samples) for kind, samples in by_part.items() if samples
        },
    }


def _view(
    bench: Bench, service: RunningService, view: workload.View, *, cards: bool
) -> AgentView | str:
    """One sidebar load on a new connection (launch, banner, and the cards if `cards`); the
    error's name if it could not be made."""
    from bench.banner_load import agent_id

    client = Client(service.port)
    try:
        ticket = workload.Ticket(view.ticket_id, view.requester_id, days_ago=0)
        return agent_view(
            client, launch_token(bench.key, agent_id(view.agent)), ticket, cards=cards
        )
    except (OSError, BenchError) as error:
        return type(error).__name__
    finally:
        client.close()
