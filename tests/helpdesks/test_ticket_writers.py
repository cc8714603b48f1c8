"""The outbox's ticket writers: Zendesk and Freshdesk against recorded-shape API answers.

(What every writer, the demo's too, must do is the contract in test_contract.py; the demo's
writer is also tested with the outbox, in tests/delivery/test_outbox.py.)
"""

from __future__ import annotations

import json

import pytest
import requests
import responses
from responses import matchers

from plugin.helpdesks.freshdesk import FreshdeskClient
from plugin.helpdesks.http import CallBudget
from plugin.helpdesks.interface import HelpdeskError, TicketNotFound
from plugin.helpdesks.zendesk import ZendeskClient
from tests.clock import FakeClock
from tests.helpdesks.test_freshdesk_client import BASE as FD_BASE
from tests.helpdesks.test_freshdesk_client import BASIC as FD_BASIC
from tests.helpdesks.test_freshdesk_client import CREDENTIALS as FD_CREDENTIALS
from tests.helpdesks.test_freshdesk_client import freshdesk_ticket
from tests.helpdesks.test_zendesk_client import API_CREDENTIALS, API_TOKEN, BASE, BASIC

MARKER = "regulars-action-abc12345"
BODY = f"Regulars · Applied: $15 Waived shipping fee\nBy: agent user 80001\nRef: {MARKER}"
TAGS = ["regulars", "regulars_applied"]


@pytest.fixture
def budget(clock: FakeClock) -> CallBudget:
    return CallBudget(calls_per_minute=200, clock=clock)


@pytest.fixture
def zendesk(http: requests.Session, budget: CallBudget) -> ZendeskClient:
    return ZendeskClient(session=http, base_url=BASE, credentials=API_CREDENTIALS, budget=budget)


@pytest.fixture
def freshdesk(http: requests.Session, budget: CallBudget) -> FreshdeskClient:
    return FreshdeskClient(
        session=http, base_url=FD_BASE, credentials=FD_CREDENTIALS, budget=budget
    )


# --- Zendesk ------------------------------------------------------------------------------


def test_zendesk_adds_the_note_and_tags_in_one_private_update(
    rsps: responses.RequestsMock, zendesk: ZendeskClient
) -> None:
    rsps.put(
        f"{BASE}/api/v2/tickets/35436.json",
        match=[
            matchers.header_matcher({"Authorization": BASIC}),
            matchers.json_params_matcher(
                {
                    "ticket": {
                        "comment": {"body": BODY, "public": False},
                        "additional_tags": TAGS,
                    }
                }
            ),
        ],
        json={"ticket": {"id": 35436}},
    )
    zendesk.add_note(ticket_id="35436", body=BODY, tags=TAGS, marker=MARKER)


def test_zendesk_finds_the_marker_in_the_newest_comments_page_by_page(
    rsps: responses.RequestsMock, zendesk: ZendeskClient
) -> None:
    url = f"{BASE}/api/v2/tickets/35436/comments.json"
    rsps.get(
        url,
        match=[matchers.query_param_matcher({"sort_order": "desc", "per_page": "100"})],
        json={
            "comments": [{"id": 2, "body": "Customer replied", "plain_body": "Customer replied"}],
            "next_page": f"{url}?page=2&per_page=100&sort_order=desc",
        },
    )
    rsps.get(
        url,
        match=[
            matchers.query_param_matcher({"page": "2", "per_page": "100", "sort_order": "desc"})
        ],
        json={"comments": [{"id": 1, "body": BODY, "public": False}], "next_page": None},
    )
    assert zendesk.has_note(ticket_id="35436", marker=MARKER)


def test_zendesk_says_no_when_the_marker_is_not_there(
    rsps: responses.RequestsMock, zendesk: ZendeskClient
) -> None:
    rsps.get(
        f"{BASE}/api/v2/tickets/35436/comments.json",
        json={"comments": [{"id": 1, "body": "Hello"}], "next_page": None},
    )
    assert not zendesk.has_note(ticket_id="35436", marker=MARKER)


def test_zendesk_writer_errors_say_what_to_do_next(
    rsps: responses.RequestsMock, zendesk: ZendeskClient, clock: FakeClock
) -> None:
    url = f"{BASE}/api/v2/tickets/35436.json"
    rsps.put(url, status=404, json={"error": "RecordNotFound"})
    with pytest.raises(TicketNotFound):
        zendesk.add_note(ticket_id="35436", body=BODY, tags=TAGS, marker=MARKER)
    with pytest.raises(TicketNotFound):
        zendesk.add_note(ticket_id="not-a-number", body=BODY, tags=TAGS, marker=MARKER)
    rsps.put(url, status=429, headers={"Retry-After": "17"}, json={"error": "TooMany"})
    with pytest.raises(HelpdeskError) as limited:
        zendesk.add_note(ticket_id="35436", body=BODY, tags=TAGS, marker=MARKER)
    assert (limited.value.status, limited.value.retry_after) == (429, 17.0)
    # The budget is paused now: the next write is not sent, and says for how long.
    with pytest.raises(HelpdeskError) as waiting:
        zendesk.add_note(ticket_id="35436", body=BODY, tags=TAGS, marker=MARKER)
    assert waiting.value.status is None and waiting.value.retry_after == 17.0
    assert API_TOKEN not in str(waiting.value)
    clock.advance(17)
    rsps.put(url, status=500)
    with pytest.raises(HelpdeskError) as failed:
        zendesk.add_note(ticket_id="35436", body=BODY, tags=TAGS, marker=MARKER)
    assert failed.value.retryable and failed.value.status == 500


# --- Freshdesk ----------------------------------------------------------------------------


def test_freshdesk_adds_missing_tags_then_the_private_note(
    rsps: responses.RequestsMock, freshdesk: FreshdeskClient
) -> None:
    url = f"{FD_BASE}/api/v2/tickets/35436"
    auth = matchers.header_matcher({"Authorization": FD_BASIC})
    rsps.get(url, match=[auth], json=freshdesk_ticket(tags=["VIP", "regulars"]))
    rsps.put(
        url,
        match=[
            auth,
            matchers.json_params_matcher({"tags": ["VIP", "regulars", "regulars_applied"]}),
        ],
        json=freshdesk_ticket(),
    )
    rsps.post(f"{url}/notes", match=[auth], json={"id": 1, "private": True})
    freshdesk.add_note(ticket_id="35436", body=BODY, tags=TAGS, marker=MARKER)
    note = json.loads(rsps.calls[-1].request.body or b"{}")
    assert note["private"] is True
    assert MARKER in note["body"] and "<br>" in note["body"]


def test_freshdesk_finds_the_marker_in_the_conversations(
    rsps: responses.RequestsMock, freshdesk: FreshdeskClient
) -> None:
    url = f"{FD_BASE}/api/v2/tickets/35436/conversations"
    rsps.get(
        url,
        match=[matchers.query_param_matcher({"per_page": "100", "page": "1"})],
        json=[{"id": 1, "body": "<div>Hi</div>", "body_text": "Hi", "private": False}],
        headers={"Link": f'<{url}?page=2>; rel="next"'},
    )
    rsps.get(
        url,
        match=[matchers.query_param_matcher({"per_page": "100", "page": "2"})],
        json=[{"id": 2, "body": BODY.replace("\n", "<br>"), "body_text": BODY, "private": True}],
    )
    assert freshdesk.has_note(ticket_id="35436", marker=MARKER)


def test_freshdesk_gone_ticket_is_ticket_not_found(
    rsps: responses.RequestsMock, freshdesk: FreshdeskClient
) -> None:
    rsps.get(f"{FD_BASE}/api/v2/tickets/35436/conversations", status=404, json={})
    with pytest.raises(TicketNotFound):
        freshdesk.has_note(ticket_id="35436", marker=MARKER)
