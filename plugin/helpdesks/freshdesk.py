"""The Freshdesk REST API v2 behind the helpdesk interface, plus the calls that log back.

What this relies on, from Freshdesk's API reference (developers.freshdesk.com/api) and the
request-method sample apps Freshworks publishes (github.com/freshworks-developers):

- Base `https://{domain}.freshdesk.com/api/v2/`; basic auth with the API key as the user name
  and any password ("X"). Answers are JSON; errors are 400 (validation), 401 (credentials),
  403 (permission), 404, 429 with `Retry-After` in seconds, 5xx. `X-RateLimit-Total` tells the
  account's per-minute limit (200/400/700 by plan).
- `GET tickets/{id}`: `requester_id`, `status` (2 open, 3 pending, 4 resolved, 5 closed; an
  account's custom statuses have higher numbers), `priority` (1 low, 2 medium, 3 high,
  4 urgent), `source` (1 email, 2 portal, 3 phone, 7 chat, 9 feedback widget, 10 outbound
  email), `type`, `tags`, `custom_fields`, `created_at`, `updated_at`.
- `GET contacts/{id}`: `name`, `email`, `phone`, `mobile`, `tags`, `custom_fields` (keyed by the
  field's name), `company_id`. `GET agents/{id}` and `agents/me`: the agent's `contact`
  (name, email) and `ticket_scope` (1 global, 2 group, 3 restricted access).
- `GET tickets?requester_id=…&order_by=created_at&order_type=desc&per_page=100&page=N`: a JSON
  array, at most 100 a page, a `Link: <…>; rel="next"` header while more pages follow. Without
  `updated_since` only tickets created in the last 30 days are listed, so the history asks for
  everything updated since 2000 (*unconfirmed*: that `requester_id` and `updated_since` combine;
  the fake Freshdesk answers either way the real one might).
- `POST tickets/{id}/notes` with `{"body": html, "private": true}` adds a private note.
  `PUT tickets/{id}` with `{"tags": [...]}` replaces the ticket's tags: adding reads them first.
  The same update sets `priority` (a number, as above) and `group_id`; `GET groups` lists the
  account's groups (`id`, `name`), in pages with the `Link` header.
- Freshdesk's own word for priority 2 is "medium"; tickets are mapped to the vocabulary the rest
  of Regulars uses (Zendesk's: "normal", channel "voice" for phone, "web" for the portal), so
  rules read the same whichever helpdesk a ticket came from.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from plugin.domain.helpdesk import Person, Ticket
from plugin.domain.order_numbers import mentioned_orders
from plugin.domain.regions import region_of_country
from plugin.helpdesks.account_client import HelpdeskAccountClient
from plugin.helpdesks.http import UpstreamApi, utc_timestamp
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

PLATFORM = "freshdesk"
DOMAIN_SUFFIX = ".freshdesk.com"

# Freshdesk's smallest paid plan allows 200 calls a minute per account; X-RateLimit-Total tells
# an account's own limit on the first answer.
DEFAULT_CALLS_PER_MINUTE = 200
PAGE_SIZE = 100
# Each page is a budgeted call; a regular's first 300 tickets are history enough for the banner.
MAX_HISTORY_PAGES = 3
# A ticket's conversations come oldest first; the outbox's marker check reads up to 1,000.
MAX_CONVERSATION_PAGES = 10
# The ticket list shows only the last 30 days' tickets unless asked for older ones.
HISTORY_SINCE = "2000-01-01T00:00:00Z"
# The password Freshdesk ignores when the API key is the user name.
API_KEY_PASSWORD = "X"  # noqa: S105 - Freshdesk's documented placeholder, not a secret

STATUSES = {2: "open", 3: "pending", 4: "resolved", 5: "closed"}
# Custom statuses keep a ticket unresolved (waiting on a customer, a third party...).
CUSTOM_STATUS = "hold"
PRIORITIES = {1: "low", 2: "normal", 3: "high", 4: "urgent"}
PRIORITY_NUMBERS = {word: number for number, word in PRIORITIES.items()}
# Routing reads the account's groups, 100 a page: a thousand groups is a very large account.
MAX_GROUP_PAGES = 10
CHANNELS = {
    1: "email",
    2: "web",
    3: "voice",
    4: "forum",
    5: "twitter",
    6: "facebook",
    7: "chat",
    8: "mobile",
    9: "web",
    10: "email",
}
# Ticket scope of an agent: only global access sees every ticket the sidebar may be opened on.
GLOBAL_TICKET_SCOPE = 1

_NUMERIC_ID = re.compile(r"[0-9]{1,20}")
_SUBDOMAIN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class FreshdeskCredentials:
    """An agent's API key: Freshdesk's only credential for its REST API."""

    api_key: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.api_key.strip() or any(c.isspace() or c == ":" for c in self.api_key):
            raise ValueError("the API key must be one word without spaces or colons")

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> FreshdeskCredentials:
        """Rebuild credentials from `to_dict`'s output; ValueError names fields, not values."""
        unknown = set(data) - {"api_key"}
        if unknown or "api_key" not in data:
            raise ValueError("Freshdesk credentials hold exactly one field, api_key")
        return cls(api_key=data["api_key"])

    def to_dict(self) -> dict[str, str]:
        """Return the fields to store (encrypted) and read back with `from_dict`."""
        return {"api_key": self.api_key}

    def authorization_header(self) -> str:
        """Return the Authorization header: basic auth, the key as user, "X" as password."""
        user_pass = f"{self.api_key}:{API_KEY_PASSWORD}".encode()
        return "Basic " + base64.b64encode(user_pass).decode("ascii")


class FreshdeskError(HelpdeskError):
    """A Freshdesk call that failed in transit, was answered with an error status, or was not
    sent because the account's call budget is spent.
    """


class CredentialsRejected(FreshdeskError):
    """Freshdesk refused the API key (401)."""


class _NotFound(FreshdeskError):
    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, status=404)


FRESHDESK_API = UpstreamApi(
    name="Freshdesk", platform=PLATFORM, error=FreshdeskError, rate_limit_header="X-RateLimit-Total"
)


@dataclass(frozen=True)
class FreshdeskAgent:
    """The agent an API key belongs to, and whether they can see every ticket."""

    person: Person
    ticket_scope: int | None

    @property
    def sees_every_ticket(self) -> bool:
        return self.ticket_scope == GLOBAL_TICKET_SCOPE


def valid_subdomain(subdomain: str) -> bool:
    """Say whether `subdomain` can be an account's name: acme in acme.freshdesk.com."""
    return _SUBDOMAIN.fullmatch(subdomain) is not None


def account_from_domain(value: str) -> str:
    """Return the account in `acme`, `acme.freshdesk.com` or `https://acme.freshdesk.com/`."""
    text = value.strip().lower()
    host = urlsplit(text).hostname if "://" in text else text.rstrip("/")
    account = (host or "").removesuffix(DOMAIN_SUFFIX)
    if not valid_subdomain(account):
        raise ValueError(
            "a Freshdesk domain is the account's address, such as acme.freshdesk.com (or acme)"
        )
    return account


def domain_of(account: str) -> str:
    """Return an account's Freshdesk domain, as the app's page reports it: acme.freshdesk.com."""
    return f"{account}{DOMAIN_SUFFIX}"


def base_url_for(account: str, api_base_url: str | None) -> str:
    """Return where to call an account's API: its own override, else its freshdesk.com host."""
    if api_base_url:
        return api_base_url.rstrip("/")
    if not valid_subdomain(account):
        raise ValueError(f"{account!r} is not a Freshdesk account name")
    return f"https://{domain_of(account)}"


class FreshdeskClient(HelpdeskAccountClient[FreshdeskCredentials]):
    """Read tickets, contacts and agents of one Freshdesk account, and log notes and tags back."""

    api = FRESHDESK_API

    # --- The helpdesk interface ------------------------------------------------------------

    def ticket(self, *, ticket_id: str) -> TicketWithRequester:
        if not _NUMERIC_ID.fullmatch(ticket_id):
            # Freshdesk ids are numbers; anything else cannot exist and must not reach the path.
            raise TicketNotFound(ticket_id)
        try:
            raw = _object(self._json(self._call("GET", f"/api/v2/tickets/{ticket_id}")), "ticket")
        except _NotFound:
            raise TicketNotFound(ticket_id) from None
        ticket = _map_ticket(raw)
        try:
            requester = self.contact(contact_id=ticket.requester_id)
        except _NotFound:
            # A ticket can outlive its requester; show a placeholder, as the demo helpdesk does.
            requester = Person(id=ticket.requester_id, name="Unknown user")
        return TicketWithRequester(ticket=ticket, requester=requester)

    def requester_tickets(self, *, requester_id: str) -> list[Ticket]:
        contact_id = _numeric(requester_id, "contact")
        tickets: list[Ticket] = []
        for page in range(1, MAX_HISTORY_PAGES + 1):
            params: dict[str, str | int] = {
                "requester_id": contact_id,
                "updated_since": HISTORY_SINCE,
                "order_by": "created_at",
                "order_type": "desc",
                "per_page": PAGE_SIZE,
                "page": page,
            }
            try:
                answer = self._call("GET", "/api/v2/tickets", params=params)
            except _NotFound:
                return []
            tickets.extend(_map_ticket(item) for item in _array(self._json(answer), "tickets"))
            if "next" not in answer.links:
                break
        # The interface promises newest first whatever order the pages came in.
        return sorted(tickets, key=lambda t: t.created_at, reverse=True)

    def user(self, *, user_id: str) -> Person:
        """Return an agent, or else a contact, with its role ("agent" or "end-user").

        Raises PersonNotFound (status 404) when Freshdesk knows neither.
        """
        try:
            return self.agent(agent_id=user_id)
        except _NotFound:
            pass  # not an agent: a contact, or nobody
        try:
            return self.contact(contact_id=user_id)
        except _NotFound:
            raise PersonNotFound(user_id) from None

    def role_names(self, *, role_ids: tuple[str, ...]) -> tuple[str, ...]:
        """Name an agent's roles: GET /api/v2/roles/{id} for each."""
        names = []
        for role_id in role_ids:
            try:
                role = _object(
                    self._json(self._call("GET", f"/api/v2/roles/{_numeric(role_id, 'role')}")),
                    "role",
                )
            except _NotFound:
                continue
            name = role.get("name")
            if isinstance(name, str) and name:
                names.append(name)
        return tuple(names)

    def satisfaction_ratings(
        self, *, since: datetime, max_pages: int
    ) -> Iterator[SatisfactionRating]:
        """`GET /api/v2/surveys/satisfaction_ratings?created_since=…`: the survey answers, 100
        a page while a `Link: rel="next"` follows. The survey's main question
        (`ratings.default_question`) runs from 103 (extremely happy) to -103; above 100 is
        satisfied, below 0 is not, 100 (neutral) is neither. Each page is a budgeted call."""
        for page in range(1, max_pages + 1):
            self._http.check_budget("GET /api/v2/surveys/satisfaction_ratings")
            answer = self._call(
                "GET",
                "/api/v2/surveys/satisfaction_ratings",
                params={
                    "created_since": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "per_page": PAGE_SIZE,
                    "page": page,
                },
            )
            for item in _array(self._json(answer), "satisfaction ratings"):
                rating = _map_rating(item)
                if rating is not None:
                    yield rating
            if "next" not in answer.links:
                break

    # --- More reads ------------------------------------------------------------------------

    def contact(self, *, contact_id: str) -> Person:
        """Return a contact with its custom fields and tags (raises _NotFound if unknown)."""
        path = f"/api/v2/contacts/{_numeric(contact_id, 'contact')}"
        return _map_contact(_object(self._json(self._call("GET", path)), "contact"))

    def agent(self, *, agent_id: str) -> Person:
        """Return an agent as a person with the role "agent" (raises _NotFound if unknown)."""
        path = f"/api/v2/agents/{_numeric(agent_id, 'agent')}"
        return _map_agent(_object(self._json(self._call("GET", path)), "agent")).person

    def current_agent(self) -> FreshdeskAgent:
        """Return the agent the API key belongs to: proof that Freshdesk accepts it."""
        return _map_agent(_object(self._json(self._call("GET", "/api/v2/agents/me")), "agent"))

    def account_region(self) -> str | None:
        """The account's country as a phone region, from its address; None if not known.

        GET /api/v2/account ("View Account") answers `address.country` as the admin typed it
        (`USA`, `United Kingdom`) and `timezone` in Rails' names (`Eastern Time (US & Canada)`),
        which say no country; only the address is read.
        """
        account = _object(self._json(self._call("GET", "/api/v2/account")), "account")
        address = account.get("address")
        country = address.get("country") if isinstance(address, dict) else None
        return region_of_country(country if isinstance(country, str) else None)

    # --- Logging back ----------------------------------------------------------------------

    def add_private_note(self, *, ticket_id: str, body: str) -> None:
        """Add a private note, visible to agents only; `body` is plain text."""
        if not _NUMERIC_ID.fullmatch(ticket_id):
            raise TicketNotFound(ticket_id)
        # Freshdesk takes the note as HTML: escape the text and keep its line breaks.
        note = {"body": html.escape(body).replace("\n", "<br>"), "private": True}
        try:
            self._json(self._call("POST", f"/api/v2/tickets/{ticket_id}/notes", json=note))
        except _NotFound:
            raise TicketNotFound(ticket_id) from None

    def add_tags(self, *, ticket_id: str, tags: list[str]) -> None:
        """Add tags, keeping the ticket's others.

        Freshdesk's update replaces the whole list, so the ticket's tags are read first and the
        union written back; a tag another update adds in between can be lost.
        """
        if not _NUMERIC_ID.fullmatch(ticket_id):
            raise TicketNotFound(ticket_id)
        if not tags:
            return  # nothing to add is not worth a call from the budget
        path = f"/api/v2/tickets/{ticket_id}"
        try:
            current = _map_ticket(_object(self._json(self._call("GET", path)), "ticket")).tags
            missing = [tag for tag in dict.fromkeys(tags) if tag not in current]
            if missing:
                self._json(self._call("PUT", path, json={"tags": [*current, *missing]}))
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
        """Update the ticket (tags, and a rule's ticket handling), then add the private note.

        Freshdesk needs separate calls. The update goes first because making it again is
        harmless (it sets tags, priority and group): a retry after a failed note only finds
        them there, while the note, written last, is what `has_note` looks for to know the
        whole action arrived. A priority is only ever raised; routing looks the group's id up
        by its name (the account's groups, remembered a while).
        """
        if not _NUMERIC_ID.fullmatch(ticket_id):
            raise TicketNotFound(ticket_id)
        self._http.check_budget(f"POST /api/v2/tickets/{ticket_id}/notes")
        if change is None or (change.priority is None and change.group is None):
            self.add_tags(ticket_id=ticket_id, tags=tags)
        else:
            line = self._update_ticket(ticket_id, tags=tags, change=change)
            body = with_line(body, marker, line)
        self.add_private_note(ticket_id=ticket_id, body=body)

    def _update_ticket(
        self, ticket_id: str, *, tags: list[str], change: TicketChange
    ) -> str | None:
        """Add the tags and apply the change in one update; return the note's priority line."""
        group_id = None
        if change.group is not None:
            group_id = self._groups.id_for(change.group, load=self._list_groups)
            if group_id is None:
                raise UnknownGroup("Freshdesk", change.group)
        path = f"/api/v2/tickets/{ticket_id}"
        try:
            current = _map_ticket(_object(self._json(self._call("GET", path)), "ticket"))
            update: dict[str, object] = {}
            missing = [tag for tag in dict.fromkeys(tags) if tag not in current.tags]
            if missing:
                update["tags"] = [*current.tags, *missing]
            priority, line = change.priority_update(current.priority)
            if priority is not None:
                update["priority"] = PRIORITY_NUMBERS[priority]
            if group_id is not None:
                update["group_id"] = int(group_id)
            if update:
                self._json(self._call("PUT", path, json=update))
        except _NotFound:
            raise TicketNotFound(ticket_id) from None
        return line

    def _list_groups(self) -> dict[str, str]:
        """The account's groups, name to id, a few pages at most."""
        groups: dict[str, str] = {}
        for page in range(1, MAX_GROUP_PAGES + 1):
            self._http.check_budget("GET /api/v2/groups")
            answer = self._call(
                "GET", "/api/v2/groups", params={"per_page": PAGE_SIZE, "page": page}
            )
            for group in _array(self._json(answer), "groups"):
                group_id, name = str(group.get("id")), group.get("name")
                if _NUMERIC_ID.fullmatch(group_id) and name:
                    groups.setdefault(str(name), group_id)
            if "next" not in answer.links:
                break
        return groups

    def has_note(self, *, ticket_id: str, marker: str) -> bool:
        """Look for the marker in the ticket's conversations (notes and replies, oldest first)."""
        if not _NUMERIC_ID.fullmatch(ticket_id):
            raise TicketNotFound(ticket_id)
        path = f"/api/v2/tickets/{ticket_id}/conversations"
        for page in range(1, MAX_CONVERSATION_PAGES + 1):
            self._http.check_budget(f"GET {path}")
            try:
                answer = self._call("GET", path, params={"per_page": PAGE_SIZE, "page": page})
            except _NotFound:
                raise TicketNotFound(ticket_id) from None
            for item in _array(self._json(answer), "conversations"):
                texts = (item.get("body"), item.get("body_text"))
                if any(isinstance(text, str) and marker in text for text in texts):
                    return True
            if "next" not in answer.links:
                break
        return False

    # --- HTTP ------------------------------------------------------------------------------

    def _json(self, response: requests.Response) -> object:
        """The answer's JSON: Freshdesk answers every call, writes too, with JSON."""
        return self._http.read_json(response)

    def _error_for_status(self, status: int, what: str) -> FreshdeskError:
        """Freshdesk's answer to a call, other than 429 (the plumbing's), as the error to raise."""
        if status == 401:
            return CredentialsRejected(
                f"Freshdesk refused the API key for {what} (401)", retryable=False, status=401
            )
        if status == 403:
            return FreshdeskError(
                f"the Freshdesk API key lacks permission for {what} (403)",
                retryable=False,
                status=403,
            )
        if status == 404:
            return _NotFound(f"Freshdesk found nothing at {what} (404)")
        return FreshdeskError(
            f"Freshdesk answered {what} with {status}", retryable=status >= 500, status=status
        )


def _numeric(value: str, kind: str) -> str:
    if not _NUMERIC_ID.fullmatch(value):
        raise HelpdeskError(f"{kind} id {value!r} is not a Freshdesk id", retryable=False)
    return value


def _unreadable(kind: str) -> HelpdeskError:
    return HelpdeskError(f"Freshdesk sent a {kind} this client cannot read", retryable=False)


def _object(body: object, kind: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _unreadable(kind)
    return body


def _array(body: object, kind: str) -> list[dict[str, Any]]:
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise _unreadable(kind)
    return body


def _optional_str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _strings(value: object, kind: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _unreadable(kind)
    return tuple(str(item) for item in value)


def _map_rating(raw: Mapping[str, Any]) -> SatisfactionRating | None:
    """A survey answer, or None for one the service cannot read."""
    ratings = raw.get("ratings")
    main = ratings.get("default_question") if isinstance(ratings, dict) else None
    ticket_id = str(raw.get("ticket_id", ""))
    if not isinstance(main, int) or isinstance(main, bool) or not _NUMERIC_ID.fullmatch(ticket_id):
        return None
    try:
        created_at = utc_timestamp(raw.get("created_at"))
    except (TypeError, ValueError):
        return None
    satisfied = True if main > 100 else False if main < 0 else None
    return SatisfactionRating(str(raw.get("id", "")), ticket_id, satisfied, created_at)


def _map_ticket(raw: Mapping[str, Any]) -> Ticket:
    try:
        status = int(raw["status"])
        priority = raw.get("priority")
        return Ticket(
            id=str(int(raw["id"])),
            subject=str(raw.get("subject") or ""),
            status=STATUSES.get(status, CUSTOM_STATUS),
            channel=CHANNELS.get(int(raw.get("source") or 0), "unknown"),
            priority=None if priority is None else PRIORITIES.get(int(priority)),
            ticket_type=None if not raw.get("type") else str(raw["type"]).lower(),
            tags=_strings(raw.get("tags"), "ticket"),
            requester_id=str(int(raw["requester_id"])),
            created_at=utc_timestamp(raw["created_at"]),
            updated_at=utc_timestamp(raw["updated_at"]),
            # `description_text` is the description without its HTML.
            description_orders=mentioned_orders(
                None if raw.get("description_text") is None else str(raw["description_text"])
            ),
        )
    except (KeyError, TypeError, ValueError):
        raise _unreadable("ticket") from None


def _map_contact(raw: Mapping[str, Any]) -> Person:
    fields = raw.get("custom_fields") or {}
    if raw.get("id") is None or not isinstance(fields, dict):
        raise _unreadable("contact")
    return Person(
        id=str(raw["id"]),
        name=str(raw.get("name") or "Unknown user"),
        email=_optional_str(raw.get("email")),
        # A caller is recognized by either number Freshdesk keeps.
        phone=_optional_str(raw.get("phone")) or _optional_str(raw.get("mobile")),
        role="end-user",
        # Freshdesk keeps a tag's case; mappings name tags in lower case, as Zendesk stores them.
        tags=tuple(tag.lower() for tag in _strings(raw.get("tags"), "contact")),
        fields=dict(fields),
        organization_id=_optional_str(raw.get("company_id")),
    )


def _map_agent(raw: Mapping[str, Any]) -> FreshdeskAgent:
    contact = raw.get("contact") or {}
    scope = raw.get("ticket_scope")
    if raw.get("id") is None or not isinstance(contact, dict):
        raise _unreadable("agent")
    person = Person(
        id=str(raw["id"]),
        name=str(contact.get("name") or "Unknown agent"),
        email=_optional_str(contact.get("email")),
        phone=_optional_str(contact.get("phone")) or _optional_str(contact.get("mobile")),
        role="agent",
        role_ids=tuple(str(r) for r in raw.get("role_ids") or () if isinstance(r, int | str)),
        locale=_optional_str(contact.get("language")),
    )
    return FreshdeskAgent(person=person, ticket_scope=scope if isinstance(scope, int) else None)
