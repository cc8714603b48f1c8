"""Responses that carry sessions or customer data are never cached; the database is private."""

from __future__ import annotations

import stat
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from plugin import db
from plugin.models import Installation
from tests.console.test_views import QUERY, launch, launch_token


def test_the_sidebar_launch_page_is_not_stored(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    response = client.post(
        "/sidebar", query_string=QUERY, data={"token": launch_token(app, demo_installation)}
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_the_console_launch_page_is_not_stored(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    response = launch(client, launch_token(app, demo_installation))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_json_answers_and_refusals_are_not_stored(client: FlaskClient) -> None:
    response = client.get("/sidebar/banner?ticket_id=1")
    assert response.status_code == 401
    assert response.headers["Cache-Control"] == "no-store"


def test_static_files_keep_their_own_caching(client: FlaskClient) -> None:
    response = client.get("/static/css/sidebar.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")


def test_a_new_sqlite_database_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    database = db.Database(f"sqlite:///{path}")
    with database.engine.connect():
        pass
    database.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_sqlite_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "kept.sqlite3"
    path.touch(mode=0o640)
    path.chmod(0o640)
    db.Database(f"sqlite:///{path}").dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
