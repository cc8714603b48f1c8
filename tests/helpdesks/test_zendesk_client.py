"""The Zendesk client against recorded-shape API answers (the contract every helpdesk keeps is
in test_contract.py).
"""

from __future__ import annotations

import logging
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from responses import matchers
from urllib3.connection import HTTPSConnection
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

from plugin.domain.helpdesk import Person, Ticket
from plugin.helpdesks.http import CallBudget
from plugin.helpdesks.interface import HelpdeskError, TicketNotFound
from plugin.helpdesks.zendesk import (
    CredentialsRejected,
    ZendeskClient,
    ZendeskCredentials,
    ZendeskError,
    base_url_for,
    fetch_public_key,
    valid_subdomain,
)
from tests.clock import FakeClock
from tests.tokens import new_key, public_pem

BASE = "https://regulars-test.zendesk.com"
EMAIL = "agent@example.com"
API_TOKEN = "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv"
OAUTH_TOKEN = "gErypPlm4dOVgGRvA1ZzMH5MQ3nLo8bo"
# base64 of "agent@example.com/token:6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv", worked out apart
# from the code under test so a wrong user/password layout fails here.
BASIC = (
    "Basic YWdlbnRAZXhhbXBsZS5jb20vdG9rZW46NndpSUJXYkdrQk1vMW1SRE11VndrdzFFUHNOa2VVajk1UEl6MmFrdg=="
)
API_CREDENTIALS = ZendeskCredentials.from_api_token(email=EMAIL, api_token=API_TOKEN)
OAUTH_CREDENTIALS = ZendeskCredentials.from_oauth_token(oauth_token=OAUTH_TOKEN)

TICKET_URL = f"{BASE}/api/v2/tickets/35436.json"
USER_URL = f"{BASE}/api/v2/users/20978392.json"
REQUESTED_URL = f"{BASE}/api/v2/users/20978392/tickets/requested.json"
FIRST_PAGE = {"sort_by": "created_at", "sort_order": "desc", "per_page": "100"}


def zendesk_ticket(ticket_id: int = 35436, **changes: Any) -> dict[str, Any]:
    """A ticket as the Show Ticket endpoint returns it (fields the client ignores included)."""
    ticket: dict[str, Any] = {
        "url": f"{BASE}/api/v2/tickets/{ticket_id}.json",
        "id": ticket_id,
        "external_id": None,
        "via": {"channel": "email", "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": "2026-11-20T10:00:00Z",
        "updated_at": "2026-11-21T08:30:00Z",
        "type": "incident",
        "subject": "My order arrived damaged",
        "raw_subject": "My order arrived damaged",
        "description": "The box was crushed.",
        "priority": "high",
        "status": "open",
        "recipient": "support@example.com",
        "requester_id": 20978392,
        "submitter_id": 20978392,
        "assignee_id": 235323,
        "organization_id": 509974,
        "group_id": 98738,
        "collaborator_ids": [],
        "tags": ["damaged", "vip"],
        "custom_fields": [],
        "satisfaction_rating": None,
    }
    ticket.update(changes)
    return ticket


def zendesk_user(user_id: int = 20978392, **changes: Any) -> dict[str, Any]:
    user: dict[str, Any] = {
        "id": user_id,
        "url": f"{BASE}/api/v2/users/{user_id}.json",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+15551230007",
        "role": "end-user",
        "organization_id": 509974,
        "tags": ["gold", "newsletter"],
        "user_fields": {"loyalty_tier": "gold", "lifetime_orders": 14},
        "created_at": "2024-02-01T09:00:00Z",
        "updated_at": "2026-11-20T10:00:00Z",
    }
    user.update(changes)
    return user


EXPECTED_TICKET = Ticket(
    id="35436",
    subject="My order arrived damaged",
    status="open",
    channel="email",
    priority="high",
    ticket_type="incident",
    tags=("damaged", "vip"),
    requester_id="20978392",
    created_at=datetime(2026, 11, 20, 10, 0),
    updated_at=datetime(2026, 11, 21, 8, 30),
)
EXPECTED_REQUESTER = Person(
    id="20978392",
    name="Ada Lovelace",
    email="ada@example.com",
    phone="+15551230007",
    role="end-user",
    tags=("gold", "newsletter"),
    fields={"loyalty_tier": "gold", "lifetime_orders": 14},
    organization_id="509974",
)
SIDELOADS = {"include": "users,organizations"}


def zendesk_organization(org_id: int = 509974, **changes: Any) -> dict[str, Any]:
    organization: dict[str, Any] = {
        "id": org_id,
        "url": f"{BASE}/api/v2/organizations/{org_id}.json",
        "name": "Analytical Engines Ltd",
        "tags": ["wholesale"],
        "organization_fields": {"account_manager": "Charles", "contract_tier": None},
    }
    organization.update(changes)
    return organization


@pytest.fixture
def budget(clock: FakeClock) -> CallBudget:
    return CallBudget(calls_per_minute=200, clock=clock)


@pytest.fixture
def client(http: requests.Session, budget: CallBudget) -> ZendeskClient:
    return ZendeskClient(
        session=http, base_url=BASE + "/", credentials=API_CREDENTIALS, budget=budget
    )


def basic_auth() -> Any:
    return matchers.header_matcher({"Authorization": BASIC})


# --- Reading tickets and people -------------------------------------------------------------


def test_ticket_takes_requester_and_organization_from_sideloads(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(
        TICKET_URL,
        json={
            "ticket": zendesk_ticket(),
            "users": [zendesk_user(235323, organization_id=None), zendesk_user()],
            "organizations": [zendesk_organization(1), zendesk_organization()],
        },
        match=[matchers.query_param_matcher(SIDELOADS), basic_auth()],
    )

    found = client.ticket(ticket_id="35436")

    assert found.ticket == EXPECTED_TICKET
    assert found.requester == replace(
        EXPECTED_REQUESTER,
        organization_fields={"account_manager": "Charles", "contract_tier": None},
    )
    assert len(rsps.calls) == 1


def test_ticket_without_the_requesters_organization_sideloaded_has_no_organization_fields(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(
        TICKET_URL,
        json={
            "ticket": zendesk_ticket(),
            "users": [zendesk_user()],
            "organizations": [zendesk_organization(1)],
        },
        match=[matchers.query_param_matcher(SIDELOADS)],
    )

    assert client.ticket(ticket_id="35436").requester == EXPECTED_REQUESTER


@pytest.mark.parametrize(
    "sideloads",
    [
        {"users": [zendesk_user(user_fields=["not", "a", "map"])]},
        {"users": [zendesk_user(tags="gold")]},
        {"users": [zendesk_user(id=None)]},
        {"users": [zendesk_user()], "organizations": [zendesk_organization(organization_fields=7)]},
        {"users": [zendesk_user()], "organizations": {"id": 509974}},
    ],
)
def test_unreadable_people_and_organizations_are_clear_errors(
    client: ZendeskClient, rsps: responses.RequestsMock, sideloads: dict[str, Any]
) -> None:
    body = {"ticket": zendesk_ticket(requester_id=20978392), **sideloads}
    if sideloads["users"][0]["id"] is None:
        body["ticket"]["requester_id"] = 1  # not sideloaded: fetched, and unreadable
        rsps.get(f"{BASE}/api/v2/users/1.json", json={"user": sideloads["users"][0]})
    rsps.get(TICKET_URL, json=body)

    with pytest.raises(HelpdeskError, match="cannot read") as raised:
        client.ticket(ticket_id="35436")

    assert raised.value.retryable is False


def test_ticket_fetches_requester_when_not_sideloaded(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(
        TICKET_URL,
        json={"ticket": zendesk_ticket(), "users": [zendesk_user(235323)]},
        match=[matchers.query_param_matcher(SIDELOADS)],
    )
    rsps.get(USER_URL, json={"user": zendesk_user()}, match=[basic_auth()])

    found = client.ticket(ticket_id="35436")

    assert found.requester == EXPECTED_REQUESTER
    assert [call.request.method for call in rsps.calls] == ["GET", "GET"]


def test_ticket_whose_requester_zendesk_no_longer_has_gets_a_placeholder(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(TICKET_URL, json={"ticket": zendesk_ticket()})
    rsps.get(USER_URL, status=404, json={"error": "RecordNotFound"})

    found = client.ticket(ticket_id="35436")

    assert found.requester == Person(id="20978392", name="Unknown user")


def test_ticket_maps_nulls_and_offset_timestamps(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    raw = zendesk_ticket(
        priority=None,
        type=None,
        subject="",
        raw_subject="Chat with Ada",
        via={"channel": "chat"},
        created_at="2026-11-20T12:00:00+02:00",
    )
    rsps.get(TICKET_URL, json={"ticket": raw, "users": [zendesk_user(phone=None)]})

    found = client.ticket(ticket_id="35436")

    assert found.ticket.priority is None
    assert found.ticket.ticket_type is None
    assert found.ticket.subject == "Chat with Ada"
    assert found.ticket.channel == "chat"
    assert found.ticket.created_at == datetime(2026, 11, 20, 10, 0)
    assert found.requester.phone is None


def test_oauth_credentials_are_sent_as_a_bearer_token(
    http: requests.Session, budget: CallBudget, rsps: responses.RequestsMock
) -> None:
    client = ZendeskClient(
        session=http, base_url=BASE, credentials=OAUTH_CREDENTIALS, budget=budget
    )
    rsps.get(
        USER_URL,
        json={"user": zendesk_user()},
        match=[matchers.header_matcher({"Authorization": f"Bearer {OAUTH_TOKEN}"})],
    )

    assert client.user(user_id="20978392") == EXPECTED_REQUESTER


def test_every_call_carries_the_timeout_and_user_agent(
    http: requests.Session, budget: CallBudget, rsps: responses.RequestsMock
) -> None:
    client = ZendeskClient(
        session=http, base_url=BASE, credentials=API_CREDENTIALS, budget=budget, timeout=2.5
    )
    rsps.get(TICKET_URL, json={"ticket": zendesk_ticket()})
    rsps.get(USER_URL, json={"user": zendesk_user()})

    client.ticket(ticket_id="35436")

    # responses records each request's keyword arguments on it, outside its typed API.
    timeouts = [vars(call.request)["req_kwargs"]["timeout"] for call in rsps.calls]
    assert timeouts == [2.5, 2.5]
    assert {call.request.headers["User-Agent"] for call in rsps.calls} == {"Regulars/0.1"}


def test_requester_tickets_follow_next_page_and_come_newest_first(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    second_page = {**FIRST_PAGE, "page": "2"}
    rsps.get(
        REQUESTED_URL,
        json={
            "tickets": [
                zendesk_ticket(3, created_at="2026-11-20T10:00:00Z"),
                zendesk_ticket(2, created_at="2026-10-01T10:00:00Z"),
            ],
            "next_page": f"{REQUESTED_URL}?page=2&per_page=100&sort_by=created_at&sort_order=desc",
            "previous_page": None,
            "count": 3,
        },
        match=[matchers.query_param_matcher(FIRST_PAGE), basic_auth()],
    )
    rsps.get(
        REQUESTED_URL,
        json={
            "tickets": [zendesk_ticket(1, created_at="2025-01-05T10:00:00Z")],
            "next_page": None,
            "previous_page": f"{REQUESTED_URL}?page=1",
            "count": 3,
        },
        match=[matchers.query_param_matcher(second_page), basic_auth()],
    )

    tickets = client.requester_tickets(requester_id="20978392")

    assert [t.id for t in tickets] == ["3", "2", "1"]
    assert len(rsps.calls) == 2


def test_requester_tickets_stop_at_the_page_cap(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    for page in range(1, 4):
        query = FIRST_PAGE if page == 1 else {**FIRST_PAGE, "page": str(page)}
        rsps.get(
            REQUESTED_URL,
            json={
                "tickets": [zendesk_ticket(page)],
                "next_page": f"{REQUESTED_URL}?page={page + 1}&per_page=100"
                "&sort_by=created_at&sort_order=desc",
            },
            match=[matchers.query_param_matcher(query)],
        )

    tickets = client.requester_tickets(requester_id="20978392")

    assert len(tickets) == 3
    assert len(rsps.calls) == 3


def test_requester_tickets_never_follow_a_next_page_on_another_host(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(
        REQUESTED_URL,
        json={"tickets": [], "next_page": "https://attacker.example/steal?page=2"},
    )

    with pytest.raises(HelpdeskError, match="another host") as raised:
        client.requester_tickets(requester_id="20978392")

    assert raised.value.retryable is False
    assert len(rsps.calls) == 1


def test_requester_unknown_to_zendesk_has_no_tickets(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(REQUESTED_URL, status=404, json={"error": "RecordNotFound"})

    assert client.requester_tickets(requester_id="20978392") == []


def test_user_fields_returns_custom_fields_and_tags(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(USER_URL, json={"user": zendesk_user()}, match=[basic_auth()])

    assert client.user_fields(user_id="20978392") == {
        "user_fields": {"loyalty_tier": "gold", "lifetime_orders": 14},
        "tags": ["gold", "newsletter"],
    }


def test_unknown_user_is_a_non_retryable_error(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(USER_URL, status=404, json={"error": "RecordNotFound"})

    with pytest.raises(HelpdeskError, match="user 20978392 was not found") as raised:
        client.user(user_id="20978392")

    assert raised.value.retryable is False


def test_organization_returns_the_organization_object(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    organization = {"id": 509974, "name": "Acme", "tags": ["wholesale"], "organization_fields": {}}
    rsps.get(
        f"{BASE}/api/v2/organizations/509974.json",
        json={"organization": organization},
        match=[basic_auth()],
    )

    assert client.organization(organization_id="509974") == organization


@pytest.mark.parametrize("bad_id", ["../users/1", "12a", "", "²"])
def test_ids_that_are_not_zendesk_ids_never_reach_the_network(
    client: ZendeskClient, rsps: responses.RequestsMock, bad_id: str
) -> None:
    with pytest.raises(TicketNotFound):
        client.ticket(ticket_id=bad_id)
    with pytest.raises(HelpdeskError, match="not a Zendesk id"):
        client.user(user_id=bad_id)

    assert len(rsps.calls) == 0


# --- Logging back ---------------------------------------------------------------------------


def test_internal_note_is_a_private_comment(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.put(
        TICKET_URL,
        json={"ticket": zendesk_ticket(), "audit": {"id": 1}},
        match=[
            matchers.json_params_matcher(
                {"ticket": {"comment": {"body": "Regular: 14 orders.", "public": False}}}
            ),
            basic_auth(),
        ],
    )

    client.add_internal_note(ticket_id="35436", body="Regular: 14 orders.")

    assert len(rsps.calls) == 1


def test_tags_are_added_with_put_never_replaced_with_post(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.put(
        f"{BASE}/api/v2/tickets/35436/tags.json",
        json={"tags": ["damaged", "vip", "regulars_gold"]},
        match=[matchers.json_params_matcher({"tags": ["regulars_gold"]}), basic_auth()],
    )

    client.add_tags(ticket_id="35436", tags=["regulars_gold"])

    assert [call.request.method for call in rsps.calls] == ["PUT"]


def test_adding_no_tags_spends_no_call(
    client: ZendeskClient, rsps: responses.RequestsMock, budget: CallBudget
) -> None:
    client.add_tags(ticket_id="35436", tags=[])

    assert len(rsps.calls) == 0
    assert budget.seconds_until_available() == 0


def test_note_on_a_missing_ticket_is_ticket_not_found(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.put(TICKET_URL, status=404, json={"error": "RecordNotFound"})

    with pytest.raises(TicketNotFound):
        client.add_internal_note(ticket_id="35436", body="note")


# --- Errors ---------------------------------------------------------------------------------


def test_missing_ticket_is_ticket_not_found(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(TICKET_URL, status=404, json={"error": "RecordNotFound", "description": "Not found"})

    with pytest.raises(TicketNotFound) as raised:
        client.ticket(ticket_id="35436")

    assert raised.value.ticket_id == "35436"
    assert raised.value.retryable is False


@pytest.mark.parametrize(
    ("status", "message", "retryable"),
    [
        (401, "refused the credentials", False),
        (403, "lack permission", False),
        (409, "409", True),
        (422, "422", False),
        (500, "500", True),
        (503, "503", True),
    ],
)
def test_http_errors_say_whether_to_retry(
    client: ZendeskClient,
    rsps: responses.RequestsMock,
    status: int,
    message: str,
    retryable: bool,
) -> None:
    rsps.get(TICKET_URL, status=status, json={"error": "Something"})

    with pytest.raises(ZendeskError, match=message) as raised:
        client.ticket(ticket_id="35436")

    assert raised.value.retryable is retryable
    assert raised.value.status == status
    assert raised.value.transport is None
    assert isinstance(raised.value, CredentialsRejected) is (status == 401)
    assert not isinstance(raised.value, TicketNotFound)


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectTimeout(),
        requests.exceptions.ReadTimeout(),
        requests.exceptions.ConnectionError(),
        requests.exceptions.ChunkedEncodingError(),
    ],
    ids=lambda failure: type(failure).__name__,
)
def test_transport_failures_are_retryable(
    client: ZendeskClient, rsps: responses.RequestsMock, failure: Exception
) -> None:
    rsps.get(TICKET_URL, body=failure)

    with pytest.raises(ZendeskError, match=type(failure).__name__) as raised:
        client.ticket(ticket_id="35436")

    assert raised.value.retryable is True
    assert raised.value.status is None


def refused() -> requests.ConnectionError:
    """The error requests raises when nothing listens on the port, as urllib3 builds it."""
    reason = NewConnectionError(HTTPSConnection("regulars-test.zendesk.com"), "refused")
    reason.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return requests.ConnectionError(MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def unresolved() -> requests.ConnectionError:
    """The error requests raises when the host name does not resolve."""
    gaierror = socket.gaierror(-2, "Name or service not known")
    reason = NameResolutionError(
        "regulars-test.zendesk.com", HTTPSConnection("regulars-test.zendesk.com"), gaierror
    )
    return requests.ConnectionError(MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("failure", "transport", "message"),
    [
        (requests.exceptions.ConnectTimeout(), "timeout", "timed out"),
        (requests.exceptions.ReadTimeout(), "timeout", "timed out"),
        (refused(), "refused", "regulars-test.zendesk.com refused the connection"),
        (unresolved(), "unresolved", "regulars-test.zendesk.com does not resolve"),
        (requests.exceptions.SSLError(), "tls", "secure connection"),
        (requests.exceptions.ConnectionError(), "connection", "connection to"),
        (requests.exceptions.ChunkedEncodingError(), "broken", "broke off"),
    ],
)
def test_transport_failures_say_how_the_call_failed(
    client: ZendeskClient,
    rsps: responses.RequestsMock,
    failure: Exception,
    transport: str,
    message: str,
) -> None:
    rsps.get(TICKET_URL, body=failure)

    with pytest.raises(ZendeskError, match=message) as raised:
        client.ticket(ticket_id="35436")

    assert raised.value.transport == transport


def test_a_malformed_base_url_is_not_retryable(http: requests.Session) -> None:
    client = ZendeskClient(
        session=http,
        base_url="https://exa mple.com:port",
        credentials=API_CREDENTIALS,
        budget=CallBudget(),
    )

    with pytest.raises(ZendeskError, match="malformed") as raised:
        client.current_user()

    assert raised.value.retryable is False
    assert raised.value.transport == "invalid_url"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<html><body>Maintenance</body></html>", "not JSON"),
        ('{"ticket": {"id": 35436,', "not JSON"),
        ("[1, 2]", "not an object"),
        ('{"ticket": {"id": 35436}}', "cannot read"),
        ('{"ticket": null}', "cannot read"),
        (
            '{"ticket": ' + '{"id": 1, "status": "open", "requester_id": 2, '
            '"created_at": "yesterday", "updated_at": "today"}}',
            "cannot read",
        ),
    ],
)
def test_malformed_answers_are_clear_non_retryable_errors(
    client: ZendeskClient, rsps: responses.RequestsMock, body: str, message: str
) -> None:
    rsps.get(TICKET_URL, body=body, content_type="application/json")

    with pytest.raises(HelpdeskError, match=message) as raised:
        client.ticket(ticket_id="35436")

    assert raised.value.retryable is False


# --- Rate limits and the call budget --------------------------------------------------------


def test_429_pauses_the_account_for_retry_after_without_sleeping(
    client: ZendeskClient, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.get(TICKET_URL, status=429, headers={"Retry-After": "30"}, json={"error": "Too many"})

    with pytest.raises(HelpdeskError, match="429") as raised:
        client.ticket(ticket_id="35436")
    assert raised.value.retryable is True

    clock.advance(29)
    with pytest.raises(HelpdeskError, match="budget") as paused:
        client.user(user_id="20978392")
    assert paused.value.retryable is True
    assert len(rsps.calls) == 1

    clock.advance(1)
    rsps.get(USER_URL, json={"user": zendesk_user()})
    assert client.user(user_id="20978392") == EXPECTED_REQUESTER
    assert len(rsps.calls) == 2


@pytest.mark.parametrize("retry_after", [None, "in a minute or so"])
def test_429_without_a_readable_wait_pauses_for_a_whole_window(
    client: ZendeskClient,
    rsps: responses.RequestsMock,
    budget: CallBudget,
    retry_after: str | None,
) -> None:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    rsps.get(TICKET_URL, status=429, headers=headers, json={"error": "Too many"})

    with pytest.raises(HelpdeskError, match="429"):
        client.ticket(ticket_id="35436")

    assert budget.seconds_until_available() == 60


def test_429_with_an_http_date_pauses_until_that_date(
    client: ZendeskClient, rsps: responses.RequestsMock, budget: CallBudget
) -> None:
    then = datetime.now(UTC) + timedelta(seconds=90)
    headers = {"Retry-After": format_datetime(then, usegmt=True)}
    rsps.get(TICKET_URL, status=429, headers=headers, json={"error": "Too many"})

    with pytest.raises(HelpdeskError, match="429") as raised:
        client.ticket(ticket_id="35436")

    # The date is whole seconds, read a moment after it was written.
    assert raised.value.retry_after is not None and 85 < raised.value.retry_after <= 90
    assert 85 < budget.seconds_until_available() <= 90


def test_spent_budget_refuses_the_next_call_without_sending_it(
    http: requests.Session, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    budget = CallBudget(calls_per_minute=3, usable_fraction=1.0, clock=clock)
    client = ZendeskClient(session=http, base_url=BASE, credentials=API_CREDENTIALS, budget=budget)
    for _ in range(4):
        rsps.get(USER_URL, json={"user": zendesk_user()})

    for _ in range(3):
        client.user(user_id="20978392")
    with pytest.raises(HelpdeskError, match="budget") as raised:
        client.user(user_id="20978392")

    assert raised.value.retryable is True
    assert len(rsps.calls) == 3
    clock.advance(60)
    client.user(user_id="20978392")
    assert len(rsps.calls) == 4


def test_budget_follows_the_limit_zendesk_reports(
    http: requests.Session, rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    budget = CallBudget(clock=clock)
    client = ZendeskClient(session=http, base_url=BASE, credentials=API_CREDENTIALS, budget=budget)
    rsps.get(
        USER_URL,
        json={"user": zendesk_user()},
        headers={"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "699"},
    )
    assert budget.capacity == 160  # a Team account's share until Zendesk says otherwise
    client.user(user_id="20978392")
    assert budget.capacity == 560  # 80% of an Enterprise account's 700


# --- Connecting an installation -------------------------------------------------------------

ME_URL = f"{BASE}/api/v2/users/me.json"
INSTALLATIONS_URL = f"{BASE}/api/v2/apps/installations.json"
PUBLIC_KEY_URL = f"{BASE}/api/v2/apps/867530/public_key.pem"


def test_current_user_is_who_the_credentials_sign_in_as(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    agent = zendesk_user(235323, name="Grace Hopper", email="grace@example.com", role="admin")
    rsps.get(ME_URL, json={"user": agent}, match=[basic_auth()])

    me = client.current_user()

    assert (me.id, me.name, me.role) == ("235323", "Grace Hopper", "admin")


def test_current_user_answered_as_anonymous_means_rejected_credentials(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    anonymous = {
        "id": None,
        "name": "Anonymous user",
        "role": "end-user",
        "email": "invalid@example.com",
    }
    rsps.get(ME_URL, json={"user": anonymous})

    with pytest.raises(CredentialsRejected, match="anonymous") as raised:
        client.current_user()

    assert raised.value.retryable is False


def test_current_user_refused_with_401_means_rejected_credentials(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(ME_URL, status=401, json={"error": "Couldn't authenticate you"})

    with pytest.raises(CredentialsRejected) as raised:
        client.current_user()

    assert raised.value.status == 401


def test_app_installations_lists_only_that_apps_installations(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(
        INSTALLATIONS_URL,
        json={
            "installations": [
                {"id": 1001, "app_id": 867530, "enabled": True, "settings": {"name": "Regulars"}},
                {"id": 1002, "app_id": 42, "enabled": True},
                {"id": 1003, "app_id": 867530, "enabled": False},
            ]
        },
        match=[basic_auth()],
    )

    assert client.app_installations("867530") == ["1001", "1003"]


def test_app_installations_refuses_a_non_numeric_app_id_without_a_call(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    with pytest.raises(HelpdeskError, match="not a Zendesk id"):
        client.app_installations("../users")

    assert len(rsps.calls) == 0


def test_app_installations_without_ids_are_unreadable(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(INSTALLATIONS_URL, json={"installations": [{"app_id": 867530}]})

    with pytest.raises(HelpdeskError, match="cannot read"):
        client.app_installations("867530")


def test_fetch_public_key_is_anonymous_and_returns_the_key_as_pem(
    http: requests.Session,
    rsps: responses.RequestsMock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # requests would add ~/.netrc credentials to a request without auth of its own.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine regulars-test.zendesk.com login someone password hunter2\n")
    monkeypatch.setenv("NETRC", str(netrc))
    pem = public_pem(new_key())
    rsps.get(PUBLIC_KEY_URL, body=pem, content_type="application/x-pem-file")

    assert fetch_public_key(http, BASE + "/", "867530", timeout=3.0) == pem

    request = rsps.calls[0].request
    assert "Authorization" not in request.headers
    assert vars(request)["req_kwargs"]["timeout"] == 3.0


def test_fetch_public_key_reads_pkcs1_pem_and_returns_it_in_one_form(
    http: requests.Session, rsps: responses.RequestsMock
) -> None:
    key = new_key()
    pkcs1 = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )
    rsps.get(PUBLIC_KEY_URL, body=b"\n" + pkcs1 + b"\n")

    assert fetch_public_key(http, BASE, "867530", timeout=3.0) == public_pem(key)


def ec_public_pem() -> str:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.mark.parametrize(
    ("answer", "message", "retryable"),
    [
        ({"status": 404, "body": "Not Found"}, "no app 867530 .* check the app id", False),
        ({"status": 403, "body": "Forbidden"}, "403", False),
        ({"status": 500, "body": "Oops"}, "500", True),
        ({"status": 503, "body": "Maintenance"}, "503", True),
        ({"status": 429, "headers": {"Retry-After": "17"}}, "try again in 17 s", True),
        ({"body": requests.exceptions.ReadTimeout()}, "timed out", True),
        ({"body": refused()}, "refused the connection", True),
        ({"body": unresolved()}, "does not resolve", True),
        ({"body": "<html><body>Help Center</body></html>"}, "not an RSA public key", False),
        ({"body": ec_public_pem()}, "not an RSA public key", False),
        (
            {"body": "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n"},
            "not an RSA",
            False,
        ),
        ({"body": "x" * 20_000}, "not an RSA public key", False),
    ],
)
def test_fetch_public_key_failures_say_whether_to_retry(
    http: requests.Session,
    rsps: responses.RequestsMock,
    answer: dict[str, Any],
    message: str,
    retryable: bool,
) -> None:
    rsps.get(PUBLIC_KEY_URL, **answer)

    with pytest.raises(HelpdeskError, match=message) as raised:
        fetch_public_key(http, BASE, "867530", timeout=3.0)

    assert raised.value.retryable is retryable


def test_fetch_public_key_429_tells_how_long_to_wait(
    http: requests.Session, rsps: responses.RequestsMock
) -> None:
    rsps.get(PUBLIC_KEY_URL, status=429, headers={"Retry-After": "17"})

    with pytest.raises(ZendeskError) as raised:
        fetch_public_key(http, BASE, "867530", timeout=3.0)

    assert (raised.value.status, raised.value.retry_after) == (429, 17.0)


def test_fetch_public_key_refuses_a_non_numeric_app_id_without_a_call(
    http: requests.Session, rsps: responses.RequestsMock
) -> None:
    with pytest.raises(HelpdeskError, match="not a Zendesk id"):
        fetch_public_key(http, BASE, "1/../../users", timeout=3.0)

    assert len(rsps.calls) == 0


@pytest.mark.parametrize(
    ("subdomain", "valid"),
    [
        ("acme", True),
        ("acme-support-2", True),
        ("0day", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("", False),
        ("-acme", False),
        ("Acme", False),
        ("acme.zendesk.com", False),
        ("acme_support", False),
        ("evil.com/", False),
    ],
)
def test_valid_subdomain(subdomain: str, valid: bool) -> None:
    assert valid_subdomain(subdomain) is valid


def test_base_url_is_the_override_or_the_accounts_zendesk_host() -> None:
    assert base_url_for("acme", None) == "https://acme.zendesk.com"
    assert base_url_for("acme", "http://127.0.0.1:8025/") == "http://127.0.0.1:8025"
    with pytest.raises(ValueError, match="not a Zendesk subdomain"):
        base_url_for("evil.com/x", None)


def test_zendesk_client_is_a_remote_helpdesk(client: ZendeskClient) -> None:
    assert client.remote is True


# --- Credentials and sessions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("credentials", "stored"),
    [
        (API_CREDENTIALS, {"email": EMAIL, "api_token": API_TOKEN}),
        (OAUTH_CREDENTIALS, {"oauth_token": OAUTH_TOKEN}),
    ],
)
def test_credentials_round_trip_through_a_dict(
    credentials: ZendeskCredentials, stored: dict[str, str]
) -> None:
    assert credentials.to_dict() == stored
    assert ZendeskCredentials.from_dict(stored) == credentials


def test_credentials_from_a_dict_with_unknown_fields_name_them_but_not_their_values() -> None:
    with pytest.raises(ValueError, match="unknown credential fields: password") as raised:
        ZendeskCredentials.from_dict({"oauth_token": OAUTH_TOKEN, "password": "hunter2"})

    assert "hunter2" not in str(raised.value)
    assert OAUTH_TOKEN not in str(raised.value)


def test_credentials_repr_hides_the_secrets() -> None:
    for credentials, secret in [(API_CREDENTIALS, API_TOKEN), (OAUTH_CREDENTIALS, OAUTH_TOKEN)]:
        assert secret not in repr(credentials)
        assert secret not in str(credentials)
    assert EMAIL in repr(API_CREDENTIALS)


@pytest.mark.parametrize(
    "fields",
    [{}, {"email": EMAIL}, {"email": EMAIL, "api_token": API_TOKEN, "oauth_token": OAUTH_TOKEN}],
)
def test_credentials_need_exactly_one_way_to_authenticate(fields: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="either"):
        ZendeskCredentials(**fields)


def test_no_error_or_log_line_carries_a_secret(
    http: requests.Session,
    rsps: responses.RequestsMock,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    budget = CallBudget(calls_per_minute=5, usable_fraction=1.0, clock=clock)
    client = ZendeskClient(session=http, base_url=BASE, credentials=API_CREDENTIALS, budget=budget)
    rsps.get(TICKET_URL, status=401, json={"error": "Couldn't authenticate you"})
    rsps.get(TICKET_URL, status=500, json={"error": "Internal"})
    rsps.get(TICKET_URL, body=requests.exceptions.ReadTimeout(f"read timed out {BASIC}"))
    rsps.get(TICKET_URL, body="not json", content_type="application/json")
    rsps.get(TICKET_URL, status=429, headers={"Retry-After": "5"}, json={"error": "Too many"})

    texts = []
    for _ in range(6):  # the sixth is refused by the paused budget
        with pytest.raises(HelpdeskError) as raised:
            client.ticket(ticket_id="35436")
        texts += [str(raised.value), repr(raised.value)]
    texts += [caplog.text, repr(client)]

    assert "rate limit" in caplog.text
    for secret in [API_TOKEN, BASIC, BASIC.removeprefix("Basic ")]:
        assert all(secret not in text for text in texts)


def test_role_names_ask_zendesk_for_each_custom_role(
    client: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(
        f"{BASE}/api/v2/custom_roles/360001.json",
        json={"custom_role": {"id": 360001, "name": "Team lead", "role_type": 0}},
    )
    rsps.get(
        f"{BASE}/api/v2/custom_roles/360002.json", json={"error": "RecordNotFound"}, status=404
    )
    assert client.role_names(role_ids=("360001", "360002")) == ("Team lead",)
