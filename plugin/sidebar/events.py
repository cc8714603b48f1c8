"""What a helpdesk event does: read from a delivery's payload, remembered per installation,
and turned into a queued refresh of the requester's snapshot (one row per requester, however
many events come), or into dropping a deleted requester's cached answers.

No Flask and no calls to the helpdesk here: the receiving endpoints (`event_views`) call these
with the request's database session; the refreshes are made by `event_refresh`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.models import SharedCacheEntry
from plugin.models.events import EventDelivery, EventSource, SnapshotRefresh

EventKind = Literal["ticket", "user_changed", "user_deleted"]
_ID = re.compile(r"[0-9]{1,20}")
MAX_SUBJECT = 500
MAX_TAGS = 50
# Zendesk's placeholders render a few fields in words: the API's values, as the cache keeps them.
_ZENDESK_CHANNELS = {"mail": "email", "web form": "web", "web service": "api", "web_form": "web"}


class EventError(ValueError):
    """A delivery whose payload is not an event the service can read (answered with 400)."""


@dataclass(frozen=True)
class HelpdeskEvent:
    """One event: whose snapshot it is about, and the ticket it carried whole, if it did
    (as the shared cache stores tickets: then no call is needed to refresh it)."""

    kind: EventKind
    requester_id: str
    ticket: Mapping[str, object] | None = field(default=None)

    @property
    def needs_fetch(self) -> bool:
        return self.kind != "ticket" or self.ticket is None


# --- Reading payloads ---------------------------------------------------------------------


def zendesk_event(payload: object) -> HelpdeskEvent | None:
    """The event a Zendesk delivery says: our trigger's ticket body, or a user event. None for
    an event type the service does not act on."""
    data = _object(payload)
    kind = data.get("type")
    if kind == "regulars:ticket":
        raw = _object(data.get("ticket"))
        requester = _id(raw.get("requester_id"), "ticket.requester_id")
        return HelpdeskEvent("ticket", requester, _zendesk_ticket(raw, requester))
    if isinstance(kind, str) and kind.startswith("zen:event-type:user."):
        user = _id(_object(data.get("detail")).get("id"), "detail.id")
        if kind in ("zen:event-type:user.deleted", "zen:event-type:user.merged"):
            return HelpdeskEvent("user_deleted", user)
        return HelpdeskEvent("user_changed", user)
    if isinstance(kind, str):
        return None
    raise EventError("the payload has no type")


def freshdesk_event(payload: object) -> HelpdeskEvent:
    """The event a Freshdesk automation rule's webhook sends (the body the admin docs give)."""
    data = _object(payload)
    raw = _object(data.get("freshdesk_webhook", data))
    requester = _id(raw.get("ticket_requester_id", raw.get("requester_id")), "requester_id")
    if raw.get("ticket_id") is not None:
        _id(raw.get("ticket_id"), "ticket_id")
    return HelpdeskEvent("ticket", requester)


def _zendesk_ticket(raw: Mapping[str, object], requester: str) -> dict[str, object] | None:
    """The ticket as the shared cache keeps it, when the body has every field; else None."""
    try:
        ticket_id = _id(raw.get("id"), "ticket.id")
        created = _timestamp(raw.get("created_at"))
        updated = _timestamp(raw.get("updated_at"))
    except EventError:
        return None
    subject, status = raw.get("subject"), raw.get("status")
    if not isinstance(subject, str) or not isinstance(status, str) or not status.strip():
        return None
    tags = raw.get("tags")
    channel = str(raw.get("channel") or "").strip().lower()
    return {
        "id": ticket_id,
        "subject": subject[:MAX_SUBJECT],
        "status": status.strip().lower(),
        "channel": _ZENDESK_CHANNELS.get(channel, channel.replace(" ", "_") or "unknown"),
        "priority": _word_or_none(raw.get("priority")),
        "ticket_type": _word_or_none(raw.get("ticket_type")),
        "tags": (tags.split() if isinstance(tags, str) else [])[:MAX_TAGS],
        "requester_id": requester,
        "created_at": created.isoformat(),
        "updated_at": updated.isoformat(),
    }


def _object(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise EventError("the payload is not a JSON object")
    return value


def _id(value: object, name: str) -> str:
    text = str(value).strip() if isinstance(value, str | int) else ""
    if not _ID.fullmatch(text):
        raise EventError(f"{name} is not a helpdesk id")
    return text


def _timestamp(value: object) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise EventError("not a timestamp") from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _word_or_none(value: object) -> str | None:
    text = str(value or "").strip().lower()
    return None if text in ("", "-") else text[:40]


# --- Taking a delivery --------------------------------------------------------------------


def delivery_digest(*parts: str | bytes) -> str:
    """A digest naming one delivery (its signature and timestamp), for replay checks."""
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(part.encode() if isinstance(part, str) else part)
        hashed.update(b"\0")
    return hashed.hexdigest()


def take_delivery(
    session: Session, installation_id: int, digest: str, *, now: datetime, window: timedelta
) -> bool:
    """Remember a delivery; False when the same one was taken already (a replay)."""
    session.execute(sa.delete(EventDelivery).where(EventDelivery.received_at < now - 2 * window))
    try:
        with session.begin_nested():
            session.add(
                EventDelivery(installation_id=installation_id, digest=digest, received_at=now)
            )
    except IntegrityError:
        return False
    return True


def record_arrival(session: Session, source: EventSource, kind: str, *, now: datetime) -> None:
    """Note when the installation's last event came, for the console's health line."""
    source.last_event_at = now
    source.last_event_kind = kind[:40]
    source.events_received = (source.events_received or 0) + 1


def event_source(session: Session, installation_id: int) -> EventSource | None:
    return session.get(EventSource, installation_id)


# --- What an event does -------------------------------------------------------------------


def queue_refresh(
    session: Session, installation_id: int, event: HelpdeskEvent, *, now: datetime
) -> None:
    """Queue the requester's refresh, or fold the event into the one already queued."""
    for _ in range(2):
        row = session.scalars(
            sa.select(SnapshotRefresh).where(
                SnapshotRefresh.installation_id == installation_id,
                SnapshotRefresh.requester_id == event.requester_id,
            )
        ).first()
        if row is not None:
            row.needs_fetch = row.needs_fetch or event.needs_fetch
            row.tickets = merged_tickets(row.tickets, event.ticket)
            row.version = (row.version or 0) + 1
            session.flush()
            return
        try:
            with session.begin_nested():
                session.add(
                    SnapshotRefresh(
                        installation_id=installation_id,
                        requester_id=event.requester_id,
                        needs_fetch=event.needs_fetch,
                        tickets=merged_tickets([], event.ticket),
                        queued_at=now,
                        version=1,
                    )
                )
            return
        except IntegrityError:
            continue  # another request queued the same requester at the same moment: fold in


def merged_tickets(
    tickets: object, ticket: Mapping[str, object] | None
) -> list[Mapping[str, object]]:
    """The tickets with `ticket` in place of the one of the same id, newest created first."""
    kept = [t for t in (tickets if isinstance(tickets, list) else []) if isinstance(t, Mapping)]
    if ticket is not None:
        kept = [t for t in kept if t.get("id") != ticket.get("id")] + [dict(ticket)]
    return sorted(kept, key=lambda t: str(t.get("created_at", "")), reverse=True)


def requester_cache_keys(requester_id: str) -> tuple[str, ...]:
    """The shared cache's keys that hold one requester's answers."""
    return (f"requester:{requester_id}", f"requested:{requester_id}")


def drop_requester(session: Session, installation_id: int, requester_id: str) -> int:
    """Forget a deleted requester's cached answers and queued refresh; return rows dropped."""
    dropped = session.execute(
        sa.delete(SharedCacheEntry).where(
            SharedCacheEntry.installation_id == installation_id,
            SharedCacheEntry.key.in_(requester_cache_keys(requester_id)),
        )
    )
    session.execute(
        sa.delete(SnapshotRefresh).where(
            SnapshotRefresh.installation_id == installation_id,
            SnapshotRefresh.requester_id == requester_id,
        )
    )
    return int(getattr(dropped, "rowcount", 0) or 0)


# --- Health ---------------------------------------------------------------------------------


def health_line(session: Session, installation_id: int, *, now: datetime) -> str | None:
    """When the installation's last event came, how many, and the refreshes waiting; None
    when its events are not set up."""
    source = session.get(EventSource, installation_id)
    if source is None:
        return None
    waiting = session.scalar(
        sa.select(sa.func.count())
        .select_from(SnapshotRefresh)
        .where(SnapshotRefresh.installation_id == installation_id)
    )
    if source.last_event_at is None:
        last = "no event yet"
    else:
        age = int((now - source.last_event_at).total_seconds())
        last = f"last event {age} s ago ({source.last_event_kind})"
    return f"{last}, {source.events_received} received, {waiting or 0} waiting"
