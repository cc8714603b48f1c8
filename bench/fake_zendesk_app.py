"""The fake Zendesk's routes: Zendesk Support API v2 answers, in Zendesk's JSON shapes, from a
`FakeZendeskState` (bench/fake_zendesk.py), with its fault modes, rate limit and injected
faults, and the `/_fake/*` controls a benchmark drives it through.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from bench import fake_zendesk_oauth, fake_zendesk_webhooks
from bench.fake_base import (
    ErrorAnswers,
    JSONObject,
    RateLimitStatus,
    api_timestamp,
    check_api_calls,
    json_response,
)
from plugin.domain.rules import TICKET_PRIORITIES

if TYPE_CHECKING:  # fake_zendesk builds its server from this module's create_app
    from bench.fake_zendesk import FakeZendeskState

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
# Offset pagination: Zendesk's default and largest page size.
PAGE_SIZE = 100
SORTABLE_TICKET_FIELDS = ("created_at", "updated_at", "id", "status", "subject")

INSTALLATION_SETTINGS = {"name": "Regulars", "title": "Regulars"}


ERRORS = ErrorAnswers(
    "Zendesk", ("error", "description"), "ServiceUnavailable", "APIRateLimitExceeded"
)
_error = ERRORS.error


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

    def _inject_fault(route: str) -> Response | None:
        fault, plan = state.draw_fault(route)
        if fault == "server_error":
            # Turned away (503), or failed somewhere inside without writing (500, 502, 504).
            status = state.fault_choice((500, 502, 503, 504))
            return _error(status, "ServerError", f"Injected fault: {status}")
        if fault == "rate_limited":
            return ERRORS.rate_limited("Injected fault: 429", plan.retry_after_seconds)
        if fault == "hang_before":
            state.pause(plan.hang_seconds)
            return _error(503, "ServiceUnavailable", "Injected fault: hung, wrote nothing")
        if fault == "hang_after":
            g.hang_after_seconds = plan.hang_seconds
        return None

    check_api_calls(
        app,
        state,
        ERRORS,
        routes=ROUTES,
        unauthenticated=lambda: json_response({"error": "Couldn't authenticate you"}, 401),
        refusal="Number of allowed API requests exceeded",
        anonymous={"public_key"},
        then=_inject_fault,
    )

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
            return json_response(body)

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
            now = api_timestamp(datetime.now(UTC))
            found["updated_at"] = now
            event = {"id": state.new_id(), "type": "Comment", "author_id": g.caller_id, **note}
            audit = {
                "id": state.new_id(),
                "ticket_id": ticket_id,
                "created_at": now,
                "author_id": g.caller_id,
                "events": [event],
            }
            return json_response({"ticket": _with_url(found, "tickets"), "audit": audit})

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
            found["updated_at"] = api_timestamp(datetime.now(UTC))
            return json_response({"tags": list(found["tags"])})

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
        return json_response(
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
            return _not_found() if found is None else json_response({"custom_role": dict(found)})

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
        return json_response(
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
            return (
                _not_found()
                if found is None
                else json_response({"user": _with_url(found, "users")})
            )

    @app.get("/api/v2/users/me.json", endpoint="me")
    def me() -> Response:
        with state.lock:
            return json_response({"user": _with_url(data.users[g.caller_id], "users")})

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
            return json_response(body)

    @app.get("/api/v2/organizations/<int:organization_id>.json", endpoint="organization")
    def organization(organization_id: int) -> Response:
        with state.lock:
            found = data.organizations.get(organization_id)
            if found is None:
                return _not_found()
            return json_response({"organization": _with_url(found, "organizations")})

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
        return json_response(
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
        return json_response({"installations": [installation]})

    fake_zendesk_webhooks.add_routes(app, state)  # admin calls: not the sidebar's, not counted
    fake_zendesk_oauth.add_routes(app, state)  # the browser's and the token exchange: not counted

    @app.get("/_fake/stats", endpoint="fake_stats")
    def fake_stats() -> Response:
        return json_response({"calls": dict(state.calls), "total_calls": state.total_calls()})

    @app.post("/_fake/reset", endpoint="fake_reset")
    def fake_reset() -> Response:
        state.reset_counts()
        return json_response({"calls": {}, "total_calls": 0})

    @app.post("/_fake/config", endpoint="fake_config")
    def fake_config() -> Response:
        try:
            _configure_fromjson_response(state, request.get_json(silent=True))
        except (TypeError, ValueError) as problem:
            return _error(400, "InvalidConfig", str(problem))
        return json_response(state.config())

    return app


_CONFIG_KEYS = ("latency_ms", "mode", "hang_seconds", "rate_limit", "public_key_pem")


def _configure_fromjson_response(state: FakeZendeskState, payload: object) -> None:
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
