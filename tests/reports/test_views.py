"""The console's reports over HTTP on the demo, on SQLite and PostgreSQL: the page, the chart,
the range form's errors, the CSV download, and another installation's console seeing nothing."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin import db
from plugin.clock import utcnow
from plugin.models import DemoUser, Installation
from tests.console.test_views import ADMIN, console_session
from tests.customers.test_console_views import field_error
from tests.seeded_demo import SeededDemos


@pytest.fixture
def world(
    storage_app: Flask, seeded_demos: SeededDemos
) -> Iterator[tuple[FlaskClient, Session, Installation]]:
    with db.database(storage_app).sessions() as session:
        installation = seeded_demos.load(storage_app, session)
        yield storage_app.test_client(), session, installation


@pytest.fixture
def bearer(storage_app: Flask, world: tuple[FlaskClient, Session, Installation]) -> dict[str, str]:
    client, _session, installation = world
    return {"Authorization": f"Bearer {console_session(storage_app, client, installation)}"}


def test_the_report_needs_the_console_session(
    world: tuple[FlaskClient, Session, Installation],
) -> None:
    client, _session, _installation = world
    assert client.get("/console/reports").status_code == 401
    assert client.post("/console/reports", data={}).status_code == 401
    assert client.get("/console/reports.csv").status_code == 401


def test_the_demo_report_shows_figures_a_chart_and_its_tables(
    world: tuple[FlaskClient, Session, Installation], bearer: dict[str, str]
) -> None:
    client, _session, _installation = world
    today = utcnow().date()
    response = client.post(
        "/console/reports",
        data={"from": (today - timedelta(days=179)).isoformat(), "to": today.isoformat()},
        headers=bearer,
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<script" not in html and "style=" not in html  # strict CSP
    acted = int(re.search(r'data-total="acted">(\d+)<', html).group(1))  # type: ignore[union-attr]
    assert acted > 20  # the demo's months of history
    # The chart: an accessible SVG image, with the budgets table as its text alternative.
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert 'role="img"' in svg and "<title id=" in svg and "<desc id=" in svg
    assert 'data-bar="High value"' in svg
    assert 'id="report-budgets"' in html and 'data-budget="tier:high"' in html
    assert 'data-review="High-value account review"' in html
    assert re.search(r'<tr data-agent="80001"><th scope="row">Sam Carter</th>', html)
    assert "the sidebar does not record the suggestions it only showed" in html
    # The download button carries the same range.
    assert f'data-download="/console/reports.csv?from={today - timedelta(days=179)}' in html


def test_wrong_dates_are_reported_beside_their_fields(
    world: tuple[FlaskClient, Session, Installation], bearer: dict[str, str]
) -> None:
    client, _session, _installation = world
    response = client.post(
        "/console/reports", data={"from": "2026-02-30", "to": "soon"}, headers=bearer
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert field_error(html, "report-from") == "expected a date such as 2026-11-01"
    assert field_error(html, "report-to") == "expected a date such as 2026-11-01"
    assert 'value="soon"' in html
    backwards = client.post(
        "/console/reports", data={"from": "2026-11-10", "to": "2026-11-01"}, headers=bearer
    )
    assert field_error(backwards.get_data(as_text=True), "report-to") == (
        "must be on or after the start date"
    )


def test_the_csv_download(
    world: tuple[FlaskClient, Session, Installation], bearer: dict[str, str]
) -> None:
    client, _session, _installation = world
    today = utcnow().date()
    first = today - timedelta(days=364)
    response = client.get(
        "/console/reports.csv",
        query_string={"from": first.isoformat(), "to": today.isoformat()},
        headers=bearer,
    )
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="regulars-report-{first}-to-{today}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0]["section"] == "total" and int(rows[0]["acted_on"]) > 20
    assert any(r["section"] == "review" and r["name"] == "High-value account review" for r in rows)
    assert any(r["section"] == "agent" and r["name"] == "Sam Carter" for r in rows)
    bad = client.get("/console/reports.csv", query_string={"from": "x"}, headers=bearer)
    assert bad.status_code == 400


def test_another_installations_console_sees_none_of_it(
    storage_app: Flask, world: tuple[FlaskClient, Session, Installation]
) -> None:
    client, session, installation = world
    other = Installation(
        platform="demo",
        account="other",
        display_name="Other",
        app_installation_id="2",
        token_audience="https://demo.localhost/api/v2/apps/installations/2.json",
        public_key_pem=installation.public_key_pem,
    )
    session.add(other)
    session.flush()
    session.add(
        DemoUser(installation_id=other.id, external_id=ADMIN, name="Other admin", role="admin")
    )
    session.commit()
    theirs = {"Authorization": f"Bearer {console_session(storage_app, client, other)}"}
    html = client.post(
        "/console/reports", data={"from": "2024-11-01", "to": "2026-10-31"}, headers=theirs
    ).get_data(as_text=True)
    assert 'data-total="acted">0<' in html
    assert "Sam Carter" not in html and "High-value account review" not in html
    exported = client.get("/console/reports.csv", headers=theirs).get_data(as_text=True)
    assert "Sam Carter" not in exported
