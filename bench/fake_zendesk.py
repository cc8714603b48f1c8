"""A fake Zendesk Support API for end-to-end tests and benchmarks.

It serves the demo's sample customers, agents and tickets with the ids the demo uses, in the
JSON shapes of Zendesk's REST API v2: tickets with sideloaded users and organizations, users,
a requester's tickets in offset pages, organizations, user fields, agent groups, the app's
public key and installations, and the writes the service makes (internal notes, tags, and a
rule's ticket handling: priority and group), which it records. Calls need Zendesk's
credentials (an API token as basic auth, or an OAuth bearer token) and count against a
per-minute rate limit reported in Zendesk's headers.

Run-time controls make Zendesk slow (`latency_seconds`), down (503), rate limited (429) or
hanging, and per-route counters tell how many calls a scenario cost. In-process tests use
`FakeZendeskServer` and its `app_state`; a benchmark can run the fake as its own process
(`python -m bench.fake_zendesk --port N`) and drive it through `/_fake/stats`,
`/_fake/reset` and `/_fake/config`. The server only ever listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import itertools
import math
import random
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Literal, NamedTuple, Self
from urllib.parse import urlencode

from cryptography.hazmat.primitives import serialization
from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from plugin.demo.sample_data import SampleAgent, SampleCustomer, SampleTicket, build_sample_data
from plugin.domain.rules import TICKET_PRIORITIES
from plugin.helpdesks.demo import GROUPS

JSONObject = dict[str, Any]
Mode = Literal["normal", "down", "rate_limited", "hang"]

MODES: tuple[Mode, ...] = ("normal", "down", "rate_limited", "hang")
# The counters' keys: one name per API route.
ROUTES = (
    "ticket",
    "user",
    "me",
    "requested",
    "organization",
    "user_fields",
    "public_key",
    "installations",
    "update_ticket",
    "tags",
    "comments",
    "groups",
    "custom_role",
)

LOOPBACK = "127.0.0.1"
DEFAULT_APP_ID = 1_000_123
DEFAULT_INSTALLATION_ID = 360_000_456
# The fake's API token and OAuth token both act for the demo's support lead, an admin.
ADMIN_EMAIL = "diane.foster@example.com"
DEFAULT_API_TOKEN = "fake-zendesk-api-token"  # noqa: S105 - a made-up credential for tests
DEFAULT_OAUTH_TOKEN = "fake-zendesk-oauth-token"  # noqa: S105 - a made-up credential for tests
# Calls per minute, as on Zendesk's Enterprise plan.
DEFAULT_RATE_LIMIT = 700
DEFAULT_HANG_SECONDS = 30.0
# What mode "rate_limited" answers in Retry-After.
RATE_LIMITED_RETRY_AFTER_SECONDS = 30
WINDOW_SECONDS = 60.0
# Offset pagination: Zendesk's default and largest page size.
PAGE_SIZE = 100
SORTABLE_TICKET_FIELDS = ("created_at", "updated_at", "id", "status", "subject")

INSTALLATION_SETTINGS = {"name": "Regulars", "title": "Regulars"}
# Custom user fields and tags for a few sample customers, keyed by email.
_USER_EXTRAS: dict[str, tuple[JSONObject, tuple[str, ...]]] = {
    "margaret.okafor@example.com": ({"lifetime_value": 12345.0, "plan": "gold"}, ("vip",)),
    "dan.whitfield@example.net": (
        {"lifetime_value": 8760.5, "plan": "silver"},
        ("vip", "newsletter"),
    ),
    "t.kowalczyk@example.com": ({"lifetime_value": 4321.0, "plan": "business"}, ("b2b",)),
}


class _OrganizationSpec(NamedTuple):
    id: int
    name: str
    fields: JSONObject
    members: tuple[str, ...]  # emails


_ORGANIZATIONS = (
    _OrganizationSpec(
        70001,
        "Bean There Café",
        {"account_tier": "wholesale", "net_terms_days": 30},
        ("beanthere-cafe@example.com",),
    ),
    _OrganizationSpec(
        70002,
        "Brightside Dental Studio",
        {"account_tier": "business", "net_terms_days": 15},
        ("brightside-dental@example.com",),
    ),
    _OrganizationSpec(
        70003,
        "Kowalczyk Consulting",
        {"account_tier": "business", "net_terms_days": None},
        ("t.kowalczyk@example.com",),
    ),
)
# How long before `today` the agents' accounts and the organizations were created.
_ACCOUNT_AGE = timedelta(days=4 * 365)
# The agent groups, as the demo helpdesk names them, from this id up.
FIRST_GROUP_ID = 20001


# Lena Ortiz, an agent with the Enterprise custom role "Team lead".
TEAM_LEAD_USER_ID = 80002
TEAM_LEAD_ROLE_ID = 360001

# --- Data --------------------------------------------------------------------------------


@dataclass
class FakeZendeskData:
    """Everything the fake serves, as Zendesk-shaped JSON objects keyed by id.

    `users`, `organizations` and `tickets` hold the objects as Zendesk returns them, less
    their `url`, which is added per request from the host the client called. `api_tokens`
    maps an agent's email (lower case) to its API token; `oauth_tokens` maps an OAuth access
    token to the id of the user it acts for. Writes are recorded: internal notes (any comment,
    with its `public` flag) in `notes` by ticket id, added tags in the ticket's `tags`, a
    priority or group in the ticket's `priority` and `group_id`. `groups` are the agent groups,
    `custom_roles` the Enterprise agent roles (Lena Ortiz, 80002, is a "Team lead").
    """

    users: dict[int, JSONObject]
    organizations: dict[int, JSONObject]
    tickets: dict[int, JSONObject]
    app_id: int
    installation_id: int
    public_key_pem: str
    api_tokens: dict[str, str] = field(default_factory=dict)
    oauth_tokens: dict[str, int] = field(default_factory=dict)
    notes: dict[int, list[JSONObject]] = field(default_factory=dict)
    groups: dict[int, JSONObject] = field(default_factory=dict)
    custom_roles: dict[int, JSONObject] = field(default_factory=dict)

    def user_by_email(self, email: str) -> JSONObject | None:
        """Return the user with this email (ignoring case), or None."""
        wanted = email.lower()
        return next(
            (user for user in self.users.values() if str(user["email"]).lower() == wanted), None
        )


def from_sample_data(
    today: date,
    *,
    public_key_pem: str,
    app_id: int = DEFAULT_APP_ID,
    installation_id: int = DEFAULT_INSTALLATION_ID,
    admin_email: str = ADMIN_EMAIL,
    api_token: str = DEFAULT_API_TOKEN,
    oauth_token: str = DEFAULT_OAUTH_TOKEN,
) -> FakeZendeskData:
    """Fill a fake account with the demo's sample data for `today`, under the demo's ids.

    Customers are end users 90001 and up, agents 80001-80004 (80004 is the admin), tickets
    1001 and up, so a service seeded with the demo's customers recognizes the requesters.
    Margaret Okafor and Daniel Whitfield carry user fields and the tag "vip", Tomasz
    Kowalczyk user fields and an organization; the two small businesses are organizations.
    The API token and the OAuth token both act for the user with `admin_email`.
    """
    sample = build_sample_data(today)
    organization_of = {email: spec.id for spec in _ORGANIZATIONS for email in spec.members}
    field_keys = list(dict.fromkeys(key for fields, _ in _USER_EXTRAS.values() for key in fields))
    users: dict[int, JSONObject] = {}
    for customer in sample.customers:
        user = _customer_user(customer, field_keys, organization_of.get(customer.email))
        users[user["id"]] = user
    for agent in sample.agents:
        user = _agent_user(agent, field_keys, today)
        users[user["id"]] = user
    organizations = {spec.id: _organization(spec, today) for spec in _ORGANIZATIONS}
    tickets = {int(ticket.external_id): _ticket(ticket, users) for ticket in sample.tickets}
    stamp = _timestamp(datetime.combine(today - _ACCOUNT_AGE, time_of_day(9)))
    groups = {
        group_id: {
            "id": group_id,
            "name": name,
            "description": "",
            "default": group_id == FIRST_GROUP_ID,
            "deleted": False,
            "created_at": stamp,
            "updated_at": stamp,
        }
        for group_id, name in enumerate(GROUPS, start=FIRST_GROUP_ID)
    }
    data = FakeZendeskData(
        users=users,
        organizations=organizations,
        tickets=tickets,
        app_id=app_id,
        installation_id=installation_id,
        public_key_pem=public_key_pem,
        groups=groups,
        custom_roles={
            TEAM_LEAD_ROLE_ID: {
                "id": TEAM_LEAD_ROLE_ID,
                "name": "Team lead",
                "description": "Agents who lead a team",
                "role_type": 0,
                "created_at": stamp,
                "updated_at": stamp,
            }
        },
    )
    users[TEAM_LEAD_USER_ID]["custom_role_id"] = TEAM_LEAD_ROLE_ID
    owner = data.user_by_email(admin_email)
    if owner is None:
        raise ValueError(f"no sample user has the email {admin_email!r}")
    data.api_tokens[admin_email.lower()] = api_token
    data.oauth_tokens[oauth_token] = owner["id"]
    return data


def _timestamp(moment: datetime) -> str:
    """Format a naive-UTC or aware datetime as Zendesk does: 2026-01-02T03:04:05Z."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(
    *,
    user_id: str,
    name: str,
    email: str,
    phone: str | None,
    role: str,
    created: datetime,
    user_fields: JSONObject,
    tags: Iterable[str],
    organization_id: int | None,
) -> JSONObject:
    stamp = _timestamp(created)
    return {
        "id": int(user_id),
        "name": name,
        "email": email,
        "phone": phone,
        "role": role,
        "active": True,
        "verified": True,
        "suspended": False,
        "locale": "en-US",
        "time_zone": "UTC",
        "external_id": None,
        "organization_id": organization_id,
        "tags": list(tags),
        "user_fields": user_fields,
        "created_at": stamp,
        "updated_at": stamp,
    }


def _customer_user(
    customer: SampleCustomer, field_keys: list[str], organization_id: int | None
) -> JSONObject:
    fields, tags = _USER_EXTRAS.get(customer.email, ({}, ()))
    return _user(
        user_id=customer.helpdesk_user_id,
        name=customer.name,
        email=customer.email,
        phone=customer.phone,
        role="end-user",
        created=datetime.combine(customer.customer_since, time_of_day(9)),
        # Zendesk lists every field the account defines, null where a user has no value.
        user_fields={key: fields.get(key) for key in field_keys},
        tags=tags,
        organization_id=organization_id,
    )


def _agent_user(agent: SampleAgent, field_keys: list[str], today: date) -> JSONObject:
    return _user(
        user_id=agent.helpdesk_user_id,
        name=agent.name,
        email=agent.email,
        phone=None,
        role=agent.role,
        created=datetime.combine(today - _ACCOUNT_AGE, time_of_day(9)),
        user_fields=dict.fromkeys(field_keys),
        tags=(),
        organization_id=None,
    )


def _organization(spec: _OrganizationSpec, today: date) -> JSONObject:
    stamp = _timestamp(datetime.combine(today - _ACCOUNT_AGE, time_of_day(9)))
    return {
        "id": spec.id,
        "name": spec.name,
        "domain_names": [],
        "details": "",
        "notes": "",
        "group_id": None,
        "shared_tickets": False,
        "shared_comments": False,
        "external_id": None,
        "tags": [],
        "organization_fields": dict(spec.fields),
        "created_at": stamp,
        "updated_at": stamp,
    }


def _ticket(ticket: SampleTicket, users: dict[int, JSONObject]) -> JSONObject:
    requester_id = int(ticket.requester_user_id)
    return {
        "id": int(ticket.external_id),
        "external_id": None,
        "type": ticket.ticket_type,
        "subject": ticket.subject,
        "raw_subject": ticket.subject,
        "description": ticket.description,
        "priority": ticket.priority,
        "status": ticket.status,
        "requester_id": requester_id,
        "submitter_id": requester_id,
        "assignee_id": None if ticket.assignee_user_id is None else int(ticket.assignee_user_id),
        "organization_id": users[requester_id]["organization_id"],
        "group_id": None,
        "tags": list(ticket.tags),
        "via": {"channel": ticket.channel, "source": {"from": {}, "to": {}, "rel": None}},
        "custom_fields": [],
        "created_at": _timestamp(ticket.created_at),
        "updated_at": _timestamp(ticket.updated_at),
    }


# --- Run-time state and controls ---------------------------------------------------------


@dataclass(frozen=True)
class RateLimitStatus:
    """The outcome of spending one call from the per-minute window."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_seconds: int


@dataclass(frozen=True)
class FaultPlan:
    """Random faults on some routes, for the outbox's fault test (`bench/delivery_fault.py`).

    Each call to a route in `routes` draws once: `server_error_rate` of them answer a 5xx
    (500, 502, 503 or 504) without doing anything, `rate_limit_rate` a 429 with
    `Retry-After: retry_after_seconds`, and `hang_rate` hang for `hang_seconds` (past the
    client's timeout). Of the hanging ticket updates, `hang_after_write_share` hang after the
    note WAS written, so the client never learns that it was; the others hang and then write
    nothing.
    """

    server_error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    hang_rate: float = 0.0
    hang_after_write_share: float = 0.5
    hang_seconds: float = 2.0
    retry_after_seconds: int = 1
    routes: frozenset[str] = frozenset({"update_ticket", "comments"})
    seed: int | None = None

    def __post_init__(self) -> None:
        rates = (self.server_error_rate, self.rate_limit_rate, self.hang_rate)
        if any(not 0 <= rate <= 1 for rate in rates) or sum(rates) > 1:
            raise ValueError("fault rates must be between 0 and 1 and add up to at most 1")


class FakeZendeskState:
    """The data, the controls and the counters, shared by every request thread.

    `lock` guards `data`: hold it when reading data a request may be writing. The controls
    (`latency_seconds`, `mode`, `hang_seconds`, `rate_limit`) can be set at any time from any
    thread, one at a time by assignment or together with `configure`.
    """

    def __init__(
        self,
        data: FakeZendeskData,
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
        self._ids = itertools.count(1)
        # Set when the server stops, to cut short the requests sleeping in latency or hang.
        self._stopping = threading.Event()
        self._latency_seconds = 0.0
        self._mode: Mode = "normal"
        self._hang_seconds = DEFAULT_HANG_SECONDS
        self._rate_limit = DEFAULT_RATE_LIMIT
        self.configure(latency_seconds=latency_seconds, rate_limit=rate_limit)
        # No faults unless a test sets a plan (`set_faults`); `faults` counts those injected.
        self._fault_plan = FaultPlan()
        self._fault_random = random.Random()
        self.faults: Counter[str] = Counter()

    def set_faults(self, plan: FaultPlan) -> None:
        """Inject random faults from now on, as `plan` says (FaultPlan() for none)."""
        with self.lock:
            self._fault_plan = plan
            self._fault_random = random.Random(plan.seed)
            self.faults.clear()

    def fault_choice(self, options: Sequence[int]) -> int:
        """One of `options`, from the fault plan's random sequence."""
        with self.lock:
            return self._fault_random.choice(options)

    def draw_fault(self, route: str) -> tuple[str | None, FaultPlan]:
        """Pick this call's fault, if any: "server_error", "rate_limited", "hang_before",
        "hang_after" (after writing) or None.
        """
        with self.lock:
            plan = self._fault_plan
            if route not in plan.routes:
                return None, plan
            draw = self._fault_random.random()
            fault: str | None = None
            if draw < plan.server_error_rate:
                fault = "server_error"
            elif draw < plan.server_error_rate + plan.rate_limit_rate:
                fault = "rate_limited"
            elif draw < plan.server_error_rate + plan.rate_limit_rate + plan.hang_rate:
                after = route == "update_ticket" and (
                    self._fault_random.random() < plan.hang_after_write_share
                )
                fault = "hang_after" if after else "hang_before"
            if fault is not None:
                self.faults[fault] += 1
            return fault, plan

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

    def rotate_key(self, public_key_pem: str) -> None:
        """Serve another public key from now on, as when Zendesk rotates the app's key."""
        with self.lock:
            self.data.public_key_pem = public_key_pem

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
        """A snapshot of the calls received so far, by route name (see `ROUTES`)."""
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

    def authenticate(self, authorization: str | None) -> int | None:
        """Return the id of the user the Authorization header acts for, None if refused."""
        scheme, _, credentials = (authorization or "").partition(" ")
        credentials = credentials.strip()
        with self.lock:
            if scheme.lower() == "bearer":
                return self.data.oauth_tokens.get(credentials)
            if scheme.lower() == "basic":
                return self._api_token_user(credentials)
        return None

    def _api_token_user(self, credentials: str) -> int | None:
        """Check Zendesk's API-token basic auth: user "{email}/token", password the token."""
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, _, token = decoded.partition(":")
        email, slash, suffix = username.rpartition("/")
        if not slash or suffix != "token" or self.data.api_tokens.get(email.lower()) != token:
            return None
        user = self.data.user_by_email(email)
        return None if user is None else int(user["id"])


# --- The WSGI app ------------------------------------------------------------------------


def _json(body: object, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _error(status: int, error: str, description: str) -> Response:
    return _json({"error": error, "description": description}, status)


def _not_found() -> Response:
    return _error(404, "RecordNotFound", "Not found")


def _invalid(description: str) -> Response:
    return _error(422, "RecordInvalid", description)


def _base_url() -> str:
    return request.host_url.rstrip("/")


def _with_url(record: JSONObject, collection: str) -> JSONObject:
    return {"url": f"{_base_url()}/api/v2/{collection}/{record['id']}.json", **record}


def _field_type(values: list[object]) -> str:
    """Zendesk's type for a custom field, guessed from the values users have."""
    value = next((v for v in values if v is not None), None)
    if isinstance(value, bool):
        return "checkbox"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "decimal"
    return "text"


def _page_url(page: int, per_page: int) -> str:
    query = request.args.to_dict() | {"page": str(page), "per_page": str(per_page)}
    return f"{_base_url()}{request.path}?{urlencode(query)}"


def create_app(state: FakeZendeskState) -> Flask:
    """Build the WSGI app answering Zendesk's routes from `state`.

    Every API route counts its calls, waits `latency_seconds` and obeys `mode`; all but the
    anonymous public key then need credentials and spend a call from the rate limit.
    """
    app = Flask(__name__)
    data = state.data

    @app.before_request
    def _act_like_zendesk() -> Response | None:
        route = request.endpoint
        if route not in ROUTES:
            return None
        state.count(route)
        state.pause(state.latency_seconds)
        mode = state.mode
        if mode == "down":
            return _error(503, "ServiceUnavailable", "Zendesk is down (fake mode: down)")
        if mode == "rate_limited":
            response = _error(429, "APIRateLimitExceeded", "Too many requests (fake mode)")
            response.headers["Retry-After"] = str(RATE_LIMITED_RETRY_AFTER_SECONDS)
            return response
        if mode == "hang":
            state.pause(state.hang_seconds)
        if route == "public_key":
            return None
        user_id = state.authenticate(request.headers.get("Authorization"))
        if user_id is None:
            return _json({"error": "Couldn't authenticate you"}, 401)
        g.user_id = user_id
        g.rate_limit = status = state.spend_call()
        if not status.allowed:
            response = _error(
                429, "APIRateLimitExceeded", "Number of allowed API requests exceeded"
            )
            response.headers["Retry-After"] = str(status.retry_after_seconds)
            return response
        return _inject_fault(route)

    def _inject_fault(route: str) -> Response | None:
        fault, plan = state.draw_fault(route)
        if fault == "server_error":
            # Turned away (503), or failed somewhere inside without writing (500, 502, 504).
            status = state.fault_choice((500, 502, 503, 504))
            return _error(status, "ServerError", f"Injected fault: {status}")
        if fault == "rate_limited":
            response = _error(429, "APIRateLimitExceeded", "Injected fault: 429")
            response.headers["Retry-After"] = str(plan.retry_after_seconds)
            return response
        if fault == "hang_before":
            state.pause(plan.hang_seconds)
            return _error(503, "ServiceUnavailable", "Injected fault: hung, wrote nothing")
        if fault == "hang_after":
            g.hang_after_seconds = plan.hang_seconds
        return None

    @app.after_request
    def _rate_limit_headers(response: Response) -> Response:
        # An injected hang after the write: the note is stored, the answer comes too late.
        state.pause(g.get("hang_after_seconds", 0.0))
        status: RateLimitStatus | None = g.get("rate_limit")
        if status is not None:
            response.headers["X-Rate-Limit"] = str(status.limit)
            response.headers["X-Rate-Limit-Remaining"] = str(status.remaining)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        if error.code == 404:
            return _error(404, "InvalidEndpoint", "Not found")
        return _error(error.code or 500, error.name, error.description or "")

    @app.get("/api/v2/tickets/<int:ticket_id>.json", endpoint="ticket")
    def ticket(ticket_id: int) -> Response:
        include = set(request.args.get("include", "").split(","))
        with state.lock:
            found = data.tickets.get(ticket_id)
            if found is None:
                return _not_found()
            body: JSONObject = {"ticket": _with_url(found, "tickets")}
            if "users" in include:
                ids = (found["requester_id"], found["submitter_id"], found["assignee_id"])
                body["users"] = [
                    _with_url(data.users[user_id], "users")
                    for user_id in dict.fromkeys(ids)
                    if user_id in data.users
                ]
            if "organizations" in include:
                organization = data.organizations.get(found["organization_id"])
                body["organizations"] = (
                    [] if organization is None else [_with_url(organization, "organizations")]
                )
            return _json(body)

    @app.put("/api/v2/tickets/<int:ticket_id>.json", endpoint="update_ticket")
    def update_ticket(ticket_id: int) -> Response:
        payload = request.get_json(silent=True)
        changes = payload.get("ticket") if isinstance(payload, dict) else None
        if not isinstance(changes, dict):
            return _invalid('expected {"ticket": {"comment": {...}}}')
        allowed = {"comment", "additional_tags", "priority", "group_id"}
        if "comment" not in changes or not set(changes) <= allowed:
            return _invalid("this fake applies only a comment, additional_tags, priority, group_id")
        comment = changes["comment"]
        if not isinstance(comment, dict) or not str(comment.get("body") or "").strip():
            return _invalid("the comment needs a body")
        added = changes.get("additional_tags", [])
        if not isinstance(added, list) or not all(isinstance(t, str) and t for t in added):
            return _invalid("additional_tags is a list of tags")
        if changes.get("priority", "low") not in TICKET_PRIORITIES:
            return _invalid("priority is one of " + ", ".join(TICKET_PRIORITIES))
        group_id = changes.get("group_id")
        if group_id is not None and (isinstance(group_id, bool) or not isinstance(group_id, int)):
            return _invalid("group_id is a group's id")
        note = {"body": str(comment["body"]), "public": bool(comment.get("public", True))}
        with state.lock:
            found = data.tickets.get(ticket_id)
            if found is None:
                return _not_found()
            if group_id is not None and group_id not in data.groups:
                return _invalid(f"there is no group {group_id}")
            data.notes.setdefault(ticket_id, []).append(note)
            found["tags"].extend(t for t in dict.fromkeys(added) if t not in found["tags"])
            found["priority"] = changes.get("priority", found["priority"])
            found["group_id"] = changes.get("group_id", found["group_id"])
            now = _timestamp(datetime.now(UTC))
            found["updated_at"] = now
            event = {"id": state.new_id(), "type": "Comment", "author_id": g.user_id, **note}
            audit = {
                "id": state.new_id(),
                "ticket_id": ticket_id,
                "created_at": now,
                "author_id": g.user_id,
                "events": [event],
            }
            return _json({"ticket": _with_url(found, "tickets"), "audit": audit})

    @app.put("/api/v2/tickets/<int:ticket_id>/tags.json", endpoint="tags")
    def add_tags(ticket_id: int) -> Response:
        payload = request.get_json(silent=True)
        tags = payload.get("tags") if isinstance(payload, dict) else None
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            return _invalid('expected {"tags": ["tag", ...]}')
        with state.lock:
            found = data.tickets.get(ticket_id)
            if found is None:
                return _not_found()
            found["tags"].extend(tag for tag in dict.fromkeys(tags) if tag not in found["tags"])
            found["updated_at"] = _timestamp(datetime.now(UTC))
            return _json({"tags": list(found["tags"])})

    @app.get("/api/v2/tickets/<int:ticket_id>/comments.json", endpoint="comments")
    def comments(ticket_id: int) -> Response:
        """The ticket's comments: the recorded notes, in offset pages, oldest first or not."""
        try:
            per_page = min(int(request.args.get("per_page", PAGE_SIZE)), PAGE_SIZE)
            page = int(request.args.get("page", 1))
        except ValueError:
            return _error(400, "InvalidPaginationParameter", "page and per_page are numbers")
        with state.lock:
            if ticket_id not in data.tickets:
                return _not_found()
            notes = [
                {"id": number, "type": "Comment", "plain_body": note["body"], **note}
                for number, note in enumerate(data.notes.get(ticket_id, []), start=1)
            ]
        if request.args.get("sort_order") == "desc":
            notes.reverse()
        start = (page - 1) * per_page
        more = start + per_page < len(notes)
        return _json(
            {
                "comments": notes[start : start + per_page],
                "next_page": _page_url(page + 1, per_page) if more else None,
                "count": len(notes),
            }
        )

    @app.get("/api/v2/custom_roles/<int:role_id>.json", endpoint="custom_role")
    def custom_role(role_id: int) -> Response:
        with state.lock:
            found = data.custom_roles.get(role_id)
            return _not_found() if found is None else _json({"custom_role": dict(found)})

    @app.get("/api/v2/groups.json", endpoint="groups")
    def groups() -> Response:
        """The account's agent groups, in offset pages."""
        try:
            per_page = min(int(request.args.get("per_page", PAGE_SIZE)), PAGE_SIZE)
            page = int(request.args.get("page", 1))
        except ValueError:
            return _error(400, "InvalidPaginationParameter", "page and per_page are numbers")
        if per_page < 1 or page < 1:
            return _error(400, "InvalidPaginationParameter", "page and per_page start at 1")
        with state.lock:
            every = [_with_url(group, "groups") for _, group in sorted(data.groups.items())]
        start = (page - 1) * per_page
        more = start + per_page < len(every)
        return _json(
            {
                "groups": every[start : start + per_page],
                "next_page": _page_url(page + 1, per_page) if more else None,
                "previous_page": _page_url(page - 1, per_page) if page > 1 else None,
                "count": len(every),
            }
        )

    @app.get("/api/v2/users/<int:user_id>.json", endpoint="user")
    def user(user_id: int) -> Response:
        with state.lock:
            found = data.users.get(user_id)
            return _not_found() if found is None else _json({"user": _with_url(found, "users")})

    @app.get("/api/v2/users/me.json", endpoint="me")
    def me() -> Response:
        with state.lock:
            return _json({"user": _with_url(data.users[g.user_id], "users")})

    @app.get("/api/v2/users/<int:user_id>/tickets/requested.json", endpoint="requested")
    def requested_tickets(user_id: int) -> Response:
        try:
            per_page = min(int(request.args.get("per_page", PAGE_SIZE)), PAGE_SIZE)
            page = int(request.args.get("page", 1))
        except ValueError:
            return _error(400, "InvalidPaginationParameter", "page and per_page are numbers")
        sort_by = request.args.get("sort_by", "created_at")
        sort_order = request.args.get("sort_order", "asc")
        if per_page < 1 or page < 1:
            return _error(400, "InvalidPaginationParameter", "page and per_page start at 1")
        if sort_by not in SORTABLE_TICKET_FIELDS or sort_order not in ("asc", "desc"):
            return _error(400, "InvalidPaginationParameter", "unsupported sort_by or sort_order")
        with state.lock:
            if user_id not in data.users:
                return _not_found()
            tickets = sorted(
                (t for t in data.tickets.values() if t["requester_id"] == user_id),
                key=lambda t: (t[sort_by], t["id"]),
                reverse=sort_order == "desc",
            )
            start = (page - 1) * per_page
            shown = tickets[start : start + per_page]
            body: JSONObject = {
                "tickets": [_with_url(t, "tickets") for t in shown],
                "next_page": (
                    _page_url(page + 1, per_page) if start + per_page < len(tickets) else None
                ),
                "previous_page": _page_url(page - 1, per_page) if page > 1 else None,
                "count": len(tickets),
            }
            # Sideloads as Zendesk gives them on ticket lists: the tickets' users and orgs.
            include = set(request.args.get("include", "").split(","))
            if "users" in include:
                ids = (t[role] for t in shown for role in ("requester_id", "assignee_id"))
                body["users"] = [
                    _with_url(data.users[i], "users") for i in dict.fromkeys(ids) if i in data.users
                ]
            if "organizations" in include:
                orgs = dict.fromkeys(t["organization_id"] for t in shown)
                body["organizations"] = [
                    _with_url(data.organizations[i], "organizations")
                    for i in orgs
                    if i in data.organizations
                ]
            return _json(body)

    @app.get("/api/v2/organizations/<int:organization_id>.json", endpoint="organization")
    def organization(organization_id: int) -> Response:
        with state.lock:
            found = data.organizations.get(organization_id)
            if found is None:
                return _not_found()
            return _json({"organization": _with_url(found, "organizations")})

    @app.get("/api/v2/user_fields.json", endpoint="user_fields")
    def user_fields() -> Response:
        with state.lock:
            values: dict[str, list[object]] = {}
            for found in data.users.values():
                for key, value in found["user_fields"].items():
                    values.setdefault(key, []).append(value)
        fields = [
            {
                "id": 360_001 + position,
                "url": f"{_base_url()}/api/v2/user_fields/{360_001 + position}.json",
                "key": key,
                "type": _field_type(seen),
                "title": key.replace("_", " ").capitalize(),
                "active": True,
                "position": position,
            }
            for position, (key, seen) in enumerate(values.items())
        ]
        return _json(
            {"user_fields": fields, "next_page": None, "previous_page": None, "count": len(fields)}
        )

    @app.get("/api/v2/apps/<int:app_id>/public_key.pem", endpoint="public_key")
    def public_key(app_id: int) -> Response:
        with state.lock:
            if app_id != data.app_id:
                return _not_found()
            pem = data.public_key_pem
        return Response(pem, mimetype="text/plain")

    @app.get("/api/v2/apps/installations.json", endpoint="installations")
    def installations() -> Response:
        installation = {
            "id": data.installation_id,
            "app_id": data.app_id,
            "product": "support",
            "enabled": True,
            "settings": dict(INSTALLATION_SETTINGS),
        }
        return _json({"installations": [installation]})

    @app.get("/_fake/stats", endpoint="fake_stats")
    def fake_stats() -> Response:
        return _json({"calls": dict(state.calls), "total_calls": state.total_calls()})

    @app.post("/_fake/reset", endpoint="fake_reset")
    def fake_reset() -> Response:
        state.reset_counts()
        return _json({"calls": {}, "total_calls": 0})

    @app.post("/_fake/config", endpoint="fake_config")
    def fake_config() -> Response:
        try:
            _configure_from_json(state, request.get_json(silent=True))
        except (TypeError, ValueError) as problem:
            return _error(400, "InvalidConfig", str(problem))
        return _json(state.config())

    return app


_CONFIG_KEYS = ("latency_ms", "mode", "hang_seconds", "rate_limit", "public_key_pem")


def _configure_from_json(state: FakeZendeskState, payload: object) -> None:
    """Apply a `/_fake/config` body such as {"latency_ms": 100, "mode": "down"}.

    Also takes "hang_seconds", "rate_limit" and "public_key_pem" (rotates the key). Raises
    TypeError or ValueError, having changed nothing, if any setting is unknown or invalid.
    """
    if not isinstance(payload, dict):
        raise TypeError("send a JSON object")
    unknown = sorted(set(payload) - set(_CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(unknown)}")

    def typed(key: str, *kinds: type) -> Any:
        value = payload.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
            raise TypeError(f"{key} cannot be {type(value).__name__}")
        return value

    latency_ms: float | None = typed("latency_ms", int, float)
    hang_seconds: float | None = typed("hang_seconds", int, float)
    public_key_pem: str | None = typed("public_key_pem", str)
    state.configure(
        latency_seconds=None if latency_ms is None else latency_ms / 1000,
        mode=typed("mode", str),
        hang_seconds=hang_seconds,
        rate_limit=typed("rate_limit", int),
    )
    if public_key_pem is not None:
        state.rotate_key(public_key_pem)


# --- Server ------------------------------------------------------------------------------


class _QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without its access log line per request: benchmarks make many."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class FakeZendeskServer:
    """Serve a fake Zendesk account on 127.0.0.1 from a daemon thread.

    Use it once, as a context manager: `with FakeZendeskServer(data) as server:` then call
    `server.url` and steer it through `server.app_state`. Leaving the block wakes requests
    sleeping in latency or hang, stops the server and closes its socket.
    """

    def __init__(
        self,
        data: FakeZendeskData,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        latency_seconds: float = 0.0,
    ) -> None:
        if host != LOOPBACK:
            raise ValueError(f"the fake only listens on {LOOPBACK}, not {host!r}")
        self.app_state = FakeZendeskState(
            data, rate_limit=rate_limit, latency_seconds=latency_seconds
        )
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._used = False

    @property
    def url(self) -> str:
        """The base URL, such as http://127.0.0.1:54321, while the server runs."""
        if self._server is None:
            raise RuntimeError("the fake Zendesk server is not running")
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> None:
        """Listen and serve in a daemon thread; a server starts only once."""
        if self._used:
            raise RuntimeError("a FakeZendeskServer can be started only once")
        self._used = True
        self._server = make_server(
            self._host,
            self._port,
            create_app(self.app_state),
            threaded=True,
            request_handler=_QuietRequestHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-zendesk",
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


# --- Command line ------------------------------------------------------------------------


def _public_key_pem(path: Path) -> str:
    """Read a PEM public key, or the public half of a PEM private key (the demo's key file)."""
    pem = path.read_bytes()
    if b"PRIVATE KEY" not in pem:
        return pem.decode("ascii")
    key = serialization.load_pem_private_key(pem, password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Serve today's sample data until SIGINT or SIGTERM; print the URL once listening."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.fake_zendesk",
        description="A fake Zendesk Support API on 127.0.0.1 serving the demo's sample data.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay added to every API call"
    )
    parser.add_argument(
        "--rate-limit", type=int, default=DEFAULT_RATE_LIMIT, help="API calls allowed per minute"
    )
    parser.add_argument(
        "--public-key-file",
        type=Path,
        required=True,
        help="PEM file with the app's public key, or a private key to serve the public half of",
    )
    args = parser.parse_args(argv)
    data = from_sample_data(
        datetime.now(UTC).date(), public_key_pem=_public_key_pem(args.public_key_file)
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    with FakeZendeskServer(
        data, port=args.port, rate_limit=args.rate_limit, latency_seconds=args.latency_ms / 1000
    ) as server:
        print(server.url, flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
