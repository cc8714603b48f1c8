"""The Freshdesk client against Freshdesk-shaped API answers (the contract every helpdesk keeps is
in test_contract.py).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from plugin.domain.helpdesk import Person, Ticket
from plugin.helpdesks import freshdesk
from plugin.helpdesks.freshdesk import (
    CredentialsRejected,
    FreshdeskClient,
    FreshdeskCredentials,
    FreshdeskError,
)
from plugin.helpdesks.http import CallBudget
from plugin.helpdesks.interface import HelpdeskError, TicketNotFound
from tests.clock import FakeClock

BASE = "https://regulars-test.freshdesk.com"
API_KEY = "Q4wX7uZb9pLmN2sT8vY1"
# base64 of "Q4wX7uZb9pLmN2sT8vY1:X", worked out apart from the code under test.
BASIC = "Basic UTR3WDd1WmI5cExtTjJzVDh2WTE6WA=="
CREDENTIALS = FreshdeskCredentials(api_key=API_KEY)

TICKET_URL = f"{BASE}/api/v2/tickets/35436"
CONTACT_URL = f"{BASE}/api/v2/contacts/20978392"
AGENT_URL = f"{BASE}/api/v2/agents/235323"
LIST_URL = f"{BASE}/api/v2/tickets"


def history_query(page: int) -> dict[str, str]:
    return {
        "requester_id": "20978392",
        "updated_since": freshdesk.HISTORY_SINCE,
        "order_by": "created_at",
        "order_type": "desc",
        "per_page": "100",
        "page": str(page),
    }


def freshdesk_ticket(ticket_id: int = 35436, **changes: Any) -> dict[str, Any]:
    """A ticket as View a Ticket returns it (fields the client ignores included)."""
    ticket: dict[str, Any] = {
        "id": ticket_id,
        "subject": "My order arrived damaged",
        "description": "<div>The box was crushed.</div>",
        "description_text": "The box was crushed.",
        "status": 2,
        "priority": 3,
        "source": 1,
        "type": "Incident",
        "requester_id": 20978392,
        "responder_id": 235323,
        "company_id": 509974,
        "group_id": None,
        "product_id": None,
        "cc_emails": [],
        "fwd_emails": [],
        "reply_cc_emails": [],
        "to_emails": None,
        "spam": False,
        "is_escalated": False,
        "fr_escalated": False,
        "tags": ["damaged", "VIP"],
        "custom_fields": {"cf_order_number": "A-1001"},
        "due_by": "2026-11-23T10:00:00Z",
        "fr_due_by": "2026-11-21T10:00:00Z",
        "created_at": "2026-11-20T10:00:00Z",
        "updated_at": "2026-11-21T08:30:00Z",
    }
    ticket.update(changes)
    return ticket


def freshdesk_contact(contact_id: int = 20978392, **changes: Any) -> dict[str, Any]:
    contact: dict[str, Any] = {
        "id": contact_id,
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+15551230007",
        "mobile": "+15559870001",
        "active": True,
        "address": None,
        "company_id": 509974,
        "description": None,
        "job_title": None,
        "language": "en",
        "time_zone": "London",
        "twitter_id": None,
        "other_emails": [],
        "tags": ["Gold", "newsletter"],
        "custom_fields": {"loyalty_tier": "gold", "lifetime_orders": 14},
        "created_at": "2024-02-01T09:00:00Z",
        "updated_at": "2026-11-20T10:00:00Z",
    }
    contact.update(changes)
    return contact


def freshdesk_agent(agent_id: int = 235323, **changes: Any) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "id": agent_id,
        "available": True,
        "occasional": False,
        "signature": None,
        "ticket_scope": 1,
        "type": "support_agent",
        "group_ids": [],
        "role_ids": [102],
        "skill_ids": [],
        "contact": {
            "active": True,
            "email": "grace@example.com",
            "job_title": "Support lead",
            "language": "en",
            "last_login_at": "2026-11-20T08:00:00Z",
            "mobile": None,
            "name": "Grace Hopper",
            "phone": None,
            "time_zone": "London",
            "created_at": "2023-01-01T09:00:00Z",
            "updated_at": "2026-11-20T08:00:00Z",
        },
        "created_at": "2023-01-01T09:00:00Z",
        "updated_at": "2026-11-20T08:00:00Z",
    }
    agent.update(changes)
    return agent


EXPECTED_TICKET = Ticket(
    id="35436",
    subject="My order arrived damaged",
    status="open",
    channel="email",
    priority="high",
    ticket_type="incident",
    tags=("damaged", "VIP"),
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


@pytest.fixture
def budget(clock: FakeClock) -> CallBudget:
    return CallBudget(calls_per_minute=200, clock=clock)


@pytest.fixture
def client(http: requests.Session, budget: CallBudget) -> FreshdeskClient:
    return FreshdeskClient(
        session=http, base_url=BASE + "/", credentials=CREDENTIALS, budget=budget
    )


def basic_auth() -> Any:
    return matchers.header_matcher({"Authorization": BASIC})


# --- Reading tickets and people -------------------------------------------------------------


def test_ticket_reads_the_ticket_then_its_requester_contact(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(TICKET_URL, json=freshdesk_ticket(), match=[basic_auth()])
    rsps.get(CONTACT_URL, json=freshdesk_contact(), match=[basic_auth()])

    found = client.ticket(ticket_id="35436")

    assert found.ticket == EXPECTED_TICKET
    assert found.requester == EXPECTED_REQUESTER
    # Two calls: no `include`, which Freshdesk charges extra credits for.
    assert [call.request.url for call in rsps.calls] == [TICKET_URL, CONTACT_URL]


@pytest.mark.parametrize(
    ("status", "expected"),
    [(2, "open"), (3, "pending"), (4, "resolved"), (5, "closed"), (6, "hold"), (12, "hold")],
)
def test_ticket_status_numbers_map_to_words_and_custom_ones_stay_open(
    client: FreshdeskClient, rsps: responses.RequestsMock, status: int, expected: str
) -> None:
    rsps.get(TICKET_URL, json=freshdesk_ticket(status=status))
    rsps.get(CONTACT_URL, json=freshdesk_contact())

    ticket = client.ticket(ticket_id="35436").ticket

    assert ticket.status == expected
    assert ticket.is_open == (status not in (4, 5))


@pytest.mark.parametrize(
    ("source", "channel"),
    [
        (1, "email"),
        (2, "web"),
        (3, "voice"),
        (7, "chat"),
        (9, "web"),
        (10, "email"),
        (99, "unknown"),
    ],
)
def test_ticket_source_numbers_map_to_channels(
    client: FreshdeskClient, rsps: responses.RequestsMock, source: int, channel: str
) -> None:
    rsps.get(TICKET_URL, json=freshdesk_ticket(source=source))
    rsps.get(CONTACT_URL, json=freshdesk_contact())

    assert client.ticket(ticket_id="35436").ticket.channel == channel


def test_ticket_maps_priorities_nulls_and_offset_timestamps(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(
        TICKET_URL,
        json=freshdesk_ticket(
            priority=2, type=None, tags=None, created_at="2026-11-20T12:00:00+02:00"
        ),
    )
    rsps.get(CONTACT_URL, json=freshdesk_contact(phone=None, email=None, tags=[]))

    found = client.ticket(ticket_id="35436")

    assert found.ticket.priority == "normal"
    assert found.ticket.ticket_type is None
    assert found.ticket.tags == ()
    assert found.ticket.created_at == datetime(2026, 11, 20, 10, 0)
    # A contact without a phone is still recognized by their mobile number.
    assert found.requester.phone == "+15559870001"
    assert found.requester.email is None


def test_ticket_whose_requester_freshdesk_no_longer_has_gets_a_placeholder(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(TICKET_URL, json=freshdesk_ticket())
    rsps.get(CONTACT_URL, status=404, body="")

    assert client.ticket(ticket_id="35436").requester == Person(id="20978392", name="Unknown user")


def test_missing_ticket_is_ticket_not_found(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(TICKET_URL, status=404, body="")

    with pytest.raises(TicketNotFound):
        client.ticket(ticket_id="35436")


def test_requester_tickets_ask_for_all_time_and_follow_the_link_header(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    older = freshdesk_ticket(4001, created_at="2019-01-02T10:00:00Z", status=5)
    newer = freshdesk_ticket(4002, created_at="2026-11-01T10:00:00Z")
    rsps.get(
        LIST_URL,
        json=[older],
        headers={"Link": f'<{LIST_URL}?page=2>; rel="next"'},
        match=[matchers.query_param_matcher(history_query(1)), basic_auth()],
    )
    rsps.get(LIST_URL, json=[newer], match=[matchers.query_param_matcher(history_query(2))])

    tickets = client.requester_tickets(requester_id="20978392")

    assert [t.id for t in tickets] == ["4002", "4001"]  # newest first, whatever the pages said
    assert tickets[1].status == "closed"


def test_requester_tickets_stop_at_the_page_cap(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    for page in range(1, freshdesk.MAX_HISTORY_PAGES + 1):
        rsps.get(
            LIST_URL,
            json=[freshdesk_ticket(5000 + page)],
            headers={"Link": f'<{LIST_URL}?page={page + 1}>; rel="next"'},
            match=[matchers.query_param_matcher(history_query(page))],
        )

    tickets = client.requester_tickets(requester_id="20978392")

    assert len(tickets) == freshdesk.MAX_HISTORY_PAGES


def test_user_is_the_agent_when_freshdesk_has_one(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(AGENT_URL, json=freshdesk_agent(), match=[basic_auth()])

    # The agent's Freshdesk language comes with them: the console speaks it (docs/i18n.md).
    assert client.user(user_id="235323") == Person(
        id="235323",
        name="Grace Hopper",
        email="grace@example.com",
        role="agent",
        role_ids=("102",),
        locale="en",
    )


def test_user_falls_back_to_the_contact(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{BASE}/api/v2/agents/20978392", status=404, body="")
    rsps.get(CONTACT_URL, json=freshdesk_contact())

    assert client.user(user_id="20978392").role == "end-user"


def test_unknown_user_is_a_404_error(client: FreshdeskClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/api/v2/agents/77", status=404, body="")
    rsps.get(f"{BASE}/api/v2/contacts/77", status=404, body="")

    with pytest.raises(HelpdeskError) as raised:
        client.user(user_id="77")

    assert raised.value.status == 404 and not raised.value.retryable


def test_current_agent_says_whether_they_see_every_ticket(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{BASE}/api/v2/agents/me", json=freshdesk_agent(ticket_scope=2))

    agent = client.current_agent()

    assert agent.person.name == "Grace Hopper"
    assert not agent.sees_every_ticket


def test_ids_that_are_not_freshdesk_ids_never_reach_the_network(client: FreshdeskClient) -> None:
    with pytest.raises(TicketNotFound):
        client.ticket(ticket_id="../agents/me")
    with pytest.raises(HelpdeskError):
        client.requester_tickets(requester_id="1 OR 1")
    with pytest.raises(HelpdeskError):
        client.user(user_id="me")
    with pytest.raises(TicketNotFound):
        client.add_private_note(ticket_id="x", body="hi")


# --- Logging back ---------------------------------------------------------------------------


def test_private_note_is_escaped_html_marked_private(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(
        f"{TICKET_URL}/notes",
        status=201,
        json={"id": 1, "private": True},
        match=[
            basic_auth(),
            matchers.json_params_matcher(
                {"body": "Waived the fee &lt;$5&gt;<br>Reason: late", "private": True}
            ),
        ],
    )

    client.add_private_note(ticket_id="35436", body="Waived the fee <$5>\nReason: late")


def test_tags_are_added_to_the_tickets_own_not_replacing_them(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(TICKET_URL, json=freshdesk_ticket(tags=["damaged"]))
    rsps.put(
        TICKET_URL,
        json=freshdesk_ticket(tags=["damaged", "regulars_offer"]),
        match=[matchers.json_params_matcher({"tags": ["damaged", "regulars_offer"]})],
    )

    client.add_tags(ticket_id="35436", tags=["regulars_offer", "damaged", "regulars_offer"])


def test_tags_the_ticket_has_already_cost_no_write(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(TICKET_URL, json=freshdesk_ticket(tags=["damaged"]))

    client.add_tags(ticket_id="35436", tags=["damaged"])
    client.add_tags(ticket_id="35436", tags=[])  # nothing to add: not even a read


def test_log_back_to_a_missing_ticket_is_ticket_not_found(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(f"{TICKET_URL}/notes", status=404, body="")
    rsps.get(TICKET_URL, status=404, body="")

    with pytest.raises(TicketNotFound):
        client.add_private_note(ticket_id="35436", body="hello")
    with pytest.raises(TicketNotFound):
        client.add_tags(ticket_id="35436", tags=["x"])


# --- Failures, rate limits and the budget ---------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable", "kind"),
    [
        (400, False, FreshdeskError),
        (401, False, CredentialsRejected),
        (403, False, FreshdeskError),
        (500, True, FreshdeskError),
        (503, True, FreshdeskError),
    ],
)
def test_http_errors_say_whether_to_retry(
    client: FreshdeskClient,
    rsps: responses.RequestsMock,
    status: int,
    retryable: bool,
    kind: type[FreshdeskError],
) -> None:
    rsps.get(TICKET_URL, status=status, json={"code": "error", "message": "no"})

    with pytest.raises(kind) as raised:
        client.ticket(ticket_id="35436")

    assert raised.value.retryable is retryable and raised.value.status == status


def test_transport_failures_are_retryable_and_say_how(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(TICKET_URL, body=requests.exceptions.ConnectTimeout("slow"))

    with pytest.raises(FreshdeskError) as raised:
        client.ticket(ticket_id="35436")

    assert raised.value.retryable and raised.value.transport == "timeout"


def test_malformed_answers_are_clear_non_retryable_errors(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(TICKET_URL, body="<html>maintenance</html>", content_type="text/html")
    rsps.get(TICKET_URL, json=[1, 2])
    rsps.get(TICKET_URL, json=freshdesk_ticket(status="open"))

    for _ in range(3):
        with pytest.raises(HelpdeskError) as raised:
            client.ticket(ticket_id="35436")
        assert not raised.value.retryable


def test_429_pauses_the_account_for_retry_after_without_sleeping(
    client: FreshdeskClient, rsps: responses.RequestsMock, budget: CallBudget, clock: FakeClock
) -> None:
    rsps.get(TICKET_URL, status=429, headers={"Retry-After": "42"}, json={"code": "limit"})

    with pytest.raises(FreshdeskError) as raised:
        client.ticket(ticket_id="35436")

    assert raised.value.retryable and raised.value.retry_after == 42
    assert budget.seconds_until_available() == 42
    with pytest.raises(HelpdeskError, match="budget"):  # refused without a call
        client.ticket(ticket_id="35436")
    clock.advance(42)
    assert budget.try_acquire()


def test_budget_follows_the_limit_freshdesk_reports(
    client: FreshdeskClient, rsps: responses.RequestsMock, budget: CallBudget
) -> None:
    rsps.get(
        f"{BASE}/api/v2/agents/me", json=freshdesk_agent(), headers={"X-RateLimit-Total": "700"}
    )

    client.current_agent()

    assert budget.capacity == 560  # 80 % of the Enterprise plan's 700


def test_no_error_or_log_line_carries_the_api_key(
    http: requests.Session,
    rsps: responses.RequestsMock,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    budget = CallBudget(calls_per_minute=4, usable_fraction=1.0, clock=clock)
    client = FreshdeskClient(session=http, base_url=BASE, credentials=CREDENTIALS, budget=budget)
    rsps.get(TICKET_URL, status=401, json={"code": "invalid_credentials"})
    rsps.get(TICKET_URL, body=requests.exceptions.ReadTimeout(f"read timed out {BASIC}"))
    rsps.get(TICKET_URL, status=429, headers={"Retry-After": "5"}, json={"code": "limit"})

    texts = []
    for _ in range(4):  # the fourth is refused by the paused budget
        with pytest.raises(HelpdeskError) as raised:
            client.ticket(ticket_id="35436")
        texts += [str(raised.value), repr(raised.value)]
    texts += [caplog.text, repr(client), repr(CREDENTIALS)]

    for secret in [API_KEY, BASIC, BASIC.removeprefix("Basic ")]:
        assert all(secret not in text for text in texts)


# --- Credentials, domains and the interface -------------------------------------------------


def test_credentials_round_trip_and_refuse_other_fields_without_showing_values() -> None:
    assert FreshdeskCredentials.from_dict(CREDENTIALS.to_dict()) == CREDENTIALS
    with pytest.raises(ValueError) as raised:
        FreshdeskCredentials.from_dict({"api_key": API_KEY, "email": "x@example.com"})
    assert API_KEY not in str(raised.value) and "x@example.com" not in str(raised.value)


@pytest.mark.parametrize("api_key", ["", "  ", "two words", "key:password"])
def test_unusable_api_keys_are_refused(api_key: str) -> None:
    with pytest.raises(ValueError):
        FreshdeskCredentials(api_key=api_key)


@pytest.mark.parametrize(
    ("domain", "account"),
    [
        ("acme", "acme"),
        ("Acme.Freshdesk.com", "acme"),
        ("https://acme.freshdesk.com/", "acme"),
        ("acme-eu.freshdesk.com", "acme-eu"),
    ],
)
def test_account_is_read_from_the_domain(domain: str, account: str) -> None:
    assert freshdesk.account_from_domain(domain) == account


@pytest.mark.parametrize(
    "domain", ["", "acme.zendesk.com", "support.acme.com", "a b", "-acme", "https://"]
)
def test_domains_that_are_not_freshdesk_accounts_are_refused(domain: str) -> None:
    with pytest.raises(ValueError):
        freshdesk.account_from_domain(domain)


def test_base_url_is_the_override_or_the_accounts_freshdesk_host() -> None:
    assert freshdesk.base_url_for("acme", None) == "https://acme.freshdesk.com"
    assert freshdesk.base_url_for("acme", "http://127.0.0.1:9/") == "http://127.0.0.1:9"


def test_role_names_name_each_role_and_skip_one_freshdesk_lacks(
    client: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{BASE}/api/v2/roles/103", json={"id": 103, "name": "Supervisor", "default": True})
    rsps.get(f"{BASE}/api/v2/roles/104", json={"code": "access_denied"}, status=404)
    assert client.role_names(role_ids=("103", "104")) == ("Supervisor",)
    with pytest.raises(HelpdeskError, match="not a Freshdesk id"):
        client.role_names(role_ids=("../agents",))
