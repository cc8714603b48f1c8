"""The Zendesk Support REST API behind the helpdesk interface, plus the calls that log back."""

from __future__ import annotations

import base64
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.exceptions import InvalidSchema, InvalidURL, MissingSchema
from urllib3.exceptions import NameResolutionError, NewConnectionError
from urllib3.util.retry import Retry

from plugin.domain.helpdesk import Person, Ticket
from plugin.helpdesks.interface import (
    GroupDirectory,
    HelpdeskError,
    TicketChange,
    TicketNotFound,
    TicketWithRequester,
    Transport,
    UnknownGroup,
    with_line,
)
from plugin.observability import count_upstream_call

PLATFORM = "zendesk"
USER_AGENT = "Regulars/0.1"

# Zendesk counts calls per account per minute; the Team plan allows 200.
DEFAULT_CALLS_PER_MINUTE = 200
# The agents' own Zendesk tabs and other apps share the account's limit: leave them a fifth.
DEFAULT_USABLE_FRACTION = 0.8
WINDOW_SECONDS = 60.0
# A 429 without a readable Retry-After: wait out a whole rate-limit window.
DEFAULT_RETRY_AFTER_SECONDS = 60.0
# Each page is a budgeted call; a regular's first 300 tickets are history enough for the banner.
MAX_REQUESTED_TICKET_PAGES = 3
PAGE_SIZE = 100
# The outbox looks for its marker in the newest 300 comments: its note was added recently.
MAX_COMMENT_PAGES = 3
# Routing reads the account's groups, 100 a page: a thousand groups is a very large account.
MAX_GROUP_PAGES = 10

_NUMERIC_ID = re.compile(r"[0-9]+")
_SUBDOMAIN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# A public key is a few hundred bytes; anything much larger is not one.
MAX_PUBLIC_KEY_BYTES = 16_384

# How a call failed when Zendesk never answered it.

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZendeskCredentials:
    """An API token (with the agent email it belongs to) or an OAuth access token."""

    email: str | None = None
    api_token: str | None = field(default=None, repr=False)
    oauth_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        uses_api_token = bool(self.email) and bool(self.api_token)
        uses_oauth = bool(self.oauth_token)
        if uses_api_token == uses_oauth:
            raise ValueError("give either an email and an API token, or an OAuth token")

    @classmethod
    def from_api_token(cls, *, email: str, api_token: str) -> ZendeskCredentials:
        return cls(email=email, api_token=api_token)

    @classmethod
    def from_oauth_token(cls, *, oauth_token: str) -> ZendeskCredentials:
        return cls(oauth_token=oauth_token)

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> ZendeskCredentials:
        """Rebuild credentials from `to_dict`'s output; ValueError names bad fields, not values."""
        unknown = set(data) - _CREDENTIAL_FIELDS
        if unknown:
            raise ValueError(f"unknown credential fields: {', '.join(sorted(unknown))}")
        return cls(
            email=data.get("email"),
            api_token=data.get("api_token"),
            oauth_token=data.get("oauth_token"),
        )

    def to_dict(self) -> dict[str, str]:
        """Return the fields that are set, for storing (encrypted) and `from_dict`."""
        values = {"email": self.email, "api_token": self.api_token, "oauth_token": self.oauth_token}
        return {name: value for name, value in values.items() if value}

    def authorization_header(self) -> str:
        """Return the value of the Authorization header these credentials call for."""
        if self.oauth_token:
            return f"Bearer {self.oauth_token}"
        # Zendesk's API-token form of basic auth: user "{email}/token", password the token.
        user_pass = f"{self.email}/token:{self.api_token}".encode()
        return "Basic " + base64.b64encode(user_pass).decode("ascii")


_CREDENTIAL_FIELDS = frozenset({"email", "api_token", "oauth_token"})


class _ZendeskAuth(AuthBase):
    """Set the Authorization header; as a requests auth it also keeps ~/.netrc from overriding."""

    def __init__(self, credentials: ZendeskCredentials) -> None:
        self._credentials = credentials

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._credentials.authorization_header()
        return request

    def __repr__(self) -> str:
        return f"<_ZendeskAuth {self._credentials!r}>"


class _Anonymous(AuthBase):
    """Send no Authorization header; as a requests auth it keeps ~/.netrc from adding one."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


class CallBudget:
    """Share one Zendesk account's per-minute call allowance between threads.

    A sliding window over the last minute, like Zendesk's own accounting, so the client can
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
        """Follow the account's real limit, as Zendesk reports it in `X-Rate-Limit`.

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
        pool_maxsize=10,
        max_retries=Retry(total=0, read=False, respect_retry_after_header=False),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    return session


class AccountSessions:
    """One pooled session and one call budget per Zendesk account, shared by every request."""

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


sessions_for_account = AccountSessions()


def _account_key(base_url: str) -> str:
    return base_url.rstrip("/").lower()


def valid_subdomain(subdomain: str) -> bool:
    """Say whether `subdomain` can be an account's subdomain: acme in acme.zendesk.com."""
    return _SUBDOMAIN.fullmatch(subdomain) is not None


def base_url_for(account: str, api_base_url: str | None) -> str:
    """Return where to call an account's API: its own override, else its zendesk.com host."""
    if api_base_url:
        return api_base_url.rstrip("/")
    if not valid_subdomain(account):
        raise ValueError(f"{account!r} is not a Zendesk subdomain")
    return f"https://{account}.zendesk.com"


class ZendeskError(HelpdeskError):
    """A Zendesk call that failed in transit or was answered with an error status.

    `status` is the HTTP status when Zendesk answered with an error; `transport` says how the
    call failed when it never got an answer; `retry_after` is the wait a 429 asked for.
    """


class CredentialsRejected(ZendeskError):
    """Zendesk did not accept the credentials: a 401, or an answer as an anonymous caller."""

    def __init__(self, message: str, *, status: int | None) -> None:
        super().__init__(message, retryable=False, status=status)


class _NotFound(ZendeskError):
    """A 404, for the methods that turn it into their own answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, status=404)


class ZendeskClient:
    """Read tickets and users from one Zendesk account and log notes and tags back to it."""

    remote = True

    def __init__(
        self,
        *,
        session: requests.Session,
        base_url: str,
        credentials: ZendeskCredentials,
        budget: CallBudget,
        timeout: float = 5.0,
        groups: GroupDirectory | None = None,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._auth = _ZendeskAuth(credentials)
        self._budget = budget
        self._timeout = timeout
        # Shared by the clients of one account (`AccountSessions.groups`); else this one's own.
        self._groups = groups or GroupDirectory()

    def __repr__(self) -> str:
        return f"<ZendeskClient {self._base_url}>"

    # --- The helpdesk interface ------------------------------------------------------------

    def ticket(self, *, ticket_id: str) -> TicketWithRequester:
        if not _NUMERIC_ID.fullmatch(ticket_id):
            # Zendesk ids are numbers; anything else cannot exist and must not reach the path.
            raise TicketNotFound(ticket_id)
        try:
            payload = self._call(
                "GET",
                f"/api/v2/tickets/{ticket_id}.json",
                params={"include": "users,organizations"},
            )
        except _NotFound:
            raise TicketNotFound(ticket_id) from None
        ticket = _map_ticket(_object(payload, "ticket"))
        sideloaded = {str(user.get("id")): user for user in _list(payload, "users")}
        if ticket.requester_id in sideloaded:
            requester = _map_person(sideloaded[ticket.requester_id])
        else:
            requester = self._requester(ticket.requester_id)
        organizations = {str(org.get("id")): org for org in _list(payload, "organizations")}
        return TicketWithRequester(
            ticket=ticket, requester=_with_organization(requester, organizations)
        )

    def requester_tickets(self, *, requester_id: str) -> list[Ticket]:
        try:
            return self._requested(requester_id, include=None)[0]
        except _NotFound:
            # A requester Zendesk no longer knows has no history, as in the demo helpdesk.
            return []

    def requester_with_tickets(self, *, requester_id: str) -> tuple[Person, list[Ticket]]:
        """The requester and their tickets, newest first, in one call (users sideloaded).

        The sidebar's one read for a ticket whose requester the page knows: the ticket is
        among the tickets. Raises a non-retryable HelpdeskError when Zendesk does not know
        the user.
        """
        user_id = _numeric(requester_id, "user")
        try:
            tickets, first_page = self._requested(user_id, include="users,organizations")
        except _NotFound:
            raise HelpdeskError(f"user {user_id} was not found", retryable=False) from None
        sideloaded = {str(user.get("id")): user for user in _list(first_page, "users")}
        if user_id in sideloaded:
            requester = _map_person(sideloaded[user_id])
        else:
            requester = self.user(user_id=user_id)  # no tickets, so no user sideloaded
        organizations = {str(org.get("id")): org for org in _list(first_page, "organizations")}
        return _with_organization(requester, organizations), tickets

    def _requested(
        self, requester_id: str, *, include: str | None
    ) -> tuple[list[Ticket], Mapping[str, Any]]:
        """The requester's tickets, newest first, and the first page (with its sideloads)."""
        user_id = _numeric(requester_id, "user")
        url: str | None = self._url(f"/api/v2/users/{user_id}/tickets/requested.json")
        params: dict[str, str | int] | None = {
            "sort_by": "created_at",
            "sort_order": "desc",
            "per_page": PAGE_SIZE,
        }
        if include and params is not None:
            params["include"] = include
        tickets: list[Ticket] = []
        first_page: Mapping[str, Any] = {}
        for page in range(MAX_REQUESTED_TICKET_PAGES):
            if url is None:
                break
            payload = self._call_url("GET", url, params=params)
            if page == 0:
                first_page = payload
            tickets.extend(_map_ticket(_as_object(item)) for item in _list(payload, "tickets"))
            url = self._next_page(payload)
            params = None  # next_page already carries the query
        # The interface promises newest first whatever order the pages came in.
        return sorted(tickets, key=lambda t: t.created_at, reverse=True), first_page

    # --- More reads for the sidebar --------------------------------------------------------

    def user(self, *, user_id: str) -> Person:
        return _map_person(self._user_object(user_id))

    def role_names(self, *, role_ids: tuple[str, ...]) -> tuple[str, ...]:
        """Name custom roles (Enterprise): GET /api/v2/custom_roles/{id}.json for each."""
        names = []
        for role_id in role_ids:
            try:
                payload = self._call(
                    "GET", f"/api/v2/custom_roles/{_numeric(role_id, 'role')}.json"
                )
            except _NotFound:
                continue
            name = _object(payload, "custom_role").get("name")
            if isinstance(name, str) and name:
                names.append(name)
        return tuple(names)

    def user_fields(self, *, user_id: str) -> dict[str, object]:
        """Return the user's custom fields and tags, keyed as Zendesk names them."""
        user = self._user_object(user_id)
        fields = user.get("user_fields") or {}
        tags = user.get("tags") or []
        if not isinstance(fields, dict) or not isinstance(tags, list):
            raise _unreadable("user")
        return {"user_fields": dict(fields), "tags": [str(tag) for tag in tags]}

    def organization(self, *, organization_id: str) -> dict[str, Any]:
        org_id = _numeric(organization_id, "organization")
        try:
            payload = self._call("GET", f"/api/v2/organizations/{org_id}.json")
        except _NotFound:
            raise HelpdeskError(f"organization {org_id} was not found", retryable=False) from None
        return _object(payload, "organization")

    # --- Connecting an installation --------------------------------------------------------

    def current_user(self) -> Person:
        """Return the user the credentials sign in as: proof that Zendesk accepts them."""
        what = "GET /api/v2/users/me.json"
        user = _object(self._call("GET", "/api/v2/users/me.json"), "user")
        if user.get("id") is None:
            # Zendesk answers some callers it cannot authenticate as an anonymous user.
            raise CredentialsRejected(
                f"Zendesk answered {what} as an anonymous user: it did not accept the credentials",
                status=None,
            )
        return _map_person(user)

    def app_installations(self, app_id: str) -> list[str]:
        """Return the ids of this account's installations of the app, in Zendesk's order."""
        wanted = _numeric(app_id, "app")
        payload = self._call("GET", "/api/v2/apps/installations.json")
        try:
            return [
                str(item["id"])
                for item in _list(payload, "installations")
                if str(item.get("app_id")) == wanted
            ]
        except KeyError:
            raise _unreadable("app installation") from None

    # --- Logging back ----------------------------------------------------------------------

    def add_internal_note(self, *, ticket_id: str, body: str) -> None:
        """Add a private comment, visible to agents only."""
        if not _NUMERIC_ID.fullmatch(ticket_id):
            raise TicketNotFound(ticket_id)
        note = {"ticket": {"comment": {"body": body, "public": False}}}
        try:
            self._call("PUT", f"/api/v2/tickets/{ticket_id}.json", json=note, expect_body=False)
        except _NotFound:
            raise TicketNotFound(ticket_id) from None

    def add_tags(self, *, ticket_id: str, tags: list[str]) -> None:
        """Add tags, keeping the ticket's others (PUT adds; POST would replace them all)."""
        if not _NUMERIC_ID.fullmatch(ticket_id):
            raise TicketNotFound(ticket_id)
        if not tags:
            return  # nothing to add is not worth a call from the budget
        try:
            self._call(
                "PUT",
                f"/api/v2/tickets/{ticket_id}/tags.json",
                json={"tags": list(tags)},
                expect_body=False,
            )
        except _NotFound:
            raise TicketNotFound(ticket_id) from None

    # --- The ticket writer (the action log's outbox) ----------------------------------------

    def add_note(
        self,
        *,
        ticket_id: str,
        body: str,
        tags: list[str],
        marker: str,
        change: TicketChange | None = None,
    ) -> None:
        """Add an internal note, tags and a rule's ticket handling in one ticket update, so
        all of it lands or none does.

        Raising the priority reads the ticket first (a raise never lowers it); routing looks
        the group's id up by its name (the account's groups, remembered a while).
        """
        if not _NUMERIC_ID.fullmatch(ticket_id):
            raise TicketNotFound(ticket_id)
        self._check_budget(f"PUT /api/v2/tickets/{ticket_id}.json")
        update: dict[str, object] = {}
        if change is not None and change.priority is not None:
            priority, line = change.priority_update(self._priority(ticket_id))
            body = with_line(body, marker, line)
            if priority is not None:
                update["priority"] = priority
        if change is not None and change.group is not None:
            group_id = self._groups.id_for(change.group, load=self._list_groups)
            if group_id is None:
                raise UnknownGroup("Zendesk", change.group)
            update["group_id"] = int(group_id)
        update["comment"] = {"body": body, "public": False}
        if tags:
            update["additional_tags"] = list(dict.fromkeys(tags))
        try:
            self._call(
                "PUT",
                f"/api/v2/tickets/{ticket_id}.json",
                json={"ticket": update},
                expect_body=False,
            )
        except _NotFound:
            raise TicketNotFound(ticket_id) from None

    def has_note(self, *, ticket_id: str, marker: str) -> bool:
        """Look for the marker in the ticket's newest comments (a few pages, newest first)."""
        if not _NUMERIC_ID.fullmatch(ticket_id):
            raise TicketNotFound(ticket_id)
        url: str | None = self._url(f"/api/v2/tickets/{ticket_id}/comments.json")
        params: dict[str, str | int] | None = {"sort_order": "desc", "per_page": PAGE_SIZE}
        for _page in range(MAX_COMMENT_PAGES):
            if url is None:
                break
            self._check_budget(f"GET /api/v2/tickets/{ticket_id}/comments.json")
            try:
                payload = self._call_url("GET", url, params=params)
            except _NotFound:
                raise TicketNotFound(ticket_id) from None
            for comment in _list(payload, "comments"):
                texts = (comment.get("body"), comment.get("plain_body"))
                if any(isinstance(text, str) and marker in text for text in texts):
                    return True
            url = self._next_page(payload)
            params = None
        return False

    def _priority(self, ticket_id: str) -> str | None:
        """The ticket's priority as Zendesk has it now."""
        try:
            payload = self._call("GET", f"/api/v2/tickets/{ticket_id}.json")
        except _NotFound:
            raise TicketNotFound(ticket_id) from None
        return _map_ticket(_object(payload, "ticket")).priority

    def _list_groups(self) -> dict[str, str]:
        """The account's groups, name to id (deleted ones left out), a few pages at most."""
        url: str | None = self._url("/api/v2/groups.json")
        params: dict[str, str | int] | None = {"per_page": PAGE_SIZE}
        groups: dict[str, str] = {}
        for _page in range(MAX_GROUP_PAGES):
            if url is None:
                break
            self._check_budget("GET /api/v2/groups.json")
            payload = self._call_url("GET", url, params=params)
            for group in _list(payload, "groups"):
                group_id, name = str(group.get("id")), group.get("name")
                if _NUMERIC_ID.fullmatch(group_id) and name and not group.get("deleted"):
                    groups.setdefault(str(name), group_id)
            url = self._next_page(payload)
            params = None
        return groups

    def _check_budget(self, what: str) -> None:
        """Refuse a write the budget would refuse, saying when calls resume (`retry_after`)."""
        wait = self._budget.seconds_until_available()
        if wait > 0:
            raise HelpdeskError(
                f"Zendesk call budget for this account is spent; {what} not sent, "
                f"calls resume in {wait:.0f} s",
                retryable=True,
                retry_after=wait,
            )

    # --- HTTP ------------------------------------------------------------------------------

    def _requester(self, user_id: str) -> Person:
        try:
            payload = self._call("GET", f"/api/v2/users/{_numeric(user_id, 'user')}.json")
        except _NotFound:
            # A ticket can outlive its requester; show a placeholder, as the demo helpdesk does.
            return Person(id=user_id, name="Unknown user")
        return _map_person(_object(payload, "user"))

    def _user_object(self, user_id: str) -> dict[str, Any]:
        numeric_id = _numeric(user_id, "user")
        try:
            payload = self._call("GET", f"/api/v2/users/{numeric_id}.json")
        except _NotFound:
            raise HelpdeskError(f"user {numeric_id} was not found", retryable=False) from None
        return _object(payload, "user")

    def _next_page(self, payload: Mapping[str, Any]) -> str | None:
        next_page = payload.get("next_page")
        if not next_page:
            return None
        if not isinstance(next_page, str) or not _same_origin(next_page, self._base_url):
            # Following it would send the account's credentials to some other host.
            raise HelpdeskError("Zendesk sent a next page on another host", retryable=False)
        return next_page

    def _url(self, path: str) -> str:
        return f"{self._base_url}{path}"

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: object = None,
        expect_body: bool = True,
    ) -> dict[str, Any]:
        return self._call_url(
            method, self._url(path), params=params, json=json, expect_body=expect_body
        )

    def _call_url(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: object = None,
        expect_body: bool = True,
    ) -> dict[str, Any]:
        what = _what(method, url)
        if not self._budget.try_acquire():
            wait = self._budget.seconds_until_available()
            raise HelpdeskError(
                f"Zendesk call budget for this account is spent; {what} not sent, "
                f"calls resume in {wait:.0f} s",
                retryable=True,
            )
        response = _send(
            self._session,
            method,
            url,
            auth=self._auth,
            timeout=self._timeout,
            params=params,
            json=json,
        )
        self._observe_rate_limit(response)
        self._raise_for_status(response, what)
        if not expect_body:
            return {}
        try:
            payload = response.json()
        except ValueError:
            raise HelpdeskError(
                f"Zendesk answered {what} with a body that is not JSON", retryable=False
            ) from None
        if not isinstance(payload, dict):
            raise HelpdeskError(
                f"Zendesk answered {what} with JSON that is not an object", retryable=False
            )
        return payload

    def _observe_rate_limit(self, response: requests.Response) -> None:
        limit = response.headers.get("X-Rate-Limit", "")
        if limit.isdigit():
            self._budget.observe_limit(int(limit))

    def _raise_for_status(self, response: requests.Response, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        if status == 401:
            raise CredentialsRejected(
                f"Zendesk refused the credentials for {what} (401): check the API token or "
                "OAuth token",
                status=401,
            )
        if status == 403:
            raise ZendeskError(
                f"the Zendesk credentials lack permission for {what} (403)",
                retryable=False,
                status=403,
            )
        if status == 404:
            raise _NotFound(f"Zendesk found nothing at {what} (404)")
        if status == 429:
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            self._budget.pause_for(retry_after)
            logger.warning(
                "Zendesk rate limit hit at %s; pausing calls for %.0f s",
                urlsplit(self._base_url).netloc,
                retry_after,
            )
            raise ZendeskError(
                f"Zendesk rate limit reached at {what} (429); calls paused for {retry_after:.0f} s",
                retryable=True,
                status=429,
                retry_after=retry_after,
            )
        # 409 is Zendesk's answer to two simultaneous updates of one ticket: trying again works.
        retryable = status >= 500 or status == 409
        raise ZendeskError(
            f"Zendesk answered {what} with {status}", retryable=retryable, status=status
        )


def fetch_public_key(
    session: requests.Session, base_url: str, app_id: str, *, timeout: float
) -> str:
    """Fetch the key Zendesk signs the app's launch tokens with, as SubjectPublicKeyInfo PEM.

    The call is anonymous. Zendesk's PEM is re-encoded, so the same key always reads the same.
    """
    url = f"{base_url.rstrip('/')}/api/v2/apps/{_numeric(app_id, 'app')}/public_key.pem"
    what = _what("GET", url)
    response = _send(
        session,
        "GET",
        url,
        auth=_Anonymous(),
        timeout=timeout,
        headers={"Accept": "application/x-pem-file, text/plain;q=0.9, */*;q=0.5"},
    )
    status = response.status_code
    if status == 404:
        raise ZendeskError(
            f"Zendesk has no app {app_id} at {what} (404): check the app id",
            retryable=False,
            status=404,
        )
    if status == 429:
        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        raise ZendeskError(
            f"Zendesk rate limit reached at {what} (429); try again in {retry_after:.0f} s",
            retryable=True,
            status=429,
            retry_after=retry_after,
        )
    if status >= 400:
        raise ZendeskError(
            f"Zendesk answered {what} with {status}", retryable=status >= 500, status=status
        )
    not_a_key = HelpdeskError(
        f"Zendesk answered {what} with something that is not an RSA public key in PEM form",
        retryable=False,
    )
    if len(response.content) > MAX_PUBLIC_KEY_BYTES:
        raise not_a_key
    try:
        key = serialization.load_pem_public_key(response.content)
    except (ValueError, UnsupportedAlgorithm):
        raise not_a_key from None
    if not isinstance(key, RSAPublicKey):
        raise not_a_key
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


def _what(method: str, url: str) -> str:
    """Name a call by method and path only, so nothing sent with it leaks into messages or logs."""
    return f"{method} {urlsplit(url).path}"


def _send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    auth: AuthBase,
    timeout: float,
    params: Mapping[str, str | int] | None = None,
    json: object = None,
    headers: Mapping[str, str] | None = None,
) -> requests.Response:
    """Send one request; a failure to get any answer becomes a ZendeskError saying how."""
    what = _what(method, url)
    try:
        response = session.request(
            method, url, params=params, json=json, headers=headers, auth=auth, timeout=timeout
        )
    except (InvalidURL, InvalidSchema, MissingSchema) as error:
        # A misconfigured base URL: no retry will fix it.
        count_upstream_call(PLATFORM, None)
        raise ZendeskError(
            f"Zendesk request {what} is malformed: {type(error).__name__}",
            retryable=False,
            transport="invalid_url",
        ) from error
    except requests.RequestException as error:
        count_upstream_call(PLATFORM, None)
        transport = transport_failure(error)
        host = urlsplit(url).hostname or url
        raise ZendeskError(
            f"Zendesk did not answer {what}: {TRANSPORT_FAILURES[transport].format(host=host)} "
            f"({type(error).__name__})",
            retryable=True,
            transport=transport,
        ) from error
    count_upstream_call(PLATFORM, response.status_code)
    return response


TRANSPORT_FAILURES: dict[Transport, str] = {
    "timeout": "the call timed out",
    "unresolved": "the host name {host} does not resolve",
    "refused": "{host} refused the connection",
    "tls": "the secure connection to {host} failed",
    "connection": "the connection to {host} failed",
    "broken": "the answer broke off",
    "invalid_url": "the URL is malformed",
}


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


def _retry_after_seconds(header: str | None) -> float:
    try:
        seconds = float(header) if header is not None else DEFAULT_RETRY_AFTER_SECONDS
    except ValueError:
        # Zendesk sends seconds; an HTTP date or garbage gets the conservative default.
        seconds = DEFAULT_RETRY_AFTER_SECONDS
    if not math.isfinite(seconds):
        return DEFAULT_RETRY_AFTER_SECONDS
    return max(0.0, seconds)


def _same_origin(url: str, base_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())


def _numeric(value: str, kind: str) -> str:
    if not _NUMERIC_ID.fullmatch(value):
        raise HelpdeskError(f"{kind} id {value!r} is not a Zendesk id", retryable=False)
    return value


def _unreadable(kind: str) -> HelpdeskError:
    return HelpdeskError(f"Zendesk sent a {kind} this client cannot read", retryable=False)


def _as_object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _unreadable("response")
    return value


def _object(payload: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key)
    if not isinstance(value, dict):
        raise _unreadable(key)
    return value


def _list(payload: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = payload.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _unreadable(key)
    return value


def _timestamp(value: object) -> datetime:
    """Parse Zendesk's ISO 8601 time into naive UTC, as the service stores times."""
    if not isinstance(value, str):
        raise ValueError("timestamp is not a string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _map_ticket(raw: Mapping[str, Any]) -> Ticket:
    try:
        via = raw.get("via") or {}
        return Ticket(
            id=str(raw["id"]),
            # Some channels leave `subject` empty and keep the text in `raw_subject`.
            subject=str(raw.get("subject") or raw.get("raw_subject") or ""),
            status=str(raw["status"]),
            channel=str(via.get("channel") or "unknown"),
            priority=_optional_str(raw.get("priority")),
            ticket_type=_optional_str(raw.get("type")),
            tags=tuple(str(tag) for tag in raw.get("tags") or ()),
            requester_id=str(raw["requester_id"]),
            created_at=_timestamp(raw["created_at"]),
            updated_at=_timestamp(raw["updated_at"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise _unreadable("ticket") from None


def _map_person(raw: Mapping[str, Any]) -> Person:
    fields = raw.get("user_fields") or {}
    tags = raw.get("tags") or []
    if raw.get("id") is None or not isinstance(fields, dict) or not isinstance(tags, list):
        raise _unreadable("user")
    return Person(
        id=str(raw["id"]),
        name=str(raw.get("name") or "Unknown user"),
        email=_optional_str(raw.get("email")),
        phone=_optional_str(raw.get("phone")),
        role=_optional_str(raw.get("role")),
        role_ids=(str(raw["custom_role_id"]),) if raw.get("custom_role_id") is not None else (),
        tags=tuple(str(tag) for tag in tags),
        fields=dict(fields),
        organization_id=_optional_str(raw.get("organization_id")),
    )


def _with_organization(person: Person, organizations: Mapping[str, Mapping[str, Any]]) -> Person:
    """Attach the fields of the person's organization, when Zendesk sideloaded it."""
    organization = organizations.get(person.organization_id or "")
    if organization is None:
        return person
    fields = organization.get("organization_fields") or {}
    if not isinstance(fields, dict):
        raise _unreadable("organization")
    return replace(person, organization_fields=dict(fields))
