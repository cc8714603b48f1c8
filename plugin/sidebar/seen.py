"""The sidebar's record of the tickets it was opened on: buffered, written apart from the view.

The only rows a sidebar view writes (besides caches): `SeenTicket`, for rule replays.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from plugin import db
from plugin.domain.helpdesk import Ticket
from plugin.models import SeenTicket
from plugin.sidebar.writes_apart import Start, WritesApart, at_once


@dataclass
class _Seen:
    """What this process last wrote of a seen ticket, and the views since then not written."""

    fields: tuple[object, ...]
    written_at: datetime
    unwritten_views: int = 0
    last_seen_at: datetime | None = None


class SeenTicketWrites:
    """The sidebar's records of seen tickets, written at most once per ticket per interval.

    A view wrote its `SeenTicket` row every time: a transaction per view, most of a warm
    view's database time. Here a ticket's row is written on its first view in this process,
    again at once when what is recorded of it changes (requester, customer, subject, fields),
    and otherwise at most once per `interval_seconds`: the views in between are counted here
    and added to the row by the next write of any ticket once the interval has passed (or at
    exit, `flush`). So `last_seen_at` and `view_count` lag by an interval at most; a worker
    killed outright loses at most that interval's counts, never a ticket.

    Given `sessions` and `writes`, the writes run on a worker thread, in a session of their own
    (`WritesApart`): the view that makes one does not wait for its commit.
    """

    def __init__(
        self,
        *,
        interval_seconds: float,
        sessions: sessionmaker[Session] | None = None,
        writes: WritesApart | None = None,
    ) -> None:
        self._interval = interval_seconds
        self._sessions = sessions
        self._writes = writes
        self._lock = threading.Lock()
        self._tickets: dict[tuple[int, str], _Seen] = {}

    def record(
        self,
        session: Callable[[], Session],
        *,
        installation_id: int,
        ticket: Ticket,
        customer_id: int | None,
        now: datetime,
        start: Start = at_once,
    ) -> None:
        """Count a view of the ticket; write it, and the views that are due, when it is time.

        `session` gives the request's session, asked for only when this writes in the request
        (without writer threads): most views only count, and open no session at all. `start`
        starts the writer thread's write when its caller chooses (`after_response.later`: once
        the answer is made), else at once.
        """
        key = (installation_id, ticket.id)
        fields = _recorded_fields(ticket, customer_id)
        with self._lock:
            seen = self._tickets.get(key)
            if (
                seen is not None
                and seen.fields == fields
                and (now - seen.written_at).total_seconds() < self._interval
            ):
                seen.unwritten_views += 1
                seen.last_seen_at = now
                return
            views = 1 + (seen.unwritten_views if seen is not None else 0)
            self._tickets[key] = _Seen(fields=fields, written_at=now)
            due = self._take_due(now)

        def write(session: Session) -> None:
            record_seen_ticket(
                session,
                installation_id=installation_id,
                ticket=ticket,
                customer_id=customer_id,
                now=now,
                views=views,
                more_views=due,
            )

        if self._sessions is None or self._writes is None:
            write(session())
            return
        sessions, writes = self._sessions, self._writes
        start(lambda: writes.submit(sessions, write, what="a seen ticket"))

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the writes under way (tests, shutdown)."""
        if self._writes is not None:
            self._writes.wait(timeout)

    def flush(self, session: Session) -> None:
        """Wait for the writes under way, then write every view counted and not yet written."""
        self.wait()
        with self._lock:
            due = self._take_due(None)
        if due:
            _add_views(session, due)
            session.commit()

    def __len__(self) -> int:
        with self._lock:
            return len(self._tickets)

    def _take_due(self, now: datetime | None) -> list[tuple[int, str, int, datetime]]:
        """Take the unwritten views whose interval has passed (all when `now` is None).

        Tickets past their interval are forgotten, so the buffer holds only the tickets
        viewed in the last interval.
        """
        due = []
        for key, seen in list(self._tickets.items()):
            if now is not None and (now - seen.written_at).total_seconds() < self._interval:
                continue
            if seen.unwritten_views and seen.last_seen_at is not None:
                due.append((*key, seen.unwritten_views, seen.last_seen_at))
            del self._tickets[key]
        return due


def _recorded_fields(ticket: Ticket, customer_id: int | None) -> tuple[object, ...]:
    return (
        ticket.requester_id,
        customer_id,
        ticket.subject[:500],
        ticket.channel,
        ticket.ticket_type,
        ticket.priority,
        ticket.tags,
    )


def record_seen_ticket(
    session: Session,
    *,
    installation_id: int,
    ticket: Ticket,
    customer_id: int | None,
    now: datetime,
    views: int = 1,
    more_views: list[tuple[int, str, int, datetime]] | None = None,
) -> None:
    """Remember that the sidebar was opened on a ticket (`views` times), and for whom.

    `more_views` are other tickets' views counted by `SeenTicketWrites` and written in the
    same transaction: (installation id, ticket id, views, last seen at).
    """
    _upsert_seen_ticket(session, installation_id, ticket, customer_id, now, views)
    if more_views:
        _add_views(session, more_views)
    session.commit()


def _add_views(session: Session, views: list[tuple[int, str, int, datetime]]) -> None:
    for installation_id, ticket_id, count, last_seen_at in views:
        session.execute(
            sa.update(SeenTicket)
            .where(SeenTicket.installation_id == installation_id, SeenTicket.ticket_id == ticket_id)
            .values(
                view_count=SeenTicket.view_count + count,
                last_seen_at=sa.case(
                    (SeenTicket.last_seen_at < last_seen_at, last_seen_at),
                    else_=SeenTicket.last_seen_at,
                ),
            )
        )


def _upsert_seen_ticket(
    session: Session,
    installation_id: int,
    ticket: Ticket,
    customer_id: int | None,
    now: datetime,
    views: int = 1,
) -> None:
    """Insert the ticket's row, or update it where it is there: one statement (`INSERT ... ON
    CONFLICT DO UPDATE`, in SQLite and PostgreSQL alike), so two first views at once in two
    processes both count, and a new ticket costs no read first."""
    session.execute(
        _seen_upsert(session.get_bind().dialect.name),
        {
            "installation_id": installation_id,
            "ticket_id": ticket.id,
            "requester_id": ticket.requester_id,
            "customer_id": customer_id,
            "subject": ticket.subject[:500],
            "channel": ticket.channel,
            "ticket_type": ticket.ticket_type,
            "priority": ticket.priority,
            "tags": list(ticket.tags),
            "first_seen_at": now,
            "last_seen_at": now,
            "view_count": views,
        },
    )


@cache
def _seen_upsert(dialect: str) -> sa.Insert:
    """The upsert, built once per database kind: building it cost more than running it."""
    insert = db.dialect_insert(dialect, SeenTicket)
    new = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=[SeenTicket.installation_id, SeenTicket.ticket_id],
        set_={
            "requester_id": new.requester_id,
            "customer_id": new.customer_id,
            "subject": new.subject,
            "ticket_type": new.ticket_type,
            "priority": new.priority,
            "tags": new.tags,
            "last_seen_at": sa.case(
                (SeenTicket.last_seen_at < new.last_seen_at, new.last_seen_at),
                else_=SeenTicket.last_seen_at,
            ),
            "view_count": SeenTicket.view_count + new.view_count,
        },
    )
