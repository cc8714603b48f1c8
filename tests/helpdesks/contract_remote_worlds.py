"""Fake Zendesk and Freshdesk accounts for the helpdesk contract, answering mocked HTTP in each
API's own shapes, and whose answers a test can make fail, time out, be rate limited or get lost.
"""

from __future__ import annotations

import html
import json
import re
from abc import abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import responses
from responses import matchers

from plugin.domain.helpdesk import Person, Ticket
from plugin.helpdesks.freshdesk import FreshdeskClient
from plugin.helpdesks.http import CallBudget
from plugin.helpdesks.zendesk import ZendeskClient
from tests.clock import FakeClock
from tests.helpdesks import test_freshdesk_client as freshdesk_shapes
from tests.helpdesks import test_zendesk_client as zendesk_shapes
from tests.helpdesks.contract_worlds import (
    AGENT,
    GROUPS,
    OTHER_CUSTOMER,
    REQUESTER,
    SUPERVISOR,
    TICKETS,
    Note,
    World,
    description_of,
)


@dataclass(frozen=True)
class Fault:
    """How a remote helpdesk answers its next request instead of doing what it asks."""

    status: int | None = None
    retry_after: str | None = None
    timeout: bool = False


Answer = tuple[int, object] | Exception
Handler = Callable[[str, dict[str, str], Any], Answer]


class RemoteWorld(World):
    """A helpdesk reached over HTTP, whose answers can fail, time out or be rate limited.

    Every request must carry the account's credentials (a request without them matches
    nothing, and `responses` refuses it); a request the fake does not model fails the test.
    """

    def __init__(
        self, mock: responses.RequestsMock, *, base_url: str, authorization: str, clock: FakeClock
    ) -> None:
        self.clock = clock
        self._mock = mock
        self._faults: deque[Fault] = deque()
        self._lose_note_answer = False
        every_path = re.compile(re.escape(base_url) + r"/api/v2/.*")
        for method in ("GET", "PUT", "POST"):
            mock.add_callback(
                method,
                every_path,
                callback=self._answer,
                content_type="application/json",
                match=[matchers.header_matcher({"Authorization": authorization})],
            )

    @abstractmethod
    def routes(self) -> list[tuple[str, str, Handler]]:
        """(method, path pattern with at most one id group, handler) for each endpoint."""

    def fail_next(self, fault: Fault) -> None:
        """Answer the next request with `fault` instead."""
        self._faults.append(fault)

    def faults_pending(self) -> int:
        return len(self._faults)

    def lose_next_note_answer(self) -> None:
        """Store the next note, then let its answer time out: the caller cannot know it landed."""
        self._lose_note_answer = True

    def requests_sent(self) -> int:
        return len(self._mock.calls)

    def note_added(self) -> Answer | None:
        """For the handler that stored a note: the lost answer, if one was asked for."""
        if not self._lose_note_answer:
            return None
        self._lose_note_answer = False
        return requests.ReadTimeout("the helpdesk stored the note but its answer never came")

    def _answer(
        self, request: requests.PreparedRequest
    ) -> tuple[int, dict[str, str], str] | Exception:
        if self._faults:
            fault = self._faults.popleft()
            if fault.timeout:
                return requests.ReadTimeout("the helpdesk took too long")
            assert fault.status is not None
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return fault.status, headers, json.dumps({"error": "trouble"})
        url = urlsplit(str(request.url))
        query = dict(parse_qsl(url.query))
        body = json.loads(request.body) if request.body else None
        for method, pattern, handler in self.routes():
            found = re.fullmatch(pattern, url.path)
            if method == request.method and found:
                answer = handler(found.group(1) if found.groups() else "", query, body)
                if isinstance(answer, Exception):
                    return answer
                status, payload = answer
                return status, {}, json.dumps(payload)
        raise AssertionError(f"the fake helpdesk has no {request.method} {url.path}")


NOT_FOUND: Answer = (404, {"error": "RecordNotFound", "description": "Not found"})


class ZendeskWorld(RemoteWorld):
    """A Zendesk account as its Support API shows it: tickets, users, comments, groups."""

    name = "zendesk"
    supervisor_role_name = "Team lead"
    SUPERVISOR_ROLE_ID = 360001

    def __init__(
        self, mock: responses.RequestsMock, *, http: requests.Session, clock: FakeClock
    ) -> None:
        super().__init__(
            mock,
            base_url=zendesk_shapes.BASE,
            authorization=zendesk_shapes.BASIC,
            clock=clock,
        )
        self.tickets = {ticket.id: _zendesk_ticket(ticket) for ticket in TICKETS}
        self.users = {
            person.id: _zendesk_user(person)
            for person in (REQUESTER, AGENT, SUPERVISOR, OTHER_CUSTOMER)
        }
        self.users[SUPERVISOR.id]["custom_role_id"] = self.SUPERVISOR_ROLE_ID
        # Zendesk keeps a ticket's description as its first, public comment.
        self.comments: dict[str, list[dict[str, Any]]] = {
            ticket_id: [_zendesk_comment(1, ticket["description"], public=True)]
            for ticket_id, ticket in self.tickets.items()
        }
        self.groups: list[dict[str, Any]] = [
            {"id": 360100 + number, "name": name, "deleted": False}
            for number, name in enumerate(GROUPS)
        ]
        self.helpdesk = ZendeskClient(
            session=http,
            base_url=zendesk_shapes.BASE,
            credentials=zendesk_shapes.API_CREDENTIALS,
            budget=CallBudget(clock=clock),
        )

    def notes(self, ticket_id: str) -> list[Note]:
        return [Note(c["body"], private=not c["public"]) for c in self.comments[ticket_id]]

    def group_of(self, ticket_id: str) -> str | None:
        group_id = self.tickets[ticket_id]["group_id"]
        return next((g["name"] for g in self.groups if g["id"] == group_id), None)

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", r"/api/v2/tickets/(\d+)\.json", self._show_ticket),
            ("PUT", r"/api/v2/tickets/(\d+)\.json", self._update_ticket),
            ("GET", r"/api/v2/tickets/(\d+)/comments\.json", self._list_comments),
            ("GET", r"/api/v2/users/(\d+)\.json", self._show_user),
            ("GET", r"/api/v2/users/(\d+)/tickets/requested\.json", self._requested),
            ("GET", r"/api/v2/groups\.json", self._list_groups),
            ("GET", r"/api/v2/custom_roles/(\d+)\.json", self._show_custom_role),
            # No survey answers yet: the listing's shape, empty.
            ("GET", r"/api/v2/satisfaction_ratings\.json", self._no_ratings),
        ]

    def _no_ratings(self, _: str, query: dict[str, str], body: Any) -> Answer:
        return 200, {"satisfaction_ratings": [], "next_page": None, "count": 0}

    def _sideloads(self, query: dict[str, str], user_ids: list[str]) -> dict[str, object]:
        if "users" not in query.get("include", "").split(","):
            return {}
        return {"users": [self.users[i] for i in dict.fromkeys(user_ids)], "organizations": []}

    def _show_ticket(self, ticket_id: str, query: dict[str, str], body: Any) -> Answer:
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            return NOT_FOUND
        people = [str(ticket["requester_id"]), str(ticket["assignee_id"])]
        return 200, {"ticket": ticket, **self._sideloads(query, people)}

    def _update_ticket(self, ticket_id: str, query: dict[str, str], body: Any) -> Answer:
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            return NOT_FOUND
        update = body["ticket"]
        unknown = set(update) - {"comment", "additional_tags", "priority", "group_id"}
        assert not unknown, f"the fake Zendesk does not model updating {unknown}"
        if "priority" in update:
            assert update["priority"] in {"low", "normal", "high", "urgent"}
            ticket["priority"] = update["priority"]
        if "group_id" in update:
            assert any(g["id"] == update["group_id"] for g in self.groups), "no such group"
            ticket["group_id"] = update["group_id"]
        # additional_tags adds to the ticket's tags; `tags` would replace them.
        ticket["tags"] = list(dict.fromkeys([*ticket["tags"], *update.get("additional_tags", [])]))
        if "comment" not in update:
            return 200, {"ticket": ticket}
        comment = update["comment"]
        comments = self.comments[ticket_id]
        # A comment is public unless it says otherwise.
        public = comment.get("public", True)
        comments.append(_zendesk_comment(len(comments) + 1, comment["body"], public))
        return self.note_added() or (200, {"ticket": ticket})

    def _list_comments(self, ticket_id: str, query: dict[str, str], body: Any) -> Answer:
        if ticket_id not in self.tickets:
            return NOT_FOUND
        comments = self.comments[ticket_id]
        if query.get("sort_order") == "desc":
            comments = comments[::-1]
        return 200, {"comments": comments, "next_page": None, "count": len(comments)}

    def _show_user(self, user_id: str, query: dict[str, str], body: Any) -> Answer:
        user = self.users.get(user_id)
        return NOT_FOUND if user is None else (200, {"user": user})

    def _requested(self, user_id: str, query: dict[str, str], body: Any) -> Answer:
        if user_id not in self.users:
            return NOT_FOUND
        tickets = [t for t in self.tickets.values() if str(t["requester_id"]) == user_id]
        page = {"tickets": tickets, "next_page": None, "count": len(tickets)}
        return 200, page | self._sideloads(query, [user_id] if tickets else [])

    def _list_groups(self, _: str, query: dict[str, str], body: Any) -> Answer:
        return 200, {"groups": self.groups, "next_page": None, "count": len(self.groups)}

    def _show_custom_role(self, role_id: str, query: dict[str, str], body: Any) -> Answer:
        if role_id != str(self.SUPERVISOR_ROLE_ID):
            return NOT_FOUND
        role = {"id": self.SUPERVISOR_ROLE_ID, "name": self.supervisor_role_name, "role_type": 0}
        return 200, {"custom_role": role}


def _zendesk_ticket(ticket: Ticket) -> dict[str, Any]:
    return zendesk_shapes.zendesk_ticket(
        int(ticket.id),
        subject=ticket.subject,
        raw_subject=ticket.subject,
        description=description_of(ticket),
        status=ticket.status,
        via={"channel": ticket.channel, "source": {"from": {}, "to": {}, "rel": None}},
        priority=ticket.priority,
        type=ticket.ticket_type,
        tags=list(ticket.tags),
        requester_id=int(ticket.requester_id),
        submitter_id=int(ticket.requester_id),
        assignee_id=int(AGENT.id),
        organization_id=None,
        group_id=None,
        created_at=ticket.created_at.isoformat() + "Z",
        updated_at=ticket.updated_at.isoformat() + "Z",
    )


def _zendesk_user(person: Person) -> dict[str, Any]:
    return zendesk_shapes.zendesk_user(
        int(person.id),
        name=person.name,
        email=person.email,
        phone=person.phone,
        role=person.role or "end-user",
        custom_role_id=None,
        tags=[],
        user_fields={},
        organization_id=None,
    )


def _zendesk_comment(comment_id: int, body: str, public: bool) -> dict[str, Any]:
    return {
        "id": comment_id,
        "type": "Comment",
        "body": body,
        "html_body": f"<p>{html.escape(body)}</p>",
        "plain_body": body,
        "public": public,
        "author_id": int(AGENT.id),
        "created_at": "2026-11-21T09:00:00Z",
    }


# Freshdesk's numbers for the words the rest of Regulars uses, from its API reference.
FRESHDESK_STATUSES = {"open": 2, "pending": 3, "resolved": 4, "closed": 5}
FRESHDESK_PRIORITIES = {"low": 1, "normal": 2, "high": 3, "urgent": 4}
FRESHDESK_SOURCES = {"email": 1, "voice": 3, "chat": 7}
# The fake account's present: the earlier ticket is more than 30 days old.
FRESHDESK_NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class FreshdeskWorld(RemoteWorld):
    """A Freshdesk account as its API v2 shows it: tickets, contacts, agents, conversations."""

    name = "freshdesk"
    supervisor_role_name = "Team lead"
    AGENT_ROLE_ID, SUPERVISOR_ROLE_ID = 101, 102

    def __init__(
        self, mock: responses.RequestsMock, *, http: requests.Session, clock: FakeClock
    ) -> None:
        super().__init__(
            mock,
            base_url=freshdesk_shapes.BASE,
            authorization=freshdesk_shapes.BASIC,
            clock=clock,
        )
        self.tickets = {ticket.id: _freshdesk_ticket(ticket) for ticket in TICKETS}
        self.contacts = {p.id: _freshdesk_contact(p) for p in (REQUESTER, OTHER_CUSTOMER)}
        self.agents = {
            AGENT.id: _freshdesk_agent(AGENT, role_id=self.AGENT_ROLE_ID),
            SUPERVISOR.id: _freshdesk_agent(SUPERVISOR, role_id=self.SUPERVISOR_ROLE_ID),
        }
        self.roles = {
            str(self.AGENT_ROLE_ID): "Agent",
            str(self.SUPERVISOR_ROLE_ID): self.supervisor_role_name,
        }
        # The description is the ticket's own; conversations are the replies and notes after it.
        self.conversations: dict[str, list[dict[str, Any]]] = {t.id: [] for t in TICKETS}
        self.groups: list[dict[str, Any]] = [
            {"id": 5001 + number, "name": name} for number, name in enumerate(GROUPS)
        ]
        self.helpdesk = FreshdeskClient(
            session=http,
            base_url=freshdesk_shapes.BASE,
            credentials=freshdesk_shapes.CREDENTIALS,
            budget=CallBudget(clock=clock),
        )

    def notes(self, ticket_id: str) -> list[Note]:
        return [Note(c["body_text"], c["private"]) for c in self.conversations[ticket_id]]

    def group_of(self, ticket_id: str) -> str | None:
        group_id = self.tickets[ticket_id]["group_id"]
        return next((g["name"] for g in self.groups if g["id"] == group_id), None)

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", r"/api/v2/tickets/(\d+)", self._view_ticket),
            ("PUT", r"/api/v2/tickets/(\d+)", self._update_ticket),
            ("POST", r"/api/v2/tickets/(\d+)/notes", self._create_note),
            ("GET", r"/api/v2/tickets/(\d+)/conversations", self._list_conversations),
            ("GET", r"/api/v2/tickets", self._list_tickets),
            ("GET", r"/api/v2/contacts/(\d+)", self._view_contact),
            ("GET", r"/api/v2/agents/(\d+)", self._view_agent),
            ("GET", r"/api/v2/groups", self._list_groups),
            ("GET", r"/api/v2/roles/(\d+)", self._view_role),
            ("GET", r"/api/v2/surveys/satisfaction_ratings", self._no_ratings),
        ]

    def _no_ratings(self, _: str, query: dict[str, str], body: Any) -> Answer:
        return 200, []

    def _view_ticket(self, ticket_id: str, query: dict[str, str], body: Any) -> Answer:
        ticket = self.tickets.get(ticket_id)
        return NOT_FOUND if ticket is None else (200, ticket)

    def _update_ticket(self, ticket_id: str, query: dict[str, str], body: Any) -> Answer:
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            return NOT_FOUND
        unknown = set(body) - {"tags", "priority", "group_id"}
        assert not unknown, f"the fake Freshdesk does not model updating {unknown}"
        if "priority" in body:
            assert body["priority"] in FRESHDESK_PRIORITIES.values()
        if "group_id" in body:
            assert any(g["id"] == body["group_id"] for g in self.groups), "no such group"
        # `tags` replaces the ticket's tags; the other fields are set.
        ticket.update(body)
        return 200, ticket

    def _create_note(self, ticket_id: str, query: dict[str, str], body: Any) -> Answer:
        if ticket_id not in self.tickets:
            return NOT_FOUND
        conversations = self.conversations[ticket_id]
        note = {
            "id": 9000 + len(conversations),
            "body": body["body"],
            # Freshdesk derives the text from the HTML it was sent.
            "body_text": html.unescape(body["body"].replace("<br>", "\n")),
            "incoming": False,
            # A note is private unless it says otherwise.
            "private": body.get("private", True),
            "ticket_id": int(ticket_id),
            "user_id": int(AGENT.id),
            "created_at": "2026-11-21T09:00:00Z",
        }
        conversations.append(note)
        return self.note_added() or (201, note)

    def _list_conversations(self, ticket_id: str, query: dict[str, str], body: Any) -> Answer:
        if ticket_id not in self.tickets:
            return NOT_FOUND
        return 200, self.conversations[ticket_id]

    def _list_tickets(self, _: str, query: dict[str, str], body: Any) -> Answer:
        # Only the last 30 days' tickets, unless asked for those updated since a date.
        since = query.get("updated_since")
        field, cutoff = (
            ("updated_at", datetime.fromisoformat(since))
            if since
            else ("created_at", FRESHDESK_NOW - timedelta(days=30))
        )
        return 200, [
            ticket
            for ticket in self.tickets.values()
            if str(ticket["requester_id"]) == query.get("requester_id")
            and datetime.fromisoformat(ticket[field]) >= cutoff
        ]

    def _view_contact(self, contact_id: str, query: dict[str, str], body: Any) -> Answer:
        contact = self.contacts.get(contact_id)
        return NOT_FOUND if contact is None else (200, contact)

    def _view_agent(self, agent_id: str, query: dict[str, str], body: Any) -> Answer:
        agent = self.agents.get(agent_id)
        return NOT_FOUND if agent is None else (200, agent)

    def _list_groups(self, _: str, query: dict[str, str], body: Any) -> Answer:
        return 200, self.groups

    def _view_role(self, role_id: str, query: dict[str, str], body: Any) -> Answer:
        name = self.roles.get(role_id)
        return NOT_FOUND if name is None else (200, {"id": int(role_id), "name": name})


def _freshdesk_ticket(ticket: Ticket) -> dict[str, Any]:
    assert ticket.priority is not None and ticket.ticket_type is not None
    return freshdesk_shapes.freshdesk_ticket(
        int(ticket.id),
        subject=ticket.subject,
        description=f"<div>{description_of(ticket)}</div>",
        description_text=description_of(ticket),
        status=FRESHDESK_STATUSES[ticket.status],
        priority=FRESHDESK_PRIORITIES[ticket.priority],
        source=FRESHDESK_SOURCES[ticket.channel],
        type=ticket.ticket_type.capitalize(),
        requester_id=int(ticket.requester_id),
        responder_id=int(AGENT.id),
        company_id=None,
        group_id=None,
        tags=list(ticket.tags),
        created_at=ticket.created_at.isoformat() + "Z",
        updated_at=ticket.updated_at.isoformat() + "Z",
    )


def _freshdesk_contact(person: Person) -> dict[str, Any]:
    return freshdesk_shapes.freshdesk_contact(
        int(person.id),
        name=person.name,
        email=person.email,
        phone=person.phone,
        mobile=None,
        company_id=None,
        tags=[],
        custom_fields={},
    )


def _freshdesk_agent(person: Person, *, role_id: int) -> dict[str, Any]:
    agent = freshdesk_shapes.freshdesk_agent(int(person.id), role_ids=[role_id])
    agent["contact"] |= {"name": person.name, "email": person.email, "phone": person.phone}
    return agent
