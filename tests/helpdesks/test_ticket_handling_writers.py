"""A rule's ticket handling through the writers: Zendesk in one update, Freshdesk with its
group lookup; priorities only raised, groups looked up once and named when missing.
"""

from __future__ import annotations

import json

import pytest
import requests
import responses
from responses import matchers

from plugin.helpdesks.freshdesk import FreshdeskClient
from plugin.helpdesks.http import AccountSessions, CallBudget
from plugin.helpdesks.interface import GroupDirectory, TicketChange, TicketNotFound, UnknownGroup
from plugin.helpdesks.zendesk import ZendeskClient
from tests.clock import FakeClock
from tests.helpdesks.test_freshdesk_client import BASE as FD_BASE
from tests.helpdesks.test_freshdesk_client import BASIC as FD_BASIC
from tests.helpdesks.test_freshdesk_client import CREDENTIALS as FD_CREDENTIALS
from tests.helpdesks.test_freshdesk_client import freshdesk_ticket
from tests.helpdesks.test_zendesk_client import API_CREDENTIALS, BASE, BASIC, zendesk_ticket

MARKER = "regulars-action-handle-1234"
BODY = f"Regulars · Ticket handling: Raise priority to urgent.\nBy: agent user 80001\nRef: {MARKER}"
TAGS = ["regulars", "regulars_handled"]
TICKET = f"{BASE}/api/v2/tickets/35436.json"
GROUPS = f"{BASE}/api/v2/groups.json"
FD_TICKET = f"{FD_BASE}/api/v2/tickets/35436"
FD_GROUPS = f"{FD_BASE}/api/v2/groups"


def with_priority_line(line: str) -> str:
    head, tail = BODY.rsplit("\n", 1)
    return f"{head}\n{line}\n{tail}"


@pytest.fixture
def groups(clock: FakeClock) -> GroupDirectory:
    return GroupDirectory(ttl_seconds=600, clock=clock)


@pytest.fixture
def zendesk(http: requests.Session, clock: FakeClock, groups: GroupDirectory) -> ZendeskClient:
    return ZendeskClient(
        session=http,
        base_url=BASE,
        credentials=API_CREDENTIALS,
        budget=CallBudget(calls_per_minute=200, clock=clock),
        groups=groups,
    )


@pytest.fixture
def freshdesk(http: requests.Session, clock: FakeClock, groups: GroupDirectory) -> FreshdeskClient:
    return FreshdeskClient(
        session=http,
        base_url=FD_BASE,
        credentials=FD_CREDENTIALS,
        budget=CallBudget(calls_per_minute=200, clock=clock),
        groups=groups,
    )


def sent(call: responses.Call) -> object:
    return json.loads(call.request.body or b"{}")


# --- Zendesk ------------------------------------------------------------------------------


def zendesk_groups(rsps: responses.RequestsMock) -> None:
    """Two pages of groups: a deleted one left out, the one asked for on the second page."""
    auth = matchers.header_matcher({"Authorization": BASIC})
    rsps.get(
        GROUPS,
        match=[auth, matchers.query_param_matcher({"per_page": "100"})],
        json={
            "groups": [
                {"id": 360001, "name": "Support", "deleted": False},
                {"id": 360002, "name": "Experienced agents", "deleted": True},
            ],
            "next_page": f"{GROUPS}?page=2&per_page=100",
        },
    )
    rsps.get(
        GROUPS,
        match=[auth, matchers.query_param_matcher({"page": "2", "per_page": "100"})],
        json={
            "groups": [{"id": 360007, "name": "Experienced agents", "deleted": False}],
            "next_page": None,
        },
    )


def test_zendesk_raises_priority_routes_and_tags_in_one_update(
    rsps: responses.RequestsMock, zendesk: ZendeskClient
) -> None:
    auth = matchers.header_matcher({"Authorization": BASIC})
    rsps.get(TICKET, match=[auth], json={"ticket": zendesk_ticket(priority="normal")})
    zendesk_groups(rsps)
    rsps.put(
        TICKET,
        match=[
            auth,
            matchers.json_params_matcher(
                {
                    "ticket": {
                        "comment": {
                            "body": with_priority_line("Priority: normal → urgent."),
                            "public": False,
                        },
                        "priority": "urgent",
                        "group_id": 360007,
                        "additional_tags": [*TAGS, "vip_care"],
                    }
                }
            ),
        ],
        json={"ticket": {"id": 35436}},
    )
    zendesk.add_note(
        ticket_id="35436",
        body=BODY,
        tags=[*TAGS, "vip_care"],
        marker=MARKER,
        change=TicketChange(priority="urgent", group="experienced agents"),
    )
    assert [call.request.method for call in rsps.calls] == ["GET", "GET", "GET", "PUT"]


def test_zendesk_routing_needs_no_ticket_read_and_groups_are_looked_up_once(
    rsps: responses.RequestsMock, zendesk: ZendeskClient, clock: FakeClock
) -> None:
    zendesk_groups(rsps)
    put = rsps.put(TICKET, json={"ticket": {"id": 35436}})
    for _ in range(3):
        zendesk.add_note(
            ticket_id="35436",
            body=BODY,
            tags=TAGS,
            marker=MARKER,
            change=TicketChange(group="Experienced agents"),
        )
    assert put.call_count == 3
    assert [sent(call) for call in rsps.calls if call.request.method == "PUT"] == [
        {
            "ticket": {
                "comment": {"body": BODY, "public": False},
                "group_id": 360007,
                "additional_tags": TAGS,
            }
        }
    ] * 3
    assert sum(call.request.method == "GET" for call in rsps.calls) == 2  # one listing


def test_clients_of_one_account_share_its_group_names() -> None:
    accounts = AccountSessions()
    try:
        assert accounts.groups(BASE) is accounts.groups(BASE + "/")
        assert accounts.groups(BASE) is not accounts.groups(FD_BASE)
    finally:
        accounts.close()


def test_zendesk_never_lowers_a_priority_and_says_so_in_the_note(
    rsps: responses.RequestsMock, zendesk: ZendeskClient
) -> None:
    rsps.get(TICKET, json={"ticket": zendesk_ticket(priority="urgent")})
    rsps.put(
        TICKET,
        match=[
            matchers.json_params_matcher(
                {
                    "ticket": {
                        "comment": {
                            "body": with_priority_line("Priority: already urgent, left as it was."),
                            "public": False,
                        },
                        "additional_tags": TAGS,
                    }
                }
            )
        ],
        json={"ticket": {"id": 35436}},
    )
    zendesk.add_note(
        ticket_id="35436",
        body=BODY,
        tags=TAGS,
        marker=MARKER,
        change=TicketChange(priority="high"),
    )


def test_zendesk_unknown_group_is_a_permanent_error_naming_it_and_writes_nothing(
    rsps: responses.RequestsMock, zendesk: ZendeskClient
) -> None:
    rsps.get(GROUPS, json={"groups": [{"id": 360001, "name": "Support"}], "next_page": None})
    with pytest.raises(UnknownGroup) as missing:
        zendesk.add_note(
            ticket_id="35436",
            body=BODY,
            tags=TAGS,
            marker=MARKER,
            change=TicketChange(group="Night shift"),
        )
    assert not missing.value.retryable
    assert "Zendesk has no group named “Night shift”" in str(missing.value)
    assert [call.request.method for call in rsps.calls] == ["GET"]


def test_zendesk_gone_ticket_while_reading_the_priority_is_ticket_not_found(
    rsps: responses.RequestsMock, zendesk: ZendeskClient
) -> None:
    rsps.get(TICKET, status=404, json={"error": "RecordNotFound"})
    with pytest.raises(TicketNotFound):
        zendesk.add_note(
            ticket_id="35436",
            body=BODY,
            tags=TAGS,
            marker=MARKER,
            change=TicketChange(priority="urgent"),
        )


# --- Freshdesk ----------------------------------------------------------------------------


def test_freshdesk_updates_tags_priority_and_group_in_one_put_then_the_note(
    rsps: responses.RequestsMock, freshdesk: FreshdeskClient
) -> None:
    auth = matchers.header_matcher({"Authorization": FD_BASIC})
    rsps.get(
        FD_GROUPS,
        match=[auth, matchers.query_param_matcher({"per_page": "100", "page": "1"})],
        json=[{"id": 5001, "name": "Support"}],
        headers={"Link": f'<{FD_GROUPS}?per_page=100&page=2>; rel="next"'},
    )
    rsps.get(
        FD_GROUPS,
        match=[auth, matchers.query_param_matcher({"per_page": "100", "page": "2"})],
        json=[{"id": 5002, "name": "Experienced agents"}],
    )
    rsps.get(FD_TICKET, match=[auth], json=freshdesk_ticket(priority=2, tags=["VIP"]))
    rsps.put(
        FD_TICKET,
        match=[
            auth,
            matchers.json_params_matcher({"tags": ["VIP", *TAGS], "priority": 4, "group_id": 5002}),
        ],
        json=freshdesk_ticket(),
    )
    rsps.post(f"{FD_TICKET}/notes", match=[auth], json={"id": 1, "private": True})
    freshdesk.add_note(
        ticket_id="35436",
        body=BODY,
        tags=TAGS,
        marker=MARKER,
        change=TicketChange(priority="urgent", group="Experienced agents"),
    )
    note = sent(rsps.calls[-1])
    assert isinstance(note, dict) and note["private"] is True
    assert "Priority: normal → urgent.<br>Ref: " + MARKER in note["body"]


def test_freshdesk_never_lowers_a_priority_and_looks_groups_up_once(
    rsps: responses.RequestsMock, freshdesk: FreshdeskClient
) -> None:
    rsps.get(FD_GROUPS, json=[{"id": 5002, "name": "Experienced agents"}])
    rsps.get(FD_TICKET, json=freshdesk_ticket(priority=4, tags=TAGS))
    put = rsps.put(FD_TICKET, match=[matchers.json_params_matcher({"group_id": 5002})], json={})
    rsps.post(f"{FD_TICKET}/notes", json={"id": 1, "private": True})
    for _ in range(2):
        freshdesk.add_note(
            ticket_id="35436",
            body=BODY,
            tags=TAGS,
            marker=MARKER,
            change=TicketChange(priority="high", group="Experienced agents"),
        )
    assert put.call_count == 2
    assert sum(str(call.request.url).startswith(FD_GROUPS) for call in rsps.calls) == 1
    note = sent(rsps.calls[-1])
    assert isinstance(note, dict)
    assert "Priority: already urgent, left as it was." in note["body"]


def test_freshdesk_unknown_group_is_a_permanent_error_and_writes_nothing(
    rsps: responses.RequestsMock, freshdesk: FreshdeskClient
) -> None:
    rsps.get(FD_GROUPS, json=[{"id": 5001, "name": "Support"}])
    with pytest.raises(UnknownGroup, match="Freshdesk has no group named “Night shift”"):
        freshdesk.add_note(
            ticket_id="35436",
            body=BODY,
            tags=TAGS,
            marker=MARKER,
            change=TicketChange(group="Night shift"),
        )
    assert len(rsps.calls) == 1
