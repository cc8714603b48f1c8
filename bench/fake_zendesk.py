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

This module holds the account (its data, credentials and injected faults); the routes are in
bench/fake_zendesk_app.py, and what the fakes share (controls, fault modes, server) in
bench/fake_base.py.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import NamedTuple

from cryptography.hazmat.primitives import serialization

from bench.fake_base import (
    DEFAULT_RATE_LIMIT,
    LOOPBACK,
    FakeApiServer,
    FakeApiState,
    JSONObject,
    api_timestamp,
    serve_until_signalled,
)
from bench.fake_zendesk_app import create_app
from plugin.demo.sample_data import SampleAgent, SampleCustomer, SampleTicket, build_sample_data
from plugin.helpdesks.demo import GROUPS

DEFAULT_APP_ID = 1_000_123
DEFAULT_INSTALLATION_ID = 360_000_456
# The fake's API token and OAuth token both act for the demo's support lead, an admin.
ADMIN_EMAIL = "diane.foster@example.com"
DEFAULT_API_TOKEN = "fake-zendesk-api-token"  # noqa: S105 - a made-up credential for tests
DEFAULT_OAUTH_TOKEN = "fake-zendesk-oauth-token"  # noqa: S105 - a made-up credential for tests
DEFAULT_OAUTH_CLIENT_ID = "regulars"
DEFAULT_OAUTH_CLIENT_SECRET = "fake-oauth-client-secret"  # noqa: S105 - made up, for tests

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
    # OAuth (bench/fake_zendesk_oauth.py): the clients an admin made (id -> secret, "" for a
    # public client), the codes issued and not yet exchanged, and who is signed in to Zendesk
    # in the browser that is sent to authorize (the account's admin unless a test says).
    oauth_clients: dict[str, str] = field(default_factory=dict)
    oauth_codes: dict[str, JSONObject] = field(default_factory=dict)
    signed_in_user: int | None = None

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
    stamp = api_timestamp(datetime.combine(today - _ACCOUNT_AGE, time_of_day(9)))
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
    data.signed_in_user = owner["id"]
    data.oauth_clients[DEFAULT_OAUTH_CLIENT_ID] = DEFAULT_OAUTH_CLIENT_SECRET
    return data


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
    stamp = api_timestamp(created)
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
    stamp = api_timestamp(datetime.combine(today - _ACCOUNT_AGE, time_of_day(9)))
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
        "created_at": api_timestamp(ticket.created_at),
        "updated_at": api_timestamp(ticket.updated_at),
    }


# --- Run-time state and controls ---------------------------------------------------------


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


class FakeZendeskState(FakeApiState[FakeZendeskData]):
    """The account's data, controls and counters (see `FakeApiState`), with Zendesk's
    credentials, the app's public key, and the random faults of a `FaultPlan`.
    """

    def __init__(
        self,
        data: FakeZendeskData,
        *,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        latency_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(data, rate_limit=rate_limit, latency_seconds=latency_seconds, clock=clock)
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

    def rotate_key(self, public_key_pem: str) -> None:
        """Serve another public key from now on, as when Zendesk rotates the app's key."""
        with self.lock:
            self.data.public_key_pem = public_key_pem

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


# --- Server and command line ------------------------------------------------------------


class FakeZendeskServer(FakeApiServer[FakeZendeskState]):
    """Serve a fake Zendesk account on 127.0.0.1 from a daemon thread (see `FakeApiServer`)."""

    def __init__(
        self,
        data: FakeZendeskData,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        latency_seconds: float = 0.0,
    ) -> None:
        state = FakeZendeskState(data, rate_limit=rate_limit, latency_seconds=latency_seconds)
        super().__init__(state, create_app, name="Zendesk", host=host, port=port)


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
    server = FakeZendeskServer(
        data, port=args.port, rate_limit=args.rate_limit, latency_seconds=args.latency_ms / 1000
    )
    return serve_until_signalled(server)


if __name__ == "__main__":
    sys.exit(main())
