"""Helpdesk events: deliveries checked (signature, replay window, secret, size, shape) per
installation, refreshes queued one per requester, made off the request path with one call at
most (none when the event carried the ticket), deleted requesters' answers dropped, and views
that behave as before when an event is lost."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from plugin import db
from plugin.clock import utcnow
from plugin.domain.helpdesk import Person, Ticket
from plugin.helpdesks.credentials import EXTENSION_KEY, CredentialsVault
from plugin.helpdesks.interface import HelpdeskError
from plugin.helpdesks.zendesk_webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_for
from plugin.models import Installation, SharedCacheEntry
from plugin.models.events import EventDelivery, EventSource, SnapshotRefresh
from plugin.sidebar.event_cli import health_lines
from plugin.sidebar.event_refresh import RefreshStats, refresh_due
from plugin.sidebar.event_views import SECRET_HEADER
from plugin.sidebar.events import drop_requester, queue_refresh, take_delivery, zendesk_event
from plugin.sidebar.shared_cache import DatabaseSharedStore
from plugin.sidebar.snapshot import REQUESTER_CODEC, HelpdeskSnapshot, fetch_helpdesk_snapshot
from plugin.sidebar.upstream import UpstreamCache, UpstreamPolicy
from tests.console.test_views import check, console_session, text_of

SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="
USERS_SECRET = "c2Vjb25kX3dlYmhvb2tzX3NlY3JldA=="
OTHER_SECRET = "b3RoZXJfYWNjb3VudHNfc2VjcmV0"
FRESHDESK_SECRET = "fd-event-secret-0123456789abcdef"
KEEP = 86_400.0
_event_ids = 0


def vault_of(app: Flask) -> CredentialsVault:
    vault: CredentialsVault = app.extensions[EXTENSION_KEY]
    return vault


def installation(app: Flask, session: Session, platform: str, account: str) -> Installation:
    found = Installation(platform=platform, account=account, display_name=account)
    session.add(found)
    session.flush()
    return found


@pytest.fixture
def accounts(app: Flask, session: Session) -> Iterator[tuple[int, int, int]]:
    """Two Zendesk installations (acme, other) and a Freshdesk one, each with its secrets."""
    vault = vault_of(app)
    acme = installation(app, session, "zendesk", "acme")
    other = installation(app, session, "zendesk", "other")
    desk = installation(app, session, "freshdesk", "desk")
    session.add_all(
        [
            EventSource(
                installation_id=acme.id,
                secret_encrypted=vault.encrypt({"1": SECRET, "2": USERS_SECRET}),
                remote_ids={"webhooks": ["1", "2"], "triggers": ["3"]},
                events_received=0,
            ),
            EventSource(
                installation_id=other.id,
                secret_encrypted=vault.encrypt({"9": OTHER_SECRET}),
                remote_ids={},
                events_received=0,
            ),
            EventSource(
                installation_id=desk.id,
                secret_encrypted=vault.encrypt({"secret": FRESHDESK_SECRET}),
                remote_ids={},
                events_received=0,
            ),
        ]
    )
    session.commit()
    yield acme.id, other.id, desk.id


def ticket_body(ticket_id: str = "501", requester: str = "77", **fields: str) -> bytes:
    ticket = {
        "id": ticket_id,
        "requester_id": requester,
        "subject": "Where is my order #1042?",
        "status": "Open",
        "priority": "Normal",
        "ticket_type": "-",
        "channel": "Mail",
        "tags": "vip shipping",
        "created_at": "2026-12-04T10:00:00Z",
        "updated_at": "2026-12-04T10:05:00Z",
        **fields,
    }
    return json.dumps({"type": "regulars:ticket", "ticket": ticket}).encode()


def user_body(kind: str, user: str = "77") -> bytes:
    global _event_ids
    _event_ids += 1  # Zendesk gives each event its own id: no two deliveries are the same
    event = {
        "id": f"evt-{_event_ids}",
        "type": f"zen:event-type:user.{kind}",
        "detail": {"id": user},
    }
    return json.dumps(event).encode()


def stamp(at: datetime | None = None) -> str:
    return (at or utcnow()).strftime("%Y-%m-%dT%H:%M:%SZ")


def send(
    client: FlaskClient,
    installation_id: int,
    body: bytes,
    *,
    secret: str = SECRET,
    timestamp: str | None = None,
    signature: str | None = None,
) -> tuple[int, dict[str, object]]:
    timestamp = timestamp or stamp()
    answer = client.post(
        f"/events/zendesk/{installation_id}",
        data=body,
        content_type="application/json",
        headers={
            SIGNATURE_HEADER: signature or signature_for(secret, timestamp, body),
            TIMESTAMP_HEADER: timestamp,
        },
    )
    return answer.status_code, answer.get_json() or {}


def queued(session: Session) -> list[SnapshotRefresh]:
    session.expire_all()
    return list(session.scalars(sa.select(SnapshotRefresh).order_by(SnapshotRefresh.id)))


# --- Refusals -------------------------------------------------------------------------------


def test_a_signed_ticket_event_is_queued(
    client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, _ = accounts
    status, answer = send(client, acme, ticket_body())
    assert (status, answer) == (202, {"outcome": "queued"})
    [row] = queued(session)
    assert (row.installation_id, row.requester_id, row.needs_fetch) == (acme, "77", False)
    assert row.tickets[0]["status"] == "open" and row.tickets[0]["channel"] == "email"
    assert row.tickets[0]["tags"] == ["vip", "shipping"] and row.tickets[0]["ticket_type"] is None


def test_the_user_webhooks_secret_signs_too(
    client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, _ = accounts
    assert send(client, acme, user_body("details_changed"), secret=USERS_SECRET)[0] == 202
    assert [r.needs_fetch for r in queued(session)] == [True]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"secret": "d3Jvbmdfc2VjcmV0"}, "bad signature"),
        ({"signature": "AAAA"}, "bad signature"),
        ({"timestamp": "2020-01-01T00:00:00Z"}, "stale"),
        ({"timestamp": "not a date"}, "bad signature"),
    ],
)
def test_mis_signed_or_stale_deliveries_are_refused(
    client: FlaskClient,
    session: Session,
    accounts: tuple[int, int, int],
    change: dict[str, str],
    error: str,
) -> None:
    acme, _, _ = accounts
    body = ticket_body()
    timestamp = change.get("timestamp")
    signature = None
    if timestamp == "not a date":
        signature = signature_for(SECRET, timestamp, body)  # right secret, no date: refused
    status, answer = send(
        client,
        acme,
        body,
        secret=change.get("secret", SECRET),
        timestamp=timestamp,
        signature=change.get("signature", signature),
    )
    assert status == 401
    assert answer["error"] == error
    assert queued(session) == []


def test_a_tampered_body_is_refused(
    client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, _ = accounts
    timestamp = stamp()
    signed = signature_for(SECRET, timestamp, ticket_body(requester="77"))
    status, _ = send(
        client, acme, ticket_body(requester="78"), timestamp=timestamp, signature=signed
    )
    assert status == 401 and queued(session) == []


def test_a_timestamp_from_the_future_is_refused(
    client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, _ = accounts
    later = stamp(utcnow() + timedelta(minutes=10))
    assert send(client, acme, ticket_body(), timestamp=later)[1]["error"] == "stale"


def test_missing_headers_are_refused(
    client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, _ = accounts
    answer = client.post(
        f"/events/zendesk/{acme}", data=ticket_body(), content_type="application/json"
    )
    assert answer.status_code == 401 and queued(session) == []


def test_a_replayed_delivery_is_refused(
    client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, _ = accounts
    body, timestamp = ticket_body(), stamp()
    assert send(client, acme, body, timestamp=timestamp)[0] == 202
    status, answer = send(client, acme, body, timestamp=timestamp)
    assert (status, answer["error"]) == (401, "replayed")
    assert queued(session)[0].version == 1  # the replay folded nothing in


def test_a_delivery_is_checked_with_its_own_installations_secret(
    client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, other, desk = accounts
    # Signed with acme's secret, sent to the other account's endpoint: refused.
    assert send(client, other, ticket_body())[0] == 401
    # Another account's own secret is good only for its own endpoint.
    assert send(client, acme, ticket_body(), secret=OTHER_SECRET)[0] == 401
    assert send(client, other, ticket_body(), secret=OTHER_SECRET)[0] == 202
    # A Zendesk delivery to a Freshdesk installation, or to no installation: refused.
    assert send(client, desk, ticket_body())[0] == 401
    assert send(client, 999, ticket_body())[0] == 401
    assert [(r.installation_id, r.requester_id) for r in queued(session)] == [(other, "77")]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        json.dumps({"ticket": {}}).encode(),
        json.dumps({"type": "regulars:ticket", "ticket": {"requester_id": "x"}}).encode(),
        json.dumps({"type": "zen:event-type:user.deleted", "detail": {"id": "1 OR 1"}}).encode(),
    ],
)
def test_malformed_payloads_are_refused(
    client: FlaskClient, session: Session, accounts: tuple[int, int, int], body: bytes
) -> None:
    acme, _, _ = accounts
    assert send(client, acme, body)[0] == 400
    assert queued(session) == []


def test_an_oversized_delivery_is_refused(
    client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, _ = accounts
    assert send(client, acme, b" " * 70_000 + ticket_body())[0] == 400
    assert queued(session) == []


def test_an_event_type_not_acted_on_is_taken_and_ignored(
    client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, _ = accounts
    body = json.dumps({"type": "zen:event-type:organization.created", "detail": {}}).encode()
    assert send(client, acme, body) == (200, {"outcome": "ignored"})
    assert queued(session) == []


def test_freshdesk_deliveries_need_the_installations_secret(
    client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, desk = accounts
    body = json.dumps({"freshdesk_webhook": {"ticket_id": "12", "ticket_requester_id": "44"}})

    def post(installation_id: int, secret: str | None) -> int:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        return client.post(
            f"/events/freshdesk/{installation_id}",
            data=body,
            content_type="application/json",
            headers=headers,
        ).status_code

    assert post(desk, None) == 401
    assert post(desk, "wrong") == 401
    assert post(desk, FRESHDESK_SECRET + "x") == 401
    assert post(acme, FRESHDESK_SECRET) == 401  # a Zendesk installation
    assert queued(session) == []
    assert post(desk, FRESHDESK_SECRET) == 202
    assert [(r.installation_id, r.requester_id, r.needs_fetch) for r in queued(session)] == [
        (desk, "44", True)
    ]


# --- Coalescing, deletion, the refresh ----------------------------------------------------


def test_a_burst_for_one_requester_is_one_row_and_one_fetch(
    app: Flask, client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, _ = accounts
    for n in range(20):
        assert send(client, acme, user_body("details_changed"), secret=USERS_SECRET)[0] == 202
        assert send(client, acme, ticket_body(ticket_id=str(500 + n)))[0] == 202
    [row] = queued(session)
    assert row.needs_fetch and len(row.tickets) == 20
    desk = FakeDesk()
    stats = refresh(app, desk)
    assert (stats.fetched, stats.merged, desk.calls) == (1, 0, 1)
    assert queued(session) == []
    assert refresh(app, desk).done == 0 and desk.calls == 1


def test_a_ticket_event_on_a_cached_requester_costs_no_call(
    app: Flask, client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, _ = accounts
    store = DatabaseSharedStore(db.database(app).sessions, keep_seconds=KEEP)
    key = (acme, "requester", "77")
    store.write(key, REQUESTER_CODEC.encode(FakeDesk().requester_with_tickets("77")), utcnow())
    assert send(client, acme, ticket_body(ticket_id="900"))[0] == 202
    desk = FakeDesk()
    stats = refresh(app, desk)
    assert (stats.merged, stats.fetched, desk.calls) == (1, 0, 0)
    found = store.read(key)
    assert found is not None
    _, tickets = REQUESTER_CODEC.decode(found[0])
    assert [t.id for t in tickets] == ["900", "100"]  # newest created first
    assert tickets[0].status == "open" and tickets[0].tags == ("vip", "shipping")


def test_a_ticket_event_on_an_uncached_requester_costs_one_call(
    app: Flask, client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, _ = accounts
    assert send(client, acme, ticket_body())[0] == 202
    desk = FakeDesk()
    assert refresh(app, desk).fetched == 1 and desk.calls == 1
    store = DatabaseSharedStore(db.database(app).sessions, keep_seconds=KEEP)
    assert store.read((acme, "requester", "77")) is not None


def test_a_failed_refresh_is_retried_and_changes_nothing_else(
    app: Flask, client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, _ = accounts
    assert send(client, acme, user_body("details_changed"), secret=USERS_SECRET)[0] == 202
    failing = FakeDesk(fail=True)
    assert refresh(app, failing).failed == 1
    assert len(queued(session)) == 1  # kept, claimed until its claim runs out
    assert refresh(app, failing).done == 0
    later = utcnow() + timedelta(minutes=5)
    assert refresh(app, FakeDesk(), now=lambda: later).fetched == 1


def test_a_deleted_user_drops_their_cached_answers_only(
    app: Flask, client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, other, _ = accounts
    store = DatabaseSharedStore(db.database(app).sessions, keep_seconds=KEEP)
    payload = REQUESTER_CODEC.encode(FakeDesk().requester_with_tickets("77"))
    for key in [(acme, "requester", "77"), (acme, "requester", "78"), (other, "requester", "77")]:
        store.write(key, payload, utcnow())
    assert send(client, acme, ticket_body())[0] == 202
    status, answer = send(client, acme, user_body("deleted"), secret=USERS_SECRET)
    assert (status, answer) == (200, {"outcome": "dropped"})
    session.expire_all()
    left = session.execute(
        sa.select(SharedCacheEntry.installation_id, SharedCacheEntry.key).order_by(
            SharedCacheEntry.installation_id, SharedCacheEntry.key
        )
    ).all()
    assert [tuple(row) for row in left] == [(acme, "requester:78"), (other, "requester:77")]
    assert queued(session) == []


def test_the_health_line_says_when_each_installation_last_had_an_event(
    client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, _ = accounts
    assert send(client, acme, ticket_body())[0] == 202
    session.expire_all()
    lines = health_lines(session)
    assert any(
        line.startswith("zendesk:acme: last event 0 s ago (ticket), 1 received") for line in lines
    )
    assert "zendesk:other: no event yet, 0 received, 0 waiting" in lines


def test_old_deliveries_are_forgotten_after_the_window(
    client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, _ = accounts
    session.add(
        EventDelivery(installation_id=acme, digest="old", received_at=utcnow() - timedelta(hours=1))
    )
    session.commit()
    assert send(client, acme, ticket_body())[0] == 202
    session.expire_all()
    assert session.scalars(sa.select(EventDelivery.digest)).all() != ["old"]
    assert "old" not in session.scalars(sa.select(EventDelivery.digest)).all()


# --- Fakes ----------------------------------------------------------------------------------


class FakeDesk:
    """A remote helpdesk with the one-call requester read, counting its calls."""

    remote = True

    def __init__(self, *, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def requester_with_tickets(self, requester_id: str) -> tuple[Person, list[Ticket]]:
        self.calls += 1
        if self.fail:
            raise HelpdeskError("the helpdesk is down", retryable=True)
        at = datetime(2026, 11, 1, 9, 0)
        ticket = Ticket(
            id="100",
            subject="Earlier",
            status="solved",
            channel="email",
            priority=None,
            ticket_type=None,
            tags=(),
            requester_id=requester_id,
            created_at=at,
            updated_at=at,
        )
        return Person(id=requester_id, name="Ada"), [ticket]


def refresh(app: Flask, desk: FakeDesk, *, now: object = None) -> RefreshStats:
    sessions = db.database(app).sessions
    return refresh_due(
        sessions,
        clients=lambda _session, _installation: desk,  # type: ignore[arg-type,return-value]
        shared=DatabaseSharedStore(sessions, keep_seconds=KEEP),
        cache=None,
        policy=UpstreamPolicy(),
        keep_seconds=KEEP,
        **({"now": now} if now is not None else {}),  # type: ignore[arg-type]
    )


def test_after_an_event_the_first_view_of_a_new_ticket_makes_no_call(
    app: Flask, client: FlaskClient, session: Session, accounts: tuple[int, int, int]
) -> None:
    acme, _, _ = accounts
    store = DatabaseSharedStore(db.database(app).sessions, keep_seconds=KEEP)
    desk = FakeDesk()
    with ThreadPoolExecutor(max_workers=2) as pool:
        cache = UpstreamCache(executor=pool, keep_seconds=KEEP, shared=store)

        def view(ticket_id: str) -> HelpdeskSnapshot:
            return fetch_helpdesk_snapshot(
                desk,  # type: ignore[arg-type]
                cache=cache,
                installation_id=acme,
                ticket_id=ticket_id,
                requester_hint="77",
                policy=UpstreamPolicy(),
                deadline=time.monotonic() + 2.5,
                now=utcnow(),
            )

        assert view("100").ticket.id == "100" and desk.calls == 1  # cold: one call
        # The cache stores what it fetched on another thread, after answering: wait for it.
        _wait_until_stored(sessions=db.database(app).sessions, installation_id=acme)
        # The helpdesk says a new ticket came; the refresher merges it without a call.
        assert send(client, acme, ticket_body(ticket_id="900"))[0] == 202
        assert refresh(app, FakeDesk()).merged == 1
        seen = view("900")
        assert desk.calls == 1  # this process's copy lacked it: one query, no call
        assert seen.ticket.id == "900" and not seen.ticket_from_page
        assert seen.ticket.subject == "Where is my order #1042?"


def _wait_until_stored(*, sessions: sessionmaker[Session], installation_id: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sessions() as session:
            key = sa.select(SharedCacheEntry.key).where(
                SharedCacheEntry.installation_id == installation_id,
                SharedCacheEntry.key.contains("requester"),
            )
            if session.scalars(key).first() is not None:
                return
        time.sleep(0.01)
    raise AssertionError("the requester never reached the shared cache")


def test_the_console_shows_the_installations_last_event(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    token = console_session(app, client, demo_installation)
    assert "Helpdesk events" not in text_of(check(client, {"Authorization": f"Bearer {token}"}))
    session.add(
        EventSource(
            installation_id=demo_installation.id,
            secret_encrypted=vault_of(app).encrypt({"secret": FRESHDESK_SECRET}),
            remote_ids={},
            events_received=3,
            last_event_at=utcnow() - timedelta(seconds=42),
            last_event_kind="ticket",
        )
    )
    session.commit()
    shown = text_of(check(client, {"Authorization": f"Bearer {token}"}))
    assert "Helpdesk events: last event 42 s ago (ticket), 3 received, 0 waiting." in shown


def test_queueing_refreshing_and_dropping_on_each_database(storage_app: Flask) -> None:
    sessions = db.database(storage_app).sessions
    with sessions() as session:
        acme = installation(storage_app, session, "zendesk", "acme")
        session.commit()
        acme_id = acme.id
    with sessions() as session:
        for n in range(5):
            event = zendesk_event(json.loads(ticket_body(ticket_id=str(600 + n))))
            assert event is not None
            queue_refresh(session, acme_id, event, now=utcnow())
            session.commit()
        assert take_delivery(session, acme_id, "d1", now=utcnow(), window=timedelta(minutes=5))
        assert not take_delivery(session, acme_id, "d1", now=utcnow(), window=timedelta(minutes=5))
        session.commit()
        [row] = queued(session)
        assert (row.version, len(row.tickets)) == (5, 5)
    desk = FakeDesk()
    stats = refresh_due(
        sessions,
        clients=lambda _session, _installation: desk,  # type: ignore[arg-type,return-value]
        shared=DatabaseSharedStore(sessions, keep_seconds=KEEP),
        cache=None,
        policy=UpstreamPolicy(),
        keep_seconds=KEEP,
    )
    assert (stats.fetched, desk.calls) == (1, 1)  # uncached requester: one call for five
    with sessions() as session:
        assert queued(session) == []
        assert drop_requester(session, acme_id, "77") == 1
        session.commit()
