"""What an operator sees of the running service: logs with request ids, and Prometheus metrics.

Every request gets an id — the `X-Request-Id` a proxy in front sent, when it is a plausible
one, or a new one — which comes back in the response's header and is on every log line written
while the request runs. In JSON mode (`REGULARS_LOG_FORMAT=json`, what the gunicorn
configuration sets) each line is one JSON object and each request writes one access line:
method, route (the rule, never the path or query string, which carry ids and search words),
status and duration. Log lines say ids, never customer data or secrets.

Metrics are counted in this process; under gunicorn, with `PROMETHEUS_MULTIPROC_DIR` set (the
gunicorn configuration does it), every worker writes its figures there and `/metrics` adds
them up.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Literal

from flask import Flask, Response, g, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

REQUEST_ID_HEADER = "X-Request-Id"
_PLAUSIBLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# The fields a log line may carry besides its message, each added with `extra=`.
LOG_FIELDS = ("method", "route", "status", "duration_ms", "installation_id")
LogFormat = Literal["text", "json"]
NO_REQUEST = "-"

# --- Metrics ---------------------------------------------------------------------------------

REQUEST_SECONDS = Histogram(
    "regulars_http_request_duration_seconds",
    "Time to answer a request, by route (the rule), method and status",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
UPSTREAM_CALLS = Counter(
    "regulars_upstream_calls_total",
    "Calls to the helpdesks' and shops' APIs, by platform and outcome "
    "(ok, rate_limited for a 429, error for another error status, transport for no answer)",
    ["platform", "outcome"],
)
CACHE_LOOKUPS = Counter(
    "regulars_upstream_cache_lookups_total",
    "Reads of helpdesk and shop answers through the upstream cache: hit (fresh in this "
    "process), miss (a fetch started), joined (a fetch in flight answers it), shared_hit "
    "(the fetch found a fresh answer another process stored: no call), stale (an older "
    "answer was served past the time budget), held_back (no fetch started: the helpdesk "
    "is failing and one fetch to it is out already)",
    ["result"],
)
UpstreamOutcome = Literal["ok", "rate_limited", "error", "transport"]
CacheResult = Literal["hit", "miss", "joined", "shared_hit", "stale", "held_back"]


def count_upstream_call(platform: str, status: int | None) -> None:
    """Count one call to a remote API; `status` is None when it got no answer."""
    outcome: UpstreamOutcome
    if status is None:
        outcome = "transport"
    elif status == 429:
        outcome = "rate_limited"
    elif status >= 400:
        outcome = "error"
    else:
        outcome = "ok"
    UPSTREAM_CALLS.labels(platform=platform, outcome=outcome).inc()


def count_cache_lookup(result: CacheResult) -> None:
    counter = _cache_lookup_counters.get(result)
    if counter is None:
        # `labels` takes a lock and builds the key each time: a few µs of every warm view.
        counter = _cache_lookup_counters.setdefault(result, CACHE_LOOKUPS.labels(result=result))
    counter.inc()


_cache_lookup_counters: dict[str, Counter] = {}


# Figures read from the database when /metrics is scraped (the outbox's depth...): each source
# registers a function that yields (name, help, value) with the app's database at hand.
Gauge = tuple[str, str, float]
_gauge_sources: list[Callable[[Flask], Iterable[Gauge]]] = []


def add_gauge_source(source: Callable[[Flask], Iterable[Gauge]]) -> None:
    """Add a function that reads gauges (name, help, value) when /metrics is scraped."""
    if source not in _gauge_sources:
        _gauge_sources.append(source)


def metrics_page(app: Flask) -> Response:
    """The Prometheus exposition: this process's (or all workers') counters, and the gauges."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    body = generate_latest(registry)
    lines = []
    for source in _gauge_sources:
        for name, help_text, value in source(app):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]
    if lines:
        body += ("\n".join(lines) + "\n").encode()
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


# --- Logs ------------------------------------------------------------------------------------


class RequestIdFilter(logging.Filter):
    """Put the current request's id on every log record ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            found = g.get("request_id") if has_request_context() else None
            record.request_id = found or NO_REQUEST
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, and known fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", NO_REQUEST)
        if request_id != NO_REQUEST:
            entry["request_id"] = request_id
        for name in LOG_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _CurrentStderr:
    """Whatever sys.stderr is when a line is written (a test runner swaps it), not at set-up."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure_logging(log_format: LogFormat, level: str) -> None:
    """Send the service's log lines to stderr in the chosen format, with request ids.

    Idempotent: the handler is replaced, not added again, when an app is created again.
    """
    logger = logging.getLogger("plugin")
    for handler in [h for h in logger.handlers if getattr(h, "regulars", False)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(_CurrentStderr())
    handler.regulars = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logger.addHandler(handler)
    logger.setLevel(level)


def time_part(name: str, started: float) -> None:
    """Say in this answer's Server-Timing how long a part of it took (a card of the sidebar's
    view, from `started`, a `time.perf_counter()`): `name;dur=` after the whole's `app;dur=`."""
    parts = g.setdefault("server_timing_parts", [])
    parts.append((name, (time.perf_counter() - started) * 1000))


def init_app(app: Flask, *, log_format: LogFormat) -> None:
    """Give each request an id, time it for the metrics, and (in JSON mode) log it."""
    access = logging.getLogger("plugin.access")

    @app.before_request
    def start_request() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _PLAUSIBLE_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def finish_request(response: Response) -> Response:
        started = g.get("request_started")
        if started is None:  # a request that failed before start_request ran
            return response
        seconds = time.perf_counter() - started
        route = request.url_rule.rule if request.url_rule else "unmatched"
        REQUEST_SECONDS.labels(
            route=route, method=request.method, status=str(response.status_code)
        ).observe(seconds)
        response.headers[REQUEST_ID_HEADER] = g.request_id
        # The service's own time, for the browser's network panel and the benchmark (which
        # adds up a sidebar view's requests on the server's side of the wire).
        response.headers["Server-Timing"] = ", ".join(
            [f"app;dur={seconds * 1000:.2f}"]
            + [f"{name};dur={ms:.2f}" for name, ms in g.get("server_timing_parts", ())]
        )
        if log_format == "json":
            access.info(
                "request",
                extra={
                    "method": request.method,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )
        return response
