"""The benchmark's banner measurements: one view at a time, closed loops, the trace replayed.

Each sidebar request here is what the page sends for the banner (`banner`); the whole view
with its cards is bench/agent_view.py. `Bench` (bench/benchmark.py) holds the run's fake and
options.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench import workload
from bench.agent_view import page_query
from bench.load import Client, LoopResult, Request, Response, closed_loop, percentiles
from bench.service import BenchError, RunningService, launch, launch_token

if TYPE_CHECKING:
    from bench.benchmark import Bench

JSONObject = dict[str, Any]
PRODUCTION_TTLS = {"ticket": 120, "history": 600}
_ASSET = re.compile(r'<(?:link[^>]+href|script[^>]+src)="([^"]+)"')
# What sidebar.js loads only with the parts that use it (the account review's styles, those of
# what shows after a click or on some cards, the scripts that send forms, store the banner,
# follow the amount and the gestures): named on the page's body as data-asset-*.
_ON_DEMAND = re.compile(r'data-asset-([a-z-]+)="([^"]+)"')


def repeat(tickets: list[workload.Ticket], count: int) -> list[workload.Ticket]:
    return [tickets[n % len(tickets)] for n in range(count)]


def banner(client: Client, session: str, ticket: workload.Ticket, *, hint: bool) -> Response:
    """The page's request for the banner, with the requester hint and the ticket's fields as
    the page sends them (from the helpdesk's app framework); `hint=False` is a page that
    sends neither."""
    query = {"ticket_id": str(ticket.id)}
    if hint:
        query |= {
            "requester_id": str(ticket.requester_id),
            "subject": f"Ticket {ticket.id}",
            "status": "open",
            "channel": "email",
        }
    return client.get(
        "/sidebar/banner",
        query=query,
        headers={"Authorization": f"Bearer {session}", "Accept": "text/html"},
    )


def agent_id(index: int) -> str:
    return str(workload.FIRST_AGENT_ID + index)


def session_for(bench: Bench, client: Client, agent: int) -> str:
    return launch(client, launch_token(bench.key, agent_id(agent)))[1]


def one_at_a_time(
    bench: Bench, service: RunningService, tickets: list[workload.Ticket], *, hint: bool
) -> JSONObject:
    """Latency of views made one after another by one agent; with the upstream calls made."""
    client = Client(service.port)
    try:
        session = session_for(bench, client, 0)
        bench.reset_calls()
        samples = []
        for ticket in tickets:
            answer = banner(client, session, ticket, hint=hint)
            if answer.status != 200:
                raise BenchError(f"ticket {ticket.id}: HTTP {answer.status}\n{answer.text[:300]}")
            samples.append(answer.seconds)
    finally:
        client.close()
    calls = sum(bench.calls().values())
    return percentiles(samples) | {"upstream_calls_per_view": round(calls / len(tickets), 3)}


def prewarm(
    bench: Bench, service: RunningService, tickets: list[workload.Ticket], rounds: int = 40
) -> None:
    """View the tickets on fresh connections until a whole round costs no call.

    Each gunicorn worker has its own cache, and a new connection may land on either; a
    round that costs nothing has found the tickets cached wherever it landed.
    """
    client = Client(service.port)
    session = session_for(bench, client, 0)
    client.close()
    for _ in range(rounds):
        bench.reset_calls()
        for ticket in tickets:
            for _ in range(2 * bench.options.gunicorn.workers):
                banner(client, session, ticket, hint=True)
                client.close()
        if not bench.calls():
            return
    raise BenchError(f"the warm tickets still cost calls after {rounds} rounds")


@dataclass
class Saturation:
    """Closed-loop rounds against one route: each round's rate, and the totals of them all."""

    per_second: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    server_cpu_seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    upstream_calls: int = 0

    def add(self, result: LoopResult, server_cpu: float, client_cpu: float, calls: int) -> None:
        self.per_second.append(result.per_second)
        self.latencies += result.latencies
        for name, count in result.failures.items():
            self.failures[name] = self.failures.get(name, 0) + count
        self.server_cpu_seconds += server_cpu
        self.client_cpu_seconds += client_cpu
        self.upstream_calls += calls

    def figures(self, unit: str) -> JSONObject:
        """The median round's rate, CPU per request on each side, latency under load."""
        answered = max(1, len(self.latencies))
        return {
            f"{unit}s_per_second": round(statistics.median(self.per_second), 1),
            f"{unit}s_per_second_by_round": [round(rate, 1) for rate in self.per_second],
            f"server_cpu_ms_per_{unit}": round(1000 * self.server_cpu_seconds / answered, 3),
            f"load_generator_cpu_ms_per_{unit}": round(
                1000 * self.client_cpu_seconds / answered, 3
            ),
            "saturation_latency_ms": percentiles(self.latencies),
            f"saturation_upstream_calls_per_{unit}": round(self.upstream_calls / answered, 3),
            "saturation_failures": self.failures,
        }


def saturate(
    bench: Bench,
    service: RunningService,
    request: Request,
    into: Saturation,
    setup: Callable[[Client, int], None] | None = None,
) -> None:
    """One closed-loop round of `concurrency` clients; adds its figures to `into`."""
    options = bench.options
    bench.reset_calls()
    server_before, client_before = service.cpu_seconds(), time.process_time()
    result = closed_loop(
        service.port,
        request,
        concurrency=options.concurrency,
        seconds=options.saturation_seconds / options.saturation_rounds,
        max_requests=1_000_000,
        setup=setup,
    )
    into.add(
        result,
        server_cpu=service.cpu_seconds() - server_before,
        client_cpu=time.process_time() - client_before,
        calls=sum(bench.calls().values()),
    )


def banner_requests(
    bench: Bench, tickets: list[workload.Ticket], *, hint: bool
) -> tuple[Callable[[Client, int], None], Request]:
    """A closed loop's setup (each client launches its own sidebar) and its banner request.

    Each client views its own ticket, so that no two views share an upstream fetch: with the
    cache off, every view then costs exactly its two calls.
    """
    if len(tickets) < bench.options.concurrency:
        raise BenchError(f"{bench.options.concurrency} clients need as many tickets")
    sessions: dict[int, str] = {}

    def setup(client: Client, index: int) -> None:
        sessions[index] = session_for(bench, client, index)

    def request(client: Client, index: int, n: int) -> Response:
        return banner(client, sessions[index], tickets[index], hint=hint)

    return setup, request


def noop_request(client: Client, index: int, n: int) -> Response:
    return client.get("/healthz")


def noop_latency(service: RunningService, views: int) -> JSONObject:
    client = Client(service.port)
    try:
        samples = [client.get("/healthz").seconds for _ in range(views)]
    finally:
        client.close()
    return percentiles(samples)


def own_css_js(page: str, fetch: Callable[[str], bytes]) -> JSONObject:
    """The sidebar's own CSS and JS as served (minified, uncompressed), in bytes.

    `own_css_js_bytes` is what every view loads (the page's own links); a view whose parts
    need more (the account review, what shows after a click or on some cards, an amount with
    an approval threshold, a gesture on its way, a banner to store) loads those files too, up
    to `own_css_js_bytes_worst` with all of them. `fetch` gives a path's body: the bench's
    HTTP client, or a test's Flask client (tests/sidebar/test_asset_budget.py).
    """
    every_view = sum(
        len(fetch(link))
        for link in _ASSET.findall(page)
        # Not the helpdesk's SDK: Zendesk's CDN serves it (a test's page has a vendored copy).
        if link.startswith(("/static/css/", "/static/js/"))
    )
    on_demand = {name: len(fetch(url)) for name, url in _ON_DEMAND.findall(page)}
    return {
        "own_css_js_bytes": every_view,
        "own_css_js_on_demand_bytes": on_demand,
        "own_css_js_bytes_worst": every_view + sum(on_demand.values()),
    }


def view_bytes(bench: Bench, service: RunningService, ticket: workload.Ticket) -> JSONObject:
    """Bytes one sidebar view transfers: page, its own CSS and JS, the view (the banner and its
    cards, as the page asks for them); not the SDK; and the sidebar's own CSS and JS counted
    as `own_css_js` counts them."""
    client = Client(service.port)
    try:
        page, session = launch(client, launch_token(bench.key, agent_id(0)))
        links = _ASSET.findall(page.text)
        # Absolute URLs are the helpdesk's SDK, served by Zendesk's CDN, not by the service.
        assets = {link: client.get(link) for link in links if link.startswith("/")}
        own = own_css_js(page.text, lambda path: (assets.get(path) or client.get(path)).body)
        answer = client.get(
            "/sidebar/view",
            query=page_query(ticket),
            headers={"Authorization": f"Bearer {session}", "Accept": "text/html"},
        )
    finally:
        client.close()
    items = {"page": page, **assets, "view": answer}
    return {
        "body_bytes": {name: len(a.body) for name, a in items.items()},
        "total_body_bytes": sum(len(a.body) for a in items.values()),
        "total_with_headers_bytes": sum(len(a.body) + a.header_bytes for a in items.values()),
        **own,
        "sdk_excluded": [link for link in links if not link.startswith("/")],
    }


def replay(bench: Bench, service: RunningService, *, hint: bool) -> JSONObject:
    """Replay the trace: one thread per agent, each view a launch then the banner.

    Each view opens its own connection (an agent's views are a minute apart, longer than any
    keep-alive), so views spread over the workers as they would. When every agent has made
    its warm-up views, the fake's counters are reset and the counted views start: the calls
    from then on, divided by the counted views, are exactly what those views cost.
    """
    options = bench.options
    speedup = options.speedup
    trace = bench.trace
    bench.set_latency(options.latency_ms / speedup)
    failures: dict[str, int] = {}
    lags: list[float] = []
    lock = threading.Lock()
    by_agent: dict[int, list[workload.View]] = {}
    for view in trace.views:
        by_agent.setdefault(view.agent, []).append(view)
    # The real time simulated second 0 maps to, and the server's CPU time when counting began.
    origin = time.perf_counter() + 0.5
    cpu_before = 0.0

    def start_counting() -> None:
        # Runs once, when the last agent is done with its warm-up views; the pause it took
        # (a few ms) moves the rest of the trace on, so every view keeps its interval.
        nonlocal origin, cpu_before
        bench.reset_calls()
        cpu_before = service.cpu_seconds()
        warmup_ends = origin + trace.account.config.warmup_minutes * 60 / speedup
        origin += max(0.0, time.perf_counter() - warmup_ends)

    warmed_up = threading.Barrier(len(by_agent), action=start_counting)

    def agent(views: list[workload.View]) -> None:
        counting = False
        for view in views:
            if view.counted and not counting:
                warmed_up.wait()
                counting = True
            due = origin + view.at / speedup
            time.sleep(max(0.0, due - time.perf_counter()))
            late = time.perf_counter() - due
            status = _view(bench, service, view, hint=hint)
            with lock:
                if view.counted:
                    lags.append(late)
                if status != "200":
                    failures[status] = failures.get(status, 0) + 1
        if not counting:
            warmed_up.wait()  # an agent without counted views must not hold the others

    threads = [threading.Thread(target=agent, args=(views,)) for views in by_agent.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu = service.cpu_seconds() - cpu_before
    calls = bench.calls()
    bench.set_latency(options.latency_ms)
    counted = len(trace.counted_views)
    total = sum(calls.values())
    ticket_ttl = PRODUCTION_TTLS["ticket"] if hint else 0
    history_ttl = PRODUCTION_TTLS["history"] if hint else 0
    workers = options.gunicorn.workers
    return {
        "calls_per_view": round(total / counted, 3),
        "calls": calls,
        "views": counted,
        "failures": failures,
        # A launch and a banner each.
        "server_cpu_ms_per_view": round(1000 * cpu / counted, 3),
        "lag_ms": percentiles(lags),
        # What the trace costs under a model of the cache (see workload.simulate_calls): with
        # one cache shared by every process, and with one per worker for 2 and 4 workers.
        "model_calls_per_view": {
            ("one_shared_cache" if processes == 1 else f"one_cache_per_worker_{processes}"): round(
                workload.simulate_calls(
                    trace, ticket_ttl=ticket_ttl, history_ttl=history_ttl, processes=processes
                ).calls_per_view,
                3,
            )
            for processes in sorted({1, 2, 4, workers})
        }
        | {
            # The service's read by requester (one call for the requester and their tickets,
            # the ticket's fields from the page): one cache shared by the processes (the
            # database's), and what one cache per worker would cost.
            (
                "by_requester_one_shared_cache"
                if processes == 1
                else f"by_requester_one_cache_per_worker_{processes}"
            ): round(
                workload.simulate_requester_calls(
                    trace, ttl=history_ttl, processes=processes
                ).calls_per_view,
                3,
            )
            for processes in (1, 2)
        }
        | {
            # Every ticket fetched at least once: what no cache of ticket reads can go under.
            "floor_distinct_tickets": round(
                len({view.ticket_id for view in trace.counted_views}) / counted, 3
            ),
        },
    }


def _view(bench: Bench, service: RunningService, view: workload.View, *, hint: bool) -> str:
    """One sidebar load on a new connection: the launch, then the banner; the status."""
    client = Client(service.port)
    try:
        session = launch(client, launch_token(bench.key, agent_id(view.agent)))[1]
        ticket = workload.Ticket(view.ticket_id, view.requester_id, days_ago=0)
        return str(banner(client, session, ticket, hint=hint).status)
    except (OSError, BenchError) as error:
        return type(error).__name__
    finally:
        client.close()
