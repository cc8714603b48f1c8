"""The endpoints the helpdesks send their events to, one per platform and installation.

Zendesk's deliveries are signed (`zendesk_webhooks.check_signature`, with a replay window and
each delivery taken once); Freshdesk's carry the installation's event secret in a header. A
delivery that is unsigned, mis-signed, stale, replayed, oversized or malformed is refused
(401 or 400) and counted on /metrics, and nothing is queued. A good one queues a refresh of
the requester's snapshot (made by `event_refresh`, off this request) or, for a deleted
requester, drops their cached answers at once.
"""

from __future__ import annotations

import hmac
import json
from datetime import timedelta

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from prometheus_client import Counter
from sqlalchemy.orm import Session

from plugin import db
from plugin.cli_support import vault
from plugin.clock import utcnow
from plugin.helpdesks import freshdesk, zendesk
from plugin.helpdesks.credentials import CredentialsError
from plugin.helpdesks.runtime import helpdesks
from plugin.helpdesks.zendesk_webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    check_signature,
)
from plugin.models import Installation
from plugin.models.events import EventSource
from plugin.sidebar.events import (
    EventError,
    HelpdeskEvent,
    delivery_digest,
    drop_requester,
    freshdesk_event,
    queue_refresh,
    record_arrival,
    take_delivery,
    zendesk_event,
)
from plugin.web.settings import settings

bp = Blueprint("events", __name__, url_prefix="/events")

SECRET_HEADER = "X-Regulars-Event-Secret"  # noqa: S105 (a header's name)
MAX_EVENT_BYTES = 65_536

EVENTS = Counter(
    "regulars_helpdesk_events_total",
    "Event deliveries from the helpdesks, by platform and outcome (queued, dropped, ignored; "
    "or refused: unsigned, bad_signature, stale, replayed, oversized, malformed, unknown)",
    ["platform", "outcome"],
)


@bp.post("/zendesk/<int:installation_id>")
def zendesk_delivery(installation_id: int) -> ResponseReturnValue:
    """A Zendesk webhook's delivery: the trigger's ticket body or a user event."""
    body = _body()
    if body is None:
        return _refused("zendesk", "oversized", 400)
    session = db.session()
    found = _source(session, installation_id, zendesk.PLATFORM)
    if found is None:
        return _refused("zendesk", "unknown", 401)
    source, secrets = found
    now = utcnow()
    window = timedelta(seconds=settings().event_replay_seconds)
    signature = request.headers.get(SIGNATURE_HEADER)
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    try:
        check_signature(
            secrets.values(),
            signature=signature,
            timestamp=timestamp,
            body=body,
            now=now,
            window=window,
        )
    except SignatureError as error:
        outcome = "unsigned" if not (signature and timestamp) else "bad_signature"
        if "window" in str(error):
            outcome = "stale"
        return _refused("zendesk", outcome, 401)
    assert signature is not None and timestamp is not None  # checked above
    try:
        event = zendesk_event(json.loads(body))
    except (ValueError, EventError):
        return _refused("zendesk", "malformed", 400)
    digest = delivery_digest(timestamp, signature)
    if not take_delivery(session, installation_id, digest, now=now, window=window):
        session.rollback()
        return _refused("zendesk", "replayed", 401)
    return _act(session, source, "zendesk", event)


@bp.post("/freshdesk/<int:installation_id>")
def freshdesk_delivery(installation_id: int) -> ResponseReturnValue:
    """A Freshdesk automation rule's webhook, with the installation's event secret."""
    body = _body()
    if body is None:
        return _refused("freshdesk", "oversized", 400)
    session = db.session()
    found = _source(session, installation_id, freshdesk.PLATFORM)
    given = request.headers.get(SECRET_HEADER, "")
    if found is None:
        return _refused("freshdesk", "unknown", 401)
    source, secrets = found
    if not given:
        return _refused("freshdesk", "unsigned", 401)
    expected = secrets.get("secret", "")
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return _refused("freshdesk", "bad_signature", 401)
    try:
        event = freshdesk_event(json.loads(body))
    except (ValueError, EventError):
        return _refused("freshdesk", "malformed", 400)
    return _act(session, source, "freshdesk", event)


def _body() -> bytes | None:
    length = request.content_length
    if length is not None and length > MAX_EVENT_BYTES:
        return None
    body = request.get_data(cache=False)
    return None if len(body) > MAX_EVENT_BYTES else body


def _source(
    session: Session, installation_id: int, platform: str
) -> tuple[EventSource, dict[str, str]] | None:
    installation = session.get(Installation, installation_id)
    source = session.get(EventSource, installation_id)
    if installation is None or installation.platform != platform or source is None:
        return None
    try:
        return source, vault().decrypt(source.secret_encrypted)
    except CredentialsError:
        return None


def _act(
    session: Session, source: EventSource, platform: str, event: HelpdeskEvent | None
) -> ResponseReturnValue:
    now = utcnow()
    if event is None:
        record_arrival(session, source, "ignored", now=now)
        session.commit()
        EVENTS.labels(platform=platform, outcome="ignored").inc()
        return jsonify(outcome="ignored"), 200
    record_arrival(session, source, event.kind, now=now)
    if event.kind == "user_deleted":
        drop_requester(session, source.installation_id, event.requester_id)
        session.commit()
        helpdesks().cache.invalidate((source.installation_id, "requester", event.requester_id))
        helpdesks().cache.invalidate((source.installation_id, "requested", event.requester_id))
        EVENTS.labels(platform=platform, outcome="dropped").inc()
        return jsonify(outcome="dropped"), 200
    queue_refresh(session, source.installation_id, event, now=now)
    session.commit()
    EVENTS.labels(platform=platform, outcome="queued").inc()
    return jsonify(outcome="queued"), 202


def _refused(platform: str, outcome: str, status: int) -> ResponseReturnValue:
    EVENTS.labels(platform=platform, outcome=outcome).inc()
    return jsonify(error=outcome.replace("_", " ")), status
