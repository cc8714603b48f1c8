"""The Zendesk Support REST API behind the helpdesk interface, plus the calls that log back."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from plugin.domain.helpdesk import Person, Ticket
from plugin.domain.regions import region_of_time_zone
from plugin.helpdesks.account_client import HelpdeskAccountClient
from plugin.helpdesks.http import (
    ApiCaller,
    HeaderAuth,
    UpstreamApi,
    answered_call,
    describe_call,
    same_origin,
    utc_timestamp,
)
from plugin.helpdesks.interface import (
    HelpdeskError,
    PersonNotFound,
    SatisfactionRating,
    TicketChange,
    TicketNotFound,
    TicketWithRequester,
    UnknownGroup,
    with_line,
)
from plugin.helpdesks.zendesk_payloads import (
    NUMERIC_ID,
    as_object,
    list_at,
    numeric_id,
    object_at,
    person_from,
    rsa_public_key_pem,
    ticket_from,
    unreadable,
    with_organization,
)

PLATFORM = "zendesk"

# Each page is a budgeted call; a regular's first 300 tickets are history enough for the banner.
MAX_REQUESTED_TICKET_PAGES = 3
PAGE_SIZE = 100
# The outbox looks for its marker in the newest 300 comments: its note was added recently.
MAX_COMMENT_PAGES = 3
# Routing reads the account's groups, 100 a page: a thousand groups is a very large account.
MAX_GROUP_PAGES = 10

_SUBDOMAIN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


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
    """A Zendesk call that failed in transit, was answered with an error status, or was not
    sent because the account's call budget is spent.

    `status` is the HTTP status when Zendesk answered with an error; `transport` says how the
    call failed when it never got an answer; `retry_after` is the wait a 429 asked for, or how
    long until the budget has a call again.
    """


class CredentialsRejected(ZendeskError):
    """Zendesk did not accept the credentials: a 401, or an answer as an anonymous caller."""

    def __init__(self, message: str, *, status: int | None) -> None:
        super().__init__(message, retryable=False, status=status)


class _NotFound(ZendeskError):
    """A 404, for the methods that turn it into their own answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, status=404)


ZENDESK_API = UpstreamApi(
    name="Zendesk", platform=PLATFORM, error=ZendeskError, rate_limit_header="X-Rate-Limit"
)


class ZendeskClient(HelpdeskAccountClient[ZendeskCredentials]):
    """Read tickets and users from one Zendesk account and log notes and tags back to it."""

    api = ZENDESK_API

    # --- The helpdesk interface ------------------------------------------------------------

    def ticket(self, *, ticket_id: str) -> TicketWithRequester:
        if not NUMERIC_ID.fullmatch(ticket_id):
            # Zendesk ids are numbers; anything else cannot exist and must not reach the path.
            raise TicketNotFound(ticket_id)
        try:
            payload = self._get(
                f"/api/v2/tickets/{ticket_id}.json",
                params={"include": "users,organizations"},
            )
        except _NotFound:
            raise TicketNotFound(ticket_id) from None
        ticket = ticket_from(object_at(payload, "ticket"))
        sideloaded = {str(user.get("id")): user for user in list_at(payload, "users")}
        if ticket.requester_id in sideloaded:
            requester = person_from(sideloaded[ticket.requester_id])
        else:
            requester = self._requester(ticket.requester_id)
        organizations = {str(org.get("id")): org for org in list_at(payload, "organizations")}
        return TicketWithRequester(
            ticket=ticket, requester=with_organization(requester, organizations)
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
        user_id = numeric_id(requester_id, "user")
        try:
            tickets, first_page = self._requested(user_id, include="users,organizations")
        except _NotFound:
            raise PersonNotFound(user_id) from None
        sideloaded = {str(user.get("id")): user for user in list_at(first_page, "users")}
        if user_id in sideloaded:
            requester = person_from(sideloaded[user_id])
        else:
            requester = self.user(user_id=user_id)  # no tickets, so no user sideloaded
        organizations = {str(org.get("id")): org for org in list_at(first_page, "organizations")}
        return with_organization(requester, organizations), tickets

    def _requested(
        self, requester_id: str, *, include: str | None
    ) -> tuple[list[Ticket], Mapping[str, Any]]:
        """The requester's tickets, newest first, and the first page (with its sideloads)."""
        user_id = numeric_id(requester_id, "user")
        path = f"/api/v2/users/{user_id}/tickets/requested.json"
        params: dict[str, str | int] = {
            "sort_by": "created_at",
            "sort_order": "desc",
            "per_page": PAGE_SIZE,
        }
        if include:
            params["include"] = include
        tickets: list[Ticket] = []
        first_page: Mapping[str, Any] = {}
        pages = self._pages(path, params, max_pages=MAX_REQUESTED_TICKET_PAGES)
        for number, payload in enumerate(pages):
            if number == 0:
                first_page = payload
            tickets.extend(ticket_from(as_object(item)) for item in list_at(payload, "tickets"))
        # The interface promises newest first whatever order the pages came in.
        return sorted(tickets, key=lambda t: t.created_at, reverse=True), first_page

    # --- More reads for the sidebar --------------------------------------------------------

    def user(self, *, user_id: str) -> Person:
        return person_from(self._user_object(user_id))

    def role_names(self, *, role_ids: tuple[str, ...]) -> tuple[str, ...]:
        """Name custom roles (Enterprise): GET /api/v2/custom_roles/{id}.json for each."""
        names = []
        for role_id in role_ids:
            try:
                payload = self._get(f"/api/v2/custom_roles/{numeric_id(role_id, 'role')}.json")
            except _NotFound:
                continue
            name = object_at(payload, "custom_role").get("name")
            if isinstance(name, str) and name:
                names.append(name)
        return tuple(names)

    def satisfaction_ratings(
        self, *, since: datetime, max_pages: int
    ) -> Iterator[SatisfactionRating]:
        """`GET /api/v2/satisfaction_ratings.json?score=received&start_time=…` (legacy CSAT):
        the answered ratings, oldest first, 100 a page through `next_page`; "good" is satisfied,
        "bad" is not. Each page is a budgeted call."""
        params: dict[str, str | int] = {
            "score": "received",
            "start_time": int(since.replace(tzinfo=UTC).timestamp()),
            "per_page": PAGE_SIZE,
        }
        path = "/api/v2/satisfaction_ratings.json"
        for payload in self._pages(path, params, max_pages=max_pages, budgeted=True):
            for item in list_at(payload, "satisfaction_ratings"):
                rating = _rating_from(as_object(item))
                if rating is not None:
                    yield rating

    def user_fields(self, *, user_id: str) -> dict[str, object]:
        """Return the user's custom fields and tags, keyed as Zendesk names them."""
        user = self._user_object(user_id)
        fields = user.get("user_fields") or {}
        tags = user.get("tags") or []
        if not isinstance(fields, dict) or not isinstance(tags, list):
            raise unreadable("user")
        return {"user_fields": dict(fields), "tags": [str(tag) for tag in tags]}

    def organization(self, *, organization_id: str) -> dict[str, Any]:
        org_id = numeric_id(organization_id, "organization")
        try:
            payload = self._get(f"/api/v2/organizations/{org_id}.json")
        except _NotFound:
            raise HelpdeskError(f"organization {org_id} was not found", retryable=False) from None
        return object_at(payload, "organization")

    # --- Connecting an installation --------------------------------------------------------

    def current_user(self) -> Person:
        """Return the user the credentials sign in as: proof that Zendesk accepts them."""
        what = "GET /api/v2/users/me.json"
        user = object_at(self._get("/api/v2/users/me.json"), "user")
        if user.get("id") is None:
            # Zendesk answers some callers it cannot authenticate as an anonymous user.
            raise CredentialsRejected(
                f"Zendesk answered {what} as an anonymous user: it did not accept the credentials",
                status=None,
            )
        return person_from(user)

    def account_region(self) -> str | None:
        """The account's country as a phone region, from its time zone; None if not known.

        GET /api/v2/account/settings.json documents `settings.localization.iana_time_zone`
        (`America/New_York`); Zendesk has no country setting, and the time zone is the
        account's own (Admin Center > Account > Localization).
        """
        settings = object_at(self._get("/api/v2/account/settings.json"), "settings")
        localization = settings.get("localization")
        zone = localization.get("iana_time_zone") if isinstance(localization, dict) else None
        return region_of_time_zone(zone if isinstance(zone, str) else None)

    def app_installations(self, app_id: str) -> list[str]:
        """Return the ids of this account's installations of the app, in Zendesk's order."""
        wanted = numeric_id(app_id, "app")
        payload = self._get("/api/v2/apps/installations.json")
        try:
            return [
                str(item["id"])
                for item in list_at(payload, "installations")
                if str(item.get("app_id")) == wanted
            ]
        except KeyError:
            raise unreadable("app installation") from None

    # --- Logging back ----------------------------------------------------------------------

    def add_internal_note(self, *, ticket_id: str, body: str) -> None:
        """Add a private comment, visible to agents only."""
        if not NUMERIC_ID.fullmatch(ticket_id):
            raise TicketNotFound(ticket_id)
        note = {"ticket": {"comment": {"body": body, "public": False}}}
        try:
            self._call("PUT", f"/api/v2/tickets/{ticket_id}.json", json=note)
        except _NotFound:
            raise TicketNotFound(ticket_id) from None

    def add_tags(self, *, ticket_id: str, tags: list[str]) -> None:
        """Add tags, keeping the ticket's others (PUT adds; POST would replace them all)."""
        if not NUMERIC_ID.fullmatch(ticket_id):
            raise TicketNotFound(ticket_id)
        if not tags:
            return  # nothing to add is not worth a call from the budget
        try:
            self._call(
                "PUT",
                f"/api/v2/tickets/{ticket_id}/tags.json",
                json={"tags": list(tags)},
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
        if not NUMERIC_ID.fullmatch(ticket_id):
            raise TicketNotFound(ticket_id)
        self._http.check_budget(f"PUT /api/v2/tickets/{ticket_id}.json")
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
            )
        except _NotFound:
            raise TicketNotFound(ticket_id) from None

    def has_note(self, *, ticket_id: str, marker: str) -> bool:
        """Look for the marker in the ticket's newest comments (a few pages, newest first)."""
        if not NUMERIC_ID.fullmatch(ticket_id):
            raise TicketNotFound(ticket_id)
        path = f"/api/v2/tickets/{ticket_id}/comments.json"
        params: dict[str, str | int] = {"sort_order": "desc", "per_page": PAGE_SIZE}
        try:
            for payload in self._pages(path, params, max_pages=MAX_COMMENT_PAGES, budgeted=True):
                for comment in list_at(payload, "comments"):
                    texts = (comment.get("body"), comment.get("plain_body"))
                    if any(isinstance(text, str) and marker in text for text in texts):
                        return True
        except _NotFound:
            raise TicketNotFound(ticket_id) from None
        return False

    def _priority(self, ticket_id: str) -> str | None:
        """The ticket's priority as Zendesk has it now."""
        try:
            payload = self._get(f"/api/v2/tickets/{ticket_id}.json")
        except _NotFound:
            raise TicketNotFound(ticket_id) from None
        return ticket_from(object_at(payload, "ticket")).priority

    def _list_groups(self) -> dict[str, str]:
        """The account's groups, name to id (deleted ones left out), a few pages at most."""
        groups: dict[str, str] = {}
        params: dict[str, str | int] = {"per_page": PAGE_SIZE}
        for payload in self._pages(
            "/api/v2/groups.json", params, max_pages=MAX_GROUP_PAGES, budgeted=True
        ):
            for group in list_at(payload, "groups"):
                group_id, name = str(group.get("id")), group.get("name")
                if NUMERIC_ID.fullmatch(group_id) and name and not group.get("deleted"):
                    groups.setdefault(str(name), group_id)
        return groups

    # --- HTTP ------------------------------------------------------------------------------

    def _requester(self, user_id: str) -> Person:
        try:
            payload = self._get(f"/api/v2/users/{numeric_id(user_id, 'user')}.json")
        except _NotFound:
            # A ticket can outlive its requester; show a placeholder, as the demo helpdesk does.
            return Person(id=user_id, name="Unknown user")
        return person_from(object_at(payload, "user"))

    def _user_object(self, user_id: str) -> dict[str, Any]:
        user_number = numeric_id(user_id, "user")
        try:
            payload = self._get(f"/api/v2/users/{user_number}.json")
        except _NotFound:
            raise PersonNotFound(user_number) from None
        return object_at(payload, "user")

    def _pages(
        self,
        path: str,
        params: Mapping[str, str | int],
        *,
        max_pages: int,
        budgeted: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """GET a listing's pages, following `next_page`, `max_pages` at most. `budgeted`: check
        the budget before each page, so that the outbox's reads say when to retry.
        """
        url: str | None = self._url(path)
        query: Mapping[str, str | int] | None = params
        for _page in range(max_pages):
            if url is None:
                return
            if budgeted:
                self._http.check_budget(f"GET {path}")
            payload = self._json_object(self._http.call("GET", url, params=query))
            yield payload
            url = self._next_page(payload)
            query = None  # next_page already carries the query

    def _next_page(self, payload: Mapping[str, Any]) -> str | None:
        next_page = payload.get("next_page")
        if not next_page:
            return None
        if not isinstance(next_page, str) or not same_origin(next_page, self._base_url):
            # Following it would send the account's credentials to some other host.
            raise HelpdeskError("Zendesk sent a next page on another host", retryable=False)
        return next_page

    def _get(self, path: str, *, params: Mapping[str, str | int] | None = None) -> dict[str, Any]:
        """GET a path of the account's API and return the JSON object it answers."""
        return self._json_object(self._call("GET", path, params=params))

    def _json_object(self, response: requests.Response) -> dict[str, Any]:
        payload = self._http.read_json(response)
        if not isinstance(payload, dict):
            raise HelpdeskError(
                f"Zendesk answered {answered_call(response)} with JSON that is not an object",
                retryable=False,
            )
        return payload

    def _error_for_status(self, status: int, what: str) -> ZendeskError:
        """Zendesk's answer to a call, other than 429 (the plumbing's), as the error to raise."""
        if status == 401:
            return CredentialsRejected(
                f"Zendesk refused the credentials for {what} (401): check the API token or "
                "OAuth token",
                status=401,
            )
        if status == 403:
            return ZendeskError(
                f"the Zendesk credentials lack permission for {what} (403)",
                retryable=False,
                status=403,
            )
        if status == 404:
            return _NotFound(f"Zendesk found nothing at {what} (404)")
        # 409 is Zendesk's answer to two simultaneous updates of one ticket: trying again works.
        retryable = status >= 500 or status == 409
        return ZendeskError(
            f"Zendesk answered {what} with {status}", retryable=retryable, status=status
        )


_SCORES = {"good": True, "bad": False}


def _rating_from(raw: Mapping[str, Any]) -> SatisfactionRating | None:
    """A rating of the listing, or None for one that is not an answer (offered, unoffered) or
    that the service cannot read."""
    score = raw.get("score")
    rating_id, ticket_id = str(raw.get("id", "")), str(raw.get("ticket_id", ""))
    if score not in _SCORES or not NUMERIC_ID.fullmatch(ticket_id):
        return None
    try:
        created_at = utc_timestamp(raw.get("created_at"))
    except (TypeError, ValueError):
        return None
    return SatisfactionRating(rating_id, ticket_id, _SCORES[str(score)], created_at)


def fetch_public_key(
    session: requests.Session, base_url: str, app_id: str, *, timeout: float
) -> str:
    """Fetch the key Zendesk signs the app's launch tokens with, as SubjectPublicKeyInfo PEM.

    The call is anonymous. Zendesk's PEM is re-encoded, so the same key always reads the same.
    """
    url = f"{base_url.rstrip('/')}/api/v2/apps/{numeric_id(app_id, 'app')}/public_key.pem"
    what = describe_call("GET", url)
    anonymous = ApiCaller(
        ZENDESK_API,
        session=session,
        auth=HeaderAuth(),
        timeout=timeout,
        budget=None,  # before the account is registered: no budget of its own yet
        account=urlsplit(url).netloc,
    )
    response = anonymous.send(
        "GET", url, headers={"Accept": "application/x-pem-file, text/plain;q=0.9, */*;q=0.5"}
    )
    if response.status_code == 404:
        raise ZendeskError(
            f"Zendesk has no app {app_id} at {what} (404): check the app id",
            retryable=False,
            status=404,
        )
    anonymous.raise_for_status(response, what)
    return rsa_public_key_pem(response.content, what)
