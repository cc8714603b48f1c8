"""Load generation on 127.0.0.1: a light keep-alive HTTP client, closed loops, percentiles.

The client is `http.client` on one persistent connection (no `requests`: its per-call cost
would make the load generator, which shares the machine's cores with the server, the
bottleneck sooner). Every loop is bounded by a request count and a deadline.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    header_bytes: int
    headers: Mapping[str, str]
    seconds: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Client:
    """One keep-alive connection to a server on 127.0.0.1; reconnects when the server closes."""

    def __init__(self, port: int, *, timeout: float = 30.0) -> None:
        self._port = port
        self._timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def get(
        self, path: str, *, query: Mapping[str, str] | None = None, headers: Mapping[str, str] = {}
    ) -> Response:
        target = f"{path}?{urlencode(query)}" if query else path
        return self._send("GET", target, None, dict(headers))

    def post_form(
        self,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        form: Mapping[str, str],
        headers: Mapping[str, str] = {},
    ) -> Response:
        sent = {"Content-Type": "application/x-www-form-urlencoded", **headers}
        target = f"{path}?{urlencode(query)}" if query else path
        return self._send("POST", target, urlencode(form).encode(), sent)

    def post_json(self, path: str, body: object) -> Response:
        payload = json.dumps(body).encode()
        return self._send("POST", path, payload, {"Content-Type": "application/json"})

    def post_bytes(self, path: str, body: bytes, headers: Mapping[str, str]) -> Response:
        """POST a body as given (a signed webhook delivery must arrive byte for byte)."""
        return self._send("POST", path, body, dict(headers))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _send(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> Response:
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection(
                    LOOPBACK, self._port, timeout=self._timeout
                )
            started = time.perf_counter()
            try:
                self._connection.request(method, target, body=body, headers=headers)
                answer = self._connection.getresponse()
                content = answer.read()
            except (ConnectionError, http.client.HTTPException):
                # The server closed an idle keep-alive connection: once more on a new one.
                self.close()
                if attempt == 2:
                    raise
                continue
            elapsed = time.perf_counter() - started
            if answer.will_close:
                self.close()
            header_items = answer.getheaders()
            return Response(
                status=answer.status,
                body=content,
                header_bytes=len(f"HTTP/1.1 {answer.status} {answer.reason}\r\n\r\n")
                + sum(len(name) + len(value) + 4 for name, value in header_items),
                headers={name.lower(): value for name, value in header_items},
                seconds=elapsed,
            )
        raise AssertionError("unreachable")  # pragma: no cover


def percentiles(samples_seconds: list[float]) -> dict[str, float]:
    """p50/p95/p99 (nearest rank) and the count, in milliseconds."""
    if not samples_seconds:
        return {"n": 0}
    ordered = sorted(samples_seconds)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000, 1)

    return {"p50_ms": rank(50), "p95_ms": rank(95), "p99_ms": rank(99), "n": len(ordered)}


def latency_summary(samples_seconds: list[float]) -> dict[str, float]:
    """`percentiles` and the slowest answer, in milliseconds."""
    if not samples_seconds:
        return {"n": 0}
    return percentiles(samples_seconds) | {"max_ms": round(max(samples_seconds) * 1000, 1)}


@dataclass
class LoopResult:
    """What a closed loop did: requests answered 2xx, their latencies, and failures."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


# request(client, client_index, n) sends the n-th request of the loop.
Request = Callable[[Client, int, int], Response]


def closed_loop(
    port: int,
    request: Request,
    *,
    concurrency: int,
    seconds: float,
    max_requests: int,
    setup: Callable[[Client, int], None] | None = None,
) -> LoopResult:
    """Run `concurrency` clients, each sending its next request as soon as the last is answered.

    The loop stops at `seconds` or after `max_requests`, whichever comes first; each client
    first runs `setup(client, index)`. Latencies are kept for 2xx answers, failures counted
    by status (or exception name).
    """
    result = LoopResult()
    lock = threading.Lock()
    counter = iter(range(max_requests))
    ready = threading.Barrier(concurrency + 1)
    deadline = [math.inf]

    def work(index: int) -> None:
        client = Client(port)
        latencies: list[float] = []
        failures: dict[str, int] = {}
        try:
            if setup is not None:
                try:
                    setup(client, index)
                except BaseException:
                    ready.abort()  # nobody waits for a client that cannot start
                    raise
            ready.wait()
            while time.perf_counter() < deadline[0]:
                with lock:
                    n = next(counter, None)
                if n is None:
                    break
                try:
                    answer = request(client, index, n)
                except OSError as error:
                    failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1
                    continue
                if 200 <= answer.status < 300:
                    latencies.append(answer.seconds)
                else:
                    failures[str(answer.status)] = failures.get(str(answer.status), 0) + 1
        finally:
            client.close()
            with lock:
                result.latencies.extend(latencies)
                for name, count in failures.items():
                    result.failures[name] = result.failures.get(name, 0) + count

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    deadline[0] = started + seconds
    for thread in threads:
        thread.join(seconds + 60)
    result.seconds = time.perf_counter() - started
    return result
