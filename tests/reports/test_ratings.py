"""Satisfaction from the helpdesks: each client's survey listing (request shape, pages, what
counts as satisfied), the ratings kept per ticket (a read goes on from the latest, a failure
keeps what was read), and the exposures' `satisfied` outcome filled in from them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskCliRunner
from responses import matchers
from sqlalchemy.orm import Session

from plugin import db
from plugin.helpdesks.freshdesk import FreshdeskClient
from plugin.helpdesks.http import CallBudget
from plugin.helpdesks.interface import HelpdeskError, SatisfactionRating
from plugin.helpdesks.zendesk import ZendeskClient
from plugin.models import Installation, RuleExposure, TicketRating
from plugin.reports.outcomes import compute_outcomes
from plugin.reports.ratings import OVERLAP, read_ratings
from tests.helpdesks.test_freshdesk_client import BASE as FRESHDESK
from tests.helpdesks.test_freshdesk_client import CREDENTIALS as FRESHDESK_CREDENTIALS
from tests.helpdesks.test_zendesk_client import API_CREDENTIALS, budget
from tests.helpdesks.test_zendesk_client import BASE as ZENDESK
from tests.reports.exposures import exposure
from tests.reports.test_effects import _installation

__all__ = ["budget"]  # the fixture, used by name

NOW = datetime(2026, 11, 20, 12, 0)
SINCE = datetime(2026, 11, 1, 0, 0)
ZENDESK_LIST = f"{ZENDESK}/api/v2/satisfaction_ratings.json"
FRESHDESK_LIST = f"{FRESHDESK}/api/v2/surveys/satisfaction_ratings"


@pytest.fixture
def zendesk(http: requests.Session, budget: CallBudget) -> ZendeskClient:
    return ZendeskClient(
        session=http, base_url=ZENDESK + "/", credentials=API_CREDENTIALS, budget=budget
    )


@pytest.fixture
def freshdesk(http: requests.Session, budget: CallBudget) -> FreshdeskClient:
    return FreshdeskClient(
        session=http, base_url=FRESHDESK + "/", credentials=FRESHDESK_CREDENTIALS, budget=budget
    )


def zendesk_rating(rating_id: int, ticket_id: int, score: str, at: str) -> dict[str, Any]:
    return {"id": rating_id, "ticket_id": ticket_id, "score": score, "created_at": at}


# --- Zendesk: GET /api/v2/satisfaction_ratings.json ---------------------------------------


def test_zendesk_lists_answered_ratings_from_a_time_and_follows_next_page(
    zendesk: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    first = {
        "satisfaction_ratings": [
            zendesk_rating(1, 101, "good", "2026-11-02T10:00:00Z"),
            zendesk_rating(2, 102, "bad", "2026-11-03T10:00:00Z"),
        ],
        "next_page": f"{ZENDESK_LIST}?page=2",
    }
    second = {
        "satisfaction_ratings": [
            zendesk_rating(3, 103, "offered", "2026-11-04T10:00:00Z"),  # asked, not answered
            {"id": 4, "ticket_id": "not a number", "score": "good", "created_at": "x"},
            zendesk_rating(5, 105, "good", "2026-11-05T10:00:00+01:00"),
        ],
        "next_page": None,
    }
    query = {"score": "received", "start_time": "1793491200", "per_page": "100"}  # 2026-11-01
    rsps.get(ZENDESK_LIST, json=first, match=[matchers.query_param_matcher(query)])
    rsps.get(ZENDESK_LIST, json=second, match=[matchers.query_param_matcher({"page": "2"})])

    found = list(zendesk.satisfaction_ratings(since=SINCE, max_pages=5))

    assert found == [
        SatisfactionRating("1", "101", True, datetime(2026, 11, 2, 10, 0)),
        SatisfactionRating("2", "102", False, datetime(2026, 11, 3, 10, 0)),
        SatisfactionRating("5", "105", True, datetime(2026, 11, 5, 9, 0)),  # in UTC
    ]


def test_zendesk_reads_no_more_pages_than_asked(
    zendesk: ZendeskClient, rsps: responses.RequestsMock
) -> None:
    page = {
        "satisfaction_ratings": [zendesk_rating(1, 101, "good", "2026-11-02T10:00:00Z")],
        "next_page": f"{ZENDESK_LIST}?page=2",
    }
    rsps.get(ZENDESK_LIST, json=page)

    assert len(list(zendesk.satisfaction_ratings(since=SINCE, max_pages=1))) == 1
    assert len(rsps.calls) == 1


# --- Freshdesk: GET /api/v2/surveys/satisfaction_ratings ----------------------------------


def freshdesk_rating(rating_id: int, ticket_id: int, main: object, at: str) -> dict[str, Any]:
    return {
        "id": rating_id,
        "ticket_id": ticket_id,
        "survey_id": 42,
        "ratings": {"default_question": main, "question_2": -102},
        "feedback": "private words",
        "created_at": at,
    }


def test_freshdesk_lists_answers_since_a_time_and_maps_the_main_question(
    freshdesk: FreshdeskClient, rsps: responses.RequestsMock
) -> None:
    query = {"created_since": "2026-11-01T00:00:00Z", "per_page": "100"}
    rsps.get(
        FRESHDESK_LIST,
        json=[
            freshdesk_rating(1, 201, 103, "2026-11-02T10:00:00Z"),
            freshdesk_rating(2, 202, -102, "2026-11-03T10:00:00Z"),
        ],
        headers={"Link": f'<{FRESHDESK_LIST}?page=2>; rel="next"'},
        match=[matchers.query_param_matcher(query | {"page": "1"})],
    )
    rsps.get(
        FRESHDESK_LIST,
        json=[
            freshdesk_rating(3, 203, 100, "2026-11-04T10:00:00Z"),  # neutral: neither
            freshdesk_rating(4, 204, "happy", "2026-11-04T10:00:00Z"),  # unreadable: skipped
        ],
        match=[matchers.query_param_matcher(query | {"page": "2"})],
    )

    found = list(freshdesk.satisfaction_ratings(since=SINCE, max_pages=5))

    assert [(r.ticket_id, r.satisfied) for r in found] == [
        ("201", True),
        ("202", False),
        ("203", None),
    ]


# --- Kept per ticket, read on from the latest ---------------------------------------------


class Listing:
    """A helpdesk's survey listing, as the clients give it: from `since`, maybe failing."""

    def __init__(self, ratings: list[SatisfactionRating], fail_after: int | None = None) -> None:
        self.ratings, self.fail_after = ratings, fail_after
        self.asked: list[datetime] = []

    def satisfaction_ratings(self, *, since: datetime, max_pages: int) -> Iterator[Any]:
        self.asked.append(since)
        for number, rating in enumerate(r for r in self.ratings if r.created_at >= since):
            if self.fail_after is not None and number >= self.fail_after:
                raise HelpdeskError("Zendesk answered 429: calls paused for 60s", retryable=True)
            yield rating


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def kept(session: Session, installation: Installation) -> dict[str, bool | None]:
    rows = session.query(TicketRating).filter_by(installation_id=installation.id)
    return {row.ticket_id: row.satisfied for row in rows}


def rating(rating_id: str, ticket: str, satisfied: bool | None, day: int) -> SatisfactionRating:
    return SatisfactionRating(rating_id, ticket, satisfied, datetime(2026, 11, day, 9, 0))


def test_ratings_are_kept_per_ticket_and_the_next_read_goes_on_from_the_latest(
    session: Session,
) -> None:
    installation, _ = _installation(session)
    listing = Listing([rating("1", "t1", True, 2), rating("2", "t2", False, 3)])
    first = read_ratings(session, installation, listing, now=NOW)  # type: ignore[arg-type]
    assert (first.read, first.kept, first.problem) == (2, 2, None)
    assert first.since < datetime(2026, 1, 1)  # a first read goes a year and more back

    # The customer changed their mind about t1; the read starts a little before the latest.
    listing.ratings.append(rating("7", "t1", False, 6))
    again = read_ratings(session, installation, listing, now=NOW)  # type: ignore[arg-type]
    assert listing.asked[-1] == datetime(2026, 11, 3, 9, 0) - OVERLAP
    assert again.kept == 1  # t2 read again, unchanged; t1's new answer replaces the old
    assert kept(session, installation) == {"t1": False, "t2": False}


def test_a_helpdesk_failing_halfway_keeps_what_was_read_and_says_why(session: Session) -> None:
    installation, _ = _installation(session)
    listing = Listing([rating(str(n), f"t{n}", True, 2 + n) for n in range(4)], fail_after=2)

    run = read_ratings(session, installation, listing, now=NOW)  # type: ignore[arg-type]

    assert run.problem == "Zendesk answered 429: calls paused for 60s"
    assert kept(session, installation) == {"t0": True, "t1": True}
    listing.fail_after = None
    read_ratings(session, installation, listing, now=NOW)  # type: ignore[arg-type]
    assert set(kept(session, installation)) == {"t0", "t1", "t2", "t3"}


def test_an_exposures_satisfaction_is_its_tickets_answer(session: Session) -> None:
    installation, rule_id = _installation(session)
    for ticket in ("t1", "t2", "t3"):
        session.add(
            exposure(
                installation.id,
                rule_id,
                ticket,
                requester_id="u-" + ticket,
                seen_at=NOW - timedelta(days=3),
                segment="",
                held_out=ticket == "t2",
            )
        )
    session.commit()
    listing = Listing([rating("1", "t1", True, 2), rating("2", "t2", False, 3)])
    read_ratings(session, installation, listing, now=NOW)  # type: ignore[arg-type]

    compute_outcomes(session, now=NOW)

    rows = session.query(RuleExposure).filter_by(installation_id=installation.id)
    assert {row.ticket_id: row.satisfied for row in rows} == {"t1": True, "t2": False, "t3": None}


def test_the_command_reads_every_installation_and_says_what_it_read(
    app: Flask, demo_installation: Installation
) -> None:
    runner: FlaskCliRunner = app.test_cli_runner()
    result = runner.invoke(args=["effects", "ratings"])
    assert result.exit_code == 0, result.output
    assert "0 survey answers since" in result.output  # the demo helpdesk sends no surveys
