"""The HTTP plumbing the upstream clients share: Retry-After in both its forms, the call budget,
timeouts, transport failures, error statuses, and the pooled sessions per account.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses
from responses import matchers

from plugin.helpdesks.http import (
    DEFAULT_RETRY_AFTER_SECONDS,
    AccountSessions,
    ApiCaller,
    CallBudget,
    HeaderAuth,
    UpstreamApi,
    describe_call,
    retry_after_seconds,
    same_origin,
)
from plugin.helpdesks.interface import HelpdeskError
from tests.clock import FakeClock

BASE = "https://shop.example.com"
URL = f"{BASE}/api/v1/things/7.json"
WHAT = "GET /api/v1/things/7.json"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class ExampleError(HelpdeskError):
    """The example API's own error class, as each client has one."""


EXAMPLE_API = UpstreamApi(
    name="Example", platform="example", error=ExampleError, rate_limit_header="X-Rate-Limit"
)


@pytest.fixture
def budget(clock: FakeClock) -> CallBudget:
    return CallBudget(calls_per_minute=100, usable_fraction=1.0, clock=clock)


@pytest.fixture
def caller(http: requests.Session, budget: CallBudget) -> ApiCaller:
    return ApiCaller(
        EXAMPLE_API,
        session=http,
        auth=HeaderAuth("Authorization", "Bearer example-token"),
        timeout=3.0,
        budget=budget,
        account="shop.example.com",
        wall_clock=lambda: NOW,
    )


# --- Retry-After, in both of RFC 9110's forms ---------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("30", 30.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("2.0", 2.0),  # Shopify sends seconds with a decimal point
        ("-5", 0.0),
    ],
)
def test_retry_after_in_seconds(header: str, seconds: float) -> None:
    assert retry_after_seconds(header, now=NOW) == seconds


@pytest.mark.parametrize(
    "header",
    [
        "Tue, 24 Nov 2026 12:01:30 GMT",  # IMF-fixdate, the form to send
        "Tuesday, 24-Nov-26 12:01:30 GMT",  # the obsolete RFC 850 form
        "Tue Nov 24 12:01:30 2026",  # the obsolete asctime form, UTC without saying so
    ],
)
def test_retry_after_as_an_http_date_is_the_time_until_it(header: str) -> None:
    assert retry_after_seconds(header, now=NOW) == 90.0


def test_retry_after_as_a_date_in_the_past_means_no_wait() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=NOW) == 0.0


def test_retry_after_as_a_date_is_measured_from_the_current_time_by_default() -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=120)).strftime("%a, %d %b %Y %H:%M:%S GMT")

    wait = retry_after_seconds(soon)

    assert wait is not None and 115 < wait <= 120


@pytest.mark.parametrize(
    "header",
    [None, "", "soon", "30 seconds", "inf", "nan", "Tue, 32 Nov 2026 12:00:00 GMT"],
)
def test_retry_after_that_says_nothing_usable_is_none(header: str | None) -> None:
    assert retry_after_seconds(header, now=NOW) is None


# --- 429: the budget pauses for the wait the answer asks for ------------------------------------


def test_429_with_an_http_date_pauses_the_account_until_that_date(
    caller: ApiCaller, budget: CallBudget, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.get(URL, status=429, headers={"Retry-After": "Tue, 24 Nov 2026 12:01:30 GMT"})

    with pytest.raises(ExampleError, match=r"\(429\); calls paused for 90 s") as raised:
        caller.call("GET", URL)

    assert (raised.value.status, raised.value.retryable, raised.value.retry_after) == (
        429,
        True,
        90.0,
    )
    assert budget.seconds_until_available() == 90.0
    clock.advance(89)
    with pytest.raises(ExampleError, match="budget"):  # refused here, without a call
        caller.call("GET", URL)
    assert len(rsps.calls) == 1
    clock.advance(1)
    rsps.get(URL, json={})
    assert caller.call("GET", URL).status_code == 200


def test_429_with_a_date_already_past_pauses_nothing(
    caller: ApiCaller, budget: CallBudget, rsps: responses.RequestsMock
) -> None:
    rsps.get(URL, status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})

    with pytest.raises(ExampleError) as raised:
        caller.call("GET", URL)

    assert raised.value.retry_after == 0.0
    assert budget.seconds_until_available() == 0.0


@pytest.mark.parametrize("headers", [{}, {"Retry-After": "garbage"}])
def test_429_without_a_readable_wait_pauses_for_the_default(
    caller: ApiCaller,
    budget: CallBudget,
    rsps: responses.RequestsMock,
    headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    rsps.get(URL, status=429, headers=headers)

    with pytest.raises(ExampleError) as raised:
        caller.call("GET", URL)

    assert raised.value.retry_after == DEFAULT_RETRY_AFTER_SECONDS
    assert budget.seconds_until_available() == DEFAULT_RETRY_AFTER_SECONDS
    assert "Example rate limit at shop.example.com: pausing calls for 60.0 s" in caplog.text


def test_a_client_may_say_what_a_429_without_retry_after_waits_for(
    caller: ApiCaller, budget: CallBudget, rsps: responses.RequestsMock
) -> None:
    rsps.get(URL, status=429)
    response = caller.send("GET", URL)

    assert caller.rate_limit_wait(response, unsaid=2.5) == 2.5
    assert budget.seconds_until_available() == 2.5


def test_429_without_a_budget_says_when_to_try_again(
    http: requests.Session, rsps: responses.RequestsMock
) -> None:
    anonymous = ApiCaller(
        EXAMPLE_API, session=http, auth=HeaderAuth(), timeout=3.0, budget=None, account="x"
    )
    rsps.get(URL, status=429, headers={"Retry-After": "17"})

    with pytest.raises(ExampleError, match="try again in 17 s") as raised:
        anonymous.call("GET", URL)

    assert raised.value.retry_after == 17.0


# --- The call budget ------------------------------------------------------------------------------


def test_a_spent_budget_refuses_the_call_without_sending_it(
    http: requests.Session, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    budget = CallBudget(calls_per_minute=2, usable_fraction=1.0, clock=clock)
    caller = ApiCaller(
        EXAMPLE_API, session=http, auth=HeaderAuth(), timeout=3.0, budget=budget, account="x"
    )
    rsps.get(URL, json={})
    rsps.get(URL, json={})
    caller.call("GET", URL)
    clock.advance(15)
    caller.call("GET", URL)

    with pytest.raises(ExampleError, match="budget for this account is spent") as raised:
        caller.call("GET", URL)

    assert (raised.value.retryable, raised.value.retry_after) == (True, 45.0)
    assert (raised.value.status, raised.value.transport) == (None, None)
    assert len(rsps.calls) == 2


def test_check_budget_refuses_ahead_without_spending(
    caller: ApiCaller, budget: CallBudget, clock: FakeClock
) -> None:
    caller.check_budget("PUT /api/v1/things/7.json")
    assert budget.try_acquire()  # checking spent nothing
    budget.pause_for(12)

    with pytest.raises(ExampleError, match=r"PUT /api/v1/things/7\.json was not sent") as raised:
        caller.check_budget("PUT /api/v1/things/7.json")

    assert raised.value.retry_after == 12.0


def test_the_budget_follows_the_limit_the_api_reports(
    caller: ApiCaller, budget: CallBudget, rsps: responses.RequestsMock
) -> None:
    rsps.get(URL, json={}, headers={"X-Rate-Limit": "700"})

    caller.call("GET", URL)

    assert budget.capacity == 700


def test_budget_keeps_headroom_for_the_agents_own_use() -> None:
    assert CallBudget().capacity == 160
    assert CallBudget(calls_per_minute=400, usable_fraction=0.5).capacity == 200
    assert CallBudget(calls_per_minute=1, usable_fraction=0.5).capacity == 1


def test_budget_frees_each_call_a_minute_after_it_was_made(clock: FakeClock) -> None:
    budget = CallBudget(calls_per_minute=2, usable_fraction=1.0, clock=clock)
    assert budget.try_acquire()
    clock.advance(20)
    assert budget.try_acquire()
    assert not budget.try_acquire()
    assert budget.seconds_until_available() == 40

    clock.advance(40)
    assert budget.try_acquire()
    assert not budget.try_acquire()


def test_budget_pause_refuses_calls_and_a_later_pause_wins(clock: FakeClock) -> None:
    budget = CallBudget(clock=clock)
    budget.pause_until(clock.now + 10)
    budget.pause_until(clock.now + 5)

    assert not budget.try_acquire()
    clock.advance(9.5)
    assert not budget.try_acquire()
    clock.advance(0.5)
    assert budget.try_acquire()


def test_budget_never_grants_more_than_its_capacity_across_threads() -> None:
    budget = CallBudget(calls_per_minute=50, usable_fraction=1.0, clock=lambda: 0.0)
    granted: list[bool] = []
    lock = threading.Lock()

    def spend() -> None:
        results = [budget.try_acquire() for _ in range(100)]
        with lock:
            granted.extend(results)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(granted) == 50


# --- Timeouts, credentials and transport failures -----------------------------------------------


def test_every_call_carries_the_timeout_and_the_credential(
    caller: ApiCaller, rsps: responses.RequestsMock
) -> None:
    rsps.get(
        URL,
        json={"id": 7},
        match=[
            matchers.request_kwargs_matcher({"timeout": 3.0}),
            matchers.header_matcher({"Authorization": "Bearer example-token"}),
        ],
    )
    rsps.post(URL, json={}, match=[matchers.request_kwargs_matcher({"timeout": 3.0})])

    assert caller.read_json(caller.call("GET", URL)) == {"id": 7}
    caller.call("POST", URL, json={"name": "seven"})


def test_an_anonymous_call_sends_no_authorization(
    http: requests.Session, rsps: responses.RequestsMock
) -> None:
    http.headers["Authorization"] = "Basic c2hvdWxkLW5vdC1nbw=="
    anonymous = ApiCaller(
        EXAMPLE_API, session=http, auth=HeaderAuth(), timeout=3.0, budget=None, account="x"
    )
    rsps.get(URL, body="ok")

    anonymous.call("GET", URL)

    assert "Authorization" not in rsps.calls[0].request.headers
    assert repr(HeaderAuth("X-Token", "secret")) == "<HeaderAuth X-Token>"


@pytest.mark.parametrize(
    ("failure", "transport", "says"),
    [
        (requests.exceptions.ConnectTimeout(), "timeout", "the call timed out"),
        (requests.exceptions.ReadTimeout(), "timeout", "the call timed out"),
        (requests.exceptions.SSLError(), "tls", "the secure connection to shop.example.com failed"),
        (
            requests.exceptions.ConnectionError(),
            "connection",
            "the connection to shop.example.com failed",
        ),
        (requests.exceptions.ChunkedEncodingError(), "broken", "the answer broke off"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_a_call_without_an_answer_is_a_retryable_error_saying_how_it_failed(
    caller: ApiCaller,
    rsps: responses.RequestsMock,
    failure: Exception,
    transport: str,
    says: str,
) -> None:
    rsps.get(URL, body=failure)

    with pytest.raises(ExampleError, match=re.escape(f"did not answer {WHAT}: {says}")) as raised:
        caller.call("GET", URL)

    assert (raised.value.retryable, raised.value.transport) == (True, transport)
    assert raised.value.status is None


def test_a_malformed_url_is_not_retryable(caller: ApiCaller) -> None:
    with pytest.raises(ExampleError, match="malformed") as raised:
        caller.call("GET", "https://exa mple.com:port/api")

    assert (raised.value.retryable, raised.value.transport) == (False, "invalid_url")


# --- Error statuses ------------------------------------------------------------------------------


def test_error_statuses_go_to_the_clients_reading_of_them(
    http: requests.Session, rsps: responses.RequestsMock
) -> None:
    seen: list[tuple[int, str]] = []

    def error_for_status(status: int, what: str) -> HelpdeskError:
        seen.append((status, what))
        return ExampleError(f"no ({status})", retryable=False, status=status)

    caller = ApiCaller(
        EXAMPLE_API,
        session=http,
        auth=HeaderAuth(),
        timeout=3.0,
        budget=None,
        account="x",
        error_for_status=error_for_status,
    )
    rsps.get(URL, status=409)

    with pytest.raises(ExampleError, match=r"no \(409\)"):
        caller.call("GET", URL, params={"secret": "s3cret"})

    assert seen == [(409, "GET /api/v1/things/7.json")]


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (404, False), (503, True)])
def test_by_default_only_a_server_error_may_pass_on_retrying(
    caller: ApiCaller, rsps: responses.RequestsMock, status: int, retryable: bool
) -> None:
    rsps.get(URL, status=status)

    with pytest.raises(ExampleError, match=f"Example answered GET .* with {status}") as raised:
        caller.call("GET", URL)

    assert (raised.value.status, raised.value.retryable) == (status, retryable)


def test_an_answer_that_is_not_json_is_not_the_api_answering(
    caller: ApiCaller, rsps: responses.RequestsMock
) -> None:
    rsps.get(URL, body="<html>Maintenance</html>")

    with pytest.raises(
        HelpdeskError, match=re.escape(f"Example answered {WHAT} with a body")
    ) as raised:
        caller.read_json(caller.call("GET", URL))

    assert not isinstance(raised.value, ExampleError)
    assert raised.value.retryable is False


def test_a_call_is_named_by_method_and_path_only() -> None:
    assert describe_call("GET", f"{URL}?token=s3cret") == "GET /api/v1/things/7.json"


@pytest.mark.parametrize(
    ("url", "same"),
    [
        (f"{BASE}/api/v1/things.json?page=2", True),
        ("https://SHOP.example.com/next", True),
        ("http://shop.example.com/next", False),
        ("https://shop.example.com:8443/next", False),
        ("https://elsewhere.example.com/next", False),
    ],
)
def test_same_origin(url: str, same: bool) -> None:
    assert same_origin(url, BASE) is same


# --- Pooled sessions per account -----------------------------------------------------------------


def test_new_session_pools_connections_and_leaves_retrying_to_the_client(
    http: requests.Session,
) -> None:
    adapter = http.get_adapter(BASE)

    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    assert adapter.poolmanager.connection_pool_kw["maxsize"] == 10
    assert adapter.max_retries.total == 0
    assert http.headers["User-Agent"] == "Regulars/0.1"


@pytest.fixture
def accounts() -> Iterator[AccountSessions]:
    registry = AccountSessions()
    yield registry
    registry.close()


def test_account_sessions_share_one_session_and_budget_per_account(
    accounts: AccountSessions,
) -> None:
    zendesk = "https://regulars-test.zendesk.com"

    assert accounts.session(zendesk) is accounts.session(zendesk.upper() + "/")
    assert accounts.session(zendesk) is not accounts.session("https://other.zendesk.com")
    assert accounts.budget(zendesk, calls_per_minute=400) is accounts.budget(zendesk + "/")
    assert accounts.budget(zendesk).capacity == 320
    assert accounts.groups(zendesk) is accounts.groups(zendesk + "/")
