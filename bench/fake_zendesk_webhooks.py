"""The fake Zendesk's webhooks: the Webhooks and Triggers API calls the service makes on
connect and disconnect, and deliveries as Zendesk would send them (the trigger's body with its
placeholders filled in from the ticket, or a user event), signed with the webhook's secret.

The fake sends nothing by itself: a test or benchmark asks for a ticket's or a user's
deliveries (`ticket_deliveries`, `user_deliveries`) and posts them where it likes.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

from plugin.clock import utcnow
from plugin.helpdesks.zendesk_webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_for

if TYPE_CHECKING:
    from bench.fake_zendesk import FakeZendeskState

JSONObject = dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    """One POST Zendesk would make: where, with which headers, and the body."""

    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookRegistry:
    """What the account's admin API created: webhooks (with secrets) and triggers."""

    webhooks: dict[str, JSONObject] = field(default_factory=dict)
    triggers: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (webhook, body)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(7001))


_registries: weakref.WeakKeyDictionary[FakeZendeskState, WebhookRegistry] = (
    weakref.WeakKeyDictionary()
)


def registry_of(state: FakeZendeskState) -> WebhookRegistry:
    """The account's webhooks and triggers (made on first use)."""
    return _registries.setdefault(state, WebhookRegistry())


def add_routes(app: Flask, state: FakeZendeskState) -> None:
    """The Webhooks and Triggers API routes the service calls (not counted as sidebar calls)."""
    registry = registry_of(state)

    def answer(body: object, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json")

    @app.post("/api/v2/webhooks", endpoint="create_webhook")
    def create_webhook() -> Response:
        webhook = dict((request.get_json(silent=True) or {}).get("webhook") or {})
        if not webhook.get("endpoint") or webhook.get("request_format") != "json":
            return answer({"errors": [{"code": "InvalidValue"}]}, 400)
        with registry.lock:
            webhook_id = str(next(registry.ids))
            webhook |= {"id": webhook_id, "secret": secrets.token_urlsafe(32)}
            registry.webhooks[webhook_id] = webhook
        shown = {key: value for key, value in webhook.items() if key != "secret"}
        return answer({"webhook": shown}, 201)

    @app.get("/api/v2/webhooks/<webhook_id>/signing_secret", endpoint="webhook_secret")
    def webhook_secret(webhook_id: str) -> Response:
        webhook = registry.webhooks.get(webhook_id)
        if webhook is None:
            return answer({"errors": [{"code": "RecordNotFound"}]}, 404)
        return answer({"signing_secret": {"algorithm": "SHA256", "secret": webhook["secret"]}})

    @app.post("/api/v2/triggers", endpoint="create_trigger")
    def create_trigger() -> Response:
        trigger = (request.get_json(silent=True) or {}).get("trigger") or {}
        actions = [
            a for a in trigger.get("actions", []) if a.get("field") == "notification_webhook"
        ]
        if not actions or actions[0]["value"][0] not in registry.webhooks:
            return answer({"errors": [{"code": "InvalidValue"}]}, 422)
        with registry.lock:
            trigger_id = str(next(registry.ids))
            registry.triggers[trigger_id] = (actions[0]["value"][0], actions[0]["value"][1])
        return answer({"trigger": {"id": int(trigger_id), "title": trigger.get("title")}}, 201)

    @app.delete("/api/v2/triggers/<trigger_id>", endpoint="delete_trigger")
    def delete_trigger(trigger_id: str) -> Response:
        found = registry.triggers.pop(trigger_id, None)
        return Response(status=204 if found else 404)

    @app.delete("/api/v2/webhooks/<webhook_id>", endpoint="delete_webhook")
    def delete_webhook(webhook_id: str) -> Response:
        found = registry.webhooks.pop(webhook_id, None)
        return Response(status=204 if found else 404)


def ticket_deliveries(state: FakeZendeskState, ticket_id: int) -> list[Delivery]:
    """What the account's triggers send for a ticket created or updated: one per trigger."""
    ticket = state.data.tickets[ticket_id]
    values = {
        "ticket.id": str(ticket["id"]),
        "ticket.requester.id": str(ticket["requester_id"]),
        "ticket.title": str(ticket["subject"]),
        "ticket.status": str(ticket["status"]).capitalize(),
        "ticket.priority": str(ticket.get("priority") or "-").capitalize(),
        "ticket.ticket_type": str(ticket.get("type") or "-").capitalize(),
        "ticket.via": {"email": "Mail", "web": "Web form"}.get(
            ticket["via"]["channel"], str(ticket["via"]["channel"])
        ),
        "ticket.tags": " ".join(ticket.get("tags") or []),
        "ticket.created_at_with_timestamp": str(ticket["created_at"]),
        "ticket.updated_at_with_timestamp": str(ticket["updated_at"]),
    }
    registry = registry_of(state)
    found = []
    for webhook_id, template in list(registry.triggers.values()):
        webhook = registry.webhooks[webhook_id]
        body = json.dumps(_filled(json.loads(template), values)).encode()
        found.append(_signed(webhook, body))
    return found


def user_deliveries(state: FakeZendeskState, event_type: str, user_id: int) -> list[Delivery]:
    """What the webhooks subscribed to `event_type` (zen:event-type:user.deleted...) send."""
    body = json.dumps(
        {
            "id": secrets.token_hex(8),
            "type": event_type,
            "detail": {"id": str(user_id)},
            "time": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    ).encode()
    return [
        _signed(webhook, body)
        for webhook in list(registry_of(state).webhooks.values())
        if event_type in (webhook.get("subscriptions") or [])
    ]


def _filled(template: Any, values: dict[str, str]) -> Any:
    if isinstance(template, dict):
        return {key: _filled(value, values) for key, value in template.items()}
    if isinstance(template, str):
        for name, value in values.items():
            template = template.replace("{{" + name + "}}", value)
    return template


def _signed(webhook: JSONObject, body: bytes) -> Delivery:
    stamp = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature_for(str(webhook["secret"]), stamp, body),
        TIMESTAMP_HEADER: stamp,
    }
    return Delivery(url=str(webhook["endpoint"]), headers=headers, body=body)
