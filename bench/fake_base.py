"""What the fake helpdesk APIs (bench/fake_zendesk.py, bench/fake_freshdesk.py) share: the
run-time controls and call counters, the fault modes every API route obeys (slow, down, rate
limited, hanging), the per-minute rate limit, and the server on 127.0.0.1.
"""

from __future__ import annotations

import itertools
import math
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType, TracebackType
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar

from flask import Flask, Response, g, jsonify, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

JSONObject = dict[str, Any]
Mode = Literal["normal", "down", "rate_limited", "hang"]

MODES: tuple[Mode, ...] = ("normal", "down", "rate_limited", "hang")
LOOPBACK = "127.0.0.1"
# Calls per minute, as on the helpdesks' Enterprise plans.
DEFAULT_RATE_LIMIT = 700
DEFAULT_HANG_SECONDS = 30.0
# What mode "rate_limited" answers in Retry-After.
RATE_LIMITED_RETRY_AFTER_SECONDS = 30
WINDOW_SECONDS = 60.0

DataT = TypeVar("DataT")


def json_response(body: object, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def api_timestamp(moment: datetime) -> str:
    """Format a naive-UTC or aware datetime as the helpdesks do: 2026-01-02T03:04:05Z."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RateLimitStatus:
    """The outcome of spending one call from the per-minute window."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_seconds: int


class FakeApiState(Generic[DataT]):
    """The data, the controls and the counters, shared by every request thread.

    `lock` guards `data`: hold it when reading data a request may be writing. The controls
    (`latency_seconds`, `mode`, `hang_seconds`, `rate_limit`) can be set at any time from any
    thread, one at a time by assignment or together with `configure`.
    """

    # The id `new_id` gives first: a fake may use its API's own range.
    first_id: ClassVar[int] = 1

    def __init__(
        self,
        data: DataT,
        *,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        latency_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.data = data
        self.lock = threading.RLock()
        self._clock = clock
        self._calls: Counter[str] = Counter()
        self._window: deque[float] = deque()
        self._ids = itertools.count(self.first_id)
        # Set when the server stops, to cut short the requests sleeping in latency or hang.
        self._stopping = threading.Event()
        self._latency_seconds = 0.0
        self._mode: Mode = "normal"
        self._hang_seconds = DEFAULT_HANG_SECONDS
        self._rate_limit = DEFAULT_RATE_LIMIT
        self.configure(latency_seconds=latency_seconds, rate_limit=rate_limit)

    # Controls

    def configure(
        self,
        *,
        latency_seconds: float | None = None,
        mode: str | None = None,
        hang_seconds: float | None = None,
        rate_limit: int | None = None,
    ) -> None:
        """Change the given controls together; if any value is invalid, change none."""
        for name, seconds in (("latency_seconds", latency_seconds), ("hang_seconds", hang_seconds)):
            if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
                raise ValueError(f"{name} must be a finite number of seconds, not {seconds!r}")
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if rate_limit is not None and rate_limit < 1:
            raise ValueError(f"rate_limit must be at least 1, not {rate_limit!r}")
        with self.lock:
            if latency_seconds is not None:
                self._latency_seconds = float(latency_seconds)
            if mode is not None:
                self._mode = mode
            if hang_seconds is not None:
                self._hang_seconds = float(hang_seconds)
            if rate_limit is not None:
                self._rate_limit = rate_limit

    @property
    def latency_seconds(self) -> float:
        """Seconds every API call waits before it is answered."""
        return self._latency_seconds

    @latency_seconds.setter
    def latency_seconds(self, seconds: float) -> None:
        self.configure(latency_seconds=seconds)

    @property
    def mode(self) -> Mode:
        """The behaviour simulated: "normal"; "down" answers 503; "rate_limited" answers 429
        with Retry-After: 30; "hang" waits `hang_seconds` and then answers normally.
        """
        return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        self.configure(mode=mode)

    @property
    def hang_seconds(self) -> float:
        """How long an API call waits in mode "hang"."""
        return self._hang_seconds

    @hang_seconds.setter
    def hang_seconds(self, seconds: float) -> None:
        self.configure(hang_seconds=seconds)

    @property
    def rate_limit(self) -> int:
        """Authenticated calls allowed in any 60-second window."""
        return self._rate_limit

    @rate_limit.setter
    def rate_limit(self, calls_per_minute: int) -> None:
        self.configure(rate_limit=calls_per_minute)

    def config(self) -> JSONObject:
        """The controls as JSON, the way `/_fake/config` takes them."""
        with self.lock:
            return {
                "latency_ms": self._latency_seconds * 1000,
                "mode": self._mode,
                "hang_seconds": self._hang_seconds,
                "rate_limit": self._rate_limit,
            }

    # Counters

    @property
    def calls(self) -> Counter[str]:
        """A snapshot of the calls received so far, by route name."""
        with self.lock:
            return Counter(self._calls)

    def total_calls(self) -> int:
        """All API calls received so far, however they were answered."""
        with self.lock:
            return self._calls.total()

    def reset_counts(self) -> None:
        """Zero the call counters and empty the rate-limit window."""
        with self.lock:
            self._calls.clear()
            self._window.clear()

    # Used while answering requests

    def count(self, route: str) -> None:
        with self.lock:
            self._calls[route] += 1

    def pause(self, seconds: float) -> None:
        """Sleep in a request thread; returns early once the server is stopping."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def stop_pauses(self) -> None:
        """Wake every sleeping request and skip later sleeps: the server is stopping."""
        self._stopping.set()

    def new_id(self) -> int:
        with self.lock:
            return next(self._ids)

    def authenticate(self, authorization: str | None) -> int | None:
        """Return the id of the user or agent the Authorization header acts for, None if
        refused: each fake checks its API's own credentials.
        """
        raise NotImplementedError

    def spend_call(self) -> RateLimitStatus:
        """Take one call from the sliding 60-second window, or tell how long until one frees."""
        with self.lock:
            now = self._clock()
            while self._window and self._window[0] <= now - WINDOW_SECONDS:
                self._window.popleft()
            limit = self._rate_limit
            if len(self._window) >= limit:
                wait = self._window[0] + WINDOW_SECONDS - now
                return RateLimitStatus(False, limit, 0, max(1, math.ceil(wait)))
            self._window.append(now)
            return RateLimitStatus(True, limit, limit - len(self._window), 0)


@dataclass(frozen=True)
class ErrorAnswers:
    """One fake API's error answers: its name, the keys of its error body (the code's and the
    message's), and the codes its 503 and 429 answers carry.
    """

    name: str  # "Zendesk"
    keys: tuple[str, str]
    unavailable_code: str
    rate_limited_code: str

    def error(self, status: int, code: str, message: str) -> Response:
        """An error answer in the API's JSON shape."""
        return json_response(dict(zip(self.keys, (code, message), strict=True)), status)

    def rate_limited(self, message: str, retry_after_seconds: int) -> Response:
        response = self.error(429, self.rate_limited_code, message)
        response.headers["Retry-After"] = str(retry_after_seconds)
        return response


def check_api_calls(
    app: Flask,
    state: FakeApiState[Any],
    answers: ErrorAnswers,
    *,
    routes: Collection[str],
    unauthenticated: Callable[[], Response],
    refusal: str,
    anonymous: Collection[str] = (),
    then: Callable[[str], Response | None] | None = None,
) -> None:
    """Check every call to one of `routes` before the route answers it.

    The call is counted, waits the latency and obeys the mode; then, unless its route is
    `anonymous`, the caller must authenticate (`g.caller_id`: the user or agent it acts for,
    else the `unauthenticated` answer) and spend a call from the rate limit (`g.rate_limit`,
    else a 429 saying `refusal`); `then` may still answer instead of the route.
    """

    @app.before_request
    def _check_the_call() -> Response | None:
        route = request.endpoint
        if route is None or route not in routes:
            return None
        fault = _obey_mode(state, route, answers)
        if fault is not None or route in anonymous:
            return fault
        caller_id = state.authenticate(request.headers.get("Authorization"))
        if caller_id is None:
            return unauthenticated()
        g.caller_id = caller_id
        g.rate_limit = status = state.spend_call()
        if not status.allowed:
            return answers.rate_limited(refusal, status.retry_after_seconds)
        return then(route) if then is not None else None


def _obey_mode(state: FakeApiState[Any], route: str, answers: ErrorAnswers) -> Response | None:
    state.count(route)
    state.pause(state.latency_seconds)
    mode = state.mode
    if mode == "down":
        message = f"{answers.name} is down (fake mode: down)"
        return answers.error(503, answers.unavailable_code, message)
    if mode == "rate_limited":
        message = "Too many requests (fake mode)"
        return answers.rate_limited(message, RATE_LIMITED_RETRY_AFTER_SECONDS)
    if mode == "hang":
        state.pause(state.hang_seconds)
    return None


# --- Server --------------------------------------------------------------------------------------


class _QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without its access log line per request: benchmarks make many."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


StateT = TypeVar("StateT", bound=FakeApiState[Any])


class FakeApiServer(Generic[StateT]):
    """Serve a fake API on 127.0.0.1 from a daemon thread.

    Use it once, as a context manager: `with FakeZendeskServer(data) as server:` then call
    `server.url` and steer it through `server.app_state`. Leaving the block wakes requests
    sleeping in latency or hang, stops the server and closes its socket.
    """

    def __init__(
        self,
        state: StateT,
        create_app: Callable[[StateT], Flask],
        *,
        name: str,
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        if host != LOOPBACK:
            raise ValueError(f"the fake only listens on {LOOPBACK}, not {host!r}")
        self.app_state = state
        self._create_app = create_app
        self._name = name
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._used = False

    @property
    def url(self) -> str:
        """The base URL, such as http://127.0.0.1:54321, while the server runs."""
        if self._server is None:
            raise RuntimeError(f"the fake {self._name} server is not running")
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> None:
        """Listen and serve in a daemon thread; a server starts only once."""
        if self._used:
            raise RuntimeError(f"a fake {self._name} server can be started only once")
        self._used = True
        self._server = make_server(
            self._host,
            self._port,
            self._create_app(self.app_state),
            threaded=True,
            request_handler=_QuietRequestHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-{self._name.lower()}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket; safe to call more than once."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        self.app_state.stop_pauses()
        server.shutdown()
        thread.join()
        server.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve_until_signalled(server: FakeApiServer[Any], *, mode: Mode = "normal") -> int:
    """Serve in `mode` until SIGINT or SIGTERM, printing the URL once listening."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    with server:
        server.app_state.mode = mode
        print(server.url, flush=True)
        stop.wait()
    return 0
