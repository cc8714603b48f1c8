"""What makes a warm sidebar view cheap: cached reads, buffered writes, one shared cache."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.clock import utcnow
from plugin.domain.helpdesk import Person, Ticket
from plugin.helpdesks.launch_replays import record_launch_jti
from plugin.models import Installation, Persona, SeenTicket, SharedCacheEntry
from plugin.models.events import EventSource, SnapshotRefresh
from plugin.sidebar.events import record_arrival, take_delivery
from plugin.sidebar.read_cache import Generations, ReadCache
from plugin.sidebar.seen import SeenTicketWrites
from plugin.sidebar.shared_cache import DatabaseSharedStore
from plugin.sidebar.snapshot import REQUESTER_CODEC
from plugin.sidebar.upstream import UpstreamCache
from plugin.sidebar.writes_apart import WritesApart

WHEN = datetime(2026, 11, 1, 9, 0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_read_is_kept_for_the_ttl_and_dropped_by_a_write_to_its_installation() -> None:
    clock, generations = Clock(), Generations()
    reads = ReadCache(ttl_seconds=10, generations=generations, clock=clock)
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert reads.get(1, "card", load) == 1
    assert reads.get(1, "card", load) == 1  # kept
    generations.bump(2)
    assert reads.get(1, "card", load) == 1  # another installation's write changes nothing
    generations.bump(1)
    assert reads.get(1, "card", load) == 2  # this installation's write drops it at once
    clock.now = 10.5
    assert reads.get(1, "card", load) == 3  # and the TTL bounds what other processes see
    generations.bump(None)
    assert reads.get(1, "card", load) == 4  # a write of unknown scope drops everything


def test_a_ttl_of_zero_reads_every_time() -> None:
    reads = ReadCache(ttl_seconds=0, generations=Generations())
    values = iter(range(10))
    assert [reads.get(1, "k", lambda: next(values)) for _ in range(3)] == [0, 1, 2]


def test_sessions_report_their_writes(storage_app: Flask) -> None:
    """A supervisor's edit in this process drops the cached reads of its installation only."""
    reads = storage_app.extensions["regulars.helpdesks"].reads
    with db.database(storage_app).sessions() as session:
        first = Installation(platform="demo", account="one", display_name="One")
        second = Installation(platform="demo", account="two", display_name="Two")
        session.add_all([first, second])
        session.commit()
        counter = iter(range(100))
        assert reads.get(first.id, "guidance", lambda: next(counter)) == 0
        assert reads.get(second.id, "guidance", lambda: next(counter)) == 1
        session.add(Persona(installation_id=first.id, name="Busy", conditions={}, guidance="x"))
        session.commit()
        assert reads.get(first.id, "guidance", lambda: next(counter)) == 2
        assert reads.get(second.id, "guidance", lambda: next(counter)) == 1
        # A bulk update through a session drops everything (its rows are not known).
        session.execute(sa.update(Persona).values(guidance="y"))
        session.commit()
        assert reads.get(second.id, "guidance", lambda: next(counter)) == 3
        # The sidebar's own records of seen tickets drop nothing.
        session.add(
            SeenTicket(installation_id=second.id, ticket_id="7", requester_id="1", subject="s")
        )
        session.commit()
        assert reads.get(second.id, "guidance", lambda: next(counter)) == 3


def test_the_hot_paths_own_records_drop_no_cached_read(storage_app: Flask) -> None:
    """A launch's token id, a card's exposures and a helpdesk event's delivery, queue row and
    arrival feed nothing the read cache keeps: writing them (bulk clean-ups included) keeps
    every installation's cached reads."""
    reads = storage_app.extensions["regulars.helpdesks"].reads
    now = utcnow()
    with db.database(storage_app).sessions() as session:
        installation = Installation(platform="zendesk", account="hot", display_name="Hot")
        session.add(installation)
        session.commit()
        iid = installation.id
        counter = iter(range(100))
        assert reads.get(iid, "guidance", lambda: next(counter)) == 0
        assert record_launch_jti(session, iid, "jti-1", until=now + timedelta(minutes=5), now=now)
        source = EventSource(installation_id=iid, secret_encrypted="sealed")
        session.add(source)
        session.flush()
        assert take_delivery(session, iid, "digest-1", now=now, window=timedelta(minutes=5))
        record_arrival(session, source, "ticket.created", now=now)
        session.add(SnapshotRefresh(installation_id=iid, requester_id="100", queued_at=now))
        session.commit()
        session.execute(sa.delete(SnapshotRefresh))
        session.commit()
        assert reads.get(iid, "guidance", lambda: next(counter)) == 0


def ticket(ticket_id: str, **changes: object) -> Ticket:
    values: dict[str, object] = {
        "id": ticket_id,
        "subject": "Where is my order?",
        "status": "open",
        "channel": "email",
        "priority": "normal",
        "ticket_type": "question",
        "tags": ("vip",),
        "requester_id": "100",
        "created_at": WHEN,
        "updated_at": WHEN,
    }
    values.update(changes)
    return Ticket(**values)  # type: ignore[arg-type]


@pytest.fixture
def installations(storage_app: Flask) -> Iterator[tuple[Session, int, int]]:
    with db.database(storage_app).sessions() as session:
        first = Installation(platform="zendesk", account="one", display_name="One")
        second = Installation(platform="zendesk", account="two", display_name="Two")
        session.add_all([first, second])
        session.commit()
        yield session, first.id, second.id


def seen_rows(session: Session) -> dict[tuple[int, str], SeenTicket]:
    session.expire_all()
    return {
        (row.installation_id, row.ticket_id): row for row in session.scalars(sa.select(SeenTicket))
    }


def test_a_seen_ticket_is_written_at_most_once_an_interval_and_no_view_is_lost(
    installations: tuple[Session, int, int],
) -> None:
    session, first, second = installations
    writes = SeenTicketWrites(interval_seconds=60)
    now = WHEN
    writes.record(
        lambda: session, installation_id=first, ticket=ticket("1"), customer_id=None, now=now
    )
    row = seen_rows(session)[(first, "1")]
    assert row.view_count == 1 and row.tags == ["vip"] and row.ticket_type == "question"
    for seconds in (10, 20, 30):
        writes.record(
            lambda: session,
            installation_id=first,
            ticket=ticket("1"),
            customer_id=None,
            now=now + timedelta(seconds=seconds),
        )
    assert seen_rows(session)[(first, "1")].view_count == 1  # counted, not yet written
    # A minute on, any write also writes the views counted meanwhile.
    later = now + timedelta(seconds=61)
    writes.record(
        lambda: session, installation_id=second, ticket=ticket("1"), customer_id=None, now=later
    )
    rows = seen_rows(session)
    assert rows[(first, "1")].view_count == 4
    assert rows[(first, "1")].last_seen_at == now + timedelta(seconds=30)
    assert rows[(second, "1")].view_count == 1  # same ticket id, another installation's row


def test_a_changed_ticket_is_written_at_once(installations: tuple[Session, int, int]) -> None:
    session, first, _second = installations
    writes = SeenTicketWrites(interval_seconds=60)
    writes.record(
        lambda: session, installation_id=first, ticket=ticket("1"), customer_id=None, now=WHEN
    )
    writes.record(
        lambda: session,
        installation_id=first,
        ticket=ticket("1", priority="urgent", tags=("vip", "refund")),
        customer_id=None,
        now=WHEN + timedelta(seconds=5),
    )
    row = seen_rows(session)[(first, "1")]
    assert row.priority == "urgent" and row.tags == ["vip", "refund"] and row.view_count == 2


def test_a_writer_threads_write_starts_when_its_caller_says(
    storage_app: Flask, installations: tuple[Session, int, int]
) -> None:
    """A view hands the write's start to `after_response.later`: nothing is written (nor
    competes with the cards still rendering) until the answer is made."""
    session, first, _second = installations
    with ThreadPoolExecutor(max_workers=1) as executor:
        writes = SeenTicketWrites(
            interval_seconds=60,
            sessions=db.database(storage_app).sessions,
            writes=WritesApart(executor),
        )
        held: list[Callable[[], None]] = []
        writes.record(
            lambda: session,
            installation_id=first,
            ticket=ticket("1"),
            customer_id=None,
            now=WHEN,
            start=held.append,
        )
        writes.wait()
        assert (first, "1") not in seen_rows(session) and len(held) == 1
        held[0]()
        writes.wait()
        assert seen_rows(session)[(first, "1")].view_count == 1


def test_flush_writes_the_counted_views(installations: tuple[Session, int, int]) -> None:
    session, first, _second = installations
    writes = SeenTicketWrites(interval_seconds=60)
    for seconds in range(3):
        writes.record(
            lambda: session,
            installation_id=first,
            ticket=ticket("1"),
            customer_id=None,
            now=WHEN + timedelta(seconds=seconds),
        )
    writes.flush(session)
    assert seen_rows(session)[(first, "1")].view_count == 3
    assert len(writes) == 0


def test_the_shared_store_keeps_each_installations_answers_apart(
    storage_app: Flask, installations: tuple[Session, int, int]
) -> None:
    session, first, second = installations
    store = DatabaseSharedStore(db.database(storage_app).sessions, keep_seconds=3600)
    fetched_at = utcnow().replace(microsecond=0)
    store.write((first, "requester", "100"), {"answer": 1}, fetched_at)
    assert store.read((first, "requester", "100")) == ({"answer": 1}, fetched_at)
    assert store.read((second, "requester", "100")) is None
    # An older answer does not replace a newer one; a newer one does.
    store.write((first, "requester", "100"), {"answer": 0}, fetched_at - timedelta(minutes=1))
    assert store.read((first, "requester", "100")) == ({"answer": 1}, fetched_at)
    store.write((first, "requester", "100"), {"answer": 2}, fetched_at + timedelta(minutes=1))
    assert store.read((first, "requester", "100")) == (
        {"answer": 2},
        fetched_at + timedelta(minutes=1),
    )
    rows = session.scalars(sa.select(SharedCacheEntry)).all()
    assert [(row.installation_id, row.key) for row in rows] == [(first, "requester:100")]


def test_a_process_finds_what_another_fetched_in_the_shared_cache(
    storage_app: Flask, installations: tuple[Session, int, int]
) -> None:
    _session, first, second = installations
    store = DatabaseSharedStore(db.database(storage_app).sessions, keep_seconds=3600)
    calls: list[str] = []
    person = Person(id="100", name="Ada", email="ada@example.com", tags=("vip",), fields={"a": 1})

    def load() -> tuple[Person, list[Ticket]]:
        calls.append("requested")
        return person, [ticket("1")]

    with ThreadPoolExecutor(max_workers=4) as pool:
        # Two processes: each its own in-memory cache, one database.
        one = UpstreamCache(executor=pool, keep_seconds=3600, shared=store)
        two = UpstreamCache(executor=pool, keep_seconds=3600, shared=store)
        key = (first, "requester", "100")
        answer = one.lookup(key, load, fresh_for=600, codec=REQUESTER_CODEC).result(
            time.monotonic() + 10
        )
        deadline = time.monotonic() + 10  # the shared write runs on the pool, after the answer
        while not _stored(storage_app) and time.monotonic() < deadline:
            time.sleep(0.02)
        again = two.lookup(key, load, fresh_for=600, codec=REQUESTER_CODEC).result(
            time.monotonic() + 10
        )
        assert calls == ["requested"]
        assert again.value == answer.value and two.stats.shared_hits == 1
        # Too old for this read: fetched again. Another installation's key: its own fetch.
        two.lookup(key, load, fresh_for=0, codec=REQUESTER_CODEC).result(time.monotonic() + 10)
        other = (second, "requester", "100")
        two.lookup(other, load, fresh_for=600, codec=REQUESTER_CODEC).result(time.monotonic() + 10)
        assert calls == ["requested"] * 3


def _stored(app: Flask) -> bool:
    with db.database(app).sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(SharedCacheEntry)) == 1
