"""The HTTP plumbing every upstream client (Zendesk, Freshdesk, Shopify) shares: one pooled
session and call budget per account, a timeout on every call, 429/Retry-After, transport errors.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.exceptions import InvalidSchema, InvalidURL, MissingSchema
from urllib3.exceptions import NameResolutionError, NewConnectionError
from urllib3.util.retry import Retry

from plugin.helpdesks.interface import GroupDirectory, HelpdeskError, Transport
from plugin.observability import count_upstream_call

USER_AGENT = "Regulars/0.1"
POOL_SIZE = 10
# Zendesk's Team plan and Freshdesk's smallest paid plan both allow 200 calls a minute.
DEFAULT_CALLS_PER_MINUTE = 200
# The agents' own helpdesk tabs and other apps share the account's limit: leave them a fifth.
DEFAULT_USABLE_FRACTION = 0.8
WINDOW_SECONDS = 60.0
# A 429 without a readable Retry-After: wait out a whole rate-limit window.
DEFAULT_RETRY_AFTER_SECONDS = 60.0

TRANSPORT_FAILURES: dict[Transport, str] = {
    "timeout": "the call timed out",
    "unresolved": "the host name {host} does not resolve",
    "refused": "{host} refused the connection",
    "tls": "the secure connection to {host} failed",
    "connection": "the connection to {host} failed",
    "broken": "the answer broke off",
    "invalid_url": "the URL is malformed",
}

logger = logging.getLogger(__name__)


class CallBudget:
    """Share one account's per-minute call allowance between threads.

    A sliding window over the last minute, like the helpdesks' own accounting, so a client can
    refuse a call it knows would be over the limit instead of spending a request to learn it.
    """

    def __init__(
        self,
        *,
        calls_per_minute: int = DEFAULT_CALLS_PER_MINUTE,
        usable_fraction: float = DEFAULT_USABLE_FRACTION,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if calls_per_minute < 1:
            raise ValueError("calls_per_minute must be at least 1")
        if not 0 < usable_fraction <= 1:
            raise ValueError("usable_fraction must be in (0, 1]")
        self._usable_fraction = usable_fraction
        self.capacity = max(1, math.floor(calls_per_minute * usable_fraction))
        self._clock = clock
        self._lock = threading.Lock()
        self._calls: deque[float] = deque()
        self._paused_until = -math.inf

    def observe_limit(self, calls_per_minute: int) -> None:
        """Follow the account's real limit, as its answers report it.

        The budget starts at the smallest plan's limit; an Enterprise account tells its own on
        the first answer, and Regulars then uses its share of that.
        """
        if calls_per_minute < 1:
            return
        with self._lock:
            self.capacity = max(1, math.floor(calls_per_minute * self._usable_fraction))

    def try_acquire(self) -> bool:
        """Spend one call if the account has one left this minute and is not paused."""
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                return False
            self._forget_before(now - WINDOW_SECONDS)
            if len(self._calls) >= self.capacity:
                return False
            self._calls.append(now)
            return True

    def pause_until(self, monotonic_deadline: float) -> None:
        """Refuse every call until the deadline (a later pause wins over an earlier one)."""
        with self._lock:
            self._paused_until = max(self._paused_until, monotonic_deadline)

    def pause_for(self, seconds: float) -> None:
        """Refuse every call for the next `seconds`, on this budget's clock."""
        self.pause_until(self._clock() + max(0.0, seconds))

    def seconds_until_available(self) -> float:
        """Return how long until `try_acquire` could succeed; 0 if it could now."""
        with self._lock:
            now = self._clock()
            self._forget_before(now - WINDOW_SECONDS)
            wait = self._paused_until - now
            if len(self._calls) >= self.capacity:
                wait = max(wait, self._calls[0] + WINDOW_SECONDS - now)
            return max(0.0, wait)

    def _forget_before(self, cutoff: float) -> None:
        while self._calls and self._calls[0] <= cutoff:
            self._calls.popleft()


def new_session() -> requests.Session:
    """Return a session with pooled connections and no automatic retries."""
    session = requests.Session()
    # Retrying is the caller's decision: a blind retry on 429 would spend more of the account's
    # budget, and the sidebar would rather show cached data than wait.
    adapter = HTTPAdapter(
        pool_maxsize=POOL_SIZE,
        max_retries=Retry(total=0, read=False, respect_retry_after_header=False),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    return session


class AccountSessions:
    """One pooled session and one call budget per upstream account, shared by every request."""

    def __init__(self, *, usable_fraction: float = DEFAULT_USABLE_FRACTION) -> None:
        # With several service processes, each gets its share of the account's allowance.
        self._usable_fraction = usable_fraction
        self._lock = threading.Lock()
        self._sessions: dict[str, requests.Session] = {}
        self._budgets: dict[str, CallBudget] = {}
        self._groups: dict[str, GroupDirectory] = {}

    def session(self, base_url: str) -> requests.Session:
        """Return the account's session, creating it on first use."""
        key = _account_key(base_url)
        with self._lock:
            if key not in self._sessions:
                self._sessions[key] = new_session()
            return self._sessions[key]

    def budget(
        self, base_url: str, *, calls_per_minute: int = DEFAULT_CALLS_PER_MINUTE
    ) -> CallBudget:
        """Return the account's call budget; `calls_per_minute` counts only on first use."""
        key = _account_key(base_url)
        with self._lock:
            if key not in self._budgets:
                self._budgets[key] = CallBudget(
                    calls_per_minute=calls_per_minute, usable_fraction=self._usable_fraction
                )
            return self._budgets[key]

    def groups(self, base_url: str) -> GroupDirectory:
        """Return the account's group names, remembered between the clients made for it."""
        key = _account_key(base_url)
        with self._lock:
            if key not in self._groups:
                self._groups[key] = GroupDirectory()
            return self._groups[key]

    def close(self) -> None:
        """Close every pooled connection, for shutdown and tests."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
            self._budgets.clear()
            self._groups.clear()
        for session in sessions:
            session.close()


def _account_key(base_url: str) -> str:
    return base_url.rstrip("/").lower()


# --- Reading answers and failures -------------------------------------------------------------


def retry_after_seconds(header: str | None, *, now: datetime | None = None) -> float | None:
    """Return the wait a `Retry-After` header asks for, or None when it says nothing usable.

    RFC 9110 (10.2.3) allows delay-seconds or an HTTP-date; decimal seconds ("2.0", as Shopify
    sends them) are read too. A date already past, or a negative number, means no wait. `now`
    (aware; the current time by default) is what a date is measured from.
    """
    if header is None:
        return None
    text = header.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until_date(text, now or datetime.now(UTC))
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _seconds_until_date(text: str, now: datetime) -> float | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        # An HTTP-date is UTC; the asctime form and "-0000" come back without a zone.
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def utc_timestamp(value: object) -> datetime:
    """Read an answer's ISO 8601 time into naive UTC, as the service stores times.

    Raises TypeError or ValueError for anything else.
    """
    if not isinstance(value, str):
        raise TypeError("timestamp is not a string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def transport_failure(error: requests.RequestException) -> Transport:
    """Say how a request failed to get an answer, as precisely as requests and urllib3 tell."""
    if isinstance(error, requests.Timeout):  # before ConnectionError: ConnectTimeout is both
        return "timeout"
    if isinstance(error, requests.exceptions.SSLError):
        return "tls"
    if not isinstance(error, requests.ConnectionError):
        # Broken chunks, decoding and the like: the transport failed mid-answer.
        return "broken"
    # requests wraps urllib3's MaxRetryError, whose `reason` is the failure itself.
    wrapped = error.args[0] if error.args else None
    reason = getattr(wrapped, "reason", wrapped)
    if isinstance(reason, NameResolutionError):
        return "unresolved"
    if isinstance(reason, NewConnectionError) and isinstance(
        reason.__cause__, ConnectionRefusedError
    ):
        return "refused"
    return "connection"


def same_origin(url: str, base_url: str) -> bool:
    """Say whether `url` is on the API's own scheme, host and port: a next page anywhere else
    would carry the account's credentials to another host.
    """
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())


def describe_call(method: str, url: str) -> str:
    """Name a call by method and path only, so nothing sent with it leaks into messages or logs."""
    return f"{method} {urlsplit(url).path}"


def answered_call(response: requests.Response) -> str:
    """Name the call an answer is to, as `describe_call` does."""
    return describe_call(response.request.method or "", response.url)


# --- Calling an API ---------------------------------------------------------------------------


class HeaderAuth(AuthBase):
    """Send a credential in one header and no Authorization header besides; as a requests auth
    it also keeps ~/.netrc from adding one. Without a header, calls are anonymous.
    """

    def __init__(self, header: str | None = None, value: str = "") -> None:
        self._header = header
        self._value = value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        if self._header is not None:
            request.headers[self._header] = self._value
        return request

    def __repr__(self) -> str:
        return f"<HeaderAuth {self._header or 'anonymous'}>"


class ErrorFactory(Protocol):
    """A client's error class (a HelpdeskError), built from what the plumbing saw."""

    def __call__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = ...,
        transport: Transport | None = ...,
        retry_after: float | None = ...,
    ) -> HelpdeskError: ...


# A client's reading of an error status other than 429, given the call's name.
StatusErrors = Callable[[int, str], HelpdeskError]


@dataclass(frozen=True)
class UpstreamApi:
    """What the plumbing needs to know of one upstream API."""

    name: str  # as messages and logs name it: "Zendesk"
    platform: str  # the label of its calls in the metrics: "zendesk"
    error: ErrorFactory  # what a call that failed in transit, was refused or throttled raises
    # The answers' header telling the account's real calls per minute, if the API sends one.
    rate_limit_header: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


class ApiCaller:
    """Make one client's calls: spend from its account's budget, send with the timeout, count
    the outcome, and turn failures into the client's error (a HelpdeskError saying whether to
    retry). `budget` None: the calls are not budgeted (an anonymous call at connection time).
    `error_for_status` reads an error status other than 429; by default only a 5xx may pass.
    """

    def __init__(
        self,
        api: UpstreamApi,
        *,
        session: requests.Session,
        auth: AuthBase,
        timeout: float,
        budget: CallBudget | None,
        account: str,
        error_for_status: StatusErrors | None = None,
        wall_clock: Callable[[], datetime] = _now,
    ) -> None:
        self.api = api
        self.session = session
        self.budget = budget
        self._auth = auth
        self._timeout = timeout
        self._account = account  # for logs: a host or shop name, never a credential
        self._error_for_status = error_for_status or self._answered_with
        self._wall_clock = wall_clock

    def call(
        self,
        method: str,
        url: str,
        *,
        what: str | None = None,
        params: Mapping[str, str | int] | None = None,
        json: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send a call and return its answer, raising the client's error for an error status."""
        what = what or describe_call(method, url)
        response = self.send(method, url, what=what, params=params, json=json, headers=headers)
        self.raise_for_status(response, what)
        return response

    def send(
        self,
        method: str,
        url: str,
        *,
        what: str | None = None,
        params: Mapping[str, str | int] | None = None,
        json: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Spend a call from the budget and send it; return whatever status answered.

        `what` names the call in messages (its method and path by default). A call the budget
        refuses is not sent; a call that gets no answer raises, saying how it failed.
        """
        what = what or describe_call(method, url)
        if self.budget is not None and not self.budget.try_acquire():
            raise self._budget_spent(what, self.budget.seconds_until_available())
        name, platform = self.api.name, self.api.platform
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json,
                headers=headers,
                auth=self._auth,
                timeout=self._timeout,
            )
        except (InvalidURL, InvalidSchema, MissingSchema) as error:
            # A misconfigured base URL: no retry will fix it.
            count_upstream_call(platform, None)
            raise self.api.error(
                f"{name} request {what} is malformed: {type(error).__name__}",
                retryable=False,
                transport="invalid_url",
            ) from error
        except requests.RequestException as error:
            count_upstream_call(platform, None)
            transport = transport_failure(error)
            reason = TRANSPORT_FAILURES[transport].format(host=urlsplit(url).hostname or url)
            raise self.api.error(
                f"{name} did not answer {what}: {reason} ({type(error).__name__})",
                retryable=True,
                transport=transport,
            ) from error
        count_upstream_call(platform, response.status_code)
        self._observe_limit(response)
        return response

    def raise_for_status(self, response: requests.Response, what: str) -> None:
        """Raise the client's error for an error status: a 429 pauses the budget first."""
        status = response.status_code
        if status < 400:
            return
        if status != 429:
            raise self._error_for_status(status, what)
        wait = self.rate_limit_wait(response)
        then = "calls paused for" if self.budget is not None else "try again in"
        raise self.api.error(
            f"{self.api.name} rate limit reached at {what} (429); {then} {wait:.0f} s",
            retryable=True,
            status=429,
            retry_after=wait,
        )

    def rate_limit_wait(
        self, response: requests.Response, *, unsaid: float = DEFAULT_RETRY_AFTER_SECONDS
    ) -> float:
        """Pause the budget for the wait a 429 asks for and return it: its Retry-After, in
        seconds or as a date, else `unsaid`.
        """
        wait = retry_after_seconds(response.headers.get("Retry-After"), now=self._wall_clock())
        wait = unsaid if wait is None else wait
        self.pause(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Refuse the account's calls for `seconds`: it is rate limited."""
        if self.budget is None:
            return
        self.budget.pause_for(seconds)
        logger.warning(
            "%s rate limit at %s: pausing calls for %.1f s", self.api.name, self._account, seconds
        )

    def check_budget(self, what: str) -> None:
        """Refuse, without spending, a call the budget would refuse now, saying when calls
        resume (`retry_after`): for a write that must not be left halfway.
        """
        wait = self.budget.seconds_until_available() if self.budget is not None else 0.0
        if wait > 0:
            raise self._budget_spent(what, wait)

    def read_json(self, response: requests.Response) -> object:
        """Return the answer's JSON; one that is not JSON is not this API answering."""
        try:
            return response.json()
        except ValueError:
            raise HelpdeskError(
                f"{self.api.name} answered {answered_call(response)} with a body that is not JSON",
                retryable=False,
            ) from None

    def _answered_with(self, status: int, what: str) -> HelpdeskError:
        """The error for a status the client reads no more into: a 5xx may pass, others not."""
        return self.api.error(
            f"{self.api.name} answered {what} with {status}", retryable=status >= 500, status=status
        )

    def _budget_spent(self, what: str, wait: float) -> HelpdeskError:
        return self.api.error(
            f"{self.api.name} call budget for this account is spent; {what} was not sent, "
            f"calls resume in {wait:.0f} s",
            retryable=True,
            retry_after=wait,
        )

    def _observe_limit(self, response: requests.Response) -> None:
        header = self.api.rate_limit_header
        limit = response.headers.get(header, "") if header else ""
        if self.budget is not None and limit.isdigit():
            self.budget.observe_limit(int(limit))
