"""The sidebar view an agent waits for, as the page makes it: the launch, then the view.

`sidebar.js` posts the launch (the helpdesk's signed token), then gets the view: the banner
with the suggestions, orders and review cards after it, in one answer (`/sidebar/view`). When
the banner asks for a write first, the answer has no cards and the page asks for each after
the write. One `AgentView` times that on one connection and adds up what the service says
each request cost on its side (`Server-Timing: app;dur=`), so the figures are the whole
view's, not the banner's alone.
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

# The cards the page asks for on their own when the view's answer came without them (a banner
# that asks for a write first), in the order it asks.
CARDS = ("/sidebar/suggestions", "/sidebar/orders", "/sidebar/review")
_CARDS_IN_VIEW = 'id="rg-suggestions"'
_SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")
# The parts of the view's answer the service times on its own (`observability.time_part`).
_PART_TIMING = re.compile(r"(state|suggestions|orders|review);dur=([0-9.]+)")


@dataclass(frozen=True)
class AgentView:
    """One view: what the agent waited for, and what it cost on the service's side."""

    status: int
    # Launch + view (+ the slowest card, when they came on their own: in parallel in the page).
    client_ms: float
    # Every request's own time on the service, added up.
    server_ms: float
    by_request_ms: dict[str, float]
    # The view's answer split: the banner (the rest of it) and each card the service timed.
    parts_ms: dict[str, float]


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
    return timing_ms(response.headers.get("server-timing", ""))


def timing_ms(server_timing: str) -> float:
    """The whole answer's time in a Server-Timing header's value."""
    match = _SERVER_TIMING.search(server_timing)
    if match is None:
        raise BenchError("the service sent no Server-Timing header")
    return float(match.group(1))


def agent_view(
    client: Client, token: str, ticket: workload.Ticket, *, cards: bool = True
) -> AgentView:
    """Launch the sidebar with a signed `token` and load the ticket's view, the banner and its
    cards (`cards=False`: the launch and the banner only)."""
    page, session = launch(client, token)
    headers = {"Authorization": f"Bearer {session}", "Accept": "text/html"}
    query = page_query(ticket)
    path = "/sidebar/view" if cards else "/sidebar/banner"
    banner = client.get(path, query=query, headers=headers)
    answers: dict[str, Response] = {"launch": page, path.rsplit("/", 1)[1]: banner}
    if banner.status == 200 and cards and _CARDS_IN_VIEW not in banner.text:
        for path in CARDS:
            answers[path.rsplit("/", 1)[1]] = client.get(path, query=query, headers=headers)
    failed = [
        (name, answer.status) for name, answer in answers.items() if answer.status not in (200, 204)
    ]
    card_seconds = [
        answers[name].seconds for name in answers if name not in ("launch", "banner", "view")
    ]
    return AgentView(
        status=failed[0][1] if failed else 200,
        client_ms=1000 * (page.seconds + banner.seconds + max(card_seconds, default=0.0)),
        server_ms=sum(server_ms(answer) for answer in answers.values()),
        by_request_ms={name: server_ms(answer) for name, answer in answers.items()},
        parts_ms=parts_ms(banner),
    )


def parts_ms(view: Response) -> dict[str, float]:
    """The banner's and each card's share of the view's server time (its Server-Timing)."""
    return timing_parts_ms(view.headers.get("server-timing", ""))


def timing_parts_ms(server_timing: str) -> dict[str, float]:
    """`parts_ms` of a Server-Timing header's value."""
    cards = {name: float(ms) for name, ms in _PART_TIMING.findall(server_timing)}
    return {"banner": round(timing_ms(server_timing) - sum(cards.values()), 3), **cards}


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
    by_part: dict[str, list[float]] = {}
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
        for name, ms in view.parts_ms.items():
            by_part.setdefault(name, []).append(ms / 1000)
    figures: JSONObject = {
        "client_ms": percentiles(client_s),
        "server_ms": percentiles(server_s),
        "server_ms_by_request_p50": medians_ms(by_request),
        "view_server_ms_by_part_p50": medians_ms(by_part),
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
