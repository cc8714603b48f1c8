"""The fake Zendesk server: Zendesk's shapes, auth, pagination, writes, modes and counters."""

from __future__ import annotations

import copy
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.fake_zendesk import (
    ADMIN_EMAIL,
    DEFAULT_API_TOKEN,
    DEFAULT_APP_ID,
    DEFAULT_INSTALLATION_ID,
    DEFAULT_OAUTH_TOKEN,
    FakeZendeskData,
    FakeZendeskServer,
    from_sample_data,
)
from plugin.helpdesks.http import CallBudget, new_session
from plugin.helpdesks.zendesk import ZendeskClient, ZendeskCredentials
from tests.tokens import new_key, public_pem

TODAY = date(2026, 3, 2)
MARGARET = 90001  # "vip", user fields, no organization
TOMASZ = 90004  # user fields, organization 70003
BEAN_THERE = 90025  # organization 70001, six tickets
ADMIN = 80004
UNKNOWN = 999_999


@pytest.fixture(scope="module")
def public_keys() -> tuple[str, str]:
    """The app's public key and the one it is rotated to."""
    return public_pem(new_key()), public_pem(new_key())


@pytest.fixture(scope="module")
def sample(public_keys: tuple[str, str]) -> FakeZendeskData:
    return from_sample_data(TODAY, public_key_pem=public_keys[0])


@pytest.fixture
def data(sample: FakeZendeskData) -> FakeZendeskData:
    """A copy of the sample account for one test to change."""
    return copy.deepcopy(sample)


@pytest.fixture
def server(data: FakeZendeskData) -> Iterator[FakeZendeskServer]:
    with FakeZendeskServer(data) as server:
        yield server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A session with the fake's API token as Zendesk's basic auth."""
    with requests.Session() as session:
        session.auth = (f"{ADMIN_EMAIL}/token", DEFAULT_API_TOKEN)
        yield session


def get(http: requests.Session, server: FakeZendeskServer, path: str, **params: Any) -> Any:
    response = http.get(server.url + path, params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def tickets_of(data: FakeZendeskData, user_id: int) -> list[dict[str, Any]]:
    return [t for t in data.tickets.values() if t["requester_id"] == user_id]


def test_sample_data_uses_the_demo_ids_and_carries_fields_tags_and_organizations(
    data: FakeZendeskData,
) -> None:
    margaret = data.users[MARGARET]
    assert margaret["email"] == "margaret.okafor@example.com"
    assert margaret["role"] == "end-user"
    assert margaret["user_fields"] == {"lifetime_value": 12345.0, "plan": "gold"}
    assert "vip" in margaret["tags"]
    assert data.users[TOMASZ]["organization_id"] == 70003
    assert data.users[BEAN_THERE]["organization_id"] == 70001
    assert data.organizations[70001]["organization_fields"]["account_tier"] == "wholesale"
    # Users without values list the account's fields as null, as Zendesk does.
    assert data.users[ADMIN]["user_fields"] == {"lifetime_value": None, "plan": None}
    assert data.users[ADMIN]["role"] == "admin"
    assert min(data.tickets) == 1001
    assert all(t["requester_id"] in data.users for t in data.tickets.values())
    assert all(t["created_at"].endswith("Z") for t in data.tickets.values())


def test_ticket_sideloads_requester_submitter_assignee_and_organization(
    server: FakeZendeskServer, http: requests.Session, data: FakeZendeskData
) -> None:
    expected = tickets_of(data, BEAN_THERE)[0]
    path = f"/api/v2/tickets/{expected['id']}.json"

    body = get(http, server, path, include="users,organizations")

    ticket = body["ticket"]
    assert ticket["url"] == f"{server.url}{path}"
    assert ticket["requester_id"] == BEAN_THERE
    assert ticket["via"]["channel"] in {"email", "chat", "voice", "web"}
    assert {user["id"] for user in body["users"]} == {BEAN_THERE, expected["assignee_id"]}
    assert [org["id"] for org in body["organizations"]] == [70001]
    assert body["organizations"][0]["organization_fields"]["net_terms_days"] == 30

    only_users = get(http, server, path, include="users")
    assert "users" in only_users
    assert "organizations" not in only_users
    assert set(get(http, server, path)) == {"ticket"}


def test_user_me_organization_user_fields_and_installations(
    server: FakeZendeskServer, http: requests.Session
) -> None:
    user = get(http, server, f"/api/v2/users/{TOMASZ}.json")["user"]
    assert user["user_fields"]["plan"] == "business"
    assert user["organization_id"] == 70003

    me = get(http, server, "/api/v2/users/me.json")["user"]
    assert (me["id"], me["email"], me["role"]) == (ADMIN, ADMIN_EMAIL, "admin")

    organization = get(http, server, "/api/v2/organizations/70003.json")["organization"]
    assert organization["name"] == "Kowalczyk Consulting"

    fields = get(http, server, "/api/v2/user_fields.json")["user_fields"]
    assert {(f["key"], f["type"]) for f in fields} == {
        ("lifetime_value", "decimal"),
        ("plan", "text"),
    }

    installations = get(http, server, "/api/v2/apps/installations.json")["installations"]
    assert installations == [
        {
            "id": DEFAULT_INSTALLATION_ID,
            "app_id": DEFAULT_APP_ID,
            "product": "support",
            "enabled": True,
            "settings": {"name": "Regulars", "title": "Regulars"},
        }
    ]


def test_oauth_bearer_token_is_accepted(server: FakeZendeskServer) -> None:
    headers = {"Authorization": f"Bearer {DEFAULT_OAUTH_TOKEN}"}
    response = requests.get(f"{server.url}/api/v2/users/me.json", headers=headers, timeout=10)
    assert response.status_code == 200
    assert response.json()["user"]["id"] == ADMIN


@pytest.mark.parametrize("sort_order", ["asc", "desc"])
def test_requested_tickets_come_in_pages_linked_by_next_page(
    server: FakeZendeskServer, http: requests.Session, data: FakeZendeskData, sort_order: str
) -> None:
    mine = sorted(tickets_of(data, BEAN_THERE), key=lambda t: t["created_at"])
    if sort_order == "desc":
        mine.reverse()
    url: str | None = f"{server.url}/api/v2/users/{BEAN_THERE}/tickets/requested.json"
    params: dict[str, str | int] | None = {
        "per_page": 4,
        "sort_by": "created_at",
        "sort_order": sort_order,
    }
    pages = []
    while url is not None:
        response = http.get(url, params=params, timeout=10)
        assert response.status_code == 200
        page = response.json()
        pages.append(page)
        assert page["count"] == len(mine)
        url, params = page["next_page"], None

    assert [len(page["tickets"]) for page in pages] == [4, len(mine) - 4]
    assert pages[0]["next_page"].startswith(f"{server.url}/api/v2/users/{BEAN_THERE}/")
    assert pages[0]["previous_page"] is None
    assert pages[1]["previous_page"] is not None
    assert [t["id"] for page in pages for t in page["tickets"]] == [t["id"] for t in mine]


def test_requested_tickets_default_to_oldest_first_and_reject_bad_paging(
    server: FakeZendeskServer, http: requests.Session, data: FakeZendeskData
) -> None:
    path = f"/api/v2/users/{MARGARET}/tickets/requested.json"
    body = get(http, server, path)
    created = [t["created_at"] for t in body["tickets"]]
    assert created == sorted(created)
    assert len(created) == len(tickets_of(data, MARGARET))
    assert body["next_page"] is None

    for params in ({"page": "x"}, {"per_page": 0}, {"sort_by": "nonsense"}):
        response = http.get(server.url + path, params=params, timeout=10)
        assert response.status_code == 400
        assert response.json()["error"] == "InvalidPaginationParameter"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token",
        "Basic bm90LWJhc2U2NA==",  # base64 of "not-base64": no "{email}/token:{token}"
        "Basic !!!",
    ],
)
def test_missing_or_wrong_credentials_get_401(
    server: FakeZendeskServer, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = requests.get(f"{server.url}/api/v2/tickets/1001.json", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json() == {"error": "Couldn't authenticate you"}


@pytest.mark.parametrize(
    "auth",
    [
        (f"{ADMIN_EMAIL}/token", "wrong-token"),
        ("sam.carter@example.com/token", DEFAULT_API_TOKEN),  # a token is tied to its email
        (ADMIN_EMAIL, DEFAULT_API_TOKEN),  # without "/token" it is a password login
    ],
)
def test_api_token_must_match_its_email(server: FakeZendeskServer, auth: tuple[str, str]) -> None:
    response = requests.get(f"{server.url}/api/v2/users/me.json", auth=auth, timeout=10)
    assert response.status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v2/tickets/{UNKNOWN}.json",
        f"/api/v2/users/{UNKNOWN}.json",
        f"/api/v2/users/{UNKNOWN}/tickets/requested.json",
        f"/api/v2/organizations/{UNKNOWN}.json",
    ],
)
def test_unknown_ids_get_record_not_found(
    server: FakeZendeskServer, http: requests.Session, path: str
) -> None:
    response = http.get(server.url + path, timeout=10)
    assert response.status_code == 404
    assert response.json() == {"error": "RecordNotFound", "description": "Not found"}


def test_unknown_routes_get_invalid_endpoint(
    server: FakeZendeskServer, http: requests.Session
) -> None:
    response = http.get(f"{server.url}/api/v2/tickets/abc.json", timeout=10)
    assert response.status_code == 404
    assert response.json()["error"] == "InvalidEndpoint"
    assert server.app_state.total_calls() == 0


def test_public_key_is_anonymous_plain_text_and_rotates(
    server: FakeZendeskServer, public_keys: tuple[str, str]
) -> None:
    url = f"{server.url}/api/v2/apps/{DEFAULT_APP_ID}/public_key.pem"
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text == public_keys[0]
    assert "X-Rate-Limit" not in response.headers

    other_app = requests.get(f"{server.url}/api/v2/apps/1/public_key.pem", timeout=10)
    assert other_app.status_code == 404

    server.app_state.rotate_key(public_keys[1])
    assert requests.get(url, timeout=10).text == public_keys[1]

    rotate = {"public_key_pem": public_keys[0]}
    assert requests.post(f"{server.url}/_fake/config", json=rotate, timeout=10).ok
    assert requests.get(url, timeout=10).text == public_keys[0]


def test_internal_notes_and_tags_are_recorded(
    server: FakeZendeskServer, http: requests.Session, data: FakeZendeskData
) -> None:
    note = {"ticket": {"comment": {"body": "Regular since 2017: refund approved", "public": False}}}
    response = http.put(f"{server.url}/api/v2/tickets/1001.json", json=note, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["ticket"]["id"] == 1001
    assert body["audit"]["ticket_id"] == 1001
    assert body["audit"]["events"][0]["type"] == "Comment"
    assert body["audit"]["events"][0]["author_id"] == ADMIN
    assert data.notes[1001] == [{"body": "Regular since 2017: refund approved", "public": False}]

    before = list(data.tickets[1001]["tags"])
    tags = {"tags": ["regulars_exception", before[0], "regulars_exception"]}
    response = http.put(f"{server.url}/api/v2/tickets/1001/tags.json", json=tags, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"tags": [*before, "regulars_exception"]}
    assert data.tickets[1001]["tags"] == [*before, "regulars_exception"]


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/api/v2/tickets/1001.json", {"ticket": {"comment": {"public": False}}}),
        ("/api/v2/tickets/1001.json", {"ticket": {"status": "solved"}}),
        ("/api/v2/tickets/1001.json", {"comment": {"body": "no ticket wrapper"}}),
        ("/api/v2/tickets/1001/tags.json", {"tags": "vip"}),
    ],
)
def test_malformed_writes_are_refused_and_not_recorded(
    server: FakeZendeskServer,
    http: requests.Session,
    data: FakeZendeskData,
    path: str,
    payload: dict[str, Any],
) -> None:
    tags = list(data.tickets[1001]["tags"])
    response = http.put(server.url + path, json=payload, timeout=10)
    assert response.status_code == 422
    assert response.json()["error"] == "RecordInvalid"
    assert data.notes == {}
    assert data.tickets[1001]["tags"] == tags


def test_writes_to_unknown_tickets_get_404(
    server: FakeZendeskServer, http: requests.Session
) -> None:
    note = {"ticket": {"comment": {"body": "hello", "public": False}}}
    url = f"{server.url}/api/v2/tickets/{UNKNOWN}.json"
    assert http.put(url, json=note, timeout=10).status_code == 404
    tags = {"tags": ["vip"]}
    url = f"{server.url}/api/v2/tickets/{UNKNOWN}/tags.json"
    assert http.put(url, json=tags, timeout=10).status_code == 404


def test_modes_down_and_rate_limited_then_normal_again(
    server: FakeZendeskServer, http: requests.Session
) -> None:
    url = f"{server.url}/api/v2/tickets/1001.json"
    key_url = f"{server.url}/api/v2/apps/{DEFAULT_APP_ID}/public_key.pem"

    server.app_state.mode = "down"
    assert http.get(url, timeout=10).status_code == 503
    assert requests.get(key_url, timeout=10).status_code == 503

    server.app_state.mode = "rate_limited"
    limited = http.get(url, timeout=10)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "30"

    server.app_state.mode = "normal"
    assert http.get(url, timeout=10).status_code == 200
    assert server.app_state.calls["ticket"] == 3


def test_rate_limit_headers_count_down_to_429(data: FakeZendeskData) -> None:
    with FakeZendeskServer(data, rate_limit=2) as server, requests.Session() as http:
        http.auth = (f"{ADMIN_EMAIL}/token", DEFAULT_API_TOKEN)
        url = f"{server.url}/api/v2/users/me.json"
        first, second, third = (http.get(url, timeout=10) for _ in range(3))
        assert [r.status_code for r in (first, second, third)] == [200, 200, 429]
        assert first.headers["X-Rate-Limit"] == "2"
        assert [r.headers["X-Rate-Limit-Remaining"] for r in (first, second, third)] == [
            "1",
            "0",
            "0",
        ]
        assert 1 <= int(third.headers["Retry-After"]) <= 60
        # The anonymous public key does not spend the account's calls.
        key_url = f"{server.url}/api/v2/apps/{DEFAULT_APP_ID}/public_key.pem"
        assert requests.get(key_url, timeout=10).status_code == 200

        server.app_state.reset_counts()
        assert http.get(url, timeout=10).status_code == 200


def test_latency_and_hang_delay_answers(server: FakeZendeskServer, http: requests.Session) -> None:
    url = f"{server.url}/api/v2/users/me.json"
    server.app_state.latency_seconds = 0.2
    started = time.monotonic()
    assert http.get(url, timeout=10).status_code == 200
    assert time.monotonic() - started >= 0.2

    server.app_state.configure(latency_seconds=0, mode="hang", hang_seconds=0.2)
    started = time.monotonic()
    assert http.get(url, timeout=10).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_stopping_the_server_wakes_hanging_requests(data: FakeZendeskData) -> None:
    answers: list[int] = []
    with FakeZendeskServer(data) as server:
        server.app_state.mode = "hang"  # 30 seconds by default
        url = f"{server.url}/api/v2/users/me.json"

        def call() -> None:
            auth = (f"{ADMIN_EMAIL}/token", DEFAULT_API_TOKEN)
            answers.append(requests.get(url, auth=auth, timeout=20).status_code)

        caller = threading.Thread(target=call)
        caller.start()
        while server.app_state.total_calls() == 0:
            time.sleep(0.01)
        started = time.monotonic()
    caller.join()
    assert answers == [200]
    assert time.monotonic() - started < 10


def test_counters_by_route(
    server: FakeZendeskServer, http: requests.Session, data: FakeZendeskData
) -> None:
    state = server.app_state
    get(http, server, "/api/v2/tickets/1001.json", include="users")
    get(http, server, "/api/v2/tickets/1002.json")
    get(http, server, f"/api/v2/users/{MARGARET}/tickets/requested.json")
    requests.get(f"{server.url}/api/v2/users/me.json", timeout=10)  # refused calls count too
    http.put(f"{server.url}/api/v2/tickets/1001/tags.json", json={"tags": ["x"]}, timeout=10)

    assert state.calls == {"ticket": 2, "requested": 1, "me": 1, "tags": 1}
    assert state.total_calls() == 5
    state.reset_counts()
    assert state.total_calls() == 0
    assert state.calls == {}


def test_http_controls_for_a_separate_process(
    server: FakeZendeskServer, http: requests.Session
) -> None:
    get(http, server, "/api/v2/users/me.json")
    stats = requests.get(f"{server.url}/_fake/stats", timeout=10).json()
    assert stats == {"calls": {"me": 1}, "total_calls": 1}

    config = {"latency_ms": 150, "mode": "down"}
    response = requests.post(f"{server.url}/_fake/config", json=config, timeout=10)
    assert response.status_code == 200
    assert response.json()["latency_ms"] == pytest.approx(150)
    assert server.app_state.mode == "down"
    assert server.app_state.latency_seconds == pytest.approx(0.15)
    started = time.monotonic()
    assert http.get(f"{server.url}/api/v2/users/me.json", timeout=10).status_code == 503
    assert time.monotonic() - started >= 0.15

    for bad in ({"mode": "sideways"}, {"latency_ms": "fast"}, {"speed": 1}, ["mode"]):
        response = requests.post(f"{server.url}/_fake/config", json=bad, timeout=10)
        assert response.status_code == 400
    assert server.app_state.mode == "down"

    reset = requests.post(f"{server.url}/_fake/reset", timeout=10).json()
    assert reset == {"calls": {}, "total_calls": 0}
    assert requests.get(f"{server.url}/_fake/stats", timeout=10).json()["total_calls"] == 0


def test_invalid_controls_change_nothing(server: FakeZendeskServer) -> None:
    state = server.app_state
    with pytest.raises(ValueError, match="mode"):
        state.configure(latency_seconds=1.0, mode="sideways")
    with pytest.raises(ValueError, match="latency"):
        state.latency_seconds = -1
    with pytest.raises(ValueError, match="rate_limit"):
        state.rate_limit = 0
    assert (state.latency_seconds, state.mode) == (0.0, "normal")


def test_server_listens_only_on_loopback(data: FakeZendeskData) -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        FakeZendeskServer(data, host="0.0.0.0")  # noqa: S104 - the address being refused


def test_the_zendesk_client_reads_and_writes_through_the_fake(
    server: FakeZendeskServer, data: FakeZendeskData
) -> None:
    credentials = ZendeskCredentials.from_api_token(email=ADMIN_EMAIL, api_token=DEFAULT_API_TOKEN)
    with new_session() as session:
        client = ZendeskClient(
            session=session, base_url=server.url, credentials=credentials, budget=CallBudget()
        )
        ticket_id = tickets_of(data, MARGARET)[0]["id"]

        found = client.ticket(ticket_id=str(ticket_id))
        history = client.requester_tickets(requester_id=found.requester.id)
        fields = client.user_fields(user_id=str(MARGARET))
        client.add_internal_note(ticket_id=str(ticket_id), body="A regular: be generous")
        client.add_tags(ticket_id=str(ticket_id), tags=["regulars_vip"])

    assert found.ticket.id == str(ticket_id)
    assert (found.requester.id, found.requester.email) == (
        str(MARGARET),
        "margaret.okafor@example.com",
    )
    mine = sorted(tickets_of(data, MARGARET), key=lambda t: t["created_at"], reverse=True)
    assert [t.id for t in history] == [str(t["id"]) for t in mine]
    assert fields["user_fields"] == {"lifetime_value": 12345.0, "plan": "gold"}
    assert fields["tags"] == ["vip"]
    assert data.notes[ticket_id] == [{"body": "A regular: be generous", "public": False}]
    assert "regulars_vip" in data.tickets[ticket_id]["tags"]
    # One call for the ticket with its sideloaded requester, one page of history, one user,
    # one note and one tag update.
    assert server.app_state.calls == {
        "ticket": 1,
        "requested": 1,
        "user": 1,
        "update_ticket": 1,
        "tags": 1,
    }


def test_command_line_serves_until_terminated(tmp_path: Path, public_keys: tuple[str, str]) -> None:
    key_file = tmp_path / "public_key.pem"
    key_file.write_text(public_keys[0])
    command = [
        sys.executable,
        "-m",
        "bench.fake_zendesk",
        "--port",
        "0",
        "--latency-ms",
        "1",
        "--public-key-file",
        str(key_file),
    ]
    repo = Path(__file__).resolve().parents[2]
    with subprocess.Popen(command, cwd=repo, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        try:
            assert url.startswith("http://127.0.0.1:")
            key = requests.get(f"{url}/api/v2/apps/{DEFAULT_APP_ID}/public_key.pem", timeout=10)
            assert key.text == public_keys[0]
            stats = requests.get(f"{url}/_fake/stats", timeout=10).json()
            assert stats == {"calls": {"public_key": 1}, "total_calls": 1}
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0
