"""Zendesk's events for one installation: the webhooks and trigger the service creates through
Zendesk's API when an account is connected (and removes on disconnect), and the check of each
delivery's signature.

Two webhooks, because Zendesk lets a webhook either subscribe to events or be called by
triggers, never both: one subscribed to user events (deleted, merged, identity and details
changed), one that a trigger calls on every ticket created or updated, with a JSON body of the
ticket's fields. Each delivery is signed: base64(HMAC-SHA256(timestamp + body)) with the
webhook's signing secret, in `X-Zendesk-Webhook-Signature` and `-Signature-Timestamp`.
No Flask here: callers pass the database session, the vault and the HTTP session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests
from sqlalchemy.orm import Session

from plugin.helpdesks.credentials import CredentialsVault
from plugin.helpdesks.http import ApiCaller, HeaderAuth
from plugin.helpdesks.interface import HelpdeskError
from plugin.helpdesks.zendesk import ZENDESK_API, ZendeskCredentials, base_url_for
from plugin.helpdesks.zendesk_installations import zendesk_credentials
from plugin.models import Installation
from plugin.models.events import EventSource

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
USER_EVENT_TYPES = (
    "zen:event-type:user.deleted",
    "zen:event-type:user.merged",
    "zen:event-type:user.identity_changed",
    "zen:event-type:user.details_changed",
)
# The trigger's webhook body: Zendesk fills in the placeholders. Ids only, and the fields the
# banner shows of a ticket; never its description or comments.
TICKET_BODY = {
    "type": "regulars:ticket",
    "ticket": {
        "id": "{{ticket.id}}",
        "requester_id": "{{ticket.requester.id}}",
        "subject": "{{ticket.title}}",
        "status": "{{ticket.status}}",
        "priority": "{{ticket.priority}}",
        "ticket_type": "{{ticket.ticket_type}}",
        "channel": "{{ticket.via}}",
        "tags": "{{ticket.tags}}",
        "created_at": "{{ticket.created_at_with_timestamp}}",
        "updated_at": "{{ticket.updated_at_with_timestamp}}",
    },
}


class SignatureError(ValueError):
    """A delivery that is not Zendesk's, or not now: the message says why, never a secret."""


def signature_for(secret: str, timestamp: str, body: bytes) -> str:
    """The signature Zendesk sends for a body at a timestamp."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check_signature(
    secrets: Iterable[str],
    *,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    now: datetime,
    window: timedelta,
) -> datetime:
    """Check a delivery's signature against each of the installation's webhooks' secrets (in
    constant time, every one compared) and that its timestamp is within `window` of `now`
    (naive UTC); return the timestamp. Raises SignatureError."""
    if not signature or not timestamp:
        raise SignatureError("the delivery is not signed")
    given = signature.strip().encode()
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(signature_for(secret, timestamp, body).encode(), given)
    if not matched:
        raise SignatureError("the signature does not match")
    try:
        signed_at = datetime.fromisoformat(timestamp.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SignatureError("the signature's timestamp is not a date") from None
    if signed_at.tzinfo is not None:
        signed_at = signed_at.astimezone(UTC).replace(tzinfo=None)
    if abs(now - signed_at) > window:
        raise SignatureError("the signature's timestamp is outside the replay window")
    return signed_at


@dataclass
class RemoteWebhooks:
    """What the service created in one Zendesk account, to remove on disconnect."""

    webhooks: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, list[str]]:
        return {"webhooks": list(self.webhooks), "triggers": list(self.triggers)}

    @classmethod
    def from_json(cls, raw: object) -> RemoteWebhooks:
        data = raw if isinstance(raw, dict) else {}
        return cls(
            webhooks=[str(item) for item in data.get("webhooks") or []],
            triggers=[str(item) for item in data.get("triggers") or []],
        )


class ZendeskWebhooksApi:
    """The calls that create and remove the account's webhooks and trigger."""

    def __init__(
        self,
        *,
        session: requests.Session,
        base_url: str,
        credentials: ZendeskCredentials,
        timeout: float,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._http = ApiCaller(
            ZENDESK_API,
            session=session,
            auth=HeaderAuth("Authorization", credentials.authorization_header()),
            timeout=timeout,
            budget=None,  # an admin's command, not the sidebar's calls
            account=urlsplit(self._base).netloc,
        )

    def install(self, endpoint_url: str, *, name: str) -> tuple[RemoteWebhooks, dict[str, str]]:
        """Create the two webhooks and the trigger; return them and each webhook's signing
        secret by its id. Undone (best effort) when a later step fails."""
        created = RemoteWebhooks()
        secrets: dict[str, str] = {}
        try:
            for label, subscriptions in (
                ("tickets", ["conditional_ticket_events"]),
                ("users", list(USER_EVENT_TYPES)),
            ):
                webhook = self._create_webhook(
                    name=f"{name} ({label})", endpoint=endpoint_url, subscriptions=subscriptions
                )
                created.webhooks.append(webhook)
                secrets[webhook] = self.signing_secret(webhook)
            trigger = self._create_trigger(
                created.webhooks[0], title=f"{name}: keep the sidebar warm"
            )
            created.triggers.append(trigger)
        except HelpdeskError:
            self.remove(created)
            raise
        return created, secrets

    def signing_secret(self, webhook_id: str) -> str:
        """The webhook's signing secret (GET /api/v2/webhooks/{id}/signing_secret)."""
        payload = self._json("GET", f"/api/v2/webhooks/{webhook_id}/signing_secret")
        secret = payload.get("signing_secret", {})
        value = secret.get("secret") if isinstance(secret, dict) else None
        if not isinstance(value, str) or not value:
            raise HelpdeskError("Zendesk gave no signing secret for the webhook", retryable=True)
        return value

    def remove(self, remote: RemoteWebhooks) -> list[str]:
        """Delete the trigger(s), then the webhooks; return what could not be deleted (a 404
        counts as deleted: someone removed it in Zendesk already)."""
        left: list[str] = []
        for kind, path in (
            *(("trigger", f"/api/v2/triggers/{t}") for t in remote.triggers),
            *(("webhook", f"/api/v2/webhooks/{w}") for w in remote.webhooks),
        ):
            try:
                response = self._http.send("DELETE", self._base + path)
                if response.status_code not in (200, 204, 404):
                    self._http.raise_for_status(response, f"DELETE {path}")
            except HelpdeskError as error:
                left.append(f"{kind} {path.rsplit('/', 1)[-1]}: {error}")
        return left

    def _create_webhook(self, *, name: str, endpoint: str, subscriptions: list[str]) -> str:
        payload = self._json(
            "POST",
            "/api/v2/webhooks",
            body={
                "webhook": {
                    "name": name,
                    "endpoint": endpoint,
                    "http_method": "POST",
                    "request_format": "json",
                    "status": "active",
                    "subscriptions": subscriptions,
                }
            },
        )
        return _created_id(payload, "webhook")

    def _create_trigger(self, webhook_id: str, *, title: str) -> str:
        payload = self._json(
            "POST",
            "/api/v2/triggers",
            body={
                "trigger": {
                    "title": title,
                    "conditions": {
                        "all": [],
                        "any": [
                            {"field": "update_type", "operator": "is", "value": "Create"},
                            {"field": "update_type", "operator": "is", "value": "Change"},
                        ],
                    },
                    "actions": [
                        {
                            "field": "notification_webhook",
                            "value": [webhook_id, json.dumps(TICKET_BODY)],
                        }
                    ],
                }
            },
        )
        return _created_id(payload, "trigger")

    def _json(self, method: str, path: str, *, body: object = None) -> dict[str, object]:
        response = self._http.call(method, self._base + path, json=body)
        payload = self._http.read_json(response)
        if not isinstance(payload, dict):
            raise HelpdeskError(f"Zendesk answered {method} {path} with no object", retryable=True)
        return payload


def _created_id(payload: dict[str, object], kind: str) -> str:
    item = payload.get(kind)
    value = item.get("id") if isinstance(item, dict) else None
    if value is None:
        raise HelpdeskError(f"Zendesk created the {kind} but gave no id", retryable=False)
    return str(value)


# --- Connecting and disconnecting an installation ----------------------------------------


def events_url(public_url: str, installation_id: int) -> str:
    """Where the installation's Zendesk deliveries go."""
    return f"{public_url.rstrip('/')}/events/zendesk/{installation_id}"


def connect_events(
    session: Session,
    installation: Installation,
    vault: CredentialsVault,
    *,
    http_session: requests.Session,
    public_url: str,
    timeout: float,
) -> RemoteWebhooks:
    """Create the installation's webhooks and trigger (replacing any it had) and store their
    signing secrets; the caller commits."""
    api = _api(installation, vault, http_session=http_session, timeout=timeout)
    source = session.get(EventSource, installation.id)
    if source is not None:
        api.remove(RemoteWebhooks.from_json(source.remote_ids))
    remote, secrets = api.install(
        events_url(public_url, installation.id), name=f"Regulars {installation.account}"
    )
    if source is None:
        source = EventSource(installation_id=installation.id, events_received=0)
        session.add(source)
    source.secret_encrypted = vault.encrypt(secrets)
    source.remote_ids = remote.to_json()
    session.flush()
    return remote


def disconnect_events(
    session: Session,
    installation: Installation,
    vault: CredentialsVault,
    *,
    http_session: requests.Session,
    timeout: float,
) -> list[str]:
    """Remove what `connect_events` created and forget the secrets; return what could not be
    removed in Zendesk (the service refuses its deliveries either way). The caller commits."""
    source = session.get(EventSource, installation.id)
    if source is None:
        return []
    left = _api(installation, vault, http_session=http_session, timeout=timeout).remove(
        RemoteWebhooks.from_json(source.remote_ids)
    )
    session.delete(source)
    session.flush()
    return left


def _api(
    installation: Installation,
    vault: CredentialsVault,
    *,
    http_session: requests.Session,
    timeout: float,
) -> ZendeskWebhooksApi:
    return ZendeskWebhooksApi(
        session=http_session,
        base_url=base_url_for(installation.account, installation.api_base_url),
        credentials=zendesk_credentials(installation, vault),
        timeout=timeout,
    )
