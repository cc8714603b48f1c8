"""A fake Freshdesk API v2 for end-to-end tests, benchmarks and local trials.

It serves the demo's sample customers (as contacts), agents and tickets with the ids the demo
uses, in the JSON shapes of Freshdesk's REST API v2: a ticket, a requester's tickets in pages
(with the `Link` header, and only the last 30 days unless `updated_since` asks for more, as
Freshdesk does), contacts with custom fields and tags, agents and `agents/me`, agent groups,
and the writes the service makes (private notes; tags, priority and group), which it records.
Calls need an agent's API key as basic auth and count against a per-minute rate limit
reported in Freshdesk's headers.

Run-time controls make Freshdesk slow (`latency_seconds`), down (503), rate limited (429) or
hanging, and per-route counters tell how many calls a scenario cost. Tests use
`FakeFreshdeskServer` and its `app_state`; `python -m bench.fake_freshdesk --port N` serves it
on its own for `flask freshdesk register --api-base-url`. It only ever listens on 127.0.0.1.
What the fakes share (controls, fault modes, rate limit, server) is in bench/fake_base.py.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from urllib.parse import urlencode

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from bench.fake_base import (
    DEFAULT_RATE_LIMIT,
    MODES,
    ErrorAnswers,
    FakeApiServer,
    FakeApiState,
    JSONObject,
    RateLimitStatus,
    api_timestamp,
    check_api_calls,
    json_response,
    serve_until_signalled,
)
from plugin.demo.sample_data import SampleAgent, SampleCustomer, SampleTicket, build_sample_data
from plugin.helpdesks.demo import GROUPS

# The counters' keys: one name per API route.
ROUTES = (
    "ticket",
    "tickets",
    "update_ticket",
    "notes",
    "contact",
    "agent",
    "me",
    "groups",
    "role",
)
ADMIN_EMAIL = "diane.foster@example.com"
DEFAULT_API_KEY = "fake-freshdesk-api-key"  # a made-up credential for tests
DEFAULT_PAGE_SIZE = 30
MAX_PAGE_SIZE = 100
# Without updated_since, Freshdesk lists only the tickets created in the last 30 days.
DEFAULT_LIST_DAYS = 30
ORDERABLE = ("created_at", "updated_at", "due_by", "status")

# The numbers Freshdesk uses, for the demo's Zendesk-style words.
STATUS_NUMBERS = {"new": 2, "open": 2, "pending": 3, "hold": 3, "solved": 4, "closed": 5}
PRIORITY_NUMBERS = {"low": 1, "normal": 2, "high": 3, "urgent": 4}
SOURCE_NUMBERS = {"email": 1, "web": 2, "voice": 3, "chat": 7}
# Ticket scope and role of an agent: global access; the account admin's role.
GLOBAL_SCOPE = 1
ADMIN_ROLE_ID, AGENT_ROLE_ID = 101, 102
# Freshdesk's default roles, as `GET /api/v2/roles/{id}` names them.
ROLE_NAMES = {ADMIN_ROLE_ID: "Account Administrator", AGENT_ROLE_ID: "Agent"}
# Contact custom fields and tags for a few sample customers, keyed by email. Freshdesk lists
# every field the account defines, null where a contact has no value.
_CONTACT_EXTRAS: dict[str, tuple[JSONObject, tuple[str, ...]]] = {
    "margaret.okafor@example.com": ({"lifetime_value": 12345.0, "plan": "gold"}, ("VIP",)),
    "dan.whitfield@example.net": ({"lifetime_value": 8760.5, "plan": "silver"}, ("VIP",)),
    "t.kowalczyk@example.com": ({"lifetime_value": 4321.0, "plan": "business"}, ("b2b",)),
}
_ACCOUNT_AGE = timedelta(days=4 * 365)
# The agent groups, as the demo helpdesk names them, from this id up.
FIRST_GROUP_ID = 30001


@dataclass
class FakeFreshdeskData:
    """Everything the fake serves, as Freshdesk-shaped JSON objects keyed by id.

    `api_keys` maps an API key to the agent it belongs to. Writes are recorded: notes in
    `notes` by ticket id, tags, priority and group in the ticket's `tags`, `priority` and
    `group_id`. `groups` are the agent groups.
    """

    contacts: dict[int, JSONObject]
    agents: dict[int, JSONObject]
    tickets: dict[int, JSONObject]
    api_keys: dict[str, int] = field(default_factory=dict)
    notes: dict[int, list[JSONObject]] = field(default_factory=dict)
    groups: dict[int, JSONObject] = field(default_factory=dict)


def from_sample_data(
    today: date, *, admin_email: str = ADMIN_EMAIL, api_key: str = DEFAULT_API_KEY
) -> FakeFreshdeskData:
    """Fill a fake account with the demo's sample data for `today`, under the demo's ids.

    Customers are contacts 90001 and up, agents 80001-80004 (80004 is the admin), tickets 1001
    and up, so a service seeded with the demo's customers recognizes the requesters. The API
    key belongs to the agent with `admin_email`.
    """
    sample = build_sample_data(today)
    field_names = list(dict.fromkeys(k for fields, _ in _CONTACT_EXTRAS.values() for k in fields))
    contacts = {int(c.helpdesk_user_id): _contact(c, field_names) for c in sample.customers}
    agents = {int(a.helpdesk_user_id): _agent(a, today) for a in sample.agents}
    tickets = {int(t.external_id): _ticket(t) for t in sample.tickets}
    owner = next((a for a in agents.values() if a["contact"]["email"] == admin_email), None)
    if owner is None:
        raise ValueError(f"no sample agent has the email {admin_email!r}")
    stamp = api_timestamp(datetime.combine(today - _ACCOUNT_AGE, time_of_day(9)))
    groups = {
        group_id: {"id": group_id, "name": name, "description": None, "created_at": stamp}
        for group_id, name in enumerate(GROUPS, start=FIRST_GROUP_ID)
    }
    return FakeFreshdeskData(
        contacts=contacts,
        agents=agents,
        tickets=tickets,
        api_keys={api_key: owner["id"]},
        groups=groups,
    )


def _contact(customer: SampleCustomer, field_names: list[str]) -> JSONObject:
    fields, tags = _CONTACT_EXTRAS.get(customer.email, ({}, ()))
    stamp = api_timestamp(datetime.combine(customer.customer_since, time_of_day(9)))
    return {
        "id": int(customer.helpdesk_user_id),
        "name": customer.name,
        "email": customer.email,
        "phone": customer.phone,
        "mobile": None,
        "active": True,
        "address": None,
        "company_id": None,
        "description": None,
        "job_title": None,
        "language": "en",
        "time_zone": "Eastern Time (US & Canada)",
        "twitter_id": None,
        "other_emails": [],
        "tags": list(tags),
        "custom_fields": {name: fields.get(name) for name in field_names},
        "created_at": stamp,
        "updated_at": stamp,
    }


def _agent(agent: SampleAgent, today: date) -> JSONObject:
    stamp = api_timestamp(datetime.combine(today - _ACCOUNT_AGE, time_of_day(9)))
    return {
        "id": int(agent.helpdesk_user_id),
        "available": True,
        "occasional": False,
        "signature": None,
        "ticket_scope": GLOBAL_SCOPE,
        "type": "support_agent",
        "group_ids": [],
        "role_ids": [ADMIN_ROLE_ID if agent.role == "admin" else AGENT_ROLE_ID],
        "skill_ids": [],
        "contact": {
            "active": True,
            "email": agent.email,
            "job_title": None,
            "language": "en",
            "last_login_at": stamp,
            "mobile": None,
            "name": agent.name,
            "phone": None,
            "time_zone": "Eastern Time (US & Canada)",
            "created_at": stamp,
            "updated_at": stamp,
        },
        "created_at": stamp,
        "updated_at": stamp,
    }


def _ticket(ticket: SampleTicket) -> JSONObject:
    created = api_timestamp(ticket.created_at)
    return {
        "id": int(ticket.external_id),
        "subject": ticket.subject,
        "description": f"<div>{ticket.description}</div>",
        "description_text": ticket.description,
        "status": STATUS_NUMBERS[ticket.status],
        "priority": PRIORITY_NUMBERS[ticket.priority],
        "source": SOURCE_NUMBERS[ticket.channel],
        "type": ticket.ticket_type.capitalize(),
        "requester_id": int(ticket.requester_user_id),
        "responder_id": None if ticket.assignee_user_id is None else int(ticket.assignee_user_id),
        "company_id": None,
        "group_id": None,
        "product_id": None,
        "email_config_id": None,
        "cc_emails": [],
        "fwd_emails": [],
        "reply_cc_emails": [],
        "to_emails": None,
        "spam": False,
        "is_escalated": False,
        "fr_escalated": False,
        "tags": list(ticket.tags),
        "custom_fields": {},
        "due_by": created,
        "fr_due_by": created,
        "created_at": created,
        "updated_at": api_timestamp(ticket.updated_at),
    }


class FakeFreshdeskState(FakeApiState[FakeFreshdeskData]):
    """The account's data, controls and counters (see `FakeApiState`), with Freshdesk's API
    keys; the ids of new notes are Freshdesk-sized.
    """

    first_id = 5_000_000_001

    def authenticate(self, authorization: str | None) -> int | None:
        """Return the agent an API key in basic auth belongs to (any password), or None."""
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        api_key, _, _password = decoded.partition(":")
        with self.lock:
            return self.data.api_keys.get(api_key)


ERRORS = ErrorAnswers("Freshdesk", ("code", "message"), "service_unavailable", "rate_limited")
_error = ERRORS.error


def _invalid(field_name: str, message: str) -> Response:
    errors = [{"field": field_name, "message": message, "code": "invalid_value"}]
    return json_response({"description": "Validation failed", "errors": errors}, 400)


def _link_next_page(response: Response, page: int) -> None:
    """Say that another page follows, as Freshdesk does: `Link: <...page=N+1>; rel="next"`."""
    query = request.args.to_dict() | {"page": str(page + 1)}
    next_url = f"{request.host_url.rstrip('/')}{request.path}?{urlencode(query)}"
    response.headers["Link"] = f'<{next_url}>; rel="next"'


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC).replace(tzinfo=None)


def create_app(state: FakeFreshdeskState) -> Flask:
    """Build the WSGI app answering Freshdesk's routes from `state`."""
    app = Flask(__name__)
    data = state.data

    check_api_calls(
        app,
        state,
        ERRORS,
        routes=ROUTES,
        unauthenticated=lambda: _error(
            401, "invalid_credentials", "You have to be logged in to perform this action."
        ),
        refusal="You have exceeded the limit of requests",
    )

    @app.after_request
    def _rate_limit_headers(response: Response) -> Response:
        status: RateLimitStatus | None = g.get("rate_limit")
        if status is not None:
            response.headers["X-RateLimit-Total"] = str(status.limit)
            response.headers["X-RateLimit-Remaining"] = str(status.remaining)
            response.headers["X-RateLimit-Used-CurrentRequest"] = "1"
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        return _error(error.code or 500, "error", error.description or error.name)

    @app.get("/api/v2/tickets/<int:ticket_id>", endpoint="ticket")
    def ticket(ticket_id: int) -> Response:
        with state.lock:
            found = data.tickets.get(ticket_id)
            return json_response(found) if found is not None else json_response({}, 404)

    @app.get("/api/v2/tickets", endpoint="tickets")
    def list_tickets() -> Response:
        args = request.args
        try:
            per_page = int(args.get("per_page", DEFAULT_PAGE_SIZE))
            page = int(args.get("page", 1))
        except ValueError:
            return _invalid("page", "It should be a/an Positive Integer")
        if not 1 <= per_page <= MAX_PAGE_SIZE or page < 1:
            return _invalid("per_page", f"It should be between 1 and {MAX_PAGE_SIZE}")
        order_by = args.get("order_by", "created_at")
        order_type = args.get("order_type", "desc")
        if order_by not in ORDERABLE or order_type not in ("asc", "desc"):
            return _invalid("order_by", "It should be one of these values: " + ",".join(ORDERABLE))
        try:
            since = args.get("updated_since")
            updated_since = _parse_time(since) if since else None
        except ValueError:
            return _invalid("updated_since", "It should be a/an date-time")
        created_after = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=DEFAULT_LIST_DAYS)
        with state.lock:
            chosen = [
                t
                for t in data.tickets.values()
                if ("requester_id" not in args or str(t["requester_id"]) == args["requester_id"])
                and (
                    _parse_time(t["updated_at"]) >= updated_since
                    if updated_since is not None
                    else _parse_time(t["created_at"]) >= created_after
                )
            ]
            chosen.sort(key=lambda t: (t[order_by], t["id"]), reverse=order_type == "desc")
            start = (page - 1) * per_page
            response = json_response(
                [
                    {k: v for k, v in t.items() if k not in ("description", "description_text")}
                    for t in chosen[start : start + per_page]
                ]
            )
        if start + per_page < len(chosen):
            _link_next_page(response, page)
        return response

    @app.put("/api/v2/tickets/<int:ticket_id>", endpoint="update_ticket")
    def update_ticket(ticket_id: int) -> Response:
        changes = request.get_json(silent=True)
        updatable = {"tags", "priority", "group_id"}
        if not isinstance(changes, dict) or not changes or not set(changes) <= updatable:
            return _invalid("tags", "this fake updates only a ticket's tags, priority and group")
        tags = changes.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            return _invalid("tags", "It should be a/an Array of String")
        if changes.get("priority", 1) not in PRIORITY_NUMBERS.values():
            return _invalid("priority", "It should be one of these values: 1,2,3,4")
        with state.lock:
            found = data.tickets.get(ticket_id)
            if found is None:
                return json_response({}, 404)
            if changes.get("group_id", FIRST_GROUP_ID) not in data.groups:
                return _invalid("group_id", "There is no group matching the given group_id")
            if "tags" in changes:
                found["tags"] = list(dict.fromkeys(tags))
            found["priority"] = changes.get("priority", found["priority"])
            found["group_id"] = changes.get("group_id", found["group_id"])
            found["updated_at"] = api_timestamp(datetime.now(UTC))
            return json_response(found)

    @app.post("/api/v2/tickets/<int:ticket_id>/notes", endpoint="notes")
    def add_note(ticket_id: int) -> Response:
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict) or not str(payload.get("body") or "").strip():
            return _invalid("body", "It should not be blank as this is a mandatory field")
        now = api_timestamp(datetime.now(UTC))
        with state.lock:
            if ticket_id not in data.tickets:
                return json_response({}, 404)
            note = {
                "id": state.new_id(),
                "body": str(payload["body"]),
                "private": bool(payload.get("private", True)),
                "incoming": False,
                "user_id": g.caller_id,
                "ticket_id": ticket_id,
                "created_at": now,
                "updated_at": now,
            }
            data.notes.setdefault(ticket_id, []).append(note)
            return json_response(note, 201)

    @app.get("/api/v2/groups", endpoint="groups")
    def groups() -> Response:
        """The account's agent groups, a page at a time with the `Link` header."""
        try:
            per_page = int(request.args.get("per_page", DEFAULT_PAGE_SIZE))
            page = int(request.args.get("page", 1))
        except ValueError:
            return _invalid("page", "It should be a/an Positive Integer")
        if not 1 <= per_page <= MAX_PAGE_SIZE or page < 1:
            return _invalid("per_page", f"It should be between 1 and {MAX_PAGE_SIZE}")
        with state.lock:
            every = [group for _, group in sorted(data.groups.items())]
        start = (page - 1) * per_page
        response = json_response(every[start : start + per_page])
        if start + per_page < len(every):
            _link_next_page(response, page)
        return response

    @app.get("/api/v2/contacts/<int:contact_id>", endpoint="contact")
    def contact(contact_id: int) -> Response:
        with state.lock:
            found = data.contacts.get(contact_id)
            return json_response(found) if found is not None else json_response({}, 404)

    @app.get("/api/v2/agents/<int:agent_id>", endpoint="agent")
    def agent(agent_id: int) -> Response:
        with state.lock:
            found = data.agents.get(agent_id)
            return json_response(found) if found is not None else json_response({}, 404)

    @app.get("/api/v2/agents/me", endpoint="me")
    def me() -> Response:
        with state.lock:
            return json_response(data.agents[g.caller_id])

    @app.get("/api/v2/roles/<int:role_id>", endpoint="role")
    def role(role_id: int) -> Response:
        name = ROLE_NAMES.get(role_id)
        if name is None:
            return json_response({}, 404)
        return json_response({"id": role_id, "name": name, "default": True})

    return app


class FakeFreshdeskServer(FakeApiServer[FakeFreshdeskState]):
    """Serve a fake Freshdesk account on 127.0.0.1 from a daemon thread (see `FakeApiServer`)."""

    def __init__(
        self,
        data: FakeFreshdeskData,
        *,
        port: int = 0,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        latency_seconds: float = 0.0,
    ) -> None:
        state = FakeFreshdeskState(data, rate_limit=rate_limit, latency_seconds=latency_seconds)
        super().__init__(state, create_app, name="Freshdesk", port=port)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve today's sample data until SIGINT or SIGTERM; print the URL once listening."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.fake_freshdesk",
        description="A fake Freshdesk API on 127.0.0.1 serving the demo's sample data; "
        f"its API key is {DEFAULT_API_KEY!r}.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to each call")
    parser.add_argument(
        "--rate-limit", type=int, default=DEFAULT_RATE_LIMIT, help="API calls allowed per minute"
    )
    parser.add_argument("--mode", choices=MODES, default="normal", help="how the fake behaves")
    args = parser.parse_args(argv)
    data = from_sample_data(datetime.now(UTC).date())
    server = FakeFreshdeskServer(
        data, port=args.port, rate_limit=args.rate_limit, latency_seconds=args.latency_ms / 1000
    )
    return serve_until_signalled(server, mode=args.mode)


if __name__ == "__main__":
    sys.exit(main())
