"""The sidebar view an agent waits for, as the page makes it: the launch, the banner, the cards.

`sidebar.js` posts the launch (the helpdesk's signed token), gets the banner, then the
suggestions, orders and review cards at once. One `AgentView` times that on one connection
and adds up what the service says each request cost on its side (`Server-Timing: app;dur=`),
so the figures are the view's, not the banner's alone.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import fake_zendesk, workload
from bench.load import Client, Response, percentiles
from bench.service import BenchError, RunningService, launch
from plugin.helpdesks.zendesk import ZendeskCredentials

JSONObject = dict[str, Any]

# The cards the page asks for once the banner is in, in the order it asks.
CARDS = ("/sidebar/suggestions", "/sidebar/orders", "/sidebar/review")
_SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


@dataclass(frozen=True)
class AgentView:
    """One view: what the agent waited for, and what it cost on the service's side."""

    status: int
    # Launch + banner + the slowest card: the cards load in parallel in the page.
    client_ms: float
    # Every request's own time on the service, added up.
    server_ms: float
    by_request_ms: dict[str, float]


def page_query(ticket: workload.Ticket) -> dict[str, str]:
    """What the page sends with every request of a view: the ticket, its requester, its fields
    (from the helpdesk's app framework)."""
    return {
        "ticket_id": str(ticket.id),
        "requester_id": str(ticket.requester_id),
        "subject": f"Ticket {ticket.id}",
        "status": "open",
        "channel": "email",
    }


def server_ms(response: Response) -> float:
    """The service's own time for a request, from its Server-Timing header."""
    match = _SERVER_TIMING.search(response.headers.get("server-timing", ""))
    if match is None:
        raise BenchError("the service sent no Server-Timing header")
    return float(match.group(1))


def agent_view(
    client: Client, token: str, ticket: workload.Ticket, *, cards: bool = True
) -> AgentView:
    """Launch the sidebar with a signed `token` and load the ticket's banner and cards
    (`cards=False`: the launch and the banner only)."""
    page, session = launch(client, token)
    headers = {"Authorization": f"Bearer {session}", "Accept": "text/html"}
    query = page_query(ticket)
    banner = client.get("/sidebar/banner", query=query, headers=headers)
    answers: dict[str, Response] = {"launch": page, "banner": banner}
    if banner.status == 200 and cards:
        for path in CARDS:
            answers[path.rsplit("/", 1)[1]] = client.get(path, query=query, headers=headers)
    failed = [
        (name, answer.status) for name, answer in answers.items() if answer.status not in (200, 204)
    ]
    card_seconds = [answers[name].seconds for name in answers if name not in ("launch", "banner")]
    return AgentView(
        status=failed[0][1] if failed else 200,
        client_ms=1000 * (page.seconds + banner.seconds + max(card_seconds, default=0.0)),
        server_ms=sum(server_ms(answer) for answer in answers.values()),
        by_request_ms={name: server_ms(answer) for name, answer in answers.items()},
    )


def one_upstream_call(zendesk_port: int, ticket_id: int) -> float:
    """One upstream call as the service makes it (a ticket, its users sideloaded), timed from
    here on a new connection: the fake's set latency, its own work and the loopback trip."""
    credentials = ZendeskCredentials.from_api_token(
        email=fake_zendesk.ADMIN_EMAIL, api_token=fake_zendesk.DEFAULT_API_TOKEN
    )
    client = Client(zendesk_port)
    try:
        answer = client.get(
            f"/api/v2/tickets/{ticket_id}.json",
            query={"include": "users,organizations"},
            headers={"Authorization": credentials.authorization_header()},
        )
    finally:
        client.close()
    if answer.status != 200:
        raise BenchError(f"the fake Zendesk answered {answer.status} to a ticket")
    return answer.seconds


def views_one_at_a_time(
    service: RunningService,
    tickets: list[workload.Ticket],
    token: Callable[[], str],
    *,
    zendesk_port: int | None = None,
) -> JSONObject:
    """Whole views (`agent_view`) one after another, each on a new connection as a page's.

    With `zendesk_port`, one upstream call is timed right before each view, so that the
    ratio of a view to a call compares two things measured side by side, not a call timed
    once at the start of the run.
    """
    client_s: list[float] = []
    server_s: list[float] = []
    calls_s: list[float] = []
    by_request: dict[str, list[float]] = {}
    for ticket in tickets:
        if zendesk_port is not None:
            calls_s.append(one_upstream_call(zendesk_port, ticket.id))
        client = Client(service.port)
        try:
            view = agent_view(client, token(), ticket)
        finally:
            client.close()
        if view.status != 200:
            raise BenchError(f"ticket {ticket.id}: a view answered HTTP {view.status}")
        client_s.append(view.client_ms / 1000)
        server_s.append(view.server_ms / 1000)
        for name, ms in view.by_request_ms.items():
            by_request.setdefault(name, []).append(ms / 1000)
    figures: JSONObject = {
        "client_ms": percentiles(client_s),
        "server_ms": percentiles(server_s),
        "server_ms_by_request_p50": medians_ms(by_request),
    }
    if calls_s:
        figures["one_upstream_call_ms"] = percentiles(calls_s)
        figures["view_over_upstream_call_p50"] = round(
            statistics.median(client_s) / statistics.median(calls_s), 3
        )
    return figures


def medians_ms(by_request: dict[str, list[float]]) -> JSONObject:
    """Each request's median, in milliseconds, from samples in seconds."""
    return {
        name: round(1000 * statistics.median(samples), 2) for name, samples in by_request.items()
    }
